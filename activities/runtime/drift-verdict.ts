/**
 * `recordVerdict`: the last activity of a scheduled run. It compares the finished run with its
 * pipeline's baseline through a {@link DriftCheck} (activities/drift-check.ts by default) and
 * records the outcome in the run summary, so `ablate runs` and `ablate status` show it whoever reads
 * the store. The workflow then sets the `AblateVerdict` search attribute from the returned verdict.
 *
 * A run that did not complete is not compared (its metrics are partial): its verdict is
 * `not-checked`, and its status already says failed or cancelled.
 */
import { notify } from '../../infra/drift/notify';
import { permanent, ErrorType } from '../../infra/errors';
import type { ArtifactStore } from '../../infra/store/index';
import { recordKeys, type DriftOutcome, type RunSummary } from './run-records';

/** What a drift check is asked. */
export interface DriftCheckInput {
  runId: string;
  pipeline: string;
  summary: RunSummary;
}

/** Compares a completed run with its pipeline's baseline. */
export type DriftCheck = (input: DriftCheckInput) => Promise<DriftOutcome>;

export interface RecordVerdictInput {
  runId: string;
  scheduleName: string;
  /** Announce a drifted or failed run here (a notifier that fails is logged, never fatal). */
  notify?: { command?: string; url?: string };
}

export function createVerdictActivities(deps: { store: ArtifactStore; checkDrift: DriftCheck }) {
  const { store, checkDrift } = deps;

  async function recordVerdict(input: RecordVerdictInput): Promise<DriftOutcome> {
    const key = recordKeys.summary(input.runId);
    const summary = await store.getRecord<RunSummary>(key);
    if (!summary)
      throw permanent(ErrorType.ArtifactNotFound, `run ${input.runId} has no summary record (${key})`);
    const drift: DriftOutcome =
      summary.status === 'completed'
        ? await checkDrift({ runId: input.runId, pipeline: summary.pipeline.name, summary })
        : { verdict: 'not-checked', detail: `the run ${summary.status}` };
    await store.putRecord(key, { ...summary, schedule: input.scheduleName, drift });
    const event =
      summary.status !== 'completed' ? 'failure' : drift.verdict === 'drifted' ? 'drift' : undefined;
    if (event && (input.notify?.command || input.notify?.url))
      await notify(input.notify, {
        event,
        pipeline: summary.pipeline.name,
        runId: input.runId,
        schedule: input.scheduleName,
        verdict:
          event === 'failure'
            ? `run ${summary.status}${summary.counts.failed ? ` with ${summary.counts.failed} failed step${summary.counts.failed === 1 ? '' : 's'}` : ''}`
            : (drift.detail ?? 'drifted'),
        ...(drift.baselineRunId ? { baselineRunId: drift.baselineRunId } : {}),
        ...(drift.report ? { report: { uri: drift.report.uri, digest: drift.report.digest } } : {}),
      });
    return drift;
  }

  return { recordVerdict };
}
