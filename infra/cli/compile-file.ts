/** Reading and compiling a pipeline file for a command, with problems printed the one way. */
import { readFile } from 'node:fs/promises';

import type { Plan } from '../../workflows/plan-types';
import { compilePipeline } from '../compiler/compile';
import { PipelineInvalidError } from '../compiler/issues';
import { UsageError } from './command';

/**
 * The plan of `file`, or undefined after printing each problem as `FILE:POINTER: message` to stderr.
 * An unreadable file is a usage error.
 */
export async function compileFileForCli(file: string, maxCells: number): Promise<Plan | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  try {
    return compilePipeline(text, { file, maxCells });
  } catch (err) {
    if (!(err instanceof PipelineInvalidError)) throw err;
    for (const line of err.lines()) console.error(line);
    return undefined;
  }
}
