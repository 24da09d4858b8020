import { availableParallelism } from 'node:os';

import { isDebug, openCliSession } from '../cli-session';
import { UsageError, type Command } from '../command';
import { configFlags, configFlagsHelp, configFrom, slotsOption } from '../config-flags';
import { interrupted } from '../lifecycle';
import { liveText, resultsText } from '../render-run';
import { cancelWhenTrainersDie, startCommandTrainers, workerQueues, type CommandTrainers } from '../trainers';

/** `ablate status RUN_ID [--watch]`. */
export const statusCommand: Command = {
  name: 'status',
  summary: 'Show where a run stands; --watch follows it (and, embedded, resumes it)',
  usage: `Usage: ablate status RUN_ID [--watch] [--json]

Shows a run's steps (running ones with their live progress: iteration, loss, images/s, ETA), or, for
a finished run, its results table and where the time went (step time per kind, cores busy: see
\`ablate run --help\`). With --watch, follows it to the end; on the embedded server this
also starts in-process workers, so a run whose \`ablate run\` was closed continues.

  --watch   follow the run until it ends
  --slots Q=N[,Q=N]   with --watch on the embedded server: per queue, as for \`ablate run\` (ABLATE_SLOTS)
  --json    print the status as one JSON object (the last line)

${configFlagsHelp}`,
  options: {
    ...configFlags,
    watch: { type: 'boolean' },
    json: { type: 'boolean' },
    slots: { type: 'string' },
  },
  async run(args) {
    // Loaded here, not at the top: Temporal's native bridge takes a while to load.
    const { getRunView } = await import('../../runs');
    const { breakdownText, loadRunBreakdown } = await import('../../run-breakdown');
    const { reportOutcome, watchRun } = await import('../watch');
    const [runId] = args.positionals;
    if (!runId) throw new UsageError('no run id given (`ablate runs` lists them)');
    const config = configFrom(args, { slots: slotsOption(args) });
    const watch = args.values.watch === true;
    const embedded = config.temporalAddress === undefined;
    // Queries need a workflow worker; on the embedded server this process provides it. Only with
    // --watch do we also run steps (which resumes the run).
    const session = await openCliSession(config, {
      workers: embedded ? { queues: watch ? workerQueues(config) : [], workflows: true } : undefined,
      debug: isDebug(args.values),
    });
    let trainers: CommandTrainers | undefined;
    try {
      if (watch) {
        if (embedded) trainers = await startCommandTrainers(session, config, isDebug(args.values));
        if (trainers) cancelWhenTrainersDie(trainers, session, runId, interrupted);
        const outcome = await watchRun(session, runId, { live: process.stderr.isTTY === true });
        return await reportOutcome(session, runId, outcome, args.values.json === true);
      }
      const view = await session.call(() => getRunView(session, runId));
      const breakdown = view.summary
        ? await loadRunBreakdown(session.store, view.summary, availableParallelism()).catch(() => undefined)
        : undefined;
      if (view.summary) console.log(resultsText(view.summary, view.plan));
      if (breakdown && !args.values.json) console.log(['', ...breakdownText(breakdown)].join('\n'));
      else console.log(liveText(view, Date.now() - (view.startedAt?.getTime() ?? Date.now())));
      const url = session.runUrl(runId);
      if (url && !args.values.json) console.log(`Web UI: ${url}`);
      if (args.values.json) {
        console.log(
          JSON.stringify({
            runId,
            workflowStatus: view.workflowStatus,
            phase: view.phase ?? null,
            counts: view.counts,
            steps: view.steps,
            note: view.note ?? null,
            breakdown: breakdown ?? null,
          }),
        );
      }
      return 0;
    } finally {
      await trainers?.close();
      await session.close();
    }
  },
};
