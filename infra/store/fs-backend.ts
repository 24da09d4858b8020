/**
 * The embedded default store: a directory on the local filesystem. Writes go to a temporary file in the
 * same filesystem and appear with one atomic link/rename, so a crash or a full disk never leaves a
 * half-written object visible. Blobs are stored read-only (0444): ablate never writes one in place; a
 * damaged blob is replaced by a rename over it.
 *
 * Verified-stat memo: hashing a blob proves it intact only for as long as its bytes stay the same. After
 * a blob hashed right, its fingerprint (size, mtime, ctime, inode) is remembered in this process and,
 * for a blob of 1 MiB or more, in a sidecar file `.verified/<key>`; a later check whose stat gives the same fingerprint trusts it without
 * reading the bytes. Any write, truncation, replacement, chmod or `touch` changes the ctime (which no
 * user call can set back), so a changed blob is always hashed again. What a stat cannot see is bit rot
 * under an unchanged inode: `ablate verify RUN_ID` always reads every byte.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  chmod,
  copyFile,
  link,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Readable } from 'node:stream';

import { AblateError, ErrorType, permanent } from '../errors';
import type { BlobBackend, QuickCheck, StoredObject } from './backend';

/** Mode of stored blobs: nobody writes a content-addressed object in place. */
const BLOB_MODE = 0o444;

/**
 * Blobs at least this large get a `.verified/` sidecar. Below it, hashing the blob again costs about what
 * reading a sidecar does, and writing one costs far more (bench/verify.ts: a 10k-file folder of 4 KiB
 * files took ~20x longer to verify cold with a sidecar per file); the in-process memo still applies.
 */
const SIDECAR_MIN_BYTES = 1 << 20;

function isBlobKey(key: string): boolean {
  return key.startsWith('sha256/');
}

export class FsBackend implements BlobBackend {
  readonly url: string;
  private readonly tmpDir: string;
  /** Fingerprints of blobs verified by this process, by key. */
  private readonly verified = new Map<string, string>();

  constructor(readonly root: string) {
    this.url = pathToFileURL(root).href;
    this.tmpDir = join(root, '.tmp');
  }

  /** A backend for a `file://` URL. */
  static fromUrl(url: string): FsBackend {
    return new FsBackend(fileURLToPath(url));
  }

  uriFor(key: string): string {
    return pathToFileURL(this.pathOf(key)).href;
  }

  private pathOf(key: string): string {
    if (key.startsWith('/') || key.split('/').includes('..')) {
      throw permanent(ErrorType.InvalidInput, `bad store key: ${key}`);
    }
    return join(this.root, ...key.split('/'));
  }

