/**
 * `report.html`: the study's report as a step, at the end of a pipeline. Like `report.table` it is a
 * fan-in step (groupBy): one `{cell, value}` row per grid cell of metrics, and optionally each cell's
 * AP and loss curves (the train step's `apCurve` / `lossCurve` artifacts). It writes one self-contained
 * HTML file (tables, Vega-Lite charts as inline SVG) and a Markdown summary. A step sees only its
 * inputs, so its lineage section lists the digests of what it read; `ablate report RUN_ID` gives the
 * full per-step lineage and the run timeline.
 */
import type { JsonValue } from '../../workflows/plan-types';
import { cellRowsSchema, fileRefSchema, defineKind } from './descriptor';

interface CellRow<V> {
  cell: Record<string, JsonValue>;
  value: V;
}

export interface ReportHtmlParams {
  title?: string;
  /** One row per cell: its metrics (an object such as eval.coco's `metrics`, or a JSON artifact of one). */
  rows: Array<CellRow<JsonValue>>;
  /** More rows of metrics, of other cells (e.g. a second eval step's). */
  moreRows?: Array<CellRow<JsonValue>>;
  /** One row per cell: train.detector's `apCurve` artifact. */
  apCurves?: Array<CellRow<JsonValue>>;
  /** One row per cell: train.detector's `lossCurve` artifact. */
  lossCurves?: Array<CellRow<JsonValue>>;
  /** The `json` output of a report.findings step: its verdicts head the report. */
  findings?: JsonValue;
}

export const reportHtmlKind = defineKind<ReportHtmlParams>({
  name: 'report.html',
  // 2: the findings section.
  version: '2',
  summary:
    'The study report: results table, pre-trained vs scratch, AP and loss charts, as one offline HTML file.',
  queue: 'cpu',
  withSchema: {
    type: 'object',
    required: ['rows'],
    properties: {
      title: { type: 'string' },
      rows: cellRowsSchema(
        {},
        'One {cell, value} of metrics per cell: ${steps.ID.outputs.metrics} in a step with groupBy.',
      ),
      moreRows: cellRowsSchema({}, 'More {cell, value} rows of metrics of other cells (a second eval step).'),
      apCurves: cellRowsSchema(fileRefSchema, 'One {cell, value} per cell: ${steps.TRAIN.outputs.apCurve}.'),
      lossCurves: cellRowsSchema(
        fileRefSchema,
        'One {cell, value} per cell: ${steps.TRAIN.outputs.lossCurve}.',
      ),
      findings: { ...fileRefSchema, description: 'The json output of a report.findings step.' },
    },
    additionalProperties: false,
  },
  outputs: {
    html: { type: 'file', description: 'The report: one self-contained HTML file.', mediaType: 'text/html' },
    markdown: { type: 'file', description: 'The results tables in Markdown.', mediaType: 'text/markdown' },
    cells: { type: 'value', description: 'Number of cells reported.', schema: { type: 'integer' } },
  },
});
