/**
 * The contract every step kind implements: its descriptor (infra/kinds: name, version, schemas, output
 * types, queue) plus `run`, and the {@link StepContext} `run` receives from the step runtime.
 * Implementations import heavy libraries (TensorFlow.js, sharp) lazily inside `run`, so that workers
 * and the CLI start fast.
 */
import type { KindDescriptor } from '../../infra/kinds/descriptor';
import type { ArtifactRef, JsonValue, StepOutputs } from '../../workflows/plan-types';

/** Progress and resume state a running step reports through its heartbeat. */
export interface StepProgress {
  /** One line for humans, e.g. `epoch 3/10`. */
  message?: string;
  iteration?: number;
  totalIterations?: number;
  loss?: number;
  imagesPerSec?: number;
  etaSec?: number;
  /** The latest checkpoint; a retried attempt resumes from it. */
  checkpoint?: ArtifactRef;
  /** The iteration `checkpoint` was saved at. */
  checkpointIteration?: number;
  /** Anything else the kind needs to resume. Small JSON only. */
  state?: JsonValue;
}

/** A checkpoint a step may resume from. */
export interface CheckpointCandidate {
  iteration: number;
  ref: ArtifactRef;
  /** Where it was found: the previous attempt's heartbeat, or the index of the step's cache key. */
  source: 'heartbeat' | 'index';
}

/**
 * The checkpoints of a step's configuration (its cache key), across attempts and runs. Loading and
 * verifying one is the step's business (only it knows the format); this finds and keeps them.
 */
export interface StepCheckpoints {
  /** Where to resume, newest first (not yet verified: try each in turn, `rejected` the bad ones). */
  candidates(): Promise<CheckpointCandidate[]>;
  /** Record a checkpoint just published; keeps the newest `keep` (default 3) and deletes older ones. */
  saved(iteration: number, ref: ArtifactRef, keep?: number): Promise<void>;
  /** A candidate failed to load: warn and forget it, so no attempt tries it again. */
  rejected(candidate: CheckpointCandidate, err: unknown): Promise<void>;
  /** The step resumed from `candidate` (goes to provenance, lineage and the run summary). */
  resumed(candidate: CheckpointCandidate): void;
}

/** Minimal structured logger handed to steps. */
export interface StepLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** What a step implementation may use. Provided by the step runner (activities/run-step.ts). */
export interface StepContext {
  /** Scratch directory for this attempt; removed when the attempt ends. */
  workDir: string;
  /**
   * Materialise an artifact locally, verified against its digest; a tree becomes a directory. Returns
   * its path, which is read-only on a worker (an entry of the worker's cache, shared with other steps):
   * write into `workDir` instead.
   */
  fetch(ref: ArtifactRef): Promise<string>;
  /** Read a (small) artifact into memory, verified. */
  readBytes(ref: ArtifactRef): Promise<Buffer>;
  /** Store a local file or directory as an artifact (content-addressed; a directory becomes a tree). */
  publish(path: string, options?: { mediaType?: string }): Promise<ArtifactRef>;
  /** Store bytes or JSON as an artifact. */
  publishBytes(data: Uint8Array | string, options?: { mediaType?: string }): Promise<ArtifactRef>;
  /** Report progress (and the latest checkpoint). Cheap: throttled by Temporal. */
  heartbeat(progress: StepProgress): void;
  /** The last progress a previous attempt of this step reported, if any: where to resume. */
  resumeFrom: StepProgress | undefined;
  /** Checkpoints saved for this step's configuration by any attempt or run. */
  checkpoints: StepCheckpoints;
  /** 1 for the first attempt. */
  attempt: number;
  /**
   * Aborted when the step is cancelled or its worker shuts down. A step then saves what a retry needs
   * (a final checkpoint) and stops within a bounded time (30 s): the runner waits for it to stop before
   * it removes the work directory.
   */
  signal: AbortSignal;
  log: StepLogger;
  /**
   * Add facts to this run's provenance record, e.g. `{ tfjsBackend: 'wasm', device: 'cpu' }`. Facts
   * that differ between otherwise identical runs (timings) belong here, not in the outputs.
   */
  annotate(facts: Record<string, JsonValue>): void;
}

/** A step kind: its descriptor plus how it runs. What `uses:` names in a pipeline. */
export interface StepKind<P = Record<string, unknown>> extends KindDescriptor<P> {
  /** URL of the implementation module: its code (and what it imports) versions the kind's results. */
  module: string;
  /** Does the work. `params` is the validated `with`, with upstream outputs bound in. */
  run(params: P, ctx: StepContext): Promise<StepOutputs>;
  /**
   * What of this worker's runtime decides the results besides the code, e.g. the tfjs backend a
   * training step will use (numerics differ between backends). Part of the cache key and lineage.
   */
  runtimeKey?(params: P): JsonValue;
}

/** Pair a descriptor with its implementation (`module`: the implementation's `import.meta.url`). */
export function implementKind<P>(
  descriptor: KindDescriptor<P>,
  module: string,
  run: (params: P, ctx: StepContext) => Promise<StepOutputs>,
  options: { runtimeKey?: (params: P) => JsonValue } = {},
): StepKind<P> {
  return { ...descriptor, module, run, ...options };
}
