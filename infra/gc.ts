/**
 * `ablate gc`: delete what no kept run references. Conservative by construction: a blob goes only when
 * no kept record reaches it, following references through tree manifests, provenance records and
 * plans.
 *
 * What is kept, and why:
 * - Runs: every run that ended less than `olderThanMs` ago, every run Temporal still lists as running
 *   (and, when Temporal's answer is unknown, every run without a summary), and every run a record under
 *   `baselines/` names (`runId` anywhere in it): a baseline pins its run. Other runs are forgotten:
 *   their records (`runs/<id>/…`) are deleted.
 * - Cache entries: those created less than `olderThanMs` ago, those a kept run's steps used, and all of
 *   them while any run is running (a step may be about to serve one).
 * - Blobs: everything reachable from the kept records (every record except forgotten runs', dropped
 *   cache entries and the producer index `artifacts/…`, which only describes blobs): any
 *   `sha256:<hex>` string in a record, and inside the blobs reached that are ablate's own JSON (a
 *   tree's manifest names its files, a provenance record its inputs, a plan its source artifacts).
 *   Also kept: blobs written in the last `graceMs` (a step stores its outputs before its records) and
 *   blobs written since the oldest running run started (a running step's checkpoints are referenced
 *   only by its heartbeat).
 * - Work dirs of steps (`<tmp>/ablate-work-<pid>-…`, as the step runtime names them; other
 *   `ablate-*` directories, e.g. test stores or a dev server's home, are never touched): deleted when
 *   nothing in them changed for `olderThanMs` and no live process has its working directory or an open
 *   file inside (read from /proc; where there is no /proc, none is deleted).
 *
 * Deletion order: records first, then blobs, so a crash midway leaves unreferenced blobs (the next gc
 * takes them), never a record naming a deleted blob.
 */
import { readdir, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  recordKeys,
  type CacheEntry,
  type RunSummary,
  type StepRecord,
} from '../activities/runtime/run-records';
import { isArtifactRef, TREE_MEDIA_TYPE } from '../workflows/plan-types';
import { AblateError, ErrorType } from './errors';
import { FsBackend } from './store/fs-backend';
import type { ArtifactStore } from './store/index';

/** Blobs younger than this are never deleted: their step may not have written its records yet. */
export const DEFAULT_GC_GRACE_MS = 3_600_000;

/** What gc may assume and delete. */
export interface GcOptions {
  /** Runs that ended, cache entries created and work dirs last changed longer ago than this may go. */
  olderThanMs: number;
  /** List what would be deleted, delete nothing. */
  dryRun: boolean;
  /**
   * Runs Temporal lists as running, with their start times (epoch ms); undefined when Temporal could
   * not be asked (then every run without a summary counts as running).
   */
  runningRuns: Map<string, number> | undefined;
  /** @default DEFAULT_GC_GRACE_MS */
  graceMs?: number;
  /** Where work dirs live. @default os.tmpdir() */
  workDirRoot?: string;
  /** @default Date.now() */
  now?: number;
}

