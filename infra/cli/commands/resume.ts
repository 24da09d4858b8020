import { isDebug } from '../cli-session';
import { intOption, UsageError, type Command } from '../command';
import { configFlags, configFlagsHelp, configFrom, slotsOption } from '../config-flags';
import { interrupted } from '../lifecycle';
import { cancelWhenTrainersDie, startCommandTrainers, workerQueues, type CommandTrainers } from '../trainers';

/** `ablate resume RUN_ID`: restart a failed, cancelled or terminated run where it stopped. */
export const resumeCommand: Command = {
  name: 'resume',
  summary: 'Restart a failed, cancelled or terminated run, reusing its completed steps and checkpoints',
  usage: `Usage: ablate resume RUN_ID [options]

Starts RUN_ID again with the same plan. Steps that completed in it are reused as they are; the others
run, and a training step continues from the newest good checkpoint of its configuration (the run
summary's "resumedFrom" says which). Follows the run like \`ablate run\`.

  --json              last line: the run summary, as \`ablate run --json\` prints it
  --max-parallel N    steps in flight at once (ABLATE_MAX_PARALLEL, default 64)
  --detach            restart the run and exit (remote workers do the work)
  --workers           also run in-process workers when TEMPORAL_ADDRESS is set
  --slots Q=N[,Q=N]   per queue, as for \`ablate run\` (ABLATE_SLOTS): gpu=N trains in N trainer processes

${configFlagsHelp}`,
  options: {
    ...configFlags,
    json: { type: 'boolean' },
    'max-parallel': { type: 'string' },
    detach: { type: 'boolean' },
    workers: { type: 'boolean' },
    slots: { type: 'string' },
  },
  async run(args) {
    // Loaded here, not at the top: Temporal's native bridge takes a while to load.
    const { resumeRun } = await import('../../resume');
    const { openSession } = await import('../../session');
    const { reportOutcome, watchRun } = await import('../watch');
    const [runId, ...extra] = args.positionals;
    if (!runId) throw new UsageError('no run id given (`ablate runs` lists them)');
    if (extra.length) throw new UsageError('one run at a time');
    const maxParallel =
      args.values['max-parallel'] === undefined ? undefined : intOption(args, 'max-parallel', 64, 1);
    const config = configFrom(args, { maxParallel, slots: slotsOption(args) });
    const detach = args.values.detach === true;
    const inProcessWorkers =
      !detach && (config.temporalAddress === undefined || args.values.workers === true);
    const session = await openSession(config, {
      workers: inProcessWorkers ? { queues: workerQueues(config), workflows: true } : undefined,
      log: (m) => console.error(m),
    });
    let trainers: CommandTrainers | undefined;
    try {
      trainers = await startCommandTrainers(session, config, isDebug(args.values));
      const resumed = await resumeRun(session, runId, { maxParallel });
      console.error(
        `run ${runId} (${resumed.previousStatus}) resumed: ${resumed.reused} step(s) reused, ${resumed.toRun} to run`,
      );
      if (detach) {
        console.log(runId);
        return 0;
      }
      cancelWhenTrainersDie(trainers, session, runId, interrupted);
      const outcome = await watchRun(session, runId, { live: process.stderr.isTTY === true });
      return await reportOutcome(session, runId, outcome, args.values.json === true);
    } finally {
      await trainers?.close();
      await session.close();
    }
  },
};
