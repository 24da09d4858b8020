/**
 * The implementation of `train.detector` (the kind's definition, schema and docs are in
 * train-detector.ts; this module loads tfjs and is imported only when the step runs).
 */
import type * as TfType from '@tensorflow/tfjs';

import { ErrorType, permanent } from '../../../infra/errors';
import type { ArtifactRef, JsonValue, StepOutputs } from '../../../workflows/plan-types';
import { cocoNamedStats } from '../eval/report';
import { evaluateCoco, prepareCocoGroundTruth } from '../eval/coco';
import type { RgbImage } from '../dataset/index';
import type { StepContext } from '../../runtime/step-kind';
import {
  annotateTiming,
  configDigest,
  loadPretrainedBackbone,
  loopOptionsOf,
  normOptionsOf,
  publishWeights,
  startRuntime,
} from './common';
import {
  detectionBatch,
  ImageCache,
  loadDetectionSet,
  writeNormalised,
  type DetectionBatch,
  type DetectionSet,
} from './data';
import { buildTargets, createDetector, decodeDetections, detectionLoss, type Detector } from './detector';
import { runTraining } from './loop';
import { ParamSet } from './params';
import { createRng } from '../../../infra/prng';
import { stepSchedule } from './schedule';
import { DETECTOR_DEFAULTS, type TrainDetectorParams } from '../../../infra/kinds/train-detector';

type Tf = typeof TfType;

/** COCO results for a set: one entry per detection, boxes in source-image pixels. */
export interface CocoResult {
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  score: number;
}

/** Runs the detector over `set` in eval mode and returns COCO results (top 100 per image). */
export async function detectSet(
  tf: Tf,
  detector: Detector,
  set: DetectionSet,
  cache: ImageCache,
  batchSize: number,
): Promise<CocoResult[]> {
  const s = cache.size;
  const results: CocoResult[] = [];
  for (let start = 0; start < set.items.length; start += batchSize) {
    const items = set.items.slice(start, start + batchSize);
    const pixels = new Float32Array(items.length * s * s * 3);
    const images: RgbImage[] = [];
    for (const [b, item] of items.entries()) {
      const img = await cache.get(item.path);
      writeNormalised(img, false, pixels, b * s * s * 3);
      images.push(img);
    }
    const out = tf.tidy(() => detector.apply(tf.tensor4d(pixels, [items.length, s, s, 3]), false));
    const data = out.dataSync() as Float32Array;
    const shape = out.shape;
    out.dispose();
    const dets = decodeDetections(data, shape, detector.numClasses, s);
    dets.forEach((list, b) => {
      const img = images[b] as RgbImage;
      const item = items[b] as (typeof items)[number];
      for (const d of list) {
        const [x, y, w, h] = d.box;
        if (w <= 0 || h <= 0) continue;
        results.push({
          image_id: item.id,
          category_id: set.categoryIds[d.cls] as number,
          bbox: [(x - img.padX) / img.scaleX, (y - img.padY) / img.scaleY, w / img.scaleX, h / img.scaleY],
          score: d.score,
        });
      }
    });
  }
  return results;
}