/** What gc deleted (or, with dryRun, would delete). */
export interface GcReport {
  dryRun: boolean;
  runs: { kept: number; forgotten: string[]; running: string[]; pinned: string[] };
  records: { deleted: number };
  cacheEntries: { kept: number; deleted: number };
  blobs: { kept: number; deleted: number; bytes: number; digests: string[] };
  workDirs: { deleted: string[]; bytes: number; skippedInUse: string[] };
  /** Leftover temporary files of the file store removed (0 in a dry run). */
  storeTempFiles: number;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
/** A step's work dir, as activities/runtime/work-dirs.ts names it: ablate-work-<pid>-<name>-<random>. */
const STEP_WORK_DIR = /^ablate-work-\d+-/;
/** ablate's own JSON blobs, whose references gc follows (trees, provenance records, plans). */
const FOLLOWED_MEDIA_TYPE = /^application\/vnd\.ablate\.[a-z-]+\+json$/;

/** Collect garbage in `store` (see the module doc for what is kept). */
export async function collectGarbage(store: ArtifactStore, options: GcOptions): Promise<GcReport> {
  const now = options.now ?? Date.now();
  const cutoff = now - options.olderThanMs;
  const graceMs = options.graceMs ?? DEFAULT_GC_GRACE_MS;
  const allRecords = await store.listRecords('');

  // Runs: which are kept.
  const runIds = new Set<string>();
  for (const key of allRecords) {
    const m = /^runs\/([^/]+)\//.exec(key);
    if (m) runIds.add(m[1]!);
  }
  const pinned = new Set<string>();
  for (const key of allRecords.filter((k) => k.startsWith('baselines/')))
    collectRunIds(await store.getRecord(key), pinned);
  const running = new Set<string>();
  const forgotten: string[] = [];
  for (const runId of [...runIds].sort()) {
    if (options.runningRuns?.has(runId)) {
      running.add(runId);
      continue;
    }
    if (pinned.has(runId)) continue;
    const summary = await store.getRecord<RunSummary>(recordKeys.summary(runId));
    if (!summary) {
      // Not ended. Unknown to a reachable Temporal: it was terminated or its server's history is gone;
      // aged by its newest step record. Temporal not asked: it may be running, keep it.
      if (!options.runningRuns) {
        running.add(runId);
        continue;
      }
      if ((await newestStepEndMs(store, runId)) < cutoff) forgotten.push(runId);
      continue;
    }
    if (Date.parse(summary.endedAt) < cutoff) forgotten.push(runId);
  }
  const forgottenSet = new Set(forgotten);
  const keptRuns = [...runIds].filter((id) => !forgottenSet.has(id));
  const keptRunSet = new Set(keptRuns);

  // Cache entries: which are kept.
  const usedCacheKeys = new Set<string>();
  for (const runId of keptRuns) {
    for (const key of await store.listRecords(recordKeys.steps(runId))) {
      const record = await store.getRecord<StepRecord>(key);
      if (record?.cacheKey) usedCacheKeys.add(record.cacheKey);
    }
  }
  const droppedCache = new Set<string>();
  let keptCache = 0;
  for (const key of allRecords.filter((k) => k.startsWith('cache/'))) {
    const entry = await store.getRecord<CacheEntry>(key);
    const keep =
      running.size > 0 ||
      !entry ||
      usedCacheKeys.has(entry.cacheKey) ||
      keptRunSet.has(entry.runId) ||
      !(Date.parse(entry.createdAt) < cutoff);
    if (keep) keptCache++;
    else droppedCache.add(key);
  }

  // Records to delete, and the roots: every other record.
  const recordsToDelete = allRecords.filter((k) => {
    const m = /^runs\/([^/]+)\//.exec(k);
    return (m && forgottenSet.has(m[1]!)) || droppedCache.has(k);
  });
  const deleting = new Set(recordsToDelete);
  const reachable = new Set<string>();
  const toFollow: string[] = [];
  const visit = (value: unknown): void => {
    if (typeof value === 'string') {
      if (DIGEST.test(value)) reachable.add(value);
      return;
    }
    if (Array.isArray(value)) {
      for (const v of value) visit(v);
      return;
    }
    if (value !== null && typeof value === 'object') {
      if (isArtifactRef(value) && FOLLOWED_MEDIA_TYPE.test(value.mediaType)) toFollow.push(value.digest);
      // A provenance record's inputs carry digest and mediaType without the rest of a reference.
      const v = value as { digest?: unknown; mediaType?: unknown };
      if (typeof v.digest === 'string' && v.mediaType === TREE_MEDIA_TYPE) toFollow.push(v.digest);
      for (const child of Object.values(value)) visit(child);
    }
  };
  for (const key of allRecords) {
    if (deleting.has(key) || key.startsWith('artifacts/')) continue;
    visit(await store.getRecord(key));
  }
  const followed = new Set<string>();
  while (toFollow.length) {
    const digest = toFollow.pop()!;
    if (followed.has(digest)) continue;
    followed.add(digest);
    // A blob that does not read back cannot name anything; it stays (it is referenced) for verify.
    const json = await store.getJson(digest).catch(() => undefined);
    visit(json);
  }

  // Blobs: unreferenced and old enough.
  const oldestRunningStart = Math.min(...[...(options.runningRuns?.values() ?? [])]);
  const blobs = await store.listBlobs();
  const doomed = blobs.filter(
    (b) => !reachable.has(b.digest) && b.modifiedMs < now - graceMs && !(b.modifiedMs >= oldestRunningStart),
  );

  const workDirs = await staleWorkDirs(options.workDirRoot ?? tmpdir(), cutoff);
  const report: GcReport = {
    dryRun: options.dryRun,
    runs: {
      kept: keptRuns.length,
      forgotten,
      running: [...running].sort(),
      pinned: [...pinned].filter((id) => runIds.has(id)).sort(),
    },
    records: { deleted: recordsToDelete.length },
    cacheEntries: { kept: keptCache, deleted: droppedCache.size },
    blobs: {
      kept: blobs.length - doomed.length,
      deleted: doomed.length,
      bytes: doomed.reduce((n, b) => n + b.sizeBytes, 0),
      digests: doomed.map((b) => b.digest),
    },
    workDirs: {
      deleted: workDirs.stale.map((d) => d.path),
      bytes: workDirs.stale.reduce((n, d) => n + d.sizeBytes, 0),
      skippedInUse: workDirs.inUse,
    },
    storeTempFiles: 0,
  };
  if (options.dryRun) return report;

  for (const key of recordsToDelete) await store.deleteRecord(key);
  for (const blob of doomed) {
    await store.deleteBlob(blob.digest);
    await store.deleteRecord(recordKeys.producer(blob.digest));
  }
  for (const dir of workDirs.stale) await rm(dir.path, { recursive: true, force: true });
  if (store.backend instanceof FsBackend)
    report.storeTempFiles = await store.backend.removeStaleTemp({ olderThanMs: graceMs });
  return report;
}

/** Every string under a `runId` property, at any depth. */
function collectRunIds(value: unknown, out: Set<string>): void {
  if (Array.isArray(value)) value.forEach((v) => collectRunIds(v, out));
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'runId' && typeof v === 'string') out.add(v);
      else collectRunIds(v, out);
    }
  }
}

