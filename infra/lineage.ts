/**
 * Lineage: from any result (a run, a step, a metric, an artifact) back through the steps that made it
 * to its sources, from the provenance records the step runner writes. Also `verify`: re-check every
 * artifact a run touched against its digest, and `--repair`: recompute what is damaged.
 */
import type { ProvenanceRecord } from '../activities/runtime/provenance';
import {
  recordKeys,
  type ProducerRecord,
  type RunSummary,
  type StepRecord,
} from '../activities/runtime/run-records';
import {
  isArtifactRef,
  TREE_MEDIA_TYPE,
  type ArtifactRef,
  type JsonValue,
  type OutputValue,
  type Plan,
} from '../workflows/plan-types';
import { AblateError, ErrorType } from './errors';
import type { TreeManifest } from './store/artifact-store';
import type { Session } from './session';
import type { ArtifactStore } from './store/index';

/** One input artifact of a step, and where it came from. */
export interface LineageInput {
  path: string;
  uri: string;
  digest: string;
  mediaType: string;
  /** For a directory artifact: how many files, and the first few paths. */
  files?: { count: number; sample: string[] };
  /** Key of the step that produced it, when a step of this run did. */
  fromStep?: string;
}

/** One step run with everything needed to trace it. */
export interface LineageNode {
  runId: string;
  key: string;
  label: string;
  kind: string;
  kindVersion: string;
  status: StepRecord['status'];
  cacheKey: string;
  /** The run that actually computed it (differs from runId when it came from the cache). */
  computedIn: string;
  code: ProvenanceRecord['code'];
  runtime: ProvenanceRecord['runtime'];
  worker: ProvenanceRecord['worker'];
  startedAt: string;
  endedAt: string;
  attempt: number;
  params: JsonValue;
  outputs: Record<string, OutputValue>;
  provenance: ArtifactRef;
  inputs: LineageInput[];
  /** Keys of the steps it needed. */
  parents: string[];
}

export interface LineageGraph {
  /** What was asked for. */
  target: { kind: 'run' | 'step' | 'metric' | 'artifact'; ref: string; value?: OutputValue };
  roots: string[];
  nodes: Record<string, LineageNode>;
}

/** Build the lineage of `ref`: RUN_ID, RUN_ID/STEP, RUN_ID/STEP/OUTPUT[.path], or sha256:DIGEST. */
export async function lineageOf(store: ArtifactStore, ref: string): Promise<LineageGraph> {
  const nodes: Record<string, LineageNode> = {};
  const digest = /^(sha256:)?([0-9a-f]{64})$/.exec(ref);
  if (digest) {
    const producer = await store.getRecord<ProducerRecord>(recordKeys.producer(digest[2]!));
    if (!producer)
      throw new AblateError(
        ErrorType.ArtifactNotFound,
        `no step run recorded as producing sha256:${digest[2]}`,
      );
    await collect(store, producer.runId, producer.stepKey, nodes);
    return { target: { kind: 'artifact', ref: `sha256:${digest[2]}` }, roots: [producer.stepKey], nodes };
  }
  // RUN_ID/STEP[/OUTPUT]: a step label may itself hold a '/' (an axis value such as data=1/10), so the
  // whole rest is tried as a step first, then split at its last '/'.
  const slash = ref.indexOf('/');
  const runId = slash < 0 ? ref : ref.slice(0, slash);
  const rest = slash < 0 ? undefined : ref.slice(slash + 1);
  if (!runId) throw new AblateError(ErrorType.InvalidInput, 'empty lineage reference');
  const stepKeys = (await store.listRecords(recordKeys.steps(runId))).map((k) =>
    k.slice(k.lastIndexOf('/') + 1),
  );
  if (stepKeys.length === 0)
    throw new AblateError(ErrorType.InvalidInput, `no finished steps of run ${runId} in ${store.url}`);
  if (rest === undefined) {
    for (const key of stepKeys) await collect(store, runId, key, nodes);
    const needed = new Set(Object.values(nodes).flatMap((n) => n.parents));
    const roots = Object.keys(nodes).filter((k) => !needed.has(k));
    return { target: { kind: 'run', ref: runId }, roots, nodes };
  }
  let labels: Map<string, string> | undefined;
  const find = async (stepRef: string): Promise<string | undefined> => {
    if (stepKeys.includes(stepRef)) return stepRef;
    if (!labels) {
      labels = new Map();
      for (const k of stepKeys) {
        const r = await store.getRecord<StepRecord>(recordKeys.step(runId, k));
        if (r) labels.set(r.label, k);
      }
    }
    return labels.get(stepRef);
  };
  let stepRef = rest;
  let outputRef: string | undefined;
  let key = await find(rest);
  const last = rest.lastIndexOf('/');
  if (!key && last >= 0) {
    stepRef = rest.slice(0, last);
    outputRef = rest.slice(last + 1);
    key = await find(stepRef);
  }
  if (!key)
    throw new AblateError(
      ErrorType.InvalidInput,
      `run ${runId} has no finished step ${JSON.stringify(stepRef)} (give its key or its label)`,
    );
  const node = await collect(store, runId, key, nodes);
  if (outputRef === undefined) return { target: { kind: 'step', ref }, roots: [key], nodes };
  const [output, ...path] = outputRef.split('.');
  let value: JsonValue | OutputValue | undefined = node.outputs[output!];
  for (const seg of path)
    value =
      value !== null && typeof value === 'object' ? (value as Record<string, JsonValue>)[seg] : undefined;
  if (value === undefined) {
    throw new AblateError(
      ErrorType.InvalidInput,
      `step ${node.label} has no output ${outputRef}; its outputs: ${Object.keys(node.outputs).join(', ')}`,
    );
  }
  return { target: { kind: 'metric', ref, value }, roots: [key], nodes };
}

