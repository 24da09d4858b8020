/**
 * Baselines: the run a pipeline's later runs are compared with. One record per pipeline name,
 * `baselines/<pipeline>` -> {@link BaselineRecord}; setting it again replaces it.
 */
import { hostname, userInfo } from 'node:os';

import { recordKeys, type RunSummary } from '../../activities/run-records';
import { AblateError, ErrorType } from '../errors';
import type { ArtifactStore } from '../store/index';

/** A pipeline's pinned baseline run. */
export interface BaselineRecord {
  pipeline: string;
  runId: string;
  /** ISO time it was set. */
  setAt: string;
  /** `user@host` that set it. */
  setBy: string;
}

/** Record keys of drift bookkeeping, defined once. */
export const driftKeys = {
  baseline: (pipeline: string) => `baselines/${pipeline}`,
  /** The latest drift report of a run: {@link DriftRecord}. */
  report: (runId: string) => `drift/${runId}`,
};

/** A run's summary, or a clear error when the store has none. */
export async function readSummary(store: ArtifactStore, runId: string): Promise<RunSummary> {
  const summary = await store.getRecord<RunSummary>(recordKeys.summary(runId));
  if (summary) return summary;
  const steps = await store.listRecords(recordKeys.steps(runId));
  throw new AblateError(
    ErrorType.InvalidInput,
    steps.length > 0
      ? `run ${runId} has not finished (no run summary in ${store.url}); compare it once it has ended`
      : `no run ${runId} in ${store.url}`,
  );
}

/**
 * Pin `runId` as the baseline of its pipeline (or of `pipeline`, when given). The run must have
 * completed: a failed or cancelled run has cells without results to compare with.
 */
export async function setBaseline(
  store: ArtifactStore,
  options: { runId: string; pipeline?: string; setBy?: string; now?: Date },
): Promise<BaselineRecord> {
  const summary = await readSummary(store, options.runId);
  if (summary.status !== 'completed')
    throw new AblateError(
      ErrorType.InvalidInput,
      `run ${options.runId} ${summary.status}; a baseline must be a completed run`,
    );
  const pipeline = options.pipeline ?? summary.pipeline.name;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(pipeline))
    throw new AblateError(
      ErrorType.InvalidInput,
      `bad pipeline name ${JSON.stringify(pipeline)}: letters, digits, '.', '_', '-'`,
    );
  const record: BaselineRecord = {
    pipeline,
    runId: options.runId,
    setAt: (options.now ?? new Date()).toISOString(),
    setBy: options.setBy ?? defaultSetBy(),
  };
  await store.putRecord(driftKeys.baseline(pipeline), record);
  return record;
}

/** The baseline of `pipeline`, or undefined when none was set. */
export async function getBaseline(
  store: ArtifactStore,
  pipeline: string,
): Promise<BaselineRecord | undefined> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(pipeline))
    throw new AblateError(
      ErrorType.InvalidInput,
      `bad pipeline name ${JSON.stringify(pipeline)}: letters, digits, '.', '_', '-'`,
    );
  return store.getRecord<BaselineRecord>(driftKeys.baseline(pipeline));
}

function defaultSetBy(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): the host still says where it came from.
  }
  return `${user}@${hostname()}`;
}
