/**
 * Fast, exact Conv2D gradients for the tfjs `wasm` and `cpu` backends: the one place where ablate
 * replaces a tfjs gradient.
 *
 * Why: tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter kernel at all, and its Conv2DBackpropInput is
 * 8-13x slower than a forward conv; the cpu backend's Conv2DBackpropFilter is ~30x slower than a
 * forward conv. Both gradients can be written as *forward* convolutions, which every backend runs fast
 * (XNNPACK on wasm):
 *
 *  - dInput: forward conv of dy, zero-dilated by the stride and padded, with the filter rotated by 180
 *    degrees and its in/out channels swapped. The zero-dilation is one pad of a rank-6 view of dy
 *    (s-1 zeros *before* each element), so the leading pad is `k-1-padTop-(s-1)`; a negative pad crops.
 *    On the cpu backend the native Conv2DBackpropInput is already fine and is used instead.
 *  - dFilter: the "conv identity": dW[a,b,c,o] = sum_{n,i,j} xpad[n, i*s+a, j*s+b, c] * dy[n,i,j,o]
 *    is a forward conv with *dilation* s in which the batch plays the role of channels: input
 *    transpose(xpad) [C,Hp,Wp,N], filter transpose(dy) [OH,OW,N,O], output [C,>=k,>=k,O], sliced to k.
 *
 * Only dilation-1 NHWC convolutions with 'same'/'valid'/numeric padding take the fast path; anything
 * else, and every other backend (the native `tensorflow` backends have fast kernels), goes to the
 * gradient tfjs registered. Registration is global (tfjs keeps one gradient per kernel name), so the
 * backend is checked when the gradient runs, not when it is registered. Models must call `tf.conv2d`
 * with variables, not `tf.layers`: layers use the fused conv op, whose gradient bypasses this one.
 */
import type * as TfType from '@tensorflow/tfjs';

type Tf = typeof TfType;
type Tensor4D = TfType.Tensor4D;

const FAST_BACKENDS = new Set(['wasm', 'cpu']);
let registered = false;

/** Registers the fast Conv2D gradient once per process. Safe to call repeatedly. */
export function registerFastConvGradients(tf: Tf): void {
  if (registered) return;
  const builtin = tf.getGradient('Conv2D');
  tf.registerGradient({
    kernelName: 'Conv2D',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved as [Tensor4D, Tensor4D];
      const a = attrs as unknown as {
        strides: number | [number, number];
        pad: unknown;
        dataFormat: string;
        dilations: number | [number, number];
        dimRoundingMode?: 'floor' | 'round' | 'ceil';
      };
      const dil = typeof a.dilations === 'number' ? [a.dilations, a.dilations] : a.dilations;
      const simplePad = a.pad === 'same' || a.pad === 'valid' || typeof a.pad === 'number';
      if (
        !FAST_BACKENDS.has(tf.getBackend()) ||
        dil[0] !== 1 ||
        dil[1] !== 1 ||
        a.dataFormat !== 'NHWC' ||
        !simplePad
      ) {
        return builtin.gradFunc(dy, saved, attrs);
      }
      const info = tf.backend_util.computeConv2DInfo(
        x.shape,
        filter.shape,
        a.strides,
        1,
        a.pad as 'same' | 'valid' | number,
        a.dimRoundingMode,
      );
      const dy4 = dy as Tensor4D;
      return {
        x: () =>
          tf.getBackend() === 'cpu'
            ? tf.conv2dTranspose(
                dy4,
                filter,
                x.shape,
                a.strides,
                a.pad as 'same' | 'valid' | number,
                a.dimRoundingMode,
              )
            : conv2dInputGrad(tf, dy4, filter, x.shape, info),
        filter: () => conv2dFilterGrad(tf, x, dy4, info),
      };
    },
  });
  registered = true;
}

type ConvInfo = ReturnType<Tf['backend_util']['computeConv2DInfo']>;

