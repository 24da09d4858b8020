import { intOption, stringOption, UsageError, type Command } from '../command';
import { configFlags, configFlagsHelp, configFrom } from '../config-flags';

/** `ablate worker --queue cpu|gpu`: a long-lived worker. */
export const workerCommand: Command = {
  name: 'worker',
  summary: 'Run a long-lived worker for the cpu or gpu queue',
  usage: `Usage: ablate worker --queue cpu|gpu [--slots N] [--no-workflows]

Polls the queue's Temporal task queue and runs its steps until stopped (Ctrl-C or SIGTERM: it stops
taking work, gives running steps a few seconds, then cancels them: a training step writes a final
checkpoint first (within 30 s), and its retry on another worker resumes from it). A cpu worker also runs the pipeline workflows unless --no-workflows.

  --queue cpu|gpu   which steps to run
  --slots N         steps at once (ABLATE_WORKER_SLOTS; default: cores for cpu, 1 for gpu)
  --no-workflows    do not run pipeline workflows on this worker

${configFlagsHelp}`,
  options: {
    ...configFlags,
    queue: { type: 'string' },
    slots: { type: 'string' },
    'no-workflows': { type: 'boolean' },
  },
  async run(args) {
    // Loaded here, not at the top: Temporal's native bridge takes a while to load.
    const { openSession } = await import('../../session');
    const queue = stringOption(args, 'queue');
    if (queue !== 'cpu' && queue !== 'gpu') throw new UsageError('--queue must be cpu or gpu');
    const slots = args.values.slots === undefined ? undefined : intOption(args, 'slots', 1, 1);
    const config = configFrom(args, { workerSlots: slots });
    const session = await openSession(config, {
      workers: { queues: [queue], workflows: queue === 'cpu' && args.values['no-workflows'] !== true },
      log: (m) => console.error(m),
    });
    console.error(
      `worker: queue ${queue} (${config.taskQueuePrefix}-${queue}), ${config.workerSlots[queue]} slot(s), Temporal ${session.address}, store ${session.store.url}`,
    );
    const stop = () => {
      console.error(
        'worker: stopping (running steps get 5 s to finish; then they save a checkpoint and retry elsewhere)',
      );
      void session.close();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await session.workers!.done;
    await session.close();
    return 0;
  },
};
