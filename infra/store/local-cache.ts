/**
 * A worker-local, content-addressed cache of input artifacts: a step reads its inputs in place, from a
 * read-only copy on the worker's disk, instead of a fresh copy per attempt. An input already on the
 * worker is never moved again, across attempts, steps, runs and worker restarts.
 *
 * Layout under the cache directory (one per worker host; several worker processes may share it):
 *
 *   entries/<hex>.file/data         a file artifact (0444)
 *   entries/<hex>.tree/data/…       a tree artifact as a folder (files 0444, folders 0555)
 *   entries/<name>/meta.json        digest, kind, bytes and files; its mtime is the entry's last use
 *   tmp/<pid>-<random>/             a download in progress, or an evicted entry being removed
 *   pins/<name>@<pid>-<n>           entry <name> is in use by process <pid>
 *
 * Keys: the artifact's digest plus its kind (a file and a tree manifest with the same bytes are
 * different inputs). Integrity: an entry is verified once, on insert (the store checks every file
 * against its digest, and a tree's manifest); afterwards it is trusted, and its read-only modes keep
 * steps from changing it by mistake. An entry whose folder or data went missing is fetched again.
 *
 * Concurrency: steps of one process that need the same entry share one download (an in-flight map);
 * processes race by downloading to `tmp/` and renaming into `entries/` (atomic: the loser discards its
 * copy and uses the winner's).
 *
 * Eviction: least recently used first, by the mtime of `meta.json`, touched on every use (a marker per
 * entry rather than one index file: no lock and no rewrite of a shared file on the hot path, and it
 * survives a crash), down to `maxBytes`, after each insert. An entry in use is never evicted: in this
 * process a reference count says so, for other processes a pin file, written before the entry is looked
 * at. The evictor moves an entry away first and looks at the pins again after, putting it back if a
 * user appeared meanwhile, so the two can never both miss each other. Entries in use may keep the cache
 * above its bound until they are released.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { isAlive } from '../server/registry';
import { TREE_MEDIA_TYPE, type ArtifactRef } from '../../workflows/plan-types';
import { digestHex, type ArtifactStore } from './artifact-store';
import { removeTree } from './read-only';
import type { TransferOptions, TransferProgress } from './transfer';

/** Where and how big a {@link LocalCache} is. */
export interface LocalCacheOptions {
  /** The cache's directory; made on first use. */
  dir: string;
  /** Bytes of entries kept when none is in use (the LRU bound). */
  maxBytes: number;
  /** Where eviction problems are told (they never fail a step). */
  warn?: (message: string) => void;
}

/** An entry held for a step: its path stays valid until `release`. */
export interface CacheLease {
  /** The read-only file, or folder of a tree, inside the cache. */
  readonly path: string;
  /** Whether the entry was already there (no transfer was made for this lease). */
  readonly hit: boolean;
  /** Let the entry be evicted again (once every holder released it). Idempotent. */
  release(): void;
}

/** Counts for tests and benchmarks. */
export interface LocalCacheStats {
  hits: number;
  /** Downloads started by this process. */
  downloads: number;
  /** Entries this process evicted. */
  evictions: number;
}

interface EntryMeta {
  digest: string;
  kind: 'file' | 'tree';
  sizeBytes: number;
  files: number;
}

interface InFlight {
  done: Promise<void>;
  controller: AbortController;
  waiters: number;
  listeners: Set<(p: TransferProgress) => void>;
}

export class LocalCache {
  readonly dir: string;
  readonly maxBytes: number;
  readonly stats: LocalCacheStats = { hits: 0, downloads: 0, evictions: 0 };
  private readonly entriesDir: string;
  private readonly tmpDir: string;
  private readonly pinsDir: string;
  private readonly warn: (message: string) => void;
  /** Holders in this process, by entry name. */
  private readonly holders = new Map<string, number>();
  /** This process's pin file of each held entry. */
  private readonly pinFiles = new Map<string, Promise<string | undefined>>();
  private readonly inFlight = new Map<string, InFlight>();
  /** Sizes of entries seen (immutable: a digest names the same bytes forever). */
  private readonly sizes = new Map<string, number>();
  private ready: Promise<void> | undefined;
  private evicting: Promise<void> = Promise.resolve();
  private pinCount = 0;