/** `train.detector`'s run. */
export async function runTrainDetector(raw: TrainDetectorParams, ctx: StepContext): Promise<StepOutputs> {
  const p = { ...DETECTOR_DEFAULTS, ...raw };
  if (p.init === 'imagenet' && !p.pretrained) {
    throw permanent(
      ErrorType.InvalidInput,
      'init "imagenet" needs `pretrained`: the weights output of a train.pretrain step',
    );
  }
  if (p.init === 'scratch' && p.pretrained) {
    throw permanent(
      ErrorType.InvalidInput,
      'init "scratch" starts from He initialisation: remove `pretrained` or use init "imagenet"',
    );
  }
  if (p.norm === 'frozenbn' && p.init !== 'imagenet') {
    throw permanent(
      ErrorType.InvalidInput,
      'norm "frozenbn" freezes pre-trained statistics: it needs init "imagenet" (use gn or bn-batch from scratch)',
    );
  }
  const schedule = stepSchedule(p);

  const imagesDir = await ctx.fetch(p.images);
  const trainSet = await loadDetectionSet(imagesDir, await ctx.fetch(p.train), 'the train split');
  const valImagesDir = p.valImages ? await ctx.fetch(p.valImages) : imagesDir;
  const valSet = await loadDetectionSet(valImagesDir, await ctx.fetch(p.val), 'the val split');
  if (trainSet.categoryIds.join() !== valSet.categoryIds.join()) {
    throw permanent(
      ErrorType.InvalidInput,
      `train and val splits have different categories (${trainSet.categoryIds.join(',')} vs ${valSet.categoryIds.join(',')})`,
    );
  }
  const numClasses = trainSet.categoryIds.length;
  if (numClasses === 0) throw permanent(ErrorType.InvalidInput, 'the train split declares no categories');

  const runtime = await startRuntime(ctx, p.backend);
  const tf = runtime.tf;
  const rng = createRng(p.seed);
  const params = new ParamSet(tf);
  const normOptions = normOptionsOf(p);
  const detector = createDetector(tf, params, rng, {
    arch: p.arch,
    width: p.width,
    norm: p.norm,
    normOptions,
    numClasses,
  });
  try {
    if (p.init === 'imagenet') {
      const meta = await loadPretrainedBackbone(ctx, p.pretrained as ArtifactRef, params);
      if (meta.norm && meta.norm !== p.norm && !(meta.norm !== 'gn' && p.norm !== 'gn')) {
        ctx.log.warn(`pre-trained backbone used norm ${meta.norm}, fine-tuning with ${p.norm}`);
      }
    }
    const cache = new ImageCache(p.imageSize);
    const gt = prepareCocoGroundTruth(valSet.coco, 'val annotations');
    const evaluate = async () => {
      const results = await detectSet(tf, detector, valSet, cache, p.batchSize);
      const named = cocoNamedStats(evaluateCoco(gt, results));
      return { results, metrics: { AP: named.AP, AP50: named.AP50, AP75: named.AP75 } };
    };
    const s = p.imageSize;
    const digest = configDigest({
      kind: 'train.detector',
      ...p,
      images: p.images.digest,
      valImages: p.valImages?.digest ?? null,
      train: p.train.digest,
      val: p.val.digest,
      pretrained: p.pretrained?.digest ?? null,
    });
    const result = await runTraining<DetectionBatch>({
      runtime,
      ctx,
      params,
      schedule,
      ...loopOptionsOf(p, runtime),
      configDigest: digest,
      task: {
        numSamples: trainSet.items.length,
        loadBatch: (indices, r) => detectionBatch(trainSet, cache, indices, r),
        loss: (batch) => {
          const targets = buildTargets(batch.objects, s, numClasses);
          const out = detector.apply(tf.tensor4d(batch.pixels, [batch.objects.length, s, s, 3]), true);
          return detectionLoss(tf, out, targets);
        },
      },
      evaluation:
        p.evalEvery > 0 ? { every: p.evalEvery, run: async () => (await evaluate()).metrics } : undefined,
    });
    const final = await evaluate();
    const apCurve = result.evalCurve.some((e) => e.iteration === result.iterations)
      ? result.evalCurve
      : [...result.evalCurve, { iteration: result.iterations, ...final.metrics }];
    const weights = await publishWeights(ctx, params, '', {
      kind: 'train.detector',
      arch: p.arch,
      width: p.width ?? null,
      norm: p.norm,
      numClasses,
      categoryIds: trainSet.categoryIds,
      imageSize: p.imageSize,
      iterations: result.iterations,
    });
    const detections = await ctx.publishBytes(JSON.stringify(final.results), {
      mediaType: 'application/json',
    });
    const lossCurve = await ctx.publishBytes(
      JSON.stringify({ iterations: result.iterations, points: result.lossCurve }),
      { mediaType: 'application/json' },
    );
    const apCurveRef = await ctx.publishBytes(JSON.stringify({ points: apCurve }), {
      mediaType: 'application/json',
    });
    const metrics = {
      ...final.metrics,
      iterations: result.iterations,
      finalLoss: result.lossCurve[result.lossCurve.length - 1]?.[1] ?? null,
      schedule: `${schedule.multiple}x`,
      decayAt: schedule.decayAt,
      backend: runtime.backend,
    } as unknown as JsonValue;
    annotateTiming(ctx, result);
    return { weights, detections, lossCurve, apCurve: apCurveRef, metrics };
  } finally {
    params.dispose();
  }
}
