/**
 * The run state of a plan's DAG, as pure code: which steps are ready, what a failure takes down with
 * it, the counts and the compact encoding carried across continue-as-new. No Temporal imports: unit
 * tested without a server, and deterministic inside the workflow.
 */
import type { QueueName, RetrySpec, StepStatus } from './plan-types';

/** What the workflow needs to know of one step (the parameters stay in the plan artifact). */
export interface GraphStep {
  key: string;
  label: string;
  uses: string;
  /** Indices (into the graph's step list) of the steps it needs. */
  needs: number[];
  queue: QueueName;
  retry: RetrySpec;
  timeoutMs: number;
  heartbeatTimeoutMs: number;
  cache: boolean;
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

export class DagState {
  readonly status: StepStatus[];
  readonly attempts: number[];
  /** Why a step failed (or was skipped): its error, or the upstream failure. */
  readonly errors = new Map<number, string>();
  private readonly dependents: number[][];
  private readonly waitingOn: number[];

  constructor(
    readonly steps: readonly GraphStep[],
    encoded?: string,
  ) {
    this.status = steps.map((_, i) => (encoded ? (STATUS[encoded[i] ?? 'p'] ?? 'pending') : 'pending'));
    // A step that was running when the previous run continued-as-new runs again (its activity was drained).
    for (let i = 0; i < this.status.length; i++) if (this.status[i] === 'running') this.status[i] = 'pending';
    this.attempts = steps.map(() => 0);
    this.dependents = steps.map(() => []);
    this.waitingOn = steps.map(() => 0);
    steps.forEach((s, i) => {
      for (const n of s.needs) {
        this.dependents[n]!.push(i);
        if (!this.isSuccess(n)) this.waitingOn[i]!++;
      }
    });
  }

  private isSuccess(i: number): boolean {
    const s = this.status[i];
    return s === 'done' || s === 'cached';
  }

  /** Pending steps whose needs all succeeded, in plan order, at most `limit`. */
  ready(limit: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.steps.length && out.length < limit; i++) {
      if (this.status[i] === 'pending' && this.waitingOn[i] === 0) out.push(i);
    }
    return out;
  }

  markRunning(i: number): void {
    this.status[i] = 'running';
    this.attempts[i] = Math.max(1, this.attempts[i]!);
  }

  markSucceeded(i: number, cached: boolean): void {
    this.status[i] = cached ? 'cached' : 'done';
    for (const d of this.dependents[i]!) this.waitingOn[d]!--;
  }

  /** Mark a failure; every step downstream of it fails too (skipped, naming the cause). Returns those. */
  markFailed(i: number, error: string): number[] {
    this.status[i] = 'failed';
    this.errors.set(i, error);
    const affected: number[] = [];
    const stack = [...this.dependents[i]!];
    while (stack.length) {
      const d = stack.pop()!;
      if (this.status[d] !== 'pending') continue;
      this.status[d] = 'skipped';
      this.errors.set(d, `not run: upstream step ${this.steps[i]!.label} failed`);
      affected.push(d);
      stack.push(...this.dependents[d]!);
    }
    return affected;
  }

  markCancelled(i: number): void {
    this.status[i] = 'cancelled';
  }

  /** Every step not finished becomes cancelled. */
  cancelRemaining(): void {
    for (let i = 0; i < this.status.length; i++)
      if (!FINISHED.has(this.status[i]!)) this.status[i] = 'cancelled';
  }

  /** True when nothing is left to start or wait for. */
  isFinished(): boolean {
    return this.status.every((s) => FINISHED.has(s));
  }

  counts(): Record<StepStatus, number> {
    const counts = emptyCounts();
    for (const s of this.status) counts[s]++;
    return counts;
  }

  /** One character per step, in plan order. */
  encode(): string {
    return this.status.map((s) => CODE[s]).join('');
  }
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
