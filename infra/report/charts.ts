/**
 * The report's charts as Vega-Lite specs, compiled to Vega and rendered to SVG in Node (no browser, no
 * CDN): the SVG goes inline into the HTML, so the report opens offline.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

import type { ReportData } from './gather';
import { SEED_AXIS } from './tables';

/** A chart of the report: its anchor id, a title and the Vega-Lite spec. */
export interface ChartSpec {
  id: string;
  title: string;
  spec: TopLevelSpec;
}

/** Most points drawn per curve: a 90k-iteration loss curve would otherwise make a multi-MB SVG. */
const MAX_POINTS_PER_CURVE = 150;

function thin<T extends { cell: string; iteration: number }>(points: T[]): T[] {
  const byCell = new Map<string, T[]>();
  for (const p of points) byCell.set(p.cell, [...(byCell.get(p.cell) ?? []), p]);
  const out: T[] = [];
  for (const pts of byCell.values()) {
    pts.sort((a, b) => a.iteration - b.iteration);
    const step = Math.max(1, Math.ceil(pts.length / MAX_POINTS_PER_CURVE));
    // Keep the last point: it is the final model the table reports.
    out.push(...pts.filter((_, i) => i % step === 0 || i === pts.length - 1));
  }
  return out;
}

/** `init=scratch, norm=gn`: the series a curve belongs to (init and norm where the grid has them). */
function seriesOf(data: ReportData): (cellId: string) => string {
  const axes = ['init', 'norm'].filter((a) => a in data.axes);
  const byId = new Map(data.cells.map((c) => [c.id, c]));
  return (id) => {
    const c = byId.get(id);
    if (!c || axes.length === 0) return 'run';
    return axes.map((a) => `${a}=${c.labels[a]}`).join(', ');
  };
}

/** The training-set-size axis: `subset` or any axis whose values carry a number of images. */
function sizeAxis(data: ReportData): { axis: string; size: (v: unknown) => number | undefined } | undefined {
  const size = (v: unknown): number | undefined =>
    typeof v === 'number'
      ? v
      : v !== null && typeof v === 'object' && typeof (v as { images?: unknown }).images === 'number'
        ? (v as { images: number }).images
        : undefined;
  for (const [axis, values] of Object.entries(data.axes)) {
    if (axis === SEED_AXIS) continue;
    if (
      (axis === 'subset' || values.some((v) => typeof v === 'object')) &&
      values.every((v) => size(v) !== undefined)
    )
      return { axis, size };
  }
  return undefined;
}

const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', width: 520, height: 280 } as const;

/** The specs for a run; a chart whose data the run lacks is left out. */
export function chartSpecs(data: ReportData): ChartSpec[] {
  const charts: ChartSpec[] = [];
  const series = seriesOf(data);
  const cellAxes = Object.keys(data.axes);
  const cellText = new Map(
    data.cells.map((c) => [c.id, cellAxes.map((a) => `${a}=${c.labels[a]}`).join(', ') || c.id]),
  );
  const ap = data.apCurves.filter((p) => p.metric === 'AP');
  if (ap.length > 0) {
    charts.push({
      id: 'chart-ap-iterations',
      title: 'AP vs training iterations',
      spec: {
        ...base,
        data: {
          values: thin(ap).map((p) => ({ ...p, series: series(p.cell), cellText: cellText.get(p.cell) })),
        },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'iteration', type: 'quantitative', title: 'iteration' },
          y: { field: 'value', type: 'quantitative', title: 'COCO AP' },
          color: { field: 'series', type: 'nominal', title: 'init / norm' },
          detail: { field: 'cellText', type: 'nominal' },
        },
      },
    });
  }
  const size = sizeAxis(data);
  const withAp = data.cells.filter((c) => c.metrics.AP !== undefined);
  if (size && withAp.length > 0) {
    const others = cellAxes.filter((a) => a !== size.axis && a !== SEED_AXIS && a !== 'init' && a !== 'norm');
    const values = withAp.map((c) => ({
      size: size.size(c.values[size.axis]),
      AP: c.metrics.AP,
      series: series(c.id),
      setting: others.map((a) => `${a}=${c.labels[a]}`).join(', ') || 'all',
    }));
    charts.push({
      id: 'chart-ap-size',
      title: 'AP vs training-set size',
      spec: {
        ...base,
        data: { values },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'size', type: 'quantitative', scale: { type: 'log' }, title: `${size.axis} (images)` },
          // Mean over seeds, where the grid has them.
          y: { field: 'AP', type: 'quantitative', aggregate: 'mean', title: 'COCO AP' },
          color: { field: 'series', type: 'nominal', title: 'init / norm' },
          strokeDash: { field: 'setting', type: 'nominal', title: others.join(', ') || 'setting' },
        },
      },
    });
  }
  if (data.lossCurves.length > 0) {
    charts.push({
      id: 'chart-loss',
      title: 'Training loss',
      spec: {
        ...base,
        data: {
          values: thin(data.lossCurves).map((p) => ({
            ...p,
            series: series(p.cell),
            cellText: cellText.get(p.cell),
          })),
        },
        mark: { type: 'line', strokeWidth: 1 },
        encoding: {
          x: { field: 'iteration', type: 'quantitative' },
          y: { field: 'value', type: 'quantitative', title: 'mean loss' },
          color: { field: 'series', type: 'nominal', title: 'init / norm' },
          detail: { field: 'cellText', type: 'nominal' },
        },
      },
    });
  }
  const timed = data.steps.filter((s) => s.startedAt && s.endedAt);
  if (timed.length > 0) {
    charts.push({
      id: 'chart-timeline',
      title: 'Run timeline',
      spec: {
        ...base,
        height: { step: 10 },
        data: {
          values: timed.map((s) => ({
            step: `${s.label} (${s.key.slice(0, 8)})`,
            start: s.startedAt,
            end: s.endedAt,
            status: s.status,
          })),
        },
        mark: { type: 'bar', minBandSize: 2 },
        encoding: {
          y: {
            field: 'step',
            type: 'nominal',
            sort: { field: 'start' },
            title: null,
            axis: { labelLimit: 260 },
          },
          x: { field: 'start', type: 'temporal', title: 'time' },
          x2: { field: 'end' },
          color: {
            field: 'status',
            type: 'nominal',
            scale: { domain: ['done', 'cached'], range: ['#4c78a8', '#bbbbbb'] },
            title: 'step',
          },
        },
      },
    });
  }
  return charts;
}

/** Render one spec to an SVG string; ids inside are prefixed so several SVGs can share one page. */
export async function renderSvg(chart: ChartSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(chart.spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    return svg
      .replace(/\bid="([^"]+)"/g, `id="${chart.id}-$1"`)
      .replace(/url\(#([^)]+)\)/g, `url(#${chart.id}-$1)`);
  } finally {
    view.finalize();
  }
}
