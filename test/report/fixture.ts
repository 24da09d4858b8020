/**
 * A synthetic finished run written straight into a store, in the shapes the step runner and the
 * orchestration write (run-records.ts, provenance.ts): a plan, one step record and provenance record
 * per step, the curves of each train step, and the run summary. Numbers come from a seeded formula so
 * tests can recompute them.
 */
import { createHash } from 'node:crypto';

import type { ProvenanceRecord } from '../../activities/runtime/provenance';
import { recordKeys, type RunSummary, type StepRecord } from '../../activities/runtime/run-records';
import { axisLabel } from '../../infra/report/gather';
import type { ArtifactStore } from '../../infra/store/index';
import type { ArtifactRef, JsonValue, Plan, PlannedStep, StepOutputs } from '../../workflows/plan-types';

export interface SyntheticRunOptions {
  runId: string;
  schedules: string[];
  subsets: Array<{ name: string; images: number }>;
  seeds?: number[];
  /** Keep only the first N cells (to reach a given count from a product grid). */
  cells?: number;
  /** Loss points per train step. */
  lossPoints?: number;
  /** A second run that differs: per cell id, an AP shift and extra train params. */
  variant?: (cellId: string) => { apDelta: number; params: Record<string, JsonValue> } | undefined;
}

/** The AP the fixture records for a cell: deterministic, distinct per cell. */
export function syntheticAp(init: string, schedule: number, images: number, seed: number): number {
  return (init === 'scratch' ? 0.2 : 0.25) + 0.01 * schedule + 0.00001 * images + seed / 7919;
}

const hex = (n: number) => n.toString(16).padStart(64, '0');

