/**
 * The S3 artifact store backend (AWS S3, MinIO, Ceph RGW, SeaweedFS, `rclone serve s3`), behind the same
 * {@link BlobBackend} interface as the filesystem store.
 *
 * Failure modes it handles, and how:
 * - A blob key is immutable and content-addressed: a blob that exists is never uploaded again, and two
 *   writers of the same content both write the same bytes, so whichever PUT lands last changes nothing.
 * - An S3 PUT is atomic and a multipart upload is invisible until it is completed, so an interrupted
 *   upload never leaves a partial object at its key. A failed multipart upload is aborted (and the error
 *   says so); one abandoned by a killed process is listed and removed by {@link S3Backend.abortIncompleteUploads}.
 * - Corruption in transit on upload: every PUT and every part carries Content-MD5 (checked by every
 *   S3-compatible server) and, by default, x-amz-checksum-sha256 (checked by AWS S3, MinIO, Ceph), and the
 *   file is re-hashed while it streams, so a file that changed after it was hashed is refused before the
 *   upload completes. Downloads are verified against their digest by the ArtifactStore.
 * - Unreachable endpoint, timeouts, 5xx and throttling: each request is retried with exponential backoff
 *   up to a limit ({@link S3StoreConfig.maxAttempts}), then a retryable StoreUnavailable error says how
 *   many attempts were made over how long. A multipart upload whose state the server lost (restarted
 *   server: NoSuchUpload) is started again from the first part.
 * - Missing bucket, unknown access key, wrong secret, access denied, missing credentials: a
 *   non-retryable StoreUnavailable error naming the bucket, key and endpoint, with a hint.
 * - A cache hit must not serve bad bytes, yet reading every output back is slow: `quickCheck` asks the
 *   server for the SHA-256 it stored at upload (HeadObject with ChecksumMode ENABLED) and compares it
 *   with the key's digest. A server that keeps none (or a multipart object, whose checksum is composite)
 *   gets one full read, remembered in this process by the object's ETag, size and date.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, type FileHandle } from 'node:fs/promises';
import { addAbortSignal, PassThrough, Readable, Transform } from 'node:stream';
import { buffer } from 'node:stream/consumers';

import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type ServiceInputTypes,
  type ServiceOutputTypes,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type {
  AwsCredentialIdentity,
  BuildMiddleware,
  RetryErrorInfo,
  RetryStrategyV2,
  RetryToken,
} from '@smithy/types';

import { AblateError, ErrorType, permanent } from '../errors';
import type { BlobBackend, QuickCheck, StoredObject } from './backend';
import { LEAN_MAX_BYTES, LeanS3 } from './s3-lean';
import { backoffDelayMs, resolveS3Config, S3_MAX_PARTS, S3EnvKey, type S3StoreConfig } from './s3-config';

/** What one write call of {@link S3Backend.readInto} carries at most (about; network chunks are not split). */
const WRITE_BATCH_BYTES = 1 << 20;

/** Options beyond the store URL. */
export interface S3BackendOptions {
  /** Where ablate's own settings (ABLATE_S3_*, AWS_ENDPOINT_URL*, AWS_REGION) are read. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Explicit credentials; by default the AWS SDK's provider chain finds them (env, shared files, SSO…). */
  credentials?: AwsCredentialIdentity;
}

/** An incomplete multipart upload under the store's prefix. */
export interface IncompleteUpload {
  /** The backend key (without the store prefix). */
  key: string;
  uploadId: string;
  initiated: Date | undefined;
}

/**
 * How many times a multipart upload is started over when the server forgot it (NoSuchUpload, e.g. after
 * a server restart); network errors are retried per request instead.
 */
const MULTIPART_RESTARTS = 2;

/** Codes with which a server refuses a body whose checksum does not match: the bytes broke in transit. */
const CHECKSUM_ERRORS = new Set([
  'BadDigest',
  'InvalidDigest',
  'XAmzContentSHA256Mismatch',
  'InvalidChecksum',
]);

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'refused the connection (is the server running?)',
  ECONNRESET: 'closed the connection',
  EPIPE: 'closed the connection',
  ETIMEDOUT: 'did not answer in time',
  TimeoutError: 'did not answer in time',
  ENOTFOUND: 'has a host name that does not resolve',
  EAI_AGAIN: 'has a host name that could not be resolved now',
  EHOSTUNREACH: 'is unreachable',
  ENETUNREACH: 'is unreachable',
};

export class S3Backend implements BlobBackend {
  readonly url: string;
  /**
   * A HEAD costs a round trip, as does a PUT of a blob this small (128 KiB: ~1 ms at 1 Gbit/s); a tree
   * of small new files then takes one request per file, not two. A re-publish sends them again.
   */
  readonly blindPutMaxBytes = 128 * 1024;
  /** The SDK client, for maintenance and tests (raw S3 calls against the same bucket). */
  readonly client: S3Client;
  private bucketChecked = false;
  /** Fingerprints (ETag, size, date) of objects this process read and hashed right, by key. */
  private readonly verified = new Map<string, string>();
  /**
   * The first checksum refusal of a part of each multipart upload in progress, by upload id. Some
   * servers (rclone) drop the whole upload when a part is refused, so the retry of that part, or a
   * sibling part, fails with NoSuchUpload, and that is what lib-storage reports; the refusal is the cause.
   */
  private readonly partFailures = new Map<string, unknown>();
  /** Small GETs and PUTs without the client's middleware (see s3-lean.ts); the client is the fallback. */
  private readonly lean: LeanS3;

