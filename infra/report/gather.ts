/**
 * The facts a report shows, read from the store once: the run summary, its plan (which steps each cell
 * used), the step records and their provenance, the metrics of each cell, and the curves the training
 * steps wrote. Rendering (html.ts, markdown.ts, charts.ts) works only on this value, so a report of a
 * synthetic run needs nothing but records in a store.
 */
import type { FindingsResult } from './findings';
import type { ProvenanceRecord } from '../../activities/runtime/provenance';
import { recordKeys, type RunSummary, type StepRecord } from '../../activities/runtime/run-records';
import { isArtifactRef, type JsonValue, type Plan } from '../../workflows/plan-types';
import { AblateError, ErrorType } from '../errors';
import type { ArtifactStore } from '../store/index';

/** Metrics a report shows, in this order, where any cell has them (COCO AP*, then VOC mAP). */
export const METRIC_ORDER = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'mAP07', 'mAP12'] as const;

/** Where one number came from: the step that produced it and the output field. */
export interface MetricSource {
  stepKey: string;
  output: string;
}

/** One grid cell with its numbers. */
export interface ReportCell {
  id: string;
  /** Axis -> value as declared (objects such as `{name, images}` stay objects). */
  values: Record<string, JsonValue>;
  /** Axis -> the text shown for the value (an object's `name`). */
  labels: Record<string, string>;
  status: RunSummary['cells'][number]['status'];
  /** Metric -> value, only those the cell's eval (or train) step reported. */
  metrics: Record<string, number>;
  sources: Record<string, MetricSource>;
  /** Key of the cell's train.detector step, when it has one. */
  trainStep?: string;
  /** Step template id -> key of the step this cell used (from the plan). */
  steps: Record<string, string>;
}

/** One step as the report shows it (timeline and lineage). */
export interface ReportStep {
  key: string;
  label: string;
  uses: string;
  status: string;
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
  error?: string;
  /** From the provenance record; absent for steps that never finished. */
  lineage?: StepLineage;
  /**
   * Without a provenance record (a `report.html` step sees only its inputs): the artifacts its numbers
   * came from, by digest.
   */
  sources?: Array<{ path: string; digest: string }>;
}

/** The provenance facts behind a step, trimmed for display. */
export interface StepLineage {
  kind: string;
  kindVersion: string;
  cacheKey: string;
  computedIn: string;
  code: { commit: string; dirty: boolean; version: string; kind?: string };
  /** Parameters without artifact references (those are listed as inputs). */
  params: Record<string, JsonValue>;
  inputs: Array<{ path: string; digest: string; fromStep?: string }>;
  outputs: Array<{ name: string; digest?: string; value?: JsonValue }>;
  parents: string[];
  provenance: string;
}

/** A curve of one cell: AP or loss against iterations. */
export interface CurvePoint {
  cell: string;
  iteration: number;
  value: number;
}

export interface ReportData {
  runId: string;
  pipeline: { name: string; description: string; digest: string };
  status: RunSummary['status'];
  startedAt: string;
  endedAt: string;
  axes: Record<string, JsonValue[]>;
  cells: ReportCell[];
  /** Metrics any cell has, in {@link METRIC_ORDER} order. */
  metrics: string[];
  steps: ReportStep[];
  apCurves: Array<CurvePoint & { metric: string }>;
  lossCurves: CurvePoint[];
  /** The verdicts of the run's `report.findings` step, where it has one. */
  findings?: FindingsResult;
}

/** Text for an axis value: an object's `name`, else the JSON of a non-string. */
export function axisLabel(v: JsonValue | undefined): string {
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && typeof v.name === 'string') return v.name;
  return typeof v === 'string' ? v : JSON.stringify(v ?? null);
}

function containsArtifact(v: JsonValue): boolean {
  if (isArtifactRef(v)) return true;
  if (Array.isArray(v)) return v.some(containsArtifact);
  if (v !== null && typeof v === 'object') return Object.values(v).some(containsArtifact);
  return false;
}

/** Map with at most `limit` calls in flight (an S3 store answers many small reads faster in parallel). */
async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

async function readCurve(store: ArtifactStore, ref: unknown): Promise<unknown> {
  if (!isArtifactRef(ref)) return undefined;
  return store.getJson(ref);
}

