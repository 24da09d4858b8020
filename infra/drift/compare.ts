/**
 * The drift report: every metric of every cell of a run against the same metric of a baseline run,
 * each judged by its tolerance band, each change explained from lineage (causes.ts), and a one-line
 * verdict.
 *
 * Metrics are the value outputs of steps (an artifact output is not a metric; its effect shows in the
 * metrics computed from it). A metric's full name is `<stepId>.<output>[.<field>...]`: the step's
 * template id in the pipeline, the output, and the path to a leaf inside an object value, e.g.
 * `eval_coco.metrics.AP` or `split.perCategory.person.images`; arrays are leaves. Reports and verdicts
 * also use the shortest tail of that name that no other metric of the run shares (`AP` when only one
 * step has an AP). A step shared by several cells is compared once; its row names the axis values
 * its cells share.
 */
import { recordKeys, type StepRecord } from '../../activities/run-records';
import {
  isArtifactRef,
  type ArtifactRef,
  type JsonValue,
  type Plan,
  type PlannedStep,
  type StepOutputs,
} from '../../workflows/plan-types';
import { AblateError, ErrorType } from '../errors';
import type { ArtifactStore } from '../store/index';
import { driftKeys, getBaseline, readSummary } from './baseline';
import { causesOf, ProvenanceCache, templateIdOf, type RunFacts, type StepResult } from './causes';
import { bandFor, deltaOf, sameJson, withinBand, type AppliedBand } from './tolerance';

/** One metric of one cell (or of a step shared by several cells), compared with the baseline. */
export interface DriftRow {
  /** The cell id (`init=scratch,schedule=6x`), or for a shared step the axis values its cells share in braces (`{norm=gn}`), `*` for all. */
  cell: string;
  /** How many cells this row covers. */
  cellCount: number;
  /** Label of the step in this run (of the baseline run when this run lacks it). */
  step: string;
  /** Full metric name `<stepId>.<output>[.<field>...]`. */
  metric: string;
  /** The shortest unambiguous tail of `metric`. */
  shortName: string;
  /** Baseline value; null when the baseline has none. */
  baseline: JsonValue;
  /** This run's value; null when it has none (the step failed or is not in this run). */
  value: JsonValue;
  /** `value - baseline` for numbers, else null. */
  delta: number | null;
  withinTolerance: boolean;
  tolerance: AppliedBand;
  /** Why it moved (empty when it did not): each names the step and the input that differs, nearest first. */
  causes: string[];
}

/** A drift report (stored as a JSON artifact, media type {@link DRIFT_REPORT_MEDIA_TYPE}). */
export interface DriftReport {
  schema: 'ablate.drift-report/v1';
  runId: string;
  baselineRunId: string;
  pipeline: string;
  createdAt: string;
  /** True when any metric is outside its tolerance band. */
  drifted: boolean;
  /** `no drift`, or `drift in N of M cells: <largest drift>; cause: <its nearest cause>`. */
  verdict: string;
  counts: {
    /** Cells of this run. */
    cells: number;
    /** Cells with at least one metric (of theirs or of a step they share) outside tolerance. */
    driftedCells: number;
    /** Rows compared. */
    metrics: number;
    /** Rows whose value differs at all from the baseline. */
    changed: number;
    outsideTolerance: number;
  };
  /** Every metric compared: within tolerance and outside it. */
  cells: DriftRow[];
}

/** Media type of a stored drift report. */
export const DRIFT_REPORT_MEDIA_TYPE = 'application/vnd.ablate.drift-report+json';

/** The record `drift/<runId>`: the latest drift report of a run. */
export interface DriftRecord {
  runId: string;
  baselineRunId: string;
  pipeline: string;
  drifted: boolean;
  verdict: string;
  report: ArtifactRef;
  createdAt: string;
}

export interface ComputeDriftOptions {
  runId: string;
  /** Compare with this run instead of the pipeline's baseline (`ablate baseline set`). */
  baselineRunId?: string;
  /** For tests: the report's time. */
  now?: Date;
}

