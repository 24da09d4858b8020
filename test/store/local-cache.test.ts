/**
 * The worker-local input cache: a hit reads nothing from the store (even once the store lost the blob),
 * concurrent steps share one download, entries are read-only, eviction goes least recently used first
 * and spares entries in use (in this process and, by pin file, in others), a vanished entry is fetched
 * again, a cancelled download leaves nothing behind, and a second attempt of a step starts without
 * moving data.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { createStepContext } from '../../activities/runtime/step-context';
import { ArtifactStore, blobKey } from '../../infra/store/artifact-store';
import { FsBackend } from '../../infra/store/fs-backend';
import { LocalCache } from '../../infra/store/local-cache';
import { removeTree } from '../../infra/store/read-only';
import { resolveConfig } from '../../temporal.config';
import type { ArtifactRef } from '../../workflows/plan-types';

/** A filesystem backend that counts reads (each a blob read from the store), optionally slowly. */
class CountingBackend extends FsBackend {
  reads = 0;
  delayMs = 0;
  override async openRead(key: string): Promise<Readable> {
    this.reads += 1;
    if (this.delayMs) await sleep(this.delayMs);
    return super.openRead(key);
  }
}

let root: string;
let backend: CountingBackend;
let store: ArtifactStore;
let tree: ArtifactRef;
const TREE_FILES = 40;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ablate-local-cache-'));
  backend = new CountingBackend(join(root, 'store'));
  store = new ArtifactStore(backend, { transferConcurrency: 4 });
  const src = join(root, 'src');
  for (let i = 0; i < TREE_FILES; i++) {
    await mkdir(join(src, `d${i % 4}`, 'deep'), { recursive: true });
    await writeFile(join(src, `d${i % 4}`, 'deep', `f${i}.txt`), `file ${i}\n`.repeat(i + 1));
  }
  tree = await store.putTree(src);
});
after(() => removeTree(root));

let n = 0;
/** A fresh cache directory per test. */
function newCache(maxBytes = 1 << 30, dir = join(root, `cache-${++n}`)): LocalCache {
  return new LocalCache(store, { dir, maxBytes, warn: (m) => assert.fail(m) });
}

async function fileArtifact(name: string, bytes: number): Promise<ArtifactRef> {
  const path = join(root, `${name}.bin`);
  await writeFile(path, Buffer.alloc(bytes, name));
  return store.putFile(path);
}

