/**
 * `report.table`: the fan-in step at the end of a study. It takes one row per grid cell (a groupBy step
 * reads `${steps.ID.outputs.NAME}` as a list of `{cell, value}`), and writes the results table as
 * Markdown, CSV and JSON artifacts. Values may be numbers, JSON objects (metrics) or JSON artifacts.
 */
import type { JsonValue } from '../../workflows/plan-types';
import { cellRowsSchema, defineKind } from './descriptor';

interface ReportRow {
  cell: Record<string, JsonValue>;
  value: JsonValue;
}

export interface ReportTableParams {
  title?: string;
  rows: ReportRow[];
  /** Fields of each value to show, in order (dotted paths of nested metrics); default: every field. */
  columns?: string[];
  /** Digits after the decimal point. */
  precision?: number;
}

export const reportTableKind = defineKind<ReportTableParams>({
  name: 'report.table',
  version: '1',
  summary: 'Tabulate one value per grid cell (metrics) as Markdown, CSV and JSON.',
  queue: 'cpu',
  withSchema: {
    type: 'object',
    required: ['rows'],
    properties: {
      title: { type: 'string' },
      rows: cellRowsSchema(
        {},
        'One {cell, value} per cell: write ${steps.ID.outputs.NAME} in a step with groupBy.',
      ),
      columns: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
      precision: { type: 'integer', minimum: 0, maximum: 12, default: 4 },
    },
    additionalProperties: false,
  },
  outputs: {
    markdown: { type: 'file', description: 'The table in Markdown.', mediaType: 'text/markdown' },
    csv: { type: 'file', description: 'The table as CSV.', mediaType: 'text/csv' },
    json: { type: 'file', description: 'Rows as JSON: [{cell, values}].', mediaType: 'application/json' },
    rows: { type: 'value', description: 'Number of rows.', schema: { type: 'integer' } },
  },
});
