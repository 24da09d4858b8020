import { resolveConfig } from '../../../temporal.config';
import { stringOption, UsageError, type Command } from '../command';

/** `ablate compare RUN_A RUN_B`: per cell and metric, both values and the difference. */
export const compareCommand: Command = {
  name: 'compare',
  summary: 'Compare two runs cell by cell: both values, the difference, and the inputs that differ',
  usage: `Usage: ablate compare RUN_A RUN_B [--json]

For each cell both runs have: every metric of A and B and B - A (cells that differ are starred), then
for each differing cell what differs along its steps: parameters, input artifact digests, code commit
or kind version. Cells only one run has are listed.

  --json    {"runA", "runB", "metrics", "cells": [{id, differs, metrics: {M: {a, b, diff}}, inputs:
            [{step, field, a, b}]}], "onlyInA", "onlyInB"}
  --store URL, --home DIR   the artifact store (as for \`ablate run\`)`,
  options: { store: { type: 'string' }, home: { type: 'string' }, json: { type: 'boolean' } },
  async run(args) {
    const [runA, runB, extra] = args.positionals;
    if (!runA || !runB) throw new UsageError('give two run ids');
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`);
    const { openStore } = await import('../../store/index');
    const { compareRuns, comparisonText } = await import('../../report/compare');
    const store = await openStore(
      resolveConfig({ storeUrl: stringOption(args, 'store'), home: stringOption(args, 'home') }).storeUrl,
    );
    const result = await compareRuns(store, runA, runB);
    console.log(args.values.json ? JSON.stringify(result) : comparisonText(result));
    return 0;
  },
};
