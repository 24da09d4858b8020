/**
 * `train.detector`: trains the CenterNet-style detector (detector.ts) on a COCO split, from an
 * ImageNet-style pre-trained backbone (`init: imagenet`) or from He initialisation (`init: scratch`),
 * with the paper's knobs: norm (gn | bn-batch | bn-replica | frozenbn), schedule (1x..6x, the paper's decay rule
 * scaled by baseIterations / 90k), the training subset (the `train` split it is given), and optional
 * periodic evaluation for AP-vs-iterations curves. tfjs is loaded only inside `run`.
 */
import type { StepOutputs } from '../../../workflows/plan-types';
import { trainDetectorKind } from '../../../infra/kinds/train-detector';
import { implementKind } from '../../runtime/step-kind';
import { expectedBackend } from './backend';

/** `trainDetector`'s implementation (its descriptor: infra/kinds). */
export const trainDetector = implementKind(
  trainDetectorKind,
  import.meta.url,
  async (params, ctx): Promise<StepOutputs> => {
    const { runTrainDetector } = await import('./detector-run');
    return runTrainDetector(params, ctx);
  },
  // Results differ between tfjs backends: the one this worker would use is part of the cache key.
  { runtimeKey: (params) => ({ tfjsBackend: expectedBackend(params.backend) }) },
);