describe('worker input cache', () => {
  beforeEach(() => {
    backend.reads = 0;
    backend.delayMs = 0;
  });

  it('serves a second fetch in place without reading the store, even once the store lost the blobs', async () => {
    const cache = newCache();
    const first = await cache.acquire(tree);
    assert.equal(first.hit, false);
    assert.equal(backend.reads, 1 + TREE_FILES, 'the manifest and every file, once');
    first.release();
    const again = await cache.acquire(tree);
    assert.equal(again.hit, true);
    assert.equal(again.path, first.path);
    assert.equal(backend.reads, 1 + TREE_FILES, 'no read on a hit');
    again.release();

    const lone = await fileArtifact('lone', 1000);
    (await cache.acquire(lone)).release();
    await backend.delete(blobKey(lone.digest));
    const hit = await cache.acquire(lone);
    assert.equal(hit.hit, true);
    assert.deepEqual(await readFile(hit.path), Buffer.alloc(1000, 'lone'));
    hit.release();
    assert.deepEqual(cache.stats, { hits: 2, downloads: 2, evictions: 0 });
  });

  it('fetches once for steps that need the same input at the same time', async () => {
    const cache = newCache();
    backend.delayMs = 5;
    const leases = await Promise.all(Array.from({ length: 5 }, () => cache.acquire(tree)));
    assert.equal(backend.reads, 1 + TREE_FILES);
    assert.equal(cache.stats.downloads, 1);
    assert.equal(new Set(leases.map((l) => l.path)).size, 1);
    for (const l of leases) l.release();
  });

  it('lets two caches on one directory (two worker processes) race: one entry, no leftovers', async () => {
    const dir = join(root, 'shared-cache');
    const [a, b] = [newCache(1 << 30, dir), newCache(1 << 30, dir)];
    const [la, lb] = await Promise.all([a.acquire(tree), b.acquire(tree)]);
    assert.equal(la.path, lb.path);
    assert.equal((await readdir(join(la.path, 'd1', 'deep'))).length, TREE_FILES / 4);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.deepEqual(await readdir(join(dir, 'entries')), [`${tree.digest.slice(7)}.tree`]);
    la.release();
    lb.release();
  });

  it('stores entries read-only: files 0444, folders 0555', async () => {
    const cache = newCache();
    const lease = await cache.acquire(tree);
    assert.equal((await stat(lease.path)).mode & 0o777, 0o555);
    assert.equal((await stat(join(lease.path, 'd2'))).mode & 0o777, 0o555);
    assert.equal((await stat(join(lease.path, 'd2', 'deep'))).mode & 0o777, 0o555);
    assert.equal((await stat(join(lease.path, 'd2', 'deep', 'f2.txt'))).mode & 0o777, 0o444);
    const file = await cache.acquire(await fileArtifact('ro', 10));
    assert.equal((await stat(file.path)).mode & 0o777, 0o444);
    lease.release();
    file.release();
  });

  it('evicts the least recently used entries first, down to its bound', async () => {
    const cache = newCache(2500);
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((x) => fileArtifact(`lru-${x}`, 1000)));
    for (const ref of [a!, b!]) {
      (await cache.acquire(ref)).release();
      await sleep(15); // distinct last-use times
    }
    (await cache.acquire(a!)).release(); // a is now more recent than b
    await sleep(15);
    (await cache.acquire(c!)).release(); // 3000 > 2500: b goes
    assert.equal(cache.stats.evictions, 1);
    assert.equal(await cache.sizeBytes(), 2000);
    const reads = backend.reads;
    for (const ref of [a!, c!]) assert.equal((await cache.acquire(ref)).hit, true);
    assert.equal(backend.reads, reads);
    const bAgain = await cache.acquire(b!);
    assert.equal(bAgain.hit, false, 'the evicted entry is fetched again');
  });

  it('never evicts an entry in use, here or in another live process', async () => {
    const cache = newCache(0);
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((x) => fileArtifact(`pin-${x}`, 500)));
    const held = await cache.acquire(a!);
    (await cache.acquire(b!)).release();
    // Another process (our parent, alive) holds c; a dead one's pin counts for nothing.
    const cEntry = `${c!.digest.slice(7)}.file`;
    await writeFile(join(cache.dir, 'pins', `${cEntry}@${process.ppid}-1`), '');
    await writeFile(join(cache.dir, 'pins', `${b!.digest.slice(7)}.file@999999999-1`), '');
    const other = newCache(1 << 30, cache.dir);
    (await other.acquire(c!)).release();
    await cache.evict();
    const left = await readdir(join(cache.dir, 'entries'));
    assert.deepEqual(left.sort(), [`${a!.digest.slice(7)}.file`, cEntry].sort());
    assert.deepEqual(await readFile(held.path), Buffer.alloc(500, 'pin-a'));
    held.release();
    await rm(join(cache.dir, 'pins', `${cEntry}@${process.ppid}-1`));
    await cache.evict();
    assert.deepEqual(await readdir(join(cache.dir, 'entries')), []);
  });

  it('fetches again an entry deleted behind its back (whole, or its data only)', async () => {
    const cache = newCache();
    const first = await cache.acquire(tree);
    first.release();
    await removeTree(join(first.path, '..'));
    const second = await cache.acquire(tree);
    assert.equal(second.hit, false);
    assert.equal((await readdir(join(second.path, 'd3', 'deep'))).length, TREE_FILES / 4);
    second.release();
    await removeTree(second.path);
    const third = await cache.acquire(tree);
    assert.equal(third.hit, false);
    assert.equal((await readdir(join(third.path, 'd0', 'deep'))).length, TREE_FILES / 4);
    third.release();
    assert.equal(cache.stats.downloads, 3);
  });

  it('a cancelled download stops and leaves nothing; a shared one goes on for the step still waiting', async () => {
    const cache = newCache();
    backend.delayMs = 20;
    const alone = new AbortController();
    const pending = cache.acquire(tree, { signal: alone.signal });
    await sleep(60);
    alone.abort(new Error('step cancelled'));
    await assert.rejects(pending, { message: 'step cancelled' });
    assert.deepEqual(await readdir(join(cache.dir, 'tmp')), []);
    assert.deepEqual(await readdir(join(cache.dir, 'entries')), []);

    const quitter = new AbortController();
    const [quits, stays] = [cache.acquire(tree, { signal: quitter.signal }), cache.acquire(tree)];
    await sleep(60);
    quitter.abort(new Error('one step cancelled'));
    await assert.rejects(quits, { message: 'one step cancelled' });
    const lease = await stays;
    assert.equal((await readdir(join(lease.path, 'd1', 'deep'))).length, TREE_FILES / 4);
    lease.release();
  });

  it('a second attempt of a step starts without moving data, and reads its input in place', async () => {
    const cache = newCache();
    const attempt = async (k: number) => {
      const { ctx, release } = createStepContext({
        store,
        cache,
        workDir: join(root, `work-${k}`),
        attempt: k,
      });
      try {
        return await ctx.fetch(tree);
      } finally {
        release();
      }
    };
    const first = await attempt(1);
    const reads = backend.reads;
    const t = performance.now();
    const second = await attempt(2);
    const ms = performance.now() - t;
    assert.equal(backend.reads, reads, 'no store read on the retry');
    assert.equal(second, first);
    assert.equal(second, cache.pathOf(tree));
    assert.ok(ms < 500, `the retry's fetch took ${ms.toFixed(0)} ms`);
    // The step's own pins are gone once it released them.
    assert.deepEqual(await readdir(join(cache.dir, 'pins')), []);
  });

  it('is configured by flag, ABLATE_WORKER_CACHE_DIR/_BYTES, else under the state directory at 100 GiB', () => {
    const byDefault = resolveConfig({ home: '/state' }, {}, '/cwd');
    assert.equal(byDefault.workerCacheDir, '/state/cache/inputs');
    assert.equal(byDefault.workerCacheBytes, 100 * 2 ** 30);
    const env = { ABLATE_WORKER_CACHE_DIR: 'scratch/c', ABLATE_WORKER_CACHE_BYTES: '1.5G' };
    const fromEnv = resolveConfig({ home: '/state' }, env, '/cwd');
    assert.equal(fromEnv.workerCacheDir, '/cwd/scratch/c');
    assert.equal(fromEnv.workerCacheBytes, 1.5 * 2 ** 30);
    assert.equal(resolveConfig({}, { ABLATE_WORKER_CACHE_BYTES: '123456' }, '/cwd').workerCacheBytes, 123456);
    assert.equal(resolveConfig({ workerCacheBytes: 7 }, env, '/cwd').workerCacheBytes, 7);
    assert.throws(() => resolveConfig({}, { ABLATE_WORKER_CACHE_BYTES: 'lots' }, '/cwd'), {
      message: 'ABLATE_WORKER_CACHE_BYTES=lots: expected a size in bytes, e.g. 500000000, 500M, 100G or 2T',
    });
  });
});
