/**
 * `train.pretrain`: "ImageNet" pre-training of a ResNet backbone by classification on an ImageNet-layout
 * dataset (`train/<class>/*`, `val/<class>/*`), with the same schedule rule, optimizer and checkpointing
 * as the detector. Its `weights` output (the `backbone.*` tensors) is what `train.detector` fine-tunes
 * with `init: imagenet`. tfjs is loaded only inside `run`.
 */
import type { StepOutputs } from '../../../workflows/plan-types';
import { trainPretrainKind } from '../../../infra/kinds/train-pretrain';
import { implementKind } from '../../runtime/step-kind';
import { expectedBackend } from './backend';

/** `trainPretrain`'s implementation (its descriptor: infra/kinds). */
export const trainPretrain = implementKind(
  trainPretrainKind,
  import.meta.url,
  async (params, ctx): Promise<StepOutputs> => {
    const { runTrainPretrain } = await import('./pretrain-run');
    return runTrainPretrain(params, ctx);
  },
  // Results differ between tfjs backends: the one this worker would use is part of the cache key.
  { runtimeKey: (params) => ({ tfjsBackend: expectedBackend(params.backend) }) },
);
