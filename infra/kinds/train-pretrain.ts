/**
 * `train.pretrain`: "ImageNet" pre-training of a ResNet backbone by classification on an ImageNet-layout
 * dataset (`train/<class>/*`, `val/<class>/*`), with the same schedule rule, optimizer and checkpointing
 * as the detector. Its `weights` output (the `backbone.*` tensors) is what `train.detector` fine-tunes
 * with `init: imagenet`. tfjs is loaded only inside `run`.
 */
import type { ArtifactRef } from '../../workflows/plan-types';
import { defineKind, folderRefSchema, metricsSchema } from './descriptor';
import { NORM_DESCRIPTION, sharedKnobProperties, type ArchName, type TrainingKnobs } from './train-knobs';

/** Parameters of `train.pretrain` (defaults: {@link PRETRAIN_DEFAULTS}). */
export interface TrainPretrainParams extends TrainingKnobs {
  /** The dataset directory (tree) with `train/<class>/*` and `val/<class>/*`. */
  dataset: ArtifactRef;
  /** Frozen BN is a fine-tuning choice, not a pre-training one. */
  norm: 'gn' | 'bn-batch' | 'bn-replica';
}

/** Defaults of the optional parameters. */
export const PRETRAIN_DEFAULTS = {
  arch: 'tiny' as ArchName,
  schedule: '1x',
  baseIterations: 300,
  batchSize: 32,
  // ResNet's lr for batch 256; a small demo batch tolerates it with GN/BN.
  lr: 0.1,
  imageSize: 64,
  seed: 0,
  checkpointEvery: 100,
  keepCheckpoints: 3,
  // The usual per-GPU ImageNet batch.
  bnImagesPerReplica: 32,
};

/** `train.pretrain`. */
export const trainPretrainKind = defineKind<TrainPretrainParams>({
  name: 'train.pretrain',
  // 2: wall-clock figures (imagesPerSec, resumedFrom) left the metrics output for provenance.
  version: '2',
  summary: 'Pre-train a ResNet backbone by classification on an ImageNet-layout dataset.',
  queue: 'gpu',
  withSchema: {
    type: 'object',
    required: ['dataset', 'norm'],
    properties: {
      ...sharedKnobProperties,
      dataset: { ...folderRefSchema, description: 'Dataset tree with train/<class>/* and val/<class>/*.' },
      norm: { enum: ['gn', 'bn-batch', 'bn-replica'], description: NORM_DESCRIPTION },
      schedule: {
        oneOf: [
          { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?x$' },
          { type: 'number', exclusiveMinimum: 0 },
        ],
        default: '1x',
      },
      baseIterations: { type: 'integer', minimum: 3, default: 300 },
      batchSize: { type: 'integer', minimum: 1, maximum: 4096, default: 32 },
      lr: { type: 'number', exclusiveMinimum: 0, default: 0.1 },
      imageSize: { type: 'integer', minimum: 32, maximum: 1024, multipleOf: 32, default: 64 },
      bnImagesPerReplica: { type: 'integer', minimum: 1, default: 32 },
    },
    additionalProperties: false,
  },
  outputs: {
    weights: {
      type: 'file',
      description: 'Backbone weights (backbone.* tensors, safetensors layout).',
      mediaType: 'application/vnd.ablate.weights+safetensors',
    },
    lossCurve: {
      type: 'file',
      description: '{iterations, points: [[iteration, mean loss]]}.',
      mediaType: 'application/json',
    },
    metrics: {
      type: 'value',
      description: 'top1 (val accuracy, 0..1), iterations, finalLoss.',
      schema: metricsSchema,
    },
  },
  // A lost worker is noticed within 30 s (heartbeats come between iterations); see train-detector.ts.
  defaults: { timeoutMs: 48 * 3600_000, heartbeatTimeoutMs: 30_000, retry: { maxAttempts: 5 } },
});
