import { isDebug, openCliSession } from '../cli-session';
import { parseDurationMs } from '../../compiler/duration';
import { stringOption, UsageError, type Command } from '../command';
import { configFlags, configFlagsHelp, configFrom } from '../config-flags';
import { formatBytes } from './artifacts';

/** `ablate gc`: delete what no kept run references. */
export const gcCommand: Command = {
  name: 'gc',
  summary: 'Delete what no kept run references: old runs, unreferenced blobs, stale work dirs',
  usage: `Usage: ablate gc [--dry-run] [--older-than 30d] [--force] [--json]

Keeps every run that ended within --older-than, every running run (Temporal is asked), every run a
baseline pins (a record under baselines/), the cache entries those runs used or that are recent, and
every blob any kept record reaches (through directory manifests, provenance records and plans), plus
blobs written in the last hour. Deletes the rest: the records of older runs, their cache entries, the
blobs nothing references any more (e.g. old checkpoints), and step work dirs in the temp directory
(ablate-<step key>-<attempt>-<hex>) unchanged for --older-than and not in use by a live process. Prints what it freed.

  --dry-run          list what would be deleted; delete nothing
  --older-than DUR   age after which a finished run is forgotten (default 30d; e.g. 12h, 7d)
  --force            go ahead when Temporal cannot be reached: then every run without a summary is
                     treated as running and kept
  --json             the report as one JSON object

${configFlagsHelp}`,
  options: {
    ...configFlags,
    'dry-run': { type: 'boolean' },
    'older-than': { type: 'string' },
    force: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run(args) {
    if (args.positionals.length)
      throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])}`);
    const raw = stringOption(args, 'older-than') ?? '30d';
    const olderThanMs = parseDurationMs(raw);
    if (olderThanMs === undefined)
      throw new UsageError(
        `--older-than must be a duration such as 30d, 12h or 90m, got ${JSON.stringify(raw)}`,
      );
    const config = configFrom(args);
    const { collectGarbage, temporalUnknownError } = await import('../../gc');
    const { openStore } = await import('../../store/index');
    const runningRuns = await askTemporal(config, isDebug(args.values)).catch((err: unknown) => {
      if (args.values.force === true) {
        console.error(
          `gc: Temporal not asked (${(err as Error).message}); --force: keeping every run that has not ended`,
        );
        return undefined;
      }
      throw temporalUnknownError(config.temporalAddress ?? 'the embedded server', err);
    });
    const report = await collectGarbage(await openStore(config.storeUrl), {
      olderThanMs,
      dryRun: args.values['dry-run'] === true,
      runningRuns,
    });
    if (args.values.json) {
      console.log(JSON.stringify(report));
      return 0;
    }
    const verb = report.dryRun ? 'would delete' : 'deleted';
    for (const runId of report.runs.forgotten) console.log(`${verb} run ${runId} (its records)`);
    for (const digest of report.blobs.digests) console.log(`${verb} blob ${digest}`);
    for (const dir of report.workDirs.deleted) console.log(`${verb} work dir ${dir}`);
    for (const dir of report.workDirs.skippedInUse)
      console.error(`kept work dir ${dir}: in use by a live process`);
    console.log(
      `gc${report.dryRun ? ' (dry run)' : ''}: ${verb} ${report.blobs.deleted} blobs (${formatBytes(report.blobs.bytes)}), ` +
        `${report.runs.forgotten.length} runs, ${report.cacheEntries.deleted} cache entries, ` +
        `${report.records.deleted} records, ${report.workDirs.deleted.length} work dirs ` +
        `(${formatBytes(report.workDirs.bytes)}); kept ${report.runs.kept} runs ` +
        `(${report.runs.running.length} running, ${report.runs.pinned.length} pinned), ` +
        `${report.blobs.kept} blobs, ${report.cacheEntries.kept} cache entries`,
    );
    return 0;
  },
};

/** Runs Temporal lists as running, with their start times. */
async function askTemporal(
  config: ReturnType<typeof configFrom>,
  debug: boolean,
): Promise<Map<string, number>> {
  const session = await openCliSession(config, { debug });
  try {
    const running = new Map<string, number>();
    for await (const wf of session.client.workflow.list({
      query: 'WorkflowType = "pipelineRun" AND ExecutionStatus = "Running"',
    }))
      running.set(wf.workflowId, wf.startTime.getTime());
    return running;
  } finally {
    await session.close();
  }
}
