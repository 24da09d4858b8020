/**
 * `train.detector`: trains the CenterNet-style detector (detector.ts) on a COCO split, from an
 * ImageNet-style pre-trained backbone (`init: imagenet`) or from He initialisation (`init: scratch`),
 * with the paper's knobs: norm (gn | bn-batch | bn-replica | frozenbn), schedule (1x..6x, the paper's decay rule
 * scaled by baseIterations / 90k), the training subset (the `train` split it is given), and optional
 * periodic evaluation for AP-vs-iterations curves. tfjs is loaded only inside `run`.
 */
import type { ArtifactRef } from '../../workflows/plan-types';
import { defineKind, fileRefSchema, folderRefSchema, metricsSchema } from './descriptor';
import {
  NORM_DESCRIPTION,
  sharedKnobProperties,
  type ArchName,
  type NormKind,
  type TrainingKnobs,
} from './train-knobs';

/** Parameters of `train.detector` (defaults: {@link DETECTOR_DEFAULTS}). */
export interface TrainDetectorParams extends TrainingKnobs {
  /** The image directory (tree); `file_name`s in the splits are relative to it. */
  images: ArtifactRef;
  /** COCO instances JSON of the training split (a subset, for the subset axis). */
  train: ArtifactRef;
  /** COCO instances JSON of the evaluation split. */
  val: ArtifactRef;
  /** The val split's image directory when it is not `images` (COCO keeps train2017/ and val2017/ apart). */
  valImages?: ArtifactRef | null;
  init: 'imagenet' | 'scratch';
  /** The `weights` output of `train.pretrain`; required iff init is imagenet. */
  pretrained?: ArtifactRef | null;
  norm: Exclude<NormKind, 'none'>;
  /** Evaluate on val every K iterations for the AP curve (0: at the end only). */
  evalEvery: number;
}

/** Defaults of the optional parameters (the paper's values where it has one). */
export const DETECTOR_DEFAULTS = {
  // 1x = 300 iterations: 1/300 of the paper's 90k.
  baseIterations: 300,
  arch: 'tiny' as ArchName,
  // The paper's batch and lr.
  batchSize: 16,
  lr: 0.02,
  imageSize: 64,
  seed: 0,
  checkpointEvery: 100,
  keepCheckpoints: 3,
  evalEvery: 0,
  // The paper's per-GPU batch.
  bnImagesPerReplica: 2,
};

/** `train.detector`. */
export const trainDetectorKind = defineKind<TrainDetectorParams>({
  name: 'train.detector',
  // 2: wall-clock figures (imagesPerSec, resumedFrom) left the metrics output for provenance.
  version: '2',
  summary:
    'Train a detector (ResNet + FPN-lite + CenterNet head) from ImageNet pre-training or from scratch.',
  queue: 'gpu',
  withSchema: {
    type: 'object',
    required: ['images', 'train', 'val', 'init', 'norm', 'schedule'],
    properties: {
      ...sharedKnobProperties,
      images: { ...folderRefSchema, description: 'Image directory (tree artifact).' },
      train: { ...fileRefSchema, description: 'COCO instances JSON of the training split.' },
      val: { ...fileRefSchema, description: 'COCO instances JSON of the evaluation split.' },
      valImages: {
        oneOf: [folderRefSchema, { type: 'null' }],
        description: "The val split's image directory, when not `images` (e.g. COCO val2017/).",
      },
      init: { enum: ['imagenet', 'scratch'], description: 'Pre-trained backbone or He initialisation.' },
      pretrained: {
        oneOf: [fileRefSchema, { type: 'null' }],
        description: 'The weights output of train.pretrain (required iff init is imagenet).',
      },
      norm: {
        enum: ['gn', 'bn-batch', 'bn-replica', 'frozenbn'],
        description: `${NORM_DESCRIPTION}; frozenbn: pre-trained BN statistics and affine parameters frozen (init imagenet).`,
      },
      schedule: {
        oneOf: [
          { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?x$' },
          { type: 'number', exclusiveMinimum: 0 },
        ],
        description:
          '"1x".."6x": N times baseIterations; LR x0.1 at the paper\'s last 60k and last 20k, scaled.',
      },
      baseIterations: {
        type: 'integer',
        minimum: 3,
        default: 300,
        description: 'The 1x length (the paper: 90000).',
      },
      batchSize: { type: 'integer', minimum: 1, maximum: 1024, default: 16 },
      lr: { type: 'number', exclusiveMinimum: 0, default: 0.02 },
      imageSize: { type: 'integer', minimum: 32, maximum: 2048, multipleOf: 32, default: 64 },
      evalEvery: { type: 'integer', minimum: 0, default: 0 },
      bnImagesPerReplica: { type: 'integer', minimum: 1, default: 2 },
    },
    allOf: [
      {
        if: { properties: { init: { const: 'imagenet' } }, required: ['init'] },
        then: { required: ['pretrained'], properties: { pretrained: fileRefSchema } },
        else: { properties: { pretrained: { type: 'null' } } },
      },
      {
        if: { properties: { norm: { const: 'frozenbn' } }, required: ['norm'] },
        then: { properties: { init: { const: 'imagenet' } } },
      },
    ],
    additionalProperties: false,
  },
  outputs: {
    weights: {
      type: 'file',
      description: 'All detector weights (safetensors layout).',
      mediaType: 'application/vnd.ablate.weights+safetensors',
    },
    detections: {
      type: 'file',
      description: 'COCO results JSON of the final model on val.',
      mediaType: 'application/json',
    },
    lossCurve: {
      type: 'file',
      description: '{iterations, points: [[iteration, mean loss]]}.',
      mediaType: 'application/json',
    },
    apCurve: {
      type: 'file',
      description: '{points: [{iteration, AP, AP50, AP75}]} (every evalEvery, and the end).',
      mediaType: 'application/json',
    },
    metrics: {
      type: 'value',
      description: 'AP, AP50, AP75 (COCO evaluator, 0..1) on val; iterations; finalLoss; schedule.',
      schema: metricsSchema,
    },
  },
  // Minutes per 1x at demo scale; hours at full scale. Heartbeats come between iterations (and the
  // runner beats every few seconds), so a lost worker is noticed within 30 s and the retry, on another
  // worker, resumes from the newest checkpoint of this configuration.
  defaults: { timeoutMs: 48 * 3600_000, heartbeatTimeoutMs: 30_000, retry: { maxAttempts: 5 } },
});
