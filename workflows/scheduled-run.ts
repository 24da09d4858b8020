/**
 * `scheduledRun`: what a Temporal Schedule starts at each firing (see infra/schedules.ts). It runs the
 * pinned plan as a `pipelineRun` child (so a scheduled run is an ordinary run: `ablate status`,
 * `cancel`, `runs`, lineage all work on it), then has its drift against the pipeline's baseline
 * checked and records the verdict: in the run summary (by the activity) and as the `AblateVerdict`
 * search attribute on this workflow, which is what `ablate runs --drifted` queries.
 *
 * Failure modes it handles:
 * - the run fails (steps failed): `pipelineRun` still completes with a failed summary; the verdict is
 *   `not-checked` and the status says failed;
 * - the run is cancelled (`ablate cancel RUN_ID` on the child) or terminated: the child's failure is
 *   caught, the summary (written by the child when it was cancelled) gets verdict `not-checked`, and
 *   this workflow ends with the child's failure, so the Schedule's recent actions show it;
 * - this workflow is cancelled: the cancellation reaches the child (it cleans up and writes its
 *   summary) and no verdict is recorded;
 * - the drift check keeps failing: it is retried a bounded number of times, then this workflow fails
 *   with that error; the run itself stays completed (its summary has no verdict).
 *
 * The plan and pipeline source are pinned by digest when the schedule is created or applied, so
 * editing the pipeline file later does not change what this schedule runs.
 */
import {
  CancellationScope,
  ChildWorkflowFailure,
  executeChild,
  proxyActivities,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';

import type { VerdictActivities } from '../activities/index';
import type { RunMemo } from '../infra/runs';
import { pipelineRun, type PipelineRunResult } from './pipeline-run';
import type { ArtifactRef } from './plan-types';
import {
  AblatePipeline,
  AblateRunId,
  AblateSchedule,
  AblateStatus,
  AblateVerdict,
  hasAblateSearchAttributes,
} from './search-attributes';

export interface ScheduledRunInput {
  scheduleName: string;
  pipelineName: string;
  /** The compiled plan, pinned when the schedule was created or applied. */
  planRef: ArtifactRef;
  /** The pipeline file's bytes at that time (for people and lineage; the plan is what runs). */
  sourceRef: ArtifactRef;
  taskQueuePrefix: string;
  maxParallel: number;
  noCache: boolean;
  /** The memo each run gets, as `ablate run` would set it. */
  runMemo: RunMemo;
  /** Where a drifted or failed run is announced. */
  notify?: { command?: string; url?: string };
  /** How the schedule was defined, for `ablate schedule list/describe` (this workflow ignores it). */
  definition: ScheduleDefinition;
}

/**
 * A schedule's definition as ablate created or applied it. It travels in the schedule's action
 * because a Temporal Schedule's memo cannot be updated, and cron expressions come back from the
 * server only as calendars.
 */
export interface ScheduleDefinition {
  /** The file it was created or applied from (absolute path, for people). */
  file: string;
  cron?: string;
  /** Interval, e.g. "6h", when the schedule is not a cron expression. */
  every?: string;
  timezone: string;
  noCache: boolean;
  overlap: 'skip' | 'buffer-one' | 'allow-all';
  catchupWindow: string;
  /** Hash of the input and timing: `ablate schedule apply` changes nothing when it is the same. */
  digest: string;
}

export interface ScheduledRunResult {
  runId: string;
  status: PipelineRunResult['status'];
  verdict: string;
}

/** A run id in the same form as `ablate run`'s: `<pipeline>-<UTC yyyymmdd-hhmmss>-<4 hex>`. */
function scheduledRunId(pipeline: string, atMs: number): string {
  const stamp = new Date(atMs).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  // uuid4() is the workflow's seeded random: the same on replay.
  return `${pipeline}-${stamp}-${uuid4().slice(0, 4)}`;
}

export async function scheduledRun(input: ScheduledRunInput): Promise<ScheduledRunResult> {
  const withAttributes = hasAblateSearchAttributes();
  const runId = scheduledRunId(input.pipelineName, workflowInfo().startTime.getTime());
  if (withAttributes) upsertSearchAttributes([{ key: AblateRunId, value: runId }]);

  let result: PipelineRunResult;
  try {
    result = await executeChild(pipelineRun, {
      workflowId: runId,
      taskQueue: workflowInfo().taskQueue,
      args: [
        {
          runId,
          pipelineName: input.pipelineName,
          planRef: input.planRef,
          taskQueuePrefix: input.taskQueuePrefix,
          maxParallel: input.maxParallel,
          noCache: input.noCache,
        },
      ],
      memo: { ...input.runMemo, schedule: input.scheduleName },
      ...(withAttributes
        ? {
            typedSearchAttributes: [
              { key: AblatePipeline, value: input.pipelineName },
              { key: AblateRunId, value: runId },
              { key: AblateSchedule, value: input.scheduleName },
              { key: AblateStatus, value: 'running' },
            ],
          }
        : {}),
    });
  } catch (err) {
    if (err instanceof ChildWorkflowFailure && !CancellationScope.current().consideredCancelled) {
      // The run was cancelled or terminated on its own: record that nothing was compared (where it
      // left a summary), then fail like the run, so the Schedule's recent actions show it.
      const drift = await verdictActivities(input.taskQueuePrefix)
        .recordVerdict({ runId, scheduleName: input.scheduleName, notify: input.notify })
        .catch(() => undefined);
      if (drift && withAttributes) upsertSearchAttributes([{ key: AblateVerdict, value: drift.verdict }]);
    }
    throw err;
  }
  const drift = await verdictActivities(input.taskQueuePrefix).recordVerdict({
    runId,
    scheduleName: input.scheduleName,
    notify: input.notify,
  });
  if (withAttributes) upsertSearchAttributes([{ key: AblateVerdict, value: drift.verdict }]);
  return { runId, status: result.status, verdict: drift.verdict };
}

// Reading two summaries and a baseline: short. Retries cover a store hiccup, not a bug.
const verdictActivities = (prefix: string) =>
  proxyActivities<VerdictActivities>({
    taskQueue: `${prefix}-cpu`,
    startToCloseTimeout: '10 minutes',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 5 },
  });
