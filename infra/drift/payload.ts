/** The notification a drift report gives rise to. */
import type { ArtifactRef } from '../../workflows/plan-types';
import type { DriftReport } from './compare';
import type { NotifyPayload } from './notify';

/** The payload announcing `report` (stored at `ref`): event `drift` or `no-drift`. */
export function driftPayload(report: DriftReport, ref: ArtifactRef): NotifyPayload {
  return {
    event: report.drifted ? 'drift' : 'no-drift',
    pipeline: report.pipeline,
    runId: report.runId,
    baselineRunId: report.baselineRunId,
    verdict: report.verdict,
    report: { uri: ref.uri, digest: ref.digest },
    counts: report.counts,
  };
}
