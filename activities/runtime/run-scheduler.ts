/**
 * The run's scheduler: the DAG state of a run lives here, beside the store, not in the workflow's
 * history. The workflow calls `advanceRun` with the outcomes it has received since its last call and
 * how many steps it may start; the answer is the next steps to start (a bounded batch) and the counts.
 *
 * State in the store, per run (`runs/<id>/scheduler/`):
 * - `delta/<seq>`: what call `seq` changed (the outcomes applied, the steps started) and its answer;
 * - `snapshot`: the whole state at some seq (one status character per step plus failures), rewritten
 *   every {@link SNAPSHOT_EVERY} calls, so a restore reads one snapshot and at most that many deltas.
 * A worker keeps the state of the runs it serves in memory; the store is read only when another worker
 * advanced the run (or this one restarted).
 *
 * Retries and replay: call `seq` always gets the same input (the workflow is deterministic), the state
 * at `seq` is a function of the deltas before it, and the answer is a function of both, so a retried call
 * whose delta `seq + 1` already exists returns that delta's stored answer, and two attempts racing write
 * the same bytes. The workflow never calls with a `seq` it has not been answered.
 */
import type { ArtifactStore } from '../../infra/store/index';
import {
  DagState,
  encodeStatuses,
  type DagNode,
  type DagSnapshot,
  type StepOutcome,
} from '../../workflows/dag';
import type { ArtifactRef, Plan, QueueName, RetrySpec, StepStatus } from '../../workflows/plan-types';
import type { LoadedPlan } from './plan-loader';

/** Rewrite the snapshot after this many calls (a restore reads at most this many deltas). */
export const SNAPSHOT_EVERY = 64;

/** Error text kept per failed step (the step batches already cut errors to 1,000 characters). */
const MAX_ERROR_CHARS = 1000;

export interface AdvanceRunInput {
  runId: string;
  planRef: ArtifactRef;
  /** The number of calls answered so far (0 for the first call). */
  seq: number;
  /** Outcomes of started steps received since the previous call. */
  finished: StepOutcome[];
  /** Start at most this many steps. */
  capacity: number;
}

/** How a step runs (queue, retries, timeouts): shared by many steps, so sent once per answer. */
export interface StepProfile {
  queue: QueueName;
  retry: RetrySpec;
  timeoutMs: number;
  heartbeatTimeoutMs: number;
}

/** A step to start now. */
export interface StepToStart {
  i: number;
  key: string;
  uses: string;
  label: string;
  /** Index into the answer's `profiles`. */
  profile: number;
}

export interface AdvanceRunResult {
  /** The seq of the state after this call (input seq + 1). */
  seq: number;
  start: StepToStart[];
  profiles: StepProfile[];
  counts: Record<StepStatus, number>;
  /** More steps are ready than `capacity` allowed. */
  moreReady: boolean;
  /** Nothing is pending or running. */
  finished: boolean;
  /** Steps are pending but none can ever start (nothing runs, nothing is ready): the plan is inconsistent. */
  stuck: boolean;
  /** Steps that failed with this call's outcomes (not the ones skipped because of them). */
  newFailures: Array<{ key: string; label: string; error: string }>;
}

interface Delta {
  seq: number;
  finished: StepOutcome[];
  started: number[];
  result: AdvanceRunResult;
}

interface Snapshot extends DagSnapshot {
  seq: number;
  planDigest: string;
}

const keys = {
  snapshot: (runId: string) => `runs/${runId}/scheduler/snapshot`,
  delta: (runId: string, seq: number) => `runs/${runId}/scheduler/delta/${String(seq).padStart(10, '0')}`,
};

/**
 * Start a run's scheduler state afresh from given step statuses (what `ablate resume` does): the state
 * of the run's earlier execution is forgotten, and call 0 of the new execution starts from these.
 */