async function collect(
  store: ArtifactStore,
  runId: string,
  key: string,
  nodes: Record<string, LineageNode>,
): Promise<LineageNode> {
  const seen = nodes[key];
  if (seen) return seen;
  const record = await store.getRecord<StepRecord>(recordKeys.step(runId, key));
  if (!record) throw new AblateError(ErrorType.ArtifactNotFound, `run ${runId} has no record of step ${key}`);
  const prov = await store.getJson<ProvenanceRecord>(record.provenance);
  const inputs: LineageInput[] = [];
  for (const input of prov.inputs) {
    const entry: LineageInput = { ...input };
    if (input.mediaType === TREE_MEDIA_TYPE) {
      const manifest = await store.getJson<TreeManifest>(input.digest).catch(() => undefined);
      if (manifest)
        entry.files = {
          count: manifest.entries.length,
          sample: manifest.entries.slice(0, 3).map((e) => e.path),
        };
    }
    inputs.push(entry);
  }
  const node: LineageNode = {
    runId,
    key,
    label: record.label,
    kind: prov.step.kind,
    kindVersion: prov.step.kindVersion,
    status: record.status,
    cacheKey: record.cacheKey,
    computedIn: prov.runId,
    code: prov.code,
    runtime: prov.runtime,
    worker: prov.worker,
    startedAt: prov.startedAt,
    endedAt: prov.endedAt,
    attempt: prov.attempt,
    params: prov.params,
    outputs: record.outputs,
    provenance: record.provenance,
    inputs,
    parents: prov.parents,
  };
  nodes[key] = node;
  for (const parent of node.parents) await collect(store, runId, parent, nodes);
  return node;
}

