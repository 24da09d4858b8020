/**
 * The {@link DriftCheck} scheduled runs use: compare the run with its pipeline's pinned baseline
 * (`ablate baseline set`) through the drift module, store the report, and turn it into a verdict.
 */
import { computeDrift, getBaseline, writeDriftReport } from '../../infra/drift/index';
import type { ArtifactStore } from '../../infra/store/index';
import type { DriftCheck } from './drift-verdict';

export function createDriftCheck(store: ArtifactStore): DriftCheck {
  return async ({ runId, pipeline }) => {
    const baseline = await getBaseline(store, pipeline);
    if (!baseline)
      return {
        verdict: 'no-baseline',
        detail: `pipeline ${pipeline} has no baseline: pin one with \`ablate baseline set RUN_ID\``,
      };
    const report = await computeDrift(store, { runId, baselineRunId: baseline.runId });
    const ref = await writeDriftReport(store, report);
    return {
      verdict: report.drifted ? 'drifted' : 'ok',
      baselineRunId: report.baselineRunId,
      report: ref,
      detail: report.verdict,
    };
  };
}
