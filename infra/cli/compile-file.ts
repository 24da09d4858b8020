/** Reading and compiling a pipeline file for a command, with problems printed the one way. */
import { readFile } from 'node:fs/promises';

import type { Plan } from '../../workflows/plan-types';
import { compilePipeline } from '../compiler/compile';
import { PipelineInvalidError } from '../compiler/issues';
import { UsageError } from './command';

/** Help text of the `--set` option, for the commands that take it. */
export const setOptionHelp = `  --set PATH=VALUE   override one field of the pipeline file before compiling (repeatable): PATH is
                     dotted (params.detector.baseIterations, grid.seed), VALUE is JSON (300, [1,2,3],
                     "6x") or else a plain string; the field must exist`;

/**
 * Apply `--set PATH=VALUE` overrides to a pipeline document. The field must exist (a typo should not
 * silently add a parameter nobody reads); VALUE is JSON, or a string when it does not parse as JSON.
 */
export function applyOverrides(doc: unknown, sets: readonly string[]): unknown {
  for (const set of sets) {
    const eq = set.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set ${set}: expected PATH=VALUE, e.g. params.seed=2`);
    const path = set.slice(0, eq).split('.');
    const raw = set.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    let node: unknown = doc;
    for (const [i, key] of path.entries()) {
      const at = path.slice(0, i + 1).join('.');
      if (node === null || typeof node !== 'object' || Array.isArray(node) || !(key in node))
        throw new UsageError(`--set ${set}: the pipeline has no field ${at}`);
      if (i === path.length - 1) (node as Record<string, unknown>)[key] = value;
      else node = (node as Record<string, unknown>)[key];
    }
  }
  return doc;
}

/**
 * The plan of `file` (with `--set` overrides applied), or undefined after printing each problem as
 * `FILE:POINTER: message` to stderr. An unreadable file is a usage error.
 */
export async function compileFileForCli(
  file: string,
  maxCells: number,
  sets: readonly string[] = [],
): Promise<Plan | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  let label = file;
  if (sets.length > 0) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      doc = undefined; // compiled as is below, which reports where the JSON breaks
    }
    if (doc !== undefined) {
      // Line numbers in problems then refer to the overridden document, so say so.
      text = JSON.stringify(applyOverrides(doc, sets), null, 2);
      label = `${file} (with --set)`;
    }
  }
  try {
    return compilePipeline(text, { file: label, maxCells });
  } catch (err) {
    if (!(err instanceof PipelineInvalidError)) throw err;
    for (const line of err.lines()) console.error(line);
    return undefined;
  }
}
