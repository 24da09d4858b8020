import { availableParallelism } from 'node:os';

import { DEFAULT_MAX_CELLS } from '../../compiler/compile';
import { intOption, stringOption, UsageError, type Command } from '../command';
import { isDebug, openCliSession } from '../cli-session';
import { compileFileForCli, setOptionHelp } from '../compile-file';
import { configFlags, configFlagsHelp, configFrom, slotsOption } from '../config-flags';
import { interrupted } from '../lifecycle';
import { cancelWhenTrainersDie, startCommandTrainers, workerQueues, type CommandTrainers } from '../trainers';
import { machineCpuTimes, type RunUsage } from '../../run-breakdown';

/** `ablate run FILE`: compile, start the pipeline workflow, follow it to the end. */
export const runCommand: Command = {
  name: 'run',
  summary: 'Run a pipeline on Temporal and follow it (embedded server and workers by default)',
  usage: `Usage: ablate run FILE [options]

Compiles FILE, stores the plan in the artifact store and starts a run on Temporal. With no Temporal
address configured, ablate uses the embedded dev server of the state directory (starting it if none
runs) and in-process workers for both queues, so this one command does everything; when
\`ablate server start --workers\` runs background workers, they do the work instead. Prints the run id
and the Web UI link, shows live progress (a live view on a terminal, plain lines otherwise), one line
per failed step, and ends with a results table and where the time went: per step kind, the steps
run and served from the cache with their total and median time (from the step records), and how busy
the cores were, derived (step time / (wall x cores)) and measured (CPU time of this process and its
trainer processes, and of the whole machine from /proc/stat); \`ablate status RUN_ID\` shows it again.

Ctrl-C detaches (one line says how to reattach: \`ablate status RUN_ID --watch\`; exit code 130). With
in-process workers the run pauses until an ablate process serves it again; with background or remote
workers it goes on. Ctrl-C again stops at once (running steps resume from their checkpoint).
Exit codes: 0 completed, 1 failed or cancelled, 2 usage error or invalid pipeline, 3 bad environment,
130 detached (see \`ablate --help\`).

  --json              last line: {"runId", "status", "uiUrl", "counts", "cells", "steps": {KEY: {status, outputs}},
                      "breakdown": {wallMs, cores, kinds, busyStepMs, stepUtilization, measured}}
  --no-cache          recompute every step even when a cached result exists
  --max-parallel N    steps in flight at once (ABLATE_MAX_PARALLEL, default 64)
  --max-cells N       refuse grids with more than N cells (default ${DEFAULT_MAX_CELLS})
${setOptionHelp}
  --detach            start the run and exit (remote workers do the work)
  --workers           also run in-process workers when TEMPORAL_ADDRESS is set
  --slots Q=N[,Q=N]   steps at once per queue of this command's workers (ABLATE_SLOTS), e.g.
                      gpu=2 or gpu=2,cpu=4. gpu=N runs the gpu queue (training) in N trainer
                      processes, one step and one wasm thread each (tfjs trains on one JS thread per
                      process, so parallel training needs processes; on 2 cores gpu=2 gives more
                      throughput than one 2-thread trainer); logs: <home>/logs/trainer-N.log.
                      They stop with this command, however it ends. Default: gpu steps one at a
                      time in this process; cpu steps up to the cores (at least 2)
  --run-id ID         use ID as the run id
  --watch             follow the run (the default; kept for symmetry with \`ablate status\`)

${configFlagsHelp}`,
  options: {
    ...configFlags,
    json: { type: 'boolean' },
    'no-cache': { type: 'boolean' },
    'max-parallel': { type: 'string' },
    'max-cells': { type: 'string' },
    set: { type: 'string', multiple: true },
    detach: { type: 'boolean' },
    workers: { type: 'boolean' },
    slots: { type: 'string' },
    'run-id': { type: 'string' },
    watch: { type: 'boolean' },
  },
  async run(args) {
    // Loaded here, not at the top: Temporal's native bridge takes a while to load.
    const { startRun } = await import('../../runs');
    const { reportOutcome, watchRun } = await import('../watch');
    const [file, ...extra] = args.positionals;
    if (file === undefined) throw new UsageError('no pipeline file given');
    if (extra.length) throw new UsageError('one pipeline file at a time');
    const maxParallel =
      args.values['max-parallel'] === undefined ? undefined : intOption(args, 'max-parallel', 64, 1);
    const config = configFrom(args, { maxParallel, slots: slotsOption(args) });
    const plan = await compileFileForCli(
      file,
      intOption(args, 'max-cells', DEFAULT_MAX_CELLS, 1),
      (args.values.set as string[] | undefined) ?? [],
    );
    // An invalid pipeline is a usage error (exit 2); the problems were printed.
    if (!plan) return 2;
    const detach = args.values.detach === true;
    const inProcessWorkers =
      !detach && (config.temporalAddress === undefined || args.values.workers === true);
    const session = await openCliSession(config, {
      // With trainer processes, this process serves the workflows and the cpu queue only.
      workers: inProcessWorkers ? { queues: workerQueues(config), workflows: true } : undefined,
      preferBackgroundWorkers: true,
      debug: isDebug(args.values),
    });
    let trainers: CommandTrainers | undefined;
    try {
      trainers = await startCommandTrainers(session, config, isDebug(args.values));
      const pool = trainers.pool;
      // Measured over the run: this process, the trainers and the machine, from just before it starts.
      const startedAtMs = Date.now();
      const ownCpu = process.cpuUsage();
      const trainersCpu = (await pool?.cpuMicros()) ?? 0;
      const machine = machineCpuTimes();
      const { runId } = await session.call(() =>
        startRun(session, plan, {
          noCache: args.values['no-cache'] === true,
          runId: stringOption(args, 'run-id'),
        }),
      );
      console.error(`run ${runId} started: ${plan.stats.uniqueSteps} steps over ${plan.stats.cells} cells`);
      const url = session.runUrl(runId);
      if (url) console.error(`Web UI: ${url}`);
      if (detach) {
        console.log(runId);
        return 0;
      }
      cancelWhenTrainersDie(trainers, session, runId, interrupted);
      const outcome = await watchRun(session, runId, { live: process.stderr.isTTY === true });
      let usage: RunUsage | undefined;
      // Only when this process's workers (and trainers) did the work: otherwise it measured nothing.
      if (outcome.ended === 'closed' && session.workers) {
        const own = process.cpuUsage(ownCpu);
        const machineNow = machineCpuTimes();
        usage = {
          wallMs: Date.now() - startedAtMs,
          cores: availableParallelism(),
          cpuMs: (own.user + own.system + ((await pool?.cpuMicros()) ?? 0) - trainersCpu) / 1000,
          processes: 1 + (pool?.trainers.length ?? 0),
          ...(machine && machineNow && machineNow.total > machine.total
            ? { machineBusy: (machineNow.busy - machine.busy) / (machineNow.total - machine.total) }
            : {}),
        };
      }
      return await reportOutcome(session, runId, outcome, args.values.json === true, usage);
    } finally {
      // The trainers first: they use the server this session may stop when it leaves.
      await trainers?.close();
      await session.close();
    }
  },
};