  async exists(key: string): Promise<boolean> {
    try {
      await stat(this.pathOf(key));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  private async tempPath(): Promise<string> {
    await mkdir(this.tmpDir, { recursive: true });
    return join(this.tmpDir, `${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  async putFile(
    key: string,
    path: string,
    _sizeBytes?: number,
    options: { replace?: boolean } = {},
  ): Promise<void> {
    const dest = this.pathOf(key);
    const tmp = await this.tempPath();
    try {
      await copyFile(path, tmp);
      if (isBlobKey(key)) await chmod(tmp, BLOB_MODE);
      await mkdir(dirname(dest), { recursive: true });
      if (options.replace) {
        // A repair: rename() replaces the damaged object atomically; readers see old or new, never half.
        await rename(tmp, dest);
      } else {
        // link() refuses to replace an existing file: an immutable object is never overwritten, and a
        // concurrent writer of the same content simply finds it there.
        await link(tmp, dest).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
      }
    } catch (err) {
      throw translate(err, dest);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async putBytes(key: string, data: Uint8Array): Promise<void> {
    const dest = this.pathOf(key);
    const tmp = await this.tempPath();
    try {
      await writeFile(tmp, data, isBlobKey(key) ? { mode: BLOB_MODE } : {});
      await mkdir(dirname(dest), { recursive: true });
      await rename(tmp, dest);
    } catch (err) {
      await rm(tmp, { force: true });
      throw translate(err, dest);
    }
  }

  async quickCheck(key: string): Promise<QuickCheck> {
    let info;
    try {
      info = await stat(this.pathOf(key), { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'missing' };
      throw err;
    }
    if (!info.isFile()) return { status: 'corrupt', actual: 'not a regular file' };
    // Nanosecond times: a rewrite within the same millisecond still changes the fingerprint.
    const token = `${info.size}:${info.mtimeNs}:${info.ctimeNs}:${info.ino}:${info.dev}`;
    if (this.verified.get(key) === token) return { status: 'ok' };
    const remembered =
      info.size >= SIDECAR_MIN_BYTES
        ? await readFile(this.sidecarOf(key), 'utf8').catch(() => undefined)
        : undefined;
    if (remembered === token) {
      this.verified.set(key, token);
      return { status: 'ok' };
    }
    return { status: 'unknown', token };
  }

  async rememberVerified(key: string, token: string): Promise<void> {
    this.verified.set(key, token);
    if (Number(token.slice(0, token.indexOf(':'))) < SIDECAR_MIN_BYTES) return;
    // Best effort: a read-only store or a full disk only costs a re-hash in the next process.
    const sidecar = this.sidecarOf(key);
    const tmp = `${sidecar}.${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await mkdir(dirname(sidecar), { recursive: true });
      await writeFile(tmp, token);
      await rename(tmp, sidecar);
    } catch {
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }

  private sidecarOf(key: string): string {
    return join(this.root, '.verified', ...key.split('/'));
  }

  async openRead(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    const stream = createReadStream(path, { highWaterMark: 1 << 20 });
    // Surface ENOENT here, as a typed error, rather than on the first read.
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', (err) => reject(translate(err, path) as Error));
    });
    return stream;
  }

  async list(prefix: string): Promise<string[]> {
    const base = this.pathOf(prefix.replace(/\/+$/, '') || '.');
    let entries;
    try {
      entries = await readdir(base, { recursive: true, withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return entries
      .filter((e) => e.isFile())
      .map((e) => relative(this.root, join(e.parentPath, e.name)).split(sep).join('/'))
      .sort();
  }

  async listDetailed(prefix: string): Promise<StoredObject[]> {
    const out: StoredObject[] = [];
    for (const key of await this.list(prefix)) {
      const info = await stat(this.pathOf(key)).catch(() => undefined);
      if (info) out.push({ key, sizeBytes: info.size, modifiedMs: info.mtimeMs });
    }
    return out;
  }

  async delete(key: string): Promise<void> {
    this.verified.delete(key);
    await rm(this.pathOf(key), { force: true });
    if (isBlobKey(key)) await rm(this.sidecarOf(key), { force: true });
  }

  /**
   * Remove temporary files older than `olderThanMs` (default: all), e.g. those of a writer that was
   * killed mid-copy; they were never visible as artifacts. Returns how many were removed. Keep
   * `olderThanMs` above the longest copy when other writers may be running.
   */
  async removeStaleTemp(options: { olderThanMs?: number } = {}): Promise<number> {
    const cutoff = Date.now() - (options.olderThanMs ?? 0);
    let entries: string[];
    try {
      entries = await readdir(this.tmpDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    let removed = 0;
    for (const name of entries) {
      const path = join(this.tmpDir, name);
      const info = await stat(path).catch(() => undefined);
      if (!info || info.mtimeMs > cutoff) continue;
      await rm(path, { force: true });
      removed++;
    }
    return removed;
  }
}

function translate(err: unknown, path: string): unknown {
  // Returns the typed AblateError for known errno codes, else the original error.
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new AblateError(ErrorType.ArtifactNotFound, `no artifact at ${path}`);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new AblateError(ErrorType.StorageFull, `the disk holding ${path} is full; nothing was written`, {
      cause: err,
    });
  }
  return err;
}
