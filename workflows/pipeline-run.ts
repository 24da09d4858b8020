/**
 * `pipelineRun`: executes a compiled plan of any size as Temporal activities.
 *
 * Failure modes it handles:
 * - a step fails (after its retries): that step and everything downstream of it are marked failed /
 *   skipped; the rest of the grid goes on, and the run ends failed with a per-cell summary;
 * - a worker dies mid-step: the step's heartbeat times out and Temporal retries it on any worker of its
 *   queue; the step resumes from its last heartbeated checkpoint (see activities/run-step.ts);
 * - the run is cancelled: the running step batches are cancelled, their steps stop and clean up and are
 *   reported, the summary is written, and the workflow ends cancelled;
 * - the history grows long: the run continues as new at once, carrying only the scheduler's seq and the
 *   running steps (at most `maxParallel`); running steps go on meanwhile and report to the new
 *   generation, so scheduling never stops to drain;
 * - the plan is inconsistent (steps pending that can never start): the run fails with InvalidPipeline.
 *
 * Why it looks like this (plans of 100,000 steps and more):
 * - The DAG is not in this workflow. Its state lives with the scheduler activity (`advanceRun`,
 *   activities/run-scheduler.ts), which keeps it beside the store, idempotent per call (`seq`). The
 *   workflow hands it the outcomes received since the last call and the free slots, and gets back the
 *   next steps to start (a bounded batch). Every payload is bounded by `maxParallel` / MAX_BATCH, not
 *   by the plan, and a generation's history grows with the steps it ran, never with the plan.
 * - Steps run in child workflows (`stepBatch`, workflows/step-batch.ts), one per answer, started with
 *   ParentClosePolicy ABANDON. An activity cannot outlive the execution that scheduled it; a child can,
 *   and it signals outcomes to this workflow's id, i.e. to whichever generation is current.
 * - Per event the work is O(steps that changed): outcomes are buffered as they arrive, the scheduler
 *   applies them with a ready heap and incremental counts, and the `progress` query returns counts, the
 *   running steps and recent failures only (the CLI reads every step's status from the scheduler's
 *   records in the store, see infra/runs.ts).
 * - Outputs live in the artifact store, never in history; step activities read their parameters from
 *   the plan themselves (by planRef and key).
 */
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  continueAsNew,
  defineQuery,
  getExternalWorkflowHandle,
  isCancellation,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';

import type { BookkeepingActivities } from '../activities/runtime/activities';
import type { RunSummaryResult } from '../activities/runtime/orchestration';
import type { AdvanceRunResult } from '../activities/runtime/run-scheduler';
import { emptyCounts, type StepOutcome } from './dag';
import type { ArtifactRef, StepStatus } from './plan-types';
import { stepBatch, stepsFinishedSignal } from './step-batch';
import { recordRunStatus } from './search-attributes';

/** A running step, as carried across continue-as-new (small: there can be `maxParallel` of them). */
export interface RunningStep {
  /** Index of the step in the plan. */
  i: number;
  sinceMs: number;
  /** Number of the batch running it (see {@link batchWorkflowId}). */
  batch: number;
}

/** Workflow id of a run's step batch number `n`. */
export function batchWorkflowId(runId: string, n: number): string {
  return `${runId}/batch-${n}`;
}

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
  resume?: {
    /** Calls the scheduler has answered. */
    seq: number;
    running: RunningStep[];
    /** Outcomes received but not yet handed to the scheduler. */
    outcomes: StepOutcome[];
    counts: Record<StepStatus, number>;
    failures: RunProgress['failures'];
    batches: number;
    generation: number;
    startedAtMs: number;
  };
}

export interface PipelineRunResult extends RunSummaryResult {
  generations: number;
}

