/**
 * Client-side view of runs: start one, read where it stands (the workflow's `progress` query merged
 * with Temporal's pending-activity heartbeats and the plan's labels), wait for it, read its summary.
 */
import { randomBytes } from 'node:crypto';

import { WorkflowNotFoundError, type WorkflowExecutionDescription } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import proto from '@temporalio/proto';

import type { StepHeartbeat } from '../activities/run-step';
import { recordKeys, type RunSummary } from '../activities/run-records';
import type { StepProgress } from '../activities/step-kind';
import { decodeStatuses, emptyCounts } from '../workflows/dag';
import { progressQuery, type PipelineRunInput, type RunProgress } from '../workflows/pipeline-run';
import type { ArtifactRef, Plan, StepStatus } from '../workflows/plan-types';
import { AblateError, ErrorType } from './errors';
import type { Session } from './session';
import { workflowTaskQueue } from './task-queues';

/** What ablate stores in a run's workflow memo, so any client can find its plan. */
export interface RunMemo {
  pipeline: string;
  planRef: ArtifactRef;
  storeUrl: string;
  cells: number;
  steps: number;
}

export interface StartRunOptions {
  noCache?: boolean;
  maxParallel?: number;
  /** Use this run id instead of a generated one. */
  runId?: string;
  maxHistoryEvents?: number;
}

/** A run id: `<pipeline>-<UTC yyyymmdd-hhmmss>-<4 hex>`. */
export function newRunId(pipeline: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${pipeline}-${stamp}-${randomBytes(2).toString('hex')}`;
}

/** Store the plan and start its workflow. */
export async function startRun(
  session: Session,
  plan: Plan,
  options: StartRunOptions = {},
): Promise<{ runId: string; planRef: ArtifactRef }> {
  const planRef = await session.store.putJson(plan, 'application/vnd.ablate.plan+json');
  const runId = options.runId ?? newRunId(plan.pipeline.name);
  const input: PipelineRunInput = {
    runId,
    pipelineName: plan.pipeline.name,
    planRef,
    taskQueuePrefix: session.config.taskQueuePrefix,
    maxParallel: options.maxParallel ?? session.config.maxParallel,
    noCache: options.noCache ?? false,
    ...(options.maxHistoryEvents ? { maxHistoryEvents: options.maxHistoryEvents } : {}),
  };
  const memo: RunMemo = {
    pipeline: plan.pipeline.name,
    planRef,
    storeUrl: session.store.url,
    cells: plan.stats.cells,
    steps: plan.steps.length,
  };
  await session.client.workflow.start('pipelineRun', {
    taskQueue: workflowTaskQueue(session.config.taskQueuePrefix),
    workflowId: runId,
    args: [input],
    memo: memo as unknown as Record<string, unknown>,
  });
  return { runId, planRef };
}

/** One step as `ablate status` shows it. */
export interface StepView {
  key: string;
  label: string;
  uses: string;
  status: StepStatus;
  attempt?: number;
  /** Dispatched by the workflow but not yet picked up by a worker (e.g. waiting for a free GPU slot). */
  queued?: boolean;
  progress?: StepProgress;
  lastHeartbeatAt?: Date;
  error?: string;
}

export interface RunView {
  runId: string;
  /** Temporal's status of the workflow: RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, ... */
  workflowStatus: string;
  phase?: RunProgress['phase'];
  plan: Plan;
  counts: Record<StepStatus, number>;
  steps: StepView[];
  generation?: number;
  historyLength?: number;
  startedAt?: Date;
  closedAt?: Date;
  summary?: RunSummary;
  /** Why live progress is not available (e.g. no worker answered the query). */
  note?: string;
}

const plans = new Map<string, Promise<Plan>>();

export async function readMemo(
  session: Session,
  runId: string,
): Promise<{
  memo: RunMemo;
  status: string;
  startedAt?: Date;
  closedAt?: Date;
  description: WorkflowExecutionDescription;
}> {
  try {
    const desc = await session.client.workflow.getHandle(runId).describe();
    const memo = desc.memo as unknown as RunMemo | undefined;
    if (!memo?.planRef)
      throw new AblateError(
        ErrorType.InvalidInput,
        `workflow ${runId} is not an ablate run (no plan in its memo)`,
      );
    return {
      memo,
      status: desc.status.name,
      startedAt: desc.startTime,
      closedAt: desc.closeTime,
      description: desc,
    };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new AblateError(
        ErrorType.InvalidInput,
        `no run ${JSON.stringify(runId)} on ${session.address} (namespace ${session.config.namespace}); \`ablate runs\` lists them`,
      );
    }
    throw err;
  }
}

