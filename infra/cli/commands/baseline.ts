import { resolveConfig } from '../../../temporal.config';
import { stringOption, UsageError, type Command, type CommandArgs } from '../command';

/** Flags that choose the artifact store, as for `ablate lineage`. */
export const storeFlags = { store: { type: 'string' }, home: { type: 'string' } } as const;

/** The artifact store the `--store`/`--home` flags (or the environment) name. */
export async function storeFrom(args: CommandArgs) {
  const { openStore } = await import('../../store/index');
  return openStore(
    resolveConfig({ storeUrl: stringOption(args, 'store'), home: stringOption(args, 'home') }).storeUrl,
  );
}

/** `ablate baseline set|show`: the run a pipeline's later runs are compared with. */
export const baselineCommand: Command = {
  name: 'baseline',
  summary: "Pin a run as its pipeline's baseline for drift reports, or show the pinned one",
  usage: `Usage: ablate baseline set RUN_ID [--pipeline NAME] [--json]
       ablate baseline show NAME [--json]

  set RUN_ID        pin a completed run as the baseline of its pipeline (replaces the previous one);
                    \`ablate drift\` and scheduled runs compare with it
  --pipeline NAME   pin it for this pipeline name instead of the run's own
  show NAME         the baseline of pipeline NAME: run id, when and by whom it was set
  --json            {"pipeline", "runId", "setAt", "setBy"}
  --store URL, --home DIR   the artifact store (as for \`ablate run\`)`,
  options: { ...storeFlags, pipeline: { type: 'string' }, json: { type: 'boolean' } },
  async run(args) {
    const [action, target, ...extra] = args.positionals;
    if (action !== 'set' && action !== 'show')
      throw new UsageError(
        action ? `unknown action ${JSON.stringify(action)}: use set or show` : 'no action given: set or show',
      );
    if (!target) throw new UsageError(action === 'set' ? 'no run id given' : 'no pipeline name given');
    if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
    const { getBaseline, setBaseline } = await import('../../drift/baseline');
    const store = await storeFrom(args);
    if (action === 'set') {
      const pipeline = stringOption(args, 'pipeline');
      const record = await setBaseline(store, { runId: target, ...(pipeline ? { pipeline } : {}) });
      if (args.values.json) console.log(JSON.stringify(record));
      else console.log(`baseline of ${record.pipeline}: ${record.runId}`);
      return 0;
    }
    if (stringOption(args, 'pipeline')) throw new UsageError('--pipeline goes with set; show takes the name');
    const record = await getBaseline(store, target);
    if (!record) {
      console.error(
        `pipeline ${target} has no baseline in ${store.url}; pin one with \`ablate baseline set RUN_ID\``,
      );
      return 1;
    }
    if (args.values.json) console.log(JSON.stringify(record));
    else
      console.log(`baseline of ${record.pipeline}: ${record.runId} (set ${record.setAt} by ${record.setBy})`);
    return 0;
  },
};
