/**
 * `ablate schedule` against the real dev server: a schedule with a 2 s interval fires and its runs
 * complete; pause stops the firing and unpause resumes it; trigger and backfill start runs; apply is
 * idempotent; a schedule runs the content pinned when it was created, not the edited file; delete.
 * In-process workers on this file's own task queues play `ablate server start`. Sub-commands that are
 * a single library call (pause, unpause, backfill) are called in-process where the CLI adds nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import type { RunSummary } from '../../activities/runtime/run-records';
import { compilePipeline } from '../../infra/compiler/compile';
import { setBaseline } from '../../infra/drift/index';
import { listRuns, type RunEntry } from '../../infra/runs';
import { controlSchedule, describeSchedule, listSchedules, upsertSchedule } from '../../infra/schedules';
import { ablate, type CliResult } from '../helpers/cli';
import { testSession, type TestSession } from '../helpers/temporal';

const tag = randomBytes(3).toString('hex');

describe('ablate schedule (real dev server)', () => {
  let session: TestSession;
  let flags: string[];
  const cli = (...args: string[]): Promise<CliResult> => ablate([...args, ...flags], { timeoutMs: 60_000 });
  const file = (name: string) => join(session.dir, name);
  const pipeline = (name: string, text: string, schedule?: object) => ({
    name,
    steps: { w: { uses: 'util.write', with: { text } } },
    ...(schedule ? { schedule } : {}),
  });

  /** Runs of a schedule, newest first, once `count` of them have ended (or fail after `timeoutMs`). */
  // 60 s: under the full suite (two test files at once on 2 cores) a scheduled run once took over 30.
  async function endedRuns(schedule: string, count: number, timeoutMs = 60_000): Promise<RunEntry[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // A scheduled run is over once its scheduledRun has recorded the verdict in the summary (after the
      // pipeline run itself ended).
      const ended = (await listRuns(session, { schedule, limit: 100 })).filter((r) => r.endedAt);
      const runs: RunEntry[] = [];
      for (const r of ended) {
        const summary = await session.store.getRecord<RunSummary>(`runs/${r.runId}/summary`);
        if (summary?.drift) runs.push(r);
      }
      if (runs.length >= count) return runs;
      if (Date.now() > deadline) assert.fail(`only ${runs.length} of ${count} runs of ${schedule} ended`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  /** Workflows a schedule has started so far (running or not). */
  async function firings(schedule: string): Promise<number> {
    return (
      await session.client.workflow.count(`WorkflowType = "scheduledRun" AND AblateSchedule = "${schedule}"`)
    ).count;
  }

  /** What `ablate schedule create NAME FILE --every MS` does, in-process. */
  async function createSchedule(name: string, doc: object, everyMs: number): Promise<void> {
    const text = JSON.stringify(doc);
    await upsertSchedule(session, {
      file: file(`${name}.json`),
      sourceText: text,
      plan: compilePipeline(text),
      def: { name, everyMs },
      mode: 'create',
    });
  }

  before(async () => {
    session = await testSession();
    flags = [
      '--address',
      session.address,
      '--task-queue-prefix',
      session.config.taskQueuePrefix,
      '--store',
      session.config.storeUrl,
    ];
  });
  after(() => session.dispose());

  it('fires every 2 s; runs complete and are listed; pause stops, unpause resumes; trigger; delete', async () => {
    const name = `every2s-${tag}`;
    await writeFile(file('every.json'), JSON.stringify(pipeline(`sched-${tag}`, 'tick\n')));
    const created = await cli('schedule', 'create', name, file('every.json'), '--every', '2s');
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, new RegExp(`schedule ${name} created \\(pipeline sched-${tag}\\)`));

    const list = await cli('schedule', 'list', '--json');
    assert.equal(list.code, 0, list.stderr);
    const entry = (JSON.parse(list.stdout) as Array<Record<string, unknown>>).find((s) => s.name === name);
    assert.ok(entry, list.stdout);
    assert.deepEqual(Object.keys(entry).sort(), ['name', 'nextActionTimes', 'paused', 'pipeline', 'spec']);
    assert.deepEqual(entry.spec, { every: '2s', timezone: 'UTC' });
    assert.equal(entry.paused, false);
    assert.equal(entry.pipeline, `sched-${tag}`);
    assert.ok((entry.nextActionTimes as string[]).length > 0);

    const runs = await endedRuns(name, 2);
    for (const r of runs) {
      assert.equal(r.status, 'completed');
      assert.equal(r.schedule, name);
      assert.equal(r.pipeline, `sched-${tag}`);
      const summary = await session.store.getRecord<RunSummary>(`runs/${r.runId}/summary`);
      assert.equal(summary?.schedule, name);
      // No baseline is pinned for this pipeline: nothing to compare with, and the summary says so.
      assert.equal(summary?.drift?.verdict, 'no-baseline');
    }
    // The schedule keeps firing: newer runs may still be running, hence --status.
    const json = await cli('runs', '--schedule', name, '--status', 'completed', '--json', '--limit', '2');
    assert.equal(json.code, 0, json.stderr);
    const listed = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    assert.equal(listed.length, 2);
    for (const l of listed) {
      assert.equal(l.schedule, name);
      assert.equal(l.status, 'completed');
      assert.ok(typeof l.runId === 'string' && l.runId.startsWith(`sched-${tag}-`));
    }
    assert.ok(String(listed[0]!.startedAt) >= String(listed[1]!.startedAt), 'newest first');

    // The other sub-commands are one library call each; called in-process to keep this file fast.
    await controlSchedule(session, name, { type: 'pause' });
    assert.equal((await listSchedules(session)).find((s) => s.name === name)?.paused, true);
    const atPause = await firings(name);
    await new Promise((r) => setTimeout(r, 5000));
    assert.equal(await firings(name), atPause, 'a paused schedule does not fire');

    await controlSchedule(session, name, { type: 'trigger' });
    const deadline = Date.now() + 15_000;
    while ((await firings(name)) !== atPause + 1) {
      assert.ok(Date.now() < deadline, 'the trigger started one run');
      await new Promise((r) => setTimeout(r, 300));
    }

    await controlSchedule(session, name, { type: 'unpause' });
    const resumed = Date.now() + 15_000;
    while ((await firings(name)) < atPause + 2) {
      assert.ok(Date.now() < resumed, 'an unpaused schedule fires again');
      await new Promise((r) => setTimeout(r, 300));
    }

    await controlSchedule(session, name, { type: 'delete' });
    const gone = await cli('schedule', 'describe', name);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, new RegExp(`no schedule "${name}" in namespace default`));
    assert.ok((await listRuns(session, { schedule: name, limit: 100 })).length >= 3);
  });

  it('backfills the runs of a past range, one per scheduled instant', async () => {
    const name = `backfill-${tag}`;
    // Hourly: nothing fires during the test; the backfill alone starts runs.
    await createSchedule(name, pipeline(`backfill-${tag}`, 'past\n'), 3_600_000);
    const from = new Date('2026-01-01T00:00:00Z');
    const to = new Date('2026-01-01T03:30:00Z');
    const res = await cli(
      'schedule',
      'backfill',
      name,
      '--from',
      from.toISOString(),
      '--to',
      to.toISOString(),
    );
    assert.equal(res.code, 0, res.stderr);
    // Instants 00:00? (range start is exclusive in Temporal), 01:00, 02:00, 03:00.
    const runs = await endedRuns(name, 3);
    const { count } = await session.client.workflow.count(
      `WorkflowType = "scheduledRun" AND AblateSchedule = "${name}"`,
    );
    assert.ok(count === 3 || count === 4, `backfill started ${count} runs`);
    assert.ok(runs.every((r) => r.status === 'completed'));
    const view = await describeSchedule(session, name);
    for (const a of view.recentActions) {
      const at = a.scheduledAt;
      assert.ok(at >= from && at <= to, `backfilled instant ${at.toISOString()} lies in the range`);
    }
    assert.ok(view.recentActions.some((a) => a.runId && runs.some((r) => r.runId === a.runId)));
    await controlSchedule(session, name, { type: 'delete' });
  });

  it('runs the content pinned at create time, not the edited file', async () => {
    const name = `pinned-${tag}`;
    const path = file('pinned.json');
    await writeFile(path, JSON.stringify(pipeline(`pinned-${tag}`, 'version one\n')));
    assert.equal((await cli('schedule', 'create', name, path, '--every', '1h')).code, 0);
    await writeFile(path, JSON.stringify(pipeline(`pinned-${tag}`, 'version two\n')));
    const trigger = await cli('schedule', 'trigger', name);
    assert.equal(trigger.code, 0, trigger.stderr);
    const [run] = await endedRuns(name, 1);
    const summary = await session.store.getRecord<RunSummary>(`runs/${run!.runId}/summary`);
    assert.equal(summary!.steps.length, 1);
    const out = summary!.steps[0]!.outputs!.file as { digest: string };
    assert.equal((await session.store.getBytes(out.digest)).toString(), 'version one\n');
    const del = await cli('schedule', 'delete', name);
    assert.equal(del.code, 0, del.stderr);
    assert.match(del.stdout, /deleted \(runs it started stay\)/);
  });

  it("records each run's verdict against the baseline; runs --drifted finds the drifted one", async () => {
    const name = `verdict-${tag}`;
    const pipelineName = `verdict-${tag}`;
    const notified = file('notified.json');
    const doc = (text: string) => ({
      name: pipelineName,
      steps: {
        w: { uses: 'util.write', with: { text } },
        h: { uses: 'util.hash', with: { inputs: ['${steps.w.outputs.file}'], algorithm: 'sha256' } },
      },
    });
    const upsert = async (text: string, mode: 'create' | 'apply') => {
      const sourceText = JSON.stringify(doc(text));
      await upsertSchedule(session, {
        file: file(`${name}.json`),
        sourceText,
        plan: compilePipeline(sourceText),
        def: { name, everyMs: 3_600_000, notify: { command: `cat > ${JSON.stringify(notified)}` } },
        mode,
      });
    };
    const fire = async (n: number) => {
      await controlSchedule(session, name, { type: 'trigger' });
      const runs = await endedRuns(name, n);
      const summary = await session.store.getRecord<RunSummary>(`runs/${runs[0]!.runId}/summary`);
      // The verdict is written after the run ends; wait for it.
      const deadline = Date.now() + 30_000;
      let s = summary;
      while (!s?.drift) {
        assert.ok(Date.now() < deadline, 'the verdict is recorded');
        await new Promise((r) => setTimeout(r, 300));
        s = await session.store.getRecord<RunSummary>(`runs/${runs[0]!.runId}/summary`);
      }
      return { runId: runs[0]!.runId, drift: s.drift };
    };
    await upsert('same\n', 'create');
    const first = await fire(1);
    assert.equal(first.drift.verdict, 'no-baseline');
    await setBaseline(session.store, { runId: first.runId });
    const second = await fire(2);
    assert.equal(second.drift.verdict, 'ok');
    assert.equal(second.drift.baselineRunId, first.runId);
    // Neither "no-baseline" nor "ok" is announced.
    await assert.rejects(readFile(notified));
    await upsert('changed\n', 'apply');
    const third = await fire(3);
    assert.equal(third.drift.verdict, 'drifted');
    assert.match(third.drift.detail!, /^drift in 1 of 1 cell: .*hex/);
    assert.ok(third.drift.report && (await session.store.has(third.drift.report.digest)));
    // The notifier runs just after the verdict is recorded: wait for its whole payload.
    let payload: Record<string, unknown> | undefined;
    for (const deadline = Date.now() + 30_000; !payload; await new Promise((r) => setTimeout(r, 200))) {
      assert.ok(Date.now() < deadline, 'the drift is announced');
      payload = await readFile(notified, 'utf8')
        .then((t) => JSON.parse(t) as Record<string, unknown>)
        .catch(() => undefined);
    }
    assert.equal(payload.event, 'drift');
    assert.equal(payload.runId, third.runId);
    assert.equal(payload.schedule, name);
    assert.equal(payload.verdict, third.drift.detail);

    const drifted = await cli('runs', '--drifted', '--pipeline', pipelineName, '--json');
    assert.equal(drifted.code, 0, drifted.stderr);
    assert.deepEqual(
      (JSON.parse(drifted.stdout) as Array<{ runId: string; verdict: string; schedule: string }>).map((r) => [
        r.runId,
        r.verdict,
        r.schedule,
      ]),
      [[third.runId, 'drifted', name]],
    );
    await controlSchedule(session, name, { type: 'delete' });
  });

  it('apply creates, then says unchanged, then updates the schedule declared in the file', async () => {
    const name = `applied-${tag}`;
    const path = file('applied.json');
    await writeFile(
      path,
      JSON.stringify(
        pipeline(`applied-${tag}`, 'x\n', { name, cron: '0 2 * * *', timezone: 'Europe/Paris' }),
      ),
    );
    const first = await cli('schedule', 'apply', path);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`schedule ${name} created`));
    const again = await cli('schedule', 'apply', path);
    assert.match(again.stdout, new RegExp(`schedule ${name} unchanged`));
    await writeFile(
      path,
      JSON.stringify(
        pipeline(`applied-${tag}`, 'x\n', { name, cron: '30 3 * * 1', timezone: 'Europe/Paris' }),
      ),
    );
    const changed = await cli('schedule', 'apply', path);
    assert.match(changed.stdout, new RegExp(`schedule ${name} updated`));
    const view = await describeSchedule(session, name);
    assert.deepEqual(view.spec, { cron: '30 3 * * 1', timezone: 'Europe/Paris' });
    // 03:30 in Paris is 02:30 UTC in winter, on a Monday.
    const next = view.nextActionTimes[0]!;
    assert.equal(next.getUTCDay(), 1);
    assert.equal(`${next.getUTCHours()}:${next.getUTCMinutes()}`, '2:30');
    const twice = await cli('schedule', 'create', name, path, '--cron', '0 1 * * *');
    assert.equal(twice.code, 1);
    assert.match(
      twice.stderr,
      new RegExp(`schedule "${name}" already exists .*\`ablate schedule apply FILE\` updates it`),
    );
    await controlSchedule(session, name, { type: 'delete' });
  });

  it('rejects bad timing with the flag named, and says when no worker will run the schedule', async () => {
    await writeFile(file('plain.json'), JSON.stringify(pipeline(`plain-${tag}`, 'y\n')));
    const bad = await cli(
      'schedule',
      'create',
      `bad-${tag}`,
      file('plain.json'),
      '--cron',
      '0 2 * *',
      '--timezone',
      'Europe/Pari',
    );
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /--cron: a cron expression has 5 fields \(minute hour day-of-month month day-of-week\), found 4 in "0 2 \* \*"/,
    );
    assert.match(
      bad.stderr,
      /--timezone: unknown time zone "Europe\/Pari" \(did you mean "Europe\/Paris"\?\)/,
    );
    const neither = await cli('schedule', 'create', `bad-${tag}`, file('plain.json'));
    assert.equal(neither.code, 2);
    assert.match(neither.stderr, /needs --cron \(e\.g\. "0 2 \* \* \*"\) or --every/);
    const noBlock = await cli('schedule', 'apply', file('plain.json'));
    assert.equal(noBlock.code, 2);
    assert.match(noBlock.stderr, /has no "schedule" block/);

    // A queue nobody polls: the schedule is created, with a note saying runs will wait.
    const name = `idle-${tag}`;
    const idle = await ablate(
      [
        'schedule',
        'create',
        name,
        file('plain.json'),
        '--every',
        '1h',
        ...flags.slice(0, 2),
        '--task-queue-prefix',
        `idle-${tag}`,
        ...flags.slice(4),
      ],
      { timeoutMs: 60_000 },
    );
    assert.equal(idle.code, 0, idle.stderr);
    assert.match(
      idle.stderr,
      new RegExp(
        `note: no worker polls task queue idle-${tag}-cpu now; runs will wait until \`ablate worker\` serves it`,
      ),
    );
    await controlSchedule(session, name, { type: 'delete' });
  });
});
