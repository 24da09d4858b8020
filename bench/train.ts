/**
 * `npm run bench -- train [--json] [--steps N] [--backends wasm,wasm-1t,cpu,tensorflow]`: milliseconds
 * per training step (forward + backward + SGD update) of the demo models at 64 px, batch 16: the tiny
 * ResNet classifier (the `train.pretrain` step) and the detector (backbone + FPN-lite + CenterNet head +
 * loss, the `train.detector` step), on each backend that loads here. Each backend runs in its own
 * process (wasm threads are fixed per process, and memory is then per backend). Reports medians, the
 * forward-only time, the wasm-vs-cpu ratio, peak tensor bytes and RSS.
 * With --json the last line is one object keyed by backend: {"wasm": {"msPerStep": ...}, "cpu": ...}.
 */
import { spawnSync } from 'node:child_process';

import type * as TfType from '@tensorflow/tfjs';

import { initTrainingBackend, type BackendChoice } from '../activities/kinds/train/backend';
import { registerFastConvGradients } from '../activities/kinds/train/conv-grads';
import {
  buildTargets,
  createClassifier,
  createDetector,
  detectionLoss,
  type TargetBox,
} from '../activities/kinds/train/detector';
import { SgdMomentum } from '../activities/kinds/train/optimizer';
import { ParamSet } from '../activities/kinds/train/params';
import { createRng } from '../infra/prng';

type Tf = typeof TfType;

const argv = process.argv.slice(2);
const asJson = argv.includes('--json');
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const SIZE = 64;
const BATCH = 16;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

interface StepFigures {
  msPerStep: number;
  forwardMs: number;
  peakBytes: number;
}

/** Times `steps` SGD steps (after 2 warm-up steps) of a model on random data. */
async function timeSteps(tf: Tf, kind: 'backbone' | 'detector', steps: number): Promise<StepFigures> {
  const rng = createRng(1);
  const params = new ParamSet(tf);
  const x = tf.tensor4d(
    Float32Array.from({ length: BATCH * SIZE * SIZE * 3 }, () => rng.normal()),
    [BATCH, SIZE, SIZE, 3],
  );
  let loss: () => TfType.Scalar;
  let forward: () => TfType.Tensor;
  if (kind === 'backbone') {
    const model = createClassifier(tf, params, rng, {
      arch: 'tiny',
      norm: 'gn',
      normOptions: { groups: 8 },
      numClasses: 100,
    });
    const oneHot = tf
      .oneHot(
        tf.tensor1d(
          Array.from({ length: BATCH }, (_, i) => i % 100),
          'int32',
        ),
        100,
      )
      .toFloat();
    forward = () => model.apply(x, true);
    loss = () =>
      tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(model.apply(x, true))), 1))) as TfType.Scalar;
  } else {
    const det = createDetector(tf, params, rng, {
      arch: 'tiny',
      norm: 'gn',
      normOptions: { groups: 8 },
      numClasses: 4,
    });
    const objects: TargetBox[][] = Array.from({ length: BATCH }, (_, i) => [
      { box: [4 + i, 8, 20, 24], cls: i % 4 },
      { box: [30, 30, 16, 12], cls: (i + 1) % 4 },
    ]);
    forward = () => det.apply(x, true);
    loss = () => detectionLoss(tf, det.apply(x, true), buildTargets(objects, SIZE, 4));
  }
  const trainable = params.trainableNames().map((n) => params.get(n));
  const nameOf = new Map(params.trainableNames().map((n) => [params.get(n).name, n]));
  const opt = new SgdMomentum(tf, params);
  const step = () => {
    const { value, grads } = tf.variableGrads(loss, trainable);
    value.dataSync();
    opt.apply(new Map(Object.entries(grads).map(([k, g]) => [nameOf.get(k) ?? k, g])), 0.01);
    tf.dispose([value, ...Object.values(grads)]);
  };
  const profile = await tf.profile(step);
  step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  const fwd: number[] = [];
  for (let i = 0; i < Math.max(2, Math.min(steps, 5)); i++) {
    const t0 = performance.now();
    tf.tidy(() => forward().dataSync());
    fwd.push(performance.now() - t0);
  }
  opt.dispose();
  params.dispose();
  return { msPerStep: median(times), forwardMs: median(fwd), peakBytes: profile.peakBytes };
}

