/**
 * The S3 store under faults, against an S3 server this file owns (it stops, restarts and edits it):
 * objects corrupted or deleted on the server's disk, an unreachable endpoint, the server going down and
 * coming back during a put, an upload killed mid-way, missing credentials, credentials from a profile.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open as openFile, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';

import { AblateError, ErrorType } from '../../infra/errors';
import { blobKey, hashFile } from '../../infra/store/artifact-store';
import { openStore, type ArtifactStore } from '../../infra/store/index';
import type { S3Backend } from '../../infra/store/s3-backend';
import { startS3Server, type S3TestServer } from '../../infra/testing/s3-server';

const MiB = 1024 * 1024;
const root = join(import.meta.dirname, '..', '..');
const storeCli = join(import.meta.dirname, 'fixtures', 'store-cli.ts');

interface CliResult {
  op: string;
  ok: boolean;
  type?: string;
  retryable?: boolean;
  message?: string;
}

/** Run the store CLI fixture in a child process with exactly `env`. */
function spawnStoreCli(url: string, ops: Array<[string, string]>, env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, ['--import', 'tsx', storeCli, url, JSON.stringify(ops)], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; results: CliResult[] }>(
    (resolve) =>
      child.on('exit', (code, signal) =>
        resolve({
          code,
          signal,
          results: stdout
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .map((l) => JSON.parse(l) as CliResult),
        }),
      ),
  );
  return { child, done, stderr: () => stderr };
}

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A TCP proxy to 127.0.0.1:`upstreamPort` that cuts a connection once it carried `cutAfter` bytes to the
 * client, `times` times at most: a body breaks off after its headers arrived.
 */
async function cuttingProxy(upstreamPort: number, cutAfter: number, times: number) {
  let cuts = 0;
  const proxy = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    let carried = 0;
    upstream.on('data', (chunk: Buffer) => {
      carried += chunk.length;
      if (cuts < times && carried > cutAfter) {
        cuts += 1;
        client.destroy();
        upstream.destroy();
      } else client.write(chunk);
    });
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
    }
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    port: (proxy.address() as { port: number }).port,
    cuts: () => cuts,
    close: () => proxy.close(),
  };
}

/** Wait until the backend lists an incomplete multipart upload for `key`. */
async function waitForUpload(backend: S3Backend, key: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await backend.listIncompleteUploads()).some((u) => u.key === key)) {
    if (Date.now() > deadline) throw new Error(`no multipart upload of ${key} started within 30 s`);
    await sleep(20);
  }
}

