/**
 * ResNet backbones built from `tf.conv2d` and variables (not `tf.layers`, whose fused conv would bypass
 * the fast gradients of conv-grads.ts), He-initialised, with a selectable normalisation.
 *
 *  - `tiny`: the CPU demo net: 3x3 stride-2 stem, four stages of one basic block each (widths w, 2w,
 *    4w, 8w; w = 16 by default), stage strides 2, 4, 8, 16.
 *  - `r50` / `r101`: the paper's shapes: 7x7 stride-2 stem + 3x3 max-pool, bottleneck stages of
 *    [3,4,6,3] / [3,4,23,3] blocks, widths 256..2048, stage strides 4, 8, 16, 32 (the stride sits on the
 *    3x3 conv, as in torchvision and Detectron2).
 *
 * Every conv is followed by the norm layer (conv has no bias then) and ReLU; a block's shortcut is a 1x1
 * conv + norm where the shape changes.
 */
import type * as TfType from '@tensorflow/tfjs';

import { applyNorm, type NormKind, type NormOptions } from './norms';
import { filledArray, heNormal, type ParamSet } from './params';
import type { Rng } from '../../../infra/prng';
import type { ArchName } from '../../../infra/kinds/train-knobs';

type Tf = typeof TfType;
type Tensor4D = TfType.Tensor4D;

/** The backbone sizes ablate knows. */
export type { ArchName } from '../../../infra/kinds/train-knobs';

export const ARCH_NAMES: readonly ArchName[] = ['tiny', 'r50', 'r101'];

/** What a backbone is made of. */
export interface ArchSpec {
  name: ArchName;
  stemKernel: number;
  stemWidth: number;
  stemMaxPool: boolean;
  block: 'basic' | 'bottleneck';
  /** Output channels of each stage. */
  widths: number[];
  /** Blocks per stage. */
  blocks: number[];
}

/** The spec of an arch; `width` overrides the base width (tiny: first stage; rN: the stem, 64). */
export function archSpec(name: ArchName, width?: number): ArchSpec {
  if (name === 'tiny') {
    const w = width ?? 16;
    return {
      name,
      stemKernel: 3,
      stemWidth: w,
      stemMaxPool: false,
      block: 'basic',
      widths: [w, 2 * w, 4 * w, 8 * w],
      blocks: [1, 1, 1, 1],
    };
  }
  const w = width ?? 64;
  return {
    name,
    stemKernel: 7,
    stemWidth: w,
    stemMaxPool: true,
    block: 'bottleneck',
    widths: [4 * w, 8 * w, 16 * w, 32 * w],
    blocks: name === 'r50' ? [3, 4, 6, 3] : [3, 4, 23, 3],
  };
}

/** One stage's output. */
export interface FeatureMap {
  /** Total stride relative to the input. */
  stride: number;
  channels: number;
  tensor: Tensor4D;
}

/** A built backbone. */
export interface Backbone {
  spec: ArchSpec;
  norm: NormKind;
  /** The strides and channels of the stage outputs, shallow to deep. */
  outputs: Array<{ stride: number; channels: number }>;
  /** Runs the net; returns the stage outputs shallow to deep. */
  apply(x: Tensor4D, training: boolean): FeatureMap[];
}

/** Creates a norm layer's variables under `name`. BN kinds also get (untrained) running statistics. */
export function addNorm(params: ParamSet, name: string, kind: NormKind, channels: number): void {
  if (kind === 'none') return;
  params.add(`${name}.gamma`, [channels], filledArray([channels], 1));
  params.add(`${name}.beta`, [channels], filledArray([channels], 0));
  if (kind !== 'gn') {
    params.add(`${name}.mean`, [channels], filledArray([channels], 0), { trainable: false });
    params.add(`${name}.var`, [channels], filledArray([channels], 1), { trainable: false });
  }
}

/** Applies the norm layer `name` created by {@link addNorm}. */
export function normLayer(
  tf: Tf,
  params: ParamSet,
  name: string,
  kind: NormKind,
  x: Tensor4D,
  training: boolean,
  options: NormOptions,
): Tensor4D {
  if (kind === 'none') return x;
  const has = (n: string) => params.params.has(n);
  return applyNorm(
    tf,
    kind,
    x,
    {
      gamma: params.get(`${name}.gamma`),
      beta: params.get(`${name}.beta`),
      mean: has(`${name}.mean`) ? params.get(`${name}.mean`) : undefined,
      variance: has(`${name}.var`) ? params.get(`${name}.var`) : undefined,
    },
    training,
    options,
  );
}

/**
 * Builds the backbone's variables into `params` under `prefix` (He init from `rng`) and returns it.
 * `frozenbn` marks the norm parameters as not trained (the paper's fine-tuning baseline).
 */