async function child(choice: string): Promise<void> {
  const backend = (choice === 'wasm-1t' ? 'wasm' : choice) as BackendChoice;
  const rt = await initTrainingBackend({ force: backend, wasmThreads: choice === 'wasm-1t' ? 1 : undefined });
  registerFastConvGradients(rt.tf);
  const steps = Number(arg('steps') ?? (rt.backend === 'cpu' ? 2 : 8));
  const backbone = await timeSteps(rt.tf, 'backbone', steps);
  const detector = await timeSteps(rt.tf, 'detector', steps);
  const out = {
    msPerStep: Math.round(detector.msPerStep),
    detectorMsPerStep: Math.round(detector.msPerStep),
    backboneMsPerStep: Math.round(backbone.msPerStep),
    detectorForwardMs: Math.round(detector.forwardMs),
    backboneForwardMs: Math.round(backbone.forwardMs),
    detectorPeakTensorMiB: +(detector.peakBytes / 1024 ** 2).toFixed(1),
    backbonePeakTensorMiB: +(backbone.peakBytes / 1024 ** 2).toFixed(1),
    rssMiB: Math.round(process.memoryUsage().rss / 1024 ** 2),
    threads: rt.threads,
    steps,
    tfjsVersion: rt.tfjsVersion,
  };
  console.log(JSON.stringify(out));
}

async function main(): Promise<void> {
  const childBackend = arg('child');
  if (childBackend) return child(childBackend);
  const backends = (arg('backends') ?? 'tensorflow,wasm,wasm-1t,cpu').split(',');
  const log = (s: string) => (asJson ? console.error(s) : console.log(s));
  log(`training step, tiny ResNet (GN) at ${SIZE} px, batch ${BATCH}: medians`);
  const results: Record<string, Record<string, number | string>> = {};
  for (const b of backends) {
    const extra = arg('steps') ? ['--steps', arg('steps') as string] : [];
    const r = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--child', b, ...extra], {
      encoding: 'utf8',
      env: { ...process.env, ABLATE_TFJS_BACKEND: '' },
    });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !last.startsWith('{')) {
      log(
        `  ${b}: not available (${(
          r.stderr
            .trim()
            .split('\n')
            .find((l) => /Error|Cannot/.test(l)) ?? `exit ${r.status}`
        ).slice(0, 160)})`,
      );
      continue;
    }
    const fig = JSON.parse(last) as Record<string, number>;
    results[b] = fig;
    log(
      `  ${b.padEnd(10)} detector ${fig.detectorMsPerStep} ms/step (forward ${fig.detectorForwardMs}), backbone ${fig.backboneMsPerStep} ms/step ` +
        `(forward ${fig.backboneForwardMs}), threads ${fig.threads}, peak tensors ${fig.detectorPeakTensorMiB} MiB, RSS ${fig.rssMiB} MiB`,
    );
  }
  const cpu = results.cpu;
  for (const [name, fig] of Object.entries(results)) {
    if (cpu && name !== 'cpu') {
      fig.detectorSpeedupVsCpu = +(
        (cpu.detectorMsPerStep as number) / (fig.detectorMsPerStep as number)
      ).toFixed(1);
      fig.backboneSpeedupVsCpu = +(
        (cpu.backboneMsPerStep as number) / (fig.backboneMsPerStep as number)
      ).toFixed(1);
      log(
        `  ${name} vs cpu: detector ${fig.detectorSpeedupVsCpu}x, backbone ${fig.backboneSpeedupVsCpu}x faster`,
      );
    }
  }
  if (asJson) console.log(JSON.stringify(results));
}

await main();
