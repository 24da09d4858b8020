/**
 * Nightly reproductions: pipelines run again on a Temporal Schedule (not a timer of ours), so firing,
 * catch-up after downtime, overlap, pause, trigger and backfill are Temporal's, visible in its UI.
 *
 * Creating or applying a schedule compiles the pipeline file and stores its bytes and its plan in the
 * artifact store by digest; the schedule's action starts `scheduledRun` (workflows/scheduled-run.ts)
 * with those references. Each firing therefore runs the content pinned at create/apply time, however
 * the file changes afterwards, until it is applied again.
 *
 * A schedule's id is its name; ablate's schedules carry a {@link ScheduleMemo} (other schedules in the
 * namespace are left alone and not listed).
 */
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type ScheduleDescription,
  type ScheduleOptions,
} from '@temporalio/client';

import type { RunMemo } from './runs';
import { runMemo } from './runs';
import type { ArtifactRef, Plan, PipelineSchedule } from '../workflows/plan-types';
import type { ScheduleDefinition, ScheduledRunInput } from '../workflows/scheduled-run';
import { AblatePipeline, AblateRunId, AblateSchedule } from '../workflows/search-attributes';
import { contentHash } from './canonical-json';
import { formatDurationMs } from './compiler/duration';
import { AblateError, ErrorType } from './errors';
import { ensureSearchAttributes } from './search-attributes';
import type { Session } from './session';
import { workflowTaskQueue } from './task-queues';

/** How ablate's overlap names map onto Temporal's policies. */
export const OVERLAP_POLICIES = {
  skip: ScheduleOverlapPolicy.SKIP,
  'buffer-one': ScheduleOverlapPolicy.BUFFER_ONE,
  'allow-all': ScheduleOverlapPolicy.ALLOW_ALL,
} as const;

export type OverlapName = keyof typeof OVERLAP_POLICIES;

/** Runs missed while the server was down start when it is back, if at most this late. */
export const DEFAULT_CATCHUP_WINDOW_MS = 3_600_000;

/** The memo of every schedule ablate creates (others in the namespace are left alone). */
export const SCHEDULE_MEMO = { ablate: 1 } as const;

/** A schedule as `ablate schedule list --json` prints it. */
export interface ScheduleListing {
  name: string;
  spec: { cron?: string; every?: string; timezone: string };
  paused: boolean;
  pipeline: string;
  nextActionTimes: Date[];
}

/** The workflow id prefix of a schedule's runs (Temporal appends the scheduled time). */
export function scheduledWorkflowIdPrefix(name: string): string {
  return `schedule-${name}`;
}

function specOf(def: PipelineSchedule): ScheduleOptions['spec'] {
  return {
    ...(def.cron ? { cronExpressions: [def.cron] } : {}),
    ...(def.everyMs ? { intervals: [{ every: def.everyMs }] } : {}),
    timezone: def.timezone ?? 'UTC',
  };
}

/**
 * Create (`mode: 'create'`, refusing an existing name) or create-or-update (`mode: 'apply'`,
 * idempotent: nothing changes when the file, plan and timing are the same) the schedule `def` for
 * `plan`, compiled from `sourceText` read from `file`.
 */
