/**
 * The S3 store's side of "a cache that never serves bad bytes", through the S3 protocol only (so it also
 * runs against MinIO or AWS S3): an intact blob is vouched for by the SHA-256 the server stored (one HEAD,
 * no download); an object overwritten behind ablate's back or deleted is not intact; a put repairs it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { InitializeMiddleware } from '@smithy/types';

import { blobKey } from '../../infra/store/artifact-store';
import { openStore, type ArtifactStore } from '../../infra/store/index';
import { S3Backend } from '../../infra/store/s3-backend';
import { useTestS3, type TestS3Target } from '../../infra/testing/s3-server';

/** Counts the S3 commands a backend's client sends, by name. */
function countCommands(backend: S3Backend): Map<string, number> {
  const counts = new Map<string, number>();
  const counter: InitializeMiddleware<object, object> = (next, context) => (args) => {
    const name = context.commandName ?? '?';
    counts.set(name, (counts.get(name) ?? 0) + 1);
    return next(args);
  };
  backend.client.middlewareStack.add(counter as never, { step: 'initialize' });
  return counts;
}

describe('S3 store integrity', () => {
  let target: TestS3Target;
  let store: ArtifactStore;
  let s3: S3Backend;
  before(async () => {
    target = await useTestS3('integrity');
    store = await openStore(target.storeUrl());
    assert.ok(store.backend instanceof S3Backend);
    s3 = store.backend;
  });
  after(async () => {
    s3.destroy();
    await target.close();
  });

  it('vouches for an intact blob with one HEAD, and sees an overwritten or deleted one', async () => {
    const ref = await store.putBytes('model weights, version 1');
    const key = s3.objectKey(blobKey(ref.digest));
    const fresh = await openStore(target.storeUrl());
    const counts = countCommands(fresh.backend as S3Backend);
    try {
      assert.equal(await fresh.isIntact(ref), true);
      assert.deepEqual(Object.fromEntries(counts), { HeadObjectCommand: 1 });
    } finally {
      (fresh.backend as S3Backend).destroy();
    }

    // Someone overwrites the object with other bytes, with a plain PUT.
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'model weights, version 2' }),
    );
    assert.equal(await store.isIntact(ref), false);
    assert.equal((await store.verify(ref)).status, 'corrupt');
    await store.putBytes('model weights, version 1');
    assert.equal(await store.isIntact(ref), true);
    assert.equal((await store.getBytes(ref)).toString(), 'model weights, version 1');

    await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key }));
    assert.deepEqual(await store.verify(ref), { status: 'missing' });
    assert.equal(await store.verifyOutputs({ weights: ref }), false);
  });
});
