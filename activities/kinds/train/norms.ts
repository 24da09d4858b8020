/**
 * Normalisation layers with closed-form backward passes: GroupNorm, BatchNorm with whole-batch or
 * per-simulated-replica statistics, and frozen BatchNorm.
 *
 * tfjs has no GroupNorm, and autodiff through `tf.moments` + `tf.batchNorm` costs ~2x the closed form
 * on wasm (many small kernels). Both norms here are one "grouped" normalisation: x [N,H,W,C] is viewed
 * as [B, L, C] (GN: B = N images, L = H*W; BN: B = replicas, L = images-per-replica * H*W), per-(b,c)
 * sums come from a batched `matMul(ones[B,1,L], x[B,L,C])` (fast on wasm, unlike transposed matMuls),
 * and channels are then summed within groups (GN: C/G channels per group; BN: one). With M elements per
 * group, mean mu, rstd r, and a = gamma*r, b = beta - mu*a, the forward is y = x*a + b; the backward is
 *
 *   S1 = sum_l dy,  S2 = sum_l dy*x,  U = S2 - mu*S1
 *   m1 = sum_{c in g} gamma_c*S1 / M,  m2 = r * sum_{c in g} gamma_c*U / M
 *   dx = a*dy - r^2*m2*x + (r^2*m2*mu - r*m1),   dgamma = sum_b r*U,   dbeta = sum_b S1
 *
 * The variance is one-pass (E[x^2] - mu^2, clamped at 0): fine for activations of He-initialised nets,
 * less robust than two-pass when |mean| >> std.
 *
 * Nothing here is synchronised across devices: one tfjs process is one replica (tfjs has no multi-GPU
 * data parallelism or cross-device all-reduce). `bn-batch` computes statistics over the whole batch
 * this process trains on (numerically what SyncBN computes for a global batch of that size, without any
 * synchronisation), and `bn-replica` reproduces the paper's per-GPU BN by computing them over groups of
 * `imagesPerReplica` images of that batch, as if each group were on its own GPU.
 */
import type * as TfType from '@tensorflow/tfjs';
import type { NormKind } from '../../../infra/kinds/train-knobs';

type Tf = typeof TfType;
type Tensor = TfType.Tensor;
type Tensor3D = TfType.Tensor3D;
type Tensor4D = TfType.Tensor4D;
type Variable = TfType.Variable;

/** The normalisations a model can use (the paper's axis, plus `none`). */
export type { NormKind } from '../../../infra/kinds/train-knobs';

/** Every norm kind, for schemas and messages. */
export const NORM_KINDS: readonly NormKind[] = ['gn', 'bn-batch', 'bn-replica', 'frozenbn', 'none'];

const EPS = 1e-5;
/** Running statistics: new = (1 - m) * old + m * batch (PyTorch's convention, m = 0.1). */
const BN_MOMENTUM = 0.1;

/** How a norm layer is configured. */
export interface NormOptions {
  /** GroupNorm groups: the largest divisor of the channel count not above this. @default 32 */
  groups?: number;
  /** `bn-replica`: images per simulated replica (the paper's per-GPU batch). @default 2 */
  imagesPerReplica?: number;
}

/** The variables of one norm layer, by role. Statistics are never trained. */
export interface NormParams {
  gamma?: Variable;
  beta?: Variable;
  mean?: Variable;
  variance?: Variable;
}

/** The number of GroupNorm groups used for `channels` channels. */
export function groupCount(channels: number, groups: number): number {
  for (let g = Math.min(groups, channels); g >= 1; g--) if (channels % g === 0) return g;
  return 1;
}

/**
 * Applies the norm. `training` selects batch statistics (and updates BN running statistics) versus
 * running statistics; GN behaves the same in both modes; frozen BN always uses the stored statistics
 * and passes gradients to x only.
 */
export function applyNorm(
  tf: Tf,
  kind: NormKind,
  x: Tensor4D,
  p: NormParams,
  training: boolean,
  options: NormOptions = {},
): Tensor4D {
  if (kind === 'none') return x;
  const gamma = p.gamma as Variable;
  const beta = p.beta as Variable;
  const [n, h, w, c] = x.shape;
  if (kind === 'gn') {
    return groupedNorm(tf, x, gamma, beta, n, h * w, groupCount(c, options.groups ?? 32));
  }
  if (kind === 'frozenbn' || !training) return frozenNorm(tf, x, p);
  const perReplica = kind === 'bn-batch' ? n : Math.min(options.imagesPerReplica ?? 2, n);
  if (n % perReplica !== 0) {
    throw new Error(
      `batch ${n} is not a multiple of the ${perReplica} images per replica that bn-replica uses`,
    );
  }
  const replicas = n / perReplica;
  return groupedNorm(tf, x, gamma, beta, replicas, perReplica * h * w, c, (mean, variance) => {
    // Running statistics: the replicas' batch statistics averaged (unbiased variance, as PyTorch keeps).
    const m = perReplica * h * w;
    const unbiased = m > 1 ? m / (m - 1) : 1;
    const pm = p.mean as Variable;
    const pv = p.variance as Variable;
    const bm = tf.mean(mean, 0).reshape(pm.shape);
    const bv = tf.mul(tf.mean(variance, 0), unbiased).reshape(pv.shape);
    pm.assign(tf.add(tf.mul(pm, 1 - BN_MOMENTUM), tf.mul(bm, BN_MOMENTUM)));
    pv.assign(tf.add(tf.mul(pv, 1 - BN_MOMENTUM), tf.mul(bv, BN_MOMENTUM)));
  });
}

