/**
 * Pieces both training kinds share: starting the backend (and recording it in lineage), the run's
 * configuration digest, and writing / reading weight artifacts.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

import { contentHash } from '../../../infra/canonical-json';
import { ErrorType, permanent } from '../../../infra/errors';
import type { ArtifactRef, JsonValue } from '../../../workflows/plan-types';
import type { StepContext } from '../../runtime/step-kind';
import { hasNvidiaGpu, initTrainingBackend, type BackendChoice, type TrainingRuntime } from './backend';

export type { TrainingKnobs } from '../../../infra/kinds/train-knobs';
import { checkShapes, decodeCheckpoint, writeCheckpointFile } from './checkpoint';
import { registerFastConvGradients } from './conv-grads';
import { memoryLimitFor } from './loop';
import type { NormOptions } from './norms';
import type { ParamSet } from './params';
import type { TrainingKnobs } from '../../../infra/kinds/train-knobs';

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

/** `sha256:` digest of the canonical JSON (sorted keys) of `value`: identifies a training configuration. */
export function configDigest(value: unknown): string {
  return `sha256:${contentHash(value)}`;
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

/** The norm options of a model built from a step's knobs (GroupNorm: 8 groups for tiny, else 32). */
export function normOptionsOf(p: TrainingKnobs): NormOptions {
  return { groups: p.gnGroups ?? (p.arch === 'tiny' ? 8 : 32), imagesPerReplica: p.bnImagesPerReplica };
}

/** The options of `runTraining` that come straight from a step's knobs. */
export function loopOptionsOf(p: TrainingKnobs, runtime: TrainingRuntime) {
  return {
    batchSize: p.batchSize,
    seed: p.seed,
    checkpointEvery: p.checkpointEvery,
    keepCheckpoints: p.keepCheckpoints,
    memoryLimitBytes: p.memoryLimitMb !== undefined ? p.memoryLimitMb * 1024 * 1024 : memoryLimitFor(runtime),
  };
}