/** Where a run stands now. */
export async function getRunView(session: Session, runId: string): Promise<RunView> {
  const handle = session.client.workflow.getHandle(runId);
  // One describe per view: it gives the memo (plan), the status and the pending steps' heartbeats.
  const { memo, status, startedAt, closedAt, description } = await readMemo(session, runId);
  let planPromise = plans.get(memo.planRef.digest);
  if (!planPromise) plans.set(memo.planRef.digest, (planPromise = session.store.getJson<Plan>(memo.planRef)));
  const plan = await planPromise;
  const view: RunView = {
    runId,
    workflowStatus: status,
    plan,
    counts: { ...emptyCounts(), pending: plan.steps.length },
    steps: plan.steps.map((s) => ({ key: s.key, label: s.label, uses: s.uses, status: 'pending' })),
    startedAt,
    closedAt,
  };
  if (status !== 'RUNNING') {
    const summary = await session.store.getRecord<RunSummary>(recordKeys.summary(runId));
    if (summary) {
      view.summary = summary;
      view.counts = summary.counts;
      summary.steps.forEach((s, i) => {
        view.steps[i]!.status = s.status;
        if (s.error) view.steps[i]!.error = s.error;
      });
    } else {
      view.note = `the run ended ${status.toLowerCase()} without a summary`;
    }
    return view;
  }
  let progress: RunProgress | undefined;
  try {
    // A query needs a workflow worker; don't hang when none is running.
    progress = await Promise.race([
      handle.query(progressQuery),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000).unref()),
    ]);
  } catch (err) {
    view.note = `live progress unavailable: ${(err as Error).message}`;
  }
  if (!progress) {
    view.note ??= 'live progress unavailable: no worker answered (start one with `ablate worker`)';
    return view;
  }
  view.phase = progress.phase;
  view.counts = progress.counts;
  view.generation = progress.generation;
  view.historyLength = progress.historyLength;
  decodeStatuses(progress.statuses).forEach((s, i) => {
    if (view.steps[i]) view.steps[i].status = s;
  });
  const byKey = new Map(view.steps.map((s) => [s.key, s]));
  for (const [key, error] of Object.entries(progress.errors)) {
    const s = byKey.get(key);
    if (s) s.error = error;
  }
  for (const pending of description.raw.pendingActivities ?? []) {
    const s = byKey.get(pending.activityId ?? '');
    if (!s) continue;
    s.attempt = pending.attempt ?? undefined;
    s.queued =
      pending.state === proto.temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED;
    const payload = pending.heartbeatDetails?.payloads?.[0];
    if (payload) {
      const details = defaultPayloadConverter.fromPayload<StepHeartbeat>(payload);
      s.progress = details.progress;
      s.lastHeartbeatAt = new Date(details.atMs);
    }
    const retrying = retryingLine(pending);
    if (retrying) {
      // The figures in the heartbeat belong to the lost attempt: an ETA from them would be stale.
      s.progress = { message: retrying };
      s.queued = false;
    }
  }
  return view;
}

type PendingActivity = proto.temporal.api.workflow.v1.IPendingActivityInfo;

function timestampMs(t: PendingActivity['lastStartedTime']): number {
  return t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
}

/** Why the previous attempt of a step ended, in a few words, from Temporal's last failure. */
export function lastAttemptEnded(failure: PendingActivity['lastFailure']): string {
  if (!failure) return 'previous attempt failed';
  const timeout = failure.timeoutFailureInfo?.timeoutType;
  const types = proto.temporal.api.enums.v1.TimeoutType;
  if (timeout === types.TIMEOUT_TYPE_HEARTBEAT) return 'worker lost';
  if (timeout === types.TIMEOUT_TYPE_START_TO_CLOSE) return 'attempt timed out';
  if (timeout !== undefined && timeout !== null) return 'timed out';
  if (failure.canceledFailureInfo || /WORKER_SHUTDOWN/.test(failure.message ?? '')) return 'worker stopped';
  const message = (failure.message ?? 'failed').split('\n')[0]!;
  return message.length > 80 ? `${message.slice(0, 77)}...` : message;
}

/**
 * "retrying: worker lost (attempt 2)" for a step whose previous attempt ended and whose new attempt has
 * not reported anything yet (waiting for its retry, or just picked up); undefined otherwise.
 */
export function retryingLine(pending: PendingActivity): string | undefined {
  const attempt = pending.attempt ?? 1;
  if (attempt <= 1) return undefined;
  const scheduled =
    pending.state === proto.temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED;
  const silentSinceStart = timestampMs(pending.lastHeartbeatTime) < timestampMs(pending.lastStartedTime);
  if (!scheduled && !silentSinceStart) return undefined;
  return `retrying: ${lastAttemptEnded(pending.lastFailure)} (attempt ${attempt})`;
}

/** Wait for a run to close; resolves to its summary (undefined if it ended without one). */
export async function waitForRun(
  session: Session,
  runId: string,
): Promise<{ status: string; summary?: RunSummary }> {
  const handle = session.client.workflow.getHandle(runId);
  try {
    await handle.result();
  } catch {
    // Failed or cancelled: the summary says how.
  }
  const desc = await handle.describe();
  return {
    status: desc.status.name,
    summary: await session.store.getRecord<RunSummary>(recordKeys.summary(runId)),
  };
}

export interface RunListing {
  runId: string;
  pipeline: string;
  status: string;
  startedAt: Date;
  closedAt?: Date;
}

/** Past and current runs, newest first. */
export async function listRuns(session: Session, limit = 50): Promise<RunListing[]> {
  const out: RunListing[] = [];
  for await (const wf of session.client.workflow.list({ query: 'WorkflowType = "pipelineRun"' })) {
    const memo = (wf.memo ?? {}) as Partial<RunMemo>;
    out.push({
      runId: wf.workflowId,
      pipeline: memo.pipeline ?? '?',
      status: wf.status.name,
      startedAt: wf.startTime,
      closedAt: wf.closeTime,
    });
    if (out.length >= limit) break;
  }
  return out.sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime());
}
