import { readFile } from 'node:fs/promises';

import { compilePipeline, DEFAULT_MAX_CELLS } from '../../compiler/compile';
import { PipelineInvalidError } from '../../compiler/issues';
import { intOption, UsageError, type Command } from '../command';

/** `ablate validate FILE...`: exit 0 if every file is valid, 1 otherwise; every problem printed. */
export const validateCommand: Command = {
  name: 'validate',
  summary: 'Check pipeline files; print every problem as FILE:JSON-POINTER: message',
  usage: `Usage: ablate validate FILE... [--max-cells N]

Checks each pipeline file against the pipeline schema and every step kind's parameter schema, and that
the grid compiles (templates, needs, cycles, cell limit). Prints each problem as
  FILE:JSON-POINTER: message (line L:C)
and, for malformed JSON, FILE:LINE:COLUMN: message. Exit status: 0 all valid, 1 some invalid.

  --max-cells N   refuse grids with more than N cells (default ${DEFAULT_MAX_CELLS})`,
  options: { 'max-cells': { type: 'string' } },
  async run(args) {
    if (args.positionals.length === 0) throw new UsageError('no pipeline file given');
    const maxCells = intOption(args, 'max-cells', DEFAULT_MAX_CELLS, 1);
    let failed = 0;
    for (const file of args.positionals) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        console.error(
          `${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
        failed++;
        continue;
      }
      try {
        const plan = compilePipeline(text, { file, maxCells });
        console.log(`${file}: valid (${plan.stats.cells} cells, ${plan.stats.uniqueSteps} unique steps)`);
      } catch (err) {
        if (!(err instanceof PipelineInvalidError)) throw err;
        for (const line of err.lines()) console.error(line);
        failed++;
      }
    }
    return failed > 0 ? 1 : 0;
  },
};
