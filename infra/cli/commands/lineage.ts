import { resolveConfig } from '../../../temporal.config';
import { stringOption, UsageError, type Command } from '../command';

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

/** `ablate verify RUN_ID`: re-check a run's artifacts. */
export const verifyCommand: Command = {
  name: 'verify',
  summary: 'Re-check every artifact of a run against its digest; name each missing or corrupt one',
  usage: `Usage: ablate verify RUN_ID [--json]

Reads every artifact the run produced or used (outputs, inputs, provenance records, the plan; for a
directory artifact every file in it) and compares it with its sha256 digest. Exit status 0 when all are
intact, 1 when any is missing or corrupt (each is named).

  --json    {"runId", "checked", "problems": [{step, role, uri, digest, status}]}
  --store URL, --home DIR   the artifact store`,
  options: { ...storeFlags, json: { type: 'boolean' } },
  async run(args) {
    const [runId] = args.positionals;
    if (!runId) throw new UsageError('no run id given');
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
