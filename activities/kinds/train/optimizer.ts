/**
 * SGD with momentum and L2 weight decay, as the paper trains (momentum 0.9, weight decay 1e-4), written
 * out so its slots are plain named variables that checkpoints store and restore exactly.
 *
 * PyTorch's form: v <- m*v + (g + wd*w);  w <- w - lr*v. Weight decay applies to parameters marked
 * `decay` (conv and linear weights), not to norm parameters or biases (Detectron2's default).
 */
import type * as TfType from '@tensorflow/tfjs';

import type { HostTensor } from './checkpoint';
import type { ParamSet } from './params';

type Tf = typeof TfType;
type Tensor = TfType.Tensor;
type Variable = TfType.Variable;

/** Checkpoint names of the momentum slots: `optimizer.momentum/<parameter name>`. */
export const MOMENTUM_PREFIX = 'optimizer.momentum/';

/** SGD + momentum + weight decay over the trainable parameters of a {@link ParamSet}. */
export class SgdMomentum {
  private readonly slots = new Map<string, Variable>();

  constructor(
    private readonly tf: Tf,
    private readonly params: ParamSet,
    readonly momentum = 0.9,
    readonly weightDecay = 1e-4,
  ) {
    for (const name of params.trainableNames()) {
      const v = params.get(name);
      this.slots.set(name, tf.variable(tf.zerosLike(v), false));
    }
  }

  /** One update with learning rate `lr`; `grads` maps parameter names to gradients (not disposed here). */
  apply(grads: Map<string, Tensor>, lr: number): void {
    const tf = this.tf;
    for (const [name, g] of grads) {
      const slot = this.slots.get(name);
      const p = this.params.params.get(name);
      if (!slot || !p) throw new Error(`gradient for unknown trainable parameter ${name}`);
      tf.tidy(() => {
        const withDecay =
          p.decay && this.weightDecay > 0 ? tf.add(g, tf.mul(p.variable, this.weightDecay)) : g;
        const v = tf.add(tf.mul(slot, this.momentum), withDecay);
        slot.assign(v);
        p.variable.assign(tf.sub(p.variable, tf.mul(v, lr)));
      });
    }
  }

  /** Host copies of the slots, named for the checkpoint. */
  toHost(): Map<string, HostTensor> {
    const out = new Map<string, HostTensor>();
    for (const [name, v] of this.slots)
      out.set(MOMENTUM_PREFIX + name, { shape: [...v.shape], data: v.dataSync() as Float32Array });
    return out;
  }

  /** Slot shapes, named for the checkpoint. */
  shapes(): Map<string, number[]> {
    return new Map([...this.slots].map(([name, v]) => [MOMENTUM_PREFIX + name, [...v.shape]]));
  }

  /** Restores the slots from checkpoint tensors (shapes checked by the caller). */
  load(tensors: Map<string, HostTensor>): void {
    for (const [name, v] of this.slots) {
      const t = tensors.get(MOMENTUM_PREFIX + name);
      if (t) this.tf.tidy(() => v.assign(this.tf.tensor(t.data, t.shape)));
    }
  }

  dispose(): void {
    for (const v of this.slots.values()) v.dispose();
    this.slots.clear();
  }
}
