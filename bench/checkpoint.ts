/**
 * `npm run bench -- checkpoint [--json] [--iterations N] [--every K]`: what checkpoints cost a training
 * step. Trains the demo detector (tiny arch, 64 px, batch 16, as `train.detector`'s defaults) through the
 * real step runner context with a checkpoint index, a checkpoint every K iterations, and times each
 * iteration from its heartbeat. Checkpoint cost = median time of a checkpointing iteration minus the
 * median of the others; the overhead at the default interval (100) is that cost over 100 iterations.
 * With --json the last line is one object: {msPerStep, checkpointMs, checkpointBytes, overheadPct}.
 */
import { median } from './_util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { createCheckpointIndex, stepCheckpoints } from '../activities/runtime/checkpoint-index';
import { datasetSynth } from '../activities/kinds/dataset/synth-kind';
import { runStepLocally } from '../activities/runtime/step-context';
import { trainDetector } from '../activities/kinds/train/train-detector';
import { DETECTOR_DEFAULTS } from '../infra/kinds/train-detector';
import { openStore } from '../infra/store/index';
import type { ArtifactRef } from '../workflows/plan-types';

const argv = process.argv.slice(2);
const asJson = argv.includes('--json');
const arg = (name: string, fallback: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const iterations = arg('iterations', 40);
const every = arg('every', 5);

const dir = await mkdtemp(join(tmpdir(), 'ablate-bench-ckpt-'));
try {
  const store = await openStore(pathToFileURL(join(dir, 'store')).href);
  const quiet = { info: () => undefined, warn: () => undefined };
  const data = await runStepLocally(
    datasetSynth,
    { task: 'detection', format: 'coco', images: 64, valImages: 8, seed: 1, size: 64, classes: 4 },
    { store, log: quiet },
  );
  const d = data.outputs as Record<string, ArtifactRef>;
  const index = createCheckpointIndex(store, 'bench');
  const times = new Map<number, number>();
  let last = performance.now();
  let checkpointBytes = 0;
  await runStepLocally(
    trainDetector,
    {
      ...DETECTOR_DEFAULTS,
      images: d.images!,
      train: d.train!,
      val: d.val!,
      init: 'scratch',
      norm: 'gn',
      schedule: '1x',
      baseIterations: iterations,
      checkpointEvery: every,
      evalEvery: 0,
    },
    {
      store,
      log: quiet,
      checkpoints: stepCheckpoints({ index, log: quiet }),
      onProgress: (p) => {
        const now = performance.now();
        if (p.iteration !== undefined) times.set(p.iteration, now - last);
        if (p.checkpoint) checkpointBytes = p.checkpoint.sizeBytes;
        last = now;
      },
    },
  );
  // The first iterations include warm-up (kernel compilation, caches): leave them out.
  const timed = [...times].filter(([i]) => i > 2 && i < iterations);
  const plain = median(timed.filter(([i]) => i % every !== 0).map(([, ms]) => ms));
  const withCheckpoint = median(timed.filter(([i]) => i % every === 0).map(([, ms]) => ms));
  const checkpointMs = Math.max(0, withCheckpoint - plain);
  const overheadPct = (100 * checkpointMs) / (DETECTOR_DEFAULTS.checkpointEvery * plain);
  const figures = {
    msPerStep: Math.round(plain * 10) / 10,
    checkpointMs: Math.round(checkpointMs * 10) / 10,
    checkpointBytes,
    defaultInterval: DETECTOR_DEFAULTS.checkpointEvery,
    overheadPct: Math.round(overheadPct * 1000) / 1000,
  };
  if (!asJson) {
    console.log(
      `step ${figures.msPerStep} ms, checkpoint ${figures.checkpointMs} ms (${(checkpointBytes / 1024).toFixed(0)} KiB): ` +
        `${figures.overheadPct}% of step time at one checkpoint per ${figures.defaultInterval} iterations`,
    );
  }
  console.log(JSON.stringify(figures));
} finally {
  await rm(dir, { recursive: true, force: true });
}
