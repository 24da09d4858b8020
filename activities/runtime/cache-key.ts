/**
 * The step cache key: what decides a step's outputs. A key hit means the same kind at the same
 * version, the same code (the kind's module closure and the lockfile: see code-version.ts), the same
 * runtime where numerics depend on it (e.g. the tfjs backend), and the same parameters with every
 * artifact replaced by its digest (so the same data under another URI is still a hit).
 */
import { contentHash } from '../../infra/canonical-json';
import { isArtifactRef, type JsonValue } from '../../workflows/plan-types';
import { codeDigest } from './code-version';
import type { StepKind } from './step-kind';

/** Everything about the code and runtime that a cache key (and lineage) names. */
export interface KindIdentity {
  kind: string;
  version: string;
  /** `sha256:` of the implementation's module closure and the lockfile. */
  code: string;
  /** The runtime facts that change results (absent for kinds whose results do not depend on it). */
  runtime?: JsonValue;
}

/** The identity of `kind` running `params` on this worker. */
export async function kindIdentity<P>(kind: StepKind<P>, params: P): Promise<KindIdentity> {
  const runtime = kind.runtimeKey?.(params);
  return {
    kind: kind.name,
    version: kind.version,
    code: await codeDigest(kind.module),
    ...(runtime !== undefined ? { runtime } : {}),
  };
}

/** The cache key of a step: its kind's identity and its parameters with artifacts as digests. */
export function cacheKeyOf(identity: KindIdentity, params: unknown): string {
  return contentHash({ ...identity, params: digestsOnly(params) });
}

function digestsOnly(value: unknown): unknown {
  if (isArtifactRef(value)) return { digest: value.digest };
  if (Array.isArray(value)) return value.map(digestsOnly);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, digestsOnly(v)]));
  }
  return value;
}