/** Write the run; returns the summary and the metrics recorded per cell id. */
export async function writeSyntheticRun(
  store: ArtifactStore,
  o: SyntheticRunOptions,
): Promise<{ summary: RunSummary; metrics: Map<string, Record<string, number>> }> {
  const seeds = o.seeds ?? [];
  const axes: Record<string, JsonValue[]> = {
    init: ['imagenet', 'scratch'],
    schedule: o.schedules,
    subset: o.subsets,
    ...(seeds.length ? { seed: seeds } : {}),
  };
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  let clock = t0;
  let nextKey = 1;
  const steps: PlannedStep[] = [];
  const records = new Map<string, StepRecord>();
  const addStep = async (
    id: string,
    label: string,
    uses: string,
    params: Record<string, JsonValue>,
    outputs: StepOutputs,
    parents: string[],
    cached = false,
  ): Promise<string> => {
    // Content-addressed like the planner's keys: the same step in two runs has the same key.
    const key = createHash('sha256')
      .update(JSON.stringify({ uses, params, parents }))
      .digest('hex')
      .slice(0, 16);
    nextKey++;
    steps.push({
      key,
      id,
      ids: [id],
      uses,
      with: params,
      needs: parents,
      queue: 'cpu',
      retry: { maxAttempts: 1 },
      timeoutMs: 1000,
    } as unknown as PlannedStep);
    const startedAt = new Date(clock).toISOString();
    clock += cached ? 50 : 60_000;
    const endedAt = new Date(clock).toISOString();
    const inputs = parents.map((p, i) => ({
      path: `/in${i}`,
      uri: `file:///x/${p}`,
      digest: `sha256:${hex(i + 1000)}`,
      mediaType: 'application/json',
      fromStep: p,
    }));
    const prov: ProvenanceRecord = {
      schema: 'ablate.provenance/v1',
      runId: o.runId,
      workflowId: `wf-${o.runId}`,
      temporalRunId: 'r',
      step: { key, ids: [id], label, kind: uses, kindVersion: '1', cells: 1 },
      cacheKey: `sha256:${hex(nextKey + 5000)}`,
      params,
      inputs,
      outputs,
      metrics: {},
      parents,
      code: { package: 'ablate', version: '0.1.0', commit: 'c0ffee'.padEnd(40, '0'), dirty: false },
      runtime: { node: process.version },
      worker: { host: 'test', pid: 1, taskQueue: 'cpu' },
      attempt: 1,
      startedAt,
      endedAt,
    };
    const provenance = await store.putJson(prov);
    records.set(key, {
      runId: o.runId,
      key,
      label,
      uses,
      status: cached ? 'cached' : 'done',
      outputs,
      provenance,
      cacheKey: prov.cacheKey,
      attempt: 1,
      startedAt,
      endedAt,
      durationMs: cached ? 50 : 60_000,
    });
    return key;
  };
  const scenes = await addStep('scenes', 'scenes', 'dataset.synth', { images: 2000 }, {}, [], true);
  const splits = new Map<string, string>();
  for (const s of o.subsets)
    splits.set(
      s.name,
      await addStep('split', `split[subset=${s.name}]`, 'dataset.split', { count: s.images }, {}, [scenes]),
    );
  const metrics = new Map<string, Record<string, number>>();
  const cells: Plan['cells'] = [];
  const lossPoints = o.lossPoints ?? 40;
  outer: for (const init of ['imagenet', 'scratch'])
    for (const schedule of o.schedules)
      for (const subset of o.subsets)
        for (const seed of seeds.length ? seeds : [undefined]) {
          if (o.cells !== undefined && cells.length >= o.cells) break outer;
          const values: Record<string, JsonValue> = { init, schedule, subset };
          if (seed !== undefined) values.seed = seed;
          const id = Object.entries(values)
            .map(([a, v]) => `${a}=${axisLabel(v)}`)
            .join(',');
          const sched = Number(schedule.replace('x', ''));
          const change = o.variant?.(id);
          const ap = syntheticAp(init, sched, subset.images, seed ?? 0) + (change?.apDelta ?? 0);
          const iterations = 100 * sched;
          const apCurve = await store.putJson({
            points: [1, 2, 3, 4].map((q) => ({
              iteration: (iterations * q) / 4,
              AP: (ap * q) / 4,
              AP50: Math.min(1, (ap * q) / 2),
              AP75: (ap * q) / 6,
            })),
          });
          const lossCurve = await store.putJson({
            iterations,
            points: Array.from({ length: lossPoints }, (_, i) => [
              Math.round(((i + 1) * iterations) / lossPoints),
              2 / (1 + i) + (init === 'scratch' ? 0.3 : 0.1),
            ]),
          });
          const train = await addStep(
            'train',
            `train[${id}]`,
            'train.detector',
            { init, schedule, seed: seed ?? 1, ...change?.params },
            { apCurve, lossCurve, metrics: { AP: ap, iterations } },
            [splits.get(subset.name)!, scenes],
          );
          const m = {
            AP: ap,
            AP50: Math.min(1, ap * 2),
            AP75: ap / 1.5,
            APs: -1,
            APm: ap / 2,
            APl: ap * 1.1,
          };
          const evaluate = await addStep('evaluate', `evaluate[${id}]`, 'eval.coco', {}, { metrics: m }, [
            train,
          ]);
          metrics.set(id, m);
          cells.push({ id, values, steps: { scenes, split: splits.get(subset.name)!, train, evaluate } });
        }
  const plan = {
    version: 1,
    pipeline: {
      name: 'synthetic',
      description: 'synthetic run for report tests',
      digest: `sha256:${hex(7)}`,
    },
    axes,
    cells,
    steps,
    stats: { cells: cells.length, stepInstances: steps.length, uniqueSteps: steps.length, saved: 0 },
  } as Plan;
  const planRef: ArtifactRef = await store.putJson(plan);
  for (const [key, r] of records) await store.putRecord(recordKeys.step(o.runId, key), r);
  const summary: RunSummary = {
    runId: o.runId,
    pipeline: { name: plan.pipeline.name, digest: plan.pipeline.digest },
    plan: planRef,
    status: 'completed',
    counts: {
      pending: 0,
      running: 0,
      done: records.size - 1,
      cached: 1,
      failed: 0,
      skipped: 0,
      cancelled: 0,
    },
    startedAt: new Date(t0).toISOString(),
    endedAt: new Date(clock).toISOString(),
    generations: 1,
    steps: steps.map((s) => {
      const r = records.get(s.key)!;
      return {
        key: s.key,
        label: r.label,
        uses: s.uses,
        status: r.status,
        outputs: r.outputs,
        provenance: r.provenance,
        durationMs: r.durationMs,
      };
    }),
    cells: cells.map((c) => ({ id: c.id, values: c.values, status: 'completed' })),
  };
  await store.putRecord(recordKeys.summary(o.runId), summary);
  return { summary, metrics };
}
