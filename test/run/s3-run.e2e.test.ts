/**
 * A pipeline run end to end with the S3 store (the real rclone S3 server the test runner starts):
 * datasets, split and a fan-in, cached re-run, lineage down to the dataset files, verify.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { lineageOf, lineageText, verifyRun } from '../../infra/lineage';
import { startRun, waitForRun } from '../../infra/runs';
import { useTestS3, type TestS3Target } from '../../infra/testing/s3-server';
import { isArtifactRef } from '../../workflows/plan-types';
import { plan, testSession, type TestSession } from '../helpers/temporal';

const pipeline = {
  name: 's3-data',
  grid: { subset: [8, 16] },
  steps: {
    data: {
      uses: 'dataset.synth',
      with: { task: 'detection', format: 'coco', images: 24, valImages: 8, seed: 3, size: 48 },
    },
    split: {
      uses: 'dataset.split',
      with: { annotations: '${steps.data.outputs.train}', count: '${grid.subset}', seed: 1 },
    },
    digest: { uses: 'util.hash', with: { inputs: ['${steps.split.outputs.annotations}'] } },
    report: { uses: 'report.table', groupBy: [], with: { rows: '${steps.split.outputs.images}' } },
  },
};

describe('a run on the S3 store', () => {
  let s3: TestS3Target;
  let session: TestSession;
  before(async () => {
    s3 = await useTestS3('run');
    session = await testSession({ storeUrl: s3.storeUrl() });
  });
  after(async () => {
    await session.dispose();
    await s3.close();
  });

  it('runs, caches, traces lineage down to the dataset files and verifies', async () => {
    const { runId } = await startRun(session, plan(pipeline));
    const { summary } = await waitForRun(session, runId);
    assert.equal(
      summary?.status,
      'completed',
      JSON.stringify(summary?.steps.map((s) => [s.label, s.status, s.error])),
    );
    assert.equal(summary.counts.done, 6);
    for (const s of summary.steps) {
      for (const o of Object.values(s.outputs ?? {})) if (isArtifactRef(o)) assert.match(o.uri, /^s3:\/\//);
    }

    // Both splits read the dataset's annotations in place, from the worker's input cache: one entry,
    // downloaded once, and no longer held once the steps ended.
    const train = summary.steps.find((s) => s.label === 'data')!.outputs!.train;
    assert.ok(isArtifactRef(train));
    const cache = session.config.workerCacheDir;
    assert.deepEqual(await readdir(join(cache, 'entries')), [`${train.digest.slice(7)}.file`]);
    assert.deepEqual(await readdir(join(cache, 'pins')), []);

    const again = await startRun(session, plan(pipeline));
    assert.equal((await waitForRun(session, again.runId)).summary?.counts.cached, 6);

    const graph = await lineageOf(session.store, `${runId}/report`);
    const split = Object.values(graph.nodes).find((n) => n.label === 'split[subset=8]')!;
    const data = graph.nodes[split.parents[0]!]!;
    assert.equal(data.kind, 'dataset.synth');
    const text = lineageText(graph);
    // The dataset's image directory is reached through the split's annotations; the tree lists its files.
    assert.match(text, /dataset\.synth v1/);
    assert.match(text, /in {2}\/annotations: s3:\/\//);

    const digestGraph = await lineageOf(session.store, runId);
    assert.equal(Object.keys(digestGraph.nodes).length, 6);
    const { problems, checked } = await verifyRun(session.store, runId);
    assert.deepEqual(problems, []);
    assert.ok(checked >= 10);
  });
});
