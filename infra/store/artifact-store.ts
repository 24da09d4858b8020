/**
 * Content-addressed artifact storage over any {@link BlobBackend}.
 *
 * Blobs live at `sha256/<first two hex>/<hex>`; a directory is stored as its files plus a JSON manifest
 * (a "tree"), itself a blob. Every read is verified against the digest and a mismatch is an error,
 * never data. Small mutable JSON records (cache index, provenance index, run records) live under
 * `records/`.
 *
 * Integrity rules: a put of bytes whose blob exists but is damaged (missing, or bytes that do not hash
 * to its key) replaces it atomically, so recomputing a step repairs the store. {@link ArtifactStore.isIntact}
 * answers whether an artifact (for a tree: its manifest and every file it lists) would read back right;
 * the step cache serves a hit only when it is. The backend makes repeated checks cheap (see
 * {@link BlobBackend.quickCheck}).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { addAbortSignal, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { buffer } from 'node:stream/consumers';
import type { Readable } from 'node:stream';

import { AblateError, ErrorType, permanent } from '../errors';
import {
  isArtifactRef,
  TREE_MEDIA_TYPE,
  type ArtifactRef,
  type JsonValue,
  type OutputValue,
  type StepOutputs,
} from '../../workflows/plan-types';
import type { BlobBackend, StoredObject } from './backend';
import { foldersDeepestFirst, READ_ONLY_DIR_MODE, READ_ONLY_FILE_MODE, removeTree } from './read-only';
import {
  DEFAULT_TRANSFER_CONCURRENCY,
  fanOutSignal,
  mapOrderedLimit,
  ProgressCounter,
  type TransferOptions,
} from './transfer';
import { ManifestWriter, readManifestEntries, type TreeEntry, type TreeManifest } from './tree-manifest';

export type { TreeEntry, TreeManifest } from './tree-manifest';
export type { TransferOptions, TransferProgress } from './transfer';

/** How an {@link ArtifactStore} moves folders. */
export interface ArtifactStoreOptions {
  /** Files of a folder transferred at once by putTree and getTree. @default 16 */
  transferConcurrency?: number;
  /**
   * Tree manifests up to this size are kept parsed (up to 64 of them) for repeated integrity checks;
   * bigger ones are streamed each time (a million-file manifest is ~150 MB). @default 1 MiB
   */
  cachedManifestMaxBytes?: number;
}

const MEDIA_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.jsonl': 'application/x-ndjson',
  '.txt': 'text/plain',
  '.csv': 'text/csv',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.xml': 'application/xml',
  '.html': 'text/html',
  '.md': 'text/markdown',
};

/** A media type guessed from a file name. */
export function mediaTypeFor(path: string): string {
  const dot = path.lastIndexOf('.');
  return (dot >= 0 && MEDIA_TYPES[path.slice(dot).toLowerCase()]) || 'application/octet-stream';
}

/** Hex sha256 of a digest string `sha256:<hex>`; throws on any other shape. */
export function digestHex(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m?.[1]) throw permanent(ErrorType.InvalidInput, `not a sha256 digest: ${JSON.stringify(digest)}`);
  return m[1];
}

/** The backend key of a blob. */
export function blobKey(digest: string): string {
  const hex = digestHex(digest);
  return `sha256/${hex.slice(0, 2)}/${hex}`;
}

/** sha256 and size of a local file, streamed. */
export async function hashFile(path: string): Promise<{ digest: string; sizeBytes: number }> {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    sizeBytes += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, sizeBytes };
}

