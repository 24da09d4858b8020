/**
 * Cost of a drift report for the paper's full grid (pipelines/rethinking-imagenet.json: 86 cells, 190
 * unique steps) against a baseline, from the records a real run leaves in a filesystem store.
 *
 *   npm run bench -- drift [--json] [--reps 5] [--categories 80]
 *
 * The runs are synthetic (infra/testing/drift-runs.ts): every step's record, provenance and outputs
 * as a run writes them, with COCO-style metrics (12 AP/AR numbers, iterations, imagesPerSec and
 * `--categories` per-category APs per training and evaluation step). Three comparisons:
 * - `identical`: a rerun with the same outputs (every metric compared, nothing to explain);
 * - `param`: one shared upstream step (`split{…,data=10k}`) with a changed param, so every cell on that
 *   subset drifts and each of its changed metrics gets a cause walk up the lineage;
 * - `code`: a new code commit for every training step: all 86 cells drift.
 * Times are medians of --reps, in a fresh cache each time (computeDrift keeps none between calls);
 * `write` is writeDriftReport (the report artifact plus the run's drift record).
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { compilePipeline } from '../infra/compiler/compile';
import { computeDrift, writeDriftReport, type DriftReport } from '../infra/drift/index';
import { openStore } from '../infra/store/index';
import { writeSyntheticRun } from '../infra/testing/drift-runs';
import { argValue, median, peakRssMiB, report } from './_util';

const reps = Number(argValue('reps') ?? 5);
const categories = Number(argValue('categories') ?? 80);
if (!Number.isInteger(reps) || reps < 1 || !Number.isInteger(categories) || categories < 0) {
  console.error('--reps needs an integer >= 1, --categories an integer >= 0');
  process.exit(2);
}

const dir = await mkdtemp(join(tmpdir(), 'ablate-bench-drift-'));
try {
  const store = await openStore(pathToFileURL(join(dir, 'artifacts')).href);
  const plan = compilePipeline(await readFile('pipelines/rethinking-imagenet.json', 'utf8'));
  const setupStarted = performance.now();
  await writeSyntheticRun(store, plan, { runId: 'baseline', categories });
  await writeSyntheticRun(store, plan, { runId: 'identical', categories });
  await writeSyntheticRun(store, plan, {
    runId: 'param',
    categories,
    tweaks: { 'split{dataset=coco,backbone=r50,norm=gn,data=10k}': { params: { seed: 7 } } },
  });
  const commit = { commit: 'd4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d' };
  await writeSyntheticRun(store, plan, {
    runId: 'code',
    categories,
    tweaks: { train_coco: { code: commit }, train_voc: { code: commit } },
  });
  const setupMs = performance.now() - setupStarted;

  const figures: Record<string, unknown> = {
    cells: plan.stats.cells,
    uniqueSteps: plan.steps.length,
    categories,
    reps,
  };
  for (const runId of ['identical', 'param', 'code']) {
    const computeMs: number[] = [];
    const writeMs: number[] = [];
    let last: DriftReport | undefined;
    for (let i = 0; i < reps; i++) {
      let t = performance.now();
      last = await computeDrift(store, { runId, baselineRunId: 'baseline' });
      computeMs.push(performance.now() - t);
      t = performance.now();
      await writeDriftReport(store, last);
      writeMs.push(performance.now() - t);
    }
    const r = last!;
    if (runId === 'identical' && r.drifted) throw new Error(`identical rerun drifted: ${r.verdict}`);
    if (runId !== 'identical' && !r.drifted) throw new Error(`${runId}: no drift found`);
    figures[`${runId}ComputeMs`] = median(computeMs);
    figures[`${runId}WriteMs`] = median(writeMs);
    figures[`${runId}Metrics`] = r.counts.metrics;
    figures[`${runId}Changed`] = r.counts.changed;
    figures[`${runId}DriftedCells`] = r.counts.driftedCells;
    figures[`${runId}ReportBytes`] = Buffer.byteLength(JSON.stringify(r));
    if (runId !== 'identical') figures[`${runId}Verdict`] = r.verdict;
  }
  figures.setupMs = setupMs;
  figures.peakRssMiB = peakRssMiB();
  report('drift report, paper grid (86 cells) vs baseline, filesystem store', figures);
} finally {
  await rm(dir, { recursive: true, force: true });
}
