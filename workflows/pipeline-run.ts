/**
 * `pipelineRun`: executes a compiled plan as Temporal activities.
 *
 * Failure modes it handles:
 * - a step fails (after its retries): that step and everything downstream of it are marked failed /
 *   skipped; the rest of the grid goes on, and the run ends failed with a per-cell summary;
 * - a worker dies mid-step: the step's heartbeat times out and Temporal retries it on any worker of its
 *   queue; the step resumes from its last heartbeated checkpoint (see activities/run-step.ts);
 * - the run is cancelled: running steps are cancelled and waited for (they clean up), the summary is
 *   written, and the workflow ends cancelled;
 * - the history grows large: scheduling pauses, running steps drain, and the run continues as new with
 *   only the step statuses carried over (outputs live in the artifact store, never in history).
 *
 * The plan itself stays in the artifact store: the workflow loads only the DAG (keys, needs, queues,
 * limits) and activities read parameters and bind upstream outputs themselves, so payloads stay small
 * whatever the size of the grid.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  isCancellation,
  proxyActivities,
  setHandler,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';

import type { createActivities } from '../activities/index';
import type { RunSummaryResult } from '../activities/orchestration';
import { DagState, emptyCounts, runStatus, type GraphStep } from './dag';
import type { ArtifactRef, StepStatus } from './plan-types';
import { recordRunStatus } from './search-attributes';

type Activities = ReturnType<typeof createActivities>;

export interface PipelineRunInput {
  /** ablate's run id (the workflow id). */
  runId: string;
  pipelineName: string;
  /** The compiled plan, in the artifact store. */
  planRef: ArtifactRef;
  taskQueuePrefix: string;
  /** Steps in flight at once. */
  maxParallel: number;
  /** Recompute every step even when a cached result exists. */
  noCache: boolean;
  /** Continue as new after this many history events even if the server does not suggest it yet. */
  maxHistoryEvents?: number;
  /** Set when continuing as new. */
  resume?: { statuses: string; errors: Record<string, string>; generation: number; startedAtMs: number };
}

export interface PipelineRunResult extends RunSummaryResult {
  generations: number;
}

/** What `progress` returns. Step details (labels, cells) come from the plan; this is the live part. */
export interface RunProgress {
  runId: string;
  phase: 'loading' | 'running' | 'draining' | 'finishing';
  generation: number;
  historyLength: number;
  counts: Record<StepStatus, number>;
  /** One status character per plan step (see workflows/dag.ts). */
  statuses: string;
  running: Array<{ key: string; label: string; sinceMs: number }>;
  errors: Record<string, string>;
}

export const progressQuery = defineQuery<RunProgress>('progress');

const PLAN_CHUNK = 2000;

// Loading the DAG and writing the summary are short bookkeeping reads/writes on the store.
const bookkeeping = (prefix: string) =>
  proxyActivities<Activities>({
    taskQueue: `${prefix}-cpu`,
    startToCloseTimeout: '5 minutes',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 10 },
  });

