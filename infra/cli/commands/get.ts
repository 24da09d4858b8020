import { access } from 'node:fs/promises';
import { resolve } from 'node:path';

import { stringOption, UsageError, type Command } from '../command';
import { configFlags, configFlagsHelp, configFrom } from '../config-flags';

/** `ablate get RUN_ID STEP OUTPUT --out PATH`: fetch one output of a run. */
export const getCommand: Command = {
  name: 'get',
  summary: 'Fetch one output of a run (a file, a directory, or a value as JSON) to a local path',
  usage: `Usage: ablate get RUN_ID STEP OUTPUT --out PATH [--force]

Writes the output OUTPUT of step STEP (its key or its label, as \`ablate artifacts RUN_ID\` lists them)
to PATH: a file artifact as that file, a directory artifact as a directory, a value as JSON. Every
byte is checked against the artifact's digest, and PATH appears only once all of it checked out.

  --out PATH   where to write it (required)
  --force      replace PATH if it exists (by default an existing PATH is an error)

${configFlagsHelp}`,
  options: { ...configFlags, out: { type: 'string' }, force: { type: 'boolean' } },
  async run(args) {
    const [runId, step, output, ...extra] = args.positionals;
    if (!runId || !step || !output) throw new UsageError('give RUN_ID STEP OUTPUT');
    if (extra.length) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
    const out = stringOption(args, 'out');
    if (!out) throw new UsageError('--out PATH is required');
    const dest = resolve(out);
    if (
      args.values.force !== true &&
      (await access(dest).then(
        () => true,
        () => false,
      ))
    )
      throw new UsageError(`${dest} exists; remove it or pass --force to replace it`);
    const { openStore } = await import('../../store/index');
    const { findStepRecord } = await import('../../lineage');
    const { isArtifactRef } = await import('../../../workflows/plan-types');
    const config = configFrom(args);
    const store = await openStore(config.storeUrl, { transferConcurrency: config.transferConcurrency });
    const record = await findStepRecord(store, runId, step);
    if (!(output in record.outputs)) {
      throw new UsageError(
        `step ${record.label} of run ${runId} has no output ${JSON.stringify(output)}; its outputs: ` +
          Object.keys(record.outputs).join(', '),
      );
    }
    const value = record.outputs[output];
    if (isArtifactRef(value)) {
      await store.get(value, dest);
      console.log(`${dest}: ${output} of ${record.label} (${value.digest})`);
    } else {
      const { writeFile, rename } = await import('node:fs/promises');
      const tmp = `${dest}.part-${process.pid}`;
      await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
      await rename(tmp, dest);
      console.log(`${dest}: ${output} of ${record.label} (a value, as JSON)`);
    }
    return 0;
  },
};
