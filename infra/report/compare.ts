/**
 * Compare two runs cell by cell: for each cell both have, every metric's two values and their
 * difference; the cells only one run has; and for each cell whose numbers differ, the inputs that
 * differ along its steps (parameters, input artifact digests, code), step template by step template.
 * A plain diff of provenance facts; the drift module (infra/drift) walks causes further upstream.
 */
import type { JsonValue } from '../../workflows/plan-types';
import type { ArtifactStore } from '../store/index';
import { gatherReport, type ReportCell, type ReportData, type ReportStep } from './gather';

/** One metric of one cell in both runs. */
export interface MetricDiff {
  a: number | null;
  b: number | null;
  /** b - a, when both have it. */
  diff: number | null;
}

/** One input that differs between the two runs' versions of a step. */
export interface InputDiff {
  /** The step template id, e.g. `train`. */
  step: string;
  /** What differs: `params.lr`, `input /train`, `code`, `kind`, `step` (present in one run only). */
  field: string;
  a: JsonValue;
  b: JsonValue;
}

export interface CellComparison {
  id: string;
  metrics: Record<string, MetricDiff>;
  /** True when any metric differs. */
  differs: boolean;
  /** For a differing cell: the inputs that differ. */
  inputs: InputDiff[];
}

export interface RunComparison {
  runA: string;
  runB: string;
  metrics: string[];
  cells: CellComparison[];
  onlyInA: string[];
  onlyInB: string[];
}

function flat(value: JsonValue, prefix: string, out: Map<string, JsonValue>): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flat(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, value);
}

/** What differs between two versions of one step (same template, different runs). */
export function stepDifferences(
  step: string,
  a: ReportStep | undefined,
  b: ReportStep | undefined,
): InputDiff[] {
  if (!a || !b) return [{ step, field: 'step', a: a ? a.key : null, b: b ? b.key : null }];
  if (a.key === b.key) return [];
  const la = a.lineage;
  const lb = b.lineage;
  if (!la || !lb) return [{ step, field: 'status', a: a.status, b: b.status }];
  const out: InputDiff[] = [];
  if (la.kind !== lb.kind || la.kindVersion !== lb.kindVersion)
    out.push({ step, field: 'kind', a: `${la.kind} v${la.kindVersion}`, b: `${lb.kind} v${lb.kindVersion}` });
  if (la.code.commit !== lb.code.commit || la.code.kind !== lb.code.kind)
    out.push({
      step,
      field: 'code',
      a: `${la.code.commit}${la.code.kind ? ` ${la.code.kind}` : ''}`,
      b: `${lb.code.commit}${lb.code.kind ? ` ${lb.code.kind}` : ''}`,
    });
  const pa = new Map<string, JsonValue>();
  const pb = new Map<string, JsonValue>();
  flat(la.params, '', pa);
  flat(lb.params, '', pb);
  for (const k of [...new Set([...pa.keys(), ...pb.keys()])].sort())
    if (JSON.stringify(pa.get(k)) !== JSON.stringify(pb.get(k)))
      out.push({ step, field: `params.${k}`, a: pa.get(k) ?? null, b: pb.get(k) ?? null });
  const ia = new Map(la.inputs.map((i) => [i.path, i.digest]));
  const ib = new Map(lb.inputs.map((i) => [i.path, i.digest]));
  for (const k of [...new Set([...ia.keys(), ...ib.keys()])].sort())
    if (ia.get(k) !== ib.get(k))
      out.push({ step, field: `input ${k}`, a: ia.get(k) ?? null, b: ib.get(k) ?? null });
  return out;
}

function compareCells(a: ReportCell, b: ReportCell, metrics: string[], da: ReportData, db: ReportData) {
  const out: CellComparison = { id: a.id, metrics: {}, differs: false, inputs: [] };
  for (const m of metrics) {
    const va = a.metrics[m] ?? null;
    const vb = b.metrics[m] ?? null;
    if (va === null && vb === null) continue;
    out.metrics[m] = { a: va, b: vb, diff: va !== null && vb !== null ? vb - va : null };
    if (va !== vb) out.differs = true;
  }
  if (out.differs) {
    const sa = new Map(da.steps.map((s) => [s.key, s]));
    const sb = new Map(db.steps.map((s) => [s.key, s]));
    for (const t of [...new Set([...Object.keys(a.steps), ...Object.keys(b.steps)])].sort()) {
      const ka = a.steps[t];
      const kb = b.steps[t];
      out.inputs.push(...stepDifferences(t, ka ? sa.get(ka) : undefined, kb ? sb.get(kb) : undefined));
    }
  }
  return out;
}

/** Compare two finished runs of (usually) the same pipeline. */
export async function compareRuns(store: ArtifactStore, runA: string, runB: string): Promise<RunComparison> {
  const [da, db] = await Promise.all([gatherReport(store, runA), gatherReport(store, runB)]);
  const metrics = [...new Set([...da.metrics, ...db.metrics])];
  const inB = new Map(db.cells.map((c) => [c.id, c]));
  const inA = new Set(da.cells.map((c) => c.id));
  const cells = da.cells.flatMap((c) => {
    const other = inB.get(c.id);
    return other ? [compareCells(c, other, metrics, da, db)] : [];
  });
  return {
    runA,
    runB,
    metrics,
    cells,
    onlyInA: da.cells.filter((c) => !inB.has(c.id)).map((c) => c.id),
    onlyInB: db.cells.filter((c) => !inA.has(c.id)).map((c) => c.id),
  };
}

const num = (v: number | null) => (v === null ? '-' : v.toFixed(4));
const signed = (v: number | null) => (v === null ? '-' : `${v >= 0 ? '+' : ''}${v.toFixed(4)}`);
const short = (v: JsonValue) => {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /^sha256:[0-9a-f]{64}$/.test(s) ? `${s.slice(0, 19)}…` : s.length > 60 ? `${s.slice(0, 59)}…` : s;
};

/** The comparison as text: a table per cell of A, B and B - A, then what differs. */
export function comparisonText(c: RunComparison): string {
  const lines = [`A = ${c.runA}`, `B = ${c.runB}`, ''];
  const header = ['cell', ...c.metrics.flatMap((m) => [`${m} A`, `${m} B`, `Δ ${m}`])];
  const rows = c.cells.map((cell) => [
    `${cell.differs ? '*' : ' '} ${cell.id}`,
    ...c.metrics.flatMap((m) => {
      const d = cell.metrics[m];
      return d ? [num(d.a), num(d.b), signed(d.diff)] : ['', '', ''];
    }),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) =>
    r.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ');
  lines.push(fmt(header), ...rows.map(fmt));
  const differing = c.cells.filter((x) => x.differs);
  lines.push('', `${differing.length} of ${c.cells.length} shared cells differ (*)`);
  for (const cell of differing) {
    lines.push('', `${cell.id}:`);
    if (cell.inputs.length === 0)
      lines.push('  same inputs, code and params: the difference is nondeterminism');
    for (const d of cell.inputs) lines.push(`  ${d.step} ${d.field}: ${short(d.a)} -> ${short(d.b)}`);
  }
  if (c.onlyInA.length) lines.push('', `only in A: ${c.onlyInA.join('; ')}`);
  if (c.onlyInB.length) lines.push('', `only in B: ${c.onlyInB.join('; ')}`);
  return lines.join('\n');
}
