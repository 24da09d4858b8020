/**
 * `report.table`: the fan-in step at the end of a study. It takes one row per grid cell (a groupBy step
 * reads `${steps.ID.outputs.NAME}` as a list of `{cell, value}`), and writes the results table as
 * Markdown, CSV and JSON artifacts. Values may be numbers, JSON objects (metrics) or JSON artifacts.
 */
import { ErrorType, permanent } from '../../../infra/errors';
import { isArtifactRef, type JsonValue } from '../../../workflows/plan-types';
import { reportTableKind } from '../../../infra/kinds/report';
import { implementKind } from '../../runtime/step-kind';

/** `{a: {b: 1}, c: 2}` -> `{"a.b": 1, c: 2}`; a scalar becomes `{value: x}`. */
function flatten(
  value: JsonValue,
  prefix = '',
  out: Record<string, JsonValue> = {},
): Record<string, JsonValue> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out[prefix || 'value'] = value;
  }
  return out;
}

/** `reportTable`'s implementation (its descriptor: infra/kinds). */
export const reportTable = implementKind(reportTableKind, import.meta.url, async (params, ctx) => {
  if (params.rows.length === 0) throw permanent(ErrorType.InvalidInput, 'report.table got no rows');
  const rows: Array<{ cell: Record<string, JsonValue>; values: Record<string, JsonValue> }> = [];
  for (const row of params.rows) {
    let value = row.value;
    if (isArtifactRef(value)) value = JSON.parse((await ctx.readBytes(value)).toString('utf8')) as JsonValue;
    rows.push({ cell: row.cell, values: flatten(value) });
  }
  const axes = [...new Set(rows.flatMap((r) => Object.keys(r.cell)))];
  const columns = params.columns ?? [...new Set(rows.flatMap((r) => Object.keys(r.values)))];
  const precision = params.precision ?? 4;
  const fmt = (v: JsonValue | undefined): string =>
    v === undefined || v === null
      ? ''
      : typeof v === 'number'
        ? Number.isInteger(v)
          ? String(v)
          : v.toFixed(precision)
        : typeof v === 'string'
          ? v
          : JSON.stringify(v);
  const cellText = (v: JsonValue | undefined) =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && typeof v.name === 'string' ? v.name : fmt(v);
  const header = [...axes, ...columns];
  const body = rows.map((r) => [
    ...axes.map((a) => cellText(r.cell[a])),
    ...columns.map((c) => fmt(r.values[c])),
  ]);
  const md = [
    ...(params.title ? [`# ${params.title}`, ''] : []),
    `| ${header.join(' | ')} |`,
    `|${header.map(() => ' --- ').join('|')}|`,
    ...body.map((b) => `| ${b.join(' | ')} |`),
    '',
  ].join('\n');
  const csvEscape = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const csv = [header, ...body].map((r) => r.map(csvEscape).join(',')).join('\n') + '\n';
  return {
    markdown: await ctx.publishBytes(md, { mediaType: 'text/markdown' }),
    csv: await ctx.publishBytes(csv, { mediaType: 'text/csv' }),
    json: await ctx.publishBytes(JSON.stringify(rows), { mediaType: 'application/json' }),
    rows: rows.length,
  };
});