/** Compare a finished run with its baseline. Reads only; see {@link writeDriftReport} to store it. */
export async function computeDrift(store: ArtifactStore, options: ComputeDriftOptions): Promise<DriftReport> {
  const current = await loadRun(store, options.runId);
  let baselineRunId = options.baselineRunId;
  if (!baselineRunId) {
    const pinned = await getBaseline(store, current.summary.pipeline.name);
    if (!pinned)
      throw new AblateError(
        ErrorType.InvalidInput,
        `pipeline ${current.summary.pipeline.name} has no baseline: pin one with \`ablate baseline set RUN_ID\`, or pass --baseline RUN_ID`,
      );
    baselineRunId = pinned.runId;
  }
  const baseline = await loadRun(store, baselineRunId);
  const provenance = new ProvenanceCache(store);
  const bands = current.plan.tolerance ?? [];

  const rows: DriftRow[] = [];
  // Each cause walk is for one (cell, step) pair; every metric of that step shares it.
  const causeMemo = new Map<string, Promise<string[]>>();
  const explain = (cellId: string, stepId: string) => {
    const key = `${cellId}\u0000${stepId}`;
    let p = causeMemo.get(key);
    if (!p) {
      p = causesOf(baseline, current, cellId, stepId, provenance).then((cs) => cs.map((c) => c.text));
      causeMemo.set(key, p);
    }
    return p;
  };

  const pending: Array<{ row: DriftRow; cellId: string; stepId: string }> = [];
  const rowCells = new Map<DriftRow, readonly string[]>();
  // Rank of a row for the verdict and the cell count: 0 a cell's own step, 1 a step shared by several
  // cells, 2 a fan-in over cells (a results table): it moves whenever any cell does, so it says least.
  const rank = new Map<DriftRow, number>();
  const fanIns = new Set([...fanInSteps(current.plan), ...fanInSteps(baseline.plan)]);
  const missing = new Set<DriftRow>();
  const compareStep = (step: PlannedStep, owner: RunFacts, other: RunFacts, ownerIsCurrent: boolean) => {
    const cellId = step.cells[0];
    if (cellId === undefined) return;
    const stepId = templateIdOf(owner, owner.cells.get(cellId), step.key);
    const otherKey = other.cells.get(cellId)?.steps[stepId];
    // Steps of this run are compared from this side; the baseline side only adds what this run lacks.
    if (!ownerIsCurrent && otherKey !== undefined) return;
    const mine = leaves(owner.records.get(step.key)?.outputs, stepId);
    const theirs = leaves(otherKey ? other.records.get(otherKey)?.outputs : undefined, stepId);
    const names = new Set([...mine.keys(), ...theirs.keys()]);
    if (names.size === 0) return; // no value outputs, or neither side finished: nothing to compare
    for (const metric of names) {
      const value = (ownerIsCurrent ? mine : theirs).get(metric);
      const base = (ownerIsCurrent ? theirs : mine).get(metric);
      const tolerance = bandFor(metric, base ?? value, bands);
      const both = value !== undefined && base !== undefined;
      const row: DriftRow = {
        cell: cellLabel(step, owner.plan),
        cellCount: step.cells.length,
        step: step.label,
        metric,
        shortName: metric,
        baseline: base ?? null,
        value: value ?? null,
        delta: both ? deltaOf(base, value) : null,
        withinTolerance: both && withinBand(base, value, tolerance),
        tolerance,
        causes: [],
      };
      rows.push(row);
      rowCells.set(row, step.cells);
      rank.set(row, fanIns.has(step.key) ? 2 : step.cells.length > 1 ? 1 : 0);
      if (!both) missing.add(row);
      if (!both || !sameJson(base, value)) pending.push({ row, cellId, stepId });
    }
  };
  for (const step of current.plan.steps) compareStep(step, current, baseline, true);
  for (const step of baseline.plan.steps) compareStep(step, baseline, current, false);
  for (const { row, cellId, stepId } of pending) row.causes = await explain(cellId, stepId);

  shortenNames(rows);
  const outside = rows.filter((r) => !r.withinTolerance);
  const driftedCells = new Set<string>();
  const telling = outside.filter((r) => rank.get(r) !== 2);
  for (const r of telling.length > 0 ? telling : outside)
    for (const c of rowCells.get(r) ?? []) driftedCells.add(c);
  const cells = current.plan.cells.length;
  return {
    schema: 'ablate.drift-report/v1',
    runId: current.runId,
    baselineRunId,
    pipeline: current.summary.pipeline.name,
    createdAt: (options.now ?? new Date()).toISOString(),
    drifted: outside.length > 0,
    verdict: verdictOf(outside, driftedCells.size, cells, missing, rank),
    counts: {
      cells,
      driftedCells: driftedCells.size,
      metrics: rows.length,
      changed: pending.length,
      outsideTolerance: outside.length,
    },
    cells: rows,
  };
}

/** Store a report as an artifact and record it as the run's latest (`drift/<runId>`). */
export async function writeDriftReport(store: ArtifactStore, report: DriftReport): Promise<ArtifactRef> {
  const ref = await store.putJson(report, DRIFT_REPORT_MEDIA_TYPE);
  const record: DriftRecord = {
    runId: report.runId,
    baselineRunId: report.baselineRunId,
    pipeline: report.pipeline,
    drifted: report.drifted,
    verdict: report.verdict,
    report: ref,
    createdAt: report.createdAt,
  };
  await store.putRecord(driftKeys.report(report.runId), record);
  return ref;
}

/**
 * A run's summary, plan and step results. The summary carries every finished step's outputs and
 * provenance reference; a step record is read only where it lacks them.
 */
