/**
 * Synthetic finished runs for drift tests and benchmarks: the records a real run leaves in the store
 * (step records, provenance records, the plan and the run summary) for a compiled plan, without
 * running any step. Outputs are derived from a seed that flows down the DAG like data does: a step's
 * outputs change when its own seed changes (a tweak) or an upstream step's outputs do, so a change
 * injected at one step shows up in every metric downstream of it, as in a real run.
 */
import { COCO_STAT_NAMES } from '../../activities/kinds/eval/coco';
import { createHash } from 'node:crypto';

import { collectArtifactRefs, type ProvenanceRecord } from '../../activities/runtime/provenance';
import { getStepKind } from '../../activities/runtime/registry';
import {
  recordKeys,
  type RunSummary,
  type StepRecord,
  type StepSummary,
} from '../../activities/runtime/run-records';
import { emptyCounts } from '../../workflows/dag';
import {
  isArtifactRef,
  type ArtifactRef,
  type JsonObject,
  type JsonValue,
  type Plan,
  type PlannedStep,
  type StepOutputs,
} from '../../workflows/plan-types';
import type { ArtifactStore } from '../store/index';

/** What to change about one step of a synthetic run. */
export interface StepTweak {
  /** Merged over the bound parameters (a changed param); changes the outputs too. */
  params?: JsonObject;
  kindVersion?: string;
  code?: Partial<ProvenanceRecord['code']>;
  runtime?: Record<string, JsonValue>;
  host?: string;
  /** Changes the outputs without any recorded input changing (nondeterminism, or changed source data). */
  salt?: string;
  /** Record the step as failed with this error instead of finished. */
  fail?: string;
}

export interface SyntheticRunOptions {
  runId: string;
  /** Tweaks by step template id (applied to every planned step of that template) or by step label. */
  tweaks?: Record<string, StepTweak>;
  /** Per-category entries in a `metrics` output (the paper's COCO has 80). @default 80 */
  categories?: number;
}

const BASE_CODE: ProvenanceRecord['code'] = {
  package: 'ablate',
  version: '0.1.0',
  commit: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
  dirty: false,
};
const BASE_RUNTIME: Record<string, JsonValue> = {
  node: '22.11.0',
  platform: 'linux',
  arch: 'x64',
  device: 'cpu',
  tfjsBackend: 'wasm',
  tfjsVersion: '4.22.0',
  threads: 1,
};

/** Write the records of a finished run of `plan` into `store`. */
export async function writeSyntheticRun(
  store: ArtifactStore,
  plan: Plan,
  options: SyntheticRunOptions,
): Promise<RunSummary> {
  const { runId } = options;
  const categories = options.categories ?? 80;
  const planRef = await store.putJson(plan, 'application/vnd.ablate.plan+json');
  const outputsByKey = new Map<string, StepOutputs>();
  const seedByKey = new Map<string, string>();
  const steps: StepSummary[] = [];
  const failed = new Set<string>();
  const when = '2026-01-01T00:00:00.000Z';
  for (const step of plan.steps) {
    const tweak = options.tweaks?.[step.label] ?? options.tweaks?.[step.id] ?? {};
    if (tweak.fail || step.needs.some((k) => failed.has(k))) {
      failed.add(step.key);
      steps.push({
        key: step.key,
        label: step.label,
        uses: step.uses,
        status: tweak.fail ? 'failed' : 'skipped',
        ...(tweak.fail ? { error: tweak.fail } : {}),
      });
      continue;
    }
    const producers = new Map<string, string>();
    const params = { ...(bind(step.with, outputsByKey, producers) as JsonObject), ...tweak.params };
    const seed = sha(
      [
        step.key,
        JSON.stringify(tweak.params ?? null),
        tweak.salt ?? '',
        tweak.kindVersion ?? '',
        JSON.stringify(tweak.code ?? null),
        ...step.needs.map((k) => seedByKey.get(k)!),
      ].join('|'),
    );
    seedByKey.set(step.key, seed);
    const outputs = synthOutputs(step, seed, categories);
    outputsByKey.set(step.key, outputs);
    const kind = getStepKind(step.uses);
    const record: ProvenanceRecord = {
      schema: 'ablate.provenance/v1',
      runId,
      workflowId: runId,
      temporalRunId: sha(runId).slice(0, 36),
      step: {
        key: step.key,
        ids: step.ids,
        label: step.label,
        kind: step.uses,
        kindVersion: tweak.kindVersion ?? kind?.version ?? '1',
        cells: step.cells.length,
      },
      cacheKey: sha(`${step.key}|${JSON.stringify(params)}`),
      params,
      inputs: collectArtifactRefs(params).map(({ path, ref }) => ({
        path,
        uri: ref.uri,
        digest: ref.digest,
        mediaType: ref.mediaType,
        ...(producers.has(ref.digest) ? { fromStep: producers.get(ref.digest)! } : {}),
      })),
      outputs,
      metrics: Object.fromEntries(Object.entries(outputs).filter(([, v]) => !isArtifactRef(v))) as Record<
        string,
        JsonValue
      >,
      parents: step.needs,
      code: { ...BASE_CODE, ...tweak.code },
      runtime: { ...BASE_RUNTIME, ...tweak.runtime },
      // The worker's pid and queue differ between any two runs; they are not a cause of anything.
      worker: { host: tweak.host ?? 'worker-1', pid: 1000 + steps.length, taskQueue: `${runId}-cpu` },
      attempt: 1,
      startedAt: when,
      endedAt: when,
    };
    const provenance = await store.putJson(record, 'application/vnd.ablate.provenance+json');
    const stepRecord: StepRecord = {
      runId,
      key: step.key,
      label: step.label,
      uses: step.uses,
      status: 'done',
      outputs,
      provenance,
      cacheKey: record.cacheKey,
      attempt: 1,
      startedAt: when,
      endedAt: when,
      durationMs: 1,
    };
    await store.putRecord(recordKeys.step(runId, step.key), stepRecord);
    steps.push({ key: step.key, label: step.label, uses: step.uses, status: 'done', outputs, provenance });
  }
  const counts = emptyCounts();
  for (const s of steps) counts[s.status]++;
  const summary: RunSummary = {
    runId,
    pipeline: { name: plan.pipeline.name, digest: plan.pipeline.digest },
    plan: planRef,
    status: failed.size > 0 ? 'failed' : 'completed',
    counts,
    startedAt: when,
    endedAt: when,
    generations: 1,
    steps,
    cells: plan.cells.map((c) => {
      const bad = Object.values(c.steps).find((k) => failed.has(k));
      return { id: c.id, values: c.values, status: bad ? 'failed' : 'completed' };
    }),
  };
  await store.putRecord(recordKeys.summary(runId), summary);
  return summary;
}