  constructor(
    readonly config: S3StoreConfig,
    options: S3BackendOptions = {},
  ) {
    this.url = config.url;
    this.client = new S3Client({
      region: config.region,
      endpoint: config.endpoint,
      forcePathStyle: config.forcePathStyle,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts: config.maxAttempts,
      retryStrategy: new BackoffRetryStrategy(config),
      requestHandler: {
        connectionTimeout: config.connectTimeoutMs,
        // An idle socket, not a slow transfer, is the sign of a dead connection: a 1 GB part may take
        // minutes on a slow link, but a healthy one never goes quiet for this long.
        socketTimeout: config.socketTimeoutMs,
      },
      // 'sha256' mode: the SDK adds x-amz-checksum-sha256 to each part (lib-storage asks for it);
      // 'md5' mode, for servers that reject the newer checksum headers: only what is required.
      requestChecksumCalculation: config.checksum === 'sha256' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED',
      // Downloads are verified against the content digest by the ArtifactStore; hashing twice costs
      // CPU and would turn a corrupt object into an SDK error rather than CorruptArtifact.
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    this.lean = new LeanS3(this.client, config);
    this.client.middlewareStack.add(contentMd5Middleware, {
      step: 'build',
      name: 'ablateContentMd5',
      override: true,
    });
    this.client.middlewareStack.add(
      (next, context) => async (args) => {
        try {
          return await next(args);
        } catch (err) {
          const uploadId = (args.input as { UploadId?: string }).UploadId;
          if (
            context.commandName === 'UploadPartCommand' &&
            uploadId &&
            CHECKSUM_ERRORS.has(errorName(err)) &&
            !this.partFailures.has(uploadId)
          ) {
            this.partFailures.set(uploadId, err);
          }
          throw err;
        }
      },
      // Inside the retry loop, to see each attempt's error: a part refused for its checksum is retried,
      // and that retry may only meet the NoSuchUpload its first failure caused.
      { step: 'finalizeRequest', priority: 'low', name: 'ablatePartFailures', override: true },
    );
  }

  /** A backend for an `s3://bucket/prefix?…` URL (see s3-config.ts for the parameters). */
  static async fromUrl(url: string, options: S3BackendOptions = {}): Promise<S3Backend> {
    return new S3Backend(resolveS3Config(url, options.env), options);
  }

  get bucket(): string {
    return this.config.bucket;
  }

  /** The endpoint, in words, for messages. */
  get endpointLabel(): string {
    return this.config.endpoint ?? `AWS S3 (region ${this.config.region ?? 'from the AWS config'})`;
  }

  uriFor(key: string): string {
    return `s3://${this.config.bucket}/${this.objectKey(key)}`;
  }

  /** The S3 object key of a backend key. */
  objectKey(key: string): string {
    if (
      key === '' ||
      key.startsWith('/') ||
      key.split('/').some((s) => s === '..' || s === '.' || s === '')
    ) {
      throw permanent(ErrorType.InvalidInput, `bad store key: ${JSON.stringify(key)}`);
    }
    return `${this.config.prefix}${key}`;
  }

  async exists(key: string): Promise<boolean> {
    const Key = this.objectKey(key);
    try {
      await this.call('HEAD', key, () =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key })),
      );
      return true;
    } catch (err) {
      if (!(err instanceof AblateError && err.type === ErrorType.ArtifactNotFound)) throw err;
      // HEAD answers a bare 404 for a missing bucket too; tell the two apart once.
      await this.checkBucket();
      return false;
    }
  }

  async putBytes(key: string, data: Uint8Array): Promise<void> {
    const Key = this.objectKey(key);
    await this.lean.orClient(
      data.length <= LEAN_MAX_BYTES ? () => this.lean.put(Key, data, digestOfKey(key)) : undefined,
      async () => {
        await this.call('PUT', key, () =>
          this.client.send(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key,
              Body: data,
              ContentLength: data.length,
              ...(this.config.checksum === 'sha256'
                ? { ChecksumSHA256: createHash('sha256').update(data).digest('base64') }
                : {}),
            }),
          ),
        );
        return true;
      },
    );
  }

  /**
   * An object of known small size (up to 1 MiB), read whole: by the lean path when it answers, else
   * through the client (retries, clear errors).
   */
  async readSmall(key: string, sizeBytes: number, signal?: AbortSignal): Promise<Buffer> {
    return this.lean.orClient(
      sizeBytes <= LEAN_MAX_BYTES ? () => this.lean.get(this.objectKey(key), sizeBytes, signal) : undefined,
      async () => {
        signal?.throwIfAborted();
        const source = await this.openRead(key);
        if (signal) addAbortSignal(signal, source);
        return buffer(source);
      },
    );
  }

  /** Requests the lean path answered (tests, benchmarks). */
  get leanRequests(): number {
    return this.lean.served;
  }

  // An S3 PUT always replaces the object atomically, so a repair (`replace`) needs nothing more.
  async putFile(key: string, path: string, sizeBytes: number): Promise<void> {
    const expected = digestOfKey(key);
    if (sizeBytes <= this.config.partSizeBytes) {
      // One PUT from memory: small enough, and the SDK can retry a buffer (not a stream).
      const data = await readFile(path);
      const actual = createHash('sha256').update(data).digest('hex');
      if (data.length !== sizeBytes || (expected !== undefined && actual !== expected)) {
        throw changedWhileStoring(path, key, expected, actual, sizeBytes, data.length);
      }
      await this.putBytes(key, data);
      return;
    }
    for (let start = 0; ; start++) {
      const started = performance.now();
      const failure = await this.uploadMultipart(key, path, sizeBytes, expected);
      if (!failure) return;
      const lost = errorName(failure.err) === 'NoSuchUpload';
      if (lost && start < MULTIPART_RESTARTS) continue;
      const note = lost ? `it was started ${1 + start} times; ${failure.note}` : failure.note;
      throw await this.translate(failure.err, 'multipart PUT', key, performance.now() - started, note);
    }
  }

  /** One multipart upload; resolves to the failure (error + what happened to the upload) if any. */
  private async uploadMultipart(
    key: string,
    path: string,
    sizeBytes: number,
    expected: string | undefined,
  ): Promise<{ err: unknown; note: string } | undefined> {
    const partSize = Math.max(this.config.partSizeBytes, Math.ceil(sizeBytes / S3_MAX_PARTS));
    const source = createReadStream(path, { highWaterMark: 1 << 20 });
    const hash = createHash('sha256');
    let read = 0;
    // Re-hash while streaming: the key was computed from an earlier read, and a file modified in between
    // must not be stored under the old digest. Failing in flush() happens before the last part is handed
    // to lib-storage, so CompleteMultipartUpload is never sent.
    const verifier = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        read += chunk.length;
        done(null, chunk);
      },
      flush(done) {
        const actual = hash.digest('hex');
        if (read !== sizeBytes || (expected !== undefined && actual !== expected)) {
          done(changedWhileStoring(path, key, expected, actual, sizeBytes, read));
        } else done();
      },
    });
    source.on('error', (err) => verifier.destroy(err));
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key: this.objectKey(key),
        Body: source.pipe(verifier),
        ...(this.config.checksum === 'sha256' ? { ChecksumAlgorithm: 'SHA256' as const } : {}),
      },
      partSize,
      queueSize: this.config.uploadConcurrency,
      // We abort ourselves, so that the error can say whether the abort worked.
      leavePartsOnError: true,
    });
    try {
      await upload.done();
      return undefined;
    } catch (err) {
      source.destroy();
      verifier.destroy();
      const cause = (upload.uploadId && this.partFailures.get(upload.uploadId)) || err;
      return { err: cause, note: await this.abortUpload(key, upload.uploadId) };
    } finally {
      if (upload.uploadId) this.partFailures.delete(upload.uploadId);
    }
  }

  private async abortUpload(key: string, uploadId: string | undefined): Promise<string> {
    if (!uploadId) return 'no multipart upload had been started, so nothing was stored';
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.objectKey(key),
          UploadId: uploadId,
        }),
      );
      return `the incomplete multipart upload ${uploadId} was aborted, nothing is visible at the key`;
    } catch (err) {
      if (errorName(err) === 'NoSuchUpload') {
        return `the server had already dropped the incomplete multipart upload ${uploadId}, nothing is visible at the key`;
      }
      return (
        `the incomplete multipart upload ${uploadId} could not be aborted (${errorName(err)}); it is not ` +
        'visible at the key, and abortIncompleteUploads() or the server’s expiry removes it'
      );
    }
  }

  /**
   * A stream of the object's bytes. An object of two parts or more whose size the caller knows is read
   * as {@link S3StoreConfig.partSizeBytes} ranges, {@link S3StoreConfig.downloadConcurrency} at once
   * (one TCP stream rarely fills a link, or a server's disk), and handed on in order, the first range
   * as it arrives, so the caller reads one stream; at most that many ranges sit in memory. A range
   * whose connection breaks mid-body is read on from where it broke (with backoff). A download to a
   * file takes {@link readInto} instead, which writes each range as it arrives.
   */
  async openRead(key: string, options: { sizeBytes?: number } = {}): Promise<Readable> {
    const size = options.sizeBytes;
    if (size !== undefined && size >= 2 * this.config.partSizeBytes && this.config.downloadConcurrency > 1) {
      return this.openRanged(key, size);
    }
    const Key = this.objectKey(key);
    const out = await this.call('GET', key, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key })),
    );
    const body = out.Body as Readable | undefined;
    if (!body) throw new AblateError(ErrorType.StoreUnavailable, `GET ${this.uriFor(key)} returned no body`);
    // Pass the bytes through so that a connection lost mid-body surfaces as a clear, retryable error.
    const pass = new PassThrough({ highWaterMark: 1 << 20 });
    let received = 0;
    body.on('data', (chunk: Buffer) => (received += chunk.length));
    body.once('error', (err) => {
      pass.destroy(
        new AblateError(
          ErrorType.StoreUnavailable,
          `lost the connection to ${this.endpointLabel} while reading ${this.uriFor(key)} ` +
            `after ${received} of ${out.ContentLength ?? '?'} bytes (${errorName(err)}); nothing was used`,
          { retryable: true, cause: err },
        ),
      );
    });
    pass.once('close', () => {
      if (!body.readableEnded) body.destroy();
    });
    body.pipe(pass);
    return pass;
  }

  /**
   * Write the object, of `sizeBytes` bytes, into `file` at its offsets: ranges of
   * {@link S3StoreConfig.partSizeBytes}, {@link S3StoreConfig.downloadConcurrency} at once, each written
   * as it arrives ({@link WRITE_BATCH_BYTES} per write call), and the bytes handed to `onBytes` in order
   * (the first range live, later ones from memory once those before them are through: at most that many
   * ranges are held). Against a stream of the bytes in order, no range waits for the one before it to be
   * written, and one write call carries many network chunks. A range whose connection breaks mid-body is
   * read on from where it broke (with backoff); on an error or an abort the other ranges stop and the
   * call rejects once every write it started has ended (the file is left to the caller).
   */
  async readInto(
    key: string,
    file: FileHandle,
    sizeBytes: number,
    options: { onBytes: (chunk: Buffer) => void; signal?: AbortSignal },
  ): Promise<void> {
    const { onBytes, signal } = options;
    signal?.throwIfAborted();
    const Key = this.objectKey(key);
    const partSize = this.config.partSizeBytes;
    const parts = Math.ceil(sizeBytes / partSize);
    const window = this.config.downloadConcurrency;
    const abort = new AbortController();
    const stop = () => abort.abort(signal?.reason);
    signal?.addEventListener('abort', stop, { once: true });
    /** Bytes of a range not yet handed to onBytes. */
    const held = new Map<number, { chunks: Buffer[]; done: boolean }>();
    let next = 0; // the range whose bytes go to onBytes now
    const handOn = () => {
      for (let range = held.get(next); range; range = held.get(next)) {
        for (const chunk of range.chunks) onBytes(chunk);
        range.chunks = [];
        if (!range.done) return;
        held.delete(next++);
      }
    };
    const writeRange = async (index: number, range: { chunks: Buffer[]; done: boolean }) => {
      const first = index * partSize;
      const last = Math.min(sizeBytes, first + partSize) - 1;
      let offset = first;
      let batch: Buffer[] = [];
      let batchBytes = 0;
      const writes: Promise<void>[] = [];
      const flush = () => {
        if (batchBytes === 0) return;
        const write = writeAll(file, batch, offset);
        write.catch(() => abort.abort()); // a failed write stops the read at once
        writes.push(write);
        offset += batchBytes;
        batch = [];
        batchBytes = 0;
      };
      let readFailure: { error: unknown } | undefined;
      try {
        await this.fetchRange(key, Key, first, last, abort.signal, (chunk) => {
          batch.push(chunk);
          batchBytes += chunk.length;
          if (batchBytes >= WRITE_BATCH_BYTES) flush();
          range.chunks.push(chunk);
          if (index === next) handOn();
        });
        flush();
      } catch (error) {
        readFailure = { error };
      }
      // Every write ends before the call does (the caller closes or removes the file next); a failed
      // write is the error to report, since it stopped the read.
      const failedWrite = (await Promise.allSettled(writes)).find((w) => w.status === 'rejected');
      if (failedWrite) throw failedWrite.reason;
      if (readFailure) throw readFailure.error;
      if (abort.signal.aborted) return;
      range.done = true;
      handOn();
    };
    let launched = 0;
    let failure: { error: unknown } | undefined;
    const ranges: Promise<void>[] = [];
    const launch = () => {
      while (!abort.signal.aborted && launched < parts && launched < next + window) {
        const index = launched++;
        const range = { chunks: [] as Buffer[], done: false };
        held.set(index, range);
        ranges.push(
          writeRange(index, range).then(launch, (error: unknown) => {
            failure ??= { error };
            abort.abort();
          }),
        );
      }
    };
    try {
      launch();
      // A range launches the next ones before its own promise settles, so this sees every range.
      for (let i = 0; i < ranges.length; i++) await ranges[i];
    } finally {
      signal?.removeEventListener('abort', stop);
    }
    signal?.throwIfAborted();
    if (failure) throw failure.error;
  }

  /** {@link openRead}'s stream of a big object: parallel ranges, handed on in order. */
  private openRanged(key: string, sizeBytes: number): Readable {
    const Key = this.objectKey(key);
    const partSize = this.config.partSizeBytes;
    const parts = Math.ceil(sizeBytes / partSize);
    const window = this.config.downloadConcurrency;
    const abort = new AbortController();
    /** A range's bytes received and not yet handed on; `wake` resumes a reader waiting for more. */
    interface Range {
      chunks: Buffer[];
      done: boolean;
      wake?: () => void;
    }
    const ranges = new Map<number, Range>();
    const wake = (range: Range) => {
      const resume = range.wake;
      range.wake = undefined;
      resume?.();
    };
    const readRange = async (index: number, range: Range): Promise<void> => {
      const first = index * partSize;
      const last = Math.min(sizeBytes, first + partSize) - 1;
      await this.fetchRange(key, Key, first, last, abort.signal, (chunk) => {
        range.chunks.push(chunk);
        wake(range);
      });
      if (abort.signal.aborted) return;
      range.done = true;
      wake(range);
    };
    let next = 0;
    let launched = 0;
    let pumping = false;
    const launch = () => {
      while (launched < parts && launched < next + window) {
        const range: Range = { chunks: [], done: false };
        ranges.set(launched, range);
        // A range that fails fails the read at once; the others are aborted.
        readRange(launched++, range).catch((err: unknown) => stream.destroy(err as Error));
      }
    };
    // The bytes go out in order: the first range as it arrives, later ones from what they buffered.
    const pump = async () => {
      launch();
      while (next < parts) {
        const range = ranges.get(next)!;
        if (range.chunks.length > 0) {
          const chunks = range.chunks;
          range.chunks = [];
          let more = true;
          for (const chunk of chunks) more = stream.push(chunk);
          if (!more) {
            pumping = false; // read() starts the next pump
            return;
          }
        } else if (range.done) {
          ranges.delete(next++);
          launch();
        } else {
          await new Promise<void>((resolve) => (range.wake = resolve));
          if (stream.destroyed) return;
        }
      }
      stream.push(null);
    };
    const stream = new Readable({
      highWaterMark: 1 << 20,
      read() {
        if (pumping) return;
        pumping = true;
        pump().catch((err: unknown) => stream.destroy(err as Error));
      },
      destroy(err, done) {
        abort.abort();
        for (const range of ranges.values()) wake(range);
        done(err);
      },
    });
    return stream;
  }

  /**
   * GET bytes `first`..`last` of `key`, handing each chunk to `onChunk` as it arrives. Request errors
   * (refused, 5xx, throttled) are the client's retry strategy's; a body that breaks off is asked for
   * again from where it broke, with backoff, up to {@link S3StoreConfig.maxAttempts} times. Resolves
   * quietly when `abortSignal` stops it.
   */
  private async fetchRange(
    key: string,
    Key: string,
    first: number,
    last: number,
    abortSignal: AbortSignal,
    onChunk: (chunk: Buffer) => void,
  ): Promise<void> {
    const expected = last - first + 1;
    // Bytes received so far: handed on already, so a retry asks for the rest.
    let received = 0;
    for (let attempt = 1; ; attempt++) {
      let out;
      try {
        out = await this.call('GET', key, () =>
          this.client.send(
            new GetObjectCommand({ Bucket: this.bucket, Key, Range: `bytes=${first + received}-${last}` }),
            { abortSignal },
          ),
        );
      } catch (err) {
        if (abortSignal.aborted) return;
        throw err;
      }
      try {
        const body = out.Body as Readable | undefined;
        if (!body) throw new Error('no body');
        for await (const chunk of body) {
          received += (chunk as Buffer).length;
          if (received > expected) throw new Error(`more than the ${expected} bytes asked for`);
          onChunk(chunk as Buffer);
        }
        if (received !== expected) throw new Error(`the body ended after ${received} of ${expected} bytes`);
        return;
      } catch (err) {
        if (abortSignal.aborted) return;
        if (attempt >= this.config.maxAttempts || received > expected) {
          throw new AblateError(
            ErrorType.StoreUnavailable,
            `lost the connection to ${this.endpointLabel} while reading bytes ${first}-${last} of ` +
              `${this.uriFor(key)} ${attempt} times (last: ${errorName(err)}: ${(err as Error).message}, ` +
              `after ${received} of ${expected} bytes); nothing was used`,
            { retryable: true, cause: err },
          );
        }
        await new Promise((r) => setTimeout(r, backoffDelayMs(attempt, this.config)));
      }
    }
  }

  async list(prefix: string): Promise<string[]> {
    const dir = prefix.replace(/\/+$/, '');
    const Prefix = dir ? `${this.objectKey(dir)}/` : this.config.prefix;
    const keys: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await this.call('LIST', dir || undefined, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix, ContinuationToken })),
      );
      for (const obj of page.Contents ?? []) {
        if (obj.Key) keys.push(obj.Key.slice(this.config.prefix.length));
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return keys.sort();
  }

  async listDetailed(prefix: string): Promise<StoredObject[]> {
    const dir = prefix.replace(/\/+$/, '');
    const Prefix = dir ? `${this.objectKey(dir)}/` : this.config.prefix;
    const out: StoredObject[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await this.call('LIST', dir || undefined, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix, ContinuationToken })),
      );
      for (const obj of page.Contents ?? []) {
        if (obj.Key)
          out.push({
            key: obj.Key.slice(this.config.prefix.length),
            sizeBytes: obj.Size ?? 0,
            modifiedMs: obj.LastModified?.getTime() ?? 0,
          });
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async quickCheck(key: string, sha256Hex: string): Promise<QuickCheck> {
    const Key = this.objectKey(key);
    let head;
    try {
      head = await this.call('HEAD', key, () =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key, ChecksumMode: 'ENABLED' })),
      );
    } catch (err) {
      if (!(err instanceof AblateError && err.type === ErrorType.ArtifactNotFound)) throw err;
      await this.checkBucket();
      return { status: 'missing' };
    }
    const stored = head.ChecksumSHA256;
    // "<base64>-<parts>" is a checksum of part checksums (multipart), not of the object's bytes.
    if (stored && !stored.includes('-') && head.ChecksumType !== 'COMPOSITE') {
      const actual = Buffer.from(stored, 'base64').toString('hex');
      return actual === sha256Hex ? { status: 'ok' } : { status: 'corrupt', actual: `sha256:${actual}` };
    }
    const token = `${head.ETag ?? ''}:${head.ContentLength ?? ''}:${head.LastModified?.getTime() ?? ''}`;
    if (head.ETag && this.verified.get(key) === token) return { status: 'ok' };
    return { status: 'unknown', token };
  }

  async rememberVerified(key: string, token: string): Promise<void> {
    this.verified.set(key, token);
  }

  async delete(key: string): Promise<void> {
    this.verified.delete(key);
    const Key = this.objectKey(key);
    await this.call('DELETE', key, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key })),
    );
  }

  /** Multipart uploads under the store's prefix that were started and never completed or aborted. */
  async listIncompleteUploads(): Promise<IncompleteUpload[]> {
    const out: IncompleteUpload[] = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      const page = await this.call('LIST-UPLOADS', undefined, () =>
        this.client
          .send(
            new ListMultipartUploadsCommand({
              Bucket: this.bucket,
              Prefix: this.config.prefix || undefined,
              KeyMarker,
              UploadIdMarker,
            }),
          )
          // rclone serve s3 answers a listing with NoSuchUpload while a user has never had one: none.
          .catch((err: unknown) => {
            if (errorName(err) === 'NoSuchUpload') return { Uploads: [], IsTruncated: false } as const;
            throw err;
          }),
      );
      for (const u of page.Uploads ?? []) {
        if (u.Key && u.UploadId) {
          out.push({
            key: u.Key.slice(this.config.prefix.length),
            uploadId: u.UploadId,
            initiated: u.Initiated,
          });
        }
      }
      const more = page.IsTruncated === true;
      KeyMarker = more ? page.NextKeyMarker : undefined;
      UploadIdMarker = more ? page.NextUploadIdMarker : undefined;
    } while (KeyMarker);
    return out;
  }

  /**
   * Abort the incomplete multipart uploads older than `olderThanMs` (default: all), e.g. those left by a
   * killed worker. Returns how many were aborted. Keep `olderThanMs` above the longest upload when other
   * writers may be running.
   */
  async abortIncompleteUploads(options: { olderThanMs?: number } = {}): Promise<number> {
    const cutoff = Date.now() - (options.olderThanMs ?? 0);
    let aborted = 0;
    for (const u of await this.listIncompleteUploads()) {
      if (u.initiated && u.initiated.getTime() > cutoff) continue;
      await this.call('ABORT-UPLOAD', u.key, () =>
        this.client.send(
          new AbortMultipartUploadCommand({
            Bucket: this.bucket,
            Key: this.objectKey(u.key),
            UploadId: u.uploadId,
          }),
        ),
      );
      aborted++;
    }
    return aborted;
  }

  /** Close the connection pool (the process may otherwise wait for idle sockets). */
  destroy(): void {
    this.client.destroy();
    this.lean.destroy();
  }

  private async checkBucket(): Promise<void> {
    if (this.bucketChecked) return;
    const bucketMissing = await this.call('HEAD-BUCKET', undefined, () =>
      this.client.send(new HeadBucketCommand({ Bucket: this.bucket })).then(
        () => false,
        (err: unknown) => {
          const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
          if (status === 404) return true;
          // Credentials limited to objects may not look at the bucket itself (AWS answers 403); then
          // the object requests say what is wrong, if anything.
          if (status === 403) return false;
          throw err;
        },
      ),
    );
    if (bucketMissing) throw this.noSuchBucket('HEAD', undefined, undefined);
    this.bucketChecked = true;
  }

  /** Run one SDK call, translating its failure into a clear AblateError. */
  private async call<T>(op: string, key: string | undefined, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await run();
    } catch (err) {
      throw await this.translate(err, op, key, performance.now() - started);
    }
  }

  private noSuchBucket(op: string, key: string | undefined, cause: unknown): AblateError {
    const hint = `aws s3 mb s3://${this.bucket}${this.config.endpoint ? ` --endpoint-url ${this.config.endpoint}` : ''}`;
    return permanent(
      ErrorType.StoreUnavailable,
      `bucket "${this.bucket}" does not exist at ${this.endpointLabel} (${op} ${this.where(key)}); ` +
        `create it first (e.g. \`${hint}\`) or fix the store URL`,
      cause,
    );
  }

  private where(key: string | undefined): string {
    return key === undefined ? `s3://${this.bucket}/${this.config.prefix}` : this.uriFor(key);
  }

  private async accessKeyLabel(): Promise<string> {
    try {
      const creds = await this.client.config.credentials();
      const id = creds.accessKeyId;
      // Enough of the key id to recognise it, not the whole identifier.
      return `access key id "${id.length > 8 ? `${id.slice(0, 4)}…${id.slice(-2)}` : id}"`;
    } catch {
      return 'the access key id in use';
    }
  }

  /** The AblateError for a failed SDK call (or a non-SDK error, passed through). */
  private async translate(
    err: unknown,
    op: string,
    key: string | undefined,
    elapsedMs: number,
    note?: string,
  ): Promise<Error> {
    const suffix = note ? `; ${note}` : '';
    if (err instanceof AblateError) {
      return note
        ? new AblateError(err.type, `${err.message}${suffix}`, { retryable: err.retryable, cause: err.cause })
        : err;
    }
    const e = (err ?? {}) as {
      name?: string;
      code?: string;
      message?: string;
      $metadata?: { httpStatusCode?: number; attempts?: number };
    };
    const name = errorName(err);
    const status = e.$metadata?.httpStatusCode;
    const where = `${op} ${this.where(key)}`;
    const at = this.endpointLabel;
    const attempts = e.$metadata?.attempts;
    const seconds = `${(elapsedMs / 1000).toFixed(1)} s`;
    const tries =
      attempts === undefined ? seconds : `${attempts} attempt${attempts === 1 ? '' : 's'} over ${seconds}`;

    const local = err as NodeJS.ErrnoException;
    if (local.syscall && local.path && e.$metadata === undefined) {
      // The local file went away or became unreadable between hashing and uploading.
      return permanent(
        ErrorType.InvalidInput,
        `could not read ${local.path} for ${where}: ${local.code ?? local.message}; nothing was stored${suffix}`,
        err,
      );
    }
    if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(e.message ?? '')) {
      return permanent(
        ErrorType.StoreUnavailable,
        `no AWS credentials found for ${where} at ${at}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ` +
          `or AWS_PROFILE naming a profile in ~/.aws/credentials or ~/.aws/config (${e.message ?? name})${suffix}`,
        err,
      );
    }
    if (/Region is missing/i.test(e.message ?? '')) {
      return permanent(
        ErrorType.InvalidConfig,
        `no AWS region for ${where}: set ${S3EnvKey.region} or add ?region=… to the store URL${suffix}`,
        err,
      );
    }
    if (name === 'NoSuchBucket') return this.noSuchBucket(op, key, err);
    if (name === 'InvalidAccessKeyId') {
      return permanent(
        ErrorType.StoreUnavailable,
        `${at} does not know ${await this.accessKeyLabel()} (InvalidAccessKeyId) for ${where}: ` +
          `check AWS_ACCESS_KEY_ID or the AWS_PROFILE in use${suffix}`,
        err,
      );
    }
    if (name === 'SignatureDoesNotMatch') {
      return permanent(
        ErrorType.StoreUnavailable,
        `${at} refused the request signature for ${await this.accessKeyLabel()} (SignatureDoesNotMatch) ` +
          `for ${where}: the secret access key is wrong; check AWS_SECRET_ACCESS_KEY or the AWS_PROFILE in use${suffix}`,
        err,
      );
    }
    if (name === 'AccessDenied' || status === 403) {
      return permanent(
        ErrorType.StoreUnavailable,
        `${at} denied access (HTTP 403${name === 'Unknown' || name === 'Forbidden' ? '' : ` ${name}`}) for ${where}: the credentials (${await this.accessKeyLabel()}) ` +
          `are wrong or lack permission on bucket "${this.bucket}"${suffix}`,
        err,
      );
    }
    if (name === 'NoSuchUpload') {
      return new AblateError(
        ErrorType.StoreUnavailable,
        `${at} dropped the multipart upload of ${where} while it was in progress (NoSuchUpload), ` +
          `e.g. because the server restarted${suffix}`,
        { retryable: true, cause: err },
      );
    }
    if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
      return new AblateError(
        ErrorType.ArtifactNotFound,
        `no artifact at ${this.where(key)} (${at})${suffix}`,
        {
          cause: err,
        },
      );
    }
    if (CHECKSUM_ERRORS.has(name)) {
      return new AblateError(
        ErrorType.StoreUnavailable,
        `${at} refused ${where}: the checksum of the bytes it received did not match (${name}), so they ` +
          `were corrupted on the way; nothing was stored (after ${tries})${suffix}`,
        { retryable: true, cause: err },
      );
    }
    const reason = NETWORK_REASONS[e.code ?? ''] ?? NETWORK_REASONS[name];
    const serverSide = status !== undefined && status >= 500;
    if (reason || serverSide || name === 'SlowDown' || name === 'RequestTimeout') {
      const what = reason ?? `answered HTTP ${status ?? '?'} ${name}`;
      return new AblateError(
        ErrorType.StoreUnavailable,
        `could not ${where}: the S3 endpoint ${at} ${what}; gave up after ${tries} ` +
          `(limit: ${this.config.maxAttempts} attempts per request, set by ${S3EnvKey.maxAttempts} ` +
          `or ?maxAttempts=)${suffix}`,
        { retryable: true, cause: err },
      );
    }
    return new AblateError(
      ErrorType.StoreUnavailable,
      `${where} at ${at} failed: ${name}${status ? ` (HTTP ${status})` : ''}: ${e.message ?? ''}${suffix}`,
      { retryable: status === undefined, cause: err },
    );
  }
}

