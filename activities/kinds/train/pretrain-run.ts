/** The implementation of `train.pretrain` (definition and docs in pretrain.ts). */
import type * as TfType from '@tensorflow/tfjs';

import { ErrorType, permanent } from '../../../infra/errors';
import type { JsonValue, StepOutputs } from '../../../workflows/plan-types';
import type { StepContext } from '../../runtime/step-kind';
import {
  annotateTiming,
  configDigest,
  loopOptionsOf,
  normOptionsOf,
  publishWeights,
  startRuntime,
} from './common';
import { classificationBatch, ImageCache, loadClassificationSet, type ClassificationBatch } from './data';
import { createClassifier } from './detector';
import { runTraining } from './loop';
import { ParamSet } from './params';
import { PRETRAIN_DEFAULTS, type TrainPretrainParams } from '../../../infra/kinds/train-pretrain';
import { createRng } from '../../../infra/prng';
import { stepSchedule } from './schedule';

type Scalar = TfType.Scalar;

/** `train.pretrain`'s run. */
export async function runTrainPretrain(raw: TrainPretrainParams, ctx: StepContext): Promise<StepOutputs> {
  const p = { ...PRETRAIN_DEFAULTS, ...raw };
  if ((p.norm as string) === 'frozenbn') {
    throw permanent(
      ErrorType.InvalidInput,
      'norm "frozenbn" has no statistics to freeze in pre-training: use gn, bn-batch or bn-replica',
    );
  }
  const schedule = stepSchedule(p);
  const dir = await ctx.fetch(p.dataset);
  const train = await loadClassificationSet(dir, 'train');
  const val = await loadClassificationSet(dir, 'val');
  if (train.classes.join() !== val.classes.join()) {
    throw permanent(
      ErrorType.InvalidInput,
      `train and val have different class folders (${train.classes.length} vs ${val.classes.length})`,
    );
  }
  const runtime = await startRuntime(ctx, p.backend);
  const tf = runtime.tf;
  const params = new ParamSet(tf);
  const normOptions = normOptionsOf(p);
  const model = createClassifier(tf, params, createRng(p.seed), {
    arch: p.arch,
    width: p.width,
    norm: p.norm,
    normOptions,
    numClasses: train.classes.length,
  });
  try {
    const cache = new ImageCache(p.imageSize);
    const s = p.imageSize;
    const k = train.classes.length;
    const result = await runTraining<ClassificationBatch>({
      runtime,
      ctx,
      params,
      schedule,
      ...loopOptionsOf(p, runtime),
      configDigest: configDigest({ kind: 'train.pretrain', ...p, dataset: p.dataset.digest }),
      task: {
        numSamples: train.items.length,
        loadBatch: (indices, r) => classificationBatch(train, cache, indices, r),
        loss: (batch) => {
          const n = batch.labels.length;
          const logits = model.apply(tf.tensor4d(batch.pixels, [n, s, s, 3]), true);
          const logp = tf.logSoftmax(logits);
          return tf.neg(tf.div(tf.sum(tf.mul(tf.tensor2d(batch.oneHot, [n, k]), logp)), n)) as Scalar;
        },
      },
    });
    // Top-1 accuracy on val, eval mode (BN uses running statistics).
    let correct = 0;
    for (let start = 0; start < val.items.length; start += p.batchSize) {
      const indices = Array.from(
        { length: Math.min(p.batchSize, val.items.length - start) },
        (_, i) => start + i,
      );
      const batch = await classificationBatch(val, cache, indices, undefined);
      const predicted = tf.tidy(() =>
        tf.argMax(model.apply(tf.tensor4d(batch.pixels, [indices.length, s, s, 3]), false), 1).dataSync(),
      );
      batch.labels.forEach((label, i) => {
        if (predicted[i] === label) correct++;
      });
    }
    const top1 = correct / val.items.length;
    const weights = await publishWeights(ctx, params, 'backbone.', {
      kind: 'train.pretrain',
      arch: p.arch,
      width: p.width ?? null,
      norm: p.norm,
      classes: k,
      imageSize: p.imageSize,
      iterations: result.iterations,
      top1,
    });
    const lossCurve = await ctx.publishBytes(
      JSON.stringify({ iterations: result.iterations, points: result.lossCurve }),
      { mediaType: 'application/json' },
    );
    const metrics = {
      top1,
      iterations: result.iterations,
      finalLoss: result.lossCurve[result.lossCurve.length - 1]?.[1] ?? null,
      classes: k,
      backend: runtime.backend,
    } as unknown as JsonValue;
    annotateTiming(ctx, result);
    return { weights, lossCurve, metrics };
  } finally {
    params.dispose();
  }
}
