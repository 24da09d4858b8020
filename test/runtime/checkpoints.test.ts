/**
 * Checkpoints by cache key, at toy size: retention deletes old checkpoints as training goes, a corrupt
 * newest checkpoint falls back to the previous one with a warning, and the resumed training ends with
 * the same bytes as an uninterrupted one. Plus the work-directory lifecycle helpers.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { createCheckpointIndex, stepCheckpoints } from '../../activities/runtime/checkpoint-index';
import { datasetSynth } from '../../activities/kinds/dataset/synth-kind';
import { runStepLocally } from '../../activities/runtime/step-context';
import type { StepProgress } from '../../activities/runtime/step-kind';
import type { TrainDetectorParams } from '../../infra/kinds/train-detector';
import { trainDetector } from '../../activities/kinds/train/train-detector';
import { sweepOrphanWorkDirs, untilStopped } from '../../activities/runtime/work-dirs';
import { openStore, type ArtifactStore } from '../../infra/store/index';
import type { ArtifactRef } from '../../workflows/plan-types';

process.env.ABLATE_WASM_THREADS ??= '1';

describe('checkpoints by cache key', () => {
  let dir: string;
  let store: ArtifactStore;
  let base: TrainDetectorParams;
  const quiet = { info: () => undefined, warn: () => undefined };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-test-ckpt-'));
    store = await openStore(pathToFileURL(join(dir, 'store')).href);
    const d = await runStepLocally(
      datasetSynth,
      { task: 'detection', format: 'coco', images: 16, valImages: 4, seed: 5, size: 32, classes: 2 },
      { store, log: quiet },
    );
    const det = d.outputs as Record<string, ArtifactRef>;
    base = {
      images: det.images as ArtifactRef,
      train: det.train as ArtifactRef,
      val: det.val as ArtifactRef,
      init: 'scratch',
      norm: 'gn',
      schedule: '1x',
      baseIterations: 10,
      arch: 'tiny',
      width: 4,
      batchSize: 4,
      lr: 0.02,
      imageSize: 32,
      seed: 3,
      checkpointEvery: 2,
      keepCheckpoints: 2,
      evalEvery: 5,
      bnImagesPerReplica: 2,
      backend: 'wasm',
    };
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('keeps the newest K, falls back past a corrupt newest one, and resumes to the same bytes', async () => {
    const wholeIndex = createCheckpointIndex(store, 'whole');
    const announced: ArtifactRef[] = [];
    const whole = await runStepLocally(trainDetector, base, {
      store,
      log: quiet,
      checkpoints: stepCheckpoints({ index: wholeIndex, log: quiet }),
      onProgress: (p) => {
        if (p.checkpoint && announced.at(-1)?.digest !== p.checkpoint.digest) announced.push(p.checkpoint);
      },
    });
    // Checkpoints at 2, 4, 6, 8 (none at the end: the weights are the result); the newest 2 stay.
    assert.deepEqual(
      (await wholeIndex.list()).map((e) => e.iteration),
      [8, 6],
    );
    assert.equal(announced.length, 4);
    const present = await Promise.all(announced.map((r) => store.has(r.digest)));
    assert.deepEqual(present, [false, false, true, true]);

    // Interrupted after iteration 7: the final checkpoint (7) joins the index, which keeps [7, 6].
    const index = createCheckpointIndex(store, 'interrupted');
    const abort = new AbortController();
    await assert.rejects(
      runStepLocally(trainDetector, base, {
        store,
        log: quiet,
        signal: abort.signal,
        checkpoints: stepCheckpoints({ index, log: quiet }),
        onProgress: (p: StepProgress) => {
          if (p.iteration === 7) abort.abort('cancelled');
        },
      }),
      /training stopped at iteration 7\/10: cancelled; it resumes from the checkpoint at iteration 7/,
    );
    const entries = await index.list();
    assert.deepEqual(
      entries.map((e) => e.iteration),
      [7, 6],
    );
    // Corrupt the newest on disk: flip its bytes, as a bad disk or a torn copy would.
    const newest = entries[0]!.ref;
    await writeFile(fileURLToPath(newest.uri), Buffer.alloc(newest.sizeBytes, 7));

    const warnings: string[] = [];
    const log = { info: () => undefined, warn: (m: string) => void warnings.push(m) };
    let resumedAt: number | undefined;
    const resumed = await runStepLocally(trainDetector, base, {
      store,
      log,
      checkpoints: stepCheckpoints({ index, log, onResumed: (c) => (resumedAt = c.iteration) }),
    });
    assert.equal(resumedAt, 6);
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0]!,
      /^checkpoint at iteration 7 \(file:.*\) cannot be used: artifact file:.* is corrupt: expected sha256:[0-9a-f]{64}, read sha256:[0-9a-f]{64}; it was not used; trying an older one$/,
    );
    assert.equal(await store.has(newest.digest), false, 'the corrupt blob is deleted');
    assert.ok(!(await index.list()).some((e) => e.ref.digest === newest.digest));
    for (const name of ['weights', 'detections', 'lossCurve', 'apCurve', 'metrics'] as const) {
      assert.deepEqual(resumed.outputs[name], whole.outputs[name], `${name} differ`);
    }
  });

  it('starts from iteration 0, with a warning per checkpoint, when none loads', async () => {
    const index = createCheckpointIndex(store, 'all-missing');
    const ghost: ArtifactRef = {
      uri: 'file:///nowhere',
      digest: `sha256:${'0'.repeat(64)}`,
      sizeBytes: 10,
      mediaType: 'application/vnd.ablate.checkpoint',
    };
    await index.add({ iteration: 4, ref: ghost, at: new Date().toISOString() }, 3);
    const warnings: string[] = [];
    const log = { info: () => undefined, warn: (m: string) => void warnings.push(m) };
    let resumed = false;
    await runStepLocally(
      trainDetector,
      { ...base, baseIterations: 3, checkpointEvery: 0, evalEvery: 0 },
      { store, log, checkpoints: stepCheckpoints({ index, log, onResumed: () => (resumed = true) }) },
    );
    assert.equal(resumed, false);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /^checkpoint at iteration 4 \(file:\/\/\/nowhere\) cannot be used: /);
    assert.deepEqual(await index.list(), []);
  });
});

describe('checkpoint index', () => {
  it("keeps what was saved most recently, even below another run's iterations", async () => {
    const root = await mkdtemp(join(tmpdir(), 'ablate-test-index-'));
    try {
      const store = await openStore(pathToFileURL(root).href);
      const index = createCheckpointIndex(store, 'k');
      const save = async (iteration: number, runId: string, at: string) => {
        const ref = await store.putBytes(`${runId}@${iteration}`);
        await index.add({ iteration, ref, at, runId }, 2);
        return ref;
      };
      const a50 = await save(50, 'a', '2026-01-01T00:00:01Z');
      const a55 = await save(55, 'a', '2026-01-01T00:00:02Z');
      const b5 = await save(5, 'b', '2026-01-01T00:00:03Z');
      assert.deepEqual(
        (await index.list()).map((e) => `${e.runId}@${e.iteration}`),
        ['a@55', 'b@5'],
      );
      assert.equal(await store.has(a50.digest), false, 'the oldest save is deleted');
      assert.ok((await store.has(a55.digest)) && (await store.has(b5.digest)));
      // --no-cache: only this run's checkpoints are candidates.
      const own = stepCheckpoints({ index, runId: 'b', ownRunOnly: true, log: { info() {}, warn() {} } });
      assert.deepEqual(
        (await own.candidates()).map((c) => c.iteration),
        [5],
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('work directories', () => {
  it('sweeps the directories of processes that are gone, and only those', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ablate-test-sweep-'));
    try {
      const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid;
      const orphan = join(root, `ablate-work-${dead}-train-1-abcd`);
      const mine = join(root, `ablate-work-${process.pid}-train-1-abcd`);
      const other = join(root, 'ablate-test-store-x');
      for (const d of [orphan, mine, other]) await mkdir(join(d, 'inputs'), { recursive: true });
      assert.deepEqual(await sweepOrphanWorkDirs(root), [orphan]);
      assert.deepEqual((await readdir(root)).sort(), [
        `ablate-test-store-x`,
        `ablate-work-${process.pid}-train-1-abcd`,
      ]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('waits for cancelled work to stop, and abandons it after the grace period', async () => {
    const abort = new AbortController();
    let stopped = false;
    const work = new Promise<string>((resolve) =>
      abort.signal.addEventListener('abort', () =>
        setTimeout(() => {
          stopped = true;
          resolve('saved');
        }, 50),
      ),
    );
    abort.abort();
    assert.equal(await untilStopped(work, abort.signal, 5_000, () => assert.fail('abandoned')), 'saved');
    assert.ok(stopped);

    const stubborn = new AbortController();
    let abandoned = false;
    stubborn.abort(new Error('cancelled'));
    await assert.rejects(
      untilStopped(new Promise(() => undefined), stubborn.signal, 20, () => (abandoned = true)),
      /cancelled/,
    );
    assert.ok(abandoned);
  });
});
