/**
 * Builds the {@link StepContext} a step implementation receives. The Temporal activity (run-step.ts)
 * wires it to heartbeats and cancellation; tests and the `ablate data|eval` commands use
 * {@link runStepLocally} to run a kind directly against a store.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { ArtifactStore } from '../../infra/store/index';
import type { JsonValue, StepOutputs } from '../../workflows/plan-types';
import type { StepContext, StepKind, StepLogger, StepProgress } from './step-kind';

export interface StepContextOptions {
  store: ArtifactStore;
  /** Scratch directory; created on first use. */
  workDir: string;
  heartbeat?: (progress: StepProgress) => void;
  resumeFrom?: StepProgress;
  attempt?: number;
  signal?: AbortSignal;
  log?: StepLogger;
}

/** A context plus the provenance facts the step added with `annotate`. */
export interface BuiltStepContext {
  ctx: StepContext;
  annotations: Record<string, JsonValue>;
}

export const consoleLogger: StepLogger = {
  info: (message, fields) => console.error(`[info] ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`),
  warn: (message, fields) => console.error(`[warn] ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`),
};

export function createStepContext(options: StepContextOptions): BuiltStepContext {
  const { store, workDir } = options;
  const annotations: Record<string, JsonValue> = {};
  let workDirMade = false;
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
      const dest = join(
        ctx.workDir,
        'inputs',
        `${ref.digest.slice(7, 23)}-${randomBytes(3).toString('hex')}`,
      );
      await mkdir(join(ctx.workDir, 'inputs'), { recursive: true });
      await store.get(ref, dest);
      return dest;
    },
    readBytes: (ref) => store.getBytes(ref),
    publish: (path, opts) => store.put(path, opts),
    publishBytes: (data, opts) => store.putBytes(data, opts),
    heartbeat: options.heartbeat ?? (() => undefined),
    resumeFrom: options.resumeFrom,
    attempt: options.attempt ?? 1,
    signal: options.signal ?? new AbortController().signal,
    log: options.log ?? consoleLogger,
    annotate(facts) {
      Object.assign(annotations, facts);
    },
  };
  return { ctx, annotations };
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
  const workDir = await mkdtemp(join(tmpdir(), `ablate-${kind.name}-`));
  try {
    const { ctx, annotations } = createStepContext({
      ...options,
      workDir,
      heartbeat: options.onProgress ?? options.heartbeat,
    });
    const outputs = await kind.run(params, ctx);
    return { outputs, annotations };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
