/**
 * The detector: a ResNet backbone, an FPN-lite neck and a CenterNet-style ("Objects as Points") head at
 * stride 4, with dense targets, the CenterNet losses and a decoder to COCO-style detections.
 *
 *  - Neck: 1x1 laterals (with bias) from every stage of stride >= 4, summed top-down with nearest 2x
 *    upsampling into one map at stride 4. The upsampling is written with reshape + concat: tfjs's Tile
 *    gradient fails for rank 6, and wasm lacks ResizeNearestNeighborGrad's fast path.
 *  - Head: 3x3 conv + norm + ReLU, then a 1x1 conv to K + 4 channels: K heatmap logits (bias -2.19,
 *    prior 0.1), log(w, h / stride) and the sub-pixel centre offset.
 *  - Targets are dense tensors built on the host (no `gather`: its gradient needs UnsortedSegmentSum,
 *    which wasm lacks): a Gaussian heatmap per class (sigma = max(0.5, min(w,h)/stride/6)), a centre
 *    mask, and size/offset maps at the centres.
 *  - Loss = penalty-reduced focal loss (alpha 2, beta 4) / #objects + 0.1 * L1(size) + L1(offset).
 *  - Decode: sigmoid, 3x3 local-maximum test, top 100 over classes and positions; no NMS.
 */
import type * as TfType from '@tensorflow/tfjs';

import type { NormKind, NormOptions } from './norms';
import { filledArray, heNormal, normalArray, type ParamSet } from './params';
import { addNorm, createBackbone, normLayer, type ArchName, type Backbone } from './resnet';
import type { Rng } from '../../../infra/prng';

type Tf = typeof TfType;
type Tensor4D = TfType.Tensor4D;
type Scalar = TfType.Scalar;

/** The output stride of the head. */
export const HEAD_STRIDE = 4;
const HEATMAP_PRIOR = 0.1;

/** What the detector is built from. */
export interface DetectorOptions {
  arch: ArchName;
  width?: number;
  norm: NormKind;
  normOptions?: NormOptions;
  numClasses: number;
  /** Channels of the neck and head. @default 4 x width for tiny (64), 256 otherwise */
  neckWidth?: number;
}

/** A built detector. */
export interface Detector {
  backbone: Backbone;
  numClasses: number;
  /** Raw head output [N, H/4, W/4, K+4]. */
  apply(x: Tensor4D, training: boolean): Tensor4D;
}

/**
 * The norm of the neck and head. Frozen BN has nothing to freeze in new layers, so they then have none,
 * as Detectron's frozen-BN baselines.
 */
function headNormOf(norm: NormKind): NormKind {
  return norm === 'frozenbn' ? 'none' : norm;
}

/** Creates the detector's variables (backbone under `backbone.`, the rest under `neck.` and `head.`). */
export function createDetector(tf: Tf, params: ParamSet, rng: Rng, options: DetectorOptions): Detector {
  const backbone = createBackbone(tf, params, rng, {
    arch: options.arch,
    width: options.width,
    norm: options.norm,
    normOptions: options.normOptions,
  });
  const k = options.numClasses;
  const neck = options.neckWidth ?? (options.arch === 'tiny' ? 4 * (options.width ?? 16) : 256);
  const headNorm = headNormOf(options.norm);
  const levels = backbone.outputs.map((o, i) => ({ ...o, index: i })).filter((o) => o.stride >= HEAD_STRIDE);
  if (levels[0]?.stride !== HEAD_STRIDE)
    throw new Error(`backbone ${options.arch} has no stride-${HEAD_STRIDE} stage`);
  for (const l of levels) {
    params.add(
      `neck.lateral${l.stride}.w`,
      [1, 1, l.channels, neck],
      heNormal(rng, [1, 1, l.channels, neck]),
      { decay: true },
    );
    params.add(`neck.lateral${l.stride}.b`, [neck], filledArray([neck], 0));
  }
  params.add('head.conv.w', [3, 3, neck, neck], heNormal(rng, [3, 3, neck, neck]), { decay: true });
  if (headNorm === 'none') params.add('head.conv.b', [neck], filledArray([neck], 0));
  addNorm(params, 'head.norm', headNorm, neck);
  params.add('head.out.w', [1, 1, neck, k + 4], normalArray(rng, [1, 1, neck, k + 4], 0.01), { decay: true });
  const bias = filledArray([k + 4], 0);
  bias.fill(-Math.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR), 0, k);
  params.add('head.out.b', [k + 4], bias);

  const conv = (x: Tensor4D, name: string, bias: boolean, stride = 1): Tensor4D => {
    const y = tf.conv2d(x, params.get(`${name}.w`) as unknown as Tensor4D, stride, 'same');
    return bias ? tf.add<Tensor4D>(y, params.get(`${name}.b`)) : y;
  };
  const apply = (x: Tensor4D, training: boolean): Tensor4D => {
    const features = backbone.apply(x, training);
    let p: Tensor4D | undefined;
    for (const l of [...levels].reverse()) {
      const lateral = conv(features[l.index]?.tensor as Tensor4D, `neck.lateral${l.stride}`, true);
      p = p ? tf.add<Tensor4D>(upsample2x(tf, p), lateral) : lateral;
    }
    let h = conv(p as Tensor4D, 'head.conv', headNorm === 'none');
    h = tf.relu(normLayer(tf, params, 'head.norm', headNorm, h, training, options.normOptions ?? {}));
    return conv(h, 'head.out', true);
  };
  return { backbone, numClasses: k, apply };
}

