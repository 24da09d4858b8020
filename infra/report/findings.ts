/**
 * Findings: verdicts on a study's claims, computed from its metrics by a rule the pipeline declares, so
 * no verdict is ever written by hand.
 *
 * A finding names a claim (e.g. "at short schedules pre-training is ahead"), a metric, a quantity and
 * the sign the quantity has when the claim holds. A quantity is evaluated once per seed (cells are
 * paired by the seed axis):
 *   - `{cell: {init: "imagenet"}}`: the metric of the one cell that matches (with the `where` of every
 *     enclosing quantity and of the finding);
 *   - `{minus: [A, B], where?}`: A - B, seed by seed.
 * So "the pre-training gain shrinks from 1x to 4x" is
 *   `{minus: [{where: {schedule: "4x"}, minus: [IMAGENET, SCRATCH]}, {where: {schedule: "1x"}, minus: [IMAGENET, SCRATCH]}]}`
 * with `expect: "negative"`.
 *
 * The rule: over the seeds, `mean` is the mean of the per-seed values and `spread` their range (max -
 * min). A claim is `reproduced` when |mean| > noise x spread and |mean| >= minEffect with the expected
 * sign, `contradicted` when the same holds with the opposite sign, and `not shown` otherwise (the
 * difference is within the seeds' noise). `noise` and `minEffect` are the pipeline's, fixed before the
 * run. With fewer than two seeds there is no spread: every verdict is `not shown`.
 *
 * Pure: no I/O. The `report.findings` step kind reads the rows and publishes the result.
 */
import type { JsonValue } from '../../workflows/plan-types';
import { axisLabel } from './gather';

/** A selection of cells by axis value (an object axis value matches by its `name`). */
export type CellSelector = Record<string, JsonValue>;

export type Quantity = { cell: CellSelector } | { minus: [Quantity, Quantity]; where?: CellSelector };

export interface FindingRule {
  /** Short id, e.g. "a". */
  id: string;
  /** The claim, in words (the paper's finding). */
  claim: string;
  /** Dotted path of the metric in each row's value, e.g. "AP" or "mAP07". */
  metric: string;
  /** Restricts every cell of the quantity (e.g. the data set the claim is about). */
  where?: CellSelector;
  value: Quantity;
  /** Sign of `value` when the claim holds. */
  expect: 'positive' | 'negative';
}

export interface FindingsSpec {
  /** The grid axis that numbers repetitions. @default "seed" */
  seedAxis?: string;
  /** A claim needs |mean| > noise x seed spread. @default 2 */
  noise?: number;
  /** ... and |mean| >= minEffect (in the metric's units). @default 0 */
  minEffect?: number;
  findings: FindingRule[];
}

export interface MetricRow {
  cell: Record<string, JsonValue>;
  /** Metrics of the cell (already read from their artifact). */
  value: JsonValue;
}

export type Verdict = 'reproduced' | 'contradicted' | 'not shown';

export interface FindingResult {
  id: string;
  claim: string;
  metric: string;
  expect: 'positive' | 'negative';
  /** The quantity in words, e.g. `[schedule=1x] init=imagenet - init=scratch`. */
  quantity: string;
  /** Value of the quantity per seed (seed label -> value). */
  perSeed: Record<string, number>;
  mean: number;
  spread: number;
  /** What |mean| had to exceed: max(noise x spread, minEffect). */
  threshold: number;
  verdict: Verdict;
  /** Each cell the quantity read: its selector in words, mean and per-seed values. */
  arms: Array<{ cells: string; mean: number; perSeed: Record<string, number> }>;
}

export interface FindingsResult {
  seedAxis: string;
  noise: number;
  minEffect: number;
  seeds: string[];
  findings: FindingResult[];
}

/** Why a finding cannot be evaluated: a rule or rows that do not fit (the step's input error). */
export class FindingsError extends Error {}

const matches = (cell: Record<string, JsonValue>, sel: CellSelector): boolean =>
  Object.entries(sel).every(([axis, want]) => axis in cell && axisLabel(cell[axis]) === axisLabel(want));

const selectorText = (sel: CellSelector): string =>
  Object.entries(sel)
    .map(([a, v]) => `${a}=${axisLabel(v)}`)
    .join(', ');

