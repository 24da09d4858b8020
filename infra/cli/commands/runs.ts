import { formatDurationMs } from '../../compiler/duration';
import { intOption, type Command } from '../command';
import { configFlags, configFlagsHelp, configFrom } from '../config-flags';
import { table } from '../render-plan';

/** `ablate runs`: past and current runs. */
export const runsCommand: Command = {
  name: 'runs',
  summary: 'List past and current runs',
  usage: `Usage: ablate runs [--limit N] [--json]

  --limit N   at most N runs, newest first (default 50)
  --json      one JSON array

${configFlagsHelp}`,
  options: { ...configFlags, limit: { type: 'string' }, json: { type: 'boolean' } },
  async run(args) {
    // Loaded here, not at the top: Temporal's native bridge takes a while to load.
    const { listRuns } = await import('../../runs');
    const { openSession } = await import('../../session');
    const session = await openSession(configFrom(args), { log: (m) => console.error(m) });
    try {
      const runs = await listRuns(session, intOption(args, 'limit', 50, 1));
      if (args.values.json) {
        console.log(JSON.stringify(runs));
        return 0;
      }
      if (runs.length === 0) {
        console.log('no runs yet');
        return 0;
      }
      const rows = runs.map((r) => [
        r.runId,
        r.pipeline,
        r.status.toLowerCase(),
        r.startedAt.toISOString().replace('T', ' ').slice(0, 19),
        r.closedAt ? formatDurationMs(r.closedAt.getTime() - r.startedAt.getTime()) : '',
      ]);
      for (const line of table(['run', 'pipeline', 'status', 'started (UTC)', 'took'], rows))
        console.log(line);
      return 0;
    } finally {
      await session.close();
    }
  },
};