/** What `progress` returns: bounded whatever the size of the plan. */
export interface RunProgress {
  runId: string;
  phase: 'starting' | 'running' | 'cancelling' | 'finishing';
  generation: number;
  historyLength: number;
  /** When the run's first generation started (a generation's own start time is later). */
  startedAtMs: number;
  /** The scheduler state the counts are from: every step's status is in the store at this seq. */
  seq: number;
  counts: Record<StepStatus, number>;
  /**
   * Running steps (plan index), and the workflow id of the batch running each: its description has
   * their attempts and heartbeats.
   */
  running: Array<{ i: number; sinceMs: number; batch: string }>;
  /** The most recent failures (at most MAX_FAILURES_SHOWN; skipped steps are not listed). */
  failures: Array<{ key: string; label: string; error: string }>;
}

export const progressQuery = defineQuery<RunProgress>('progress');

/** Steps per batch child (and per scheduler answer): keeps every payload and child history small. */
export const MAX_BATCH = 500;
/** Outcomes handed to the scheduler per call (their errors are bounded; see run-scheduler.ts). */
const MAX_OUTCOMES_PER_CALL = 400;
const MAX_FAILURES_SHOWN = 50;
/**
 * Continue as new at this many events even without the server's suggestion: a generation stays well
 * under Temporal's 51,200-event limit and replays fast.
 */
const DEFAULT_MAX_HISTORY_EVENTS = 10_000;
/** How long the run waits to gather outcomes into a bigger batch (see the main loop). */
const GATHER_MS = 250;
/** After a cancellation, how long to wait for running steps to stop and report before giving up on them. */
const CANCEL_REPORT_TIMEOUT = '10 minutes';

// Advancing the scheduler and writing the summary are short reads/writes on the store.
const bookkeeping = (prefix: string) =>
  proxyActivities<BookkeepingActivities>({
    taskQueue: `${prefix}-cpu`,
    startToCloseTimeout: '5 minutes',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 10 },
  });

