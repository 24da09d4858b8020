/**
 * Configuration of the S3 artifact store, resolved once from the store URL, the environment and the
 * defaults (in that order: URL query parameter > environment variable > default). Only
 * {@link resolveS3Config} reads the environment. This module imports no AWS SDK code, so that parsing a
 * bad URL stays cheap and testable.
 *
 *   s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&forcePathStyle=true
 *
 * Credentials are never taken from the URL: the AWS SDK's default provider chain finds them
 * (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE with ~/.aws/credentials and ~/.aws/config, SSO,
 * web identity, container and instance metadata).
 */
import { suggest } from '../did-you-mean';
import { ErrorType, permanent } from '../errors';

/** Environment variables the S3 store reads, defined once. */
export const S3EnvKey = {
  /** The S3 endpoint (standard AWS name), e.g. `http://127.0.0.1:9000` for MinIO. */
  endpointS3: 'AWS_ENDPOINT_URL_S3',
  /** The endpoint for all AWS services (standard AWS name); AWS_ENDPOINT_URL_S3 wins. */
  endpoint: 'AWS_ENDPOINT_URL',
  /** The region (standard AWS name). */
  region: 'AWS_REGION',
  /** The region, older standard name; AWS_REGION wins. */
  defaultRegion: 'AWS_DEFAULT_REGION',
  /** `1`/`true` for path-style addressing (`http://host/bucket/key`), `0`/`false` for virtual-hosted. */
  forcePathStyle: 'ABLATE_S3_FORCE_PATH_STYLE',
  /** Attempts per S3 request (first try included) before giving up. */
  maxAttempts: 'ABLATE_S3_MAX_ATTEMPTS',
  /** Standard AWS name for the same; ABLATE_S3_MAX_ATTEMPTS wins. */
  awsMaxAttempts: 'AWS_MAX_ATTEMPTS',
  /** First retry delay in ms; it doubles on each retry. */
  retryBaseMs: 'ABLATE_S3_RETRY_BASE_MS',
  /** Cap on one retry delay in ms. */
  retryMaxDelayMs: 'ABLATE_S3_RETRY_MAX_DELAY_MS',
  /** Multipart part size in MiB (at least 5, the S3 minimum). */
  partSizeMiB: 'ABLATE_S3_PART_SIZE_MIB',
  /** Parts uploaded at once. */
  uploadConcurrency: 'ABLATE_S3_UPLOAD_CONCURRENCY',
  /** Byte ranges of one big object read at once. */
  downloadConcurrency: 'ABLATE_S3_DOWNLOAD_CONCURRENCY',
  /** `0`/`false` sends every request through the SDK client (no lean small GETs and PUTs). */
  leanRequests: 'ABLATE_S3_LEAN_REQUESTS',
  /** Upload checksums: `sha256` (x-amz-checksum-sha256 + Content-MD5) or `md5` (Content-MD5 only). */
  checksum: 'ABLATE_S3_CHECKSUM',
  /** Connect timeout in ms. */
  connectTimeoutMs: 'ABLATE_S3_CONNECT_TIMEOUT_MS',
  /** A request fails when its socket is idle this long (ms). */
  socketTimeoutMs: 'ABLATE_S3_SOCKET_TIMEOUT_MS',
} as const;

/** How uploads are protected against corruption in transit. */
export type S3ChecksumMode = 'sha256' | 'md5';

/** The resolved configuration of one S3 store. */
export interface S3StoreConfig {
  /** The store URL as given, normalised (`s3://bucket/prefix?…`). */
  url: string;
  bucket: string;
  /** Key prefix inside the bucket: empty, or ending in `/`. */
  prefix: string;
  /** Custom endpoint, or undefined for AWS S3 itself. */
  endpoint: string | undefined;
  /** Region, or undefined to let the SDK read it from the shared config file. */
  region: string | undefined;
  /** @default true when a custom endpoint is set, false for AWS S3 */
  forcePathStyle: boolean;
  /** Attempts per request, first try included. @default 8 */
  maxAttempts: number;
  /** @default 250 */
  retryBaseMs: number;
  /** @default 8000 */
  retryMaxDelayMs: number;
  /** @default 16 MiB */
  partSizeBytes: number;
  /** @default 4 */
  uploadConcurrency: number;
  /** Ranges (of `partSizeBytes`) in flight per read of an object of two parts or more. @default 4 */
  downloadConcurrency: number;
  /** Small GETs and PUTs signed and sent without the client's middleware (s3-lean.ts). @default true */
  leanRequests: boolean;
  /** @default 'sha256' */
  checksum: S3ChecksumMode;
  /** @default 5000 */
  connectTimeoutMs: number;
  /** @default 120000 */
  socketTimeoutMs: number;
}

