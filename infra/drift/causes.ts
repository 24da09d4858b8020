/**
 * Why a metric moved: walk from the step that produced it up through the steps whose outputs differ
 * between the two runs, and name each input that differs at each of them, nearest to the metric first.
 *
 * A step's own differences are what it was given that did not come from an upstream step: its
 * parameters (a JSON diff, skipping values bound from upstream outputs), source artifacts, its kind's
 * code (kind version, code commit and whatever other code facts provenance records), its runtime
 * (node, tfjs, threads, device) and its worker host. A difference in an upstream output is not a
 * cause in itself: the walk goes on to that upstream step. A step whose outputs differ although none
 * of its inputs do is nondeterministic (or, for a kind that reads data from outside the store, read
 * changed data).
 */
import type { ProvenanceRecord } from '../../activities/provenance';
import { getStepKind } from '../../activities/registry';
import type { StepRecord, RunSummary } from '../../activities/run-records';
import {
  isArtifactRef,
  type JsonValue,
  type OutputReference,
  type Plan,
  type PlannedCell,
  type PlannedStep,
  type StepOutputs,
} from '../../workflows/plan-types';
import type { ArtifactStore } from '../store/index';
import { sameJson } from './tolerance';

/** What a finished step produced, and its provenance record. */
export type StepResult = Pick<StepRecord, 'outputs' | 'provenance'>;

/** One run, loaded for comparison: its summary, plan and step records. */
export interface RunFacts {
  runId: string;
  summary: RunSummary;
  plan: Plan;
  cells: Map<string, PlannedCell>;
  steps: Map<string, PlannedStep>;
  /** Step key -> what it produced (absent for a step that failed, was skipped or cancelled). */
  records: Map<string, StepResult>;
  /** Step key -> why it did not finish, from the summary. */
  errors: Map<string, string>;
}

/** Kinds of cause, in the order they are listed within one step. */
export type CauseKind =
  'missing' | 'failed' | 'uses' | 'param' | 'data' | 'code' | 'runtime' | 'host' | 'nondeterminism';

/** One reason a metric may have moved. */
export interface Cause {
  kind: CauseKind;
  /** Template id of the step it concerns. */
  step: string;
  /** Steps between it and the metric's step (0: the metric's own step). */
  distance: number;
  text: string;
}

const KIND_ORDER: CauseKind[] = [
  'missing',
  'failed',
  'uses',
  'param',
  'data',
  'code',
  'runtime',
  'host',
  'nondeterminism',
];

/** Loads provenance records once per comparison (many cells share upstream steps). */
export class ProvenanceCache {
  private readonly cache = new Map<string, Promise<ProvenanceRecord>>();
  constructor(private readonly store: ArtifactStore) {}

  get(record: StepResult): Promise<ProvenanceRecord> {
    let p = this.cache.get(record.provenance.digest);
    if (!p) {
      p = this.store.getJson<ProvenanceRecord>(record.provenance);
      this.cache.set(record.provenance.digest, p);
    }
    return p;
  }
}

/** The template id under which `cell` knows step `key` (the plan's id when the cell does not list it). */
export function templateIdOf(facts: RunFacts, cell: PlannedCell | undefined, key: string): string {
  const planned = facts.steps.get(key);
  if (cell) {
    if (planned && cell.steps[planned.id] === key) return planned.id;
    for (const [id, k] of Object.entries(cell.steps)) if (k === key) return id;
  }
  return planned?.id ?? key;
}

/**
 * The baseline's counterpart of step `key` of `from`: the step the same template is in the same cell
 * (its first cell) of `to`. Keys alone cannot match them: a key changes with any input.
 */
export function counterpart(
  from: RunFacts,
  to: RunFacts,
  key: string,
): { id: string; cellId: string | undefined; key: string | undefined } {
  const step = from.steps.get(key);
  const cellId = step?.cells[0];
  const id = templateIdOf(from, cellId === undefined ? undefined : from.cells.get(cellId), key);
  return { id, cellId, key: cellId === undefined ? undefined : to.cells.get(cellId)?.steps[id] };
}

/**
 * Causes for a change in the outputs of template `stepId` of cell `cellId`, nearest first, with
 * repeats (the same runtime change at several steps) folded into the nearest one.
 */
