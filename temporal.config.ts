/**
 * ablate's configuration: where Temporal is, which namespace and task queues, where artifacts and
 * state live. Resolution order, per setting: explicit option (CLI flag) > environment > default.
 * This is the only module that reads `process.env` for these settings (see infra/env.ts for names).
 */
import { availableParallelism, homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import { EnvKey } from './infra/env';
import { AblateError, ErrorType } from './infra/errors';
import { DEFAULT_TRANSFER_CONCURRENCY } from './infra/store/transfer';

/** Settings as given (flags); every field optional. */
export interface AblateConfigInput {
  home?: string;
  temporalAddress?: string;
  namespace?: string;
  temporalBin?: string;
  storeUrl?: string;
  taskQueuePrefix?: string;
  workerSlots?: number;
  /** Per-queue slots of `ablate run`, as `--slots` spells them: `gpu=2`, `gpu=2,cpu=4`. */
  slots?: string;
  maxParallel?: number;
  transferConcurrency?: number;
  workerCacheDir?: string;
  workerCacheBytes?: number;
}

/** Settings resolved. */
export interface AblateConfig {
  /**
   * State directory: the embedded server's database and record, logs, caches, the default artifact
   * store. @default $XDG_STATE_HOME/ablate, else ~/.local/state/ablate (never the cwd)
   */
  home: string;
  /** Temporal frontend address; undefined means: start (or reuse) the embedded dev server. */
  temporalAddress: string | undefined;
  namespace: string;
  /** The `temporal` binary for the embedded server, if one was configured. */
  temporalBin: string | undefined;
  /** Artifact store URL. */
  storeUrl: string;
  taskQueuePrefix: string;
  /** Steps a worker runs at once, per queue. */
  workerSlots: { cpu: number; gpu: number };
  /**
   * Trainer processes `ablate run` starts for the gpu queue, each running one step on one wasm
   * thread (tfjs blocks a process's JS thread while it trains, so parallel training needs processes).
   * Set by `--slots gpu=N` / `ABLATE_SLOTS=gpu=N`; 0 means the gpu queue is served in-process.
   * @default 0
   */
  trainerProcesses: number;
  /** Steps one pipeline run keeps in flight at once. */
  maxParallel: number;
  /** Files of a folder artifact moved at once (uploads and downloads). @default 16 */
  transferConcurrency: number;
  /**
   * A worker's cache of step inputs: steps read their inputs there in place, so an input already on the
   * host is never moved again (infra/store/local-cache.ts). Shared by the worker processes of a host.
   * @default <home>/cache/inputs
   */
  workerCacheDir: string;
  /**
   * Bytes that cache keeps (least recently used entries go first; entries in use stay).
   * @default 100 GiB
   */
  workerCacheBytes: number;
}

/** Default bound of a worker's input cache: an ImageNet-scale input (~150 GB) needs it raised. */
export const DEFAULT_WORKER_CACHE_BYTES = 100 * 2 ** 30;

/** Resolve the configuration. `env` and `cwd` are parameters so tests can pass their own. */
export function resolveConfig(
  input: AblateConfigInput = {},
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): AblateConfig {
  const nonEmpty = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim());
  const home = resolve(cwd, input.home ?? nonEmpty(env[EnvKey.Home]) ?? defaultHome(env));
  const storeUrl =
    input.storeUrl ?? nonEmpty(env[EnvKey.StoreUrl]) ?? pathToFileURL(join(home, 'artifacts')).href;
  if (!/^(file|s3):\/\//.test(storeUrl)) {
    throw new AblateError(
      ErrorType.InvalidConfig,
      `${EnvKey.StoreUrl}=${storeUrl}: expected file:///path or s3://bucket/prefix`,
    );
  }
  // Flags before variables: --slots Q=N, then --slots N (ablate worker), then ABLATE_SLOTS, then
  // ABLATE_WORKER_SLOTS.
  const flagQueues = input.slots !== undefined ? parseSlots(input.slots, '--slots') : {};
  const envSlots = nonEmpty(env[EnvKey.Slots]);
  const envQueues =
    input.slots === undefined && envSlots !== undefined ? parseSlots(envSlots, EnvKey.Slots) : {};
  const envWorkerSlots = positiveInt(undefined, env[EnvKey.WorkerSlots], EnvKey.WorkerSlots);
  const cpuSlots = flagQueues.cpu ?? input.workerSlots ?? envQueues.cpu ?? envWorkerSlots;
  const trainerProcesses = flagQueues.gpu ?? envQueues.gpu;
  const temporalBin = input.temporalBin ?? nonEmpty(env[EnvKey.TemporalBin]);
  return {
    home,
    temporalAddress: input.temporalAddress ?? nonEmpty(env[EnvKey.TemporalAddress]),
    namespace: input.namespace ?? nonEmpty(env[EnvKey.TemporalNamespace]) ?? 'default',
    temporalBin: temporalBin && !isAbsolute(temporalBin) ? resolve(cwd, temporalBin) : temporalBin,
    storeUrl,
    taskQueuePrefix: input.taskQueuePrefix ?? nonEmpty(env[EnvKey.TaskQueuePrefix]) ?? 'ablate',
    // One GPU step per GPU worker by default; CPU steps up to the cores available.
    workerSlots: {
      cpu: cpuSlots ?? Math.max(2, availableParallelism()),
      // gpu=N means N trainer processes of one slot each, not N slots in one process.
      gpu: input.workerSlots ?? (trainerProcesses !== undefined ? 1 : envWorkerSlots) ?? 1,
    },
    // Only an explicit gpu=N starts trainer processes: without one, a run behaves as it always has.
    trainerProcesses: trainerProcesses ?? 0,
    maxParallel: positiveInt(input.maxParallel, env[EnvKey.MaxParallel], EnvKey.MaxParallel) ?? 64,
    // Enough to hide per-file latency (S3 round trips, small files) without flooding a disk or a server.
    transferConcurrency:
      positiveInt(input.transferConcurrency, env[EnvKey.TransferConcurrency], EnvKey.TransferConcurrency) ??
      DEFAULT_TRANSFER_CONCURRENCY,
    workerCacheDir: resolve(
      cwd,
      input.workerCacheDir ?? nonEmpty(env[EnvKey.WorkerCacheDir]) ?? join(home, 'cache', 'inputs'),
    ),
    workerCacheBytes:
      input.workerCacheBytes ??
      byteSize(env[EnvKey.WorkerCacheBytes], EnvKey.WorkerCacheBytes) ??
      DEFAULT_WORKER_CACHE_BYTES,
  };
}

