/**
 * The paper's three arms in miniature, end to end through the step kinds: synthetic "ImageNet"
 * pre-training, fine-tuning the detector from it, and training the detector from scratch, each scored
 * with the project's COCO evaluator on a held-out synthetic val set and compared with chance.
 *
 * Chance is measured, not assumed: the AP of 100 uniformly random boxes per val image with random
 * classes and scores, through the same evaluator. Sizes are small (64 px, width-8 ResNet, batch 8,
 * 3x of a 80-iteration 1x) so the file runs in a minute or two on two shared cores.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

import { openStore, type ArtifactStore } from '../../infra/store/index';
import type { ArtifactRef } from '../../workflows/plan-types';
import { datasetSynth } from '../../activities/kinds/dataset/synth-kind';
import { cocoNamedStats } from '../../activities/kinds/eval/report';
import { evaluateCoco } from '../../activities/kinds/eval/coco';
import { runStepLocally } from '../../activities/runtime/step-context';
import { createRng } from '../../infra/prng';
import { trainPretrain } from '../../activities/kinds/train/pretrain';
import type { TrainDetectorParams } from '../../infra/kinds/train-detector';
import { trainDetector } from '../../activities/kinds/train/train-detector';

// Two test files run at once on two cores: one wasm thread each avoids oversubscription.
process.env.ABLATE_WASM_THREADS ??= '1';

const quiet = { info: () => undefined, warn: () => undefined };
const SIZE = 64;

interface Coco {
  images: Array<{ id: number; width: number; height: number }>;
  categories: Array<{ id: number }>;
}

/** AP of random detections: 100 boxes per image, uniform position, size, class and score. */
function chanceAp(gt: Coco, seed: number): { AP: number; AP50: number } {
  const rng = createRng(seed);
  const results = gt.images.flatMap((img) =>
    Array.from({ length: 100 }, () => {
      const w = 2 + rng.float() * (img.width - 2);
      const h = 2 + rng.float() * (img.height - 2);
      return {
        image_id: img.id,
        category_id: gt.categories[rng.int(gt.categories.length)]?.id as number,
        bbox: [rng.float() * (img.width - w), rng.float() * (img.height - h), w, h],
        score: rng.float(),
      };
    }),
  );
  const stats = cocoNamedStats(evaluateCoco(gt as unknown as Record<string, unknown>, results));
  return { AP: stats.AP, AP50: stats.AP50 };
}

describe('pre-training, fine-tuning and scratch training beat chance', () => {
  let dir: string;
  let store: ArtifactStore;
  let det: Record<string, ArtifactRef>;
  let cls: ArtifactRef;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-train-e2e-'));
    store = await openStore(pathToFileURL(join(dir, 'store')).href);
    const d = await runStepLocally(
      datasetSynth,
      { task: 'detection', format: 'coco', images: 600, valImages: 100, seed: 11, size: SIZE, classes: 4 },
      { store, log: quiet },
    );
    det = d.outputs as Record<string, ArtifactRef>;
    const c = await runStepLocally(
      datasetSynth,
      {
        task: 'classification',
        format: 'imagenet',
        images: 1000,
        classes: 10,
        valPerClass: 10,
        seed: 12,
        size: SIZE,
      },
      { store, log: quiet },
    );
    cls = c.outputs.dataset as ArtifactRef;
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('pre-trains, then fine-tunes and trains from scratch to an AP well above chance', async () => {
    const pre = await runStepLocally(
      trainPretrain,
      {
        dataset: cls,
        arch: 'tiny',
        width: 8,
        norm: 'gn',
        schedule: '3x',
        baseIterations: 80,
        batchSize: 16,
        lr: 0.1,
        imageSize: SIZE,
        seed: 1,
        checkpointEvery: 0,
        bnImagesPerReplica: 16,
      },
      { store, log: quiet },
    );
    const { top1, finalLoss } = pre.outputs.metrics as { top1: number; finalLoss: number };
    // 10 classes: chance is 0.1. With 100 val images a chance classifier scores 0.1 +- 0.03 (binomial
    // standard deviation), so 0.2 is over three deviations above it.
    assert.ok(
      top1 >= 0.2,
      `pre-training top-1 ${top1} (final loss ${finalLoss}) should beat the 0.1 of chance clearly`,
    );

    const gt = JSON.parse((await store.getBytes(det.val as ArtifactRef)).toString()) as Coco;
    const chance = chanceAp(gt, 99);
    const common: Omit<TrainDetectorParams, 'init'> = {
      images: det.images as ArtifactRef,
      train: det.train as ArtifactRef,
      val: det.val as ArtifactRef,
      norm: 'gn',
      schedule: '3x',
      baseIterations: 80,
      arch: 'tiny',
      width: 8,
      batchSize: 8,
      lr: 0.02,
      imageSize: SIZE,
      seed: 2,
      checkpointEvery: 0,
      evalEvery: 0,
      bnImagesPerReplica: 2,
    };
    const arms = {
      imagenet: await runStepLocally(
        trainDetector,
        { ...common, init: 'imagenet', pretrained: pre.outputs.weights as ArtifactRef },
        { store, log: quiet },
      ),
      scratch: await runStepLocally(trainDetector, { ...common, init: 'scratch' }, { store, log: quiet }),
    };
    const report = [
      `chance AP ${chance.AP.toFixed(4)} AP50 ${chance.AP50.toFixed(4)}; pre-training top-1 ${top1.toFixed(3)}`,
    ];
    for (const [name, run] of Object.entries(arms)) {
      const m = run.outputs.metrics as { AP: number; AP50: number; iterations: number };
      const curve = JSON.parse((await store.getBytes(run.outputs.lossCurve as ArtifactRef)).toString()) as {
        points: Array<[number, number]>;
      };
      const first = curve.points[0]?.[1] as number;
      const last = curve.points[curve.points.length - 1]?.[1] as number;
      report.push(
        `${name}: AP ${m.AP.toFixed(4)} AP50 ${m.AP50.toFixed(4)}, loss ${first.toFixed(3)} -> ${last.toFixed(3)}`,
      );
      assert.equal(m.iterations, 240);
      assert.ok(last < first * 0.8, `${name}: the training loss should fall (${first} -> ${last})`);
      assert.ok(
        m.AP > Math.max(0.01, 5 * chance.AP),
        `${name}: AP ${m.AP} should be well above chance ${chance.AP}`,
      );
      assert.ok(
        m.AP50 > Math.max(0.04, 5 * chance.AP50),
        `${name}: AP50 ${m.AP50} should be well above chance ${chance.AP50}`,
      );
    }
    console.log(report.join('\n'));
  });
});