function metricOf(value: JsonValue, path: string): number | undefined {
  let v: JsonValue | undefined = value;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = v[part];
  }
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Evaluate every finding of `spec` over `rows`. Throws FindingsError when a rule does not fit the rows. */
export function evaluateFindings(spec: FindingsSpec, rows: MetricRow[]): FindingsResult {
  const seedAxis = spec.seedAxis ?? 'seed';
  const noise = spec.noise ?? 2;
  const minEffect = spec.minEffect ?? 0;
  const allSeeds = [
    ...new Set(rows.filter((r) => seedAxis in r.cell).map((r) => axisLabel(r.cell[seedAxis]))),
  ].sort();
  const ids = new Set<string>();
  const findings = spec.findings.map((rule, i) => {
    const where = `/findings/${i} (${rule.id})`;
    if (ids.has(rule.id)) throw new FindingsError(`${where}: id ${rule.id} is used twice`);
    ids.add(rule.id);
    const arms: FindingResult['arms'] = [];
    const evaluate = (q: Quantity, context: CellSelector, path: string): Map<string, number> => {
      checkQuantity(q, path);
      if ('cell' in q) {
        const sel = { ...context, ...q.cell };
        if (seedAxis in sel) throw new FindingsError(`${path}: selects on the seed axis "${seedAxis}"`);
        const picked = rows.filter((r) => matches(r.cell, sel));
        const perSeed = new Map<string, number>();
        for (const r of picked) {
          const seed = seedAxis in r.cell ? axisLabel(r.cell[seedAxis]) : '-';
          if (perSeed.has(seed)) {
            const other = picked.find((o) => o !== r && axisLabel(o.cell[seedAxis]) === seed)!;
            const differ = Object.keys(r.cell).filter(
              (a) => a !== seedAxis && axisLabel(r.cell[a]) !== axisLabel(other.cell[a]),
            );
            throw new FindingsError(
              `${path}: {${selectorText(sel)}} matches more than one cell per seed (they differ in ${differ.join(', ')}): add those axes to the selector`,
            );
          }
          const v = metricOf(r.value, rule.metric);
          if (v === undefined)
            throw new FindingsError(
              `${path}: cell {${selectorText(r.cell)}} has no numeric metric "${rule.metric}"`,
            );
          perSeed.set(seed, v);
        }
        if (perSeed.size === 0) throw new FindingsError(`${path}: no cell matches {${selectorText(sel)}}`);
        arms.push({
          cells: selectorText(sel),
          mean: mean([...perSeed.values()]),
          perSeed: Object.fromEntries(perSeed),
        });
        return perSeed;
      }
      const inner = { ...context, ...(q.where ?? {}) };
      const a = evaluate(q.minus[0], inner, `${path}/minus/0`);
      const b = evaluate(q.minus[1], inner, `${path}/minus/1`);
      const out = new Map<string, number>();
      for (const [seed, va] of a) {
        const vb = b.get(seed);
        if (vb !== undefined) out.set(seed, va - vb);
      }
      if (out.size === 0) throw new FindingsError(`${path}: the two sides share no seed`);
      return out;
    };
    const perSeed = evaluate(rule.value, rule.where ?? {}, `${where}/value`);
    const values = [...perSeed.values()];
    const m = mean(values);
    const spread = values.length >= 2 ? Math.max(...values) - Math.min(...values) : Number.NaN;
    const threshold = Math.max(noise * spread, minEffect);
    let verdict: Verdict = 'not shown';
    if (values.length >= 2 && Math.abs(m) > threshold) {
      const positive = m > 0;
      verdict = positive === (rule.expect === 'positive') ? 'reproduced' : 'contradicted';
    }
    return {
      id: rule.id,
      claim: rule.claim,
      metric: rule.metric,
      expect: rule.expect,
      quantity: quantityText(rule.value, {
        ...rule.where,
        ...('minus' in rule.value ? rule.value.where : {}),
      }),
      perSeed: Object.fromEntries(perSeed),
      mean: m,
      spread,
      threshold,
      verdict,
      arms,
    } satisfies FindingResult;
  });
  return { seedAxis, noise, minEffect, seeds: allSeeds, findings };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** The shape of one quantity node (the kind's schema cannot describe the recursion). */
function checkQuantity(q: unknown, path: string): asserts q is Quantity {
  if (!isObject(q)) throw new FindingsError(`${path}: expected {cell: {...}} or {minus: [A, B]}`);
  const keys = Object.keys(q);
  if ('cell' in q) {
    if (!isObject(q.cell) || keys.length !== 1)
      throw new FindingsError(`${path}: expected {cell: {AXIS: VALUE, ...}} and nothing else`);
    return;
  }
  if (!Array.isArray(q.minus) || q.minus.length !== 2)
    throw new FindingsError(`${path}: expected {cell: {...}} or {minus: [A, B], where?: {...}}`);
  if ('where' in q && !isObject(q.where)) throw new FindingsError(`${path}/where: expected an object`);
  const extra = keys.filter((k) => k !== 'minus' && k !== 'where');
  if (extra.length > 0) throw new FindingsError(`${path}: unexpected ${extra.join(', ')}`);
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** A quantity in words: `[schedule=1x] (init=imagenet) - (init=scratch)`. */
export function quantityText(q: Quantity, where?: CellSelector): string {
  const prefix = where && Object.keys(where).length > 0 ? `[${selectorText(where)}] ` : '';
  if ('cell' in q) return `${prefix}${selectorText(q.cell)}`;
  const side = (s: Quantity) => ('cell' in s ? quantityText(s) : `(${quantityText(s, s.where)})`);
  return `${prefix}${side(q.minus[0])} - ${side(q.minus[1])}`;
}

const signed = (v: number, digits = 3): string => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(digits)}`;

/** The findings as a Markdown section: one row per claim, with its numbers, seed spread and verdict. */
export function findingsMarkdown(result: FindingsResult): string {
  const lines = [
    '## Findings',
    '',
    `Each verdict is computed by the pipeline's rule: over ${result.seeds.length} seeds (${result.seeds.join(', ')}), a claim is *reproduced* when the mean of its quantity has the expected sign and exceeds ${result.noise} × the seed spread (max − min over seeds)${result.minEffect > 0 ? ` and ${result.minEffect}` : ''}; *contradicted* when it exceeds that with the opposite sign; *not shown* otherwise.`,
    '',
    '| | claim | quantity | per seed | mean | spread | verdict |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  for (const f of result.findings) {
    const perSeed = Object.entries(f.perSeed)
      .map(([s, v]) => `${s}: ${signed(v)}`)
      .join(', ');
    lines.push(
      `| ${esc(f.id)} | ${esc(f.claim)} | ${esc(f.quantity)} (${f.metric}, expected ${f.expect === 'positive' ? '> 0' : '< 0'}) | ${perSeed} | ${signed(f.mean)} | ${Number.isNaN(f.spread) ? 'n/a' : f.spread.toFixed(3)} | **${f.verdict}** |`,
    );
  }
  lines.push('', 'The cells each claim reads (mean over seeds):', '');
  for (const f of result.findings)
    lines.push(`- ${f.id}: ${f.arms.map((a) => `${a.cells} → ${a.mean.toFixed(3)}`).join('; ')}`);
  return `${lines.join('\n')}\n`;
}
