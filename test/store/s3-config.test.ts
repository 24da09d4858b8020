import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { AblateError } from '../../infra/errors';
import { openStore } from '../../infra/store/index';
import { backoffDelayMs, maxTotalBackoffMs, resolveS3Config, S3_DEFAULTS } from '../../infra/store/s3-config';

function invalidConfig(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof AblateError);
    assert.equal(err.type, 'InvalidConfig');
    assert.equal(err.retryable, false);
    assert.match(err.message, pattern);
    return true;
  };
}

describe('S3 store configuration', () => {
  it('takes bucket and prefix from the URL and the rest from the defaults', () => {
    const c = resolveS3Config('s3://my-bucket/ablate/runs/', {});
    assert.equal(c.bucket, 'my-bucket');
    assert.equal(c.prefix, 'ablate/runs/');
    assert.equal(c.endpoint, undefined);
    assert.equal(c.region, undefined);
    assert.equal(c.forcePathStyle, false);
    assert.equal(c.maxAttempts, S3_DEFAULTS.maxAttempts);
    assert.equal(c.partSizeBytes, 16 * 1024 * 1024);
    assert.equal(c.checksum, 'sha256');
    assert.equal(resolveS3Config('s3://my-bucket', {}).prefix, '');
  });

  it('reads the standard AWS variables, with the URL winning over the environment', () => {
    const env = {
      AWS_ENDPOINT_URL: 'http://generic:1',
      AWS_ENDPOINT_URL_S3: 'http://minio.local:9000/',
      AWS_DEFAULT_REGION: 'eu-west-1',
      AWS_MAX_ATTEMPTS: '3',
    };
    const fromEnv = resolveS3Config('s3://b-1/p', env);
    assert.equal(fromEnv.endpoint, 'http://minio.local:9000');
    assert.equal(fromEnv.region, 'eu-west-1');
    assert.equal(fromEnv.maxAttempts, 3);
    // A custom endpoint means an S3-compatible server: path-style unless told otherwise.
    assert.equal(fromEnv.forcePathStyle, true);
    const fromUrl = resolveS3Config(
      's3://b-1/p?endpoint=http://127.0.0.1:9000&region=us-east-2&forcePathStyle=false&maxAttempts=5&partSizeMiB=8',
      { ...env, ABLATE_S3_FORCE_PATH_STYLE: '1', ABLATE_S3_MAX_ATTEMPTS: '7' },
    );
    assert.equal(fromUrl.endpoint, 'http://127.0.0.1:9000');
    assert.equal(fromUrl.region, 'us-east-2');
    assert.equal(fromUrl.forcePathStyle, false);
    assert.equal(fromUrl.maxAttempts, 5);
    assert.equal(fromUrl.partSizeBytes, 8 * 1024 * 1024);
    assert.equal(fromEnv.downloadConcurrency, 4);
    assert.equal(fromEnv.leanRequests, true);
    const tuned = resolveS3Config('s3://b-1/p?downloadConcurrency=8&leanRequests=false', {
      ABLATE_S3_LEAN_REQUESTS: '1',
      ABLATE_S3_DOWNLOAD_CONCURRENCY: '2',
    });
    assert.equal(tuned.downloadConcurrency, 8);
    assert.equal(tuned.leanRequests, false);
    assert.equal(resolveS3Config('s3://b-1/p', { ABLATE_S3_LEAN_REQUESTS: '0' }).leanRequests, false);
    assert.equal(
      resolveS3Config('s3://b-1/p', { ABLATE_S3_MAX_ATTEMPTS: '7', AWS_MAX_ATTEMPTS: '3' }).maxAttempts,
      7,
    );
    // With a custom endpoint and no region anywhere, us-east-1 (S3-compatible servers ignore it).
    assert.equal(resolveS3Config('s3://b-1?endpoint=http://h:1', {}).region, 'us-east-1');
  });

  it('refuses bad URLs and settings with a message naming the part', () => {
    assert.throws(
      () => resolveS3Config('s3://Bad_Bucket/x', {}),
      invalidConfig(/"Bad_Bucket" is not a valid bucket name/),
    );
    assert.throws(
      () => resolveS3Config('s3://AKIA:secret@bucket/x', {}),
      invalidConfig(/credentials do not belong in the store URL; set AWS_ACCESS_KEY_ID/),
    );
    assert.throws(
      () => resolveS3Config('s3://bucket/x?endpont=http://h:1', {}),
      invalidConfig(/unknown parameter "endpont" \(did you mean "endpoint"\?\)/),
    );
    assert.throws(
      () => resolveS3Config('s3://bucket/x', { ABLATE_S3_PART_SIZE_MIB: '2' }),
      invalidConfig(
        /environment variable ABLATE_S3_PART_SIZE_MIB is "2"; expected a whole number from 5 to 5120/,
      ),
    );
    assert.throws(
      () => resolveS3Config('s3://bucket/x?forcePathStyle=maybe', {}),
      invalidConfig(/URL parameter forcePathStyle is "maybe"; expected true or false/),
    );
    assert.throws(
      () => resolveS3Config('s3://bucket/x?endpoint=ftp://h', {}),
      invalidConfig(/must be an http:\/\/ or https:\/\/ URL/),
    );
    assert.throws(
      () => resolveS3Config('s3://bucket/a/../b', {}),
      invalidConfig(/has an empty, "\." or "\.\." segment/),
    );
    assert.throws(
      () => resolveS3Config('s3://bucket:9000/x', {}),
      invalidConfig(/\?endpoint=http:\/\/host:port/),
    );
    assert.throws(
      () => resolveS3Config('s3://bucket/x?checksum=crc32', {}),
      invalidConfig(/expected sha256 or md5/),
    );
  });

  it('backs off exponentially with jitter, capped, within a bounded total', () => {
    const policy = { maxAttempts: 5, retryBaseMs: 100, retryMaxDelayMs: 300 };
    assert.deepEqual(
      [1, 2, 3, 4].map((r) => backoffDelayMs(r, policy, () => 1)),
      [100, 200, 300, 300],
    );
    assert.deepEqual(
      [1, 2, 3, 4].map((r) => backoffDelayMs(r, policy, () => 0)),
      [50, 100, 150, 150],
    );
    assert.equal(maxTotalBackoffMs(policy), 900);
    // The documented default: 8 attempts, 250 ms doubling to at most 8 s, 23.75 s of waiting at most.
    assert.equal(maxTotalBackoffMs(S3_DEFAULTS), 23_750);
  });

  it('selects the store by URL scheme', async () => {
    await assert.rejects(
      openStore('gs://bucket/x'),
      invalidConfig(/use file:\/\/\/path or s3:\/\/bucket\/prefix/),
    );
    await assert.rejects(openStore('s3://x'), invalidConfig(/"x" is not a valid bucket name/));
  });
});
