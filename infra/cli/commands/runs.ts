import { isDebug, openCliSession } from '../cli-session';
import { formatDurationMs, parseDurationMs } from '../../compiler/duration';
import { intOption, stringOption, UsageError, type Command, type CommandArgs } from '../command';
import { configFlags, configFlagsHelp, configFrom } from '../config-flags';
import { table } from '../render-plan';
import type { RunEntry, RunOutcome } from '../../runs';

const OUTCOMES: readonly RunOutcome[] = ['completed', 'failed', 'cancelled', 'running', 'detached'];

/** `ablate runs [rm RUN_ID]`: past and current runs, with ablate's own outcome. */
export const runsCommand: Command = {
  name: 'runs',
  summary: "List past and current runs with ablate's outcome; `runs rm RUN_ID` forgets one",
  usage: `Usage: ablate runs [--status S] [--pipeline NAME] [--schedule NAME] [--drifted] [--since T]
                   [--limit N] [--json]
       ablate runs rm RUN_ID

Lists runs newest first with ablate's outcome of each, not Temporal's workflow status (a run whose
steps failed is a completed workflow, and is listed as failed):
  completed   every step done or served from the cache
  failed      at least one step failed (the table says how many), or the workflow was terminated or
              failed before it could write its summary
  cancelled   cancelled (\`ablate cancel\`): running steps stopped, the rest never ran
  running     in progress, and a worker polls the run's workflow task queue
  detached    in progress, but no worker has polled the run's workflow task queue for 90 s: nothing
              is driving it (e.g. \`ablate run\` was interrupted on the embedded server); it resumes
              where it stopped once a worker serves that queue (\`ablate status RUN_ID --watch\`,
              \`ablate worker\` or \`ablate server start\`)

  --status S       only runs with this outcome (${OUTCOMES.join(', ')})
  --pipeline NAME  only runs of this pipeline
  --schedule NAME  only runs started by this schedule (\`ablate schedule list\`)
  --drifted        only scheduled runs whose drift verdict is "drifted"
  --since T        only runs started at or after T: an ISO time (2026-12-01, 2026-12-01T02:00:00Z) or
                   a duration back from now (24h, 7d)
  --limit N        at most N runs (default 50)
  --json           one JSON array, newest first; each entry {runId, pipeline, status, startedAt,
                   endedAt, counts} plus schedule and verdict for scheduled runs, workflowStatus (Temporal's),
                   and a note where the outcome needs one. counts is null for a run whose workflow does
                   not answer.

rm RUN_ID   Forget a run: deletes its workflow execution from Temporal (and the scheduled-run
            workflow that started it) and its records under runs/RUN_ID/ in the store. Its artifacts
            stay until garbage collection (other runs and the cache may share them). A running run
            must be cancelled first.

The pipeline, schedule and verdict filters use ablate's Temporal search attributes (registered
automatically on the embedded server; see README "Nightly reproductions" for a remote server).

${configFlagsHelp}`,
  options: {
    ...configFlags,
    limit: { type: 'string' },
    json: { type: 'boolean' },
    status: { type: 'string' },
    pipeline: { type: 'string' },
    schedule: { type: 'string' },
    drifted: { type: 'boolean' },
    since: { type: 'string' },
  },
  async run(args) {
    const [sub, ...rest] = args.positionals;
    if (sub !== undefined && sub !== 'rm')
      throw new UsageError(
        `unknown sub-command ${JSON.stringify(sub)} (did you mean \`ablate runs rm RUN_ID\`?)`,
      );
    if (sub === 'rm') {
      if (rest.length !== 1) throw new UsageError('`ablate runs rm` takes one RUN_ID');
      return removeRunCommand(args, rest[0]!);
    }
    const status = stringOption(args, 'status');
    if (status !== undefined && !(OUTCOMES as readonly string[]).includes(status))
      throw new UsageError(`--status must be one of ${OUTCOMES.join(', ')}, got ${JSON.stringify(status)}`);
    const since = sinceOption(args);
    const limit = intOption(args, 'limit', 50, 1);
    // Loaded here, not at the top: Temporal's native bridge takes a while to load.
    const { listRuns } = await import('../../runs');
    const session = await openCliSession(configFrom(args), { debug: isDebug(args.values) });
    try {
      const runs = await listRuns(session, {
        limit,
        status: status as RunOutcome | undefined,
        pipeline: stringOption(args, 'pipeline'),
        schedule: stringOption(args, 'schedule'),
        drifted: args.values.drifted === true,
        since,
      });
      if (args.values.json) {
        console.log(JSON.stringify(runs));
        return 0;
      }
      if (runs.length === 0) {
        console.log('no runs match');
        return 0;
      }
      const rows = runs.map((r) => [
        r.runId,
        r.pipeline,
        outcomeText(r),
        r.schedule ?? '',
        r.verdict ?? '',
        r.startedAt.toISOString().replace('T', ' ').slice(0, 19),
        r.endedAt ? formatDurationMs(r.endedAt.getTime() - r.startedAt.getTime()) : '',
      ]);
      for (const line of table(
        ['run', 'pipeline', 'status', 'schedule', 'verdict', 'started (UTC)', 'took'],
        rows,
      ))
        console.log(line);
      for (const r of runs) if (r.note) console.error(`${r.runId}: ${r.note}`);
      return 0;
    } finally {
      await session.close();
    }
  },
};

/** `failed (2 failed steps)`, `running (3/19 done)`, or the bare outcome. */
function outcomeText(r: RunEntry): string {
  const c = r.counts;
  if (!c) return r.status;
  if (r.status === 'failed' && c.failed > 0)
    return `failed (${c.failed} failed step${c.failed === 1 ? '' : 's'})`;
  if (r.status === 'running') {
    const total = Object.values(c).reduce((a, b) => a + b, 0);
    return `running (${c.done + c.cached}/${total} done)`;
  }
  return r.status;
}

function sinceOption(args: CommandArgs): Date | undefined {
  const raw = stringOption(args, 'since');
  if (raw === undefined) return undefined;
  const ago = parseDurationMs(raw);
  if (ago !== undefined && typeof raw === 'string' && /[a-z]$/.test(raw)) return new Date(Date.now() - ago);
  const at = /^\d{4}-\d{2}-\d{2}/.test(raw) ? new Date(raw) : undefined;
  if (!at || Number.isNaN(at.getTime()))
    throw new UsageError(
      `--since must be an ISO time (2026-12-01, 2026-12-01T02:00:00Z) or a duration like 24h or 7d, got ${JSON.stringify(raw)}`,
    );
  return at;
}

async function removeRunCommand(args: CommandArgs, runId: string): Promise<number> {
  const { removeRun } = await import('../../runs');
  const session = await openCliSession(configFrom(args), { debug: isDebug(args.values) });
  try {
    const removed = await removeRun(session, runId);
    console.log(
      `forgot run ${runId}: ${removed.workflows} workflow execution${removed.workflows === 1 ? '' : 's'} and ${removed.records} record${removed.records === 1 ? '' : 's'} deleted; its artifacts stay until gc`,
    );
    return 0;
  } finally {
    await session.close();
  }
}
