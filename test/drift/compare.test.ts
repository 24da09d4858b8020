import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { compilePipeline } from '../../infra/compiler/compile';
import { PipelineInvalidError } from '../../infra/compiler/issues';
import {
  computeDrift,
  getBaseline,
  setBaseline,
  writeDriftReport,
  type DriftRecord,
  type DriftReport,
} from '../../infra/drift/index';
import { driftKeys } from '../../infra/drift/baseline';
import { writeSyntheticRun, type StepTweak } from '../../infra/testing/drift-runs';
import { openStore, type ArtifactStore } from '../../infra/store/index';
import type { Plan } from '../../workflows/plan-types';

/** seed -> (per word) left -> (per word, algorithm) digest, and a per-cell eval with metrics. */
const doc = {
  name: 'drifty',
  grid: { word: ['alpha', 'beta'], algorithm: ['sha256', 'md5'] },
  steps: {
    seed: { uses: 'util.write', with: { text: 'hello\n' } },
    left: {
      uses: 'util.concat',
      with: { inputs: ['${steps.seed.outputs.file}'], separator: '${grid.word}' },
    },
    digest: {
      uses: 'util.hash',
      with: { inputs: ['${steps.left.outputs.file}'], algorithm: '${grid.algorithm}' },
    },
    eval: {
      uses: 'eval.coco',
      with: { gt: '${steps.seed.outputs.file}', detections: '${steps.digest.outputs.report}' },
    },
  },
};

function compile(extra: object = {}): Plan {
  return compilePipeline(JSON.stringify({ ...doc, ...extra }), { file: 'drifty.json' });
}

function problems(extra: object): string[] {
  try {
    compile(extra);
  } catch (err) {
    if (err instanceof PipelineInvalidError) return err.lines();
    throw err;
  }
  assert.fail('expected the pipeline to be invalid');
}

