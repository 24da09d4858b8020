/**
 * Drift detection: baselines, tolerance bands, drift reports that name their likely cause, and
 * notifications. What a scheduled run calls when it ends:
 *
 * ```ts
 * const report = await computeDrift(store, { runId });
 * const ref = await writeDriftReport(store, report);
 * if (report.drifted) await notify(options, driftPayload(report, ref));
 * ```
 */
export { getBaseline, setBaseline, driftKeys, type BaselineRecord } from './baseline';
export { causesOf, ownDifferences, type Cause, type CauseKind, type RunFacts } from './causes';
export {
  computeDrift,
  DRIFT_REPORT_MEDIA_TYPE,
  leaves,
  loadRun,
  verdictOf,
  writeDriftReport,
  type ComputeDriftOptions,
  type DriftRecord,
  type DriftReport,
  type DriftRow,
} from './compare';
export {
  DEFAULT_NOTIFY_TIMEOUT_MS,
  notify,
  notifyEnv,
  type NotifyOptions,
  type NotifyPayload,
  type NotifyResult,
} from './notify';
export { bandFor, DEFAULT_FLOAT_ABS, toleranceIssues, withinBand, type AppliedBand } from './tolerance';
export { driftPayload } from './payload';
