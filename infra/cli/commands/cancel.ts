import { isDebug, openCliSession } from '../cli-session';
import { UsageError, type Command } from '../command';
import { configFlags, configFlagsHelp, configFrom } from '../config-flags';
import { QUEUES } from '../../task-queues';

/** `ablate cancel RUN_ID`. */
export const cancelCommand: Command = {
  name: 'cancel',
  summary: 'Cancel a run: running steps stop and clean up, the summary is written',
  usage: `Usage: ablate cancel RUN_ID [--no-wait]

Requests cancellation of a run and waits until it has stopped (running steps are cancelled and clean
up; the run summary is written).

  --no-wait   return as soon as the request is recorded

${configFlagsHelp}`,
  options: { ...configFlags, 'no-wait': { type: 'boolean' } },
  async run(args) {
    // Loaded here, not at the top: Temporal's native bridge takes a while to load.
    const { readMemo } = await import('../../runs');
    const [runId] = args.positionals;
    if (!runId) throw new UsageError('no run id given');
    const config = configFrom(args);
    const session = await openCliSession(config, {
      // On the embedded server, the workflow and its steps need a worker to wind down.
      workers: config.temporalAddress === undefined ? { queues: QUEUES, workflows: true } : undefined,
      preferBackgroundWorkers: true,
      debug: isDebug(args.values),
    });
    try {
      const { status } = await readMemo(session, runId);
      if (status !== 'RUNNING') {
        console.log(`run ${runId} already ended (${status.toLowerCase()})`);
        return 0;
      }
      const handle = session.client.workflow.getHandle(runId);
      await handle.cancel();
      console.error(`cancellation of ${runId} requested`);
      if (args.values['no-wait']) return 0;
      await session.call(() => handle.result()).catch(() => undefined);
      const desc = await handle.describe();
      console.log(`run ${runId}: ${desc.status.name.toLowerCase()}`);
      return 0;
    } finally {
      await session.close();
    }
  },
};
