/**
 * Pieces both training kinds share: starting the backend (and recording it in lineage), the run's
 * configuration digest, and writing / reading weight artifacts.
 */
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

import { ErrorType, permanent } from '../../infra/errors';
import type { ArtifactRef, JsonValue } from '../../workflows/plan-types';
import type { StepContext } from '../step-kind';
import { hasNvidiaGpu, initTrainingBackend, type BackendChoice, type TrainingRuntime } from './backend';
import { checkShapes, decodeCheckpoint, writeCheckpointFile } from './checkpoint';
import { registerFastConvGradients } from './conv-grads';
import type { ParamSet } from './params';
import type { ArchName } from './resnet';

/**
 * The model and optimisation knobs both training kinds take. Their defaults differ per kind (see
 * PRETRAIN_DEFAULTS and DETECTOR_DEFAULTS) and so are filled in by each kind.
 */
export interface TrainingKnobs {
  /** Backbone depth/width family. */
  arch: ArchName;
  /** Base width override (tiny: 16). */
  width?: number;
  /** "1x".."6x" (or the multiple as a number): N times baseIterations, with the paper's decay rule. */
  schedule: string | number;
  /** The 1x length in iterations (the paper: 90k for detection). */
  baseIterations: number;
  batchSize: number;
  /** Base learning rate (SGD, momentum 0.9, weight decay 1e-4). */
  lr: number;
  /** Linear warm-up length. @default baseIterations / 6 */
  warmupIterations?: number;
  /** LR factor at the start of warm-up. @default 1/3 */
  warmupFactor?: number;
  /** Square input side, letterboxed. */
  imageSize: number;
  seed: number;
  /** Checkpoint every N iterations (0: never). */
  checkpointEvery: number;
  /** Checkpoints kept for this configuration; older ones are deleted as training goes. @default 3 */
  keepCheckpoints?: number;
  /** bn: images per simulated replica (per-GPU batch). */
  bnImagesPerReplica: number;
  /** GroupNorm groups. @default 8 for tiny, 32 otherwise */
  gnGroups?: number;
  /** Memory the step may use, MiB. @default 4096 on wasm, 75% of RAM on cpu, unchecked on native */
  memoryLimitMb?: number;
  /** Force a tfjs backend instead of the automatic choice. */
  backend?: BackendChoice;
}

/** Media type of weight and checkpoint artifacts (safetensors layout, see checkpoint.ts). */
export const WEIGHTS_MEDIA_TYPE = 'application/vnd.ablate.weights+safetensors';

/** Starts the backend, registers the fast gradients and records the runtime in the step's lineage. */
export async function startRuntime(ctx: StepContext, force?: BackendChoice): Promise<TrainingRuntime> {
  const runtime = await initTrainingBackend({
    force,
    gpu: hasNvidiaGpu(),
  });
  registerFastConvGradients(runtime.tf);
  ctx.annotate({
    tfjsBackend: runtime.backend,
    tfjsVersion: runtime.tfjsVersion,
    threads: runtime.threads,
    device: runtime.device,
    ...(runtime.notes.length > 0 ? { tfjsNotes: runtime.notes } : {}),
  });
  return runtime;
}

/**
 * Wall-clock facts of a training attempt go to provenance (beside the results), never into the
 * outputs: an interrupted-and-resumed run must give byte-identical metrics to an uninterrupted one.
 */
export function annotateTiming(
  ctx: StepContext,
  result: { imagesPerSec: number; resumedFrom?: { iteration: number; checkpoint: ArtifactRef } },
): void {
  ctx.annotate({
    imagesPerSec: Math.round(result.imagesPerSec * 100) / 100,
    ...(result.resumedFrom
      ? {
          resumedFrom: {
            iteration: result.resumedFrom.iteration,
            checkpoint: result.resumedFrom.checkpoint as unknown as JsonValue,
          },
        }
      : {}),
  });
}

/** sha256 of the canonical JSON (sorted keys) of `value`. */
export function configDigest(value: unknown): string {
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v as Record<string, unknown>)
          .sort()
          .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return `sha256:${createHash('sha256')
    .update(JSON.stringify(canonical(value)))
    .digest('hex')}`;
}

/** Publishes the parameters under `prefix` (all if empty) as a weights artifact with `metadata`. */
export async function publishWeights(
  ctx: StepContext,
  params: ParamSet,
  prefix: string,
  metadata: JsonValue,
): Promise<ArtifactRef> {
  const path = join(ctx.workDir, `weights-${Date.now()}.safetensors`);
  await writeCheckpointFile(path, params.toHost(prefix), metadata);
  try {
    return await ctx.publish(path, { mediaType: WEIGHTS_MEDIA_TYPE });
  } finally {
    await rm(path, { force: true });
  }
}

/** What a pre-trained backbone artifact says about itself. */
export interface BackboneMetadata {
  kind?: string;
  arch?: string;
  width?: number;
  norm?: string;
}

/**
 * Loads the `backbone.*` tensors of a weights artifact into `params`. Every backbone parameter of the
 * model must be present with the same shape: otherwise a ShapeMismatch names the layer.
 */
export async function loadPretrainedBackbone(
  ctx: StepContext,
  ref: ArtifactRef,
  params: ParamSet,
): Promise<BackboneMetadata> {
  const source = `pre-trained weights ${ref.uri}`;
  const ckpt = decodeCheckpoint(await ctx.readBytes(ref), source);
  const expected = params.shapes('backbone.');
  if (expected.size === 0)
    throw permanent(ErrorType.InvalidInput, 'model has no backbone parameters to load');
  checkShapes(expected, ckpt.tensors, source);
  params.load(ckpt.tensors, expected.keys());
  return (ckpt.metadata ?? {}) as BackboneMetadata;
}
