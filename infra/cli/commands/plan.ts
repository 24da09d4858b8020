import { DEFAULT_MAX_CELLS } from '../../compiler/compile';
import { intOption, stringOption, UsageError, type Command } from '../command';
import { compileFileForCli, setOptionHelp } from '../compile-file';
import { planToDot, planToJson, planToText } from '../render-plan';

/** `ablate plan FILE [--json | --dot]`: what a pipeline will run. */
export const planCommand: Command = {
  name: 'plan',
  summary: 'Show the cells, unique steps and DAG a pipeline compiles to (--json, --dot)',
  usage: `Usage: ablate plan FILE [--json | --dot] [--cells] [--cached] [--max-cells N] [--set PATH=VALUE ...]

Compiles FILE and shows the grid cells, the unique steps after merging (how many step runs merging
saved), and the DAG in a topological order.

  --json          the plan as one JSON object (format: README, "Plan JSON")
  --dot           the step DAG in Graphviz DOT
  --cells         also list every cell and the steps it uses
  --cached        look up the step cache in the artifact store: mark each step cached or run
  --store URL     artifact store for --cached (ABLATE_STORE_URL; default file://$ABLATE_HOME/artifacts)
  --max-cells N   refuse grids with more than N cells (default ${DEFAULT_MAX_CELLS})
${setOptionHelp}`,
  options: {
    json: { type: 'boolean' },
    dot: { type: 'boolean' },
    cells: { type: 'boolean' },
    cached: { type: 'boolean' },
    store: { type: 'string' },
    home: { type: 'string' },
    'max-cells': { type: 'string' },
    set: { type: 'string', multiple: true },
  },
  async run(args) {
    const [file, ...extra] = args.positionals;
    if (file === undefined) throw new UsageError('no pipeline file given');
    if (extra.length) throw new UsageError(`one pipeline file at a time (got ${args.positionals.length})`);
    if (args.values.json && args.values.dot) throw new UsageError('--json and --dot exclude each other');
    const maxCells = intOption(args, 'max-cells', DEFAULT_MAX_CELLS, 1);
    const plan = await compileFileForCli(file, maxCells, (args.values.set as string[] | undefined) ?? []);
    if (!plan) return 1;
    let statuses: Map<string, string> | undefined;
    if (args.values.cached) {
      const { resolveConfig } = await import('../../../temporal.config');
      const { openStore } = await import('../../store/index');
      const { cacheStatus } = await import('../../cache-status');
      const config = resolveConfig({
        storeUrl: stringOption(args, 'store'),
        home: stringOption(args, 'home'),
      });
      statuses = await cacheStatus(plan, await openStore(config.storeUrl));
    }
    if (args.values.json) {
      console.log(
        JSON.stringify({
          ...planToJson(plan),
          ...(statuses ? { cacheStatus: Object.fromEntries(statuses) } : {}),
        }),
      );
    } else if (args.values.dot) console.log(planToDot(plan));
    else console.log(planToText(plan, { cells: args.values.cells === true, statuses }));
    return 0;
  },
};
