/**
 * `ablate runs` reports ablate's outcome, not the workflow status: a completed run, a run with two
 * failed steps (its workflow completes), a cancelled run, and a detached one (running, but no worker
 * serves its task queue); filters, the --json shape, and `runs rm` (workflow and records go, the
 * artifacts stay).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import type { RunSummary } from '../../activities/runtime/run-records';
import { listRuns, startRun, waitForRun } from '../../infra/runs';
import { progressQuery } from '../../workflows/pipeline-run';
import { ablate, type CliResult } from '../helpers/cli';
import { plan, testSession, type TestSession } from '../helpers/temporal';

const tag = randomBytes(3).toString('hex');
const pipelineName = `runs-${tag}`;

describe('ablate runs (real dev server)', () => {
  let session: TestSession;
  let idle: TestSession;
  let flags: string[];
  const ids: Record<'completed' | 'failed' | 'cancelled' | 'detached', string> = {
    completed: '',
    failed: '',
    cancelled: '',
    detached: '',
  };
  const cli = (...args: string[]): Promise<CliResult> => ablate([...args, ...flags], { timeoutMs: 60_000 });

  before(async () => {
    session = await testSession();
    // Same server, a task queue prefix no worker serves: its runs are detached from the start.
    idle = await testSession({ workers: false, prefix: `idle-${tag}` });
    flags = [
      '--address',
      session.address,
      '--task-queue-prefix',
      session.config.taskQueuePrefix,
      '--store',
      session.config.storeUrl,
    ];
    const start = async (doc: object, s = session) =>
      (await startRun(s, plan({ name: pipelineName, ...doc }))).runId;

    ids.completed = await start({ steps: { w: { uses: 'util.write', with: { text: 'fine\n' } } } });
    assert.equal((await waitForRun(session, ids.completed)).summary?.status, 'completed');

    ids.failed = await start({
      steps: {
        w: { uses: 'util.write', with: { text: 'kept\n' } },
        a: { uses: 'util.fail', with: { message: 'first failure' } },
        b: { uses: 'util.fail', with: { message: 'second failure' } },
      },
    });
    const failed = await waitForRun(session, ids.failed);
    // The honesty this command is about: the workflow completed, the run failed.
    assert.equal(failed.status, 'COMPLETED');
    assert.equal(failed.summary?.status, 'failed');

    ids.cancelled = await start({
      steps: {
        slow: { uses: 'util.noop', with: { sleepMs: 2000 } },
        after: { uses: 'util.noop', needs: ['slow'] },
      },
    });
    const handle = session.client.workflow.getHandle(ids.cancelled);
    while ((await handle.query(progressQuery)).counts.running === 0)
      await new Promise((r) => setTimeout(r, 100));
    await handle.cancel();
    assert.equal((await waitForRun(session, ids.cancelled)).summary?.status, 'cancelled');

    ids.detached = await start({ steps: { w: { uses: 'util.write', with: { text: 'never\n' } } } }, idle);
  });

  after(async () => {
    await idle.client.workflow
      .getHandle(ids.detached)
      .terminate('test cleanup')
      .catch(() => undefined);
    await idle.dispose();
    await session.dispose();
  });

  it('lists each run with its outcome, newest first, in the --json shape scripts use', async () => {
    const res = await cli('runs', '--pipeline', pipelineName, '--json');
    assert.equal(res.code, 0, res.stderr);
    const runs = JSON.parse(res.stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(
      runs.map((r) => [r.runId, r.status]),
      [
        [ids.detached, 'detached'],
        [ids.cancelled, 'cancelled'],
        [ids.failed, 'failed'],
        [ids.completed, 'completed'],
      ],
    );
    for (const r of runs) {
      for (const key of ['runId', 'pipeline', 'status', 'startedAt', 'endedAt', 'counts'])
        assert.ok(key in r, `${key} in ${JSON.stringify(r)}`);
      assert.equal(r.pipeline, pipelineName);
      assert.ok(!Number.isNaN(Date.parse(String(r.startedAt))));
    }
    const byStatus = Object.fromEntries(runs.map((r) => [r.status, r])) as Record<
      string,
      { counts: Record<string, number> | null; endedAt: string | null; workflowStatus: string; note?: string }
    >;
    assert.deepEqual(
      { failed: byStatus.failed!.counts!.failed, done: byStatus.failed!.counts!.done },
      { failed: 2, done: 1 },
    );
    assert.equal(byStatus.failed!.workflowStatus, 'COMPLETED');
    assert.equal(byStatus.completed!.counts!.done, 1);
    assert.equal(byStatus.detached!.endedAt, null);
    assert.equal(byStatus.detached!.counts, null);
    assert.match(
      byStatus.detached!.note!,
      new RegExp(`no worker has polled task queue idle-${tag}-cpu for 90 s`),
    );
  });

  it('filters by status, start time and count; the table says how many steps failed', async () => {
    const failed = await cli('runs', '--pipeline', pipelineName, '--status', 'failed');
    assert.equal(failed.code, 0, failed.stderr);
    const lines = failed.stdout.trim().split('\n');
    assert.equal(lines.length, 2, failed.stdout); // header + one run
    assert.match(lines[1]!, new RegExp(`^${ids.failed}\\s+${pipelineName}\\s+failed \\(2 failed steps\\)`));

    const newest = await cli('runs', '--pipeline', pipelineName, '--limit', '1', '--json');
    assert.deepEqual(
      (JSON.parse(newest.stdout) as Array<{ runId: string }>).map((r) => r.runId),
      [ids.detached],
    );
    const later = await cli(
      'runs',
      '--pipeline',
      pipelineName,
      '--since',
      new Date(Date.now() + 60_000).toISOString(),
    );
    assert.equal(later.stdout.trim(), 'no runs match');

    const bad = await ablate(['runs', '--status', 'done']);
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /--status must be one of completed, failed, cancelled, running, detached, got "done"/,
    );
  });

  it('rm forgets a run (workflow and records) and keeps its artifacts; refuses a running one', async () => {
    const summary = await session.store.getRecord<RunSummary>(`runs/${ids.failed}/summary`);
    const kept = summary!.steps.find((s) => s.status === 'done')!.outputs!.file as { digest: string };

    const running = await cli('runs', 'rm', ids.detached);
    assert.equal(running.code, 1);
    assert.match(
      running.stderr,
      new RegExp(`run ${ids.detached} is still running; \`ablate cancel ${ids.detached}\` first`),
    );

    const rm = await cli('runs', 'rm', ids.failed);
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(
      rm.stdout,
      new RegExp(`forgot run ${ids.failed}: 1 workflow execution and \\d+ records deleted`),
    );
    assert.equal(await session.store.getRecord(`runs/${ids.failed}/summary`), undefined);
    assert.deepEqual(await session.store.listRecords(`runs/${ids.failed}/`), []);
    assert.ok(await session.store.has(kept.digest), 'the artifact stays');
    // Temporal deletes asynchronously; the run leaves the listing within seconds.
    const deadline = Date.now() + 20_000;
    while ((await listRuns(session, { pipeline: pipelineName })).some((r) => r.runId === ids.failed)) {
      assert.ok(Date.now() < deadline, 'the removed run left the listing');
      await new Promise((r) => setTimeout(r, 300));
    }
    const again = await cli('runs', 'rm', ids.failed);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`no run "${ids.failed}"`));
  });
});
