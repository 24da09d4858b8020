import { isDebug, openCliSession } from '../cli-session';
import { resolveConfig } from '../../../temporal.config';
import { stringOption, UsageError, type Command } from '../command';
import { configFlags, configFlagsHelp, configFrom } from '../config-flags';

const storeFlags = { store: { type: 'string' }, home: { type: 'string' } } as const;

async function storeFrom(args: Parameters<Command['run']>[0]) {
  const { openStore } = await import('../../store/index');
  return openStore(
    resolveConfig({ storeUrl: stringOption(args, 'store'), home: stringOption(args, 'home') }).storeUrl,
  );
}

/** `ablate lineage REF`: where a result came from. */
export const lineageCommand: Command = {
  name: 'lineage',
  summary: 'Trace a run, step, metric or artifact back to its data, code and params',
  usage: `Usage: ablate lineage REF [--json | --dot]

REF is one of
  RUN_ID                          every result of a run
  RUN_ID/STEP                     one step (its key or its label, e.g. "eval[init=scratch]")
  RUN_ID/STEP/OUTPUT[.FIELD...]   one number, e.g. RUN_ID/evaluate/metrics.AP
  sha256:DIGEST                   the artifact with that digest

Prints the upstream tree: each step with its kind and version, code commit (and whether the tree was
dirty), worker, attempt, parameters, output artifacts (URI and digest) and input artifacts, down to the
sources (e.g. the dataset directory and its files).

  --json    {"target", "roots": [KEY...], "nodes": {KEY: {label, kind, code, params, outputs, inputs, parents, ...}}}
  --dot     Graphviz DOT of steps and artifacts
  --store URL, --home DIR   the artifact store (as for \`ablate run\`)`,
  options: { ...storeFlags, json: { type: 'boolean' }, dot: { type: 'boolean' } },
  async run(args) {
    const [ref] = args.positionals;
    if (!ref) throw new UsageError('no reference given');
    const { lineageDot, lineageOf, lineageText } = await import('../../lineage');
    const graph = await lineageOf(await storeFrom(args), ref);
    if (args.values.json) console.log(JSON.stringify(graph));
    else if (args.values.dot) console.log(lineageDot(graph));
    else console.log(lineageText(graph));
    return 0;
  },
};

/** `ablate verify RUN_ID [--repair]`: re-check a run's artifacts, and recompute the damaged ones. */
export const verifyCommand: Command = {
  name: 'verify',
  summary: 'Re-check every artifact of a run against its digest; --repair recomputes the damaged ones',
  usage: `Usage: ablate verify RUN_ID [--repair] [--json]

Reads every artifact the run produced or used (outputs, inputs, provenance records, the plan; for a
directory artifact every file in it) and compares it with its sha256 digest. Exit status 0 when all are
intact, 1 when any is missing or corrupt (each is named).

  --repair  recompute what is damaged: start a new run of the same plan with the step cache on, so the
            steps whose outputs are damaged run again (the others come from the cache) and their
            recomputed bytes replace the damaged ones in the store; then verify again and say what was
            repaired and what could not be (e.g. a source dataset no step produces). Runs steps like
            \`ablate run\` (embedded server and in-process workers by default).
  --workers also run in-process workers for --repair when TEMPORAL_ADDRESS is set
  --json    {"runId", "checked", "problems": [{step, role, uri, digest, status}]}; with --repair
            {"runId", "found", "repairRunId", "repairStatus", "repaired", "unrepaired": [{..., reason}]}

${configFlagsHelp}`,
  options: {
    ...configFlags,
    json: { type: 'boolean' },
    repair: { type: 'boolean' },
    workers: { type: 'boolean' },
  },
  async run(args) {
    const [runId, ...extra] = args.positionals;
    if (!runId) throw new UsageError('no run id given');
    if (extra.length) throw new UsageError('one run id at a time');
    if (args.values.repair === true) return repair(args, runId);
    const { verifyRun } = await import('../../lineage');
    const { checked, problems } = await verifyRun(await storeFrom(args), runId);
    if (args.values.json) console.log(JSON.stringify({ runId, checked, problems }));
    else {
      for (const p of problems)
        console.error(`${p.status.toUpperCase()}: ${p.uri} (${p.digest}), ${p.role} of ${p.step}`);
      console.log(
        `${runId}: ${checked} artifacts checked, ${problems.length === 0 ? 'all intact' : `${problems.length} missing or corrupt`}`,
      );
    }
    return problems.length === 0 ? 0 : 1;
  },
};

async function repair(args: Parameters<Command['run']>[0], runId: string): Promise<number> {
  const { repairRun } = await import('../../lineage');
  const { QUEUES } = await import('../../task-queues');
  const config = configFrom(args);
  const session = await openCliSession(config, {
    debug: isDebug(args.values),
    workers:
      config.temporalAddress === undefined || args.values.workers === true
        ? { queues: QUEUES, workflows: true }
        : undefined,
  });
  try {
    const report = await repairRun(session, runId, { log: (m) => console.error(m) });
    if (args.values.json) console.log(JSON.stringify(report));
    else {
      for (const p of report.repaired)
        console.error(`REPAIRED: ${p.uri} (${p.digest}), ${p.role} of ${p.step} (was ${p.status})`);
      for (const p of report.unrepaired)
        console.error(`NOT REPAIRED: ${p.uri} (${p.digest}), ${p.role} of ${p.step}: ${p.reason}`);
      console.log(
        report.found.length === 0
          ? `${runId}: all intact, nothing to repair`
          : `${runId}: ${report.found.length} missing or corrupt, ${report.repaired.length} repaired` +
              (report.repairRunId ? ` by run ${report.repairRunId}` : '') +
              (report.unrepaired.length ? `, ${report.unrepaired.length} not repaired` : ''),
      );
    }
    return report.unrepaired.length === 0 ? 0 : 1;
  } finally {
    await session.close();
  }
}
