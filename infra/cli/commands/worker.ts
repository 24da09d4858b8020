import { isDebug, openCliSession } from '../cli-session';
import { intOption, stringOption, UsageError, type Command } from '../command';
import { configFlags, configFlagsHelp, configFrom } from '../config-flags';
import { claimInterrupt, exitWithParent, interrupted } from '../lifecycle';
import type { TrainerMessage } from '../trainers';

/** `ablate worker --queue cpu|gpu`: a long-lived worker. */
export const workerCommand: Command = {
  name: 'worker',
  summary: 'Run a long-lived worker for the cpu or gpu queue',
  usage: `Usage: ablate worker --queue cpu|gpu [--slots N] [--no-workflows] [--allow-cpu-fallback]
                    [--parent-pid PID]

Polls the queue's Temporal task queue and runs its steps until stopped (Ctrl-C or SIGTERM: it stops
taking work, gives running steps a few seconds, then cancels them: a training step writes a final
checkpoint first (within 30 s), and its retry on another worker resumes from it). A cpu worker also
runs the pipeline workflows unless --no-workflows.

A gpu worker first loads the GPU backend (@tensorflow/tfjs-node-gpu) and refuses to start when it
cannot (exit code 3), so gpu steps never run on CPU unnoticed.

  --queue cpu|gpu        which steps to run
  --slots N              steps at once (ABLATE_WORKER_SLOTS; default: cores for cpu, 1 for gpu)
  --no-workflows         do not run pipeline workflows on this worker
  --allow-cpu-fallback   gpu queue: start even without the GPU backend, training on CPU (says so)
  --parent-pid PID       stop (as on SIGTERM) when process PID, this worker's parent, ends however it
                         ends; \`ablate run --slots gpu=N\` starts its trainer processes this way

${configFlagsHelp}`,
  options: {
    ...configFlags,
    queue: { type: 'string' },
    slots: { type: 'string' },
    'no-workflows': { type: 'boolean' },
    'allow-cpu-fallback': { type: 'boolean' },
    'parent-pid': { type: 'string' },
  },
  async run(args) {
    const queue = stringOption(args, 'queue');
    if (queue !== 'cpu' && queue !== 'gpu') throw new UsageError('--queue must be cpu or gpu');
    const slots = args.values.slots === undefined ? undefined : intOption(args, 'slots', 1, 1);
    const config = configFrom(args, { workerSlots: slots });
    const parentPid =
      args.values['parent-pid'] === undefined ? undefined : intOption(args, 'parent-pid', 1, 1);
    // Watch the parent from the start: a parent killed while this worker loads must not leave it behind.
    const unwatch =
      parentPid === undefined ? undefined : exitWithParent(parentPid, (m) => console.error(`worker: ${m}`));
    const send = (m: TrainerMessage) => {
      if (process.connected) process.send?.(m, undefined, undefined, () => undefined);
    };
    const cpu = (): TrainerMessage => ({ type: 'cpu', ...process.cpuUsage() });
    process.on('message', (m: TrainerMessage) => {
      if (m.type === 'cpu?') send(cpu());
    });
    // The channel of a parent that spawned us with IPC must not keep this process alive once it is done
    // (after the listeners: adding one refs it again).
    process.channel?.unref();
    if (queue === 'gpu') {
      const { checkGpuBackend } = await import('../../gpu-check');
      const gpu = await checkGpuBackend(args.values['allow-cpu-fallback'] === true);
      if (gpu.device === 'cpu')
        console.error(
          `WARNING: this gpu worker trains on CPU (tfjs backend ${gpu.backend}), many times slower: the GPU backend did not load (${gpu.reason})`,
        );
    }
    const release = claimInterrupt();
    try {
      const session = await openCliSession(config, {
        workers: { queues: [queue], workflows: queue === 'cpu' && args.values['no-workflows'] !== true },
        debug: isDebug(args.values),
      });
      console.error(
        `worker: queue ${queue} (${config.taskQueuePrefix}-${queue}), ${config.workerSlots[queue]} slot(s), Temporal ${session.address}, store ${session.store.url}`,
      );
      send({ type: 'ready', pid: process.pid });
      const stop = () => {
        console.error(
          'worker: stopping (running steps get 5 s to finish; then they save a checkpoint and retry elsewhere)',
        );
        void session.close();
      };
      if (interrupted.aborted) stop();
      else interrupted.addEventListener('abort', stop, { once: true });
      await session.workers!.done;
      await session.close();
      send(cpu());
      return 0;
    } finally {
      unwatch?.();
      release();
    }
  },
};
