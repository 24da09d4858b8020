import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

import { AblateError } from '../../infra/errors';
import { openStore, type ArtifactStore } from '../../infra/store/index';
import { TREE_MEDIA_TYPE } from '../../workflows/plan-types';
import { tamper } from '../helpers/tamper';

describe('filesystem artifact store', () => {
  let dir: string;
  let store: ArtifactStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-fs-store-'));
    store = await openStore(pathToFileURL(join(dir, 'store')).href);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('addresses content by sha256 and stores the same bytes once', async () => {
    const a = await store.putBytes('hello', { mediaType: 'text/plain' });
    const b = await store.putBytes('hello');
    assert.equal(a.digest, 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    assert.equal(a.uri, b.uri);
    assert.equal(a.sizeBytes, 5);
    assert.equal((await store.getBytes(a)).toString(), 'hello');
    const blobs = await store.backend.list('sha256');
    assert.equal(blobs.length, 1);
  });

  it('refuses a corrupted object and leaves no file behind', async () => {
    const ref = await store.putBytes('precious bytes');
    const path = new URL(ref.uri);
    await tamper(path, 'tampered bytes');
    await assert.rejects(
      store.getBytes(ref),
      (err: unknown) => err instanceof AblateError && err.type === 'CorruptArtifact',
    );
    const dest = join(dir, 'out', 'copy.bin');
    await assert.rejects(store.getFile(ref, dest), /is corrupt: expected sha256:/);
    assert.deepEqual(await readdir(join(dir, 'out')), []);
    assert.deepEqual(await store.verify(ref), {
      status: 'corrupt',
      actual: (await store.putBytes('tampered bytes')).digest,
    });
  });

  it('reports a missing object as ArtifactNotFound', async () => {
    const ref = await store.putBytes('soon gone');
    await rm(new URL(ref.uri));
    await assert.rejects(
      store.getBytes(ref),
      (err: unknown) => err instanceof AblateError && err.type === 'ArtifactNotFound',
    );
    assert.deepEqual(await store.verify(ref), { status: 'missing' });
  });

  it('round-trips a directory as a tree', async () => {
    const src = join(dir, 'tree-src');
    await mkdir(join(src, 'a', 'b'), { recursive: true });
    await writeFile(join(src, 'top.txt'), 'top');
    await writeFile(join(src, 'a', 'b', 'deep.json'), '{"x":1}');
    const ref = await store.put(src);
    assert.equal(ref.mediaType, TREE_MEDIA_TYPE);
    const dest = join(dir, 'tree-dest');
    await store.get(ref, dest);
    assert.equal(await readFile(join(dest, 'top.txt'), 'utf8'), 'top');
    assert.equal(await readFile(join(dest, 'a', 'b', 'deep.json'), 'utf8'), '{"x":1}');
    assert.deepEqual(await store.verify(ref), { status: 'ok' });
  });

  it('keeps mutable records', async () => {
    assert.equal(await store.getRecord('runs/r1'), undefined);
    await store.putRecord('runs/r1', { status: 'running' });
    await store.putRecord('runs/r1', { status: 'done' });
    assert.deepEqual(await store.getRecord('runs/r1'), { status: 'done' });
    assert.deepEqual(await store.listRecords('runs/'), ['runs/r1']);
    await assert.rejects(store.putRecord('../escape', {}), /bad record key/);
  });
});
