/**
 * `report.html`: the study report as a step (descriptor: infra/kinds/report-html.ts). It renders with
 * the same code as `ablate report` (infra/report), from the rows it is given instead of the run's
 * records: a step runs before its run has a summary, so there is no timeline and the lineage of each
 * cell is the digests of the artifacts it read.
 */
import { ErrorType, permanent } from '../../../infra/errors';
import { reportHtmlKind, type ReportHtmlParams } from '../../../infra/kinds/report-html';
import {
  axisLabel,
  METRIC_ORDER,
  type CurvePoint,
  type ReportCell,
  type ReportData,
  type ReportStep,
} from '../../../infra/report/gather';
import type { FindingsResult } from '../../../infra/report/findings';
import { isArtifactRef, type JsonValue } from '../../../workflows/plan-types';
import { implementKind } from '../../runtime/step-kind';
import type { StepContext } from '../../runtime/step-kind';

const cellId = (cell: Record<string, JsonValue>) =>
  Object.entries(cell)
    .map(([a, v]) => `${a}=${axisLabel(v)}`)
    .join(',');

async function readJson(value: JsonValue, ctx: StepContext, where: string): Promise<unknown> {
  if (!isArtifactRef(value)) return value;
  const text = (await ctx.readBytes(value)).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw permanent(ErrorType.InvalidInput, `${where}: ${value.uri} is not JSON`);
  }
}

/** `reportHtml`'s implementation. */
export const reportHtml = implementKind(reportHtmlKind, import.meta.url, async (params, ctx) => {
  if (params.rows.length === 0) throw permanent(ErrorType.InvalidInput, 'report.html got no rows');
  const axes: Record<string, JsonValue[]> = {};
  const cells: ReportCell[] = [];
  const steps: ReportStep[] = [];
  const metricSet = new Set<string>();
  const index = new Map<string, number>();
  const rowPath = (i: number) =>
    i < params.rows.length ? `/rows/${i}` : `/moreRows/${i - params.rows.length}`;
  for (const [i, row] of [...params.rows, ...(params.moreRows ?? [])].entries()) {
    const id = cellId(row.cell);
    if (index.has(id))
      throw permanent(ErrorType.InvalidInput, `report.html: ${rowPath(i)}: cell ${id} appears twice`);
    index.set(id, i);
    for (const [a, v] of Object.entries(row.cell)) {
      const seen = (axes[a] ??= []);
      if (!seen.some((s) => JSON.stringify(s) === JSON.stringify(v))) seen.push(v);
    }
    const value = await readJson(row.value, ctx, `${rowPath(i)}/value`);
    const metrics: Record<string, number> = {};
    const sources: ReportCell['sources'] = {};
    const key = `cell-${i}`;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const m of METRIC_ORDER) {
        const v = (value as Record<string, unknown>)[m];
        if (typeof v === 'number' && v !== -1) {
          metrics[m] = v;
          sources[m] = { stepKey: key, output: `metrics.${m}` };
          metricSet.add(m);
        }
      }
    } else if (typeof value === 'number') {
      metrics.AP = value;
      sources.AP = { stepKey: key, output: 'value' };
      metricSet.add('AP');
    }
    cells.push({
      id,
      values: row.cell,
      labels: Object.fromEntries(Object.entries(row.cell).map(([a, v]) => [a, axisLabel(v)])),
      status: 'completed',
      metrics,
      sources,
      steps: {},
    });
    steps.push({
      key,
      label: `cell ${id}`,
      uses: 'input',
      status: 'input',
      sources: isArtifactRef(row.value) ? [{ path: `${rowPath(i)}/value`, digest: row.value.digest }] : [],
    });
  }
  const curveRows = async (
    rows: ReportHtmlParams['apCurves'],
    name: string,
    read: (v: unknown, cell: string) => void,
  ) => {
    for (const [i, row] of (rows ?? []).entries()) {
      const id = cellId(row.cell);
      const at = index.get(id);
      if (at === undefined)
        throw permanent(ErrorType.InvalidInput, `report.html: /${name}/${i}: cell ${id} has no row in /rows`);
      if (isArtifactRef(row.value))
        steps[at]!.sources!.push({ path: `/${name}/${i}/value`, digest: row.value.digest });
      read(await readJson(row.value, ctx, `/${name}/${i}/value`), id);
    }
  };
  const apCurves: ReportData['apCurves'] = [];
  const lossCurves: CurvePoint[] = [];
  await curveRows(params.apCurves, 'apCurves', (v, cell) => {
    for (const pt of (v as { points?: Array<Record<string, number>> }).points ?? [])
      for (const metric of ['AP', 'AP50', 'AP75'])
        if (typeof pt[metric] === 'number' && typeof pt.iteration === 'number')
          apCurves.push({ cell, iteration: pt.iteration, value: pt[metric], metric });
  });
  await curveRows(params.lossCurves, 'lossCurves', (v, cell) => {
    for (const [iteration, value] of (v as { points?: Array<[number, number]> }).points ?? [])
      if (Number.isFinite(value)) lossCurves.push({ cell, iteration, value });
  });
  const findings =
    params.findings === undefined
      ? undefined
      : ((await readJson(params.findings, ctx, '/findings')) as FindingsResult);
  if (findings !== undefined && !Array.isArray(findings.findings))
    throw permanent(
      ErrorType.InvalidInput,
      'report.html: /findings is not the json output of report.findings',
    );
  const data: ReportData = {
    ...(findings ? { findings } : {}),
    runId: 'this run',
    pipeline: { name: params.title ?? 'report', description: '', digest: '' },
    status: 'completed',
    startedAt: '',
    endedAt: '',
    axes,
    cells,
    metrics: METRIC_ORDER.filter((m) => metricSet.has(m)),
    steps,
    apCurves,
    lossCurves,
  };
  // Vega is large: loaded when a report is rendered, so importing the kind registry stays cheap.
  const { renderHtml } = await import('../../../infra/report/html');
  const { renderMarkdown } = await import('../../../infra/report/markdown');
  return {
    html: await ctx.publishBytes(await renderHtml(data), { mediaType: 'text/html' }),
    markdown: await ctx.publishBytes(renderMarkdown(data), { mediaType: 'text/markdown' }),
    cells: cells.length,
  };
});
