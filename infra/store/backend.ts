/**
 * The storage backend under an {@link ArtifactStore}: a flat key space of immutable blobs plus small
 * mutable records. Content addressing, digest verification and directory trees live once, in
 * artifact-store.ts; a backend only moves bytes (filesystem, S3) and, where it can, answers "is this
 * blob still intact?" cheaply.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/**
 * A backend's cheap answer about a content-addressed blob. `unknown`: read and hash it; `token` is a
 * fingerprint of the object taken before that read, to hand to `rememberVerified` once it hashed right.
 */
export type QuickCheck =
  | { status: 'ok' }
  | { status: 'missing' }
  | { status: 'corrupt'; actual: string }
  | { status: 'unknown'; token?: string };

/** One stored object, for housekeeping. */
export interface StoredObject {
  key: string;
  sizeBytes: number;
  /** Last modification (epoch ms). */
  modifiedMs: number;
}

export interface BlobBackend {
  /** The store URL this backend serves, e.g. `file:///srv/ablate/artifacts` or `s3://bucket/prefix`. */
  readonly url: string;
  /** The URI a reader can use to find `key`, e.g. `file:///srv/ablate/artifacts/sha256/ab/abcd…`. */
  uriFor(key: string): string;
  /** Whether `key` exists. */
  exists(key: string): Promise<boolean>;
  /**
   * Store a local file under an immutable key. Never exposes a partial object. If the key already exists
   * the call succeeds without rewriting it (content-addressed keys make concurrent writers safe), unless
   * `replace` is set: then the object is replaced atomically (the repair of a damaged blob).
   */
  putFile(key: string, path: string, sizeBytes: number, options?: { replace?: boolean }): Promise<void>;
  /**
   * Blobs up to this size are stored without asking first whether they are there: where every request
   * is a round trip (S3), storing a small blob again costs about what the question does, and a new one
   * then costs one request instead of two. Absent: always ask (a local stat is cheap).
   */
  readonly blindPutMaxBytes?: number;
  /** Store small bytes under a key, replacing any previous value atomically. */
  putBytes(key: string, data: Uint8Array): Promise<void>;
  /**
   * Open `key` for reading. Throws an AblateError of type ArtifactNotFound when it is absent. `sizeBytes`,
   * when the caller knows it, lets a backend read a big object in parallel ranges (S3); the bytes still
   * come out in order.
   */
  openRead(key: string, options?: { sizeBytes?: number }): Promise<Readable>;
  /**
   * Read an object of known small size (at most 1 MiB) whole, where that is cheaper than a stream (a
   * folder of small files reads thousands). Absent: the store collects {@link openRead}'s stream.
   */
  readSmall?(key: string, sizeBytes: number, signal?: AbortSignal): Promise<Buffer>;
  /**
   * Write the object, whose size the caller knows, into `file` (open for writing) at its offsets, and
   * hand its bytes in order to `onBytes` (for the digest), where that beats a stream written in order
   * (S3: parallel ranges, each written as it arrives). Rejects once no write it started is pending.
   * Absent: the store writes {@link openRead}'s stream.
   */
  readInto?(
    key: string,
    file: FileHandle,
    sizeBytes: number,
    options: { onBytes: (chunk: Buffer) => void; signal?: AbortSignal },
  ): Promise<void>;
  /** Keys under `prefix` (recursive), sorted. */
  list(prefix: string): Promise<string[]>;
  /** Objects under `prefix` (recursive) with size and age, sorted by key. */
  listDetailed(prefix: string): Promise<StoredObject[]>;
  /** Remove a key; no error if absent. */
  delete(key: string): Promise<void>;
  /**
   * A cheap integrity answer for the blob at `key`, whose bytes must hash to `sha256Hex`: a verification
   * remembered for the object's unchanged fingerprint (file store), or a checksum the server stored (S3).
   * Absent: the store reads and hashes the blob every time.
   */
  quickCheck?(key: string, sha256Hex: string): Promise<QuickCheck>;
  /** Remember that the object at `key`, as fingerprinted by `token` (from quickCheck), hashed right. */
  rememberVerified?(key: string, token: string): Promise<void>;
}
