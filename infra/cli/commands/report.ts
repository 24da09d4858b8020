import { resolveConfig } from '../../../temporal.config';
import { stringOption, UsageError, type Command } from '../command';

const storeFlags = { store: { type: 'string' }, home: { type: 'string' } } as const;

/** `ablate report RUN_ID --out DIR`: a self-contained HTML (or Markdown) report of a finished run. */
export const reportCommand: Command = {
  name: 'report',
  summary: 'Write a static report of a finished run: results table, charts, timeline, lineage',
  usage: `Usage: ablate report RUN_ID --out DIR [--format html|md]

Writes DIR/report.html (default) or DIR/report.md for a finished run and prints its path.

The HTML report is one self-contained file (inline SVG and CSS, nothing fetched), so it opens offline:
  - the results table, one row per cell (seeds folded into mean ± sd where the grid has a seed axis),
    and pre-trained vs scratch side by side with the difference where the grid has an init axis
  - AP vs training iterations, AP vs training-set size, training loss, the run timeline
  - the lineage of every step (data digests, code version, params, parents); every number links to it
The Markdown report holds the tables.

  --out DIR               where to write (created if missing)
  --format html|md        default html
  --store URL, --home DIR the artifact store (as for \`ablate run\`)`,
  options: { ...storeFlags, out: { type: 'string' }, format: { type: 'string' } },
  async run(args) {
    const [runId] = args.positionals;
    if (!runId) throw new UsageError('no run id given');
    const out = stringOption(args, 'out');
    if (!out) throw new UsageError('--out DIR is required');
    const format = stringOption(args, 'format') ?? 'html';
    if (format !== 'html' && format !== 'md')
      throw new UsageError(`--format must be html or md, got ${JSON.stringify(format)}`);
    const { openStore } = await import('../../store/index');
    const { writeReport } = await import('../../report/index');
    const store = await openStore(
      resolveConfig({ storeUrl: stringOption(args, 'store'), home: stringOption(args, 'home') }).storeUrl,
    );
    console.log(await writeReport(store, runId, out, format));
    return 0;
  },
};
