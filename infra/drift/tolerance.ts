/**
 * Tolerance bands: how far a metric may move from its baseline before a drift report calls it drift.
 *
 * A pipeline declares bands in its `tolerance` block (carried into the plan); a metric no band names
 * gets a default. The defaults assume what ablate's pipelines are: CPU-deterministic, so the same
 * inputs on the same runtime give byte-identical outputs. Any real change is therefore worth a report,
 * and the defaults are "exact", except where exactness is meaningless:
 *
 * - timings (a name ending in `PerSec`, `Ms`, `Seconds`, e.g. `imagesPerSec`) are reported but ignored:
 *   they measure the machine, not the result;
 * - integers (counts, iterations) and non-numbers (strings, booleans, null) must be equal;
 * - other numbers may differ by 1e-9 absolute: room for float formatting and summation-order noise
 *   between builds of the same runtime, far below anything a metric reports (AP is printed to 1e-3).
 *   A pipeline that is not bit-reproducible (GPU kernels, several threads) declares wider bands.
 */
import type { JsonValue, ToleranceBand } from '../../workflows/plan-types';
import { suggest } from '../did-you-mean';

/** The band that applies to one metric, and where it came from. */
export interface AppliedBand {
  abs?: number;
  rel?: number;
  ignore?: boolean;
  /** `pipeline` (which band: its `metric`) or the default rule that chose it. */
  source: 'pipeline' | 'default:timing' | 'default:exact' | 'default:float';
  /** For a pipeline band: the `metric` it was declared for. */
  declaredFor?: string;
}

/** Absolute slack of the default band for non-integer numbers. */
export const DEFAULT_FLOAT_ABS = 1e-9;

const TIMING_NAME = /(PerSec|PerSecond|Ms|Seconds|Sec)$/;

/** Whether `pattern` names the metric `name`: equal, or a tail of it at a `.` boundary. */
export function bandMatches(pattern: string, name: string): boolean {
  return name === pattern || name.endsWith(`.${pattern}`);
}

/**
 * The band for metric `name` (full name `<stepId>.<output>[.<field>...]`): the declared band with the
 * longest matching tail (the later one on a tie), else the default for a value like `baseline`.
 */
export function bandFor(
  name: string,
  baseline: JsonValue | undefined,
  bands: readonly ToleranceBand[] = [],
): AppliedBand {
  let best: ToleranceBand | undefined;
  let bestLength = -1;
  for (const band of bands) {
    if (!bandMatches(band.metric, name)) continue;
    const length = band.metric.split('.').length;
    if (length >= bestLength) {
      best = band;
      bestLength = length;
    }
  }
  if (best) {
    const applied: AppliedBand = { source: 'pipeline', declaredFor: best.metric };
    if (best.abs !== undefined) applied.abs = best.abs;
    if (best.rel !== undefined) applied.rel = best.rel;
    if (best.ignore) applied.ignore = true;
    return applied;
  }
  const last = name.slice(name.lastIndexOf('.') + 1);
  if (TIMING_NAME.test(last)) return { ignore: true, source: 'default:timing' };
  if (typeof baseline === 'number' && !Number.isInteger(baseline))
    return { abs: DEFAULT_FLOAT_ABS, source: 'default:float' };
  return { abs: 0, source: 'default:exact' };
}

/**
 * Whether `value` is within `band` of `baseline`. Numbers compare by `|value - baseline| <= abs + rel *
 * |baseline|`; anything else (and a number against a non-number) by equality of canonical JSON; a
 * numeric array element by element.
 */
export function withinBand(
  baseline: JsonValue | undefined,
  value: JsonValue | undefined,
  band: AppliedBand,
): boolean {
  if (band.ignore) return true;
  if (typeof baseline === 'number' && typeof value === 'number') {
    if (Number.isNaN(baseline) || Number.isNaN(value)) return Number.isNaN(baseline) && Number.isNaN(value);
    const allowed = (band.abs ?? 0) + (band.rel ?? 0) * Math.abs(baseline);
    return Math.abs(value - baseline) <= allowed;
  }
  if (isNumberArray(baseline) && isNumberArray(value)) {
    return baseline.length === value.length && baseline.every((b, i) => withinBand(b, value[i], band));
  }
  return sameJson(baseline, value);
}

