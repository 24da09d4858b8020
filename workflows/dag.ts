/**
 * The run state of a plan's DAG, as pure code: which steps are ready, what a failure takes down with
 * it, the counts, and the compact snapshot the scheduler keeps in the store. No Temporal imports and no
 * I/O: unit tested without a server (test/workflows/dag.test.ts), and used by the scheduler activity
 * (activities/run-scheduler.ts) and by the CLI to rebuild a run's statuses.
 *
 * Every change costs O(steps it touches): ready steps wait in a min-heap keyed by plan index (so the
 * order in which they start is a function of the state alone, whatever order they became ready in),
 * the counts are kept up to date, and a failure walks only its own downstream steps.
 */
import type { StepStatus } from './plan-types';

/** What the run state needs of one step: its upstream steps and a name for messages. */
export interface DagNode {
  /** Indices (into the plan's step list) of the steps it needs; each smaller than its own index. */
  needs: readonly number[];
  label: string;
}

/** How a step that was started ended. */
export interface StepOutcome {
  /** Index of the step in the plan. */
  i: number;
  status: 'done' | 'cached' | 'failed' | 'cancelled';
  /** Why it failed (for `failed`). */
  error?: string;
}

/** The state of a run in a compact, JSON-friendly form: what the store keeps and restores from. */
export interface DagSnapshot {
  /** One status character per step, in plan order (see {@link decodeStatuses}). */
  statuses: string;
  /** Index -> error, for failed steps. */
  errors: Record<string, string>;
  /** Index of a skipped step -> index of the failed step that took it down. */
  skippedBy: Record<string, number>;
}

/** One character per status, for the compact encoding. */
const CODE: Record<StepStatus, string> = {
  pending: 'p',
  running: 'r',
  done: 'd',
  cached: 'c',
  failed: 'f',
  skipped: 's',
  cancelled: 'x',
};
const STATUS = Object.fromEntries(Object.entries(CODE).map(([s, c]) => [c, s])) as Record<string, StepStatus>;

/** Zero steps in every status. */
export function emptyCounts(): Record<StepStatus, number> {
  return { pending: 0, running: 0, done: 0, cached: 0, failed: 0, skipped: 0, cancelled: 0 };
}

export const FINISHED: ReadonlySet<StepStatus> = new Set([
  'done',
  'cached',
  'failed',
  'skipped',
  'cancelled',
]);

const isSuccess = (s: StepStatus | undefined): boolean => s === 'done' || s === 'cached';

export class DagState {
  private readonly status: StepStatus[];
  private readonly tally = emptyCounts();
  private readonly failures = new Map<number, string>();
  private readonly skippedBy = new Map<number, number>();
  private readonly dependents: number[][];
  /** Upstream steps of each step that have not succeeded yet. */
  private readonly waitingOn: Int32Array;
  private readonly heap = new MinHeap();

  /**
   * A fresh run of `nodes`, or the run `snapshot` describes. Steps running in the snapshot stay running:
   * their work carries on elsewhere (see workflows/pipeline-run.ts), and their outcomes arrive later.
   */
  constructor(
    readonly nodes: readonly DagNode[],
    snapshot?: DagSnapshot,
  ) {
    if (snapshot && snapshot.statuses.length !== nodes.length)
      throw new Error(
        `snapshot has ${snapshot.statuses.length} statuses for a plan of ${nodes.length} steps`,
      );
    this.status = nodes.map((_, i) => (snapshot ? (STATUS[snapshot.statuses[i]!] ?? 'pending') : 'pending'));
    for (const [i, e] of Object.entries(snapshot?.errors ?? {})) this.failures.set(Number(i), e);
    for (const [i, by] of Object.entries(snapshot?.skippedBy ?? {})) this.skippedBy.set(Number(i), by);
    this.dependents = nodes.map(() => []);
    this.waitingOn = new Int32Array(nodes.length);
    nodes.forEach((node, i) => {
      this.tally[this.status[i]!]++;
      for (const n of node.needs) {
        this.dependents[n]!.push(i);
        if (!isSuccess(this.status[n])) this.waitingOn[i]!++;
      }
      if (this.status[i] === 'pending' && this.waitingOn[i] === 0) this.heap.push(i);
    });
  }

  /** The status of step `i`. */
  statusOf(i: number): StepStatus {
    return this.status[i]!;
  }

  /** Why step `i` failed or was skipped, if it did. */
  errorOf(i: number): string | undefined {
    const by = this.skippedBy.get(i);
    if (by !== undefined) return `not run: upstream step ${this.nodes[by]!.label} failed`;
    return this.failures.get(i);
  }

