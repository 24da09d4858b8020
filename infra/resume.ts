/**
 * `ablate resume RUN_ID`: restart a run that ended failed, cancelled or terminated (or whose server
 * lost it mid-run), as a new execution of the same workflow id and plan. Every step that finished in
 * the run (it has a step record) counts as done and is not run again, whatever its kind; every other
 * step runs, and a training step continues from the newest good checkpoint of its configuration
 * (activities/runtime/checkpoint-index.ts).
 */
import { recordKeys, type RunSummary, type StepRecord } from '../activities/runtime/run-records';
import { seedRunState } from '../activities/runtime/run-scheduler';
import type { PipelineRunInput } from '../workflows/pipeline-run';
import type { Plan } from '../workflows/plan-types';
import { AblateError, ErrorType } from './errors';
import { readMemo } from './runs';
import type { Session } from './session';
import { workflowTaskQueue } from './task-queues';

export interface ResumeResult {
  runId: string;
  /** Steps reused from the earlier execution. */
  reused: number;
  /** Steps that run (again). */
  toRun: number;
  /** How the earlier execution ended: the run's status, or Temporal's when it wrote no summary. */
  previousStatus: string;
}

/** Start `runId` again, reusing its completed steps. Throws when it is still running or completed. */
export async function resumeRun(
  session: Session,
  runId: string,
  options: { maxParallel?: number; noCache?: boolean } = {},
): Promise<ResumeResult> {
  const { memo, status, description } = await readMemo(session, runId);
  if (status === 'RUNNING') {
    throw new AblateError(
      ErrorType.InvalidInput,
      `run ${runId} is still running: follow it with \`ablate status ${runId} --watch\`, or stop it with \`ablate cancel ${runId}\` first`,
    );
  }
  // A run with failed steps still ends its workflow normally: ablate's summary says how it went.
  const summary = await session.store.getRecord<RunSummary>(recordKeys.summary(runId));
  if (summary?.status === 'completed') {
    throw new AblateError(ErrorType.InvalidInput, `run ${runId} completed: there is nothing to resume`);
  }
  const plan = await session.store.getJson<Plan>(memo.planRef);
  const finished = new Map<string, StepRecord['status']>();
  for (const key of await session.store.listRecords(recordKeys.steps(runId))) {
    const record = await session.store.getRecord<StepRecord>(key);
    if (record && (record.status === 'done' || record.status === 'cached'))
      finished.set(record.key, record.status);
  }
  // The new execution's scheduler starts from these statuses: finished steps stay done, the rest run.
  await seedRunState(
    session.store,
    runId,
    memo.planRef,
    plan.steps.map((s) => finished.get(s.key) ?? 'pending'),
  );
  const input: PipelineRunInput = {
    runId,
    pipelineName: plan.pipeline.name,
    planRef: memo.planRef,
    taskQueuePrefix: session.config.taskQueuePrefix,
    maxParallel: options.maxParallel ?? session.config.maxParallel,
    noCache: options.noCache ?? false,
  };
  // A closed workflow id may be started again (Temporal's default reuse policy): `ablate status RUN_ID`
  // then shows the new execution, and the step records of the old one are where binding finds outputs.
  await session.client.workflow.start('pipelineRun', {
    taskQueue: workflowTaskQueue(session.config.taskQueuePrefix),
    workflowId: runId,
    args: [input],
    memo: { ...memo, resumedExecution: description.runId },
  });
  return {
    runId,
    reused: finished.size,
    toRun: plan.steps.length - finished.size,
    previousStatus: summary?.status ?? status.toLowerCase(),
  };
}
