/** Flags every command that talks to Temporal accepts, mapped onto temporal.config.ts. */
import { parseSlots, resolveConfig, type AblateConfig } from '../../temporal.config';
import { stringOption, UsageError, type CommandArgs, type CommandOptions } from './command';

export const configFlags: CommandOptions = {
  home: { type: 'string' },
  address: { type: 'string' },
  namespace: { type: 'string' },
  store: { type: 'string' },
  'task-queue-prefix': { type: 'string' },
};

export const configFlagsHelp = `Connection (each overrides its environment variable, see README "Configuration"):
  --home DIR                 state directory (ABLATE_HOME; default $XDG_STATE_HOME/ablate or ~/.local/state/ablate)
  --address HOST:PORT        Temporal frontend (TEMPORAL_ADDRESS); unset: the embedded dev server
  --namespace NAME           Temporal namespace (TEMPORAL_NAMESPACE, default "default")
  --store URL                artifact store, file:///path or s3://bucket/prefix (ABLATE_STORE_URL)
  --task-queue-prefix NAME   task queues NAME-cpu / NAME-gpu (ABLATE_TASK_QUEUE_PREFIX, default ablate)`;

export function configFrom(
  args: CommandArgs,
  extra: { workerSlots?: number; slots?: string; maxParallel?: number } = {},
): AblateConfig {
  return resolveConfig({
    home: stringOption(args, 'home'),
    temporalAddress: stringOption(args, 'address'),
    namespace: stringOption(args, 'namespace'),
    storeUrl: stringOption(args, 'store'),
    taskQueuePrefix: stringOption(args, 'task-queue-prefix'),
    ...extra,
  });
}

/**
 * `--slots Q=N[,Q=N]` of the commands that run workers; a malformed one is a usage error (exit 2),
 * while the same text in ABLATE_SLOTS is a bad environment (exit 3).
 */
export function slotsOption(args: CommandArgs): string | undefined {
  const raw = stringOption(args, 'slots');
  if (raw !== undefined) {
    try {
      parseSlots(raw, '--slots');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  return raw;
}

/** The flags that make a child ablate process use the same configuration as this one. */
export function configArgs(config: AblateConfig): string[] {
  return [
    '--home',
    config.home,
    ...(config.temporalAddress !== undefined ? ['--address', config.temporalAddress] : []),
    '--namespace',
    config.namespace,
    '--store',
    config.storeUrl,
    '--task-queue-prefix',
    config.taskQueuePrefix,
  ];
}
