/**
 * The learning-rate schedule of "Rethinking ImageNet Pre-training" (He, Girshick, Dollár 2019), scaled.
 *
 * The paper's rule: `Nx` trains N times the base length (1x = 90k iterations at batch 16); the learning
 * rate is multiplied by 0.1 twice, at fixed distances from the END of every schedule: for the last 60k
 * and for the last 20k iterations. A longer schedule therefore lengthens only the high-LR phase: 2x =
 * 180k decays at 120k and 160k, 3x = 270k at 210k and 250k, 6x = 540k at 480k and 520k. A linear warm-up
 * from `warmupFactor * lr` to `lr` covers the first iterations (Goyal et al.).
 *
 * The demo keeps the rule and shrinks everything by one factor: `scale = baseIterations / 90_000`. With
 * `baseIterations = 300`, 1x = 300, the decays sit 200 and 67 iterations before the end of any schedule.
 *
 * Pure and synchronous: no tfjs, unit-tested with the paper's numbers.
 */
import { ErrorType, permanent } from '../../../infra/errors';

/** The paper's 1x length in iterations (batch 16). */
export const PAPER_BASE_ITERATIONS = 90_000;
/** The paper's decay points, as distances from the end of the schedule. */
export const PAPER_DECAYS_FROM_END = [60_000, 20_000] as const;
/** Each decay multiplies the learning rate by this. */
export const DECAY_FACTOR = 0.1;

/** What a step asks for. */
export interface ScheduleSpec {
  /** `"1x"` .. `"6x"` (any positive multiple, e.g. `"1.5x"`), or the multiple as a number. */
  schedule: string | number;
  /** The 1x length of this (possibly scaled) setting. The paper's is {@link PAPER_BASE_ITERATIONS}. */
  baseIterations: number;
  /** Base learning rate (after warm-up, before the decays). */
  baseLr: number;
  /** Linear warm-up length in iterations. @default 0 */
  warmupIterations?: number;
  /** Warm-up starts at `warmupFactor * baseLr`. @default 1/3 (Detectron's value) */
  warmupFactor?: number;
}

/** A schedule with every number worked out. */
export interface ResolvedSchedule {
  /** The multiple N of `Nx`. */
  multiple: number;
  totalIterations: number;
  baseIterations: number;
  /** baseIterations / 90k: how much smaller than the paper this run is. */
  scale: number;
  /** Iterations (0-based) from which the LR is x0.1 and x0.01. */
  decayAt: [number, number];
  baseLr: number;
  warmupIterations: number;
  warmupFactor: number;
}

/** Parses `"3x"` / `3` into the multiple; throws a message naming the expected form. */
export function parseScheduleMultiple(schedule: string | number): number {
  const multiple = typeof schedule === 'number' ? schedule : /^\s*(\d+(?:\.\d+)?)x\s*$/i.exec(schedule)?.[1];
  const n = typeof multiple === 'string' ? Number(multiple) : multiple;
  if (n === undefined || !Number.isFinite(n) || n <= 0) {
    throw new Error(
      `schedule ${JSON.stringify(schedule)} is not a schedule: expected "1x".."6x" or a positive number`,
    );
  }
  return n;
}

/**
 * The schedule of a training step's parameters (warm-up defaults to a sixth of the 1x length); a bad
 * schedule is the step's input error (non-retryable).
 */
export function stepSchedule(p: {
  schedule: ScheduleSpec['schedule'];
  baseIterations: number;
  lr: number;
  warmupIterations?: number;
  warmupFactor?: number;
}): ResolvedSchedule {
  try {
    return resolveSchedule({
      schedule: p.schedule,
      baseIterations: p.baseIterations,
      baseLr: p.lr,
      warmupIterations: p.warmupIterations ?? Math.round(p.baseIterations / 6),
      warmupFactor: p.warmupFactor,
    });
  } catch (err) {
    throw permanent(ErrorType.InvalidInput, (err as Error).message);
  }
}

/** Works out total length and decay points; throws if the schedule is too short to hold both decays. */
export function resolveSchedule(spec: ScheduleSpec): ResolvedSchedule {
  const multiple = parseScheduleMultiple(spec.schedule);
  if (!Number.isInteger(spec.baseIterations) || spec.baseIterations < 1) {
    throw new Error(`baseIterations must be a positive integer, got ${spec.baseIterations}`);
  }
  const scale = spec.baseIterations / PAPER_BASE_ITERATIONS;
  const totalIterations = Math.round(multiple * spec.baseIterations);
  const fromEnd = PAPER_DECAYS_FROM_END.map((d) => Math.round(d * scale));
  const decayAt: [number, number] = [
    totalIterations - (fromEnd[0] ?? 0),
    totalIterations - (fromEnd[1] ?? 0),
  ];
  if (decayAt[0] <= 0) {
    throw new Error(
      `schedule ${JSON.stringify(spec.schedule)} with baseIterations ${spec.baseIterations} has ${totalIterations} iterations, ` +
        `too few for the first decay ${fromEnd[0]} iterations before the end: use a schedule of at least 1x`,
    );
  }
  const warmupIterations = spec.warmupIterations ?? 0;
  if (!Number.isInteger(warmupIterations) || warmupIterations < 0) {
    throw new Error(`warmupIterations must be a non-negative integer, got ${warmupIterations}`);
  }
  return {
    multiple,
    totalIterations,
    baseIterations: spec.baseIterations,
    scale,
    decayAt,
    baseLr: spec.baseLr,
    warmupIterations,
    warmupFactor: spec.warmupFactor ?? 1 / 3,
  };
}

/** The learning rate of 0-based `iteration`. */
export function learningRateAt(schedule: ResolvedSchedule, iteration: number): number {
  let lr = schedule.baseLr;
  if (iteration >= schedule.decayAt[0]) lr *= DECAY_FACTOR;
  if (iteration >= schedule.decayAt[1]) lr *= DECAY_FACTOR;
  if (iteration < schedule.warmupIterations) {
    const alpha = iteration / schedule.warmupIterations;
    lr *= schedule.warmupFactor * (1 - alpha) + alpha;
  }
  return lr;
}