/** The lineage as an indented tree. A step reached twice is printed once, then referred to. */
export function lineageText(graph: LineageGraph): string {
  const lines: string[] = [];
  if (graph.target.kind === 'metric')
    lines.push(`${graph.target.ref} = ${JSON.stringify(graph.target.value)}`, '');
  const printed = new Set<string>();
  const short = (d: string) => d.replace(/^sha256:/, '').slice(0, 12);
  const visit = (key: string, indent: string, via: string): void => {
    const n = graph.nodes[key]!;
    const head = `${indent}${via}${n.label} (${n.kind} v${n.kindVersion})`;
    if (printed.has(key)) {
      lines.push(`${head}  [shown above]`);
      return;
    }
    printed.add(key);
    const cached = n.status === 'cached' ? `, cached from ${n.computedIn}` : '';
    lines.push(
      `${head}  step ${n.key}${cached}; code ${n.code.commit.slice(0, 10)}${n.code.dirty ? ' (dirty)' : ''}; ${n.worker.host}; attempt ${n.attempt}`,
    );
    const pad = `${indent}${' '.repeat(via.length)}    `;
    const params = Object.entries((n.params ?? {}) as Record<string, JsonValue>)
      .filter(([, v]) => !containsArtifact(v))
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
    if (params.length) lines.push(`${pad}params: ${truncate(params.join(' '), 160)}`);
    const rt = n.runtime;
    const text = (v: JsonValue | undefined) =>
      typeof v === 'string' || typeof v === 'number' ? String(v) : '';
    const tfjs = rt.tfjsBackend
      ? `, tfjs ${text(rt.tfjsVersion)} ${text(rt.tfjsBackend)}${rt.threads ? ` (${text(rt.threads)} threads)` : ''}`
      : '';
    lines.push(`${pad}runtime: node ${text(rt.node)}${tfjs}, device ${text(rt.device) || 'cpu'}`);
    for (const [name, v] of Object.entries(n.outputs)) {
      lines.push(
        `${pad}out ${name}: ${isArtifactRef(v) ? `${v.uri} (sha256:${short(v.digest)}…, ${v.sizeBytes} B)` : truncate(JSON.stringify(v), 120)}`,
      );
    }
    for (const input of n.inputs) {
      const files = input.files
        ? ` [directory: ${input.files.count} files, e.g. ${input.files.sample.join(', ')}]`
        : '';
      const source = input.fromStep
        ? `from ${graph.nodes[input.fromStep]?.label ?? input.fromStep}`
        : 'source';
      lines.push(
        `${pad}in  ${input.path}: ${input.uri} (sha256:${short(input.digest)}…)${files} <- ${source}`,
      );
    }
    n.parents.forEach((p) => visit(p, pad, '└─ '));
  };
  for (const root of graph.roots) visit(root, '', '');
  return lines.join('\n');
}

/** Graphviz: steps as boxes, artifacts as ellipses. */
export function lineageDot(graph: LineageGraph): string {
  const q = JSON.stringify;
  const lines = ['digraph lineage {', '  rankdir=BT;', '  node [fontname="Helvetica"];'];
  for (const n of Object.values(graph.nodes)) {
    lines.push(`  ${q(n.key)} [shape=box, style=rounded, label=${q(`${n.label}\n${n.kind}`)}];`);
    for (const [name, v] of Object.entries(n.outputs)) {
      if (!isArtifactRef(v)) continue;
      lines.push(
        `  ${q(v.digest)} [shape=ellipse, label=${q(`${name}\n${v.digest.slice(7, 19)}`)}];`,
        `  ${q(n.key)} -> ${q(v.digest)};`,
      );
    }
    for (const input of n.inputs) {
      if (!input.fromStep)
        lines.push(
          `  ${q(input.digest)} [shape=ellipse, style=dashed, label=${q(`source\n${input.digest.slice(7, 19)}`)}];`,
        );
      lines.push(`  ${q(input.digest)} -> ${q(n.key)};`);
    }
    for (const p of n.parents)
      if (!n.inputs.some((i) => i.fromStep === p)) lines.push(`  ${q(p)} -> ${q(n.key)} [style=dotted];`);
  }
  lines.push('}');
  return [...new Set(lines)].join('\n');
}

