/**
 * Plans of any size on a real Temporal dev server: a 20,000-step plan of trivial steps runs to the end
 * within Temporal's limits, and continue-as-new goes on scheduling while a long step is still running.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { recordKeys, type StepRecord } from '../../activities/runtime/run-records';
import { compilePipeline } from '../../infra/compiler/compile';
import { getRunView, listRuns, startRun, waitForRun } from '../../infra/runs';
import { openSession, type Session } from '../../infra/session';
import { QUEUES } from '../../infra/task-queues';
import { resolveConfig } from '../../temporal.config';
import { testTemporalAddress } from '../helpers/temporal';

/** Temporal's limits per execution (and the payload size at which the server warns). */
const MAX_EVENTS = 51_200;
const PAYLOAD_WARN_BYTES = 512 * 1024;

describe('plans of any size', () => {
  let session: Session;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-test-scale-'));
    // More worker slots than the shared test helper's 4: trivial steps are bound by dispatch, not work.
    const config = resolveConfig(
      {
        home: dir,
        temporalAddress: await testTemporalAddress(),
        storeUrl: pathToFileURL(join(dir, 'artifacts')).href,
        taskQueuePrefix: `t-${randomBytes(4).toString('hex')}`,
        workerSlots: 32,
      },
      {},
    );
    session = await openSession(config, { workers: { queues: QUEUES, workflows: true } });
  });
  after(async () => {
    await session.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('continues as new while a long step runs, and keeps scheduling new steps meanwhile', async () => {
    const steps: Record<string, unknown> = {
      slow: { uses: 'util.noop', with: { tag: 'slow', sleepMs: 30_000 } },
    };
    for (let i = 0; i < 12; i++)
      steps[`s${i}`] = { uses: 'util.noop', with: { tag: i }, ...(i > 0 ? { needs: [`s${i - 1}`] } : {}) };
    steps.last = { uses: 'util.noop', needs: ['slow', 's11'] };
    const plan = compilePipeline(JSON.stringify({ name: 'long-step', steps }), { file: 'test.json' });
    const startedAt = Date.now();
    const { runId } = await startRun(session, plan, { maxHistoryEvents: 30 });
    // While the slow step runs, the status view shows it running, from the scheduler's records.
    let seenRunning = false;
    for (let i = 0; i < 100 && !seenRunning; i++) {
      const view = await getRunView(session, runId);
      seenRunning = view.steps.find((s) => s.label === 'slow')?.status === 'running';
      if (!seenRunning) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(seenRunning, 'the slow step never showed as running');
    // Later generations are new executions: the view and `ablate runs` still give the run's own start,
    // and list the run once.
    await new Promise((r) => setTimeout(r, 3000));
    const view = await getRunView(session, runId);
    assert.ok((view.generation ?? 0) >= 2, `generation ${view.generation}`);
    assert.ok(
      Math.abs(view.startedAt!.getTime() - startedAt) < 2000,
      `view started ${view.startedAt?.toISOString()}, run started ${new Date(startedAt).toISOString()}`,
    );
    const listed = (await listRuns(session, { limit: 100 })).filter((r) => r.runId === runId);
    assert.equal(listed.length, 1, `listed ${listed.length} times`);
    assert.ok(Math.abs(listed[0]!.startedAt.getTime() - startedAt) < 2000);
    const { summary } = await waitForRun(session, runId);
    assert.equal(summary?.status, 'completed');
    assert.equal(summary.counts.done, 14);
    assert.ok(summary.generations >= 3, `generations: ${summary.generations}`);
    const record = (label: string) => {
      const key = plan.steps.find((s) => s.label === label)!.key;
      return session.store.getRecord<StepRecord>(recordKeys.step(runId, key));
    };
    const slow = (await record('slow'))!;
    // The slow step ran once, on its first attempt, across the generations (not restarted by one).
    assert.equal(slow.attempt, 1);
    assert.ok(slow.durationMs < 30_000 + 15_000, `slow took ${slow.durationMs} ms`);
    // A generation of at most ~30 events starts at most a few steps, so steps finishing before the
    // slow one ended were scheduled by later generations: scheduling did not wait for it to drain.
    const chainEnds = await Promise.all(Array.from({ length: 12 }, (_, i) => record(`s${i}`)));
    const during = chainEnds.filter((r) => r!.endedAt < slow.endedAt).length;
    assert.ok(during >= 8, `${during} of 12 chained steps finished while the slow step ran`);
    const last = (await record('last'))!;
    assert.ok(last.startedAt >= slow.endedAt, 'last started before the slow step it needs ended');
  });

  it('runs a 20,000-step plan of trivial steps to the end, every execution within Temporal limits', async () => {
    const cells = 10_000;
    const doc = {
      name: 'scale-20k',
      grid: { i: Array.from({ length: cells }, (_, i) => i) },
      steps: {
        first: { uses: 'util.noop', with: { tag: '${grid.i}' } },
        second: { uses: 'util.noop', needs: ['first'], with: { tag: '${grid.i}' } },
      },
    };
    const plan = compilePipeline(JSON.stringify(doc), { file: 'scale.json' });
    assert.equal(plan.steps.length, 20_000);
    const { runId } = await startRun(session, plan, { noCache: true, maxParallel: 256 });
    const { status, summary } = await waitForRun(session, runId);
    assert.equal(status, 'COMPLETED');
    assert.equal(summary?.status, 'completed');
    assert.equal(summary.counts.done, 20_000);
    assert.equal(summary.cells.filter((c) => c.status === 'completed').length, cells);
    // Every execution of the run (its generations and its step batches) stayed far from the limits.
    let executions = 0;
    let maxEvents = 0;
    let maxPayload = 0;
    const query = `WorkflowId = "${runId}" OR WorkflowType = "stepBatch"`;
    for await (const wf of session.client.workflow.list({ query })) {
      if (wf.workflowId !== runId && !wf.workflowId.startsWith(`${runId}/`)) continue;
      executions++;
      maxEvents = Math.max(maxEvents, wf.historyLength);
      if (wf.workflowId === runId) {
        const history = await session.client.workflow.getHandle(runId, wf.runId).fetchHistory();
        for (const e of history.events ?? []) {
          const attrs = [
            e.activityTaskCompletedEventAttributes?.result,
            e.startChildWorkflowExecutionInitiatedEventAttributes?.input,
            e.workflowExecutionStartedEventAttributes?.input,
            e.workflowExecutionSignaledEventAttributes?.input,
          ];
          for (const p of attrs.flatMap((a) => a?.payloads ?? []))
            maxPayload = Math.max(maxPayload, p.data?.length ?? 0);
        }
      }
    }
    assert.ok(executions > 1, `executions: ${executions}`);
    assert.ok(maxEvents < MAX_EVENTS / 4, `largest history: ${maxEvents} events`);
    assert.ok(maxPayload < PAYLOAD_WARN_BYTES, `largest payload: ${maxPayload} bytes`);
  });
});