async function newestStepEndMs(store: ArtifactStore, runId: string): Promise<number> {
  let newest = -Infinity;
  for (const key of await store.listRecords(recordKeys.steps(runId))) {
    const record = await store.getRecord<StepRecord>(key);
    const t = record ? Date.parse(record.endedAt) : NaN;
    // A record without a readable time: treat the run as current.
    newest = Math.max(newest, Number.isNaN(t) ? Infinity : t);
  }
  return newest;
}

/** Step work dirs under `root` unchanged since `cutoff`, split by whether a live process uses them. */
async function staleWorkDirs(
  root: string,
  cutoff: number,
): Promise<{ stale: Array<{ path: string; sizeBytes: number }>; inUse: string[] }> {
  const candidates: Array<{ path: string; sizeBytes: number }> = [];
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch {
    return { stale: [], inUse: [] };
  }
  for (const entry of entries) {
    if (!entry.isDirectory() || !STEP_WORK_DIR.test(entry.name)) continue;
    const path = join(root, entry.name);
    const usage = await treeUsage(path).catch(() => undefined);
    if (usage && usage.newestMs < cutoff) candidates.push({ path, sizeBytes: usage.sizeBytes });
  }
  if (candidates.length === 0) return { stale: [], inUse: [] };
  const used = await pathsInUse();
  if (!used) return { stale: [], inUse: candidates.map((c) => c.path) };
  const inUse = (p: string) => [...used].some((u) => u === p || u.startsWith(`${p}/`));
  return {
    stale: candidates.filter((c) => !inUse(c.path)),
    inUse: candidates.filter((c) => inUse(c.path)).map((c) => c.path),
  };
}

async function treeUsage(dir: string): Promise<{ newestMs: number; sizeBytes: number }> {
  let newestMs = (await stat(dir)).mtimeMs;
  let sizeBytes = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const info = await stat(join(entry.parentPath, entry.name)).catch(() => undefined);
    if (!info) continue;
    newestMs = Math.max(newestMs, info.mtimeMs);
    if (info.isFile()) sizeBytes += info.size;
  }
  return { newestMs, sizeBytes };
}

/** Working directories and open files of every live process; undefined where /proc cannot tell. */
async function pathsInUse(): Promise<Set<string> | undefined> {
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  const used = new Set<string>();
  for (const pid of pids) {
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => undefined);
    if (cwd) used.add(cwd);
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => undefined);
      if (target?.startsWith('/')) used.add(target);
    }
  }
  return used;
}

/** The refusal when Temporal cannot be asked which runs are running. */
export function temporalUnknownError(address: string, cause: unknown): AblateError {
  return new AblateError(
    ErrorType.InvalidConfig,
    `cannot ask Temporal at ${address} which runs are running (${(cause as Error).message ?? String(cause)}); ` +
      'nothing was deleted. Start the server, or pass --force to keep every run that has not ended ' +
      'and delete only what finished runs left',
    { cause },
  );
}