export async function upsertSchedule(
  session: Session,
  args: {
    file: string;
    sourceText: string;
    plan: Plan;
    def: PipelineSchedule;
    mode: 'create' | 'apply';
    log?: (message: string) => void;
  },
): Promise<{ name: string; action: 'created' | 'updated' | 'unchanged'; definition: ScheduleDefinition }> {
  const { plan, def } = args;
  const source = await session.store.putBytes(args.sourceText, {
    mediaType: 'application/vnd.ablate.pipeline+json',
  });
  const planRef = await session.store.putJson(plan, 'application/vnd.ablate.plan+json');
  const withAttributes = await ensureSearchAttributes(session, args.log);
  const overlap = def.overlap ?? 'skip';
  const catchupWindowMs = def.catchupWindowMs ?? DEFAULT_CATCHUP_WINDOW_MS;
  const timing = {
    ...(def.cron ? { cron: def.cron } : {}),
    ...(def.everyMs ? { every: formatDurationMs(def.everyMs) } : {}),
    timezone: def.timezone ?? 'UTC',
    noCache: def.noCache ?? false,
    overlap,
    catchupWindow: formatDurationMs(catchupWindowMs),
  };
  const base: Omit<ScheduledRunInput, 'definition'> = {
    scheduleName: def.name,
    pipelineName: plan.pipeline.name,
    planRef,
    sourceRef: source,
    taskQueuePrefix: session.config.taskQueuePrefix,
    maxParallel: session.config.maxParallel,
    noCache: timing.noCache,
    ...(def.notify ? { notify: def.notify } : {}),
    runMemo: runMemo(session, plan, planRef) satisfies RunMemo,
  };
  const definition: ScheduleDefinition = {
    file: args.file,
    ...timing,
    digest: contentHash({ base, timing, withAttributes }),
  };
  const input: ScheduledRunInput = { ...base, definition };
  const taskQueue = workflowTaskQueue(session.config.taskQueuePrefix);
  const action: ScheduleOptions['action'] = {
    type: 'startWorkflow',
    workflowType: 'scheduledRun',
    workflowId: scheduledWorkflowIdPrefix(def.name),
    taskQueue,
    args: [input],
    ...(withAttributes
      ? {
          typedSearchAttributes: [
            { key: AblatePipeline, value: plan.pipeline.name },
            { key: AblateSchedule, value: def.name },
          ],
        }
      : {}),
  };
  const policies: ScheduleOptions['policies'] = {
    overlap: OVERLAP_POLICIES[overlap],
    catchupWindow: catchupWindowMs,
  };

  const handle = session.client.schedule.getHandle(def.name);
  let existing: ScheduleDescription | undefined;
  try {
    existing = await handle.describe();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
  if (existing) {
    const old = ownInput(existing);
    if (args.mode === 'create' || !old)
      throw new AblateError(
        ErrorType.InvalidInput,
        !old
          ? `a schedule named ${JSON.stringify(def.name)} exists in namespace ${session.config.namespace} and is not ablate's; choose another name`
          : `schedule ${JSON.stringify(def.name)} already exists (pipeline ${old.pipelineName}); \`ablate schedule apply FILE\` updates it, \`ablate schedule delete ${def.name}\` removes it`,
      );
    if (old.definition.digest === definition.digest)
      return { name: def.name, action: 'unchanged', definition };
    await handle.update((prev) => ({
      ...prev,
      spec: specOf(def),
      action,
      policies: { ...prev.policies, ...policies },
    }));
    return { name: def.name, action: 'updated', definition };
  }
  await session.client.schedule.create({
    scheduleId: def.name,
    spec: specOf(def),
    action,
    policies,
    memo: { ...SCHEDULE_MEMO },
  });
  return { name: def.name, action: 'created', definition };
}

/** The input of an ablate schedule's runs, or undefined for a schedule that is not ablate's. */
function ownInput(desc: ScheduleDescription): ScheduledRunInput | undefined {
  if ((desc.memo as Partial<typeof SCHEDULE_MEMO> | undefined)?.ablate !== SCHEDULE_MEMO.ablate)
    return undefined;
  const input = desc.action.args?.[0] as ScheduledRunInput | undefined;
  return input?.definition ? input : undefined;
}

/** ablate's schedules in the namespace, by name. */
export async function listSchedules(session: Session): Promise<ScheduleListing[]> {
  const names: string[] = [];
  for await (const s of session.client.schedule.list())
    if ((s.memo as Partial<typeof SCHEDULE_MEMO> | undefined)?.ablate === SCHEDULE_MEMO.ablate)
      names.push(s.scheduleId);
  // The definition is in each schedule's action, which only a describe returns.
  const out: ScheduleListing[] = [];
  for (const name of names.sort()) {
    let desc: ScheduleDescription;
    try {
      desc = await session.client.schedule.getHandle(name).describe();
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) continue; // deleted meanwhile
      throw err;
    }
    const input = ownInput(desc);
    if (!input) continue;
    out.push({
      name,
      spec: specText(input.definition),
      paused: desc.state.paused,
      pipeline: input.pipelineName,
      nextActionTimes: desc.info.nextActionTimes,
    });
  }
  return out;
}

function specText(def: ScheduleDefinition): ScheduleListing['spec'] {
  return {
    ...(def.cron ? { cron: def.cron } : {}),
    ...(def.every ? { every: def.every } : {}),
    timezone: def.timezone,
  };
}