  /** Failed steps and their errors, in no particular order. */
  failed(): ReadonlyMap<number, string> {
    return this.failures;
  }

  /** Whether a step is ready to start (pending, every upstream step succeeded). */
  hasReady(): boolean {
    return this.heap.size > 0;
  }

  /** Take up to `limit` ready steps, lowest plan index first, and mark them running. */
  take(limit: number): number[] {
    const out: number[] = [];
    while (out.length < limit && this.heap.size > 0) {
      const i = this.heap.pop();
      // Only pending steps with nothing to wait for enter the heap, and nothing else changes them.
      this.set(i, 'running');
      out.push(i);
    }
    return out;
  }

  /** Record how a started step ended. An outcome for a step that is not running is ignored (a repeat). */
  finish(outcome: StepOutcome): void {
    if (this.status[outcome.i] !== 'running') return;
    if (outcome.status === 'done' || outcome.status === 'cached')
      this.markSucceeded(outcome.i, outcome.status);
    else if (outcome.status === 'failed') this.markFailed(outcome.i, outcome.error ?? 'failed');
    else this.set(outcome.i, 'cancelled');
  }

  private markSucceeded(i: number, status: 'done' | 'cached'): void {
    this.set(i, status);
    for (const d of this.dependents[i]!) {
      if (--this.waitingOn[d]! === 0 && this.status[d] === 'pending') this.heap.push(d);
    }
  }

  /** Mark a failure; every pending step downstream of it is skipped, naming the cause. Returns those. */
  private markFailed(i: number, error: string): number[] {
    this.set(i, 'failed');
    this.failures.set(i, error);
    const affected: number[] = [];
    const stack = [...this.dependents[i]!];
    while (stack.length) {
      const d = stack.pop()!;
      if (this.status[d] !== 'pending') continue;
      this.set(d, 'skipped');
      this.skippedBy.set(d, i);
      affected.push(d);
      stack.push(...this.dependents[d]!);
    }
    return affected;
  }

  /** Every step not finished becomes cancelled. */
  cancelRemaining(): void {
    for (let i = 0; i < this.status.length; i++) if (!FINISHED.has(this.status[i]!)) this.set(i, 'cancelled');
    this.heap.clear();
  }

  /** True when nothing is left to start or wait for. */
  isFinished(): boolean {
    return this.tally.pending === 0 && this.tally.running === 0;
  }

  /** True when steps are pending but none can ever start: nothing is running and nothing is ready. */
  isStuck(): boolean {
    return this.tally.pending > 0 && this.tally.running === 0 && this.heap.size === 0;
  }

  /** Steps in each status (a copy). */
  counts(): Record<StepStatus, number> {
    return { ...this.tally };
  }

  /** One character per step, in plan order. */
  encode(): string {
    return this.status.map((s) => CODE[s]).join('');
  }

  snapshot(): DagSnapshot {
    return {
      statuses: this.encode(),
      errors: Object.fromEntries(this.failures),
      skippedBy: Object.fromEntries(this.skippedBy),
    };
  }

  private set(i: number, s: StepStatus): void {
    this.tally[this.status[i]!]--;
    this.tally[s]++;
    this.status[i] = s;
  }
}

/** Encode statuses as {@link DagSnapshot.statuses} holds them (one character per step). */
export function encodeStatuses(statuses: readonly StepStatus[]): string {
  return statuses.map((s) => CODE[s]).join('');
}

/** Decode {@link DagState.encode}'s string. */
export function decodeStatuses(encoded: string): StepStatus[] {
  return [...encoded].map((c) => STATUS[c] ?? 'pending');
}

/** The overall status of a run from its step counts. */
export function runStatus(
  counts: Record<StepStatus, number>,
  cancelled: boolean,
): 'completed' | 'failed' | 'cancelled' {
  if (cancelled) return 'cancelled';
  return counts.failed + counts.skipped > 0 ? 'failed' : 'completed';
}

/** A binary min-heap of step indices. */
class MinHeap {
  private readonly items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  clear(): void {
    this.items.length = 0;
  }

  push(v: number): void {
    const a = this.items;
    let i = a.push(v) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= v) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = v;
  }

  pop(): number {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const c = l + 1 < a.length && a[l + 1]! < a[l]! ? l + 1 : l;
        if (a[c]! >= last) break;
        a[i] = a[c]!;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}