/** Defaults, defined once (documented in the README's "Artifact stores" section). */
export const S3_DEFAULTS = {
  maxAttempts: 8,
  retryBaseMs: 250,
  retryMaxDelayMs: 8000,
  partSizeMiB: 16,
  uploadConcurrency: 4,
  downloadConcurrency: 4,
  leanRequests: true,
  checksum: 'sha256' as S3ChecksumMode,
  connectTimeoutMs: 5000,
  socketTimeoutMs: 120_000,
  /** Region used with a custom endpoint when none is configured: S3-compatible servers mostly ignore it. */
  customEndpointRegion: 'us-east-1',
} as const;

/** S3 allows at most this many parts; larger files get proportionally larger parts. */
export const S3_MAX_PARTS = 10_000;
/** The S3 minimum part size (all parts but the last). */
export const S3_MIN_PART_SIZE_MIB = 5;

/** URL query parameters the store accepts, with the config field each sets. */
const QUERY_PARAMS = [
  'endpoint',
  'region',
  'forcePathStyle',
  'maxAttempts',
  'retryBaseMs',
  'retryMaxDelayMs',
  'partSizeMiB',
  'uploadConcurrency',
  'downloadConcurrency',
  'leanRequests',
  'checksum',
  'connectTimeoutMs',
  'socketTimeoutMs',
] as const;

type QueryParam = (typeof QUERY_PARAMS)[number];

/**
 * Resolve the configuration of `s3://bucket/prefix?…`. Throws InvalidConfig naming the bad part.
 * `env` defaults to `process.env`.
 */