/**
 * The SDK retry strategy: exponential backoff with jitter up to `maxAttempts` per request, for network
 * errors, timeouts, throttling, 5xx and checksum refusals (a resent buffer is a fresh chance). No retry
 * token bucket: when the store is down every request should wait it out the same way.
 */
class BackoffRetryStrategy implements RetryStrategyV2 {
  constructor(private readonly policy: S3StoreConfig) {}

  async acquireInitialRetryToken(): Promise<RetryToken> {
    return retryToken(0, 0);
  }

  async refreshRetryTokenForRetry(token: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
    const retry = token.getRetryCount() + 1;
    const name = errorName(info.error);
    const status = (info.error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
      ?.httpStatusCode;
    const retryable =
      info.errorType === 'TRANSIENT' ||
      info.errorType === 'THROTTLING' ||
      // 501 Not Implemented will not change on a retry.
      (info.errorType === 'SERVER_ERROR' && status !== 501) ||
      CHECKSUM_ERRORS.has(name);
    if (!retryable || retry >= this.policy.maxAttempts) throw info.error ?? new Error('not retried');
    return retryToken(retry, backoffDelayMs(retry, this.policy));
  }

  recordSuccess(): void {}
}

function retryToken(count: number, delayMs: number): RetryToken {
  return { getRetryCount: () => count, getRetryDelay: () => delayMs };
}

/** Adds Content-MD5 to every PUT and part sent from memory: the one body check all S3 servers make. */
const contentMd5Middleware: BuildMiddleware<ServiceInputTypes, ServiceOutputTypes> =
  (next, context) => async (args) => {
    const request = args.request as { headers?: Record<string, string>; body?: unknown } | undefined;
    const command = context.commandName;
    if (
      request?.headers &&
      request.body instanceof Uint8Array &&
      (command === 'PutObjectCommand' || command === 'UploadPartCommand') &&
      !Object.keys(request.headers).some((h) => h.toLowerCase() === 'content-md5')
    ) {
      request.headers['content-md5'] = createHash('md5').update(request.body).digest('base64');
    }
    return next(args);
  };

/** The hex sha256 a content-addressed key (`…sha256/ab/<hex>`) promises, if it is one. */
function digestOfKey(key: string): string | undefined {
  return /(?:^|\/)sha256\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(key)?.[1];
}

function changedWhileStoring(
  path: string,
  key: string,
  expected: string | undefined,
  actual: string,
  expectedBytes: number,
  actualBytes: number,
): AblateError {
  return permanent(
    ErrorType.InvalidInput,
    `${path} changed while it was being stored as ${key}: expected ${expectedBytes} bytes` +
      `${expected ? ` with sha256 ${expected}` : ''}, read ${actualBytes} bytes with sha256 ${actual}; ` +
      'nothing was stored',
  );
}

function errorName(err: unknown): string {
  const e = err as { name?: string; Code?: string; code?: string } | undefined;
  const name = e?.name && e.name !== 'Error' ? e.name : (e?.Code ?? e?.code ?? 'Error');
  return name;
}

/** Write `buffers` at `position`, all of them: a short write (rare on a regular file) writes on. */
async function writeAll(file: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  const whole = buffers.reduce((n, b) => n + b.length, 0);
  let done = (await file.writev(buffers, position)).bytesWritten;
  if (done === whole) return;
  const rest = Buffer.concat(buffers, whole);
  while (done < whole) {
    const more = await file.write(rest, done, whole - done, position + done);
    if (more.bytesWritten === 0) throw new Error(`wrote 0 bytes at ${position + done}`);
    done += more.bytesWritten;
  }
}