/** sha256 digest string of bytes. */
export function hashBytes(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** How {@link ArtifactStore.verify} checks. */
export interface VerifyOptions {
  /** Accept the backend's cheap answer (a remembered verification, a stored checksum). @default false */
  trustMemo?: boolean;
  /** Called now and then during a long check (every 256 files of a tree, every ~64 MiB read). */
  onProgress?: () => void;
}

/** Result of re-checking one artifact. */
export type VerifyResult = { status: 'ok' } | { status: 'missing' } | { status: 'corrupt'; actual: string };

/** How {@link ArtifactStore.getFile} writes the file. */
export interface GetFileOptions {
  /** Mode of the file created (e.g. 0o444); @default the process's default (0666 & ~umask) */
  mode?: number;
}

/**
 * Files up to this size move through memory in one piece: one read, one hash, one write. For a folder
 * of small files, a stream per file costs more than its bytes.
 */
const SMALL_FILE_BYTES = 1 << 20;

/** How many blobs of a tree are checked at once (stat calls, or HEAD requests on S3). */
const CHECK_CONCURRENCY = 16;
/** Parsed manifests kept in memory (immutable, so keyed by digest); enough for a run's working set. */
const MANIFEST_CACHE_SIZE = 64;

export class ArtifactStore {
  private readonly manifests = new Map<string, TreeManifest>();
  /** Files of a folder moved at once. */
  readonly transferConcurrency: number;
  private readonly cachedManifestMaxBytes: number;

  constructor(
    readonly backend: BlobBackend,
    options: ArtifactStoreOptions = {},
  ) {
    const n = options.transferConcurrency ?? DEFAULT_TRANSFER_CONCURRENCY;
    if (!Number.isInteger(n) || n < 1)
      throw permanent(ErrorType.InvalidConfig, `transfer concurrency must be an integer >= 1, got ${n}`);
    this.transferConcurrency = n;
    this.cachedManifestMaxBytes = options.cachedManifestMaxBytes ?? 1024 * 1024;
  }

  /** The store URL, e.g. `file:///…` or `s3://bucket/prefix`. */
  get url(): string {
    return this.backend.url;
  }

  private ref(digest: string, sizeBytes: number, mediaType: string): ArtifactRef {
    return { uri: this.backend.uriFor(blobKey(digest)), digest, sizeBytes, mediaType };
  }

  /** Store a local file. Idempotent: storing the same bytes twice is one object. */
  async putFile(path: string, options: { mediaType?: string } = {}): Promise<ArtifactRef> {
    const small = await readIfSmall(path);
    if (small) {
      // One read, one hash: the bytes stored are the very bytes hashed.
      const digest = hashBytes(small);
      // A PUT replaces atomically, so storing without asking also repairs a damaged blob.
      if (small.length <= (this.backend.blindPutMaxBytes ?? -1))
        await this.backend.putBytes(blobKey(digest), small);
      else if ((await this.checkBlob(digest, { trustMemo: true })).status !== 'ok')
        await this.backend.putBytes(blobKey(digest), small);
      return this.ref(digest, small.length, options.mediaType ?? mediaTypeFor(path));
    }
    const { digest, sizeBytes } = await hashFile(path);
    const state = await this.checkBlob(digest, { trustMemo: true });
    if (state.status !== 'ok')
      await this.backend.putFile(blobKey(digest), path, sizeBytes, { replace: state.status === 'corrupt' });
    return this.ref(digest, sizeBytes, options.mediaType ?? mediaTypeFor(path));
  }

  /** Store bytes (or a string as UTF-8). */
  async putBytes(data: Uint8Array | string, options: { mediaType?: string } = {}): Promise<ArtifactRef> {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const digest = hashBytes(bytes);
    if ((await this.checkBlob(digest, { trustMemo: true })).status !== 'ok')
      await this.backend.putBytes(blobKey(digest), bytes);
    return this.ref(digest, bytes.length, options.mediaType ?? 'application/octet-stream');
  }

  /** Store a JSON value (canonical key order is the caller's business). */
  async putJson(value: unknown, mediaType = 'application/json'): Promise<ArtifactRef> {
    return this.putBytes(JSON.stringify(value), { mediaType });
  }

  /**
   * Store a directory: every regular file ({@link transferConcurrency} at once), then the manifest,
   * streamed to a temporary file (its bytes, and so its digest, are what the sequential code wrote).
   * The folder is walked twice, once to count and once to store, one directory listing at a time, so
   * memory does not grow with the number of files. Empty directories are not kept.
   */
  async putTree(dir: string, options: TransferOptions = {}): Promise<ArtifactRef> {
    let count = 0;
    for await (const _ of walkFiles(dir)) count += 1;
    const progress = new ProgressCounter('put', count, undefined, options.onProgress);
    const scratch = await mkdtemp(join(tmpdir(), 'ablate-manifest-'));
    const writer = new ManifestWriter(join(scratch, 'manifest.json'));
    try {
      await mapOrderedLimit(
        walkFiles(dir),
        this.transferConcurrency,
        async (file) => {
          const ref = await this.putFile(join(dir, file));
          progress.add(ref.sizeBytes);
          return ref;
        },
        (ref, file) => writer.add({ path: file, digest: ref.digest, sizeBytes: ref.sizeBytes }),
        options.signal,
      );
      const { digest, sizeBytes } = await writer.close();
      const state = await this.checkBlob(digest, { trustMemo: true });
      if (state.status !== 'ok')
        await this.backend.putFile(blobKey(digest), writer.path, sizeBytes, {
          replace: state.status === 'corrupt',
        });
      return this.ref(digest, sizeBytes, TREE_MEDIA_TYPE);
    } finally {
      writer.abort();
      await rm(scratch, { recursive: true, force: true });
    }
  }

  /** Store a file or a directory. */
  async put(path: string, options: { mediaType?: string } & TransferOptions = {}): Promise<ArtifactRef> {
    const info = await stat(path);
    if (info.isDirectory()) return this.putTree(path, options);
    options.signal?.throwIfAborted();
    const progress = new ProgressCounter('put', 1, info.size, options.onProgress);
    const ref = await this.putFile(path, options);
    progress.add(ref.sizeBytes);
    return ref;
  }

  /** Whether the blob of `digest` exists. */
  async has(digest: string): Promise<boolean> {
    return this.backend.exists(blobKey(digest));
  }

  /** The bytes of an artifact, verified. */
  async getBytes(ref: ArtifactRef | string): Promise<Buffer> {
    const digest = typeof ref === 'string' ? ref : ref.digest;
    const chunks: Buffer[] = [];
    const stream = await this.backend.openRead(blobKey(digest));
    const hash = createHash('sha256');
    for await (const chunk of stream) {
      hash.update(chunk as Buffer);
      chunks.push(chunk as Buffer);
    }
    checkDigest(digest, `sha256:${hash.digest('hex')}`, this.backend.uriFor(blobKey(digest)));
    return Buffer.concat(chunks);
  }

  /** A JSON artifact, parsed. */
  async getJson<T = unknown>(ref: ArtifactRef | string): Promise<T> {
    return JSON.parse((await this.getBytes(ref)).toString('utf8')) as T;
  }

  /**
   * Write an artifact to a local file. The file appears (atomically) only once its digest checked out;
   * on a mismatch nothing is left behind and CorruptArtifact is thrown.
   */
  async getFile(
    ref: ArtifactRef | string,
    destPath: string,
    options: Pick<TransferOptions, 'signal'> & GetFileOptions = {},
  ): Promise<void> {
    const digest = typeof ref === 'string' ? ref : ref.digest;
    options.signal?.throwIfAborted();
    await mkdir(dirname(destPath), { recursive: true });
    const tmp = `${destPath}.part-${randomBytes(4).toString('hex')}`;
    try {
      await this.writeBlob(digest, tmp, typeof ref === 'string' ? undefined : ref.sizeBytes, options);
      await rename(tmp, destPath);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * Write a blob, verified, to `path` (not atomically: the caller renames it into place, or removes it on
   * an error). A small one is read whole, hashed and written in one call, a big one streamed (or, where the
   * backend can, written at its offsets as its parallel ranges arrive, and hashed in order).
   */
  private async writeBlob(
    digest: string,
    path: string,
    sizeBytes: number | undefined,
    options: Pick<TransferOptions, 'signal'> & GetFileOptions,
  ): Promise<void> {
    const key = blobKey(digest);
    const signal = options.signal;
    // The mode applies at creation: the open descriptor still writes.
    const mode = options.mode === undefined ? {} : { mode: options.mode };
    if (sizeBytes !== undefined && sizeBytes <= SMALL_FILE_BYTES) {
      const data = await this.readSmall(key, sizeBytes, signal);
      checkDigest(digest, hashBytes(data), this.backend.uriFor(key));
      await writeFile(path, data, { ...mode, ...(signal ? { signal } : {}) });
      return;
    }
    const hash = createHash('sha256');
    if (sizeBytes !== undefined && this.backend.readInto) {
      const file = await open(path, 'w', options.mode);
      try {
        await this.backend.readInto(key, file, sizeBytes, {
          onBytes: (chunk) => hash.update(chunk),
          ...(signal ? { signal } : {}),
        });
      } finally {
        await file.close();
      }
    } else {
      const source = await this.backend.openRead(key, sizeBytes === undefined ? {} : { sizeBytes });
      await pipeline(source, hashing(hash), createWriteStream(path, mode), signal ? { signal } : {});
    }
    checkDigest(digest, `sha256:${hash.digest('hex')}`, this.backend.uriFor(key));
  }

  /** A small blob's bytes, unverified (the caller checks them), however the backend reads best. */
  private async readSmall(key: string, sizeBytes: number, signal?: AbortSignal): Promise<Buffer> {
    if (this.backend.readSmall) return this.backend.readSmall(key, sizeBytes, signal);
    const source = await this.backend.openRead(key);
    // One abort listener per file in flight (a pipeline adds its own), within fanOutSignal's budget.
    if (signal) addAbortSignal(signal, source);
    return buffer(source);
  }

  /**
   * Materialise a tree artifact as a directory: it appears atomically (a temporary sibling renamed into
   * place), every file verified. The manifest is fetched verified to a temporary file and read twice as
   * a stream (once to check it and count, once to transfer), so a huge one costs little memory; files
   * move {@link transferConcurrency} at once. On an error or an abort nothing is left behind.
   * `readOnly` makes the files 0444 and the folders 0555 (a worker cache's entries).
   */
  async getTree(
    ref: ArtifactRef | string,
    destDir: string,
    options: TransferOptions & { readOnly?: boolean } = {},
  ): Promise<{ files: number; sizeBytes: number }> {
    const name = typeof ref === 'string' ? ref : ref.uri;
    const tmp = `${destDir}.part-${randomBytes(4).toString('hex')}`;
    const scratch = await mkdtemp(join(tmpdir(), 'ablate-manifest-'));
    const manifestPath = join(scratch, 'manifest.json');
    const entries = () => readManifestEntries(createReadStream(manifestPath), name);
    const { signal, dispose } = fanOutSignal(options.signal, this.transferConcurrency);
    try {
      await this.getFile(ref, manifestPath, options);
      let filesTotal = 0;
      let bytesTotal = 0;
      for await (const entry of entries()) {
        if (entry.path.startsWith('/') || entry.path.split('/').includes('..')) {
          throw permanent(ErrorType.CorruptArtifact, `tree entry escapes its directory: ${entry.path}`);
        }
        filesTotal += 1;
        bytesTotal += entry.sizeBytes;
      }
      const progress = new ProgressCounter('get', filesTotal, bytesTotal, options.onProgress);
      await mkdir(tmp, { recursive: true });
      // Folders made so far (a mkdir per file costs more than the write of a small one).
      const made = new Map<string, Promise<unknown>>([['', Promise.resolve()]]);
      const makeDir = (rel: string): Promise<unknown> => {
        let p = made.get(rel);
        if (!p) {
          p = mkdir(join(tmp, rel), { recursive: true });
          made.set(rel, p);
        }
        return p;
      };
      const mode = options.readOnly ? READ_ONLY_FILE_MODE : undefined;
      await mapOrderedLimit(
        entries(),
        this.transferConcurrency,
        async (entry) => {
          const slash = entry.path.lastIndexOf('/');
          await makeDir(slash < 0 ? '' : entry.path.slice(0, slash));
          // Straight to its place: the whole folder appears at once, or not at all.
          await this.writeBlob(entry.digest, join(tmp, entry.path), entry.sizeBytes, {
            ...(signal ? { signal } : {}),
            ...(mode === undefined ? {} : { mode }),
          });
          progress.add(entry.sizeBytes);
        },
        () => undefined,
        signal,
      );
      if (options.readOnly)
        for (const rel of foldersDeepestFirst(made.keys())) await chmod(join(tmp, rel), READ_ONLY_DIR_MODE);
      await rm(destDir, { recursive: true, force: true });
      await rename(tmp, destDir);
      return { files: filesTotal, sizeBytes: bytesTotal };
    } catch (err) {
      await removeTree(tmp);
      throw err;
    } finally {
      dispose();
      await rm(scratch, { recursive: true, force: true });
    }
  }

  /**
   * Materialise a file or tree artifact at `dest`. `signal` stops it (nothing is left behind);
   * `onProgress` hears of every finished file.
   */
  async get(
    ref: ArtifactRef,
    dest: string,
    options: TransferOptions & { readOnly?: boolean } = {},
  ): Promise<{ files: number; sizeBytes: number }> {
    if (ref.mediaType === TREE_MEDIA_TYPE) return this.getTree(ref, dest, options);
    const progress = new ProgressCounter('get', 1, ref.sizeBytes, options.onProgress);
    await this.getFile(ref, dest, {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.readOnly ? { mode: READ_ONLY_FILE_MODE } : {}),
    });
    progress.add(ref.sizeBytes);
    return { files: 1, sizeBytes: ref.sizeBytes };
  }

  /** Open a verified stream: it errors with CorruptArtifact at the end if the bytes do not match. */
  async openRead(ref: ArtifactRef | string): Promise<Readable> {
    const digest = typeof ref === 'string' ? ref : ref.digest;
    const uri = this.backend.uriFor(blobKey(digest));
    const source = await this.backend.openRead(
      blobKey(digest),
      typeof ref === 'string' ? {} : { sizeBytes: ref.sizeBytes },
    );
    const hash = createHash('sha256');
    const verifier = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
      flush(done) {
        try {
          checkDigest(digest, `sha256:${hash.digest('hex')}`, uri);
          done();
        } catch (err) {
          done(err as Error);
        }
      },
    });
    source.on('error', (err) => verifier.destroy(err));
    return source.pipe(verifier);
  }

  /**
   * Re-check an artifact against its digest (and, for a tree, every file it lists). By default every
   * byte is read again; `trustMemo` accepts the backend's cheap answer (a remembered verification of an
   * unchanged file, a checksum the S3 server stored).
   */
  async verify(ref: ArtifactRef | string, options: VerifyOptions = {}): Promise<VerifyResult> {
    const digest = typeof ref === 'string' ? ref : ref.digest;
    const blob = await this.checkBlob(digest, options);
    if (blob.status !== 'ok' || typeof ref === 'string' || ref.mediaType !== TREE_MEDIA_TYPE) return blob;
    let worst: VerifyResult = { status: 'ok' };
    let checked = 0;
    try {
      await mapOrderedLimit(
        await this.treeEntries(digest, ref.sizeBytes),
        CHECK_CONCURRENCY,
        async (entry) => {
          if (worst.status !== 'ok') return;
          if (++checked % 256 === 0) options.onProgress?.();
          const result = await this.checkBlob(entry.digest, options);
          if (result.status !== 'ok' && worst.status === 'ok') worst = result;
        },
        () => undefined,
      );
    } catch (err) {
      // The manifest itself is damaged (bytes or format): the tree is.
      if (err instanceof AblateError && err.type === ErrorType.CorruptArtifact)
        return { status: 'corrupt', actual: digest };
      throw err;
    }
    return worst;
  }

  /** Whether an artifact would read back intact (a tree: its manifest and every file); memo-assisted. */
  async isIntact(
    ref: ArtifactRef | string,
    options: Pick<VerifyOptions, 'onProgress'> = {},
  ): Promise<boolean> {
    return (await this.verify(ref, { ...options, trustMemo: true })).status === 'ok';
  }

  /**
   * Whether every artifact among a step's outputs (or any list of output values) is intact: the test a
   * cache hit must pass before it is served. Values that are not artifacts are ignored.
   */
  async verifyOutputs(
    outputs: StepOutputs | Iterable<OutputValue | ArtifactRef>,
    options: Pick<VerifyOptions, 'onProgress'> = {},
  ): Promise<boolean> {
    const values = Symbol.iterator in outputs ? [...outputs] : Object.values(outputs);
    for (const value of values)
      if (isArtifactRef(value) && !(await this.isIntact(value, options))) return false;
    return true;
  }

  /** One blob's state: the backend's cheap answer when trusted, else a full read and hash. */
  private async checkBlob(digest: string, options: VerifyOptions = {}): Promise<VerifyResult> {
    const key = blobKey(digest);
    const quick = await this.backend.quickCheck?.(key, digestHex(digest));
    // A cheap "missing" or "corrupt" is never wrong; a cheap "ok" only counts when memos are trusted.
    if (quick?.status === 'missing' || quick?.status === 'corrupt') return quick;
    if (quick?.status === 'ok' && options.trustMemo === true) return quick;
    if (!quick && !(await this.backend.exists(key))) return { status: 'missing' };
    const hash = createHash('sha256');
    try {
      let chunks = 0;
      for await (const chunk of await this.backend.openRead(key)) {
        hash.update(chunk as Buffer);
        if (++chunks % 64 === 0) options.onProgress?.();
      }
    } catch (err) {
      if (err instanceof AblateError && err.type === ErrorType.ArtifactNotFound) return { status: 'missing' };
      throw err;
    }
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== digest) return { status: 'corrupt', actual };
    if (quick?.status === 'unknown' && quick.token) await this.backend.rememberVerified?.(key, quick.token);
    return { status: 'ok' };
  }

  /**
   * A tree's entries: a small manifest parsed once and kept, a big one streamed (verified) each time,
   * so that checking huge trees does not hold their manifests in memory.
   */
  private async treeEntries(
    digest: string,
    sizeBytes: number,
  ): Promise<AsyncIterable<TreeEntry> | TreeEntry[]> {
    if (sizeBytes <= this.cachedManifestMaxBytes) return (await this.manifest(digest)).entries;
    return readManifestEntries(await this.openRead(digest), digest);
  }

  /** A tree's manifest, read verified (and kept: a digest names its bytes forever). */
  private async manifest(digest: string): Promise<TreeManifest> {
    const known = this.manifests.get(digest);
    if (known) return known;
    const manifest = await this.getJson<TreeManifest>(digest).catch((err: unknown) => {
      if (err instanceof SyntaxError)
        throw permanent(ErrorType.CorruptArtifact, `tree manifest ${digest} is not JSON`, err);
      throw err;
    });
    if (manifest?.version !== 1 || !Array.isArray(manifest.entries))
      throw permanent(ErrorType.CorruptArtifact, `not a tree manifest: ${digest}`);
    if (this.manifests.size >= MANIFEST_CACHE_SIZE)
      this.manifests.delete(this.manifests.keys().next().value!);
    this.manifests.set(digest, manifest);
    return manifest;
  }

  /** The stored blobs, with size and age (for housekeeping). */
  async listBlobs(): Promise<Array<StoredObject & { digest: string }>> {
    return (await this.backend.listDetailed('sha256'))
      .map((o) => ({ ...o, digest: `sha256:${o.key.slice(o.key.lastIndexOf('/') + 1)}` }))
      .filter((o) => /^sha256:[0-9a-f]{64}$/.test(o.digest));
  }

  /** Remove a blob (a damaged one before repair, or an unreferenced one in gc); no error if absent. */
  async deleteBlob(digest: string): Promise<void> {
    this.manifests.delete(digest);
    await this.backend.delete(blobKey(digest));
  }

  /** Write a small JSON record under `records/<key>.json`, replacing any previous one atomically. */
  async putRecord(key: string, value: JsonValue | object): Promise<void> {
    await this.backend.putBytes(recordKey(key), Buffer.from(JSON.stringify(value), 'utf8'));
  }

  /** Read a record, or undefined if there is none. */
  async getRecord<T = unknown>(key: string): Promise<T | undefined> {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of await this.backend.openRead(recordKey(key))) chunks.push(chunk as Buffer);
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
    } catch (err) {
      if (err instanceof AblateError && err.type === ErrorType.ArtifactNotFound) return undefined;
      throw err;
    }
  }

  /** Keys (without `records/` and `.json`) of the records under a prefix. */
  async listRecords(prefix: string): Promise<string[]> {
    const keys = await this.backend.list(`records/${prefix}`);
    return keys.filter((k) => k.endsWith('.json')).map((k) => k.slice('records/'.length, -'.json'.length));
  }

  /** Remove a record; no error if absent. */
  async deleteRecord(key: string): Promise<void> {
    await this.backend.delete(recordKey(key));
  }
}