/**
 * y = x*a + b with a, b from stored statistics. Frozen layers are not in the trained variable list, so
 * gradients reach x only. (a and b are left to the caller's tidy: the backward pass still needs a.)
 */
function frozenNorm(tf: Tf, x: Tensor4D, p: NormParams): Tensor4D {
  const a = tf.mul(p.gamma as Variable, tf.rsqrt(tf.add(p.variance as Variable, EPS)));
  const b = tf.sub(p.beta as Variable, tf.mul(p.mean as Variable, a));
  return tf.add<Tensor4D>(tf.mul(x, a), b);
}

/**
 * The shared closed-form normalisation over [B, L, C] with G channel groups. `onStats` receives the
 * per-(b,c) mean and (biased) variance, [B,1,C] each, inside the forward pass (BN running statistics).
 */
function groupedNorm(
  tf: Tf,
  x: Tensor4D,
  gamma: Variable,
  beta: Variable,
  b: number,
  l: number,
  g: number,
  onStats?: (mean: Tensor, variance: Tensor) => void,
): Tensor4D {
  const shape = x.shape;
  const c = shape[3];
  const perGroup = c / g;
  const m = l * perGroup;
  // Sum over the channels of each group and broadcast back to every channel: [B,1,C] -> [B,1,C].
  const groupSum = (t: Tensor): Tensor =>
    perGroup === 1
      ? t
      : tf.reshape(tf.tile(tf.sum(tf.reshape(t, [b, 1, g, perGroup]), 3, true), [1, 1, 1, perGroup]), [
          b,
          1,
          c,
        ]);

  const op = tf.customGrad((...args: Array<Tensor | TfType.GradSaveFunc>) => {
    const [xIn, gIn, bIn, save] = args as [Tensor, Tensor, Tensor, TfType.GradSaveFunc];
    const x3 = tf.reshape<TfType.Rank.R3>(xIn, [b, l, c]);
    const ones = tf.ones<TfType.Rank.R3>([b, 1, l]);
    const s1 = tf.matMul(ones, x3);
    const s2 = tf.matMul(ones, tf.square(x3));
    const mean = tf.div(groupSum(s1), m);
    const variance = tf.relu(tf.sub(tf.div(groupSum(s2), m), tf.square(mean)));
    const r = tf.rsqrt(tf.add(variance, EPS));
    const a = tf.mul(r, gIn);
    const shift = tf.sub(bIn, tf.mul(mean, a));
    const y = tf.reshape(tf.add(tf.mul(x3, a), shift), shape);
    if (onStats) onStats(mean, variance);
    save([x3, ones, mean, r, a, gIn]);
    return {
      value: y,
      gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
        const [sx, sOnes, sMean, sR, sA, sGamma] = saved as [
          Tensor3D,
          Tensor3D,
          Tensor,
          Tensor,
          Tensor,
          Tensor,
        ];
        const dy3 = tf.reshape<TfType.Rank.R3>(dy as Tensor, [b, l, c]);
        const ds1 = tf.matMul(sOnes, dy3);
        const ds2 = tf.matMul(sOnes, tf.mul<Tensor3D>(dy3, sx));
        const u = tf.sub(ds2, tf.mul(sMean, ds1));
        const m1 = tf.div(groupSum(tf.mul(sGamma, ds1)), m);
        const m2 = tf.mul(sR, tf.div(groupSum(tf.mul(sGamma, u)), m));
        const r2m2 = tf.mul(tf.square(sR), m2);
        const dx = tf.add(
          tf.sub(tf.mul(sA, dy3), tf.mul(r2m2, sx)),
          tf.sub(tf.mul(r2m2, sMean), tf.mul(sR, m1)),
        );
        const dGamma = tf.reshape(tf.sum(tf.mul(sR, u), [0, 1]), [c]);
        const dBeta = tf.reshape(tf.sum(ds1, [0, 1]), [c]);
        return [tf.reshape(dx, shape), dGamma, dBeta];
      },
    };
  });
  return op(x, gamma, beta) as Tensor4D;
}
