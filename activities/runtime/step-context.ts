/**
 * Builds the {@link StepContext} a step implementation receives. The Temporal activity (run-step.ts)
 * wires it to heartbeats and cancellation; tests and the `ablate data|eval` commands use
 * {@link runStepLocally} to run a kind directly against a store.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';

import type { ArtifactStore } from '../../infra/store/index';
import type { CacheLease, LocalCache } from '../../infra/store/local-cache';
import type { JsonValue, StepOutputs } from '../../workflows/plan-types';
import type { FetchedInput } from './provenance';
import { stepCheckpoints } from './checkpoint-index';
import type { StepCheckpoints, StepContext, StepKind, StepLogger, StepProgress } from './step-kind';
import { transferHeartbeat } from './transfer-heartbeat';
import { withWorkDir } from './work-dirs';

export interface StepContextOptions {
  store: ArtifactStore;
  /**
   * The worker's cache of inputs: `fetch` returns a read-only path inside it, held until `release`.
   * Without one, `fetch` copies each input into the work directory (commands run once, tests).
   */
  cache?: LocalCache;
  /** Scratch directory; created on first use. */
  workDir: string;
  heartbeat?: (progress: StepProgress) => void;
  resumeFrom?: StepProgress;
  /** Checkpoints by cache key; default: only the one in `resumeFrom`. */
  checkpoints?: StepCheckpoints;
  attempt?: number;
  signal?: AbortSignal;
  log?: StepLogger;
}

/** A context plus the provenance facts the step added with `annotate`. */
export interface BuiltStepContext {
  ctx: StepContext;
  annotations: Record<string, JsonValue>;
  /** Where each input the step fetched came from (for the provenance record). */
  fetched: FetchedInput[];
  /** Let the cache evict the inputs this step fetched: call once the step's work has stopped. */
  release: () => void;
}

export const consoleLogger: StepLogger = {
  info: (message, fields) => console.error(`[info] ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`),
  warn: (message, fields) => console.error(`[warn] ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`),
};

export function createStepContext(options: StepContextOptions): BuiltStepContext {
  const { store, workDir, cache } = options;
  const annotations: Record<string, JsonValue> = {};
  const fetched: FetchedInput[] = [];
  const leases: CacheLease[] = [];
  const signal = options.signal ?? new AbortController().signal;
  const log = options.log ?? consoleLogger;
  let workDirMade = false;
  const heartbeat = options.heartbeat ?? (() => undefined);
  // The kind's own last progress (at first: where it may resume from), kept under transfer messages.
  let kindProgress: StepProgress = options.resumeFrom?.checkpoint
    ? {
        checkpoint: options.resumeFrom.checkpoint,
        checkpointIteration: options.resumeFrom.checkpointIteration,
      }
    : {};
  const ctx: StepContext = {
    // Made on first use: most steps never need scratch space, and a mkdir per step adds up.
    get workDir() {
      if (!workDirMade) {
        mkdirSync(workDir, { recursive: true });
        workDirMade = true;
      }
      return workDir;
    },
    async fetch(ref) {
      // A cancelled step starts no new transfer (reads are what a stopping step no longer needs).
      signal.throwIfAborted();
      const beats = transferHeartbeat(heartbeat, () => kindProgress, 'fetching', ref.digest.slice(0, 19));
      const started = performance.now();
      // In the provenance: where each input came from and how long the step waited for it.
      const noteFetch = (from: FetchedInput['from']) =>
        fetched.push({ digest: ref.digest, from, ms: Math.round((performance.now() - started) * 10) / 10 });
      if (cache) {
        try {
          const lease = await cache.acquire(ref, { signal, onProgress: beats.onProgress });
          leases.push(lease);
          noteFetch(lease.hit ? 'worker cache' : 'store, into the worker cache');
          return lease.path;
        } finally {
          beats.done();
        }
      }
      const dest = join(
        ctx.workDir,
        'inputs',
        `${ref.digest.slice(7, 23)}-${randomBytes(3).toString('hex')}`,
      );
      await mkdir(join(ctx.workDir, 'inputs'), { recursive: true });
      try {
        await store.get(ref, dest, { signal, onProgress: beats.onProgress });
      } finally {
        beats.done();
      }
      noteFetch('store, copied into the work directory');
      return dest;
    },
    readBytes: async (ref) => {
      signal.throwIfAborted();
      return store.getBytes(ref);
    },
    async publish(path, opts) {
      // Not given `signal`: a step's final checkpoint is published after its signal aborted.
      const beats = transferHeartbeat(heartbeat, () => kindProgress, 'publishing', basename(path));
      try {
        return await store.put(path, { ...opts, onProgress: beats.onProgress });
      } finally {
        beats.done();
      }
    },
    publishBytes: (data, opts) => store.putBytes(data, opts),
    heartbeat(progress) {
      kindProgress = progress;
      heartbeat(progress);
    },
    resumeFrom: options.resumeFrom,
    checkpoints: options.checkpoints ?? stepCheckpoints({ heartbeat: options.resumeFrom, log }),
    attempt: options.attempt ?? 1,
    signal,
    log,
    annotate(facts) {
      Object.assign(annotations, facts);
    },
  };
  return {
    ctx,
    annotations,
    fetched,
    release: () => {
      for (const lease of leases.splice(0)) lease.release();
    },
  };
}

/**
 * Run one step kind outside Temporal: a fresh work directory, the given store, progress to `onProgress`.
 * The work directory is removed afterwards. Params are passed as given (no schema validation).
 */
export async function runStepLocally<P>(
  kind: StepKind<P>,
  params: P,
  options: Omit<StepContextOptions, 'workDir'> & { onProgress?: (p: StepProgress) => void },
): Promise<{ outputs: StepOutputs; annotations: Record<string, JsonValue> }> {
  return withWorkDir(kind.name, async (workDir) => {
    const { ctx, annotations, release } = createStepContext({
      ...options,
      workDir,
      heartbeat: options.onProgress ?? options.heartbeat,
    });
    try {
      const outputs = await kind.run(params, ctx);
      return { outputs, annotations };
    } finally {
      release();
    }
  });
}
