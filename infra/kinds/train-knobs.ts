/**
 * Types both training kinds' descriptors share: the model families, norms, backends and the knobs of
 * the training loop. The implementations (activities/kinds/train) use the same types.
 */

/** Backbone depth/width families. */
export type ArchName = 'tiny' | 'r50' | 'r101';

/**
 * Normalisation layers (see activities/kinds/train/norms.ts): `gn` GroupNorm; `bn-batch` BatchNorm
 * with statistics over the whole batch of the training process; `bn-replica` BatchNorm with
 * statistics per group of `bnImagesPerReplica` images (the paper's per-GPU BN, simulated); `frozenbn`
 * pre-trained statistics and affine parameters frozen. None of them synchronises anything across
 * devices: tfjs trains one replica per process.
 */
export type NormKind = 'gn' | 'bn-batch' | 'bn-replica' | 'frozenbn' | 'none';

/** Schema description of the `norm` parameter, shared by both training kinds. */
export const NORM_DESCRIPTION =
  'gn: GroupNorm; bn-batch: BatchNorm statistics over the whole batch of the training process (what SyncBN computes for that batch, without any cross-device synchronisation); bn-replica: BatchNorm statistics per group of bnImagesPerReplica images (the per-GPU BN of multi-GPU training, simulated in one process)';

/**
 * Values of an enum parameter that were renamed, with the hint a pipeline still using them gets (the
 * compiler reports it instead of a bare "must be one of"): never a silent alias, since the old names
 * claimed what the code does not do (`syncbn`) or became ambiguous (`bn`).
 */
export const RENAMED_VALUES: Readonly<Record<string, { to: readonly string[]; hint: string }>> = {
  syncbn: {
    to: ['bn-batch'],
    hint: '"syncbn" was renamed "bn-batch": BatchNorm statistics over the whole batch of one training process, which is not synchronised across devices',
  },
  bn: {
    to: ['bn-replica', 'bn-batch'],
    hint: '"bn" was split in two: "bn-replica" (statistics per group of bnImagesPerReplica images, what "bn" computed) or "bn-batch" (statistics over the whole batch)',
  },
};

/** A tfjs backend a training step may be forced onto. */
export type BackendChoice = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

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
  /** bn-replica: images per simulated replica (per-GPU batch). */
  bnImagesPerReplica: number;
  /** GroupNorm groups. @default 8 for tiny, 32 otherwise */
  gnGroups?: number;
  /** Memory the step may use, MiB. @default 4096 on wasm, 75% of RAM on cpu, unchecked on native */
  memoryLimitMb?: number;
  /** Force a tfjs backend instead of the automatic choice. */
  backend?: BackendChoice;
}

/**
 * Schema properties of the knobs both training kinds take with the same bounds and defaults (spread
 * into each kind's `with` schema; the knobs whose defaults differ per kind stay in the kind).
 */
export const sharedKnobProperties = {
  arch: { enum: ['tiny', 'r50', 'r101'], default: 'tiny' },
  width: { type: 'integer', minimum: 4, maximum: 256 },
  warmupIterations: { type: 'integer', minimum: 0 },
  warmupFactor: { type: 'number', minimum: 0, maximum: 1 },
  seed: { type: 'integer', minimum: 0, maximum: 4294967295, default: 0 },
  checkpointEvery: { type: 'integer', minimum: 0, default: 100 },
  keepCheckpoints: {
    type: 'integer',
    minimum: 1,
    default: 3,
    description: 'Checkpoints kept (the newest); older ones are deleted as training goes.',
  },
  gnGroups: { type: 'integer', minimum: 1 },
  memoryLimitMb: { type: 'integer', minimum: 1 },
  backend: { enum: ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] },
};
