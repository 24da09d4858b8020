/**
 * The storage backend under an {@link ArtifactStore}: a flat key space of immutable blobs plus small
 * mutable records. Content addressing, digest verification and directory trees live once, in
 * artifact-store.ts; a backend only moves bytes (filesystem, S3).
 */
import type { Readable } from 'node:stream';

export interface BlobBackend {
  /** The store URL this backend serves, e.g. `file:///srv/ablate/artifacts` or `s3://bucket/prefix`. */
  readonly url: string;
  /** The URI a reader can use to find `key`, e.g. `file:///srv/ablate/artifacts/sha256/ab/abcd…`. */
  uriFor(key: string): string;
  /** Whether `key` exists. */
  exists(key: string): Promise<boolean>;
  /**
   * Store a local file under an immutable key. Never exposes a partial object; if the key already exists
   * the call succeeds without rewriting it (content-addressed keys make concurrent writers safe).
   */
  putFile(key: string, path: string, sizeBytes: number): Promise<void>;
  /** Store small bytes under a key, replacing any previous value atomically (used for records). */
  putBytes(key: string, data: Uint8Array): Promise<void>;
  /** Open `key` for reading. Throws an AblateError of type ArtifactNotFound when it is absent. */
  openRead(key: string): Promise<Readable>;
  /** Keys under `prefix` (recursive), sorted. */
  list(prefix: string): Promise<string[]>;
  /** Remove a key; no error if absent. */
  delete(key: string): Promise<void>;
}
