import { resolveConfig } from '../../../temporal.config';
import { stringOption, UsageError, type Command } from '../command';

/** `ablate plot RUN_ID [STEP] --metric loss|AP --out FILE.svg`. */
export const plotCommand: Command = {
  name: 'plot',
  summary: 'Plot training loss or AP against iterations of a run (or one train step) as SVG',
  usage: `Usage: ablate plot RUN_ID [STEP] --metric loss|AP --out FILE.svg

Draws the lossCurve or apCurve outputs of the run's train.detector steps, one line per cell, coloured
by init and norm; with STEP (a key or a label such as "train[init=scratch,schedule=1x,subset=2k]") only
that step's curve.

  --metric loss|AP          default loss
  --out FILE.svg            where to write
  --store URL, --home DIR   the artifact store (as for \`ablate run\`)`,
  options: {
    store: { type: 'string' },
    home: { type: 'string' },
    metric: { type: 'string' },
    out: { type: 'string' },
  },
  async run(args) {
    const [runId, step, extra] = args.positionals;
    if (!runId) throw new UsageError('no run id given');
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`);
    const out = stringOption(args, 'out');
    if (!out) throw new UsageError('--out FILE.svg is required');
    const metric = stringOption(args, 'metric') ?? 'loss';
    if (metric !== 'loss' && metric !== 'AP')
      throw new UsageError(`--metric must be loss or AP, got ${JSON.stringify(metric)}`);
    const { openStore } = await import('../../store/index');
    const { gatherReport } = await import('../../report/gather');
    const { plotSvg } = await import('../../report/plot');
    const { rename, rm, writeFile } = await import('node:fs/promises');
    const store = await openStore(
      resolveConfig({ storeUrl: stringOption(args, 'store'), home: stringOption(args, 'home') }).storeUrl,
    );
    const svg = await plotSvg(await gatherReport(store, runId), metric, step);
    const tmp = `${out}.${process.pid}.tmp`;
    try {
      await writeFile(tmp, svg);
      await rename(tmp, out);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    console.log(out);
    return 0;
  },
};
