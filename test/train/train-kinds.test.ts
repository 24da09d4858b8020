/**
 * The training kinds end to end at toy size (32 px images, width-4 ResNet, a dozen iterations): resume
 * after an interruption is bitwise exact, and bad input fails clearly and permanently.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

import { kindValidator } from '../../infra/compiler/kind-schemas';
import { AblateError } from '../../infra/errors';
import { openStore, type ArtifactStore } from '../../infra/store/index';
import type { ArtifactRef, JsonValue } from '../../workflows/plan-types';
import { datasetSynth } from '../../activities/kinds/dataset/synth-kind';
import { runStepLocally } from '../../activities/runtime/step-context';
import type { StepProgress } from '../../activities/runtime/step-kind';
import { decodeCheckpoint } from '../../activities/kinds/train/checkpoint';
import { isOutOfMemoryError } from '../../activities/kinds/train/loop';
import { trainPretrain } from '../../activities/kinds/train/pretrain';
import type { TrainDetectorParams } from '../../infra/kinds/train-detector';
import { trainDetector } from '../../activities/kinds/train/train-detector';

// Two test files run at once on two cores: one wasm thread each avoids oversubscription.
process.env.ABLATE_WASM_THREADS ??= '1';

const quiet = { info: () => undefined, warn: () => undefined };

function isAblate(type: string, message: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof AblateError, `expected an AblateError, got ${String(err)}`);
    assert.equal(err.type, type);
    assert.equal(err.retryable, false);
    assert.match(err.message, message);
    return true;
  };
}

describe('training kinds', () => {
  let dir: string;
  let store: ArtifactStore;
  let det: Record<string, ArtifactRef>;
  let cls: ArtifactRef;
  let base: TrainDetectorParams;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-train-kinds-'));
    store = await openStore(pathToFileURL(join(dir, 'store')).href);
    const d = await runStepLocally(
      datasetSynth,
      { task: 'detection', format: 'coco', images: 24, valImages: 8, seed: 5, size: 32, classes: 3 },
      { store, log: quiet },
    );
    det = d.outputs as Record<string, ArtifactRef>;
    const c = await runStepLocally(
      datasetSynth,
      {
        task: 'classification',
        format: 'imagenet',
        images: 24,
        classes: 4,
        valPerClass: 2,
        seed: 6,
        size: 32,
      },
      { store, log: quiet },
    );
    cls = c.outputs.dataset as ArtifactRef;
    base = {
      images: det.images as ArtifactRef,
      train: det.train as ArtifactRef,
      val: det.val as ArtifactRef,
      init: 'scratch',
      norm: 'bn-replica',
      schedule: '1x',
      baseIterations: 12,
      arch: 'tiny',
      width: 4,
      batchSize: 4,
      lr: 0.02,
      imageSize: 32,
      seed: 3,
      checkpointEvery: 4,
      evalEvery: 6,
      bnImagesPerReplica: 2,
      backend: 'wasm',
    };
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('their schemas require pretrained weights exactly when init is imagenet', () => {
    const validate = kindValidator(trainDetector);
    const ref = base.images;
    const withOut = { images: ref, train: ref, val: ref, norm: 'gn', schedule: '2x' };
    assert.equal(validate({ ...withOut, init: 'scratch' }), true);
    assert.equal(validate({ ...withOut, init: 'imagenet' }), false);
    assert.ok(validate.errors?.some((e) => e.message === "must have required property 'pretrained'"));
    assert.equal(validate({ ...withOut, init: 'imagenet', pretrained: ref }), true);
    assert.equal(validate({ ...withOut, init: 'scratch', pretrained: ref }), false);
    assert.equal(validate({ ...withOut, init: 'scratch', norm: 'frozenbn' }), false);
    assert.equal(validate({ ...withOut, init: 'scratch', schedule: 'long' }), false);
    const pretrain = kindValidator(trainPretrain);
    const params: Record<string, unknown> = { dataset: ref, norm: 'bn-batch' };
    assert.equal(pretrain(params), true);
    assert.equal(params.baseIterations, 300, 'defaults are filled in');
    assert.equal(pretrain({ dataset: ref, norm: 'frozenbn' }), false);
  });

  it('resumes an interrupted run to bitwise the same weights, curves and detections', async () => {
    const progress: StepProgress[] = [];
    const whole = await runStepLocally(trainDetector, base, {
      store,
      log: quiet,
      onProgress: (p) => progress.push(p),
    });
    assert.equal(progress.length, 12);
    assert.deepEqual(
      progress.map((p) => p.checkpoint !== undefined),
      [false, false, false, true, true, true, true, true, true, true, true, true],
    );
    const last = progress[11] as StepProgress;
    assert.equal(last.totalIterations, 12);
    assert.ok(Number.isFinite(last.loss) && (last.imagesPerSec ?? 0) > 0 && last.etaSec === 0);

    // Interrupt after iteration 6 (the last periodic checkpoint is from iteration 4): the step saves a
    // final checkpoint at iteration 6, which holds the AP point evaluated there, and the retry resumes
    // from it.
    const abort = new AbortController();
    let lastSeen: StepProgress | undefined;
    await assert.rejects(
      runStepLocally(trainDetector, base, {
        store,
        log: quiet,
        signal: abort.signal,
        onProgress: (p) => {
          lastSeen = p;
          if (p.iteration === 6) abort.abort('worker shutdown');
        },
      }),
      /training stopped at iteration 6\/12: worker shutdown; it resumes from the checkpoint at iteration 6/,
    );
    assert.equal(lastSeen?.checkpointIteration, 6);
    assert.notEqual(lastSeen?.checkpoint?.digest, progress[3]?.checkpoint?.digest);
    const resumed = await runStepLocally(trainDetector, base, { store, log: quiet, resumeFrom: lastSeen });
    assert.deepEqual(resumed.annotations.resumedFrom, {
      iteration: 6,
      checkpoint: lastSeen?.checkpoint as unknown as JsonValue,
    });
    assert.ok((resumed.annotations.imagesPerSec as number) > 0);
    assert.deepEqual(resumed.outputs.metrics, whole.outputs.metrics, 'metrics hold no wall-clock figures');
    for (const name of ['weights', 'lossCurve', 'apCurve', 'detections'] as const) {
      assert.equal(
        (resumed.outputs[name] as ArtifactRef).digest,
        (whole.outputs[name] as ArtifactRef).digest,
        `${name} differ`,
      );
    }
    const apCurve = JSON.parse((await store.getBytes(whole.outputs.apCurve as ArtifactRef)).toString()) as {
      points: Array<{ iteration: number }>;
    };
    assert.deepEqual(
      apCurve.points.map((p) => p.iteration),
      [6, 12],
    );
    assert.deepEqual(resumed.annotations.tfjsBackend, 'wasm');
  });

  it('stops on a NaN loss with a permanent error naming the iteration, keeping the last good checkpoint', async () => {
    const progress: StepProgress[] = [];
    await assert.rejects(
      runStepLocally(
        trainDetector,
        { ...base, norm: 'gn', lr: 1e8, warmupIterations: 0, checkpointEvery: 1, evalEvery: 0 },
        { store, log: quiet, onProgress: (p) => progress.push(p) },
      ),
      isAblate(
        'Diverged',
        /training diverged: (loss is NaN at iteration \d+|parameter \S+ holds NaN or Inf after iteration \d+).*the last good checkpoint is file:/,
      ),
    );
    const good = progress[progress.length - 1]?.checkpoint as ArtifactRef;
    assert.ok(good, 'a checkpoint was announced before the divergence');
    const ckpt = decodeCheckpoint(await store.getBytes(good));
    for (const [name, t] of ckpt.tensors)
      assert.ok(t.data.every(Number.isFinite), `${name} of the kept checkpoint is finite`);
  });

  it('refuses a batch that cannot fit in memory before training, naming a batch size that fits', async () => {
    await assert.rejects(
      runStepLocally(trainDetector, { ...base, batchSize: 64, memoryLimitMb: 8 }, { store, log: quiet }),
      isAblate(
        'OutOfMemory',
        /^batch size 64 needs about \d+ MiB \(\d+(\.\d+)? MiB per image\) but the wasm backend may use 8 MiB: use batchSize <= \d+/,
      ),
    );
  });

  it('maps real allocation failures to OutOfMemory and nothing else', () => {
    let allocationFailure: unknown;
    try {
      new Float32Array(2 ** 40);
    } catch (err) {
      allocationFailure = err;
    }
    assert.ok(isOutOfMemoryError(allocationFailure), String(allocationFailure));
    assert.equal(isOutOfMemoryError(new Error('tensor shape mismatch')), false);
  });

  it('refuses a split with zero images', async () => {
    const empty = await store.putBytes(
      JSON.stringify({ images: [], annotations: [], categories: [{ id: 1, name: 'a' }] }),
      { mediaType: 'application/json' },
    );
    await assert.rejects(
      runStepLocally(trainDetector, { ...base, train: empty }, { store, log: quiet }),
      isAblate('EmptyDataset', /no images|0 images/),
    );
  });

  it('fine-tunes a pre-trained backbone, and names the layer when its shapes do not match', async () => {
    const pretrainParams = {
      dataset: cls,
      arch: 'tiny',
      width: 4,
      norm: 'gn',
      schedule: '1x',
      baseIterations: 6,
      batchSize: 4,
      lr: 0.05,
      imageSize: 32,
      seed: 1,
      checkpointEvery: 0,
      bnImagesPerReplica: 4,
      backend: 'wasm',
    } as const;
    const pre = await runStepLocally(trainPretrain, pretrainParams, { store, log: quiet });
    const metrics = pre.outputs.metrics as { top1: number; iterations: number };
    assert.equal(metrics.iterations, 6);
    // Top-1 counts correct predictions over the 8 val images (4 classes x 2), and the weights say so too.
    assert.ok(
      Number.isInteger(metrics.top1 * 8) && metrics.top1 >= 0 && metrics.top1 <= 1,
      `${metrics.top1}`,
    );
    const weights = pre.outputs.weights as ArtifactRef;
    const backbone = decodeCheckpoint(await store.getBytes(weights));
    assert.deepEqual(backbone.metadata, {
      kind: 'train.pretrain',
      arch: 'tiny',
      width: 4,
      norm: 'gn',
      classes: 4,
      imageSize: 32,
      iterations: 6,
      top1: metrics.top1,
    });
    // Same data, same seed: the same accuracy and bit-identical weights (what the step cache relies on).
    const again = await runStepLocally(trainPretrain, pretrainParams, { store, log: quiet });
    assert.equal((again.outputs.metrics as { top1: number }).top1, metrics.top1);
    assert.equal((again.outputs.weights as ArtifactRef).digest, weights.digest);
    assert.ok([...backbone.tensors.keys()].every((k) => k.startsWith('backbone.')));

    const tuned = await runStepLocally(
      trainDetector,
      { ...base, init: 'imagenet', pretrained: weights, norm: 'gn', baseIterations: 6, evalEvery: 0 },
      { store, log: quiet },
    );
    assert.equal((tuned.outputs.metrics as { iterations: number }).iterations, 6);
    await assert.rejects(
      runStepLocally(
        trainDetector,
        { ...base, init: 'imagenet', pretrained: weights, norm: 'gn', width: 8 },
        { store, log: quiet },
      ),
      isAblate(
        'ShapeMismatch',
        /layer backbone\.stem\.conv\.w has shape \[3,3,3,4\] but the model expects \[3,3,3,8\]/,
      ),
    );
    await assert.rejects(
      runStepLocally(
        trainDetector,
        { ...base, init: 'imagenet', pretrained: weights, norm: 'frozenbn' },
        { store, log: quiet },
      ),
      isAblate('ShapeMismatch', /has no tensor for layer backbone\.stem\.norm\.mean/),
    );
    await assert.rejects(
      runStepLocally(trainDetector, { ...base, init: 'imagenet' }, { store, log: quiet }),
      isAblate('InvalidInput', /init "imagenet" needs `pretrained`/),
    );
  });

  it('fine-tunes with frozen BN: the pre-trained statistics and affine parameters stay bitwise as they were', async () => {
    const pre = await runStepLocally(
      trainPretrain,
      {
        dataset: cls,
        arch: 'tiny',
        width: 4,
        norm: 'bn-replica',
        schedule: '1x',
        baseIterations: 6,
        batchSize: 4,
        lr: 0.05,
        imageSize: 32,
        seed: 1,
        checkpointEvery: 0,
        bnImagesPerReplica: 2,
        backend: 'wasm',
      },
      { store, log: quiet },
    );
    const before = decodeCheckpoint(await store.getBytes(pre.outputs.weights as ArtifactRef)).tensors;
    // Pre-training with BN moved the running statistics away from their (0, 1) initialisation.
    assert.ok(Array.from(before.get('backbone.stem.norm.mean')?.data ?? []).some((v) => v !== 0));
    const tuned = await runStepLocally(
      trainDetector,
      {
        ...base,
        init: 'imagenet',
        pretrained: pre.outputs.weights as ArtifactRef,
        norm: 'frozenbn',
        baseIterations: 6,
        evalEvery: 0,
      },
      { store, log: quiet },
    );
    const after = decodeCheckpoint(await store.getBytes(tuned.outputs.weights as ArtifactRef)).tensors;
    const bytes = (t: { data: Float32Array } | undefined) =>
      Buffer.from(t?.data.buffer ?? new ArrayBuffer(0));
    for (const name of [
      'backbone.stem.norm.mean',
      'backbone.stem.norm.var',
      'backbone.stem.norm.gamma',
      'backbone.stage3.block0.norm2.beta',
    ]) {
      assert.deepEqual(bytes(after.get(name)), bytes(before.get(name)), `${name} changed`);
    }
    assert.notDeepEqual(
      bytes(after.get('backbone.stem.conv.w')),
      bytes(before.get('backbone.stem.conv.w')),
      'conv weights are fine-tuned',
    );
  });
});
