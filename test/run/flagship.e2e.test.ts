/**
 * The flagship study (`pipelines/examples/mini-rethinking.json`) end to end at a reduced scale on the test
 * server: the same grid, steps and findings rules, with tiny data and a few iterations per schedule.
 * Checked: every cell completed with its metrics (COCO AP, VOC mAP for the VOC cells), each number's
 * lineage reaches the data it came from (and, for pre-trained cells, the pre-training), the findings step
 * judged every claim from both seeds, and the HTML report leads with those findings.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import type { StepSummary } from '../../activities/runtime/run-records';
import { lineageOf } from '../../infra/lineage';
import type { FindingsResult } from '../../infra/report/findings';
import { startRun, waitForRun } from '../../infra/runs';
import { isArtifactRef, type ArtifactRef } from '../../workflows/plan-types';
import { plan, testSession, type TestSession } from '../helpers/temporal';

process.env.ABLATE_WASM_THREADS ??= '1';

const FILE = join(import.meta.dirname, '..', '..', 'pipelines', 'examples', 'mini-rethinking.json');

interface StudyDoc {
  grid: { data: Array<{ name: string; images: number }>; seed: number[] };
  params: Record<string, unknown> & {
    pretrain: Record<string, unknown>;
    detector: Record<string, unknown>;
  };
}

/** The flagship pipeline with its data and iteration counts shrunk; grid, steps and rules unchanged. */
async function reducedStudy(): Promise<StudyDoc> {
  const doc = JSON.parse(await readFile(FILE, 'utf8')) as StudyDoc;
  doc.grid.data = [
    { name: 'full', images: 40 },
    { name: '1/10', images: 8 },
  ];
  Object.assign(doc.params, { size: 32, width: 4, detectionImages: 40, vocImages: 20, valImages: 10 });
  Object.assign(doc.params.pretrain, { images: 160, baseIterations: 4, batchSize: 8 });
  Object.assign(doc.params.detector, { baseIterations: 6, batchSize: 4, evalEvery: 6, checkpointEvery: 6 });
  return doc;
}

describe('the flagship study at a reduced scale', () => {
  let session: TestSession;
  before(async () => {
    session = await testSession();
  });
  after(() => session.dispose());

  it('runs every cell, traces every number, judges every finding and reports them', async () => {
    const doc = await reducedStudy();
    const compiled = plan(doc);
    const { runId } = await startRun(session, compiled);
    const summary = (await waitForRun(session, runId)).summary!;
    assert.equal(
      summary.status,
      'completed',
      summary.steps
        .filter((s) => s.status === 'failed')
        .map((s) => `${s.label}: ${s.error}`)
        .join('\n'),
    );
    // 2 inits x 3 schedules x 2 training sets x 2 seeds on COCO, and the VOC comparison's 4 cells.
    assert.equal(summary.cells.length, 28);
    assert.ok(summary.cells.every((c) => c.status === 'completed'));

    const byLabel = new Map(summary.steps.map((s) => [s.label, s]));
    for (const cell of compiled.cells) {
      const voc = cell.values.dataset === 'voc';
      const evalKey = cell.steps[voc ? 'vocEvaluate' : 'evaluate']!;
      const evalStep: StepSummary = summary.steps.find((s) => s.key === evalKey)!;
      const metrics = evalStep.outputs?.metrics as Record<string, number>;
      const metric = voc ? metrics.mAP07 : metrics.AP;
      assert.equal(typeof metric, 'number', `${evalStep.label}: ${JSON.stringify(metrics)}`);
      // The number's lineage: eval <- train <- data (and the pre-training for pre-trained cells).
      const graph = await lineageOf(session.store, `${runId}/${evalStep.label}/metrics`);
      const kinds = new Set(Object.values(graph.nodes).map((n) => n.kind));
      for (const kind of ['train.detector', 'dataset.synth', voc ? 'dataset.voc2coco' : 'dataset.split'])
        assert.ok(kinds.has(kind), `${evalStep.label}: lineage lacks ${kind}: ${[...kinds].join(', ')}`);
      assert.equal(kinds.has('train.pretrain'), cell.values.init === 'imagenet', evalStep.label);
    }

    const findings = byLabel.get('findings')!;
    const verdicts = findings.outputs?.verdicts as Record<string, string>;
    assert.deepEqual(Object.keys(verdicts).sort(), ['a', 'b', 'c1', 'c2', 'd']);
    for (const v of Object.values(verdicts))
      assert.ok(['reproduced', 'contradicted', 'not shown'].includes(v));
    const result = await session.store.getJson<FindingsResult>(findings.outputs!.json as ArtifactRef);
    assert.deepEqual(result.seeds, ['1', '2']);
    for (const f of result.findings) {
      assert.deepEqual(Object.keys(f.perSeed).sort(), ['1', '2'], f.id);
      assert.ok(Number.isFinite(f.mean) && Number.isFinite(f.spread), f.id);
    }

    const report = byLabel.get('reportHtml')!;
    assert.ok(isArtifactRef(report.outputs?.html));
    const html = (await session.store.getBytes(report.outputs.html)).toString('utf8');
    assert.match(html, /<h2>Findings<\/h2>/);
    for (const f of result.findings)
      assert.ok(html.includes(`<td>${f.id}</td>`), `report lacks finding ${f.id}`);
    assert.match(html, /mAP07/);
    const md = (await session.store.getBytes(report.outputs.markdown as ArtifactRef)).toString('utf8');
    assert.match(md, /## Findings/);
  });
});
