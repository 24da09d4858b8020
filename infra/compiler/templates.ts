/**
 * The template syntax of step parameters: `${grid.AXIS}`, `${params.NAME}`, `${steps.ID.outputs.NAME}`,
 * `${cell.id}`, `${pipeline.name}`, each optionally followed by a field path (`${grid.subset.count}`).
 * Templates are parsed, never evaluated: there is no expression language and no eval.
 */

/** What a template refers to. */
export type TemplateRef =
  | { scope: 'grid'; axis: string; path: string[] }
  | { scope: 'params'; name: string; path: string[] }
  | { scope: 'steps'; step: string; output: string; path: string[] }
  | { scope: 'cell'; field: 'id' }
  | { scope: 'pipeline'; field: 'name' };

export type TemplatePart =
  { kind: 'literal'; text: string } | { kind: 'ref'; ref: TemplateRef; source: string };

/** A string parsed into literal text and references. */
export interface ParsedTemplate {
  parts: TemplatePart[];
  /** True when the string is exactly one reference: its value keeps its JSON type. */
  isWhole: boolean;
}

/** A template that cannot be parsed. */
export class TemplateSyntaxError extends Error {
  override readonly name = 'TemplateSyntaxError';
}

const SEGMENT = /^[A-Za-z0-9_-]+$/;

/** Parse one string. Returns undefined when it contains no template (the common case, kept cheap). */
export function parseTemplate(text: string): ParsedTemplate | undefined {
  if (!text.includes('${')) return undefined;
  const parts: TemplatePart[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      literal += '${';
      i += 3;
      continue;
    }
    if (text.startsWith('${', i)) {
      const end = text.indexOf('}', i + 2);
      if (end < 0)
        throw new TemplateSyntaxError(`unterminated template starting at "${text.slice(i, i + 20)}"`);
      const source = text.slice(i, end + 1);
      const ref = parseReference(text.slice(i + 2, end).trim(), source);
      if (literal) parts.push({ kind: 'literal', text: literal });
      literal = '';
      parts.push({ kind: 'ref', ref, source });
      i = end + 1;
      continue;
    }
    literal += text[i];
    i++;
  }
  if (literal) parts.push({ kind: 'literal', text: literal });
  if (!parts.some((p) => p.kind === 'ref')) return { parts, isWhole: false };
  return { parts, isWhole: parts.length === 1 };
}

function parseReference(expr: string, source: string): TemplateRef {
  const segments = expr.split('.');
  if (expr === '' || !segments.every((s) => SEGMENT.test(s))) {
    throw new TemplateSyntaxError(
      `bad template ${source}: expected a dotted name such as \${grid.AXIS}, \${params.NAME} or \${steps.ID.outputs.NAME}`,
    );
  }
  const [scope, ...rest] = segments;
  switch (scope) {
    case 'grid':
      if (rest.length < 1) throw new TemplateSyntaxError(`bad template ${source}: expected \${grid.AXIS}`);
      return { scope: 'grid', axis: rest[0]!, path: rest.slice(1) };
    case 'params':
      if (rest.length < 1) throw new TemplateSyntaxError(`bad template ${source}: expected \${params.NAME}`);
      return { scope: 'params', name: rest[0]!, path: rest.slice(1) };
    case 'steps':
      if (rest.length < 3 || rest[1] !== 'outputs') {
        throw new TemplateSyntaxError(`bad template ${source}: expected \${steps.ID.outputs.NAME}`);
      }
      return { scope: 'steps', step: rest[0]!, output: rest[2]!, path: rest.slice(3) };
    case 'cell':
      if (rest.length !== 1 || rest[0] !== 'id')
        throw new TemplateSyntaxError(`bad template ${source}: expected \${cell.id}`);
      return { scope: 'cell', field: 'id' };
    case 'pipeline':
      if (rest.length !== 1 || rest[0] !== 'name') {
        throw new TemplateSyntaxError(`bad template ${source}: expected \${pipeline.name}`);
      }
      return { scope: 'pipeline', field: 'name' };
    default:
      throw new TemplateSyntaxError(
        `bad template ${source}: unknown scope "${scope}"; templates start with grid., params., steps., cell. or pipeline.`,
      );
  }
}

/** Follow a field path into a JSON value; undefined when a segment is missing. */
export function followPath(value: unknown, path: readonly string[]): unknown {
  let cur = value;
  for (const seg of path) {
    if (Array.isArray(cur) && /^[0-9]+$/.test(seg)) cur = cur[Number(seg)];
    else if (cur !== null && typeof cur === 'object' && Object.prototype.hasOwnProperty.call(cur, seg)) {
      cur = (cur as Record<string, unknown>)[seg];
    } else return undefined;
  }
  return cur;
}