/** The signed difference `value - baseline` for numbers (for a numeric array: the largest by size). */
export function deltaOf(baseline: JsonValue | undefined, value: JsonValue | undefined): number | null {
  if (typeof baseline === 'number' && typeof value === 'number') return value - baseline;
  if (isNumberArray(baseline) && isNumberArray(value) && baseline.length === value.length) {
    let delta = 0;
    baseline.forEach((b, i) => {
      const d = value[i]! - b;
      if (Math.abs(d) > Math.abs(delta)) delta = d;
    });
    return delta;
  }
  return null;
}

/** Equality of two JSON values (object key order ignored). */
export function sameJson(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as JsonValue[];
    return a.length === bb.length && a.every((x, i) => sameJson(x, bb[i]));
  }
  const ao = a as Record<string, JsonValue>;
  const bo = b as Record<string, JsonValue>;
  const keys = Object.keys(ao);
  return keys.length === Object.keys(bo).length && keys.every((k) => k in bo && sameJson(ao[k], bo[k]));
}

function isNumberArray(v: JsonValue | undefined): v is number[] {
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number');
}

/** What the compiler knows about a step template, for checking a band's metric name. */
export interface BandStepInfo {
  /** Output name -> whether it is a value output (only those carry metrics). */
  outputs: Record<string, 'value' | 'artifact'>;
}

/**
 * Problems with a pipeline's `tolerance` block beyond its shape (the JSON Schema checks that): a metric
 * named twice, a band naming a step that does not exist or an output its kind does not have, or an
 * artifact output (bands apply to value outputs). A one-segment name (`AP`) is a field inside some
 * value output and cannot be checked before a run.
 */
export function toleranceIssues(
  tolerance: unknown,
  steps: ReadonlyMap<string, BandStepInfo>,
): Array<{ pointer: string; message: string }> {
  if (!Array.isArray(tolerance)) return [];
  const issues: Array<{ pointer: string; message: string }> = [];
  const first = new Map<string, number>();
  const outputNames = new Map<string, 'value' | 'artifact'>();
  for (const info of steps.values())
    for (const [name, type] of Object.entries(info.outputs))
      if (outputNames.get(name) !== 'value') outputNames.set(name, type);
  tolerance.forEach((band: unknown, i) => {
    if (typeof band !== 'object' || band === null) return;
    const metric = (band as { metric?: unknown }).metric;
    if (typeof metric !== 'string' || metric === '') return;
    const pointer = `/tolerance/${i}/metric`;
    const seen = first.get(metric);
    if (seen !== undefined) {
      issues.push({ pointer, message: `a band for "${metric}" is already declared at /tolerance/${seen}` });
      return;
    }
    first.set(metric, i);
    const [head, second] = metric.split('.') as [string, string | undefined];
    const step = steps.get(head);
    if (step && second !== undefined) {
      const type = step.outputs[second];
      if (!type) {
        const hint = suggest(second, Object.keys(step.outputs));
        issues.push({
          pointer,
          message: `step "${head}" has no output "${second}"${hint ? ` (did you mean "${hint}"?)` : ''}; its outputs: ${Object.keys(step.outputs).join(', ')}`,
        });
      } else if (type === 'artifact') {
        issues.push({
          pointer,
          message: `${head}.${second} is an artifact output; tolerance bands apply to value outputs (metrics)`,
        });
      }
      return;
    }
    if (step || second === undefined) return;
    const type = outputNames.get(head);
    if (type === 'artifact') {
      issues.push({
        pointer,
        message: `"${head}" is an artifact output; tolerance bands apply to value outputs (metrics)`,
      });
    } else if (!type) {
      const hint = suggest(head, [...steps.keys(), ...outputNames.keys()]);
      issues.push({
        pointer,
        message: `"${metric}" names neither a step nor an output: write STEP.OUTPUT[.FIELD], OUTPUT.FIELD or FIELD${hint ? ` (did you mean "${hint}"?)` : ''}`,
      });
    }
  });
  return issues;
}