function recordKey(key: string): string {
  if (!/^[A-Za-z0-9._\-/]+$/.test(key) || key.split('/').includes('..')) {
    throw permanent(ErrorType.InvalidInput, `bad record key: ${JSON.stringify(key)}`);
  }
  return `records/${key}.json`;
}

function checkDigest(expected: string, actual: string, uri: string): void {
  if (expected !== actual) {
    throw permanent(
      ErrorType.CorruptArtifact,
      `artifact ${uri} is corrupt: expected ${expected}, read ${actual}; it was not used`,
    );
  }
}

function hashing(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
}

/** A file's bytes if it is at most {@link SMALL_FILE_BYTES} long (one open, one stat, one read). */
async function readIfSmall(path: string): Promise<Buffer | undefined> {
  const handle = await open(path, 'r');
  try {
    if ((await handle.stat()).size > SMALL_FILE_BYTES) return undefined;
    const data = await handle.readFile();
    // It grew between the stat and the read: treat it as big (hashed and stored as a stream).
    return data.length <= SMALL_FILE_BYTES ? data : undefined;
  } finally {
    await handle.close();
  }
}

/**
 * Regular files under `dir`, as relative `/`-separated paths in sorted order (the order of a tree's
 * manifest), one directory listing in memory per level. Sorting each directory's names, a folder's
 * with a `/` appended, gives the order of the full paths: two paths first differ inside the names of
 * siblings, or at the `/` that follows a folder's name.
 */
async function* walkFiles(dir: string, prefix = ''): AsyncGenerator<string> {
  const entries = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile() || e.isDirectory())
    .map((e) => ({ key: e.isDirectory() ? `${e.name}/` : e.name, entry: e }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const { entry } of entries) {
    if (entry.isFile()) yield `${prefix}${entry.name}`;
    else yield* walkFiles(join(dir, entry.name), `${prefix}${entry.name}/`);
  }
}
