/**
 * Types both training kinds' descriptors share: the model families, norms, backends and the knobs of
 * the training loop. The implementations (activities/kinds/train) use the same types.
 */

/** Backbone depth/width families. */
export type ArchName = 'tiny' | 'r50' | 'r101';

/** Normalisation layers (see activities/kinds/train/norms.ts). */
export type NormKind = 'gn' | 'bn' | 'syncbn' | 'frozenbn' | 'none';

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
  /** bn: images per simulated replica (per-GPU batch). */
  bnImagesPerReplica: number;
  /** GroupNorm groups. @default 8 for tiny, 32 otherwise */
  gnGroups?: number;
  /** Memory the step may use, MiB. @default 4096 on wasm, 75% of RAM on cpu, unchecked on native */
  memoryLimitMb?: number;
  /** Force a tfjs backend instead of the automatic choice. */
  backend?: BackendChoice;
}
