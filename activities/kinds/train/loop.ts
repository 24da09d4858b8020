/**
 * The training loop shared by `train.pretrain` and `train.detector`: schedule, SGD, seeded data order
 * and augmentation, progress heartbeats, checkpoints with exact resume, divergence and memory checks.
 *
 * Determinism: with the same backend and seed, an interrupted-and-resumed run ends with bitwise the same
 * weights as an uninterrupted one. Everything that decides the next update is either in the checkpoint
 * (weights, BN statistics, momentum slots, iteration, the augmentation RNG's state, the data order
 * position, the loss-curve accumulator) or derived from the seed (the per-epoch permutation).
 *
 * Failure modes handled here:
 *  - cancellation / worker shutdown (`ctx.signal`): stops between iterations, writes a final checkpoint
 *    at the current iteration (bounded by `stopGraceMs`), then throws a plain (retryable) error; the
 *    retry, a new run of the same configuration or `ablate resume` continues from it;
 *  - a checkpoint that does not load (corrupt, missing, other shapes or configuration): a warning, and
 *    the next older one of `ctx.checkpoints` is tried (from iteration 0 when none is left);
 *  - NaN or infinite loss, or non-finite weights at a checkpoint: a permanent Diverged error naming the
 *    iteration; the last good checkpoint stays the one in the last heartbeat.
 *  - a batch too large for memory: a pre-flight estimate (profiled at batch 1 and 2, extrapolated) against
 *    the memory limit, plus allocation failures during training, both become a permanent OutOfMemory.
 */
import { rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';

import type * as TfType from '@tensorflow/tfjs';

import type { AblateError } from '../../../infra/errors';
import { ErrorType, errorMessage, permanent } from '../../../infra/errors';
import type { ArtifactRef, JsonValue } from '../../../workflows/plan-types';
import { DEFAULT_KEEP_CHECKPOINTS, isUnusableCheckpoint } from '../../runtime/checkpoint-index';
import type { CheckpointCandidate, StepContext } from '../../runtime/step-kind';
import type { TrainingRuntime } from './backend';
import { checkShapes, decodeCheckpoint, writeCheckpointFile, type HostTensor } from './checkpoint';
import { SgdMomentum } from './optimizer';
import type { ParamSet } from './params';
import { createRng, type Rng, type RngState } from '../../../infra/prng';
import { learningRateAt, type ResolvedSchedule } from './schedule';

type Tensor = TfType.Tensor;
type Scalar = TfType.Scalar;

/** The wasm32 address space: tfjs-backend-wasm's memory can grow to 4 GiB, no further. */
const WASM_MEMORY_BYTES = 4 * 1024 ** 3;

/** What a task (pre-training, detection) plugs into the loop. */
export interface TrainTask<B> {
  /** Number of training samples (images). */
  numSamples: number;
  /** Loads the samples at `indices`; augmentation draws from `rng` (and only from it). */
  loadBatch(indices: number[], rng: Rng): Promise<B>;
  /** The loss of a batch, in training mode. Called inside `tf.variableGrads`. */
  loss(batch: B): Scalar;
  /** Releases a batch's tensors, if it holds any. */
  disposeBatch?(batch: B): void;
}

/** Periodic evaluation (for AP-vs-iterations curves). */
export interface PeriodicEval {
  every: number;
  run(iteration: number): Promise<Record<string, number>>;
}

/** Options of {@link runTraining}. */
export interface TrainOptions<B> {
  runtime: TrainingRuntime;
  ctx: StepContext;
  params: ParamSet;
  task: TrainTask<B>;
  schedule: ResolvedSchedule;
  batchSize: number;
  seed: number;
  /** Write a checkpoint every this many iterations (0: never). */
  checkpointEvery: number;
  /** Digest of everything that defines the run; a checkpoint of another run is refused. */
  configDigest: string;
  momentum?: number;
  weightDecay?: number;
  evaluation?: PeriodicEval;
  /** Memory the step may use; undefined: 4 GiB on wasm, 75% of RAM on cpu, no pre-flight on native. */
  memoryLimitBytes?: number;
  /** Checkpoints kept for this configuration (older ones are deleted as training goes). @default 3 */
  keepCheckpoints?: number;
  /** How long the final checkpoint of a stopping step may take. @default 30000 */
  stopGraceMs?: number;
}

/** Default bound on writing the final checkpoint when a step is stopped. */
export const STOP_GRACE_MS = 30_000;

/** What the loop reports back. */
export interface TrainResult {
  iterations: number;
  /** [iteration (1-based, end of window), mean loss over the window]. */
  lossCurve: Array<[number, number]>;
  evalCurve: Array<{ iteration: number } & Record<string, number>>;
  /** Images per second over the iterations this attempt ran (wall clock: not a result). */
  imagesPerSec: number;
  /** The checkpoint this attempt continued from, if any. */
  resumedFrom?: { iteration: number; checkpoint: ArtifactRef };
  lastCheckpoint?: ArtifactRef;
}

interface LoopState {
  iteration: number;
  epoch: number;
  cursor: number;
  augRng: RngState;
  lossCurve: Array<[number, number]>;
  evalCurve: Array<{ iteration: number } & Record<string, number>>;
  windowSum: number;
  windowCount: number;
}

/** The format tag of the checkpoint metadata. */
export const CHECKPOINT_FORMAT = 'ablate.train.checkpoint/1';

/** The permutation of sample indices for one epoch: a function of the seed and the epoch only. */
export function epochOrder(seed: number, epoch: number, n: number): number[] {
  const rng = createRng((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0);
  return rng.shuffle(Array.from({ length: n }, (_, i) => i));
}

/** True for the errors backends raise when an allocation fails. */
export function isOutOfMemoryError(err: unknown): boolean {
  const msg = errorMessage(err);
  return /out of memory|OOM when allocating|Cannot enlarge memory|Array buffer allocation failed|WebAssembly\.Memory|memory access out of bounds|Invalid typed array length|allocation failed|Aborted\(OOM\)/i.test(
    msg,
  );
}

/** Runs (or resumes) training to the end of the schedule. */
export async function runTraining<B>(options: TrainOptions<B>): Promise<TrainResult> {
  const { runtime, ctx, params, task, schedule, batchSize, seed } = options;
  const tf = runtime.tf;
  const total = schedule.totalIterations;
  // Bounded loss curve: about 2000 points whatever the schedule length.
  const window = Math.max(1, Math.floor(total / 2000));
  const optimizer = new SgdMomentum(tf, params, options.momentum ?? 0.9, options.weightDecay ?? 1e-4);
  const trainable = params.trainableNames().map((n) => params.get(n));
  const nameOf = new Map(params.trainableNames().map((n) => [params.get(n).name, n]));

  await preflightMemory(options);

  let state: LoopState = {
    iteration: 0,
    epoch: 0,
    cursor: 0,
    augRng: createRng((seed ^ 0x5bd1e995) >>> 0).state(),
    lossCurve: [],
    evalCurve: [],
    windowSum: 0,
    windowCount: 0,
  };
  let lastCheckpoint: ArtifactRef | undefined;
  let lastCheckpointIteration: number | undefined;
  let resumedFrom: TrainResult['resumedFrom'];
  for (const candidate of await ctx.checkpoints.candidates()) {
    let restored: LoopState;
    try {
      restored = await restore(options, optimizer, candidate.ref);
    } catch (err) {
      if (!isUnusableCheckpoint(err)) throw err;
      await ctx.checkpoints.rejected(candidate, err);
      continue;
    }
    state = restored;
    lastCheckpoint = candidate.ref;
    lastCheckpointIteration = state.iteration;
    resumedFrom = { iteration: state.iteration, checkpoint: candidate.ref };
    ctx.checkpoints.resumed({ ...candidate, iteration: state.iteration } satisfies CheckpointCandidate);
    ctx.log.info('resuming training from checkpoint', {
      iteration: state.iteration,
      checkpoint: candidate.ref.uri,
    });
    break;
  }
  const startIteration = state.iteration;
  const keep = options.keepCheckpoints ?? DEFAULT_KEEP_CHECKPOINTS;
  const checkpoint = async (): Promise<void> => {
    assertFiniteWeights(options, state.iteration, lastCheckpoint);
    lastCheckpoint = await saveCheckpoint(options, optimizer, state, augRng);
    lastCheckpointIteration = state.iteration;
    await ctx.checkpoints.saved(state.iteration, lastCheckpoint, keep);
  };
  const augRng = createRng(state.augRng);
  let order = epochOrder(seed, state.epoch, task.numSamples);
  const nextIndices = (): number[] => {
    const out: number[] = [];
    while (out.length < batchSize) {
      if (state.cursor >= order.length) {
        state.epoch++;
        state.cursor = 0;
        order = epochOrder(seed, state.epoch, task.numSamples);
      }
      out.push(order[state.cursor++] as number);
    }
    return out;
  };

  const startedAt = performance.now();
  let stepMsEma: number | undefined;
  while (state.iteration < total) {
    if (ctx.signal.aborted) {
      await finalCheckpoint();
      throw new Error(
        `training stopped at iteration ${state.iteration}/${total}: ${String(ctx.signal.reason ?? 'aborted')}` +
          (lastCheckpoint ? `; it resumes from the checkpoint at iteration ${lastCheckpointIteration}` : ''),
      );
    }
    const t0 = performance.now();
    const lr = learningRateAt(schedule, state.iteration);
    let loss: number;
    try {
      const batch = await task.loadBatch(nextIndices(), augRng);
      try {
        const { value, grads } = tf.variableGrads(() => task.loss(batch), trainable);
        loss = (value.dataSync() as Float32Array)[0] as number;
        value.dispose();
        if (Number.isFinite(loss)) {
          const named = new Map<string, Tensor>();
          for (const [vname, g] of Object.entries(grads)) named.set(nameOf.get(vname) ?? vname, g);
          optimizer.apply(named, lr);
        }
        tf.dispose(grads);
      } finally {
        task.disposeBatch?.(batch);
      }
    } catch (err) {
      if (isOutOfMemoryError(err)) {
        throw permanent(
          ErrorType.OutOfMemory,
          `out of memory at iteration ${state.iteration + 1} with batch size ${batchSize} on the ${runtime.backend} backend ` +
            `(${errorMessage(err).split('\n')[0]}); use a smaller batchSize or imageSize`,
          err,
        );
      }
      throw err;
    }
    if (!Number.isFinite(loss)) throw diverged(state.iteration + 1, loss, lr, lastCheckpoint);

    state.iteration++;
    state.windowSum += loss;
    state.windowCount++;
    if (state.windowCount === window || state.iteration === total) {
      state.lossCurve.push([state.iteration, state.windowSum / state.windowCount]);
      state.windowSum = 0;
      state.windowCount = 0;
    }
    const stepMs = performance.now() - t0;
    stepMsEma = stepMsEma === undefined ? stepMs : 0.9 * stepMsEma + 0.1 * stepMs;

    // Evaluate before checkpointing: the checkpoint then holds this iteration's point of the AP
    // curve, and a run resumed from it does not miss it.
    if (options.evaluation && state.iteration % options.evaluation.every === 0) {
      const metrics = await options.evaluation.run(state.iteration);
      state.evalCurve.push({ iteration: state.iteration, ...metrics });
    }
    if (
      options.checkpointEvery > 0 &&
      state.iteration % options.checkpointEvery === 0 &&
      state.iteration < total
    ) {
      await checkpoint();
    }
    ctx.heartbeat({
      message: `iteration ${state.iteration}/${total} loss ${loss.toFixed(4)} lr ${lr.toPrecision(3)}`,
      iteration: state.iteration,
      totalIterations: total,
      loss,
      imagesPerSec: batchSize / (stepMsEma / 1000),
      etaSec: ((total - state.iteration) * stepMsEma) / 1000,
      checkpoint: lastCheckpoint,
      checkpointIteration: lastCheckpointIteration,
    });
  }
  assertFiniteWeights(options, state.iteration, lastCheckpoint);
  optimizer.dispose();
  const seconds = (performance.now() - startedAt) / 1000;
  return {
    iterations: state.iteration,
    lossCurve: state.lossCurve,
    evalCurve: state.evalCurve,
    imagesPerSec: seconds > 0 ? ((state.iteration - startIteration) * batchSize) / seconds : 0,
    resumedFrom,
    lastCheckpoint,
  };

  /**
   * The checkpoint of a stopping step: at the current iteration unless one exists there already, and
   * bounded in time (a slow store must not keep a cancelled step alive: the last periodic one remains).
   */
  async function finalCheckpoint(): Promise<void> {
    if (state.iteration === 0 || lastCheckpointIteration === state.iteration) return;
    const graceMs = options.stopGraceMs ?? STOP_GRACE_MS;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    try {
      const outcome = await Promise.race([checkpoint().then(() => 'saved' as const), timedOut]);
      if (outcome === 'timeout') {
        ctx.log.warn(
          `the final checkpoint at iteration ${state.iteration} took over ${graceMs} ms; not waiting`,
        );
        return;
      }
      ctx.heartbeat({
        message: `stopped at iteration ${state.iteration}/${total}, checkpoint saved`,
        iteration: state.iteration,
        totalIterations: total,
        checkpoint: lastCheckpoint,
        checkpointIteration: lastCheckpointIteration,
      });
    } catch (err) {
      // Diverged weights or a failing store: the last periodic checkpoint is still there.
      ctx.log.warn(`no final checkpoint at iteration ${state.iteration}: ${errorMessage(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

function diverged(iteration: number, loss: number, lr: number, last: ArtifactRef | undefined): AblateError {
  return permanent(
    ErrorType.Diverged,
    `training diverged: loss is ${loss} at iteration ${iteration} (lr ${lr.toPrecision(3)}); ` +
      (last ? `the last good checkpoint is ${last.uri}` : 'no checkpoint was written before it') +
      '; lower lr or lengthen the warm-up',
  );
}

function assertFiniteWeights<B>(
  options: TrainOptions<B>,
  iteration: number,
  last: ArtifactRef | undefined,
): void {
  const tf = options.runtime.tf;
  for (const [name, p] of options.params.params) {
    const bad = tf.tidy(() => tf.any(tf.logicalNot(tf.isFinite(p.variable))).dataSync()[0]);
    if (bad) {
      throw permanent(
        ErrorType.Diverged,
        `training diverged: parameter ${name} holds NaN or Inf after iteration ${iteration}; ` +
          (last ? `the last good checkpoint is ${last.uri}` : 'no checkpoint was written before it') +
          '; lower lr or lengthen the warm-up',
      );
    }
  }
}

async function saveCheckpoint<B>(
  options: TrainOptions<B>,
  optimizer: SgdMomentum,
  state: LoopState,
  augRng: Rng,
): Promise<ArtifactRef> {
  const tensors = new Map<string, HostTensor>([...options.params.toHost(), ...optimizer.toHost()]);
  const metadata = {
    format: CHECKPOINT_FORMAT,
    configDigest: options.configDigest,
    iteration: state.iteration,
    epoch: state.epoch,
    cursor: state.cursor,
    augRng: augRng.state(),
    lossCurve: state.lossCurve,
    evalCurve: state.evalCurve,
    windowSum: state.windowSum,
    windowCount: state.windowCount,
  } as unknown as JsonValue;
  const path = join(options.ctx.workDir, `checkpoint-${state.iteration}.safetensors`);
  await writeCheckpointFile(path, tensors, metadata);
  try {
    return await options.ctx.publish(path, { mediaType: 'application/vnd.ablate.checkpoint' });
  } finally {
    await rm(path, { force: true });
  }
}

async function restore<B>(
  options: TrainOptions<B>,
  optimizer: SgdMomentum,
  ref: ArtifactRef,
): Promise<LoopState> {
  const source = `checkpoint ${ref.uri}`;
  const ckpt = decodeCheckpoint(await options.ctx.readBytes(ref), source);
  const meta = ckpt.metadata as unknown as LoopState & { format?: string; configDigest?: string };
  if (meta?.format !== CHECKPOINT_FORMAT)
    throw permanent(ErrorType.CorruptArtifact, `${source} is not a training checkpoint`);
  if (meta.configDigest !== options.configDigest) {
    throw permanent(
      ErrorType.InvalidInput,
      `${source} belongs to another training configuration (${meta.configDigest}), not ${options.configDigest}`,
    );
  }
  checkShapes(new Map([...options.params.shapes(), ...optimizer.shapes()]), ckpt.tensors, source);
  options.params.load(ckpt.tensors, options.params.params.keys());
  optimizer.load(ckpt.tensors);
  return {
    iteration: meta.iteration,
    epoch: meta.epoch,
    cursor: meta.cursor,
    augRng: meta.augRng,
    lossCurve: meta.lossCurve,
    evalCurve: meta.evalCurve,
    windowSum: meta.windowSum,
    windowCount: meta.windowCount,
  };
}

/** The memory limit in force for this backend, or undefined when none can be known. */
export function memoryLimitFor(runtime: TrainingRuntime, explicit?: number): number | undefined {
  if (explicit !== undefined) return explicit;
  if (runtime.backend === 'wasm') return WASM_MEMORY_BYTES;
  if (runtime.backend === 'cpu') return Math.floor(os.totalmem() * 0.75);
  return undefined;
}

/**
 * Estimates the memory of one training step at the requested batch size from two profiled steps (batch
 * 1 and 2: peak bytes grow linearly with the batch) plus weights, gradients and momentum, and refuses a
 * batch that does not fit. The profiled steps change no state: BN statistics are restored afterwards.
 */
async function preflightMemory<B>(options: TrainOptions<B>): Promise<void> {
  const limit = memoryLimitFor(options.runtime, options.memoryLimitBytes);
  if (limit === undefined) return;
  const { tf } = options.runtime;
  const { params, task } = options;
  const trainable = params.trainableNames().map((n) => params.get(n));
  const frozen = [...params.params.values()].filter((p) => !p.trainable).map((p) => p.variable);
  const saved = frozen.map((v) => tf.clone(v));
  const rng = createRng(1);
  const peak = async (n: number): Promise<number> => {
    const batch = await task.loadBatch(
      Array.from({ length: n }, (_, i) => i % task.numSamples),
      rng,
    );
    try {
      const info = await tf.profile(() => {
        const { value, grads } = tf.variableGrads(() => task.loss(batch), trainable);
        value.dispose();
        tf.dispose(grads);
      });
      return info.peakBytes;
    } finally {
      task.disposeBatch?.(batch);
    }
  };
  let p1: number;
  let p2: number;
  try {
    p1 = await peak(1);
    p2 = await peak(2);
  } catch (err) {
    if (isOutOfMemoryError(err)) {
      throw permanent(
        ErrorType.OutOfMemory,
        `out of memory in a one-image training step on ${options.runtime.backend}: the model or imageSize is too large`,
        err,
      );
    }
    throw err;
  } finally {
    frozen.forEach((v, i) => v.assign(saved[i] as Tensor));
    tf.dispose(saved);
  }
  const perImage = Math.max(0, p2 - p1);
  const fixed = Math.max(0, p1 - perImage);
  const weights = params.count() * 4 * 3;
  const estimate = weights + fixed + perImage * options.batchSize;
  if (estimate > limit) {
    const fits = Math.max(0, Math.floor((limit - weights - fixed) / Math.max(1, perImage)));
    const mib = (b: number) => `${(b / 1024 ** 2).toFixed(0)} MiB`;
    throw permanent(
      ErrorType.OutOfMemory,
      `batch size ${options.batchSize} needs about ${mib(estimate)} (${mib(perImage)} per image) but the ${options.runtime.backend} ` +
        `backend may use ${mib(limit)}: use batchSize ${fits > 0 ? `<= ${fits}` : '1 and a smaller imageSize'}`,
    );
  }
}