/** Nearest-neighbour 2x upsampling from reshapes and concats (their gradients are slices). */
export function upsample2x(tf: Tf, x: Tensor4D): Tensor4D {
  const [n, h, w, c] = x.shape;
  const cols = tf.reshape(x, [n * h, w, 1, c]);
  const wide = tf.reshape(tf.concat([cols, cols], 2), [n, h, 1, 2 * w * c]);
  return tf.reshape(tf.concat([wide, wide], 2), [n, 2 * h, 2 * w, c]);
}

/** One ground-truth object in network-input pixels. */
export interface TargetBox {
  /** [x, y, w, h], top-left corner and size, input pixels. */
  box: [number, number, number, number];
  /** Contiguous class index 0..K-1. */
  cls: number;
}

/** Dense targets for a batch, host arrays in NHWC order. */
export interface DenseTargets {
  heatmap: Float32Array;
  /** (1 - heatmap)^4: the focal loss's penalty reduction around centres. */
  negWeight: Float32Array;
  mask: Float32Array;
  size: Float32Array;
  offset: Float32Array;
  numObjects: number;
  shape: { n: number; h: number; w: number; k: number };
}

/** Builds dense CenterNet targets for a batch of images of `inputSize` x `inputSize`. */
export function buildTargets(objects: TargetBox[][], inputSize: number, numClasses: number): DenseTargets {
  const n = objects.length;
  const h = Math.ceil(inputSize / HEAD_STRIDE);
  const w = h;
  const k = numClasses;
  const heatmap = new Float32Array(n * h * w * k);
  const mask = new Float32Array(n * h * w);
  const size = new Float32Array(n * h * w * 2);
  const offset = new Float32Array(n * h * w * 2);
  let numObjects = 0;
  objects.forEach((list, b) => {
    for (const { box, cls } of list) {
      const [bx, by, bw, bh] = box;
      if (bw <= 0 || bh <= 0 || cls < 0 || cls >= k) continue;
      const cx = (bx + bw / 2) / HEAD_STRIDE;
      const cy = (by + bh / 2) / HEAD_STRIDE;
      const ix = Math.min(w - 1, Math.max(0, Math.floor(cx)));
      const iy = Math.min(h - 1, Math.max(0, Math.floor(cy)));
      const sigma = Math.max(0.5, Math.min(bw, bh) / HEAD_STRIDE / 6);
      const radius = Math.ceil(3 * sigma);
      for (let y = Math.max(0, iy - radius); y <= Math.min(h - 1, iy + radius); y++) {
        for (let x = Math.max(0, ix - radius); x <= Math.min(w - 1, ix + radius); x++) {
          const v = Math.exp(-((x - ix) ** 2 + (y - iy) ** 2) / (2 * sigma * sigma));
          const at = ((b * h + y) * w + x) * k + cls;
          if (v > (heatmap[at] as number)) heatmap[at] = v;
        }
      }
      const cell = (b * h + iy) * w + ix;
      heatmap[cell * k + cls] = 1;
      if (mask[cell] === 0) numObjects++;
      mask[cell] = 1;
      size[cell * 2] = Math.log(bw / HEAD_STRIDE);
      size[cell * 2 + 1] = Math.log(bh / HEAD_STRIDE);
      offset[cell * 2] = cx - ix;
      offset[cell * 2 + 1] = cy - iy;
    }
  });
  const negWeight = new Float32Array(heatmap.length);
  for (let i = 0; i < heatmap.length; i++) negWeight[i] = (1 - (heatmap[i] as number)) ** 4;
  return { heatmap, negWeight, mask, size, offset, numObjects, shape: { n, h, w, k } };
}

