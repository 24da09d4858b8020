/**
 * The file store never vouches for bad bytes: blobs are read-only, a put repairs a damaged blob
 * atomically, `isIntact` sees a corrupt or missing blob and every file of a tree, and the verified-stat
 * memo (in process and in the `.verified/` sidecar) is trusted only while the file is unchanged.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { ArtifactStore } from '../../infra/store/artifact-store';
import { FsBackend } from '../../infra/store/fs-backend';
import { tamper } from '../helpers/tamper';

/** A store over `root` that counts how many blobs it reads in full. */
function countingStore(root: string): { store: ArtifactStore; reads: () => number } {
  const backend = new FsBackend(root);
  let reads = 0;
  const openRead = backend.openRead.bind(backend);
  backend.openRead = (key: string) => {
    if (key.startsWith('sha256/')) reads++;
    return openRead(key);
  };
  return { store: new ArtifactStore(backend), reads: () => reads };
}

describe('store integrity', () => {
  let dir: string;
  let root: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-integrity-'));
    root = join(dir, 'store');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('stores blobs read-only, and a put replaces a damaged blob atomically', async () => {
    const { store } = countingStore(root);
    const src = join(dir, 'weights.bin');
    await writeFile(src, 'the real weights');
    const ref = await store.putFile(src);
    const blob = new URL(ref.uri);
    assert.equal((await stat(blob)).mode & 0o777, 0o444);

    await tamper(ref.uri, 'rotten weights!!');
    assert.equal(await store.isIntact(ref), false);
    await store.putFile(src);
    assert.equal(await readFile(blob, 'utf8'), 'the real weights');
    assert.equal((await stat(blob)).mode & 0o777, 0o444);
    assert.equal(await store.isIntact(ref), true);

    await rm(blob);
    assert.deepEqual(await store.verify(ref), { status: 'missing' });
    const again = await store.putBytes('the real weights');
    assert.equal(again.digest, ref.digest);
    assert.equal(await readFile(blob, 'utf8'), 'the real weights');
  });

  it('checks every file of a tree, and a second put of the directory repairs it', async () => {
    const { store } = countingStore(root);
    const src = join(dir, 'dataset');
    await mkdir(join(src, 'images'), { recursive: true });
    for (let i = 0; i < 5; i++) await writeFile(join(src, 'images', `${i}.txt`), `image ${i}`);
    await writeFile(join(src, 'train.json'), '{"images":5}');
    const tree = await store.putTree(src);
    assert.equal(await store.verifyOutputs({ dataset: tree, count: 5 }), true);

    const manifest = await store.getJson<{ entries: Array<{ path: string; digest: string }> }>(tree);
    const third = manifest.entries.find((e) => e.path === 'images/3.txt')!;
    const thirdUri = new URL(`sha256/${third.digest.slice(7, 9)}/${third.digest.slice(7)}`, `${store.url}/`);
    await rm(thirdUri);
    assert.equal(await store.verifyOutputs({ dataset: tree, count: 5 }), false);
    assert.deepEqual(await store.verify(tree), { status: 'missing' });

    await store.putTree(src);
    assert.equal(await store.verifyOutputs({ dataset: tree }), true);
    await tamper(thirdUri, 'image 9');
    assert.equal(await store.isIntact(tree), false);
    await store.putTree(src);
    assert.equal(await readFile(thirdUri, 'utf8'), 'image 3');
    assert.equal(await store.isIntact(tree), true);
  });

  it('trusts a remembered verification only while the file is unchanged, in this process and the next', async () => {
    const { store, reads } = countingStore(root);
    const ref = await store.putBytes('x'.repeat(2 << 20));
    assert.equal(await store.isIntact(ref), true);
    assert.equal(reads(), 1);
    assert.equal(await store.isIntact(ref), true);
    assert.equal(reads(), 1, 'a second check of an unchanged blob reads nothing');

    const next = countingStore(root);
    assert.equal(await next.store.isIntact(ref), true);
    assert.equal(next.reads(), 0, 'another process trusts the sidecar of an unchanged blob');
    // A small blob gets no sidecar: hashing it again is as cheap as reading one.
    const small = await store.putBytes('small');
    assert.equal(await store.isIntact(small), true);
    const fresh = countingStore(root);
    assert.equal(await fresh.store.isIntact(small), true);
    assert.equal(fresh.reads(), 1);

    // Same size, and the modification time put back: the fingerprint still changes (ctime).
    const blob = new URL(ref.uri);
    const before = await stat(blob);
    await tamper(ref.uri, 'y'.repeat(2 << 20));
    await utimes(blob, before.atime, before.mtime);
    assert.equal(await store.isIntact(ref), false);
    assert.equal(await next.store.isIntact(ref), false);
    assert.equal(await countingStore(root).store.isIntact(ref), false);
    // `ablate verify` reads every byte whatever the memo says.
    await store.putBytes('x'.repeat(2 << 20));
    assert.equal(await store.isIntact(ref), true);
    const full = countingStore(root);
    assert.deepEqual(await full.store.verify(ref), { status: 'ok' });
    assert.equal(full.reads(), 1);
  });

  it('does not trust a forged sidecar', async () => {
    const { store } = countingStore(root);
    const ref = await store.putBytes('f'.repeat(2 << 20));
    await tamper(ref.uri, 'F'.repeat(2 << 20));
    const info = await stat(new URL(ref.uri), { bigint: true });
    const sidecar = join(root, '.verified', 'sha256', ref.digest.slice(7, 9), ref.digest.slice(7));
    await mkdir(join(sidecar, '..'), { recursive: true });
    // A sidecar claiming a verification of some other file state.
    await writeFile(sidecar, `${info.size}:${info.mtimeNs}:0:${info.ino}:${info.dev}`);
    assert.equal(await countingStore(root).store.isIntact(ref), false);
  });
});