export async function pipelineRun(input: PipelineRunInput): Promise<PipelineRunResult> {
  const resume = input.resume;
  const generation = resume?.generation ?? 1;
  const startedAtMs = resume?.startedAtMs ?? Date.now();
  let phase: RunProgress['phase'] = 'starting';
  let seq = resume?.seq ?? 0;
  let counts = resume?.counts ?? emptyCounts();
  let batches = resume?.batches ?? 0;
  const failures = [...(resume?.failures ?? [])];
  const running = new Map<number, RunningStep>((resume?.running ?? []).map((r) => [r.i, r]));
  const outcomes: StepOutcome[] = [...(resume?.outcomes ?? [])];
  let startsInFlight = 0;

  setHandler(stepsFinishedSignal, (finished) => {
    for (const o of finished) {
      // A repeat (or a step this run does not know) changes nothing; the scheduler ignores it too.
      if (running.delete(o.i)) outcomes.push(o);
    }
  });
  setHandler(progressQuery, () => ({
    runId: input.runId,
    phase,
    generation,
    historyLength: workflowInfo().historyLength,
    startedAtMs,
    seq,
    counts,
    running: [...running.values()].map(({ i, sinceMs, batch }) => ({
      i,
      sinceMs,
      batch: batchWorkflowId(input.runId, batch),
    })),
    failures,
  }));

  const acts = bookkeeping(input.taskQueuePrefix);
  // Never cancelled halfway: a call whose answer is lost would leave the scheduler one seq ahead.
  const advance = (finished: StepOutcome[], capacity: number): Promise<AdvanceRunResult> =>
    CancellationScope.nonCancellable(() =>
      acts.advanceRun({ runId: input.runId, planRef: input.planRef, seq, finished, capacity }),
    );

  const startBatch = (r: AdvanceRunResult): void => {
    if (r.start.length === 0) return;
    const batch = ++batches;
    const workflowId = batchWorkflowId(input.runId, batch);
    const now = Date.now();
    for (const s of r.start) running.set(s.i, { i: s.i, sinceMs: now, batch });
    startsInFlight++;
    void CancellationScope.nonCancellable(() =>
      startChild(stepBatch, {
        workflowId,
        taskQueue: workflowInfo().taskQueue,
        // The batch outlives this generation (continue-as-new) and reports to the next one.
        parentClosePolicy: ParentClosePolicy.ABANDON,
        args: [
          {
            runId: input.runId,
            planRef: input.planRef,
            taskQueuePrefix: input.taskQueuePrefix,
            noCache: input.noCache,
            steps: r.start,
            profiles: r.profiles,
          },
        ],
      }),
    ).then(
      () => startsInFlight--,
      (err: unknown) => {
        startsInFlight--;
        const error = `could not start the step batch ${workflowId}: ${err instanceof Error ? err.message : String(err)}`;
        for (const s of r.start) if (running.delete(s.i)) outcomes.push({ i: s.i, status: 'failed', error });
      },
    );
  };

  const record = (r: AdvanceRunResult): void => {
    seq = r.seq;
    counts = r.counts;
    failures.push(...r.newFailures);
    failures.splice(0, Math.max(0, failures.length - MAX_FAILURES_SHOWN));
  };

  const maxEvents = input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
  const historyIsLong = (): boolean => {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength >= maxEvents;
  };

  let cancelled: Error | undefined;
  let continuing = false;
  try {
    phase = 'running';
    let moreReady = true;
    for (;;) {
      // Checked first: with outcomes arriving all the time the loop below may never wait.
      if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('run cancelled');
      if (historyIsLong()) {
        // Outcomes go to the scheduler rather than into the next generation's input (they carry errors).
        while (outcomes.length > 0) record(await advance(outcomes.splice(0, MAX_OUTCOMES_PER_CALL), 0));
        // Starts not yet acknowledged would be lost with this generation: wait for them (moments).
        await condition(() => startsInFlight === 0);
        continuing = true;
        break;
      }
      // Gather outcomes into bigger batches: each batch is a child workflow whose start and reports cost
      // the server more than its trivial steps do. With many steps still running, wait a moment (at
      // most GATHER_MS) for a quarter of `maxParallel` to finish before asking for more.
      const gather = Math.ceil(input.maxParallel / 4);
      if (outcomes.length > 0 && outcomes.length < gather && running.size >= gather)
        await condition(() => outcomes.length >= gather || running.size < gather, GATHER_MS);
      const capacity = Math.min(MAX_BATCH, Math.max(0, input.maxParallel - running.size));
      if (outcomes.length > 0 || (capacity > 0 && moreReady)) {
        const r = await advance(outcomes.splice(0, MAX_OUTCOMES_PER_CALL), capacity);
        record(r);
        startBatch(r);
        moreReady = r.moreReady;
        if (r.finished) break;
        if (r.stuck)
          throw ApplicationFailure.nonRetryable(
            'no step can run and none is running: the plan is inconsistent',
            'InvalidPipeline',
          );
        continue;
      }
      await condition(() => outcomes.length > 0);
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    cancelled = err as Error;
    phase = 'cancelling';
    await CancellationScope.nonCancellable(async () => {
      await condition(() => startsInFlight === 0);
      const batchIds = new Set([...running.values()].map((r) => batchWorkflowId(input.runId, r.batch)));
      // Batches outlive this workflow (ABANDON), so cancel them explicitly; a batch that already ended is fine.
      await Promise.allSettled([...batchIds].map((id) => getExternalWorkflowHandle(id).cancel()));
      await condition(() => running.size === 0, CANCEL_REPORT_TIMEOUT);
      while (outcomes.length > 0) record(await advance(outcomes.splice(0, MAX_OUTCOMES_PER_CALL), 0));
    });
  }

  if (continuing) {
    return continueAsNew<typeof pipelineRun>({
      ...input,
      resume: {
        seq,
        running: [...running.values()],
        outcomes,
        counts,
        failures,
        batches,
        generation: generation + 1,
        startedAtMs,
      },
    });
  }

  phase = 'finishing';
  const summary = await CancellationScope.nonCancellable(() =>
    acts.finalizeRun({
      runId: input.runId,
      planRef: input.planRef,
      seq,
      cancelled: cancelled !== undefined,
      startedAtMs,
      endedAtMs: Date.now(),
      generations: generation,
    }),
  );
  recordRunStatus(summary.status);
  if (cancelled !== undefined) throw cancelled;
  return { ...summary, generations: generation };
}
