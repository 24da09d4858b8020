/**
 * Replays recorded histories (test/histories/*.binpb, made by scripts/record-histories.ts) against the
 * current workflow code: a change to workflows/ that would break running workflows fails here.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import proto from '@temporalio/proto';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

import { installRuntime, workflowBundle } from '../../infra/workers';

const DIR = join(import.meta.dirname, '..', 'histories');

describe('workflow replay of recorded histories', () => {
  let cacheDir: string;
  let bundle: WorkflowBundleWithSourceMap;
  before(async () => {
    installRuntime();
    cacheDir = await mkdtemp(join(tmpdir(), 'ablate-replay-'));
    bundle = await workflowBundle(cacheDir);
  });
  after(() => rm(cacheDir, { recursive: true, force: true }));

  it('has histories for every path of the workflow', async () => {
    const files = (await readdir(DIR)).filter((f) => f.endsWith('.binpb')).sort();
    assert.deepEqual(files, [
      'cancelled.binpb',
      'continued-as-new-first.binpb',
      'continued-as-new-last.binpb',
      'failing-with-skips.binpb',
      'scheduled-pipeline-run.binpb',
      'scheduled-run.binpb',
      'smoke-completed.binpb',
    ]);
  });

  for (const name of [
    'smoke-completed',
    'failing-with-skips',
    'cancelled',
    'continued-as-new-first',
    'continued-as-new-last',
    'scheduled-run',
    'scheduled-pipeline-run',
  ]) {
    it(`replays ${name} deterministically`, async () => {
      const history = proto.temporal.api.history.v1.History.decode(
        await readFile(join(DIR, `${name}.binpb`)),
      );
      await Worker.runReplayHistory({ workflowBundle: bundle }, history, name);
    });
  }
});