export async function causesOf(
  baseline: RunFacts,
  current: RunFacts,
  cellId: string,
  stepId: string,
  provenance: ProvenanceCache,
): Promise<Cause[]> {
  const causes: Cause[] = [];
  type Pair = { id: string; cKey: string | undefined; bKey: string | undefined; distance: number };
  const queue: Pair[] = [
    {
      id: stepId,
      cKey: current.cells.get(cellId)?.steps[stepId],
      bKey: baseline.cells.get(cellId)?.steps[stepId],
      distance: 0,
    },
  ];
  const visited = new Set<string>();
  while (queue.length > 0) {
    const { id, cKey, bKey, distance } = queue.shift()!;
    const add = (kind: CauseKind, text: string) => causes.push({ kind, step: id, distance, text });
    if (!cKey || !bKey) {
      add(
        'missing',
        `steps.${id} ${!cKey ? 'is not in this run' : 'is not in the baseline run'} (cell ${cellId})`,
      );
      continue;
    }
    const bRec = baseline.records.get(bKey);
    const cRec = current.records.get(cKey);
    if (!cRec || !bRec) {
      const which = !cRec ? 'this run' : 'the baseline run';
      const error = !cRec ? current.errors.get(cKey) : baseline.errors.get(bKey);
      add('failed', `steps.${id} did not finish in ${which}${error ? `: ${firstLine(error)}` : ''}`);
      continue;
    }
    if (bRec.provenance.digest === cRec.provenance.digest) continue; // the very same computation
    const [bProv, cProv] = await Promise.all([provenance.get(bRec), provenance.get(cRec)]);
    const own = ownDifferences(id, bProv, cProv, current.steps.get(cKey)?.with);
    for (const c of own) add(c.kind, c.text);
    let upstreamDiffers = false;
    for (const parentKey of current.steps.get(cKey)?.needs ?? cProv.parents) {
      const parent = counterpart(current, baseline, parentKey);
      const bParent = parent.key ? baseline.records.get(parent.key) : undefined;
      const cParent = current.records.get(parentKey);
      if (bParent && cParent && sameOutputs(bParent.outputs, cParent.outputs)) continue;
      upstreamDiffers = true;
      if (!visited.has(parentKey)) {
        visited.add(parentKey);
        queue.push({ id: parent.id, cKey: parentKey, bKey: parent.key, distance: distance + 1 });
      }
    }
    if (own.length === 0 && !upstreamDiffers && !sameOutputs(bRec.outputs, cRec.outputs)) {
      if (getStepKind(cProv.step.kind)?.cacheable === false) {
        // Such a kind reads data from outside the store (e.g. a directory): its outputs are the data's digest.
        const changed = Object.keys(cRec.outputs).filter(
          (o) => !sameJson(bRec.outputs[o] as JsonValue, cRec.outputs[o] as JsonValue),
        );
        const artifact = changed.find((o) => isArtifactRef(cRec.outputs[o]));
        const b = artifact ? bRec.outputs[artifact] : undefined;
        const c = artifact ? cRec.outputs[artifact] : undefined;
        add(
          'data',
          isArtifactRef(b) && isArtifactRef(c)
            ? `steps.${id} read changed data: outputs.${artifact} data digest changed (${shortDigest(b.digest)} -> ${shortDigest(c.digest)})`
            : `steps.${id} read changed data: ${changed.map((o) => `outputs.${o}`).join(', ')} changed`,
        );
      } else {
        const dirty =
          bProv.code.dirty && cProv.code.dirty && bProv.code.commit === cProv.code.commit
            ? `; both runs used uncommitted changes on ${bProv.code.commit.slice(0, 7)}, which may differ`
            : '';
        add(
          'nondeterminism',
          `nondeterminism: no input differs (steps.${id} gave different outputs for the same inputs${dirty})`,
        );
      }
    }
  }
  return foldRepeats(causes);
}

/** Nearest first; within a step, by kind; the same change at several steps reported once, at the nearest. */
function foldRepeats(causes: Cause[]): Cause[] {
  const sorted = [...causes].sort(
    (a, b) => a.distance - b.distance || KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind),
  );
  const out: Cause[] = [];
  const byChange = new Map<string, { cause: Cause; more: number }>();
  for (const cause of sorted) {
    // Runtime and host changes name the step; the change itself is what repeats along the chain.
    const foldable = cause.kind === 'runtime' || cause.kind === 'host';
    const change = foldable
      ? `${cause.kind}:${cause.text.slice(cause.text.indexOf(' changed '))}`
      : cause.text;
    const seen = byChange.get(change);
    if (seen) {
      if (foldable) {
        seen.more++;
        seen.cause.text = seen.cause.text.replace(
          /^(\w+ of steps\.\S+?)(?: and \d+ upstream steps?)? changed /,
          `$1 and ${seen.more} upstream step${seen.more === 1 ? '' : 's'} changed `,
        );
      }
      continue;
    }
    const copy = { ...cause };
    byChange.set(change, { cause: copy, more: 0 });
    out.push(copy);
  }
  return out;
}

