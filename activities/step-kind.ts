/**
 * The contract every step kind implements. A kind is pure data (name, version, the JSON Schema of its
 * `with`, its outputs, its default queue) plus `run`. Kind modules must import heavy libraries
 * (TensorFlow.js, sharp) lazily inside `run`, so that `ablate validate` and `ablate plan` stay fast.
 */
import type { ArtifactRef, JsonValue, QueueName, RetrySpec, StepOutputs } from '../workflows/plan-types';

/** A JSON Schema (draft 2020-12) object. */
export type JsonSchema = { [key: string]: unknown };

/** One output a step kind produces. */
export interface OutputSpec {
  /** `artifact`: an ArtifactRef in the store; `value`: small JSON (metrics, counts). */
  type: 'artifact' | 'value';
  description: string;
  /** For artifacts: the media type written. */
  mediaType?: string;
  /** Produced only for some parameters (e.g. per format); reads as null when absent. */
  optional?: boolean;
}

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
  /** Materialise an artifact locally, verified against its digest; a tree becomes a directory. Returns its path. */
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

/** A step kind: what `uses:` names in a pipeline. */
export interface StepKind<P = Record<string, unknown>> {
  /** e.g. `dataset.split`. */
  name: string;
  /** Implementation version: bump when the same inputs would give different outputs (part of the cache key). */
  version: string;
  /** One line for `ablate kinds`. */
  summary: string;
  /** Queue used unless the pipeline says otherwise. */
  queue: QueueName;
  /** JSON Schema (draft 2020-12) of the step's `with`; published under pipelines/kinds/. */
  withSchema: JsonSchema;
  outputs: Record<string, OutputSpec>;
  /**
   * False for kinds whose outputs depend on more than their parameters (e.g. files read from a path):
   * their results are never taken from the step cache. @default true
   */
  cacheable?: boolean;
  /** Defaults for the step's limits; the pipeline's `timeout` / `retry` override them. */
  defaults?: { timeoutMs?: number; heartbeatTimeoutMs?: number; retry?: Partial<RetrySpec> };
  /** Does the work. `params` is the validated `with`, with upstream outputs bound in. */
  run(params: P, ctx: StepContext): Promise<StepOutputs>;
}

/** Identity function that gives a kind literal its type. */
export function defineStepKind<P>(kind: StepKind<P>): StepKind<P> {
  return kind;
}

/**
 * The JSON Schema of an artifact-valued parameter. In pipelines it is written as a template such as
 * `${steps.split.outputs.annotations}`; the compiler checks the reference, the runner binds the ref.
 */
export const artifactRefSchema: JsonSchema = {
  type: 'object',
  required: ['uri', 'digest', 'sizeBytes', 'mediaType'],
  properties: {
    uri: { type: 'string' },
    digest: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' },
    sizeBytes: { type: 'integer', minimum: 0 },
    mediaType: { type: 'string' },
  },
  additionalProperties: false,
};
