import { UsageError, type Command } from '../command';
import { configFlags, configFlagsHelp, configFrom } from '../config-flags';
import { table } from '../render-plan';

/** `ablate artifacts RUN_ID [STEP]`: what a run produced. */
export const artifactsCommand: Command = {
  name: 'artifacts',
  summary: "List a run's outputs (files, directories, values) with their digests and sizes",
  usage: `Usage: ablate artifacts RUN_ID [STEP] [--json]

Lists every output of the run's finished steps (or of STEP, its key or its label): the output name, its
type (file, directory, or a value), size (for a directory: the total of its files, and how many), digest
and URI. Fetch one with \`ablate get RUN_ID STEP OUTPUT --out PATH\`.

  --json    one JSON array of {step, stepKey, status, output, type, uri, digest, mediaType, sizeBytes, files, value}

${configFlagsHelp}`,
  options: { ...configFlags, json: { type: 'boolean' } },
  async run(args) {
    const [runId, step, ...extra] = args.positionals;
    if (!runId) throw new UsageError('no run id given');
    if (extra.length) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
    const { openStore } = await import('../../store/index');
    const { runOutputs } = await import('../../lineage');
    const outputs = await runOutputs(await openStore(configFrom(args).storeUrl), runId, step);
    if (args.values.json) {
      console.log(JSON.stringify(outputs));
      return 0;
    }
    const rows = outputs.map((o) => [
      o.step,
      o.output,
      o.type === 'directory' ? `directory (${o.files ?? '?'} files)` : o.type,
      o.sizeBytes === undefined ? '' : formatBytes(o.sizeBytes),
      o.type === 'value' ? truncate(JSON.stringify(o.value), 60) : `${o.digest!.slice(0, 19)}…`,
    ]);
    for (const line of table(['step', 'output', 'type', 'size', 'digest / value'], rows)) console.log(line);
    return 0;
  },
};

/** Bytes in a short human form (binary units). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
