/**
 * Schedule latency on the embedded server: how long after a schedule's scheduled instant its run
 * starts. A schedule fires every 2 s (`--every-s`) running a one-step pipeline; for each of the first
 * `--firings` firings we read, from the schedule's recent actions and the workflows: the scheduled
 * instant, when Temporal took the action, when the `scheduledRun` workflow started, and when its
 * `pipelineRun` (the run people see) started.
 *
 *   npm run bench -- schedule [--json] [--firings N] [--every-s S]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { compilePipeline } from '../infra/compiler/compile';
import { controlSchedule, describeSchedule, upsertSchedule } from '../infra/schedules';
import { openSession } from '../infra/session';
import { QUEUES } from '../infra/task-queues';
import { resolveConfig } from '../temporal.config';
import { argValue, median, report } from './_util';

const firings = Number(argValue('firings') ?? 8);
const everyS = Number(argValue('every-s') ?? 2);

const home = await mkdtemp(join(tmpdir(), 'ablate-bench-schedule-'));
const config = resolveConfig({ home, storeUrl: pathToFileURL(join(home, 'artifacts')).href }, {});
const session = await openSession(config, { workers: { queues: QUEUES, workflows: true } });
const name = 'bench-latency';
try {
  const text = JSON.stringify({ name: 'bench-schedule', steps: { a: { uses: 'util.noop' } } });
  await upsertSchedule(session, {
    file: 'bench-schedule.json',
    sourceText: text,
    plan: compilePipeline(text),
    def: { name, everyMs: everyS * 1000 },
    mode: 'create',
  });
  const deadline = Date.now() + (firings * everyS + 120) * 1000;
  let view = await describeSchedule(session, name);
  while (view.recentActions.filter((a) => a.runId).length < firings) {
    if (Date.now() > deadline) throw new Error(`only ${view.recentActions.length} firings in time`);
    await new Promise((r) => setTimeout(r, 1000));
    view = await describeSchedule(session, name);
  }
  await controlSchedule(session, name, { type: 'pause' });
  const toAction: number[] = [];
  const toWorkflow: number[] = [];
  const toRun: number[] = [];
  for (const a of view.recentActions.filter((x) => x.runId).slice(0, firings)) {
    const due = a.scheduledAt.getTime();
    const parent = await session.client.workflow.getHandle(a.workflowId).describe();
    const run = await session.client.workflow.getHandle(a.runId!).describe();
    toAction.push(a.takenAt.getTime() - due);
    toWorkflow.push(parent.startTime.getTime() - due);
    toRun.push(run.startTime.getTime() - due);
  }
  report(
    `schedule latency over ${toRun.length} firings, every ${everyS} s (ms after the scheduled instant)`,
    {
      firings: toRun.length,
      actionTakenMsMedian: median(toAction),
      scheduledRunStartMsMedian: median(toWorkflow),
      runStartMsMedian: median(toRun),
      runStartMsMax: Math.max(...toRun),
    },
  );
} finally {
  await controlSchedule(session, name, { type: 'delete' }).catch(() => undefined);
  await session.close();
  await rm(home, { recursive: true, force: true });
}