describe('S3 store faults', () => {
  let server: S3TestServer;
  let dir: string;
  let store: ArtifactStore;
  let backend: S3Backend;
  const opened: S3Backend[] = [];

  async function open(params: Record<string, string | number> = {}): Promise<ArtifactStore> {
    const s = await openStore(server.storeUrl('faults', { partSizeMiB: 5, ...params }));
    opened.push(s.backend as S3Backend);
    return s;
  }

  /** A file of `sizeBytes` random bytes, put in the store. */
  async function putRandom(name: string, sizeBytes: number) {
    const src = join(dir, name);
    const data = randomBytes(sizeBytes);
    await writeFile(src, data);
    return { ref: await store.putFile(src), data };
  }

  before(async () => {
    // 16 MiB/s makes a 40 MiB upload last ~2.5 s: long enough to kill or stop the server in the middle.
    server = await startS3Server({ bwLimit: '16M' });
    Object.assign(process.env, server.env);
    dir = await mkdtemp(join(tmpdir(), 'ablate-s3-faults-'));
    store = await open();
    backend = store.backend as S3Backend;
  });
  after(async () => {
    for (const b of opened) b.destroy();
    await server.stop({ removeData: true });
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses an object corrupted on the server disk, leaving no file behind', async () => {
    const { ref } = await putRandom('rot.bin', 6 * MiB);
    const onDisk = server.objectPath(backend.objectKey(blobKey(ref.digest)));
    const bytes = await readFile(onDisk);
    bytes[3 * MiB] = bytes[3 * MiB]! ^ 0x10;
    await writeFile(onDisk, bytes);

    const out = join(dir, 'rot-out');
    await mkdir(out);
    await assert.rejects(store.getFile(ref, join(out, 'rot.bin')), (err: unknown) => {
      assert.ok(err instanceof AblateError && err.type === ErrorType.CorruptArtifact);
      assert.match(
        err.message,
        new RegExp(`artifact ${ref.uri} is corrupt: expected ${ref.digest}, read sha256:`),
      );
      assert.match(err.message, /it was not used$/);
      return true;
    });
    assert.deepEqual(await readdir(out), []);
    assert.equal((await store.verify(ref)).status, 'corrupt');
  });

  it('reports an object deleted from the server disk as ArtifactNotFound', async () => {
    const ref = await store.putBytes(`deleted behind our back ${randomBytes(4).toString('hex')}`);
    await rm(server.objectPath(backend.objectKey(blobKey(ref.digest))));
    await assert.rejects(store.getBytes(ref), (err: unknown) => {
      assert.ok(err instanceof AblateError && err.type === ErrorType.ArtifactNotFound);
      assert.equal(err.message, `no artifact at ${ref.uri} (${server.endpoint})`);
      return true;
    });
    assert.deepEqual(await store.verify(ref), { status: 'missing' });
  });

  it('reads a big object in ranges, and reads on from where a range broke off', async () => {
    const { ref, data } = await putRandom('ranged.bin', 24 * MiB);
    // A proxy that cuts one connection once it carried 2 MiB to the client: a range's body breaks
    // midway, after its headers arrived.
    const proxy = await cuttingProxy(server.port, 2 * MiB, 1);
    try {
      const viaProxy = await open({ endpoint: `http://127.0.0.1:${proxy.port}`, retryBaseMs: 10 });
      const ranges: string[] = [];
      (viaProxy.backend as S3Backend).client.middlewareStack.add(
        ((next: (args: unknown) => unknown) => (args: { input: { Range?: string } }) => {
          if (args.input.Range) ranges.push(args.input.Range);
          return next(args);
        }) as never,
        { step: 'initialize' },
      );
      const dest = join(dir, 'ranged.out');
      await viaProxy.getFile(ref, dest);
      assert.equal(proxy.cuts(), 1, 'the proxy cut a connection');
      assert.ok(data.equals(await readFile(dest)));
      // 24 MiB in 5 MiB ranges: five, and the rest of the one that broke off, asked for once more.
      assert.equal(ranges.length, 6, ranges.join(' '));
      const parsed = ranges.map(
        (r) => /^bytes=(\d+)-(\d+)$/.exec(r)!.slice(1).map(Number) as [number, number],
      );
      const whole = parsed.filter(([first]) => first % (5 * MiB) === 0);
      assert.equal(whole.length, 5, ranges.join(' '));
      const [rest] = parsed.filter(([first]) => first % (5 * MiB) !== 0);
      const broken = whole.find(([first, last]) => first < rest![0] && rest![1] === last);
      assert.ok(broken, `the resumed ${ranges.join(' ')} ends where a whole range ends`);
      // A verified stream of the same object reads it in ranges too, handed on in order.
      assert.ok(data.equals(await buffer(await viaProxy.openRead(ref))));
    } finally {
      proxy.close();
    }
  });

  it('fails a ranged read whose connections keep breaking, leaving no file behind', async () => {
    const { ref } = await putRandom('breaking.bin', 24 * MiB);
    const proxy = await cuttingProxy(server.port, 1 * MiB, Infinity);
    try {
      const viaProxy = await open({
        endpoint: `http://127.0.0.1:${proxy.port}`,
        retryBaseMs: 10,
        maxAttempts: 2,
      });
      const out = join(dir, 'breaking-out');
      await mkdir(out);
      await assert.rejects(viaProxy.getFile(ref, join(out, 'breaking.bin')), (err: unknown) => {
        assert.ok(err instanceof AblateError && err.type === ErrorType.StoreUnavailable, String(err));
        assert.equal(err.retryable, true);
        assert.match(
          err.message,
          /^lost the connection to .* while reading bytes \d+-\d+ of s3:\/\/\S+ 2 times \(last: .*\); nothing was used$/,
        );
        return true;
      });
      assert.deepEqual(await readdir(out), []);
    } finally {
      proxy.close();
    }
  });

  it('stops a ranged read on abort, at once, leaving no file behind', async () => {
    // 24 MiB at the server's 16 MiB/s: the abort after the first bytes lands mid-read.
    const { ref } = await putRandom('aborted.bin', 24 * MiB);
    const reader = await open();
    const s3 = reader.backend as S3Backend;
    const controller = new AbortController();
    let handedOn = 0;
    const readInto = s3.readInto.bind(s3);
    s3.readInto = (key, file, sizeBytes, options) =>
      readInto(key, file, sizeBytes, {
        ...options,
        onBytes: (chunk) => {
          options.onBytes(chunk);
          handedOn += chunk.length;
          if (handedOn >= MiB) controller.abort();
        },
      });
    const out = join(dir, 'aborted-out');
    await mkdir(out);
    const started = performance.now();
    await assert.rejects(reader.getFile(ref, join(out, 'aborted.bin'), { signal: controller.signal }), {
      name: 'AbortError',
    });
    assert.ok(performance.now() - started < 1000, `the abort took ${performance.now() - started} ms`);
    assert.ok(handedOn < 24 * MiB, `${handedOn} bytes were handed on`);
    assert.deepEqual(await readdir(out), []);
  });

  it('stops a ranged read whose write fails, and reports the write error', async () => {
    const { ref } = await putRandom('unwritable.bin', 12 * MiB);
    // A file opened read-only: every write to it fails (EBADF).
    const target = join(dir, 'unwritable.out');
    await writeFile(target, '');
    const file = await openFile(target, 'r');
    try {
      await assert.rejects(
        backend.readInto(blobKey(ref.digest), file, ref.sizeBytes, { onBytes: () => {} }),
        { code: 'EBADF' },
      );
    } finally {
      await file.close();
    }
  });

  it('gives up on an unreachable endpoint after the retry limit, in bounded time', async () => {
    const port = await freePort();
    const url = `s3://${server.bucket}/x?endpoint=http://127.0.0.1:${port}&maxAttempts=4&retryBaseMs=100`;
    const unreachable = await openStore(url);
    opened.push(unreachable.backend as S3Backend);
    const started = performance.now();
    await assert.rejects(unreachable.putBytes('anything'), (err: unknown) => {
      assert.ok(err instanceof AblateError && err.type === ErrorType.StoreUnavailable);
      assert.equal(err.retryable, true);
      assert.match(
        err.message,
        new RegExp(
          `^could not HEAD s3://${server.bucket}/x/sha256/[0-9a-f]{2}/[0-9a-f]{64}: the S3 endpoint ` +
            `http://127\\.0\\.0\\.1:${port} refused the connection \\(is the server running\\?\\); ` +
            'gave up after 4 attempts over \\d+\\.\\d s \\(limit: 4 attempts per request, set by ABLATE_S3_MAX_ATTEMPTS',
        ),
      );
      return true;
    });
    const elapsedMs = performance.now() - started;
    // Three backoffs of 100, 200 and 400 ms with equal jitter: at least 350 ms, at most 700 ms + overhead.
    assert.ok(elapsedMs >= 350, `gave up after ${elapsedMs} ms, before backing off`);
    assert.ok(elapsedMs < 5000, `took ${elapsedMs} ms`);
  });

  it('waits out a server that is down and comes back, before and during a put', async () => {
    const patient = await open({
      maxAttempts: 10,
      retryBaseMs: 200,
      retryMaxDelayMs: 2000,
      uploadConcurrency: 1,
    });
    const patientBackend = patient.backend as S3Backend;
    await patient.putRecord('status', { phase: 'before outage' });

    // Down before a request: the lookup retries until the server is back.
    await server.stop();
    const started = performance.now();
    const lookup = patient.getRecord('status');
    await sleep(700);
    await server.start();
    assert.deepEqual(await lookup, { phase: 'before outage' });
    assert.ok(performance.now() - started >= 700);

    // Down in the middle of a multipart upload: the parts in flight fail, are retried with backoff, and
    // the upload the restarted server forgot (NoSuchUpload) is started again.
    const src = join(dir, 'outage.bin');
    await writeFile(src, randomBytes(40 * MiB));
    const { digest } = await hashFile(src);
    const creates: string[] = [];
    patientBackend.client.middlewareStack.add(
      ((next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) => (args: unknown) => {
        if (context.commandName === 'CreateMultipartUploadCommand') creates.push(context.commandName);
        return next(args);
      }) as never,
      { step: 'initialize' },
    );
    const put = patient.putFile(src);
    await waitForUpload(backend, blobKey(digest));
    await sleep(300);
    await server.stop();
    await sleep(1000);
    await server.start();
    const ref = await put;
    assert.equal(creates.length, 2, 'the lost upload was started once more');
    const dest = join(dir, 'outage.out');
    await store.getFile(ref, dest);
    assert.ok((await readFile(src)).equals(await readFile(dest)));
    assert.deepEqual(await backend.listIncompleteUploads(), []);
  });

  it('refuses a file that changes while it is uploaded, before the upload completes', async () => {
    const src = join(dir, 'changing.bin');
    await writeFile(src, randomBytes(30 * MiB));
    const { digest } = await hashFile(src);
    const slow = await open({ uploadConcurrency: 1 });
    const put = slow.putFile(src);
    await waitForUpload(backend, blobKey(digest));
    // Rewrite the last MiB, which the upload has not read yet (it is throttled to 16 MiB/s).
    const file = await openFile(src, 'r+');
    await file.write(randomBytes(MiB), 0, MiB, 29 * MiB);
    await file.close();
    await assert.rejects(put, (err: unknown) => {
      assert.ok(err instanceof AblateError && err.type === ErrorType.InvalidInput);
      assert.match(
        err.message,
        new RegExp(
          `^${src} changed while it was being stored as ${blobKey(digest)}: expected ${30 * MiB} bytes with sha256 ` +
            `${digest.slice(7)}, read ${30 * MiB} bytes with sha256 [0-9a-f]{64}; nothing was stored; ` +
            'the incomplete multipart upload \\S+ was aborted',
        ),
      );
      return true;
    });
    assert.equal(await store.has(digest), false);
    assert.equal(await store.has((await hashFile(src)).digest), false);
    assert.deepEqual(await backend.listIncompleteUploads(), []);
  });

  it('leaves nothing visible when an upload is killed, and lists and aborts what it left', async () => {
    const src = join(dir, 'killed.bin');
    await writeFile(src, randomBytes(40 * MiB));
    const { digest } = await hashFile(src);
    const key = blobKey(digest);
    // A prefix of its own, so that what an earlier test's server restart left does not count.
    const url = server.storeUrl('killed', { partSizeMiB: 5, uploadConcurrency: 1 });
    const store = await openStore(url);
    const backend = store.backend as S3Backend;
    opened.push(backend);
    const cli = spawnStoreCli(url, [['put', src]], { ...process.env, ...server.env });
    await waitForUpload(backend, key);
    await sleep(300);
    cli.child.kill('SIGKILL');
    const { signal, results } = await cli.done;
    assert.equal(signal, 'SIGKILL', `the upload finished before the kill: ${JSON.stringify(results)}`);

    assert.equal(await store.has(digest), false);
    assert.ok(!(await backend.list('sha256')).includes(key));
    await assert.rejects(stat(server.objectPath(backend.objectKey(key))), /ENOENT/);
    const stale = await backend.listIncompleteUploads();
    assert.deepEqual(
      stale.map((u) => u.key),
      [key],
    );
    assert.equal(await backend.abortIncompleteUploads({ olderThanMs: 0 }), 1);
    assert.deepEqual(await backend.listIncompleteUploads(), []);
    // The server dropped the parts it had received: no partial data is left on its disk either (the
    // server removes it just after answering the abort).
    const leftovers = async () =>
      (await readdir(join(server.dataDir, server.bucket, 'killed'), { recursive: true })).filter((f) =>
        f.includes('.rclone_temp'),
      );
    for (let i = 0; i < 50 && (await leftovers()).length > 0; i++) await sleep(40);
    assert.deepEqual(await leftovers(), []);

    const ref = await store.putFile(src);
    assert.equal(ref.digest, digest);
    assert.deepEqual(await store.verify(ref), { status: 'ok' });
  });

  it('says where to put credentials when there are none, and reads them from a profile', async () => {
    const home = join(dir, 'home');
    await mkdir(home, { recursive: true });
    const url = server.storeUrl('faults');
    const bare: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: home,
      AWS_CONFIG_FILE: join(home, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-credentials'),
      // Never probe the EC2 metadata address from a test.
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    const none = await spawnStoreCli(url, [['get-record', 'runs/r1']], bare).done;
    assert.equal(none.code, 0);
    assert.equal(none.results.length, 1);
    const [result] = none.results;
    assert.equal(result?.ok, false);
    assert.equal(result?.type, ErrorType.StoreUnavailable);
    assert.equal(result?.retryable, false);
    assert.match(
      result?.message ?? '',
      /^no AWS credentials found for GET s3:\/\/ablate-test\/faults\/records\/runs\/r1\.json at http:\/\/127\.0\.0\.1:\d+: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE/,
    );

    const credentials = join(home, 'credentials');
    await writeFile(
      credentials,
      `[ablate-test]\naws_access_key_id = ${server.accessKeyId}\naws_secret_access_key = ${server.secretAccessKey}\n`,
    );
    await store.putRecord('runs/r1', { from: 'profile test' });
    const profile = await spawnStoreCli(url, [['get-record', 'runs/r1']], {
      ...bare,
      AWS_SHARED_CREDENTIALS_FILE: credentials,
      AWS_PROFILE: 'ablate-test',
    }).done;
    assert.deepEqual(profile.results, [{ op: 'get-record', ok: true, value: { from: 'profile test' } }]);
  });
});