describe('drift reports', () => {
  let dir: string;
  let store: ArtifactStore;
  let n = 0;
  const plan = compile();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-drift-'));
    store = await openStore(pathToFileURL(join(dir, 'artifacts')).href);
    await writeSyntheticRun(store, plan, { runId: 'base', categories: 3 });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function driftOf(tweaks: Record<string, StepTweak>, p: Plan = plan): Promise<DriftReport> {
    const runId = `run${++n}`;
    await writeSyntheticRun(store, p, { runId, tweaks, categories: 3 });
    return computeDrift(store, { runId, baselineRunId: 'base' });
  }

  it('an identical rerun: no drift, every metric compared', async () => {
    const report = await driftOf({});
    assert.equal(report.verdict, 'no drift');
    assert.equal(report.drifted, false);
    // eval: 4 cells x (12 AP/AR + iterations + imagesPerSec + 3 categories); digest: 4 x (hex, bytes);
    // no other kind here has value outputs.
    assert.equal(report.counts.metrics, 4 * 17 + 4 * 2);
    assert.equal(report.counts.changed, 0);
    assert.ok(report.cells.every((r) => r.withinTolerance && r.causes.length === 0 && r.delta !== null));
    const ap = report.cells.find(
      (r) => r.metric === 'eval.metrics.AP' && r.cell === 'word=beta,algorithm=md5',
    );
    assert.ok(ap);
    assert.equal(ap.shortName, 'AP');
    assert.deepEqual(ap.tolerance, { abs: 1e-9, source: 'default:float' });
  });

  it('a changed param upstream: every cell drifts, and the cause names the param', async () => {
    const report = await driftOf({ seed: { params: { text: 'hello!\n' } } });
    assert.equal(report.drifted, true);
    assert.equal(report.counts.driftedCells, 4);
    const ap = report.cells.find(
      (r) => r.metric === 'eval.metrics.AP' && r.cell === 'word=alpha,algorithm=sha256',
    )!;
    assert.equal(ap.withinTolerance, false);
    assert.deepEqual(ap.causes, ['steps.seed.with.text changed ("hello\\n" -> "hello!\\n")']);
    assert.match(
      report.verdict,
      /^drift in 4 of 4 cells: \S+ [-+][0-9.e-]+ on \S+ \(\+\d+ more\); cause: steps\.seed\.with\.text changed \("hello\\n" -> "hello!\\n"\)$/,
    );
  });

  it('a param of one cell: only that cell drifts; the cause is at the nearest step', async () => {
    const report = await driftOf({ 'digest[word=beta,algorithm=md5]': { params: { algorithm: 'sha1' } } });
    assert.equal(report.counts.driftedCells, 1);
    const outside = report.cells.filter((r) => !r.withinTolerance);
    assert.ok(outside.every((r) => r.cell === 'word=beta,algorithm=md5'));
    assert.deepEqual(outside.find((r) => r.metric === 'digest.bytes')!.causes, [
      'steps.digest.with.algorithm changed ("md5" -> "sha1")',
    ]);
    // The eval metrics moved because digest's output did: the cause is still digest's param.
    assert.deepEqual(outside.find((r) => r.metric === 'eval.metrics.AP')!.causes, [
      'steps.digest.with.algorithm changed ("md5" -> "sha1")',
    ]);
  });

  it("a kind's code version and a source data digest", async () => {
    const code = await driftOf({ left: { kindVersion: '2' } });
    const ap = code.cells.find((r) => r.metric === 'eval.metrics.AP')!;
    assert.deepEqual(ap.causes, ['code of util.concat changed (v1 -> v2)']);
    const commit = await driftOf({ 'left{word=alpha}': { code: { commit: 'd4e5f6a7b8c9' } } });
    assert.match(commit.verdict, /cause: code of util\.concat changed \(a1b2c3d -> d4e5f6a\)$/);
    assert.equal(commit.counts.driftedCells, 2);

    const ref = (hex: string) => ({
      uri: `file:///data/${hex}`,
      digest: `sha256:${hex.repeat(64)}`,
      sizeBytes: 3,
      mediaType: 'application/json',
    });
    const withSource = (hex: string) =>
      compile({
        steps: {
          ...doc.steps,
          eval: { uses: 'eval.coco', with: { gt: ref(hex), detections: '${steps.digest.outputs.report}' } },
        },
      });
    const p1 = withSource('a');
    await writeSyntheticRun(store, p1, { runId: 'src-base', categories: 3 });
    await writeSyntheticRun(store, withSource('b'), {
      runId: 'src-new',
      categories: 3,
      tweaks: { eval: { salt: 'b' } },
    });
    const data = await computeDrift(store, { runId: 'src-new', baselineRunId: 'src-base' });
    const causes = data.cells.find((r) => r.metric === 'eval.metrics.AP')!.causes;
    assert.deepEqual(causes, [
      `steps.eval.with.gt data digest changed (sha256:aaaaaaaa.. -> sha256:bbbbbbbb..)`,
    ]);
  });

  it('nondeterminism: a metric moved although no input differs', async () => {
    const report = await driftOf({ 'eval[word=alpha,algorithm=md5]': { salt: 'rerun' } });
    assert.equal(report.counts.driftedCells, 1);
    const ap = report.cells.find((r) => r.metric === 'eval.metrics.AP' && !r.withinTolerance)!;
    assert.deepEqual(ap.causes, [
      'nondeterminism: no input differs (steps.eval gave different outputs for the same inputs)',
    ]);
  });

  it('runtime and host changes are named once, at the nearest step', async () => {
    const report = await driftOf({
      seed: { params: { text: 'x' }, runtime: { tfjsVersion: '4.23.0' }, host: 'gpu-7' },
      left: { runtime: { tfjsVersion: '4.23.0' }, host: 'gpu-7' },
      digest: { runtime: { tfjsVersion: '4.23.0' }, host: 'gpu-7' },
    });
    const bytes = report.cells.find((r) => r.metric === 'digest.bytes')!;
    assert.deepEqual(bytes.causes, [
      'runtime of steps.digest and 2 upstream steps changed (tfjsVersion "4.22.0" -> "4.23.0")',
      'host of steps.digest and 2 upstream steps changed (worker-1 -> gpu-7)',
      'steps.seed.with.text changed ("hello\\n" -> "x")',
    ]);
  });

  it('tolerance bands from the pipeline; timings are ignored by default', async () => {
    const banded = compile({
      tolerance: [
        { metric: 'AP', abs: 1 },
        { metric: 'eval.metrics.AP50', rel: 0.000001 },
      ],
    });
    assert.deepEqual(banded.tolerance, [
      { metric: 'AP', abs: 1 },
      { metric: 'eval.metrics.AP50', rel: 0.000001 },
    ]);
    await writeSyntheticRun(store, banded, { runId: 'band-base', categories: 0 });
    await writeSyntheticRun(store, banded, {
      runId: 'band-new',
      categories: 0,
      tweaks: { eval: { salt: 'noise' } },
    });
    const report = await computeDrift(store, { runId: 'band-new', baselineRunId: 'band-base' });
    const row = (m: string) => report.cells.find((r) => r.metric === `eval.metrics.${m}`)!;
    assert.equal(row('AP').withinTolerance, true);
    assert.deepEqual(row('AP').tolerance, { abs: 1, source: 'pipeline', declaredFor: 'AP' });
    assert.equal(row('AP50').withinTolerance, false);
    assert.equal(row('imagesPerSec').withinTolerance, true);
    assert.equal(row('imagesPerSec').tolerance.source, 'default:timing');
    assert.equal(row('iterations').tolerance.source, 'default:exact');
  });

  it('a failed step: its metrics are missing, and the cause says why', async () => {
    const report = await driftOf({ 'eval[word=alpha,algorithm=md5]': { fail: 'GT file is empty' } });
    const ap = report.cells.find(
      (r) => r.metric === 'eval.metrics.AP' && r.cell === 'word=alpha,algorithm=md5',
    )!;
    assert.equal(ap.value, null);
    assert.equal(ap.withinTolerance, false);
    assert.deepEqual(ap.causes, ['steps.eval did not finish in this run: GT file is empty']);
    assert.match(
      report.verdict,
      /^drift in 1 of 4 cells: \S+ missing on word=alpha,algorithm=md5 \(\+\d+ more\); cause: steps.eval did not finish/,
    );
  });

  it('baselines: set, show, and used by default; the report is stored', async () => {
    await assert.rejects(computeDrift(store, { runId: 'base' }), {
      message:
        'pipeline drifty has no baseline: pin one with `ablate baseline set RUN_ID`, or pass --baseline RUN_ID',
    });
    const set = await setBaseline(store, {
      runId: 'base',
      setBy: 'me@here',
      now: new Date('2026-02-03T04:05:06Z'),
    });
    assert.deepEqual(await getBaseline(store, 'drifty'), set);
    assert.deepEqual(set, {
      pipeline: 'drifty',
      runId: 'base',
      setAt: '2026-02-03T04:05:06.000Z',
      setBy: 'me@here',
    });
    const report = await driftOf({ seed: { params: { text: 'changed' } } });
    assert.equal(report.baselineRunId, 'base');
    const ref = await writeDriftReport(store, report);
    assert.deepEqual(await store.getJson(ref), JSON.parse(JSON.stringify(report)));
    const record = await store.getRecord<DriftRecord>(driftKeys.report(report.runId));
    assert.equal(record?.report.digest, ref.digest);
    await writeSyntheticRun(store, plan, { runId: 'broken', tweaks: { seed: { fail: 'boom' } } });
    await assert.rejects(setBaseline(store, { runId: 'broken' }), {
      message: 'run broken failed; a baseline must be a completed run',
    });
    await assert.rejects(computeDrift(store, { runId: 'nope' }), { message: /^no run nope in file:/ });
  });

  it('the compiler checks tolerance bands and names the place', () => {
    assert.deepEqual(
      problems({
        tolerance: [
          { metric: 'AP', abs: 0.003 },
          { metric: 'AP', rel: 0.1 },
          { metric: 'eval.metric.AP', abs: 1 },
          { metric: 'eval.report', abs: 1 },
          { metric: 'evl.metrics.AP', abs: 1 },
          { metric: 'loss' },
          { metric: 'x', abs: -1 },
        ],
      }),
      [
        'drifty.json:/tolerance/1/metric: a band for "AP" is already declared at /tolerance/0 (line 1:521)',
        'drifty.json:/tolerance/2/metric: step "eval" has no output "metric" (did you mean "metrics"?); its outputs: metrics, report (line 1:547)',
        'drifty.json:/tolerance/3/metric: eval.report is an artifact output; tolerance bands apply to value outputs (metrics) (line 1:583)',
        'drifty.json:/tolerance/4/metric: "evl.metrics.AP" names neither a step nor an output: write STEP.OUTPUT[.FIELD], OUTPUT.FIELD or FIELD (did you mean "eval"?) (line 1:616)',
        'drifty.json:/tolerance/5: needs at least one of "abs", "rel", "ignore" (line 1:651)',
        'drifty.json:/tolerance/6/abs: must be >= 0, found -1 (line 1:683)',
      ],
    );
  });
});
