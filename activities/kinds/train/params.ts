/**
 * A model's variables by name, with what the optimizer and the checkpoint need to know about each:
 * whether it is trained, whether weight decay applies. Names are stable, dotted paths
 * (`backbone.stage2.block0.conv1.w`): checkpoints and error messages use them.
 */
import type * as TfType from '@tensorflow/tfjs';

import type { HostTensor } from './checkpoint';
import type { Rng } from '../../../infra/prng';

type Tf = typeof TfType;
type Variable = TfType.Variable;

/** One named variable. */
export interface Param {
  variable: Variable;
  /** Updated by the optimizer (false for BN statistics and frozen layers). */
  trainable: boolean;
  /** Weight decay applies (conv and linear weights; not norm parameters or biases, as in Detectron2). */
  decay: boolean;
}

/** Variables of one model, in creation order. */
export class ParamSet {
  readonly params = new Map<string, Param>();

  constructor(private readonly tf: Tf) {}

  /** Adds a variable; `values` has the shape's element count. */
  add(
    name: string,
    shape: number[],
    values: Float32Array,
    options: { trainable?: boolean; decay?: boolean } = {},
  ): Variable {
    if (this.params.has(name)) throw new Error(`duplicate parameter name ${name}`);
    const trainable = options.trainable ?? true;
    const initial = this.tf.tensor(values, shape);
    const variable = this.tf.variable(initial, trainable);
    initial.dispose(); // the variable holds its own reference to the data
    this.params.set(name, { variable, trainable, decay: options.decay ?? false });
    return variable;
  }

  /** The variable called `name`; throws naming it if absent. */
  get(name: string): Variable {
    const p = this.params.get(name);
    if (!p) throw new Error(`model has no parameter ${name}`);
    return p.variable;
  }

  /** Marks every parameter whose name starts with `prefix` and matches `test` as not trained. */
  freeze(test: (name: string) => boolean): void {
    for (const [name, p] of this.params) if (test(name)) p.trainable = false;
  }

  /** Names of the trained parameters, in creation order. */
  trainableNames(): string[] {
    return [...this.params].filter(([, p]) => p.trainable).map(([n]) => n);
  }

  /** Shapes by name (what a checkpoint must match). */
  shapes(prefix = ''): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const [name, p] of this.params) if (name.startsWith(prefix)) out.set(name, [...p.variable.shape]);
    return out;
  }

  /** Host copies of every variable (or those under `prefix`). */
  toHost(prefix = ''): Map<string, HostTensor> {
    const out = new Map<string, HostTensor>();
    for (const [name, p] of this.params) {
      if (name.startsWith(prefix))
        out.set(name, { shape: [...p.variable.shape], data: p.variable.dataSync() as Float32Array });
    }
    return out;
  }

  /** Assigns the given host tensors to the variables of the same names (shapes checked by the caller). */
  load(tensors: Map<string, HostTensor>, names: Iterable<string>): void {
    for (const name of names) {
      const t = tensors.get(name);
      if (!t) continue;
      const v = this.get(name);
      this.tf.tidy(() => v.assign(this.tf.tensor(t.data, t.shape)));
    }
  }

  /** Total number of float32 values. */
  count(): number {
    let n = 0;
    for (const p of this.params.values()) n += p.variable.size;
    return n;
  }

  dispose(): void {
    for (const p of this.params.values()) p.variable.dispose();
    this.params.clear();
  }
}

/**
 * He (MSRA) normal initialisation of a conv filter [kh,kw,cin,cout]: std = sqrt(2 / fan_out) with
 * fan_out = kh*kw*cout, as Detectron/torchvision initialise ResNets (`kaiming_normal_(mode='fan_out')`).
 */
export function heNormal(rng: Rng, shape: [number, number, number, number]): Float32Array {
  const [kh, kw, , cout] = shape;
  const std = Math.sqrt(2 / (kh * kw * cout));
  return normalArray(rng, shape, std);
}

/** Normal(0, std) values for `shape`. */
export function normalArray(rng: Rng, shape: number[], std: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * std;
  return out;
}

/** A constant array for `shape`. */
export function filledArray(shape: number[], value: number): Float32Array {
  return new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value);
}
