/**
 * Provenance: the facts that make a number traceable (data, code, params, parents, runtime), and the
 * same as OpenLineage run events for lineage tools.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { promisify } from 'node:util';

import {
  isArtifactRef,
  type ArtifactRef,
  type JsonValue,
  type StepOutputs,
} from '../../workflows/plan-types';

const run = promisify(execFile);

/** The code that ran: ablate's version and git commit, and whether the work tree had local changes. */
export interface CodeVersion {
  package: string;
  version: string;
  commit: string;
  dirty: boolean;
}

let codeVersion: Promise<CodeVersion> | undefined;

/** Read once per process. */
export function getCodeVersion(): Promise<CodeVersion> {
  codeVersion ??= (async () => {
    const root = new URL('../..', import.meta.url).pathname;
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
      name: string;
      version: string;
    };
    let commit = 'unknown';
    let dirty = false;
    try {
      commit = (await run('git', ['rev-parse', 'HEAD'], { cwd: root })).stdout.trim();
      dirty =
        (await run('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root })).stdout.trim() !==
        '';
    } catch {
      // Not a git checkout (e.g. an installed package): the version number is all there is.
    }
    return { package: pkg.name, version: pkg.version, commit, dirty };
  })();
  return codeVersion;
}

/** One input artifact, with where it sits in the parameters. */
export interface ProvenanceInput {
  path: string;
  uri: string;
  digest: string;
  mediaType: string;
  /** The upstream step that produced it, when it came from one. */
  fromStep?: string;
}

export interface ProvenanceRecord {
  schema: 'ablate.provenance/v1';
  runId: string;
  workflowId: string;
  temporalRunId: string;
  step: { key: string; ids: string[]; label: string; kind: string; kindVersion: string; cells: number };
  cacheKey: string;
  params: JsonValue;
  inputs: ProvenanceInput[];
  outputs: StepOutputs;
  metrics: Record<string, JsonValue>;
  parents: string[];
  code: CodeVersion;
  runtime: Record<string, JsonValue>;
  worker: { host: string; pid: number; taskQueue: string };
  attempt: number;
  startedAt: string;
  endedAt: string;
}

/** Every artifact reference inside a parameter value, with its JSON path. */
export function collectArtifactRefs(value: unknown, path = ''): Array<{ path: string; ref: ArtifactRef }> {
  if (isArtifactRef(value)) return [{ path: path || '/', ref: value }];
  if (Array.isArray(value)) return value.flatMap((v, i) => collectArtifactRefs(v, `${path}/${i}`));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => collectArtifactRefs(v, `${path}/${k}`));
  }
  return [];
}

export function workerIdentity(taskQueue: string) {
  return { host: hostname(), pid: process.pid, taskQueue };
}

/** OpenLineage 2-0-2 run events (START and COMPLETE) for one step run. */
export function openLineageEvents(record: ProvenanceRecord, namespace: string): object[] {
  const producer = `https://github.com/ablate/ablate/tree/${record.code.commit}`;
  const schemaURL = 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent';
  const dataset = (uri: string, digest: string) => ({
    namespace,
    name: uri,
    facets: {
      version: {
        _producer: producer,
        _schemaURL: 'https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json',
        datasetVersion: digest,
      },
    },
  });
  const run = {
    runId: uuidFromHex(record.cacheKey + record.runId),
    facets: {
      parent: {
        _producer: producer,
        _schemaURL: 'https://openlineage.io/spec/facets/1-0-1/ParentRunFacet.json',
        run: { runId: uuidFromHex(record.runId) },
        job: { namespace, name: record.runId },
      },
    },
  };
  const job = { namespace, name: `${record.step.label}` };
  const inputs = record.inputs.map((i) => dataset(i.uri, i.digest));
  const outputs = Object.values(record.outputs)
    .filter(isArtifactRef)
    .map((o) => dataset(o.uri, o.digest));
  return [
    { eventType: 'START', eventTime: record.startedAt, producer, schemaURL, run, job, inputs, outputs: [] },
    { eventType: 'COMPLETE', eventTime: record.endedAt, producer, schemaURL, run, job, inputs, outputs },
  ];
}

/** A deterministic, name-based UUID (version 5 layout over SHA-1), since OpenLineage wants UUIDs. */
function uuidFromHex(text: string): string {
  const h = createHash('sha1').update(text).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