export async function seedRunState(
  store: ArtifactStore,
  runId: string,
  planRef: ArtifactRef,
  statuses: readonly StepStatus[],
): Promise<void> {
  for (const key of await store.listRecords(`runs/${runId}/scheduler/`)) await store.deleteRecord(key);
  await store.putRecord(keys.snapshot(runId), {
    seq: 0,
    planDigest: planRef.digest,
    statuses: encodeStatuses(statuses),
    errors: {},
    skippedBy: {},
  } satisfies Snapshot);
}

/** The DAG nodes of a plan (needs as indices). */
export function dagNodes(plan: Plan, indexOf: ReadonlyMap<string, number>): DagNode[] {
  return plan.steps.map((s) => ({ label: s.label, needs: s.needs.map((n) => indexOf.get(n)!) }));
}

/**
 * The state of a run after call `seq`, from the store: the snapshot, then every delta after it up to
 * `seq`. Also what the CLI uses to show every step's status without asking the workflow for them: with
 * `orLater`, a snapshot newer than `seq` is taken as it is (the run moved on since `seq` was read).
 */
export async function restoreRunState(
  store: ArtifactStore,
  runId: string,
  plan: { digest: string; nodes: readonly DagNode[] },
  seq: number,
  options: { orLater?: boolean } = {},
): Promise<{ state: DagState; seq: number; snapshotSeq: number }> {
  const snap = await store.getRecord<Snapshot>(keys.snapshot(runId));
  const mine = snap && snap.planDigest === plan.digest ? snap : undefined;
  if (mine && mine.seq > seq && options.orLater)
    return { state: new DagState(plan.nodes, mine), seq: mine.seq, snapshotSeq: mine.seq };
  const usable = mine && mine.seq <= seq ? mine : undefined;
  const state = new DagState(plan.nodes, usable);
  for (let s = (usable?.seq ?? 0) + 1; s <= seq; s++) {
    const delta = await store.getRecord<Delta>(keys.delta(runId, s));
    if (!delta) throw new Error(`run ${runId}: scheduler state ${s} is missing from the store`);
    applyDelta(state, delta);
  }
  return { state, seq, snapshotSeq: usable?.seq ?? 0 };
}

function applyDelta(state: DagState, delta: Pick<Delta, 'finished' | 'started'>): void {
  for (const o of delta.finished) state.finish(o);
  const n = state.take(delta.started.length);
  // The heap gives the same steps in the same order for the same state; anything else is corruption.
  if (n.some((i, k) => i !== delta.started[k])) throw new Error('scheduler delta does not match its state');
}