/** The CenterNet loss of a raw head output against dense targets (a scalar, inside the caller's tidy). */
export function detectionLoss(tf: Tf, out: Tensor4D, t: DenseTargets): Scalar {
  const { n, h, w, k } = t.shape;
  const [logits, sizePred, offsetPred] = tf.split(out, [k, 2, 2], 3);
  const heat = tf.tensor4d(t.heatmap, [n, h, w, k]);
  const negW = tf.tensor4d(t.negWeight, [n, h, w, k]);
  const centre = tf.tensor4d(t.mask, [n, h, w, 1]);
  const pos = tf.mul(heat, tf.equal(heat, 1).toFloat());
  const p = tf.sigmoid(logits as Tensor4D);
  // log p = -softplus(-z), log(1 - p) = -softplus(z): stable for large |z|.
  const posLoss = tf.sum(
    tf.mul(tf.mul(pos, tf.square(tf.sub(1, p))), tf.softplus(tf.neg(logits as Tensor4D))),
  );
  const negLoss = tf.sum(
    tf.mul(tf.mul(tf.sub(1, pos), negW), tf.mul(tf.square(p), tf.softplus(logits as Tensor4D))),
  );
  const norm = Math.max(1, t.numObjects);
  const sizeLoss = tf.sum(
    tf.mul(centre, tf.abs(tf.sub(sizePred as Tensor4D, tf.tensor4d(t.size, [n, h, w, 2])))),
  );
  const offLoss = tf.sum(
    tf.mul(centre, tf.abs(tf.sub(offsetPred as Tensor4D, tf.tensor4d(t.offset, [n, h, w, 2])))),
  );
  return tf.div<Scalar>(tf.add(tf.add(posLoss, negLoss), tf.add(tf.mul(sizeLoss, 0.1), offLoss)), norm);
}

/** One detection in network-input pixels. */
export interface Detection {
  /** [x, y, w, h] */
  box: [number, number, number, number];
  score: number;
  cls: number;
}

/** Decodes a raw head output (host copy, NHWC, [n, h, w, k+4]) into at most `topK` detections per image. */
export function decodeDetections(
  data: Float32Array,
  shape: [number, number, number, number],
  numClasses: number,
  inputSize: number,
  topK = 100,
): Detection[][] {
  const [n, h, w, ch] = shape;
  const k = numClasses;
  const out: Detection[][] = [];
  for (let b = 0; b < n; b++) {
    const score = (y: number, x: number, c: number) =>
      1 / (1 + Math.exp(-(data[((b * h + y) * w + x) * ch + c] as number)));
    const cands: Array<{ s: number; y: number; x: number; c: number }> = [];
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < k; c++) {
          const s = score(y, x, c);
          let peak = true;
          for (let dy = -1; dy <= 1 && peak; dy++) {
            for (let dx = -1; dx <= 1; dx++) {
              const yy = y + dy;
              const xx = x + dx;
              if ((dy || dx) && yy >= 0 && yy < h && xx >= 0 && xx < w && score(yy, xx, c) > s) {
                peak = false;
                break;
              }
            }
          }
          if (peak) cands.push({ s, y, x, c });
        }
      }
    }
    cands.sort((a, b2) => b2.s - a.s || a.y - b2.y || a.x - b2.x || a.c - b2.c);
    out.push(
      cands.slice(0, topK).map(({ s, y, x, c }) => {
        const at = ((b * h + y) * w + x) * ch + k;
        const bw = Math.exp(data[at] as number) * HEAD_STRIDE;
        const bh = Math.exp(data[at + 1] as number) * HEAD_STRIDE;
        const cx = (x + (data[at + 2] as number)) * HEAD_STRIDE;
        const cy = (y + (data[at + 3] as number)) * HEAD_STRIDE;
        const x0 = Math.max(0, cx - bw / 2);
        const y0 = Math.max(0, cy - bh / 2);
        const x1 = Math.min(inputSize, cx + bw / 2);
        const y1 = Math.min(inputSize, cy + bh / 2);
        return { box: [x0, y0, Math.max(0, x1 - x0), Math.max(0, y1 - y0)], score: s, cls: c };
      }),
    );
  }
  return out;
}

/** The classifier for pre-training: backbone, global average pooling, one linear layer. */
export interface Classifier {
  backbone: Backbone;
  /** Logits [N, classes]. */
  apply(x: Tensor4D, training: boolean): TfType.Tensor2D;
}

/** Creates a classifier (backbone under `backbone.`, the linear layer under `classifier.`). */
export function createClassifier(
  tf: Tf,
  params: ParamSet,
  rng: Rng,
  options: { arch: ArchName; width?: number; norm: NormKind; normOptions?: NormOptions; numClasses: number },
): Classifier {
  const backbone = createBackbone(tf, params, rng, options);
  const c = backbone.outputs[backbone.outputs.length - 1]?.channels ?? 0;
  params.add('classifier.w', [c, options.numClasses], normalArray(rng, [c, options.numClasses], 0.01), {
    decay: true,
  });
  params.add('classifier.b', [options.numClasses], filledArray([options.numClasses], 0));
  return {
    backbone,
    apply(x, training) {
      const features = backbone.apply(x, training);
      const last = features[features.length - 1]?.tensor as Tensor4D;
      const pooled = tf.mean<TfType.Tensor2D>(last, [1, 2]);
      return tf.add<TfType.Tensor2D>(
        tf.matMul(pooled, params.get('classifier.w')),
        params.get('classifier.b'),
      );
    },
  };
}
