/**
 * Provenance: the facts that make a number traceable (data, code, params, parents, runtime). The same
 * facts go out as OpenLineage run events (openlineage.ts) while the step runs.
 */
import { execFile } from 'node:child_process';
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
  /** package.json's `repository` URL, when it declares one. */
  repository?: string;
  commit: string;
  dirty: boolean;
  /** `sha256:` of the step kind's implementation modules and the lockfile (set per step: cache-key.ts). */
  kind?: string;
}

let codeVersion: Promise<CodeVersion> | undefined;

/** Read once per process. */
export function getCodeVersion(): Promise<CodeVersion> {
  codeVersion ??= (async () => {
    const root = new URL('../../../..', import.meta.url).pathname;
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
      name: string;
      version: string;
      repository?: string | { url?: string };
    };
    const repository = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url;
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
    return { package: pkg.name, version: pkg.version, ...(repository ? { repository } : {}), commit, dirty };
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

/** One `ctx.fetch` of a step attempt. */
export interface FetchedInput {
  digest: string;
  from: 'worker cache' | 'store, into the worker cache' | 'store, copied into the work directory';
  ms: number;
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
  /**
   * The inputs this attempt fetched (`ctx.fetch`), in order: from where (`worker cache`, `store, into the
   * worker cache`, `store, copied into the work directory`) and how long the step waited, in ms. Kept out
   * of `runtime`, which drift reports compare: where an input came from says nothing about a result.
   */
  fetched?: FetchedInput[];
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