  constructor(
    readonly store: ArtifactStore,
    options: LocalCacheOptions,
  ) {
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 0)
      throw new RangeError(`cache size must be a whole number of bytes >= 0, got ${options.maxBytes}`);
    this.dir = options.dir;
    this.maxBytes = options.maxBytes;
    this.entriesDir = join(this.dir, 'entries');
    this.tmpDir = join(this.dir, 'tmp');
    this.pinsDir = join(this.dir, 'pins');
    this.warn = options.warn ?? ((m) => console.error(`[warn] ${m}`));
  }

  /** The entry's path inside the cache (it may not be there). */
  pathOf(ref: ArtifactRef): string {
    return join(this.entriesDir, entryName(ref), 'data');
  }

  /**
   * The artifact as a read-only local path, downloaded (verified) on a miss. Hold the lease while the
   * path is used. `signal` stops waiting; a download shared with other steps goes on for them, and one
   * nobody waits for any more is stopped and leaves nothing behind. `onProgress` hears of the download
   * (the one this call started or joined); a hit reports nothing.
   */
  async acquire(ref: ArtifactRef, options: TransferOptions = {}): Promise<CacheLease> {
    options.signal?.throwIfAborted();
    const name = entryName(ref);
    // Held before the entry is looked at (synchronously, then by the pin file): an eviction either sees
    // the holder, or moves the entry away before it is looked at, and then it is fetched again.
    this.hold(name);
    let released = false;
    const lease = (hit: boolean): CacheLease => ({
      path: join(this.entriesDir, name, 'data'),
      hit,
      release: () => {
        if (released) return;
        released = true;
        this.unhold(name);
      },
    });
    try {
      await this.init();
      await this.pinFiles.get(name);
      for (let round = 0; ; round++) {
        if (await this.isPresent(name)) {
          if (round === 0) this.stats.hits += 1;
          return lease(round === 0);
        }
        if (round === 2)
          throw new Error(`cache entry ${name} in ${this.entriesDir} vanished right after it was stored`);
        await this.download(ref, name, options);
      }
    } catch (err) {
      released = true;
      this.unhold(name);
      throw err;
    }
  }

  /** Remove least recently used entries not in use until the entries fit `maxBytes`. */
  evict(): Promise<void> {
    // One pass at a time in this process: two would count the same bytes twice.
    const pass = this.evicting.then(() => this.evictPass());
    this.evicting = pass.catch(() => undefined);
    return pass;
  }

  /** Total bytes of the entries now in the cache. */
  async sizeBytes(): Promise<number> {
    let total = 0;
    for (const e of await this.listEntries()) total += e.sizeBytes;
    return total;
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      await Promise.all(
        [this.entriesDir, this.tmpDir, this.pinsDir].map((d) => mkdir(d, { recursive: true })),
      );
      // What killed processes left: half-done downloads and pins nobody holds.
      for (const name of await readdir(this.tmpDir)) {
        const pid = Number(/^(\d+)-/.exec(name)?.[1]);
        if (pid && pid !== process.pid && !isAlive(pid))
          await removeTree(join(this.tmpDir, name)).catch(() => undefined);
      }
      for (const name of await readdir(this.pinsDir)) {
        const pid = pinPid(name);
        if (pid && pid !== process.pid && !isAlive(pid))
          await unlink(join(this.pinsDir, name)).catch(() => undefined);
      }
    })();
    return this.ready;
  }

  private hold(name: string): void {
    const n = this.holders.get(name) ?? 0;
    this.holders.set(name, n + 1);
    if (n > 0) return;
    const file = join(this.pinsDir, `${name}@${process.pid}-${++this.pinCount}`);
    this.pinFiles.set(
      name,
      this.init().then(
        () => writeFile(file, '').then(() => file),
        () => undefined,
      ),
    );
  }

  private unhold(name: string): void {
    const n = (this.holders.get(name) ?? 1) - 1;
    if (n > 0) {
      this.holders.set(name, n);
      return;
    }
    this.holders.delete(name);
    const pin = this.pinFiles.get(name);
    this.pinFiles.delete(name);
    void pin?.then((file) => (file ? unlink(file) : undefined)).catch(() => undefined);
  }

  /** Whether the entry is there; a use (touches its marker). A half-there entry is removed. */
  private async isPresent(name: string): Promise<boolean> {
    const entry = join(this.entriesDir, name);
    const now = new Date();
    const touched = await utimes(join(entry, 'meta.json'), now, now).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return false;
        throw err;
      },
    );
    const hasData = await stat(join(entry, 'data')).then(
      () => true,
      () => false,
    );
    if (touched && hasData) return true;
    // Someone deleted part of it by hand: fetch it again (the rename into place needs the name free).
    if (touched || hasData) await this.discard(entry).catch(() => undefined);
    return false;
  }

  /** Download into the cache, or join the download of the same entry already in progress. */
  private async download(ref: ArtifactRef, name: string, options: TransferOptions): Promise<void> {
    let flight = this.inFlight.get(name);
    if (flight?.controller.signal.aborted) {
      // Everyone waiting for it gave up, and it is stopping: start afresh once it has stopped.
      await flight.done.catch(() => undefined);
      flight = this.inFlight.get(name);
    }
    if (!flight) {
      const controller = new AbortController();
      const listeners = new Set<(p: TransferProgress) => void>();
      const started: InFlight = { done: Promise.resolve(), controller, waiters: 0, listeners };
      started.done = this.insert(ref, name, controller.signal, (p) => {
        for (const l of listeners) l(p);
      }).finally(() => this.inFlight.delete(name));
      this.inFlight.set(name, started);
      flight = started;
    }
    const current = flight;
    current.waiters += 1;
    if (options.onProgress) current.listeners.add(options.onProgress);
    const signal = options.signal;
    let onAbort: (() => void) | undefined;
    let left: 'last' | 'others' | undefined;
    try {
      if (!signal) return await current.done;
      const outcome = await Promise.race([
        current.done.then(
          () => ({ ok: true as const }),
          (error: unknown) => ({ ok: false as const, error }),
        ),
        new Promise<'aborted'>((resolve) => {
          onAbort = () => resolve('aborted');
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
      if (outcome === 'aborted') {
        current.waiters -= 1;
        left = current.waiters > 0 ? 'others' : 'last';
        if (left === 'last') {
          // Nobody else wants it: stop the download, and return once it stopped and cleaned up.
          current.controller.abort(signal.reason);
          await current.done.catch(() => undefined);
        }
        throw signal.reason;
      }
      if (!outcome.ok) throw outcome.error;
    } finally {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      if (!left) current.waiters -= 1;
      if (options.onProgress) current.listeners.delete(options.onProgress);
    }
  }

  private async insert(
    ref: ArtifactRef,
    name: string,
    signal: AbortSignal,
    onProgress: (p: TransferProgress) => void,
  ): Promise<void> {
    this.stats.downloads += 1;
    const tmp = join(this.tmpDir, `${process.pid}-${randomBytes(6).toString('hex')}`);
    await mkdir(tmp);
    try {
      // Verified here, once: every file against its digest (and a tree's manifest against its own).
      const { files, sizeBytes } = await this.store.get(ref, join(tmp, 'data'), {
        signal,
        onProgress,
        readOnly: true,
      });
      const meta: EntryMeta = {
        digest: ref.digest,
        kind: isTree(ref) ? 'tree' : 'file',
        sizeBytes,
        files,
      };
      await writeFile(join(tmp, 'meta.json'), JSON.stringify(meta));
      try {
        await rename(tmp, join(this.entriesDir, name));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Another process stored the same entry first: theirs serves, ours goes.
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
        await removeTree(tmp);
      }
      this.sizes.set(name, sizeBytes);
    } catch (err) {
      await removeTree(tmp).catch(() => undefined);
      throw err;
    }
    // Eviction never fails the step that needed the entry: the bound is a target, not a guarantee.
    await this.evict().catch((err: unknown) =>
      this.warn(`worker cache ${this.dir}: eviction failed: ${(err as Error).message}`),
    );
  }

  private async evictPass(): Promise<void> {
    const entries = await this.listEntries();
    let total = entries.reduce((sum, e) => sum + e.sizeBytes, 0);
    if (total <= this.maxBytes) return;
    entries.sort((a, b) => a.lastUseMs - b.lastUseMs);
    let pinned = await this.pinnedElsewhere();
    for (const e of entries) {
      if (total <= this.maxBytes) break;
      if (this.holders.has(e.name) || pinned.has(e.name)) continue;
      const entry = join(this.entriesDir, e.name);
      const away = join(this.tmpDir, `${process.pid}-evicted-${randomBytes(6).toString('hex')}`);
      try {
        await rename(entry, away);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        total -= e.sizeBytes; // another process evicted it
        continue;
      }
      pinned = await this.pinnedElsewhere();
      if (this.holders.has(e.name) || pinned.has(e.name)) {
        // A user appeared between the look and the move: it may have seen the entry, so put it back.
        await rename(away, entry).catch(() => removeTree(away));
        continue;
      }
      // Out of the way already (renamed): the disk space comes back in the background, so a step
      // waiting for its own entry does not wait for a big folder to be deleted.
      void removeTree(away).catch((err: unknown) =>
        this.warn(`worker cache ${this.dir}: could not remove ${away}: ${(err as Error).message}`),
      );
      this.sizes.delete(e.name);
      this.stats.evictions += 1;
      total -= e.sizeBytes;
    }
  }

  /** Entries held by other live processes. */
  private async pinnedElsewhere(): Promise<Set<string>> {
    const out = new Set<string>();
    for (const file of await readdir(this.pinsDir)) {
      const at = file.lastIndexOf('@');
      const pid = pinPid(file);
      if (at < 0 || !pid || pid === process.pid) continue;
      if (isAlive(pid)) out.add(file.slice(0, at));
    }
    return out;
  }

  private async listEntries(): Promise<Array<{ name: string; sizeBytes: number; lastUseMs: number }>> {
    await this.init();
    const out = [];
    for (const name of await readdir(this.entriesDir)) {
      const meta = join(this.entriesDir, name, 'meta.json');
      const info = await stat(meta).catch(() => undefined);
      if (!info) continue;
      let size = this.sizes.get(name);
      if (size === undefined) {
        const parsed = await readFile(meta, 'utf8')
          .then((t) => JSON.parse(t) as EntryMeta)
          .catch(() => undefined);
        if (!parsed || !Number.isSafeInteger(parsed.sizeBytes)) continue;
        size = parsed.sizeBytes;
        this.sizes.set(name, size);
      }
      out.push({ name, sizeBytes: size, lastUseMs: info.mtimeMs });
    }
    return out;
  }

  private async discard(entry: string): Promise<void> {
    const away = join(this.tmpDir, `${process.pid}-broken-${randomBytes(6).toString('hex')}`);
    await rename(entry, away);
    await removeTree(away);
  }
}

function isTree(ref: ArtifactRef): boolean {
  return ref.mediaType === TREE_MEDIA_TYPE;
}

/** `<hex>.file` or `<hex>.tree`. */
function entryName(ref: ArtifactRef): string {
  return `${digestHex(ref.digest)}.${isTree(ref) ? 'tree' : 'file'}`;
}

function pinPid(file: string): number | undefined {
  const m = /@(\d+)-\d+$/.exec(file);
  return m?.[1] ? Number(m[1]) : undefined;
}