/** Replace each `$from` reference with the upstream output it names, noting which step produced each artifact. */
function bind(
  value: JsonValue,
  outputs: Map<string, StepOutputs>,
  producers: Map<string, string>,
): JsonValue {
  if (Array.isArray(value)) return value.map((v) => bind(v, outputs, producers));
  if (value === null || typeof value !== 'object') return value;
  const from = (value as { $from?: { step: string; output: string; path?: string[] } }).$from;
  if (from) {
    let v = outputs.get(from.step)?.[from.output] as JsonValue;
    if (isArtifactRef(v)) producers.set(v.digest, from.step);
    for (const seg of from.path ?? [])
      v = v !== null && typeof v === 'object' ? (v as Record<string, JsonValue>)[seg]! : null;
    return v ?? null;
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, bind(v, outputs, producers)]));
}

/** Outputs for a step from its seed: artifacts with seed-derived digests, metrics as numbers in [0, 1). */
function synthOutputs(step: PlannedStep, seed: string, categories: number): StepOutputs {
  const kind = getStepKind(step.uses);
  const specs = kind?.outputs ?? { out: { type: 'value' as const, description: '' } };
  const outputs: StepOutputs = {};
  for (const [name, spec] of Object.entries(specs)) {
    const s = sha(`${seed}|${name}`);
    if (spec.type !== 'value') {
      const ref: ArtifactRef = {
        uri: `file:///synthetic/sha256/${s.slice(0, 2)}/${s}`,
        digest: `sha256:${s}`,
        sizeBytes: 1000 + parseInt(s.slice(0, 4), 16),
        mediaType: spec.mediaType ?? 'application/octet-stream',
      };
      outputs[name] = ref;
    } else if (name === 'metrics') {
      const metric = (k: string) => Math.round(parseInt(sha(`${s}|${k}`).slice(0, 8), 16) / 0x10000) / 65536;
      const m: JsonObject = {};
      for (const k of COCO_STAT_NAMES) m[k] = metric(k);
      m.iterations = 1000;
      m.imagesPerSec = 10 + metric('speed') * 10;
      if (categories > 0)
        m.perCategory = Object.fromEntries(
          Array.from({ length: categories }, (_, i) => [`c${i}`, metric(`c${i}`)]),
        );
      outputs[name] = m;
    } else {
      outputs[name] = parseInt(s.slice(0, 6), 16);
    }
  }
  return outputs;
}

function sha(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
