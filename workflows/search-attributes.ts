/**
 * The Temporal search attributes ablate sets on its workflows, defined once. They make runs findable
 * from any client and from the Web UI: by pipeline, by run id, by the schedule that started them, by
 * ablate's own outcome (not the workflow status: a run with failed steps still completes as a
 * workflow) and by the drift verdict of a scheduled reproduction.
 *
 * ablate registers them on the embedded dev server; on a remote server an operator registers them
 * once (README, "Nightly reproductions"). Where they are missing, ablate starts workflows without them,
 * so these workflows upsert only what was set at start.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';

/** The pipeline's name. */
export const AblatePipeline = defineSearchAttributeKey('AblatePipeline', SearchAttributeType.KEYWORD);
/** ablate's run id (the `pipelineRun` workflow id); on a `scheduledRun`, the run it started. */
export const AblateRunId = defineSearchAttributeKey('AblateRunId', SearchAttributeType.KEYWORD);
/** The schedule that started the run (scheduled runs only). */
export const AblateSchedule = defineSearchAttributeKey('AblateSchedule', SearchAttributeType.KEYWORD);
/** Drift verdict of a scheduled run against its pipeline's baseline (see workflows/scheduled-run.ts). */
export const AblateVerdict = defineSearchAttributeKey('AblateVerdict', SearchAttributeType.KEYWORD);
/** ablate's outcome: running, then completed | failed | cancelled. */
export const AblateStatus = defineSearchAttributeKey('AblateStatus', SearchAttributeType.KEYWORD);

/** Every attribute ablate uses, in registration order. */
export const ABLATE_SEARCH_ATTRIBUTES = [
  AblatePipeline,
  AblateRunId,
  AblateSchedule,
  AblateVerdict,
  AblateStatus,
] as const;

/**
 * Whether this workflow was started with ablate's search attributes (they are registered on its
 * server). Upserting an attribute the server does not know fails the workflow task, so workflows check.
 */
export function hasAblateSearchAttributes(): boolean {
  // Every ablate workflow is started with its pipeline's name when the attributes exist.
  return workflowInfo().typedSearchAttributes.get(AblatePipeline) !== undefined;
}

/** Record ablate's outcome of the run on its workflow, when the attributes are available. */
export function recordRunStatus(status: string): void {
  if (hasAblateSearchAttributes()) upsertSearchAttributes([{ key: AblateStatus, value: status }]);
}