export function resolveS3Config(url: string, env: NodeJS.ProcessEnv = process.env): S3StoreConfig {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad(url, 'it is not a URL; expected s3://bucket/prefix');
  }
  if (parsed.protocol !== 's3:') throw bad(url, `the scheme is ${parsed.protocol}, expected s3:`);
  if (parsed.username || parsed.password) {
    throw bad(
      url,
      'credentials do not belong in the store URL; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE',
    );
  }
  const bucket = parsed.hostname;
  // Bucket naming rules shared by AWS and the S3-compatible servers (3-63 chars, lowercase, digits, . -).
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw bad(url, `"${bucket}" is not a valid bucket name (3-63 lowercase letters, digits, '.', '-')`);
  }
  if (parsed.port) throw bad(url, 'a bucket has no port; give the server as ?endpoint=http://host:port');
  // The URL parser resolves "." and ".." silently; check what was written.
  const written = url.slice('s3://'.length).split(/[?#]/)[0]!;
  const rawPrefix = decodeURIComponent(written.slice(bucket.length)).replace(/^\/+/, '').replace(/\/+$/, '');
  if (rawPrefix.split('/').some((s) => s === '..' || s === '.' || (s === '' && rawPrefix !== ''))) {
    throw bad(url, `the key prefix "${rawPrefix}" has an empty, "." or ".." segment`);
  }
  const prefix = rawPrefix ? `${rawPrefix}/` : '';

  const query = new Map<QueryParam, string>();
  for (const [name, value] of parsed.searchParams) {
    if (!(QUERY_PARAMS as readonly string[]).includes(name)) {
      const hint = suggest(name, QUERY_PARAMS);
      throw bad(
        url,
        `unknown parameter "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}; known: ${QUERY_PARAMS.join(', ')}`,
      );
    }
    query.set(name as QueryParam, value);
  }
  const pick = (param: QueryParam, ...envKeys: string[]): { value: string; source: string } | undefined => {
    const fromQuery = query.get(param);
    if (fromQuery !== undefined) return { value: fromQuery, source: `URL parameter ${param}` };
    for (const key of envKeys) {
      const v = env[key];
      if (v !== undefined && v !== '') return { value: v, source: `environment variable ${key}` };
    }
    return undefined;
  };

  const endpointRaw = pick('endpoint', S3EnvKey.endpointS3, S3EnvKey.endpoint);
  let endpoint: string | undefined;
  if (endpointRaw) {
    let ep: URL;
    try {
      ep = new URL(endpointRaw.value);
    } catch {
      throw bad(url, `${endpointRaw.source} "${endpointRaw.value}" is not a URL like http://host:port`);
    }
    if (ep.protocol !== 'http:' && ep.protocol !== 'https:') {
      throw bad(url, `${endpointRaw.source} "${endpointRaw.value}" must be an http:// or https:// URL`);
    }
    endpoint = endpointRaw.value.replace(/\/+$/, '');
  }
  const region =
    pick('region', S3EnvKey.region, S3EnvKey.defaultRegion)?.value ??
    (endpoint ? S3_DEFAULTS.customEndpointRegion : undefined);
  const forcePathStyle =
    parseBool(url, pick('forcePathStyle', S3EnvKey.forcePathStyle)) ?? endpoint !== undefined;
  const maxAttempts = parseInt(
    url,
    pick('maxAttempts', S3EnvKey.maxAttempts, S3EnvKey.awsMaxAttempts),
    1,
    100,
  );
  const retryBaseMs = parseInt(url, pick('retryBaseMs', S3EnvKey.retryBaseMs), 1, 600_000);
  const retryMaxDelayMs = parseInt(url, pick('retryMaxDelayMs', S3EnvKey.retryMaxDelayMs), 1, 600_000);
  const partSizeMiB = parseInt(url, pick('partSizeMiB', S3EnvKey.partSizeMiB), S3_MIN_PART_SIZE_MIB, 5120);
  const uploadConcurrency = parseInt(url, pick('uploadConcurrency', S3EnvKey.uploadConcurrency), 1, 64);
  const downloadConcurrency = parseInt(url, pick('downloadConcurrency', S3EnvKey.downloadConcurrency), 1, 64);
  const leanRequests = parseBool(url, pick('leanRequests', S3EnvKey.leanRequests));
  const connectTimeoutMs = parseInt(url, pick('connectTimeoutMs', S3EnvKey.connectTimeoutMs), 1, 600_000);
  const socketTimeoutMs = parseInt(url, pick('socketTimeoutMs', S3EnvKey.socketTimeoutMs), 1, 3_600_000);
  const checksumRaw = pick('checksum', S3EnvKey.checksum);
  if (checksumRaw && checksumRaw.value !== 'sha256' && checksumRaw.value !== 'md5') {
    throw bad(url, `${checksumRaw.source} is "${checksumRaw.value}"; expected sha256 or md5`);
  }

  return {
    url: parsed.href,
    bucket,
    prefix,
    endpoint,
    region,
    forcePathStyle,
    maxAttempts: maxAttempts ?? S3_DEFAULTS.maxAttempts,
    retryBaseMs: retryBaseMs ?? S3_DEFAULTS.retryBaseMs,
    retryMaxDelayMs: retryMaxDelayMs ?? S3_DEFAULTS.retryMaxDelayMs,
    partSizeBytes: (partSizeMiB ?? S3_DEFAULTS.partSizeMiB) * 1024 * 1024,
    uploadConcurrency: uploadConcurrency ?? S3_DEFAULTS.uploadConcurrency,
    downloadConcurrency: downloadConcurrency ?? S3_DEFAULTS.downloadConcurrency,
    leanRequests: leanRequests ?? S3_DEFAULTS.leanRequests,
    checksum: (checksumRaw?.value as S3ChecksumMode | undefined) ?? S3_DEFAULTS.checksum,
    connectTimeoutMs: connectTimeoutMs ?? S3_DEFAULTS.connectTimeoutMs,
    socketTimeoutMs: socketTimeoutMs ?? S3_DEFAULTS.socketTimeoutMs,
  };
}

/**
 * The delay before retry number `retry` (1 = the first retry): exponential from `baseMs`, capped at
 * `maxDelayMs`, with "equal jitter" (between half and all of it) so that many clients hitting the same
 * outage do not retry in lockstep, while the total wait stays bounded from below and above.
 */
export function backoffDelayMs(
  retry: number,
  policy: { retryBaseMs: number; retryMaxDelayMs: number },
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.retryMaxDelayMs, policy.retryBaseMs * 2 ** (retry - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

/** The most time all retries of one request can wait, for documentation and error messages. */
export function maxTotalBackoffMs(policy: {
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxDelayMs: number;
}): number {
  let total = 0;
  for (let retry = 1; retry < policy.maxAttempts; retry++) total += backoffDelayMs(retry, policy, () => 1);
  return total;
}

function bad(url: string, why: string) {
  return permanent(ErrorType.InvalidConfig, `bad S3 store configuration for ${JSON.stringify(url)}: ${why}`);
}

function parseBool(url: string, raw: { value: string; source: string } | undefined): boolean | undefined {
  if (!raw) return undefined;
  const v = raw.value.toLowerCase();
  if (v === '1' || v === 'true' || v === 'yes') return true;
  if (v === '0' || v === 'false' || v === 'no') return false;
  throw bad(url, `${raw.source} is "${raw.value}"; expected true or false`);
}

function parseInt(
  url: string,
  raw: { value: string; source: string } | undefined,
  min: number,
  max: number,
): number | undefined {
  if (!raw) return undefined;
  const n = Number(raw.value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw bad(url, `${raw.source} is "${raw.value}"; expected a whole number from ${min} to ${max}`);
  }
  return n;
}