/** Read everything a report of `runId` needs. Throws InvalidInput when the run has no summary. */
export async function gatherReport(store: ArtifactStore, runId: string): Promise<ReportData> {
  const summary = await store.getRecord<RunSummary>(recordKeys.summary(runId));
  if (!summary)
    throw new AblateError(
      ErrorType.InvalidInput,
      `no summary of run ${runId} in ${store.url}: a report needs a finished run (see \`ablate runs\`)`,
    );
  const plan = await store.getJson<Plan>(summary.plan);
  const records = new Map<string, StepRecord>();
  const provs = new Map<string, ProvenanceRecord>();
  const finished = summary.steps.filter((s) => s.status === 'done' || s.status === 'cached');
  await mapLimit(finished, 16, async (s) => {
    const record = await store.getRecord<StepRecord>(recordKeys.step(runId, s.key));
    if (!record) return;
    records.set(s.key, record);
    provs.set(s.key, await store.getJson<ProvenanceRecord>(record.provenance));
  });

  const steps: ReportStep[] = summary.steps.map((s) => {
    const r = records.get(s.key);
    const p = provs.get(s.key);
    const step: ReportStep = { key: s.key, label: s.label, uses: s.uses, status: s.status };
    if (r) Object.assign(step, { startedAt: r.startedAt, endedAt: r.endedAt, durationMs: r.durationMs });
    if (s.error) step.error = s.error;
    if (p && r) {
      const params = Object.fromEntries(
        Object.entries((p.params ?? {}) as Record<string, JsonValue>).filter(([, v]) => !containsArtifact(v)),
      );
      step.lineage = {
        kind: p.step.kind,
        kindVersion: p.step.kindVersion,
        cacheKey: r.cacheKey,
        computedIn: p.runId,
        code: {
          commit: p.code.commit,
          dirty: p.code.dirty,
          version: p.code.version,
          ...(p.code.kind ? { kind: p.code.kind } : {}),
        },
        params,
        inputs: p.inputs.map((i) => ({
          path: i.path,
          digest: i.digest,
          ...(i.fromStep ? { fromStep: i.fromStep } : {}),
        })),
        outputs: Object.entries(r.outputs).map(([name, v]) =>
          isArtifactRef(v) ? { name, digest: v.digest } : { name, value: v },
        ),
        parents: p.parents,
        provenance: r.provenance.digest,
      };
    }
    return step;
  });

  const byKey = new Map(plan.steps.map((s) => [s.key, s]));
  const plannedCells = new Map(plan.cells.map((c) => [c.id, c]));
  const metricSet = new Set<string>();
  const apCurves: ReportData['apCurves'] = [];
  const lossCurves: CurvePoint[] = [];
  const cells = await mapLimit(summary.cells, 8, async (c): Promise<ReportCell> => {
    const planned = plannedCells.get(c.id);
    const keys = Object.values(planned?.steps ?? {});
    const metrics: Record<string, number> = {};
    const sources: Record<string, MetricSource> = {};
    let trainStep: string | undefined;
    // Eval steps' numbers win over train steps' (a train step's metrics are its own quick val pass).
    const ordered = keys
      .map((k) => byKey.get(k))
      .filter((s) => s !== undefined)
      .sort((a, b) => Number(a.uses.startsWith('eval.')) - Number(b.uses.startsWith('eval.')));
    for (const s of ordered) {
      if (s.uses === 'train.detector') trainStep = s.key;
      const m = records.get(s.key)?.outputs.metrics;
      if (m === null || typeof m !== 'object' || Array.isArray(m) || isArtifactRef(m)) continue;
      for (const name of METRIC_ORDER) {
        const v = (m as Record<string, JsonValue>)[name];
        // -1 is COCO's "undefined" (no object of that size): not a number to show.
        if (typeof v === 'number' && v !== -1) {
          metrics[name] = v;
          sources[name] = { stepKey: s.key, output: `metrics.${name}` };
          metricSet.add(name);
        }
      }
    }
    if (trainStep && records.has(trainStep)) {
      const out = records.get(trainStep)!.outputs;
      const ap = (await readCurve(store, out.apCurve)) as
        { points?: Array<Record<string, number>> } | undefined;
      for (const pt of ap?.points ?? [])
        for (const metric of ['AP', 'AP50', 'AP75'])
          if (typeof pt[metric] === 'number' && typeof pt.iteration === 'number')
            apCurves.push({ cell: c.id, iteration: pt.iteration, value: pt[metric], metric });
      const loss = (await readCurve(store, out.lossCurve)) as
        { points?: Array<[number, number]> } | undefined;
      for (const [iteration, value] of loss?.points ?? [])
        if (Number.isFinite(value)) lossCurves.push({ cell: c.id, iteration, value });
    }
    return {
      id: c.id,
      values: c.values,
      labels: Object.fromEntries(Object.entries(c.values).map(([a, v]) => [a, axisLabel(v)])),
      status: c.status,
      metrics,
      sources,
      ...(trainStep ? { trainStep } : {}),
      steps: planned?.steps ?? {},
    };
  });
  // The study's findings, as its report.findings step computed them (the first such step).
  const findingsStep = summary.steps.find((s) => s.uses === 'report.findings' && records.has(s.key));
  const findingsRef = findingsStep && records.get(findingsStep.key)!.outputs.json;
  const findings = isArtifactRef(findingsRef) ? await store.getJson<FindingsResult>(findingsRef) : undefined;
  return {
    ...(findings ? { findings } : {}),
    runId,
    pipeline: { ...summary.pipeline, description: plan.pipeline.description },
    status: summary.status,
    startedAt: summary.startedAt,
    endedAt: summary.endedAt,
    axes: plan.axes,
    cells,
    metrics: METRIC_ORDER.filter((m) => metricSet.has(m)),
    steps,
    apCurves,
    lossCurves,
  };
}