/** dInput as a forward conv of the zero-dilated, padded dy with the rotated, channel-swapped filter. */
export function conv2dInputGrad(
  tf: Tf,
  dy: Tensor4D,
  filter: Tensor4D,
  xShape: [number, number, number, number],
  info: ConvInfo,
): Tensor4D {
  return tf.tidy(() => {
    const [n, oh, ow, o] = dy.shape;
    const [, h, w] = xShape;
    const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
    let d: Tensor4D = dy;
    if (sh > 1 || sw > 1) {
      // One PadV2 of a rank-6 view inserts the zeros: element i lands at i*s + (s-1).
      const view = tf.reshape(dy, [n, oh, 1, ow, 1, o]);
      const padded = tf.pad(view, [
        [0, 0],
        [0, 0],
        [sh - 1, 0],
        [0, 0],
        [sw - 1, 0],
        [0, 0],
      ]);
      d = tf.reshape(padded, [n, oh * sh, ow * sw, o]);
    }
    d = padOrCrop(tf, d, 1, kh - 1 - info.padInfo.top - (sh - 1), h + kh - 1);
    d = padOrCrop(tf, d, 2, kw - 1 - info.padInfo.left - (sw - 1), w + kw - 1);
    return tf.conv2d(d, rotateSwapFilter(tf, filter), 1, 'valid');
  });
}

/**
 * Pads `before` zeros in front of `axis` (or crops if negative), then pads or crops the end so the axis
 * has exactly `length` entries.
 */
function padOrCrop(tf: Tf, t: Tensor4D, axis: 1 | 2, before: number, length: number): Tensor4D {
  if (before < 0) {
    const begin = [0, 0, 0, 0];
    begin[axis] = -before;
    t = tf.slice(t, begin, [-1, -1, -1, -1]);
    before = 0;
  }
  const after = length - before - (t.shape[axis] ?? 0);
  if (after < 0) {
    const size = [-1, -1, -1, -1];
    size[axis] = length - before;
    t = tf.slice(t, [0, 0, 0, 0], size);
  }
  if (before > 0 || after > 0) {
    const pads: Array<[number, number]> = [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ];
    pads[axis] = [before, Math.max(0, after)];
    t = tf.pad(t, pads);
  }
  return t;
}

/**
 * [kh,kw,C,O] -> [kh,kw,O,C] rotated by 180 degrees, in one JS pass over the host copy: cheaper on
 * wasm than a Reverse plus a Transpose kernel, and filters are small.
 */
function rotateSwapFilter(tf: Tf, filter: Tensor4D): Tensor4D {
  const [kh, kw, c, o] = filter.shape;
  const src = filter.dataSync();
  const dst = new Float32Array(src.length);
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const from = ((kh - 1 - a) * kw + (kw - 1 - b)) * c * o;
      const to = (a * kw + b) * o * c;
      for (let ci = 0; ci < c; ci++) {
        for (let oi = 0; oi < o; oi++) dst[to + oi * c + ci] = src[from + ci * o + oi] as number;
      }
    }
  }
  return tf.tensor4d(dst, [kh, kw, o, c]);
}

/** dFilter by the conv identity: a dilated forward conv in which the batch plays the channels. */
export function conv2dFilterGrad(tf: Tf, x: Tensor4D, dy: Tensor4D, info: ConvInfo): Tensor4D {
  return tf.tidy(() => {
    const { top, bottom, left, right } = info.padInfo;
    const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
    const c = x.shape[3];
    const o = dy.shape[3];
    const xp =
      top || bottom || left || right
        ? tf.pad(x, [
            [0, 0],
            [top, bottom],
            [left, right],
            [0, 0],
          ])
        : x;
    const input = tf.transpose(xp, [3, 1, 2, 0]); // [C, Hp, Wp, N]
    const kernel = tf.transpose(dy, [1, 2, 0, 3]); // [OH, OW, N, O]
    let dw: Tensor4D = tf.conv2d(input, kernel, 1, 'valid', 'NHWC', [sh, sw]); // [C, >=kh, >=kw, O]
    if (dw.shape[1] !== kh || dw.shape[2] !== kw) dw = tf.slice(dw, [0, 0, 0, 0], [c, kh, kw, o]);
    return tf.transpose(dw, [1, 2, 0, 3]);
  });
}
