/**
 * The S3 artifact store against a real S3 server: the runner's shared one (ABLATE_TEST_S3_URL) or one
 * started for this file. Everything here goes through the S3 protocol only, so it also runs against
 * MinIO or AWS S3 when ABLATE_TEST_S3_URL points there.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { DeserializeMiddleware, InitializeMiddleware } from '@smithy/types';

import { AblateError, ErrorType } from '../../infra/errors';
import { blobKey } from '../../infra/store/artifact-store';
import { ArtifactStore, openStore } from '../../infra/store/index';
import { FsBackend } from '../../infra/store/fs-backend';
import { S3Backend } from '../../infra/store/s3-backend';
import { LeanS3 } from '../../infra/store/s3-lean';
import { useTestS3, type TestS3Target } from '../../infra/testing/s3-server';
import { TREE_MEDIA_TYPE } from '../../workflows/plan-types';

const MiB = 1024 * 1024;

function isAblate(type: string, pattern?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof AblateError, `expected an AblateError, got ${String(err)}`);
    assert.equal(err.type, type, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

function s3Of(store: ArtifactStore): S3Backend {
  assert.ok(store.backend instanceof S3Backend);
  return store.backend;
}

/** Counts the S3 commands a store's client sends, by name. */
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

describe('S3 artifact store', () => {
  let target: TestS3Target;
  let store: ArtifactStore;
  let dir: string;
  const opened: ArtifactStore[] = [];

  async function open(params: Record<string, string | number> = {}): Promise<ArtifactStore> {
    const s = await openStore(target.storeUrl({ partSizeMiB: 5, ...params }));
    opened.push(s);
    return s;
  }

  before(async () => {
    target = await useTestS3('s3-store');
    dir = await mkdtemp(join(tmpdir(), 'ablate-s3-store-'));
    store = await open();
  });
  after(async () => {
    for (const s of opened) s3Of(s).destroy();
    await target.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('addresses content by sha256 and stores the same bytes once', async () => {
    const a = await store.putBytes('hello', { mediaType: 'text/plain' });
    const b = await store.putBytes('hello');
    assert.equal(a.digest, 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    assert.match(
      a.uri,
      /^s3:\/\/[a-z0-9.-]+\/.+\/sha256\/2c\/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425/,
    );
    assert.equal(a.uri, b.uri);
    assert.equal((await store.getBytes(a)).toString(), 'hello');
    assert.deepEqual(await store.backend.list('sha256'), [blobKey(a.digest)]);
  });

  it('stores a large file as a multipart upload and reads it back verified', async () => {
    const src = join(dir, 'large.bin');
    const data = randomBytes(23 * MiB);
    await writeFile(src, data);
    const counts = countCommands(s3Of(store));
    const ref = await store.putFile(src);
    assert.equal(ref.sizeBytes, data.length);
    assert.equal(ref.digest, `sha256:${createHash('sha256').update(data).digest('hex')}`);
    // 23 MiB in 5 MiB parts: five parts, one completed upload, nothing left incomplete.
    assert.equal(counts.get('UploadPartCommand'), 5);
    assert.equal(counts.get('CompleteMultipartUploadCommand'), 1);
    assert.deepEqual(await s3Of(store).listIncompleteUploads(), []);
    const dest = join(dir, 'large.out');
    await store.getFile(ref, dest);
    assert.ok(data.equals(await readFile(dest)));
    assert.deepEqual(await store.verify(ref), { status: 'ok' });
  });

  it('does not upload an artifact that is already stored', async () => {
    const src = join(dir, 'again.bin');
    await writeFile(src, randomBytes(7 * MiB));
    const first = await store.putFile(src);
    const counts = countCommands(s3Of(store));
    const second = await store.putFile(src);
    assert.deepEqual(second, first);
    assert.equal(counts.get('HeadObjectCommand'), 1);
    assert.equal(counts.get('PutObjectCommand'), undefined);
    assert.equal(counts.get('UploadPartCommand'), undefined);
  });

  it('stores a small file with one request, without asking first whether it is there', async () => {
    const src = join(dir, 'small.bin');
    await writeFile(src, randomBytes(20_000));
    // By a lean request (the default), and through the SDK client when those are off.
    for (const s of [store, await open({ leanRequests: 'false' })]) {
      const lean = s3Of(s).config.leanRequests;
      for (let i = 0; i < 2; i++) {
        const counts = countCommands(s3Of(s));
        const leanBefore = s3Of(s).leanRequests;
        const ref = await s.putFile(src);
        assert.equal(s3Of(s).leanRequests - leanBefore, lean ? 1 : 0);
        assert.equal(counts.get('PutObjectCommand'), lean ? undefined : 1);
        assert.equal(counts.get('HeadObjectCommand'), undefined);
        assert.deepEqual(await store.verify(ref), { status: 'ok' });
      }
    }
  });

  it('moves small files by lean requests, and asks the SDK client whatever they cannot answer', async () => {
    const src = join(dir, 'lean-src');
    await mkdir(join(src, 'sub'), { recursive: true });
    const files = Array.from({ length: 40 }, (_, i) => randomBytes(1 + i * 997));
    for (const [i, data] of files.entries()) await writeFile(join(src, 'sub', `f${i}.bin`), data);
    const backend = s3Of(store);
    const counts = countCommands(backend);
    const leanBefore = backend.leanRequests;
    const ref = await store.putTree(src);
    await store.getTree(ref, join(dir, 'lean-dest'));
    // 40 PUTs, then 40 GETs and the manifest's; the manifest's PUT is a HEAD and a PUT through the
    // client (a file store's putFile path: it asks first), so the client sent no GET at all.
    assert.ok(backend.leanRequests - leanBefore >= 81, `lean requests: ${backend.leanRequests - leanBefore}`);
    assert.equal(counts.get('GetObjectCommand'), undefined);
    for (const [i, data] of files.entries())
      assert.ok(data.equals(await readFile(join(dir, 'lean-dest', 'sub', `f${i}.bin`))));

    // A missing blob: the lean GET gets a 404, the client says what is missing.
    const absent = { ...ref, digest: `sha256:${'0'.repeat(64)}`, sizeBytes: 10, mediaType: 'text/plain' };
    await assert.rejects(
      store.getFile(absent, join(dir, 'absent.out')),
      isAblate(ErrorType.ArtifactNotFound),
    );
    assert.equal(counts.get('GetObjectCommand'), 1);
  });

  it('turns the lean path off when it keeps failing where the SDK client succeeds', async () => {
    const backend = s3Of(store);
    // Lean requests to a port nothing listens on; the client itself reaches the server.
    const lean = new LeanS3(backend.client, { ...backend.config, endpoint: 'http://127.0.0.1:1' });
    const key = backend.objectKey('records/lean-off');
    // A failure the client shares (the object is missing too) does not count against the lean path.
    for (let i = 0; i < 5; i++) {
      const answer = lean.get(key, 1);
      assert.equal(await answer, undefined);
      await assert.rejects(
        lean.orClient(
          () => answer,
          () => Promise.reject(new Error('missing there too')),
        ),
      );
    }
    assert.equal(lean.enabled, true);
    // Failures the client does not share: two in a row are tolerated, the third switches it off.
    for (let i = 0; i < 2; i++) {
      const answer = lean.get(key, 1);
      assert.equal(await answer, undefined);
      await lean.orClient(
        () => answer,
        async () => Buffer.from('x'),
      );
    }
    assert.equal(lean.enabled, true);
    const answer = lean.get(key, 1);
    assert.equal(await answer, undefined);
    await lean.orClient(
      () => answer,
      async () => Buffer.from('x'),
    );
    assert.equal(lean.enabled, false);
    lean.destroy();
  });

  it('lets concurrent writers of the same content all succeed with one object', async () => {
    const src = join(dir, 'shared.bin');
    const data = randomBytes(12 * MiB);
    await writeFile(src, data);
    const writers = await Promise.all([open(), open(), open(), open()]);
    const refs = await Promise.all(writers.map((w) => w.putFile(src)));
    const small = await Promise.all(writers.map((w) => w.putBytes('same small bytes')));
    assert.equal(new Set(refs.map((r) => r.uri)).size, 1);
    assert.equal(new Set(small.map((r) => r.uri)).size, 1);
    const dest = join(dir, 'shared.out');
    await store.getFile(refs[0]!, dest);
    assert.ok(data.equals(await readFile(dest)));
    assert.equal((await store.getBytes(small[0]!)).toString(), 'same small bytes');
    assert.deepEqual(await s3Of(store).listIncompleteUploads(), []);
  });

  it('round-trips a directory as a tree', async () => {
    const src = join(dir, 'tree-src');
    await mkdir(join(src, 'a', 'b'), { recursive: true });
    await writeFile(join(src, 'top.txt'), 'top');
    await writeFile(join(src, 'a', 'b', 'deep.json'), '{"x":1}');
    await writeFile(join(src, 'a', 'weights.bin'), randomBytes(6 * MiB));
    const ref = await store.put(src);
    assert.equal(ref.mediaType, TREE_MEDIA_TYPE);
    const dest = join(dir, 'tree-dest');
    await store.get(ref, dest);
    assert.equal(await readFile(join(dest, 'top.txt'), 'utf8'), 'top');
    assert.equal(await readFile(join(dest, 'a', 'b', 'deep.json'), 'utf8'), '{"x":1}');
    assert.ok(
      (await readFile(join(src, 'a', 'weights.bin'))).equals(await readFile(join(dest, 'a', 'weights.bin'))),
    );
    assert.deepEqual(await store.verify(ref), { status: 'ok' });
  });

  it('moves a folder many files at once, bounded, with the digest the file store gives it', async () => {
    const src = join(dir, 'many-src');
    for (let i = 0; i < 200; i++) {
      await mkdir(join(src, `d${i % 5}`), { recursive: true });
      await writeFile(join(src, `d${i % 5}`, `f${i}.bin`), `file ${i} `.repeat(1 + (i % 50)));
    }
    // The gauge counts the SDK client's requests: every request through it.
    const s = await openStore(target.storeUrl({ partSizeMiB: 5, leanRequests: 'false' }), {
      transferConcurrency: 8,
    });
    opened.push(s);
    let inFlight = 0;
    let maxInFlight = 0;
    const gauge: InitializeMiddleware<object, object> = (next) => async (args) => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      try {
        return await next(args);
      } finally {
        inFlight -= 1;
      }
    };
    s3Of(s).client.middlewareStack.add(gauge as never, { step: 'initialize' });
    const ref = await s.put(src);
    const onDisk = new ArtifactStore(new FsBackend(join(dir, 'many-fs')));
    assert.equal(ref.digest, (await onDisk.putTree(src)).digest);
    assert.ok(maxInFlight >= 2 && maxInFlight <= 8, `puts in flight: ${maxInFlight}`);
    maxInFlight = 0;
    const dest = join(dir, 'many-dest');
    await s.get(ref, dest);
    assert.ok(maxInFlight >= 2 && maxInFlight <= 8, `gets in flight: ${maxInFlight}`);
    for (const i of [0, 77, 199])
      assert.equal(
        await readFile(join(dest, `d${i % 5}`, `f${i}.bin`), 'utf8'),
        `file ${i} `.repeat(1 + (i % 50)),
      );
    // Cancelled midway: no directory, no partial file.
    const controller = new AbortController();
    await assert.rejects(
      s.get(ref, join(dir, 'many-cancelled'), {
        signal: controller.signal,
        onProgress: (p) => p.filesDone === 30 && controller.abort(),
      }),
      { name: 'AbortError' },
    );
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith('many-cancelled')),
      [],
    );
  });

  it('keeps mutable records', async () => {
    assert.equal(await store.getRecord('runs/r1'), undefined);
    await store.putRecord('runs/r1', { status: 'running' });
    await store.putRecord('runs/r1', { status: 'done' });
    await store.putRecord('runs/r2', { status: 'queued' });
    assert.deepEqual(await store.getRecord('runs/r1'), { status: 'done' });
    assert.deepEqual(await store.listRecords('runs/'), ['runs/r1', 'runs/r2']);
    assert.deepEqual(await store.listRecords('run'), []);
    await store.deleteRecord('runs/r2');
    await store.deleteRecord('runs/never-written');
    assert.deepEqual(await store.listRecords('runs'), ['runs/r1']);
    await assert.rejects(store.putRecord('../escape', {}), /bad record key/);
  });

  it('refuses an object corrupted on the server and leaves no file behind', async () => {
    const backend = s3Of(store);
    const original = randomBytes(64 * 1024);
    const ref = await store.putBytes(original);
    const tampered = Buffer.from(original);
    tampered[1000] = tampered[1000]! ^ 0xff;
    // Overwrite the object behind the store's back, through the raw S3 API.
    await backend.client.send(
      new PutObjectCommand({
        Bucket: backend.bucket,
        Key: backend.objectKey(blobKey(ref.digest)),
        Body: tampered,
      }),
    );
    await assert.rejects(
      store.getBytes(ref),
      isAblate(ErrorType.CorruptArtifact, /is corrupt: expected sha256:/),
    );
    const out = join(dir, 'corrupt-out');
    await mkdir(out);
    await assert.rejects(store.getFile(ref, join(out, 'copy.bin')), isAblate(ErrorType.CorruptArtifact));
    assert.deepEqual(await readdir(out), []);
    const stream = await store.openRead(ref);
    await assert.rejects(
      (async () => {
        for await (const _ of stream);
      })(),
      isAblate(ErrorType.CorruptArtifact),
    );
    const result = await store.verify(ref);
    assert.equal(result.status, 'corrupt');
  });

  it('reports an object deleted behind its back as ArtifactNotFound', async () => {
    const backend = s3Of(store);
    const ref = await store.putBytes('soon gone');
    await backend.client.send(
      new DeleteObjectCommand({ Bucket: backend.bucket, Key: backend.objectKey(blobKey(ref.digest)) }),
    );
    await assert.rejects(
      store.getBytes(ref),
      isAblate(
        ErrorType.ArtifactNotFound,
        new RegExp(`^no artifact at ${ref.uri.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`),
      ),
    );
    assert.equal(await store.has(ref.digest), false);
    assert.deepEqual(await store.verify(ref), { status: 'missing' });
  });

  it('names the bucket, the endpoint and the fix when the bucket does not exist', async () => {
    const url = new URL(target.storeUrl());
    const bucket = `ablate-missing-${randomBytes(4).toString('hex')}`;
    const missing = await openStore(url.href.replace(`s3://${url.hostname}/`, `s3://${bucket}/`));
    opened.push(missing);
    const expected = new RegExp(
      `bucket "${bucket}" does not exist at .*create it first \\(e\\.g\\. \`aws s3 mb s3://${bucket}`,
    );
    const attempts = [
      () => missing.putBytes('x'),
      () => missing.has(`sha256:${'0'.repeat(64)}`),
      () => missing.getRecord('r'),
    ];
    for (const attempt of attempts) {
      await assert.rejects(
        attempt(),
        (err) => isAblate(ErrorType.StoreUnavailable, expected)(err) && !(err as AblateError).retryable,
      );
    }
  });

  it('refuses wrong credentials with a clear, non-retryable error and stores nothing', async () => {
    const url = target.storeUrl();
    const goodKeyId = process.env.AWS_ACCESS_KEY_ID ?? '';
    const unknownKey = new ArtifactStore(
      await S3Backend.fromUrl(url, {
        credentials: { accessKeyId: 'AKIAUNKNOWNKEY0000', secretAccessKey: 'x' },
      }),
    );
    const wrongSecret = new ArtifactStore(
      await S3Backend.fromUrl(url, {
        credentials: { accessKeyId: goodKeyId, secretAccessKey: 'wrong-secret' },
      }),
    );
    opened.push(unknownKey, wrongSecret);
    const notRetryable = (pattern: RegExp) => (err: unknown) =>
      isAblate(ErrorType.StoreUnavailable, pattern)(err) && !(err as AblateError).retryable;
    await assert.rejects(
      unknownKey.getRecord('r'),
      notRetryable(/does not know access key id "AKIA…00" \(InvalidAccessKeyId\)/),
    );
    await assert.rejects(
      wrongSecret.getRecord('r'),
      notRetryable(/\(SignatureDoesNotMatch\).*the secret access key is wrong/),
    );
    const bytes = `never stored ${randomBytes(4).toString('hex')}`;
    await assert.rejects(wrongSecret.putBytes(bytes), isAblate(ErrorType.StoreUnavailable));
    // The small PUT of a blob goes out as a lean request first; refused, the client's answer names why.
    await assert.rejects(
      (wrongSecret.backend as S3Backend).putBytes(blobKey(`sha256:${'1'.repeat(64)}`), Buffer.from(bytes)),
      notRetryable(/\(SignatureDoesNotMatch\).*the secret access key is wrong/),
    );
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    assert.equal(await store.has(digest), false);
  });

  it('catches bytes corrupted in transit on upload: retries a PUT, aborts a multipart upload', async () => {
    // The flipper sits in the SDK client's middleware: every request through it.
    const s = await open({ maxAttempts: 3, retryBaseMs: 20, leanRequests: 'false' });
    const backend = s3Of(s);
    // Flip one byte of the body after it was checksummed and signed, as a bad link would.
    let corrupt = (_command: string, _attempt: number) => false;
    const attempts = new Map<string, number>();
    const flipper: DeserializeMiddleware<object, object> = (next, context) => (args) => {
      const request = args.request as { body?: unknown };
      const command = context.commandName ?? '?';
      const attempt = (attempts.get(command) ?? 0) + 1;
      attempts.set(command, attempt);
      if (request.body instanceof Uint8Array && corrupt(command, attempt)) {
        const copy = Buffer.from(request.body);
        copy[copy.length >> 1] = copy[copy.length >> 1]! ^ 0x01;
        request.body = copy;
      }
      return next(args);
    };
    backend.client.middlewareStack.add(flipper as never, {
      step: 'deserialize',
      name: 'testFlipper',
      priority: 'low',
    });

    // A PUT corrupted once is refused by the server and sent again intact.
    corrupt = (command, attempt) => command === 'PutObjectCommand' && attempt === 1;
    const ref = await s.putBytes(`checked in transit ${randomBytes(4).toString('hex')}`);
    assert.equal(attempts.get('PutObjectCommand'), 2);
    assert.deepEqual(await store.verify(ref), { status: 'ok' });

    // A part corrupted on every attempt: the upload fails, is aborted, and nothing is visible.
    attempts.clear();
    corrupt = (command, attempt) => command === 'UploadPartCommand' && attempt >= 2;
    const src = join(dir, 'transit.bin');
    await writeFile(src, randomBytes(11 * MiB));
    await assert.rejects(
      s.putFile(src),
      isAblate(
        ErrorType.StoreUnavailable,
        /did not match \(BadDigest\).*nothing was stored.*(was aborted|had already dropped the incomplete multipart upload)/,
      ),
    );
    const hash = createHash('sha256')
      .update(await readFile(src))
      .digest('hex');
    assert.equal(await store.has(`sha256:${hash}`), false);
    assert.deepEqual(await backend.listIncompleteUploads(), []);
  });
});
