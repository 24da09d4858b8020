/**
 * Bookkeeping activities of the pipeline workflow: advance the run's scheduler (the DAG state stays
 * beside the store, see ./run-scheduler.ts), and write the run summary at the end.
 */
import type { ArtifactStore } from '../../infra/store/index';
import { runStatus } from '../../workflows/dag';
import type { ArtifactRef, StepStatus } from '../../workflows/plan-types';
import type { LoadedPlan } from './plan-loader';
import {
  recordKeys,
  type CellSummary,
  type RunSummary,
  type StepRecord,
  type StepSummary,
} from './run-records';
import { createRunScheduler } from './run-scheduler';

export interface FinalizeRunInput {
  runId: string;
  planRef: ArtifactRef;
  /** The scheduler state to summarise (the seq of the workflow's last `advanceRun` answer). */
  seq: number;
  /** The run was cancelled: every step not finished counts as cancelled. */
  cancelled: boolean;
  startedAtMs: number;
  endedAtMs: number;
  generations: number;
}

/** What the workflow returns (small; the full summary is a record in the store). */
export interface RunSummaryResult {
  runId: string;
  status: RunSummary['status'];
  counts: Record<StepStatus, number>;
  cells: { total: number; completed: number; failed: number; cancelled: number };
  /** Record key of the full {@link RunSummary}. */
  summaryKey: string;
}

export function createOrchestrationActivities(deps: {
  store: ArtifactStore;
  loadPlan: (ref: ArtifactRef) => Promise<LoadedPlan>;
}) {
  const { store, loadPlan } = deps;
  const scheduler = createRunScheduler({ store, loadPlan });

  async function finalizeRun(input: FinalizeRunInput): Promise<RunSummaryResult> {
    const { plan } = await loadPlan(input.planRef);
    const state = await scheduler.readState(input.runId, input.planRef, input.seq);
    if (input.cancelled) state.cancelRemaining();
    const statuses = plan.steps.map((_, i) => state.statusOf(i));
    const counts = state.counts();
    const status = runStatus(counts, input.cancelled);
    const records = await mapLimit(plan.steps, 16, (s, i) =>
      statuses[i] === 'done' || statuses[i] === 'cached'
        ? store.getRecord<StepRecord>(recordKeys.step(input.runId, s.key))
        : Promise.resolve(undefined),
    );
    const steps: StepSummary[] = plan.steps.map((s, i) => {
      const r = records[i];
      const error = state.errorOf(i);
      return {
        key: s.key,
        label: s.label,
        uses: s.uses,
        status: statuses[i] ?? 'pending',
        ...(r ? { outputs: r.outputs, provenance: r.provenance, durationMs: r.durationMs } : {}),
        ...(r?.worker ? { worker: r.worker } : {}),
        ...(r?.resumedFrom ? { resumedFrom: r.resumedFrom } : {}),
        ...(error ? { error } : {}),
      };
    });
    const byKey = new Map(steps.map((s) => [s.key, s]));
    const cells: CellSummary[] = plan.cells.map((cell) => {
      const own = Object.values(cell.steps).map((k) => byKey.get(k)!);
      const failed = own.find((s) => s.status === 'failed') ?? own.find((s) => s.status === 'skipped');
      if (failed) {
        return {
          id: cell.id,
          values: cell.values,
          status: 'failed',
          failedStep: { key: failed.key, label: failed.label, error: failed.error ?? 'failed' },
        };
      }
      const complete = own.every((s) => s.status === 'done' || s.status === 'cached');
      return { id: cell.id, values: cell.values, status: complete ? 'completed' : 'cancelled' };
    });
    const summary: RunSummary = {
      runId: input.runId,
      pipeline: { name: plan.pipeline.name, digest: plan.pipeline.digest },
      plan: input.planRef,
      status,
      counts,
      startedAt: new Date(input.startedAtMs).toISOString(),
      endedAt: new Date(input.endedAtMs).toISOString(),
      generations: input.generations,
      steps,
      cells,
    };
    const summaryKey = recordKeys.summary(input.runId);
    await store.putRecord(summaryKey, summary);
    return {
      runId: input.runId,
      status,
      counts,
      cells: {
        total: cells.length,
        completed: cells.filter((c) => c.status === 'completed').length,
        failed: cells.filter((c) => c.status === 'failed').length,
        cancelled: cells.filter((c) => c.status === 'cancelled').length,
      },
      summaryKey,
    };
  }

  return { advanceRun: scheduler.advanceRun, finalizeRun };
}

/** `Promise.all(items.map(fn))` with at most `limit` calls in flight. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
