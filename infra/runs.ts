/**
 * Client-side view of runs: start one, read where it stands (the workflow's `progress` query merged
 * with Temporal's pending-activity heartbeats and the plan's labels), wait for it, read its summary.
 */
import { randomBytes } from 'node:crypto';

import { WorkflowNotFoundError, type WorkflowExecutionDescription } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import proto from '@temporalio/proto';

import type { StepHeartbeat } from '../activities/runtime/run-step';
import { mapLimit } from '../activities/runtime/orchestration';
import { dagNodes, restoreRunState } from '../activities/runtime/run-scheduler';
import { recordKeys, type RunSummary } from '../activities/runtime/run-records';
import type { StepProgress } from '../activities/runtime/step-kind';
import { emptyCounts } from '../workflows/dag';
import { progressQuery, type PipelineRunInput, type RunProgress } from '../workflows/pipeline-run';
import type { ArtifactRef, Plan, StepStatus } from '../workflows/plan-types';
import {
  AblatePipeline,
  AblateRunId,
  AblateSchedule,
  AblateStatus,
  AblateVerdict,
} from '../workflows/search-attributes';
import { AblateError, ErrorType } from './errors';
import { ensureSearchAttributes } from './search-attributes';
import type { Session } from './session';
import { workflowTaskQueue } from './task-queues';

/** What ablate stores in a run's workflow memo, so any client can find its plan. */
export interface RunMemo {
  pipeline: string;
  planRef: ArtifactRef;
  storeUrl: string;
  cells: number;
  steps: number;
  /** The schedule that started the run (scheduled runs only). */
  schedule?: string;
}

export interface StartRunOptions {
  noCache?: boolean;
  maxParallel?: number;
  /** Use this run id instead of a generated one. */
  runId?: string;
  maxHistoryEvents?: number;
  /** Where notes go (e.g. that search attributes could not be registered). */
  log?: (message: string) => void;
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
  const withAttributes = await ensureSearchAttributes(session, options.log);
  await session.client.workflow.start('pipelineRun', {
    taskQueue: workflowTaskQueue(session.config.taskQueuePrefix),
    workflowId: runId,
    args: [input],
    memo: runMemo(session, plan, planRef) as unknown as Record<string, unknown>,
    ...(withAttributes
      ? {
          typedSearchAttributes: [
            { key: AblatePipeline, value: plan.pipeline.name },
            { key: AblateRunId, value: runId },
            { key: AblateStatus, value: 'running' },
          ],
        }
      : {}),
  });
  return { runId, planRef };
}