/** What a step was given differently, apart from upstream outputs. */
export function ownDifferences(
  id: string,
  baseline: ProvenanceRecord,
  current: ProvenanceRecord,
  plannedWith?: JsonValue,
): Array<{ kind: CauseKind; text: string }> {
  const out: Array<{ kind: CauseKind; text: string }> = [];
  const kind = current.step.kind;
  if (baseline.step.kind !== kind)
    out.push({ kind: 'uses', text: `steps.${id}.uses changed (${baseline.step.kind} -> ${kind})` });
  diffParams(baseline.params, current.params, plannedWith, `steps.${id}.with`, out);

  const code: string[] = [];
  if (baseline.step.kindVersion !== current.step.kindVersion)
    code.push(`v${baseline.step.kindVersion} -> v${current.step.kindVersion}`);
  const identity = new Set(['key', 'ids', 'label', 'kind', 'kindVersion', 'cells']);
  const stepFacts = (s: ProvenanceRecord['step']) =>
    Object.fromEntries(Object.entries(s).filter(([k]) => !identity.has(k))) as Record<string, JsonValue>;
  for (const d of flatDiff(stepFacts(baseline.step), stepFacts(current.step), 'step.')) code.push(d);
  const bCode = baseline.code as unknown as Record<string, JsonValue>;
  const cCode = current.code as unknown as Record<string, JsonValue>;
  if (bCode.commit !== cCode.commit || bCode.dirty !== cCode.dirty) {
    const show = (c: Record<string, JsonValue>) =>
      `${typeof c.commit === 'string' ? c.commit.slice(0, 7) : JSON.stringify(c.commit)}${c.dirty ? ' with local changes' : ''}`;
    code.push(`${show(bCode)} -> ${show(cCode)}`);
  }
  const rest = (c: Record<string, JsonValue>) =>
    Object.fromEntries(Object.entries(c).filter(([k]) => k !== 'commit' && k !== 'dirty'));
  code.push(...flatDiff(rest(bCode), rest(cCode), ''));
  if (code.length > 0) out.push({ kind: 'code', text: `code of ${kind} changed (${code.join('; ')})` });

  const runtime = flatDiff(baseline.runtime, current.runtime, '');
  if (runtime.length > 0)
    out.push({ kind: 'runtime', text: `runtime of steps.${id} changed (${runtime.join(', ')})` });
  if (baseline.worker.host !== current.worker.host)
    out.push({
      kind: 'host',
      text: `host of steps.${id} changed (${baseline.worker.host} -> ${current.worker.host})`,
    });
  return out;
}

function diffParams(
  b: JsonValue | undefined,
  c: JsonValue | undefined,
  planned: JsonValue | undefined,
  path: string,
  out: Array<{ kind: CauseKind; text: string }>,
): void {
  // A value bound from an upstream output differs only if that output does: the walk explains it there.
  if (isOutputReference(planned)) return;
  if (isArtifactRef(b) && isArtifactRef(c)) {
    if (b.digest !== c.digest)
      out.push({
        kind: 'data',
        text: `${path} data digest changed (${shortDigest(b.digest)} -> ${shortDigest(c.digest)})`,
      });
    return;
  }
  const isObj = (v: JsonValue | undefined): v is Record<string, JsonValue> =>
    v !== null && typeof v === 'object' && !Array.isArray(v);
  const plannedObj = isObj(planned) ? planned : undefined;
  if (isObj(b) && isObj(c) && !isArtifactRef(b) && !isArtifactRef(c)) {
    for (const key of new Set([...Object.keys(b), ...Object.keys(c)]))
      diffParams(b[key], c[key], plannedObj?.[key], `${path}.${key}`, out);
    return;
  }
  if (Array.isArray(b) && Array.isArray(c) && b.length === c.length) {
    const plannedArr = Array.isArray(planned) ? planned : undefined;
    b.forEach((item, i) => diffParams(item, c[i], plannedArr?.[i], `${path}[${i}]`, out));
    return;
  }
  if (!sameJson(b, c)) out.push({ kind: 'param', text: `${path} changed (${show(b)} -> ${show(c)})` });
}

/** `key a -> b` for each leaf that differs between two flat-ish objects (nested keys joined by `.`). */
function flatDiff(
  b: Record<string, JsonValue> | undefined,
  c: Record<string, JsonValue> | undefined,
  prefix: string,
): string[] {
  const out: string[] = [];
  const flat = (o: Record<string, JsonValue> | undefined, at: string, into: Map<string, JsonValue>) => {
    for (const [k, v] of Object.entries(o ?? {})) {
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) flat(v, `${at}${k}.`, into);
      else into.set(`${at}${k}`, v);
    }
    return into;
  };
  const bf = flat(b, prefix, new Map());
  const cf = flat(c, prefix, new Map());
  for (const key of new Set([...bf.keys(), ...cf.keys()])) {
    const bv = bf.get(key);
    const cv = cf.get(key);
    if (!sameJson(bv, cv)) out.push(`${key} ${show(bv)} -> ${show(cv)}`);
  }
  return out;
}

function sameOutputs(a: StepOutputs, b: StepOutputs): boolean {
  return sameJson(a as JsonValue, b as JsonValue);
}

function isOutputReference(v: JsonValue | undefined): v is JsonValue & OutputReference {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && '$from' in v;
}

/** `sha256:ab12cd34` (the first 8 hex digits: enough to tell two digests apart in a message). */
export function shortDigest(digest: string): string {
  return `${digest.slice(0, 15)}..`;
}

function show(v: JsonValue | undefined): string {
  if (v === undefined) return '(absent)';
  const text = JSON.stringify(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function firstLine(text: string): string {
  const line = text.split('\n')[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}