export function createRunScheduler(deps: {
  store: ArtifactStore;
  loadPlan: (ref: ArtifactRef) => Promise<LoadedPlan>;
  /** Runs whose state stays in memory. @default 8 */
  keep?: number;
}) {
  const { store, loadPlan } = deps;
  const keep = deps.keep ?? 8;
  interface Live {
    planDigest: string;
    seq: number;
    snapshotSeq: number;
    state: DagState;
  }
  const live = new Map<string, Live>();
  const nodesOf = new Map<string, DagNode[]>();
  // Calls for one run run one at a time (a retry can overlap a slow first attempt on the same worker).
  const locks = new Map<string, Promise<unknown>>();

  async function nodes(ref: ArtifactRef): Promise<{ digest: string; nodes: DagNode[]; loaded: LoadedPlan }> {
    const loaded = await loadPlan(ref);
    let n = nodesOf.get(ref.digest);
    if (!n) {
      n = dagNodes(loaded.plan, loaded.indexOf);
      nodesOf.set(ref.digest, n);
      if (nodesOf.size > keep) nodesOf.delete(nodesOf.keys().next().value!);
    }
    return { digest: ref.digest, nodes: n, loaded };
  }

  /** The run's state after call `seq`: from memory when this worker made it, else from the store. */
  async function stateAt(runId: string, planRef: ArtifactRef, seq: number): Promise<Live> {
    const mine = live.get(runId);
    if (mine && mine.seq === seq && mine.planDigest === planRef.digest) return mine;
    live.delete(runId);
    const plan = await nodes(planRef);
    const { state, snapshotSeq } = await restoreRunState(store, runId, plan, seq);
    const restored: Live = { planDigest: planRef.digest, seq, snapshotSeq, state };
    live.set(runId, restored);
    if (live.size > keep) live.delete(live.keys().next().value!);
    return restored;
  }

  async function advance(input: AdvanceRunInput): Promise<AdvanceRunResult> {
    const existing = await store.getRecord<Delta>(keys.delta(input.runId, input.seq + 1));
    if (existing) return existing.result;
    const run = await stateAt(input.runId, input.planRef, input.seq);
    const { loaded } = await nodes(input.planRef);
    try {
      const { state } = run;
      const finished = input.finished.map((o) =>
        o.error && o.error.length > MAX_ERROR_CHARS
          ? { ...o, error: `${o.error.slice(0, MAX_ERROR_CHARS)}…` }
          : o,
      );
      const newFailures: AdvanceRunResult['newFailures'] = [];
      for (const o of finished) {
        const wasRunning = state.statusOf(o.i) === 'running';
        state.finish(o);
        if (wasRunning && o.status === 'failed') {
          const s = loaded.plan.steps[o.i]!;
          newFailures.push({ key: s.key, label: s.label, error: state.errorOf(o.i) ?? 'failed' });
        }
      }
      const started = state.take(Math.max(0, input.capacity));
      const profiles: StepProfile[] = [];
      const profileIds = new Map<string, number>();
      const start = started.map((i): StepToStart => {
        const s = loaded.plan.steps[i]!;
        const profile: StepProfile = {
          queue: s.queue,
          retry: s.retry,
          timeoutMs: s.timeoutMs,
          heartbeatTimeoutMs: s.heartbeatTimeoutMs,
        };
        const id = JSON.stringify(profile);
        let p = profileIds.get(id);
        if (p === undefined) {
          p = profiles.push(profile) - 1;
          profileIds.set(id, p);
        }
        return { i, key: s.key, uses: s.uses, label: s.label, profile: p };
      });
      const seq = input.seq + 1;
      const result: AdvanceRunResult = {
        seq,
        start,
        profiles,
        counts: state.counts(),
        moreReady: state.hasReady(),
        finished: state.isFinished(),
        stuck: state.isStuck(),
        newFailures,
      };
      await store.putRecord(keys.delta(input.runId, seq), { seq, finished, started, result } satisfies Delta);
      run.seq = seq;
      if (seq - run.snapshotSeq >= SNAPSHOT_EVERY) {
        await store.putRecord(keys.snapshot(input.runId), {
          seq,
          planDigest: input.planRef.digest,
          ...state.snapshot(),
        } satisfies Snapshot);
        run.snapshotSeq = seq;
      }
      return result;
    } catch (err) {
      // The state in memory may be ahead of the store now: forget it; the next call restores.
      live.delete(input.runId);
      throw err;
    }
  }

  /** `advanceRun` activity: apply outcomes, start what is ready (see the module doc). */
  async function advanceRun(input: AdvanceRunInput): Promise<AdvanceRunResult> {
    const prev = locks.get(input.runId) ?? Promise.resolve();
    const next = prev.then(
      () => advance(input),
      () => advance(input),
    );
    locks.set(input.runId, next);
    try {
      return await next;
    } finally {
      if (locks.get(input.runId) === next) locks.delete(input.runId);
    }
  }

  /** The state after call `seq` (for the run summary). */
  async function readState(runId: string, planRef: ArtifactRef, seq: number): Promise<DagState> {
    const prev = locks.get(runId) ?? Promise.resolve();
    await prev.catch(() => undefined);
    const plan = await nodes(planRef);
    const mine = live.get(runId);
    if (mine && mine.seq === seq && mine.planDigest === planRef.digest) {
      // A copy: the summary may cancel what remains without touching the live state.
      return new DagState(plan.nodes, mine.state.snapshot());
    }
    return (await restoreRunState(store, runId, plan, seq)).state;
  }

  return { advanceRun, readState };
}