export async function pipelineRun(input: PipelineRunInput): Promise<PipelineRunResult> {
  const generation = input.resume?.generation ?? 1;
  const startedAtMs = input.resume?.startedAtMs ?? Date.now();
  let phase: RunProgress['phase'] = 'loading';
  // Filled in once the DAG is loaded; the query may be asked before that.
  const live: { state?: DagState } = {};
  const since = new Map<number, number>();
  setHandler(progressQuery, () => {
    const state = live.state;
    return {
      runId: input.runId,
      phase,
      generation,
      historyLength: workflowInfo().historyLength,
      counts: state?.counts() ?? emptyCounts(),
      statuses: state?.encode() ?? '',
      running: state
        ? [...since].map(([i, sinceMs]) => ({
            key: state.steps[i]!.key,
            label: state.steps[i]!.label,
            sinceMs,
          }))
        : [],
      errors: state ? Object.fromEntries([...state.errors].map(([i, e]) => [state.steps[i]!.key, e])) : {},
    };
  });

  const acts = bookkeeping(input.taskQueuePrefix);
  const steps: GraphStep[] = [];
  for (let offset = 0; ; offset += PLAN_CHUNK) {
    const chunk = await acts.loadPlanGraph({ planRef: input.planRef, offset, limit: PLAN_CHUNK });
    steps.push(...chunk.steps);
    if (offset + PLAN_CHUNK >= chunk.total) break;
  }
  const dag = new DagState(steps, input.resume?.statuses);
  live.state = dag;
  for (const [key, error] of Object.entries(input.resume?.errors ?? {})) {
    const i = steps.findIndex((s) => s.key === key);
    if (i >= 0) dag.errors.set(i, error);
  }
  phase = 'running';

  let changed = false;
  const inFlight = new Map<number, Promise<void>>();
  const start = (i: number): void => {
    const step = steps[i]!;
    dag.markRunning(i);
    since.set(i, Date.now());
    const { runStep } = proxyActivities<Activities>({
      taskQueue: `${input.taskQueuePrefix}-${step.queue}`,
      activityId: step.key,
      startToCloseTimeout: step.timeoutMs,
      // A worker that dies stops heartbeating: after this long the attempt is retried elsewhere.
      heartbeatTimeout: step.heartbeatTimeoutMs,
      retry: {
        maximumAttempts: step.retry.maxAttempts,
        initialInterval: step.retry.initialIntervalMs,
        backoffCoefficient: step.retry.backoffCoefficient,
        maximumInterval: step.retry.maxIntervalMs,
      },
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    });
    const promise = runStep({
      runId: input.runId,
      planRef: input.planRef,
      key: step.key,
      noCache: input.noCache,
    })
      .then(
        (result) => dag.markSucceeded(i, result.cached),
        (err: unknown) => {
          if (isCancellation(err)) dag.markCancelled(i);
          else dag.markFailed(i, describeFailure(err));
        },
      )
      .finally(() => {
        inFlight.delete(i);
        since.delete(i);
        changed = true;
      });
    inFlight.set(i, promise);
  };

  const historyIsLong = (): boolean => {
    const info = workflowInfo();
    return (
      info.continueAsNewSuggested ||
      (input.maxHistoryEvents !== undefined && info.historyLength >= input.maxHistoryEvents)
    );
  };

  let cancelled: Error | undefined;
  let continuing = false;
  try {
    while (!dag.isFinished()) {
      if (historyIsLong()) phase = 'draining';
      if (phase === 'running') for (const i of dag.ready(input.maxParallel - inFlight.size)) start(i);
      if (inFlight.size === 0) {
        if (phase === 'draining') {
          continuing = true;
          break;
        }
        throw ApplicationFailure.nonRetryable(
          'no step can run and none is running: the plan is inconsistent',
          'InvalidPipeline',
        );
      }
      changed = false;
      await condition(() => changed);
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    cancelled = err as Error;
    // Running steps were cancelled with the workflow; wait until each has stopped and cleaned up.
    await CancellationScope.nonCancellable(() => Promise.allSettled([...inFlight.values()]));
    dag.cancelRemaining();
  }

  if (continuing) {
    const errors = Object.fromEntries([...dag.errors].map(([i, e]) => [steps[i]!.key, e]));
    return continueAsNew<typeof pipelineRun>({
      ...input,
      resume: { statuses: dag.encode(), errors, generation: generation + 1, startedAtMs },
    });
  }

  phase = 'finishing';
  const counts = dag.counts();
  const summary = await CancellationScope.nonCancellable(() =>
    acts.finalizeRun({
      runId: input.runId,
      planRef: input.planRef,
      statuses: dag.encode(),
      errors: Object.fromEntries([...dag.errors].map(([i, e]) => [steps[i]!.key, e])),
      status: runStatus(counts, cancelled !== undefined),
      startedAtMs,
      endedAtMs: Date.now(),
      generations: generation,
    }),
  );
  recordRunStatus(summary.status);
  if (cancelled !== undefined) throw cancelled;
  return { ...summary, generations: generation };
}

/** One line saying why a step failed, from the failure chain Temporal hands the workflow. */
function describeFailure(err: unknown): string {
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
