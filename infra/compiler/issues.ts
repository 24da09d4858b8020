/**
 * Problems found in a pipeline file, and how they are printed: `FILE:JSON-POINTER: message (line L:C)`,
 * or `FILE:L:C: message` for malformed JSON.
 */
import type { ErrorObject } from 'ajv';

import { suggest } from '../did-you-mean';
import { RENAMED_VALUES } from '../kinds/train-knobs';
import { AblateError, ErrorType } from '../errors';
import type { SourcePosition } from './json-source';

export interface PipelineIssue {
  /** JSON pointer of the offending value ('' for the whole document); undefined for syntax errors. */
  pointer?: string;
  message: string;
  position?: SourcePosition;
}

/** Format one issue as a single line. */
export function formatIssue(file: string, issue: PipelineIssue): string {
  if (issue.pointer === undefined) {
    const pos = issue.position ? `${issue.position.line}:${issue.position.column}` : '1:1';
    return `${file}:${pos}: ${issue.message}`;
  }
  const pos = issue.position ? ` (line ${issue.position.line}:${issue.position.column})` : '';
  return `${file}:${issue.pointer || '/'}: ${issue.message}${pos}`;
}

/** Thrown by the compiler with every issue found. */
export class PipelineInvalidError extends AblateError {
  readonly issues: PipelineIssue[];

  constructor(
    readonly file: string,
    issues: PipelineIssue[],
  ) {
    // In reading order: by position in the file (stable for issues without one).
    issues = [...issues].sort(
      (a, b) =>
        (a.position?.line ?? 0) - (b.position?.line ?? 0) ||
        (a.position?.column ?? 0) - (b.position?.column ?? 0),
    );
    super(
      ErrorType.InvalidPipeline,
      `${issues.length} problem${issues.length === 1 ? '' : 's'} in ${file}:\n${issues.map((i) => `  ${formatIssue(file, i)}`).join('\n')}`,
    );
    this.issues = issues;
  }

  /** One line per issue. */
  lines(): string[] {
    return this.issues.map((i) => formatIssue(this.file, i));
  }
}

/** A short, readable rendering of a JSON value for messages. */
export function show(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && Number.isInteger(value)) return 'integer';
  return typeof value;
}

/**
 * Turn ajv's errors into issues: one per problem, with did-you-mean hints, and without the noise of
 * `oneOf`/`anyOf`/`if` summaries when a more precise error exists at or below the same place.
 */
export function ajvIssues(errors: readonly ErrorObject[], basePointer: string): PipelineIssue[] {
  errors = [...errors];
  // `oneOf: [{required: [a]}, {required: [b]}]` reads better as one "needs one of a, b".
  const choices = new Map<string, string[]>();
  for (const e of errors) {
    if (e.keyword !== 'oneOf' && e.keyword !== 'anyOf') continue;
    const branches = errors.filter((r) => r.schemaPath.startsWith(`${e.schemaPath}/`));
    if (
      branches.length > 0 &&
      branches.every((r) => r.keyword === 'required' && r.instancePath === e.instancePath)
    ) {
      choices.set(
        e.schemaPath,
        branches.map((r) => String((r.params as { missingProperty: string }).missingProperty)),
      );
    }
  }
  const inChoice = (e: ErrorObject) => [...choices.keys()].some((p) => e.schemaPath.startsWith(`${p}/`));
  errors = errors.filter((e) => !inChoice(e));
  const precise = errors.filter((e) => !['oneOf', 'anyOf', 'if', 'not'].includes(e.keyword));
  const issues: PipelineIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const choice = choices.get(e.schemaPath);
    if (choice) {
      issues.push({
        pointer: basePointer + e.instancePath,
        message: `needs ${e.keyword === 'anyOf' ? 'at least' : 'exactly'} one of ${choice.map((c) => `"${c}"`).join(', ')}`,
      });
      continue;
    }
    if (['oneOf', 'anyOf', 'if'].includes(e.keyword)) {
      const covered = precise.some((p) => p.instancePath.startsWith(e.instancePath) && p.keyword !== 'type');
      if (covered) continue;
    }
    let pointer = basePointer + e.instancePath;
    let message: string;
    const params = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'additionalProperties': {
        const field = String(params.additionalProperty);
        pointer = `${pointer}/${field.replace(/~/g, '~0').replace(/\//g, '~1')}`;
        const known = Object.keys((e.parentSchema?.properties as Record<string, unknown> | undefined) ?? {});
        const hint = suggest(field, known);
        message = `unknown field "${field}"${hint ? ` (did you mean "${hint}"?)` : known.length ? `; expected one of: ${known.join(', ')}` : ''}`;
        break;
      }
      case 'required':
        message = `missing required field "${String(params.missingProperty)}"`;
        break;
      case 'type':
        message = `must be ${String(params.type).replace(',', ' or ')}, found ${typeName(e.data)} ${show(e.data)}`;
        break;
      case 'enum': {
        const allowed = (params.allowedValues as unknown[]) ?? [];
        const hint =
          typeof e.data === 'string'
            ? suggest(
                e.data,
                allowed.filter((a): a is string => typeof a === 'string'),
              )
            : undefined;
        const renamed = typeof e.data === 'string' ? RENAMED_VALUES[e.data] : undefined;
        message =
          renamed && renamed.to.every((v) => allowed.includes(v))
            ? `${renamed.hint}; must be one of ${allowed.map(show).join(', ')}`
            : `must be one of ${allowed.map(show).join(', ')}, found ${show(e.data)}${hint ? ` (did you mean "${hint}"?)` : ''}`;
        break;
      }
      case 'const':
        message = `must be ${show(params.allowedValue)}, found ${show(e.data)}`;
        break;
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        message = `must be ${String(params.comparison)} ${String(params.limit)}, found ${show(e.data)}`;
        break;
      case 'pattern':
        message = `must match ${String(params.pattern)}, found ${show(e.data)}`;
        break;
      case 'propertyNames':
        message = `bad name ${show(params.propertyName)}: ${e.message ?? 'invalid'}`;
        pointer = `${pointer}/${String(params.propertyName)}`;
        break;
      case 'oneOf':
        message = `does not match any allowed form, found ${show(e.data)}${e.parentSchema?.description ? ` (${String(e.parentSchema.description)})` : ''}`;
        break;
      default:
        message = `${e.message ?? 'is invalid'}${e.data !== undefined && typeof e.data !== 'object' ? `, found ${show(e.data)}` : ''}`;
    }
    const key = `${pointer}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push({ pointer, message });
  }
  return issues;
}
