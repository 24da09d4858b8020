import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import type * as TfType from '@tensorflow/tfjs';

import { initTrainingBackend } from '../../activities/kinds/train/backend';
import { applyNorm, groupCount, type NormKind } from '../../activities/kinds/train/norms';
import { createRng } from '../../infra/prng';

type Tf = typeof TfType;
type Tensor = TfType.Tensor;
type Tensor4D = TfType.Tensor4D;

const TOLERANCE = 2e-5;

function maxAbsDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs((x[i] as number) - (y[i] as number)));
  return m;
}

/** GroupNorm / per-replica BN written with tf.moments, differentiated by tfjs autodiff: the reference. */
function referenceNorm(
  tf: Tf,
  x: Tensor4D,
  gamma: Tensor,
  beta: Tensor,
  kind: NormKind,
  groups: number,
  perReplica: number,
): Tensor {
  const [n, h, w, c] = x.shape;
  if (kind === 'gn') {
    const g = groupCount(c, groups);
    const xg = tf.reshape(x, [n, h * w, g, c / g]);
    const { mean, variance } = tf.moments(xg, [1, 3], true);
    const xn = tf.reshape(tf.div(tf.sub(xg, mean), tf.sqrt(tf.add(variance, 1e-5))), [n, h, w, c]);
    return tf.add(tf.mul(xn, gamma), beta);
  }
  const r = n / perReplica;
  const xr = tf.reshape(x, [r, perReplica * h * w, c]);
  const { mean, variance } = tf.moments(xr, [1], true);
  const xn = tf.reshape(tf.div(tf.sub(xr, mean), tf.sqrt(tf.add(variance, 1e-5))), [n, h, w, c]);
  return tf.add(tf.mul(xn, gamma), beta);
}

describe('closed-form norms', () => {
  let tf: Tf;
  before(async () => {
    tf = (await initTrainingBackend({ force: 'wasm' })).tf;
  });

  const cases: Array<{
    kind: NormKind;
    groups: number;
    perReplica: number;
    shape: [number, number, number, number];
  }> = [
    { kind: 'gn', groups: 4, perReplica: 0, shape: [2, 5, 7, 8] },
    { kind: 'gn', groups: 32, perReplica: 0, shape: [1, 3, 3, 12] },
    { kind: 'bn-batch', groups: 0, perReplica: 4, shape: [4, 5, 3, 6] },
    { kind: 'bn-replica', groups: 0, perReplica: 2, shape: [4, 5, 3, 6] },
  ];
  for (const { kind, groups, perReplica, shape } of cases) {
    it(`${kind} ${shape.join('x')}: y, dx, dgamma and dbeta match autodiff of the composed ops`, () => {
      const rng = createRng(7);
      const c = shape[3];
      const size = shape.reduce((a, b) => a * b, 1);
      // A non-zero mean per channel, as real activations have.
      const xData = Float32Array.from({ length: size }, (_, i) => 2 * rng.normal() + (i % c) * 0.3);
      const x = tf.tensor4d(xData, shape);
      const gamma = tf.variable(tf.tensor1d(Array.from({ length: c }, () => 1 + 0.5 * rng.normal())));
      const beta = tf.variable(tf.tensor1d(Array.from({ length: c }, () => rng.normal())));
      const mean = tf.variable(tf.zeros([c]), false);
      const variance = tf.variable(tf.ones([c]), false);
      const dy = tf.tensor4d(
        Float32Array.from({ length: size }, () => rng.normal()),
        shape,
      );
      const options = { groups, imagesPerReplica: perReplica };

      const ours = tf.grads((xi: Tensor, g: Tensor, b: Tensor) =>
        applyNorm(
          tf,
          kind,
          xi as Tensor4D,
          { gamma: g as never, beta: b as never, mean, variance },
          true,
          options,
        ),
      );
      const ref = tf.grads((xi: Tensor, g: Tensor, b: Tensor) =>
        referenceNorm(tf, xi as Tensor4D, g, b, kind, groups, perReplica),
      );
      const y1 = applyNorm(tf, kind, x, { gamma, beta, mean, variance }, true, options);
      const y2 = referenceNorm(tf, x, gamma, beta, kind, groups, perReplica);
      const g1 = ours([x, gamma, beta], dy);
      const g2 = ref([x, gamma, beta], dy);
      assert.ok(maxAbsDiff(y1, y2) < TOLERANCE, `y differs by ${maxAbsDiff(y1, y2)}`);
      ['dx', 'dgamma', 'dbeta'].forEach((name, i) => {
        const e = maxAbsDiff(g1[i] as Tensor, g2[i] as Tensor);
        assert.ok(e < TOLERANCE * 10, `${name} differs by ${e}`);
      });
    });
  }

  it('bn-batch updates running statistics from the batch, and frozenbn uses them without training them', () => {
    const x = tf.tensor4d(
      Float32Array.from({ length: 2 * 4 * 4 * 3 }, (_, i) => (i % 3) + 1),
      [2, 4, 4, 3],
    );
    const p = {
      gamma: tf.variable(tf.ones([3])),
      beta: tf.variable(tf.zeros([3])),
      mean: tf.variable(tf.zeros([3]), false),
      variance: tf.variable(tf.ones([3]), false),
    };
    applyNorm(tf, 'bn-batch', x, p, true);
    // The channel means are 1, 2, 3 with zero variance: 10% of the way from (0, 1).
    assert.deepEqual(
      Array.from(p.mean.dataSync()).map((v) => +v.toFixed(5)),
      [0.1, 0.2, 0.3],
    );
    assert.deepEqual(
      Array.from(p.variance.dataSync()).map((v) => +v.toFixed(5)),
      [0.9, 0.9, 0.9],
    );
    const frozen = applyNorm(tf, 'frozenbn', x, p, true).dataSync();
    assert.ok(Math.abs((frozen[0] as number) - (1 - 0.1) / Math.sqrt(0.9 + 1e-5)) < 1e-5);
  });

  it('refuses a batch that does not split into replicas', () => {
    const p = {
      gamma: tf.variable(tf.ones([2])),
      beta: tf.variable(tf.zeros([2])),
      mean: tf.variable(tf.zeros([2])),
      variance: tf.variable(tf.ones([2])),
    };
    assert.throws(
      () => applyNorm(tf, 'bn-replica', tf.ones([3, 2, 2, 2]), p, true, { imagesPerReplica: 2 }),
      /batch 3 is not a multiple of the 2 images per replica/,
    );
  });
});