/** The memo of a run of `plan`. */
export function runMemo(session: Session, plan: Plan, planRef: ArtifactRef): RunMemo {
  return {
    pipeline: plan.pipeline.name,
    planRef,
    storeUrl: session.store.url,
    cells: plan.stats.cells,
    steps: plan.steps.length,
  };
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
  // One describe of the run per view: it gives the memo (plan) and the status.
  const { memo, status, startedAt, closedAt } = await readMemo(session, runId);
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
  // The run's start, not its current generation's (continue-as-new starts a new execution).
  if (typeof progress.startedAtMs === 'number') view.startedAt = new Date(progress.startedAtMs);
  view.generation = progress.generation;
  view.historyLength = progress.historyLength;
  // Every step's status is in the scheduler's records at the query's seq (the query itself stays small).
  const indexOf = new Map(plan.steps.map((s, i) => [s.key, i]));
  const { state } = await restoreRunState(
    session.store,
    runId,
    { digest: memo.planRef.digest, nodes: dagNodes(plan, indexOf) },
    progress.seq,
    { orLater: true },
  );
  view.counts = state.counts();
  view.steps.forEach((s, i) => {
    s.status = state.statusOf(i);
    const error = state.errorOf(i);
    if (error) s.error = error;
  });
  const byKey = new Map(view.steps.map((s) => [s.key, s]));
  // Steps run as activities of their batch workflows (see workflows/step-batch.ts): their attempts and
  // heartbeats are in those workflows' descriptions.
  const batchIds = [...new Set(progress.running.map((r) => r.batch))];
  const batches = await mapLimit(batchIds, 8, (id) =>
    session.client.workflow
      .getHandle(id)
      .describe()
      .then(
        (d) => d.raw.pendingActivities ?? [],
        () => [],
      ),
  );
  for (const pending of batches.flat()) {
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

/** ablate's outcome of a run, as `ablate runs` reports it (its `--help` defines each). */
export type RunOutcome = 'completed' | 'failed' | 'cancelled' | 'running' | 'detached';

/**
 * A running workflow counts as detached when no worker has polled its workflow task queue for this
 * long. Workers long-poll for about a minute, so a live but idle worker is last seen at most ~60 s ago.
 */
export const DETACHED_AFTER_MS = 90_000;

/** One run as `ablate runs` lists it. */
export interface RunEntry {
  runId: string;
  pipeline: string;
  status: RunOutcome;
  startedAt: Date;
  endedAt: Date | null;
  /** Step counts: from the summary of an ended run, live from the workflow for a running one. */
  counts: Record<StepStatus, number> | null;
  /** The schedule that started it (scheduled runs only). */
  schedule?: string;
  /** Drift verdict of a scheduled run, once checked. */
  verdict?: string;
  /** Temporal's status of the workflow (RUNNING, COMPLETED, TERMINATED, ...), for the curious. */
  workflowStatus: string;
  /** Why the outcome is what it is, where that is not obvious (e.g. terminated without a summary). */
  note?: string;
}

export interface ListRunsOptions {
  status?: RunOutcome;
  pipeline?: string;
  schedule?: string;
  /** Only runs whose verdict is `drifted`. */
  drifted?: boolean;
  /** Only runs started at or after this time. */
  since?: Date;
  /** At most this many runs. @default 50 */
  limit?: number;
}

/** Names that can go into a visibility query verbatim (pipeline and schedule names are of this form). */
const QUERY_SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function queryValue(what: string, value: string): string {
  if (!QUERY_SAFE.test(value))
    throw new AblateError(
      ErrorType.InvalidInput,
      `bad ${what} ${JSON.stringify(value)}: letters, digits, '.', '_', '-'`,
    );
  return `"${value}"`;
}

/**
 * Past and current runs, newest first, with ablate's outcome: read from the run summary in the store
 * for an ended run (a run with failed steps is `failed` although its workflow completed), and from the
 * task queue's pollers for a running one (`detached` when no worker serves it).
 */
export async function listRuns(session: Session, options: ListRunsOptions = {}): Promise<RunEntry[]> {
  const limit = options.limit ?? 50;
  const needsAttributes = options.pipeline ?? options.schedule ?? (options.drifted ? 'drifted' : undefined);
  if (needsAttributes !== undefined && !(await ensureSearchAttributes(session)))
    throw new AblateError(
      ErrorType.InvalidConfig,
      `filtering by pipeline, schedule or verdict needs ablate's search attributes on namespace ${session.config.namespace} (README, "Nightly reproductions")`,
    );
  const clauses = ['WorkflowType = "pipelineRun"'];
  if (options.pipeline) clauses.push(`${AblatePipeline.name} = ${queryValue('pipeline', options.pipeline)}`);
  if (options.schedule) clauses.push(`${AblateSchedule.name} = ${queryValue('schedule', options.schedule)}`);
  if (options.since) clauses.push(`StartTime >= "${options.since.toISOString()}"`);
  if (options.status === 'running' || options.status === 'detached')
    clauses.push('ExecutionStatus = "Running"');
  else if (options.status) clauses.push('ExecutionStatus != "Running"');
  if (options.drifted) {
    // The verdict lives on the `scheduledRun` workflow (its run had ended when it was known).
    const ids: string[] = [];
    const query = `WorkflowType = "scheduledRun" AND ${AblateVerdict.name} = "drifted"`;
    for await (const wf of session.client.workflow.list({ query })) {
      const id = wf.typedSearchAttributes.get(AblateRunId);
      if (id) ids.push(id);
    }
    if (ids.length === 0) return [];
    clauses.push(`${AblateRunId.name} IN (${ids.map((id) => queryValue('run id', id)).join(', ')})`);
  }

  const listed: Array<{
    runId: string;
    memo: Partial<RunMemo>;
    status: string;
    startedAt: Date;
    closedAt?: Date;
    taskQueue: string;
  }> = [];
  for await (const wf of session.client.workflow.list({ query: clauses.join(' AND ') })) {
    listed.push({
      runId: wf.workflowId,
      memo: wf.memo ?? {},
      status: wf.status.name,
      startedAt: wf.startTime,
      closedAt: wf.closeTime,
      taskQueue: wf.taskQueue,
    });
  }
  // A run that continued as new has one execution per generation: list it once, as its newest
  // execution (its status), started when its first generation did.
  const runs = new Map<string, (typeof listed)[number]>();
  for (const wf of listed) {
    const seen = runs.get(wf.runId);
    if (!seen) runs.set(wf.runId, wf);
    else {
      const first = seen.startedAt < wf.startedAt ? seen.startedAt : wf.startedAt;
      const newest = seen.startedAt < wf.startedAt ? wf : seen;
      runs.set(wf.runId, { ...newest, startedAt: first });
    }
  }
  listed.splice(0, listed.length, ...runs.values());
  // Visibility orders by close time; people read runs by when they started.
  listed.sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime());

  const liveQueues = new Map<string, Promise<boolean>>();
  const out: RunEntry[] = [];
  for (const wf of listed) {
    if (out.length >= limit) break;
    const entry: RunEntry = {
      runId: wf.runId,
      pipeline: wf.memo.pipeline ?? '?',
      status: 'running',
      startedAt: wf.startedAt,
      endedAt: wf.status === 'RUNNING' ? null : (wf.closedAt ?? null),
      counts: null,
      workflowStatus: wf.status,
      ...(wf.memo.schedule ? { schedule: wf.memo.schedule } : {}),
    };
    if (wf.status === 'RUNNING') {
      let live = liveQueues.get(wf.taskQueue);
      if (!live) liveQueues.set(wf.taskQueue, (live = hasLiveWorkflowWorker(session, wf.taskQueue)));
      if (await live) {
        entry.counts = await liveCounts(session, wf.runId);
      } else {
        entry.status = 'detached';
        entry.note = `no worker has polled task queue ${wf.taskQueue} for ${DETACHED_AFTER_MS / 1000} s`;
      }
    } else {
      const summary = await session.store.getRecord<RunSummary>(recordKeys.summary(wf.runId));
      if (summary) {
        entry.status = summary.status;
        entry.counts = summary.counts;
        entry.endedAt = new Date(summary.endedAt);
        if (summary.drift) entry.verdict = summary.drift.verdict;
      } else {
        // Terminated, timed out, or failed before it could write a summary.
        entry.status =
          wf.status === 'CANCELLED' ? 'cancelled' : wf.status === 'COMPLETED' ? 'completed' : 'failed';
        entry.note = `the workflow ended ${wf.status.toLowerCase().replace(/_/g, ' ')} without a run summary`;
      }
    }
    if (!options.status || entry.status === options.status) out.push(entry);
  }
  return out;
}

/** Whether a worker polled `taskQueue` for workflow tasks within {@link DETACHED_AFTER_MS}. */
export async function hasLiveWorkflowWorker(session: Session, taskQueue: string): Promise<boolean> {
  const { pollers } = await session.client.workflowService.describeTaskQueue({
    namespace: session.config.namespace,
    taskQueue: { name: taskQueue, kind: proto.temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  const now = Date.now();
  return (pollers ?? []).some((p) => {
    const seconds = Number(p.lastAccessTime?.seconds ?? 0);
    return now - seconds * 1000 < DETACHED_AFTER_MS;
  });
}

/** Step counts of a running run from its progress query; null when no answer comes quickly. */
async function liveCounts(session: Session, runId: string): Promise<Record<StepStatus, number> | null> {
  try {
    const progress = await Promise.race([
      session.client.workflow.getHandle(runId).query(progressQuery),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 3000).unref()),
    ]);
    return progress?.counts ?? null;
  } catch {
    return null;
  }
}

/** What `removeRun` deleted. */
export interface RemovedRun {
  runId: string;
  /** Workflow executions deleted: the run's, and the `scheduledRun` that started it, if any. */
  workflows: number;
  /** Records deleted from the store under `runs/<id>/`. */
  records: number;
}

/**
 * Forget a run: delete its workflow execution (and the scheduled-run workflow that started it) from
 * Temporal, and its records under `runs/<id>/` in the store. Artifacts stay (content-addressed, shared
 * with the cache and other runs) until garbage collection. A running run must be cancelled first.
 */
export async function removeRun(session: Session, runId: string): Promise<RemovedRun> {
  queryValue('run id', runId);
  const recordKeysOfRun = await session.store.listRecords(`runs/${runId}/`);
  let workflows = 0;
  const ids = [runId];
  try {
    const { status } = await readMemo(session, runId);
    if (status === 'RUNNING')
      throw new AblateError(
        ErrorType.InvalidInput,
        `run ${runId} is still running; \`ablate cancel ${runId}\` first`,
      );
  } catch (err) {
    const unknown = err instanceof AblateError && /^no run /.test(err.message);
    if (!unknown || recordKeysOfRun.length === 0) throw err;
    ids.length = 0; // only records are left of it
  }
  if (ids.length > 0 && (await ensureSearchAttributes(session))) {
    const query = `WorkflowType = "scheduledRun" AND ${AblateRunId.name} = ${queryValue('run id', runId)}`;
    for await (const wf of session.client.workflow.list({ query }))
      if (wf.status.name !== 'RUNNING') ids.push(wf.workflowId);
  }
  for (const workflowId of ids) {
    try {
      await session.client.workflowService.deleteWorkflowExecution({
        namespace: session.config.namespace,
        workflowExecution: { workflowId },
      });
      workflows++;
    } catch (err) {
      if (!(err instanceof Error && /not found/i.test(err.message))) throw err;
    }
  }
  for (const key of recordKeysOfRun) await session.store.deleteRecord(key);
  return { runId, workflows, records: recordKeysOfRun.length };
}