export async function loadRun(store: ArtifactStore, runId: string): Promise<RunFacts> {
  const summary = await readSummary(store, runId);
  const plan = await store.getJson<Plan>(summary.plan);
  const records = new Map<string, StepResult>();
  const missing: string[] = [];
  for (const s of summary.steps) {
    if (s.status !== 'done' && s.status !== 'cached') continue;
    if (s.outputs && s.provenance) records.set(s.key, { outputs: s.outputs, provenance: s.provenance });
    else missing.push(s.key);
  }
  const loaded = await Promise.all(
    missing.map((k) => store.getRecord<StepRecord>(recordKeys.step(runId, k))),
  );
  loaded.forEach((r, i) => {
    if (r) records.set(missing[i]!, r);
  });
  const errors = new Map<string, string>();
  for (const s of summary.steps) if (s.error) errors.set(s.key, s.error);
  return {
    runId,
    summary,
    plan,
    cells: new Map(plan.cells.map((c) => [c.id, c])),
    steps: new Map(plan.steps.map((s) => [s.key, s])),
    records,
    errors,
  };
}

/** Every leaf of the value outputs of a step, by full metric name. */
export function leaves(outputs: StepOutputs | undefined, stepId: string): Map<string, JsonValue> {
  const out = new Map<string, JsonValue>();
  const visit = (v: JsonValue, name: string) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) {
      for (const [k, x] of Object.entries(v)) visit(x, `${name}.${k}`);
    } else out.set(name, v);
  };
  for (const [output, v] of Object.entries(outputs ?? {}))
    if (!isArtifactRef(v)) visit(v, `${stepId}.${output}`);
  return out;
}

/** Steps that gather the results of other cells (a `groupBy` table): a step they need covers fewer cells. */
function fanInSteps(plan: Plan): Set<string> {
  const cellCount = new Map(plan.steps.map((s) => [s.key, s.cells.length]));
  return new Set(
    plan.steps.filter((s) => s.needs.some((k) => (cellCount.get(k) ?? 0) < s.cells.length)).map((s) => s.key),
  );
}

function cellLabel(step: PlannedStep, plan: Plan): string {
  if (step.cells.length === 1) return step.cells[0]!;
  if (step.cells.length === plan.cells.length) return '*';
  const brace = step.label.indexOf('{');
  return brace >= 0 ? step.label.slice(brace) : `{${step.cells.length} cells}`;
}

/** Give each row the shortest tail of its metric name that no other metric name ends with. */
function shortenNames(rows: DriftRow[]): void {
  const names = [...new Set(rows.map((r) => r.metric))];
  const tailCount = new Map<string, number>();
  for (const name of names) {
    const parts = name.split('.');
    for (let i = 0; i < parts.length; i++) {
      const tail = parts.slice(i).join('.');
      tailCount.set(tail, (tailCount.get(tail) ?? 0) + 1);
    }
  }
  const short = new Map<string, string>();
  for (const name of names) {
    const parts = name.split('.');
    let best = name;
    for (let i = parts.length - 1; i >= 0; i--) {
      const tail = parts.slice(i).join('.');
      if (tailCount.get(tail) === 1) {
        best = tail;
        break;
      }
    }
    short.set(name, best);
  }
  for (const r of rows) r.shortName = short.get(r.metric) ?? r.metric;
}

/** `no drift`, or the largest drift (relative to its band), where, and its nearest cause. */
export function verdictOf(
  outside: DriftRow[],
  driftedCells: number,
  cells: number,
  missing: ReadonlySet<DriftRow> = new Set(),
  rank: ReadonlyMap<DriftRow, number> = new Map(),
): string {
  if (outside.length === 0) return 'no drift';
  const severity = (r: DriftRow) => {
    if (r.delta === null) return Number.POSITIVE_INFINITY;
    const allowed = (r.tolerance.abs ?? 0) + (r.tolerance.rel ?? 0) * Math.abs(Number(r.baseline));
    return allowed > 0 ? Math.abs(r.delta) / allowed : Math.abs(r.delta) * 1e12;
  };
  let top = outside[0]!;
  const before = (a: DriftRow, b: DriftRow) => {
    const ra = rank.get(a) ?? 0;
    const rb = rank.get(b) ?? 0;
    if (ra !== rb) return ra < rb;
    // A top-level metric (AP) sums up the nested ones (perCategory.person): it makes the better headline.
    const da = a.metric.split('.').length;
    const db = b.metric.split('.').length;
    return da !== db ? da < db : severity(a) > severity(b);
  };
  for (const r of outside) if (before(r, top)) top = r;
  let what: string;
  if (missing.has(top)) what = `${top.shortName} ${top.value === null ? 'missing' : 'new'}`;
  else if (top.delta !== null) what = `${top.shortName} ${signed(top.delta)}`;
  else what = `${top.shortName} ${short(top.baseline)} -> ${short(top.value)}`;
  const others = new Set(outside.map((r) => `${r.metric}\u0000${r.cell}`)).size - 1;
  const more = others > 0 ? ` (+${others} more)` : '';
  const cause = top.causes[0] ? `; cause: ${top.causes[0]}` : '';
  return `drift in ${driftedCells} of ${cells} cell${cells === 1 ? '' : 's'}: ${what} on ${top.cell}${more}${cause}`;
}

function signed(n: number): string {
  const text = String(Number(n.toPrecision(3)));
  return n > 0 ? `+${text}` : text;
}

function short(v: JsonValue): string {
  const text = JSON.stringify(v);
  return text.length > 30 ? `${text.slice(0, 27)}...` : text;
}
