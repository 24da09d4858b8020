/**
 * `stepBatch`: runs a batch of a run's steps, each as one activity, and signals each outcome to the run's
 * workflow (`pipelineRun`, by workflow id: whichever generation of it is current).
 *
 * Why a child workflow: a step's activity belongs to the execution that scheduled it, and an execution
 * that continues as new loses its activities. Steps started by a batch (started with ParentClosePolicy
 * ABANDON) keep running while the run continues as new, and report to the new generation: the run never
 * waits for its running steps before continuing as new, which for the paper's 6x cells would be weeks.
 *
 * Failure modes it handles:
 * - a step fails (after its retries): reported as `failed` with the reason from the failure chain;
 * - a worker dies mid-step: the step's heartbeat times out and Temporal retries it (see
 *   activities/run-step.ts); nothing here changes;
 * - the batch is cancelled (the run was cancelled): its running steps are cancelled and waited for,
 *   each is reported `cancelled`, and the batch ends normally once everything is reported;
 * - the run has already ended when an outcome is signalled (it was cancelled and stopped waiting):
 *   the signal fails and is dropped; the run's summary already counts the step as cancelled.
 *
 * History: a batch holds at most MAX_BATCH steps (see workflows/pipeline-run.ts), i.e. about three
 * events per step plus one signal per flush, far below Temporal's 2,000 pending activities and 50k
 * events per execution.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineSignal,
  getExternalWorkflowHandle,
  isCancellation,
  proxyActivities,
  TimeoutFailure,
} from '@temporalio/workflow';

import type { StepActivities } from '../activities/index';
import type { StepProfile, StepToStart } from '../activities/runtime/run-scheduler';
import type { StepOutcome } from './dag';
import type { ArtifactRef } from './plan-types';

/** Outcomes of steps, from a batch to its run. */
export const stepsFinishedSignal = defineSignal<[StepOutcome[]]>('stepsFinished');

export interface StepBatchInput {
  /** Workflow id of the run (ablate's run id). */
  runId: string;
  planRef: ArtifactRef;
  taskQueuePrefix: string;
  noCache: boolean;
  steps: StepToStart[];
  profiles: StepProfile[];
}

export interface StepBatchResult {
  reported: number;
  /** Outcomes the run could not be told of (it had ended). */
  dropped: number;
}

/** Outcomes per signal, and error text per outcome: a signal stays under ~200 KB whatever the errors. */
const MAX_OUTCOMES_PER_SIGNAL = 200;
const MAX_ERROR_CHARS = 1000;

export async function stepBatch(input: StepBatchInput): Promise<StepBatchResult> {
  const outbox: StepOutcome[] = [];
  let open = input.steps.length;
  const root = CancellationScope.current();
  for (const step of input.steps) {
    void startStep(input, step, input.profiles[step.profile]!).then(
      (result) => outbox.push({ i: step.i, status: result.cached ? 'cached' : 'done' }),
      (err: unknown) =>
        outbox.push(
          // A step is cancelled only when its run was (this batch was cancelled). A step that stopped
          // for another reason (its worker shut down and no attempt was left) failed: the run must say
          // so, and `ablate resume` continues it from its checkpoint.
          isCancellation(err) && root.consideredCancelled
            ? { i: step.i, status: 'cancelled' }
            : { i: step.i, status: 'failed', error: truncate(describeFailure(err), MAX_ERROR_CHARS) },
        ),
    );
  }
  const run = getExternalWorkflowHandle(input.runId);
  let reported = 0;
  let dropped = 0;
  // Reporting goes on after a cancellation: the steps' cancellations are outcomes the run waits for.
  await CancellationScope.nonCancellable(async () => {
    while (open > 0) {
      await condition(() => outbox.length > 0);
      // Outcomes that arrive while a signal is on its way go out together in the next one.
      const batch = outbox.splice(0, MAX_OUTCOMES_PER_SIGNAL);
      open -= batch.length;
      try {
        await run.signal(stepsFinishedSignal, batch);
        reported += batch.length;
      } catch {
        dropped += batch.length;
      }
    }
  });
  return { reported, dropped };
}

/** Start one step's activity: the one place that names the step activity. */
function startStep(
  input: StepBatchInput,
  step: StepToStart,
  profile: StepProfile,
): Promise<{ cached: boolean }> {
  // Each kind is its own activity type (`train.detector`), so the UI and metrics tell steps apart.
  const runStep = proxyActivities<StepActivities>({
    taskQueue: `${input.taskQueuePrefix}-${profile.queue}`,
    activityId: step.key,
    startToCloseTimeout: profile.timeoutMs,
    // A worker that dies stops heartbeating: after this long the attempt is retried elsewhere.
    heartbeatTimeout: profile.heartbeatTimeoutMs,
    retry: {
      maximumAttempts: profile.retry.maxAttempts,
      initialInterval: profile.retry.initialIntervalMs,
      backoffCoefficient: profile.retry.backoffCoefficient,
      maximumInterval: profile.retry.maxIntervalMs,
    },
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  })[step.uses]!;
  return runStep({ runId: input.runId, planRef: input.planRef, key: step.key, noCache: input.noCache });
}

/** One line saying why a step failed, from the failure chain Temporal hands the workflow. */
export function describeFailure(err: unknown): string {
  let e: unknown = err;
  if (e instanceof ActivityFailure) {
    const attempts = e.retryState ? ` [${String(e.retryState).toLowerCase().replace(/_/g, ' ')}]` : '';
    e = e.cause ?? e;
    if (e instanceof TimeoutFailure)
      return `timed out (${String(e.timeoutType).toLowerCase().replace(/_/g, ' ')})${attempts}`;
    if (e instanceof ApplicationFailure) return `${e.type ?? 'Error'}: ${e.message}`;
  }
  return err instanceof Error ? err.message : String(err);
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
