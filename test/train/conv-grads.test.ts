import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import type * as TfType from '@tensorflow/tfjs';

import { initTrainingBackend } from '../../activities/kinds/train/backend';
import { registerFastConvGradients } from '../../activities/kinds/train/conv-grads';
import { createRng } from '../../infra/prng';

type Tf = typeof TfType;
type Tensor = TfType.Tensor;
type Tensor4D = TfType.Tensor4D;

// The notes' 20 configurations: odd sizes, even and 1x1 kernels, strides 1 and 2, same and valid.
const SHAPES: Array<[h: number, w: number, k: number, cin: number, cout: number]> = [
  [7, 9, 3, 3, 5],
  [8, 8, 3, 4, 6],
  [11, 6, 1, 5, 3],
  [13, 13, 5, 2, 4],
  [9, 10, 2, 3, 3],
];
const CASES = SHAPES.flatMap((shape) =>
  [1, 2].flatMap((stride) => (['same', 'valid'] as const).map((pad) => ({ shape, stride, pad }))),
);
const TOLERANCE = 5e-5;

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

function randomArray(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
}

describe('fast Conv2D gradients', () => {
  let tf: Tf;
  before(async () => {
    tf = (await initTrainingBackend({ force: 'wasm' })).tf;
    registerFastConvGradients(tf);
  });

  for (const batch of [2, 1]) {
    it(`match the cpu backend's reference kernels on ${CASES.length} configurations (batch ${batch})`, async () => {
      let worst = { dx: 0, dw: 0 };
      for (const [i, { shape, stride, pad }] of CASES.entries()) {
        const [h, w, k, cin, cout] = shape;
        const xShape: [number, number, number, number] = [batch, h, w, cin];
        const wShape: [number, number, number, number] = [k, k, cin, cout];
        const xData = randomArray(batch * h * w * cin, 10 * i + 1);
        const wData = randomArray(k * k * cin * cout, 10 * i + 2);

        await initTrainingBackend({ force: 'cpu' });
        const yShape = tf.conv2d(tf.tensor4d(xData, xShape), tf.tensor4d(wData, wShape), stride, pad).shape;
        const dyData = randomArray(
          yShape.reduce((a, b) => a * b, 1),
          10 * i + 3,
        );
        // conv2dTranspose runs the cpu Conv2DBackpropInput kernel; the filter kernel has no public op.
        const refDx = tf
          .conv2dTranspose(tf.tensor4d(dyData, yShape), tf.tensor4d(wData, wShape), xShape, stride, pad)
          .dataSync();
        const refDw = tf
          .engine()
          .runKernel<Tensor>(
            'Conv2DBackpropFilter',
            { x: tf.tensor4d(xData, xShape), dy: tf.tensor4d(dyData, yShape) },
            { strides: stride, pad, dataFormat: 'NHWC', filterShape: wShape },
          )
          .dataSync();

        for (const backend of ['wasm', 'cpu'] as const) {
          await initTrainingBackend({ force: backend });
          const [dx, dw] = tf.tidy(() => {
            const g = tf.grads((x: Tensor, f: Tensor) =>
              tf.conv2d(x as Tensor4D, f as Tensor4D, stride, pad),
            );
            return g([tf.tensor4d(xData, xShape), tf.tensor4d(wData, wShape)], tf.tensor4d(dyData, yShape));
          }) as [Tensor, Tensor];
          assert.deepEqual(dx.shape, xShape);
          assert.deepEqual(dw.shape, wShape);
          const ex = maxAbsDiff(dx.dataSync() as Float32Array, refDx as Float32Array);
          const ew = maxAbsDiff(dw.dataSync() as Float32Array, refDw as Float32Array);
          dx.dispose();
          dw.dispose();
          const where = `${backend} ${h}x${w} k${k} ${cin}->${cout} s${stride} ${pad}`;
          assert.ok(ex <= TOLERANCE, `dInput off by ${ex} on ${where}`);
          assert.ok(ew <= TOLERANCE, `dFilter off by ${ew} on ${where}`);
          worst = { dx: Math.max(worst.dx, ex), dw: Math.max(worst.dw, ew) };
        }
      }
      await initTrainingBackend({ force: 'wasm' });
      console.log(
        `worst max abs error (batch ${batch}): dInput ${worst.dx.toExponential(2)}, dFilter ${worst.dw.toExponential(2)}`,
      );
    });
  }

  it('leaves dilated convolutions to the built-in gradient', async () => {
    await initTrainingBackend({ force: 'cpu' });
    // The built-in gradient refuses dilation > 1; ours must not silently take that path.
    assert.throws(
      () =>
        tf.grads((x: Tensor) => tf.conv2d(x as Tensor4D, tf.ones([3, 3, 1, 1]), 1, 'same', 'NHWC', 2))([
          tf.ones([1, 8, 8, 1]),
        ]),
      /dilation rates greater than 1/,
    );
    await initTrainingBackend({ force: 'wasm' });
  });
});