/**
 * Parse per-queue slots, `gpu=2` or `gpu=2,cpu=4` (`source` names the flag or variable in errors).
 */
export function parseSlots(raw: string, source: string): Partial<Record<'cpu' | 'gpu', number>> {
  const out: Partial<Record<'cpu' | 'gpu', number>> = {};
  for (const part of raw.split(',').map((p) => p.trim())) {
    const m = /^(cpu|gpu)=(\d+)$/.exec(part);
    const n = m ? Number(m[2]) : NaN;
    if (!m || !Number.isInteger(n) || n < 1)
      throw new AblateError(
        ErrorType.InvalidConfig,
        `${source}=${raw}: expected QUEUE=N[,QUEUE=N] with QUEUE cpu or gpu and N a positive integer, e.g. gpu=2 or gpu=2,cpu=4`,
      );
    if (out[m[1] as 'cpu' | 'gpu'] !== undefined)
      throw new AblateError(ErrorType.InvalidConfig, `${source}=${raw}: ${m[1]} is given twice`);
    out[m[1] as 'cpu' | 'gpu'] = n;
  }
  return out;
}

/** `123`, `500M`, `1.5G`, `2T` (binary units, optional `B`/`iB`) as bytes; undefined when unset. */
function byteSize(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(raw.trim());
  const unit = { '': 0, K: 1, M: 2, G: 3, T: 4 }[(m?.[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  const n = m?.[1] === undefined ? NaN : Math.floor(Number(m[1]) * 1024 ** unit);
  if (!Number.isSafeInteger(n))
    throw new AblateError(
      ErrorType.InvalidConfig,
      `${name}=${raw}: expected a size in bytes, e.g. 500000000, 500M, 100G or 2T`,
    );
  return n;
}

/** Per user, not per directory: every shell of a user finds the same runs and the same server. */
function defaultHome(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_STATE_HOME?.trim();
  // XDG: a relative XDG_STATE_HOME is invalid and must be ignored.
  if (xdg && isAbsolute(xdg)) return join(xdg, 'ablate');
  return join(env.HOME?.trim() || homedir(), '.local', 'state', 'ablate');
}

function positiveInt(
  explicit: number | undefined,
  raw: string | undefined,
  name: string,
): number | undefined {
  if (explicit !== undefined) return explicit;
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new AblateError(ErrorType.InvalidConfig, `${name}=${raw}: expected a positive integer`);
  return n;
}