/** One of ablate's schedules, described. */
export interface ScheduleView extends ScheduleListing {
  file: string;
  source: ArtifactRef;
  plan: ArtifactRef;
  noCache: boolean;
  overlap: OverlapName;
  catchupWindow: string;
  note?: string;
  createdAt: Date;
  numActionsTaken: number;
  numActionsSkippedOverlap: number;
  numActionsMissedCatchupWindow: number;
  /** Latest firings, oldest first: when due, when started, and the run it started (once known). */
  recentActions: Array<{ scheduledAt: Date; takenAt: Date; workflowId: string; runId?: string }>;
  /** Workflows of this schedule still running. */
  running: string[];
}

/** The handle of ablate's schedule `name`, or a clear error. */
export async function describeSchedule(session: Session, name: string): Promise<ScheduleView> {
  const { desc, input } = await describeOwn(session, name);
  const def = input.definition;
  const recentActions = await Promise.all(
    desc.info.recentActions.map(async (a) => {
      const workflowId = a.action.workflow.workflowId;
      let runId: string | undefined;
      try {
        const wf = await session.client.workflow.getHandle(workflowId).describe();
        runId = wf.typedSearchAttributes.get(AblateRunId);
      } catch {
        // Deleted (`ablate runs rm`) or not yet visible.
      }
      return { scheduledAt: a.scheduledAt, takenAt: a.takenAt, workflowId, ...(runId ? { runId } : {}) };
    }),
  );
  return {
    name,
    spec: specText(def),
    paused: desc.state.paused,
    pipeline: input.pipelineName,
    nextActionTimes: desc.info.nextActionTimes,
    file: def.file,
    source: input.sourceRef,
    plan: input.planRef,
    noCache: def.noCache,
    overlap: def.overlap,
    catchupWindow: def.catchupWindow,
    ...(desc.state.note ? { note: desc.state.note } : {}),
    createdAt: desc.info.createdAt,
    numActionsTaken: desc.info.numActionsTaken,
    numActionsSkippedOverlap: desc.info.numActionsSkippedOverlap,
    numActionsMissedCatchupWindow: desc.info.numActionsMissedCatchupWindow,
    recentActions,
    running: desc.info.runningActions.map((a) => a.workflow.workflowId),
  };
}

/** Describe schedule `name`, refusing one that is missing or not ablate's. */
async function describeOwn(
  session: Session,
  name: string,
): Promise<{ desc: ScheduleDescription; input: ScheduledRunInput }> {
  try {
    const desc = await session.client.schedule.getHandle(name).describe();
    const input = ownInput(desc);
    if (!input)
      throw new AblateError(
        ErrorType.InvalidInput,
        `schedule ${JSON.stringify(name)} is not one of ablate's; ablate leaves it alone`,
      );
    return { desc, input };
  } catch (err) {
    if (err instanceof ScheduleNotFoundError)
      throw new AblateError(
        ErrorType.InvalidInput,
        `no schedule ${JSON.stringify(name)} in namespace ${session.config.namespace}; \`ablate schedule list\` shows them`,
      );
    throw err;
  }
}

/** Pause, unpause, trigger, backfill or delete ablate's schedule `name`. */
export async function controlSchedule(
  session: Session,
  name: string,
  op:
    | { type: 'pause' | 'unpause'; note?: string }
    | { type: 'trigger' }
    | { type: 'backfill'; from: Date; to: Date; overlap?: OverlapName }
    | { type: 'delete' },
): Promise<void> {
  await describeOwn(session, name);
  const handle = session.client.schedule.getHandle(name);
  switch (op.type) {
    case 'pause':
      return handle.pause(op.note ?? 'paused with `ablate schedule pause`');
    case 'unpause':
      return handle.unpause(op.note ?? 'unpaused with `ablate schedule unpause`');
    case 'trigger':
      // A manual run starts even while a scheduled one runs: whoever triggers means it.
      return handle.trigger(ScheduleOverlapPolicy.ALLOW_ALL);
    case 'backfill':
      // By default the range's runs go one after another (BUFFER_ALL): each instant gets its run.
      return handle.backfill({
        start: op.from,
        end: op.to,
        overlap: op.overlap ? OVERLAP_POLICIES[op.overlap] : ScheduleOverlapPolicy.BUFFER_ALL,
      });
    case 'delete':
      return handle.delete();
  }
}
