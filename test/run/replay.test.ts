/**
 * Replays recorded histories (test/histories/*.binpb, made by scripts/record-histories.ts) against the
 * current workflow code: a change to workflows/ that would break running workflows fails here.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { DeterminismViolationError } from '@temporalio/workflow';
import proto from '@temporalio/proto';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

import { installRuntime, workflowBundle } from '../../infra/workers';

const DIR = join(import.meta.dirname, '..', 'histories');
const { EventType } = proto.temporal.api.enums.v1;
type History = proto.temporal.api.history.v1.History;

async function loadHistory(name: string): Promise<History> {
  return proto.temporal.api.history.v1.History.decode(await readFile(join(DIR, `${name}.binpb`)));
}

/** The history's event types, by name without the EVENT_TYPE_ prefix. */
function eventTypes(history: History): string[] {
  return history.events.map((e) => EventType[e.eventType!].replace(/^EVENT_TYPE_/, ''));
}

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
      'batch-cancelled.binpb',
      'batch-failing.binpb',
      'cancelled.binpb',
      'continued-as-new-first.binpb',
      'continued-as-new-last.binpb',
      'failing-with-skips.binpb',
      'scheduled-pipeline-run.binpb',
      'scheduled-run.binpb',
      'smoke-completed.binpb',
    ]);
    // Each file really covers its path: a re-recording that lost the path would replay fine and prove
    // nothing. A run's steps are activities of its step batches (child workflows that report outcomes by
    // signal), so step failures and cancellations show in the batch histories.
    const run = ['START_CHILD_WORKFLOW_EXECUTION_INITIATED', 'WORKFLOW_EXECUTION_SIGNALED'];
    const paths: Record<string, { last: string; activities: number; has: string[]; hasNot?: string[] }> = {
      'smoke-completed': { last: 'WORKFLOW_EXECUTION_COMPLETED', activities: 4, has: run },
      'failing-with-skips': { last: 'WORKFLOW_EXECUTION_COMPLETED', activities: 4, has: run },
      'batch-failing': {
        last: 'WORKFLOW_EXECUTION_COMPLETED',
        activities: 2,
        has: ['ACTIVITY_TASK_FAILED', 'SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED'],
      },
      cancelled: {
        last: 'WORKFLOW_EXECUTION_CANCELED',
        activities: 2,
        has: ['WORKFLOW_EXECUTION_CANCEL_REQUESTED', 'REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED'],
      },
      'batch-cancelled': {
        last: 'WORKFLOW_EXECUTION_COMPLETED',
        activities: 2,
        has: [
          'WORKFLOW_EXECUTION_CANCEL_REQUESTED',
          'ACTIVITY_TASK_CANCEL_REQUESTED',
          'ACTIVITY_TASK_CANCELED',
        ],
        hasNot: ['ACTIVITY_TASK_COMPLETED'],
      },
      'continued-as-new-first': { last: 'WORKFLOW_EXECUTION_CONTINUED_AS_NEW', activities: 2, has: run },
      'continued-as-new-last': { last: 'WORKFLOW_EXECUTION_COMPLETED', activities: 2, has: [] },
      'scheduled-run': {
        last: 'WORKFLOW_EXECUTION_COMPLETED',
        activities: 1,
        has: ['START_CHILD_WORKFLOW_EXECUTION_INITIATED', 'UPSERT_WORKFLOW_SEARCH_ATTRIBUTES'],
      },
      'scheduled-pipeline-run': { last: 'WORKFLOW_EXECUTION_COMPLETED', activities: 2, has: run },
    };
    for (const [name, path] of Object.entries(paths)) {
      const history = await loadHistory(name);
      const types = eventTypes(history);
      assert.equal(types.at(-1), path.last, name);
      const scheduled = types.filter((t) => t === 'ACTIVITY_TASK_SCHEDULED').length;
      assert.ok(scheduled >= path.activities, `${name}: ${scheduled} activities`);
      for (const t of path.has) assert.ok(types.includes(t), `${name} has no ${t}`);
      for (const t of path.hasNot ?? []) assert.ok(!types.includes(t), `${name} has ${t}`);
    }
    const last = (await loadHistory('continued-as-new-last')).events[0]!
      .workflowExecutionStartedEventAttributes!;
    assert.ok(last.continuedExecutionRunId, 'continued-as-new-last does not continue an earlier run');
  });

  it('fails the replay of a history the code would not reproduce', async () => {
    const history = await loadHistory('smoke-completed');
    const scheduled = history.events.find((e) => e.activityTaskScheduledEventAttributes)!;
    scheduled.activityTaskScheduledEventAttributes!.activityType = { name: 'notAnAblateActivity' };
    await assert.rejects(
      Worker.runReplayHistory({ workflowBundle: bundle }, history, 'tampered'),
      (err: unknown) => err instanceof DeterminismViolationError,
    );
  });

  for (const name of [
    'smoke-completed',
    'failing-with-skips',
    'cancelled',
    'continued-as-new-first',
    'continued-as-new-last',
    'batch-failing',
    'batch-cancelled',
    'scheduled-run',
    'scheduled-pipeline-run',
  ]) {
    it(`replays ${name} deterministically`, async () => {
      const history = await loadHistory(name);
      await Worker.runReplayHistory({ workflowBundle: bundle }, history, name);
    });
  }
});
