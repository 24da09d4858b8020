/**
 * Checkpoints by cache key: `records/checkpoints/<cacheKey>` lists the checkpoints saved for one step
 * configuration, newest first, whatever run or attempt wrote them. A retried attempt, a new
 * `ablate run` of the same file after a crash, and `ablate resume` all find them here, so training
 * continues from the newest checkpoint that still loads instead of from iteration 0.
 *
 * Failure modes handled here:
 *  - a checkpoint that is corrupt, missing or does not fit the model: the loader reports it with
 *    `rejected`, it is dropped from the index (a corrupt blob is deleted too, so that a later identical
 *    checkpoint can be stored again) and the next older one is tried, with a warning;
 *  - unbounded growth: `saved` keeps the K most recently saved entries and deletes the blobs of older
 *    ones (by save time: a checkpoint just saved is never the one deleted);
 *  - two attempts of the same configuration at once (a zombie run): writes are read-modify-write of a
 *    small record; at worst one entry is lost, never a blob that is still listed.
 */
import { AblateError, ErrorType } from '../../infra/errors';
import { blobKey } from '../../infra/store/artifact-store';
import type { ArtifactStore } from '../../infra/store/index';
import type { ArtifactRef } from '../../workflows/plan-types';
import type { CheckpointCandidate, StepCheckpoints, StepLogger, StepProgress } from './step-kind';

/** Checkpoints kept per cache key unless the step says otherwise. */
export const DEFAULT_KEEP_CHECKPOINTS = 3;

/** One saved checkpoint. */
export interface CheckpointEntry {
  iteration: number;
  ref: ArtifactRef;
  /** ISO time it was saved. */
  at: string;
  /** The run that saved it. */
  runId?: string;
}

/** The record under `checkpoints/<cacheKey>`. */
export interface CheckpointIndexRecord {
  cacheKey: string;
  /** Newest (highest iteration) first. */
  entries: CheckpointEntry[];
}

/** The record key of a cache key's checkpoint index. */
export function checkpointIndexKey(cacheKey: string): string {
  return `checkpoints/${cacheKey}`;
}

/** The checkpoint index of one cache key. */
export interface CheckpointIndex {
  readonly cacheKey: string;
  list(): Promise<CheckpointEntry[]>;
  /** Add (or refresh) an entry; keep the newest `keep`, deleting older checkpoints' blobs. */
  add(entry: CheckpointEntry, keep: number): Promise<void>;
  /** Drop an entry; with `deleteBlob`, also its blob (a corrupt one must go, so it can be stored again). */
  remove(digest: string, deleteBlob: boolean): Promise<void>;
}

// Index updates of one process are serialised per cache key (a step heartbeats while saving).
const queues = new Map<string, Promise<unknown>>();
function serialised<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const next = (queues.get(key) ?? Promise.resolve()).then(fn, fn);
  queues.set(
    key,
    next.catch(() => undefined),
  );
  return next;
}

export function createCheckpointIndex(store: ArtifactStore, cacheKey: string): CheckpointIndex {
  const key = checkpointIndexKey(cacheKey);
  const read = async (): Promise<CheckpointEntry[]> =>
    (await store.getRecord<CheckpointIndexRecord>(key))?.entries ?? [];
  const write = (entries: CheckpointEntry[]) =>
    store.putRecord(key, { cacheKey, entries } satisfies CheckpointIndexRecord);
  return {
    cacheKey,
    list: read,
    add: (entry, keep) =>
      serialised(key, async () => {
        // Newest by the time they were saved, not by iteration: another run of the same configuration
        // may have gone further, and deleting what this run just saved would leave it nothing.
        const entries = [entry, ...(await read()).filter((e) => e.ref.digest !== entry.ref.digest)].sort(
          (a, b) => (a === entry ? -1 : b === entry ? 1 : b.at.localeCompare(a.at)),
        );
        const kept = entries.slice(0, Math.max(1, keep));
        const keptDigests = new Set(kept.map((e) => e.ref.digest));
        await write([...kept].sort((a, b) => b.iteration - a.iteration));
        // Only after the index no longer lists them, so a reader never follows an entry to a deleted blob.
        for (const old of entries.slice(kept.length)) {
          if (!keptDigests.has(old.ref.digest))
            await store.backend.delete(blobKey(old.ref.digest)).catch(() => undefined);
        }
      }),
    remove: (digest, deleteBlob) =>
      serialised(key, async () => {
        const entries = await read();
        const kept = entries.filter((e) => e.ref.digest !== digest);
        if (kept.length !== entries.length) await write(kept);
        if (deleteBlob) await store.backend.delete(blobKey(digest)).catch(() => undefined);
      }),
  };
}

/** True for load failures that mean "this checkpoint is unusable, try an older one". */
export function isUnusableCheckpoint(err: unknown): boolean {
  return (
    err instanceof AblateError &&
    (
      [
        ErrorType.CorruptArtifact,
        ErrorType.ArtifactNotFound,
        ErrorType.ShapeMismatch,
        ErrorType.InvalidInput,
      ] as string[]
    ).includes(err.type)
  );
}

export interface StepCheckpointsOptions {
  /** The index of the step's cache key; without one (local runs) only the heartbeat is a candidate. */
  index?: CheckpointIndex;
  /** The previous attempt's last progress report. */
  heartbeat?: StepProgress;
  runId?: string;
  /** Resume only from checkpoints this run saved (`--no-cache`: recompute, do not reuse other runs'). */
  ownRunOnly?: boolean;
  log: StepLogger;
  /** Called once the step has resumed from a checkpoint. */
  onResumed?: (candidate: CheckpointCandidate) => void;
}

/** The {@link StepCheckpoints} a step context hands to a step. */
export function stepCheckpoints(options: StepCheckpointsOptions): StepCheckpoints {
  const { index, log } = options;
  const rejected = new Set<string>();
  return {
    async candidates() {
      const out: CheckpointCandidate[] = [];
      const seen = new Set<string>();
      const hb = options.heartbeat?.checkpoint;
      if (index) {
        for (const e of await index.list()) {
          if (seen.has(e.ref.digest) || (options.ownRunOnly && e.runId !== options.runId)) continue;
          seen.add(e.ref.digest);
          out.push({ iteration: e.iteration, ref: e.ref, source: 'index' });
        }
      }
      if (hb && !seen.has(hb.digest)) {
        // Not (or no longer) in the index: place it by its iteration when the heartbeat says it.
        const iteration = options.heartbeat?.checkpointIteration ?? Number.MAX_SAFE_INTEGER;
        out.push({ iteration, ref: hb, source: 'heartbeat' });
      }
      return out.filter((c) => !rejected.has(c.ref.digest)).sort((a, b) => b.iteration - a.iteration);
    },
    async saved(iteration: number, ref: ArtifactRef, keep = DEFAULT_KEEP_CHECKPOINTS) {
      await index?.add({ iteration, ref, at: new Date().toISOString(), runId: options.runId }, keep);
    },
    async rejected(candidate, err) {
      rejected.add(candidate.ref.digest);
      log.warn(
        `checkpoint at iteration ${candidate.iteration} (${candidate.ref.uri}) cannot be used: ${(err as Error).message ?? String(err)}; trying an older one`,
      );
      const corrupt = err instanceof AblateError && err.type === ErrorType.CorruptArtifact;
      await index?.remove(candidate.ref.digest, corrupt);
    },
    resumed(candidate) {
      options.onResumed?.(candidate);
    },
  };
}