function containsArtifact(v: JsonValue): boolean {
  if (isArtifactRef(v)) return true;
  if (Array.isArray(v)) return v.some(containsArtifact);
  if (v !== null && typeof v === 'object') return Object.values(v).some(containsArtifact);
  return false;
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** One artifact `verify` found wrong. */
export interface VerifyProblem {
  step: string;
  role: string;
  uri: string;
  digest: string;
  status: 'missing' | 'corrupt';
}

/** Re-check every artifact of a run (outputs, inputs, provenance records) against its digest. */
export async function verifyRun(
  store: ArtifactStore,
  runId: string,
): Promise<{ checked: number; problems: VerifyProblem[] }> {
  const summary = await store.getRecord<RunSummary>(recordKeys.summary(runId));
  const keys = (await store.listRecords(recordKeys.steps(runId))).map((k) => k.slice(k.lastIndexOf('/') + 1));
  if (!summary && keys.length === 0)
    throw new AblateError(ErrorType.InvalidInput, `no run ${runId} in ${store.url}`);
  const toCheck = new Map<
    string,
    { ref: ArtifactRef | string; step: string; role: string; uri: string; digest: string }
  >();
  const add = (ref: ArtifactRef, step: string, role: string) => {
    if (!toCheck.has(ref.digest))
      toCheck.set(ref.digest, { ref, step, role, uri: ref.uri, digest: ref.digest });
  };
  if (summary) add(summary.plan, 'run', 'plan');
  const records = (
    await Promise.all(keys.map((k) => store.getRecord<StepRecord>(recordKeys.step(runId, k))))
  ).filter((r): r is StepRecord => r !== undefined);
  // Outputs first, so an artifact is named by the step that produced it rather than one that read it.
  for (const record of records) {
    add(record.provenance, record.label, 'provenance');
    for (const [name, v] of Object.entries(record.outputs))
      if (isArtifactRef(v)) add(v, record.label, `output ${name}`);
  }
  for (const record of records) {
    const prov = await store.getJson<ProvenanceRecord>(record.provenance).catch(() => undefined);
    for (const input of prov?.inputs ?? []) {
      add(
        { uri: input.uri, digest: input.digest, sizeBytes: 0, mediaType: input.mediaType },
        record.label,
        `input ${input.path}`,
      );
    }
  }
  const problems: VerifyProblem[] = [];
  for (const item of toCheck.values()) {
    const result = await store.verify(item.ref);
    if (result.status !== 'ok')
      problems.push({
        step: item.step,
        role: item.role,
        uri: item.uri,
        digest: item.digest,
        status: result.status,
      });
  }
  return { checked: toCheck.size, problems };
}

/** What `ablate verify RUN_ID --repair` did. */
export interface RepairReport {
  runId: string;
  /** What verify found before the repair. */
  found: VerifyProblem[];
  /** The run that recomputed the damaged steps (undefined when nothing needed it). */
  repairRunId?: string;
  /** Its outcome, e.g. COMPLETED. */
  repairStatus?: string;
  /** The damaged artifacts that read back intact after the repair. */
  repaired: VerifyProblem[];
  /** Those still damaged, each with the reason it could not be restored. */
  unrepaired: Array<VerifyProblem & { reason: string }>;
}

/**
 * Repair a run's damaged artifacts by recomputing them: start a new run of the same plan with the step
 * cache on. The cache serves every step whose outputs verify intact and recomputes the others (a
 * damaged output is a cache miss), and storing the recomputed bytes replaces each damaged blob, since a
 * put repairs a blob whose bytes do not match its key. Then verify the run again. What no step of the
 * plan produced (a source dataset, the plan itself) and a damaged provenance record (its bytes held the
 * original run's times) cannot be restored this way, and the report says so.
 */
export async function repairRun(
  session: Session,
  runId: string,
  options: { log?: (message: string) => void } = {},
): Promise<RepairReport> {
  const { store } = session;
  const log = options.log ?? (() => undefined);
  const before = await verifyRun(store, runId);
  const report: RepairReport = { runId, found: before.problems, repaired: [], unrepaired: [] };
  if (before.problems.length === 0) return report;
  const summary = await store.getRecord<RunSummary>(recordKeys.summary(runId));
  const planState = summary ? await store.verify(summary.plan) : undefined;
  if (!summary || planState?.status !== 'ok') {
    const reason = summary
      ? `the plan of run ${runId} (${summary.plan.uri}) is ${planState?.status}, so its steps cannot be run again`
      : `run ${runId} has no summary (it has not ended), so its plan is unknown; wait for it to end`;
    report.unrepaired = before.problems.map((p) => ({ ...p, reason }));
    return report;
  }
  const { startRun, waitForRun } = await import('./runs');
  const plan = await store.getJson<Plan>(summary.plan);
  const { runId: repairRunId } = await startRun(session, plan);
  log(
    `repair: run ${repairRunId} recomputes the damaged steps of ${runId} (intact ones come from the cache)`,
  );
  const outcome = await waitForRun(session, repairRunId);
  report.repairRunId = repairRunId;
  report.repairStatus = outcome.status;
  const after = new Map((await verifyRun(store, runId)).problems.map((p) => [p.digest, p]));
  for (const p of before.problems) {
    if (!after.has(p.digest)) report.repaired.push(p);
    else {
      const reason = p.role.startsWith('input ')
        ? 'no step of the plan produces it (a source): restore it from its origin, e.g. `ablate data import` again'
        : p.role === 'provenance'
          ? `a provenance record holds the times of its run, so it cannot be recomputed; the step's outputs were recomputed in ${repairRunId}`
          : p.role === 'plan'
            ? 'the plan artifact is damaged'
            : `the repair run ${repairRunId} ended ${outcome.status.toLowerCase()} without restoring it` +
              (outcome.status === 'COMPLETED' ? ' (the step is not deterministic, or not cacheable)' : '');
      report.unrepaired.push({ ...p, reason });
    }
  }
  return report;
}

/** The finished steps of a run, as records (sorted by label). */
async function stepRecords(store: ArtifactStore, runId: string): Promise<StepRecord[]> {
  const keys = await store.listRecords(recordKeys.steps(runId));
  if (keys.length === 0)
    throw new AblateError(ErrorType.InvalidInput, `no finished steps of run ${runId} in ${store.url}`);
  const records = await Promise.all(keys.map((k) => store.getRecord<StepRecord>(k)));
  return records
    .filter((r): r is StepRecord => r !== undefined)
    .sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
}

/** One finished step of a run, by its key or its label. */
export async function findStepRecord(store: ArtifactStore, runId: string, step: string): Promise<StepRecord> {
  const records = await stepRecords(store, runId);
  const found = records.find((r) => r.key === step) ?? records.find((r) => r.label === step);
  if (!found) {
    const labels = records.map((r) => r.label);
    throw new AblateError(
      ErrorType.InvalidInput,
      `run ${runId} has no finished step ${JSON.stringify(step)} (give its key or its label; steps: ` +
        `${truncate(labels.join(', '), 300)})`,
    );
  }
  return found;
}

/** One output of a step, as `ablate artifacts` lists it. */
export interface OutputListing {
  step: string;
  stepKey: string;
  status: StepRecord['status'];
  output: string;
  type: 'file' | 'directory' | 'value';
  uri?: string;
  digest?: string;
  mediaType?: string;
  /** A file's size, or the total of a directory's files. */
  sizeBytes?: number;
  /** For a directory: how many files. */
  files?: number;
  value?: JsonValue;
}

/** The outputs of a run's finished steps (or of one step). */
export async function runOutputs(
  store: ArtifactStore,
  runId: string,
  step?: string,
): Promise<OutputListing[]> {
  const records = step ? [await findStepRecord(store, runId, step)] : await stepRecords(store, runId);
  const out: OutputListing[] = [];
  for (const r of records) {
    for (const [output, v] of Object.entries(r.outputs)) {
      const base = { step: r.label, stepKey: r.key, status: r.status, output };
      if (!isArtifactRef(v)) {
        out.push({ ...base, type: 'value', value: v });
        continue;
      }
      const listing: OutputListing = {
        ...base,
        type: v.mediaType === TREE_MEDIA_TYPE ? 'directory' : 'file',
        uri: v.uri,
        digest: v.digest,
        mediaType: v.mediaType,
        sizeBytes: v.sizeBytes,
      };
      if (listing.type === 'directory') {
        const manifest = await store.getJson<TreeManifest>(v).catch(() => undefined);
        if (manifest) {
          listing.files = manifest.entries.length;
          listing.sizeBytes = manifest.entries.reduce((n, e) => n + e.sizeBytes, 0);
        }
      }
      out.push(listing);
    }
  }
  return out;
}