export function createBackbone(
  tf: Tf,
  params: ParamSet,
  rng: Rng,
  options: { arch: ArchName; width?: number; norm: NormKind; normOptions?: NormOptions; prefix?: string },
): Backbone {
  const spec = archSpec(options.arch, options.width);
  const prefix = options.prefix ?? 'backbone';
  const norm = options.norm;
  const normOptions = options.normOptions ?? {};
  const conv = (name: string, k: number, cin: number, cout: number) => {
    params.add(`${name}.w`, [k, k, cin, cout], heNormal(rng, [k, k, cin, cout]), { decay: true });
  };

  conv(`${prefix}.stem.conv`, spec.stemKernel, 3, spec.stemWidth);
  addNorm(params, `${prefix}.stem.norm`, norm, spec.stemWidth);
  let cin = spec.stemWidth;
  let stride = spec.stemMaxPool ? 4 : 2;
  const outputs: Array<{ stride: number; channels: number }> = [];
  const blocks: Array<{
    name: string;
    cin: number;
    cout: number;
    mid: number;
    stride: number;
    project: boolean;
  }> = [];
  spec.widths.forEach((cout, s) => {
    const stageStride = s === 0 ? 1 : 2;
    stride *= stageStride;
    for (let b = 0; b < (spec.blocks[s] ?? 1); b++) {
      const name = `${prefix}.stage${s + 1}.block${b}`;
      const blockStride = b === 0 ? stageStride : 1;
      const mid = spec.block === 'bottleneck' ? cout / 4 : cout;
      const project = blockStride !== 1 || cin !== cout;
      if (spec.block === 'basic') {
        conv(`${name}.conv1`, 3, cin, cout);
        addNorm(params, `${name}.norm1`, norm, cout);
        conv(`${name}.conv2`, 3, cout, cout);
        addNorm(params, `${name}.norm2`, norm, cout);
      } else {
        conv(`${name}.conv1`, 1, cin, mid);
        addNorm(params, `${name}.norm1`, norm, mid);
        conv(`${name}.conv2`, 3, mid, mid);
        addNorm(params, `${name}.norm2`, norm, mid);
        conv(`${name}.conv3`, 1, mid, cout);
        addNorm(params, `${name}.norm3`, norm, cout);
      }
      if (project) {
        conv(`${name}.shortcut.conv`, 1, cin, cout);
        addNorm(params, `${name}.shortcut.norm`, norm, cout);
      }
      blocks.push({ name, cin, cout, mid, stride: blockStride, project });
      cin = cout;
    }
    outputs.push({ stride, channels: cout });
  });
  if (norm === 'frozenbn') params.freeze((n) => n.startsWith(`${prefix}.`) && /\.norm\d?\./.test(n));

  const stageEnds = new Set<number>();
  let count = 0;
  spec.blocks.forEach((n) => {
    count += n;
    stageEnds.add(count - 1);
  });

  const apply = (x: Tensor4D, training: boolean): FeatureMap[] => {
    const nl = (name: string, t: Tensor4D) => normLayer(tf, params, name, norm, t, training, normOptions);
    const cv = (name: string, t: Tensor4D, s: number) =>
      tf.conv2d(t, params.get(`${name}.w`) as unknown as Tensor4D, s, 'same');
    let h = tf.relu(nl(`${prefix}.stem.norm`, cv(`${prefix}.stem.conv`, x, 2)));
    if (spec.stemMaxPool) h = tf.maxPool(h, 3, 2, 'same');
    const features: FeatureMap[] = [];
    blocks.forEach((blk, i) => {
      const { name } = blk;
      let y: Tensor4D;
      if (spec.block === 'basic') {
        y = tf.relu(nl(`${name}.norm1`, cv(`${name}.conv1`, h, blk.stride)));
        y = nl(`${name}.norm2`, cv(`${name}.conv2`, y, 1));
      } else {
        y = tf.relu(nl(`${name}.norm1`, cv(`${name}.conv1`, h, 1)));
        y = tf.relu(nl(`${name}.norm2`, cv(`${name}.conv2`, y, blk.stride)));
        y = nl(`${name}.norm3`, cv(`${name}.conv3`, y, 1));
      }
      const shortcut = blk.project
        ? nl(`${name}.shortcut.norm`, cv(`${name}.shortcut.conv`, h, blk.stride))
        : h;
      h = tf.relu(tf.add(y, shortcut)) as Tensor4D;
      if (stageEnds.has(i)) {
        const out = outputs[features.length] as { stride: number; channels: number };
        features.push({ ...out, tensor: h });
      }
    });
    return features;
  };
  return { spec, norm, outputs, apply };
}
