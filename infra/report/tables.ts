/**
 * The results table, from report data: one row per cell (seeds of a cell folded into mean and spread),
 * and, where the grid has an `init` axis with `scratch` and one pre-trained value, the paper's layout:
 * pre-trained and scratch side by side for each remaining setting (schedule, training-set size, ...)
 * with the difference.
 */
import { axisLabel, type MetricSource, type ReportCell, type ReportData } from './gather';

/** The axis whose cells differ only by random seed; its cells are aggregated. */
export const SEED_AXIS = 'seed';

/** One number of a table: a single cell's value, or the mean over seeds. */
export interface Aggregate {
  mean: number;
  /** Sample standard deviation over seeds (absent with one seed). */
  sd?: number;
  n: number;
  /** Each contributing value and where it came from. */
  sources: Array<MetricSource & { cell: string; value: number }>;
}

export interface ResultRow {
  /** Axis -> label, for every axis but the seed. */
  labels: Record<string, string>;
  cells: ReportCell[];
  metrics: Record<string, Aggregate>;
}

export interface ResultsTable {
  axes: string[];
  metrics: string[];
  rows: ResultRow[];
  /** True when cells were folded over a seed axis. */
  seeds: boolean;
}

/** Rows of the paper's layout: one per setting, pre-trained vs scratch for each metric. */
export interface PairedRow {
  labels: Record<string, string>;
  pretrained?: ResultRow;
  scratch?: ResultRow;
}

export interface PairedTable {
  /** Axes that name a row (all but init and seed). */
  axes: string[];
  /** Label of the pre-trained init value, e.g. `imagenet`. */
  pretrainedLabel: string;
  metrics: string[];
  rows: PairedRow[];
}

function aggregate(values: Aggregate['sources']): Aggregate {
  const n = values.length;
  const mean = values.reduce((a, v) => a + v.value, 0) / n;
  const agg: Aggregate = { mean, n, sources: values };
  if (n > 1) agg.sd = Math.sqrt(values.reduce((a, v) => a + (v.value - mean) ** 2, 0) / (n - 1));
  return agg;
}

/** One row per cell, or per cell-without-seed when the grid has a `seed` axis. */
export function resultsTable(data: ReportData): ResultsTable {
  const seeds = SEED_AXIS in data.axes;
  const axes = Object.keys(data.axes).filter((a) => a !== SEED_AXIS);
  const groups = new Map<string, ReportCell[]>();
  for (const cell of data.cells) {
    const id = JSON.stringify(axes.map((a) => cell.labels[a] ?? ''));
    groups.set(id, [...(groups.get(id) ?? []), cell]);
  }
  const rows: ResultRow[] = [...groups.values()].map((cells) => {
    const metrics: Record<string, Aggregate> = {};
    for (const m of data.metrics) {
      const sources = cells.flatMap((c) =>
        c.metrics[m] === undefined ? [] : [{ ...c.sources[m]!, cell: c.id, value: c.metrics[m] }],
      );
      if (sources.length > 0) metrics[m] = aggregate(sources);
    }
    const first = cells[0]!;
    return { labels: Object.fromEntries(axes.map((a) => [a, first.labels[a] ?? ''])), cells, metrics };
  });
  return { axes, metrics: data.metrics, rows, seeds };
}

/** The paper's layout when the grid compares `scratch` with exactly one pre-trained init; else undefined. */
export function pairedTable(table: ResultsTable, data: ReportData): PairedTable | undefined {
  const inits = (data.axes.init ?? []).map(axisLabel);
  if (inits.length !== 2 || !inits.includes('scratch')) return undefined;
  const pretrainedLabel = inits.find((i) => i !== 'scratch')!;
  const axes = table.axes.filter((a) => a !== 'init');
  const rows = new Map<string, PairedRow>();
  for (const row of table.rows) {
    const id = JSON.stringify(axes.map((a) => row.labels[a]));
    const paired = rows.get(id) ?? { labels: Object.fromEntries(axes.map((a) => [a, row.labels[a]!])) };
    if (row.labels.init === 'scratch') paired.scratch = row;
    else paired.pretrained = row;
    rows.set(id, paired);
  }
  return { axes, pretrainedLabel, metrics: table.metrics, rows: [...rows.values()] };
}

/** Digits shown for metrics (the exact value travels in the HTML's data-value). */
export const PRECISION = 4;

/** `0.1234`, or `0.1234 ± 0.0056` over seeds. */
export function formatAggregate(a: Aggregate): string {
  const mean = a.mean.toFixed(PRECISION);
  return a.sd === undefined ? mean : `${mean} ± ${a.sd.toFixed(PRECISION)}`;
}

/** Scratch minus pre-trained, signed. */
export function formatDelta(scratch?: Aggregate, pretrained?: Aggregate): string {
  if (!scratch || !pretrained) return '';
  const d = scratch.mean - pretrained.mean;
  return `${d >= 0 ? '+' : ''}${d.toFixed(PRECISION)}`;
}
