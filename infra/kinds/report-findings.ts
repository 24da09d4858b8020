/**
 * `report.findings`: verdicts on the study's claims, computed from the cells' metrics by rules written in
 * the pipeline (infra/report/findings.ts): per claim, a quantity evaluated per seed (a cell's metric, or
 * a difference of two), its mean and seed spread, and `reproduced` / `contradicted` / `not shown` by
 * the pipeline's noise rule. A fan-in step (groupBy): `rows` is `${steps.EVAL.outputs.metrics}`.
 */
import type { FindingRule } from '../report/findings';
import type { JsonValue } from '../../workflows/plan-types';
import { cellRowsSchema, defineKind } from './descriptor';

export interface ReportFindingsParams {
  title?: string;
  /** One row per cell: its metrics (or a JSON artifact of them). */
  rows: Array<{ cell: Record<string, JsonValue>; value: JsonValue }>;
  /** More rows of other cells (e.g. a second eval step's metrics). */
  moreRows?: Array<{ cell: Record<string, JsonValue>; value: JsonValue }>;
  seedAxis?: string;
  noise?: number;
  minEffect?: number;
  findings: FindingRule[];
}

const selectorSchema = {
  type: 'object',
  minProperties: 1,
  additionalProperties: { type: ['string', 'number', 'boolean'] },
  description: 'Axis values that select cells, e.g. {"init": "imagenet", "schedule": "1x"}.',
};

export const reportFindingsKind = defineKind<ReportFindingsParams>({
  name: 'report.findings',
  version: '1',
  summary: "Verdicts on the study's claims, computed from the metrics by the pipeline's rule.",
  queue: 'cpu',
  withSchema: {
    type: 'object',
    required: ['rows', 'findings'],
    properties: {
      title: { type: 'string' },
      rows: {
        ...cellRowsSchema(
          {},
          'One {cell, value} of metrics per cell: ${steps.ID.outputs.metrics} in a step with groupBy.',
        ),
        minItems: 1,
      },
      moreRows: cellRowsSchema(
        {},
        'More {cell, value} rows of other cells, e.g. ${steps.EVAL_VOC.outputs.metrics}.',
      ),
      seedAxis: { type: 'string', minLength: 1, default: 'seed', description: 'The axis of repetitions.' },
      noise: {
        type: 'number',
        minimum: 0,
        default: 2,
        description: 'A claim needs |mean| > noise x seed spread (max - min over seeds).',
      },
      minEffect: {
        type: 'number',
        minimum: 0,
        default: 0,
        description: "... and |mean| >= minEffect, in the metric's units.",
      },
      findings: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['id', 'claim', 'metric', 'value', 'expect'],
          properties: {
            id: { type: 'string', minLength: 1 },
            claim: { type: 'string', minLength: 1 },
            metric: { type: 'string', minLength: 1, description: 'Dotted path in each row, e.g. "AP".' },
            where: selectorSchema,
            value: {
              type: 'object',
              description:
                'Per seed: {"cell": {AXIS: VALUE}} (that cell\'s metric) or {"minus": [A, B], "where": {...}} (A - B).',
            },
            expect: { enum: ['positive', 'negative'], description: 'Sign of value when the claim holds.' },
          },
          additionalProperties: false,
        },
      },
    },
    additionalProperties: false,
  },
  outputs: {
    markdown: { type: 'file', description: 'The findings table in Markdown.', mediaType: 'text/markdown' },
    json: {
      type: 'file',
      description: 'Every finding with its per-seed values, mean, spread and verdict.',
      mediaType: 'application/json',
    },
    verdicts: {
      type: 'value',
      description: 'Finding id -> reproduced | contradicted | not shown.',
      schema: { type: 'object', additionalProperties: { enum: ['reproduced', 'contradicted', 'not shown'] } },
    },
  },
});
