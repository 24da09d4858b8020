/**
 * Parallel folder transfers and streamed tree manifests on the filesystem store: same digests as the
 * sequential code wrote, bounded concurrency, cancellation that leaves nothing behind, monotone
 * progress, and a 200k-entry manifest written and read entry by entry.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { AblateError, ErrorType } from '../../infra/errors';
import { ArtifactStore, hashBytes, type TransferProgress } from '../../infra/store/artifact-store';
import { FsBackend } from '../../infra/store/fs-backend';
import { mapOrderedLimit } from '../../infra/store/transfer';
import { createStepContext } from '../../activities/runtime/step-context';
import { formatTransfer } from '../../activities/runtime/transfer-heartbeat';
import { ManifestWriter, readManifestEntries, type TreeEntry } from '../../infra/store/tree-manifest';
import { resolveConfig } from '../../temporal.config';
import { TREE_MEDIA_TYPE } from '../../workflows/plan-types';

const TREE_FILES = 300;
/**
 * The digest the sequential putTree (main before parallel transfers) gave the tree of {@link makeTree}:
 * a manifest is content-addressed, so parallel code must write the very same bytes.
 */
const SEQUENTIAL_DIGEST = 'sha256:061c0aae00bc7e722d62ea7eea93d80c24a4fcbf82b5c181586b8a3ccedddb00';
const SEQUENTIAL_MANIFEST_BYTES = 38040;

/** A deterministic tree: 300 files of 0..4095 bytes in 21 folders. */
async function makeTree(dir: string, count = TREE_FILES): Promise<void> {
  for (let i = 0; i < count; i++) {
    const rel = join(`d${i % 7}`, `s${i % 3}`, `f${String(i).padStart(4, '0')}.bin`);
    const seed = createHash('sha256').update(`file ${i}`).digest();
    const size = (i * 131) % 4096;
    const data = Buffer.alloc(size);
    for (let o = 0; o < size; o += 32) seed.copy(data, o, 0, Math.min(32, size - o));
    await mkdir(join(dir, `d${i % 7}`, `s${i % 3}`), { recursive: true });
    await writeFile(join(dir, rel), data);
  }
}

/** A filesystem backend whose puts and reads take a little while, counting how many are in flight. */
class SlowBackend extends FsBackend {
  inFlight = 0;
  maxInFlight = 0;
  reads = 0;
  constructor(
    root: string,
    private readonly delayMs: number,
  ) {
    super(root);
  }
  private enter(): void {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
  }
  override async putFile(key: string, path: string, sizeBytes: number, options?: { replace?: boolean }) {
    this.enter();
    try {
      await sleep(this.delayMs);
      await super.putFile(key, path, sizeBytes, options);
    } finally {
      this.inFlight -= 1;
    }
  }
  // Small files are stored from memory, through putBytes.
  override async putBytes(key: string, data: Uint8Array) {
    this.enter();
    try {
      await sleep(this.delayMs);
      await super.putBytes(key, data);
    } finally {
      this.inFlight -= 1;
    }
  }
  override async openRead(key: string): Promise<Readable> {
    this.enter();
    this.reads += 1;
    try {
      await sleep(this.delayMs);
      const stream = await super.openRead(key);
      stream.once('close', () => (this.inFlight -= 1));
      return stream;
    } catch (err) {
      this.inFlight -= 1;
      throw err;
    }
  }
}

function syntheticEntry(i: number): TreeEntry {
  const hex = createHash('sha256').update(String(i)).digest('hex');
  return {
    path: `images/${String(i).padStart(7, '0')}.jpg`,
    digest: `sha256:${hex}`,
    sizeBytes: 20_000 + (i % 997),
  };
}

function corrupt(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof AblateError, String(err));
    assert.equal(err.type, ErrorType.CorruptArtifact);
    assert.match(err.message, pattern);
    return true;
  };
}

describe('parallel folder transfers', () => {
  let dir: string;
  let tree: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-transfer-'));
    tree = join(dir, 'tree');
    await makeTree(tree);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('gives a tree the digest the sequential code gave it, and reads it back file for file', async () => {
    const store = new ArtifactStore(new FsBackend(join(dir, 'store-a')));
    const ref = await store.putTree(tree);
    assert.equal(ref.digest, SEQUENTIAL_DIGEST);
    assert.equal(ref.sizeBytes, SEQUENTIAL_MANIFEST_BYTES);
    assert.equal(ref.mediaType, TREE_MEDIA_TYPE);
    const out = join(dir, 'out-a');
    await store.getTree(ref, out);
    const files = (await readdir(out, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
    assert.equal(files.length, TREE_FILES);
    for (const name of ['d0/s0/f0000.bin', 'd3/s2/f0017.bin', 'd5/s2/f0299.bin'])
      assert.deepEqual(await readFile(join(out, name)), await readFile(join(tree, name)));
    // A second put (blobs already there) and a store at concurrency 1 agree.
    assert.equal((await store.putTree(tree)).digest, SEQUENTIAL_DIGEST);
    const one = new ArtifactStore(new FsBackend(join(dir, 'store-one')), { transferConcurrency: 1 });
    assert.equal((await one.putTree(tree)).digest, SEQUENTIAL_DIGEST);
  });

  it('lists a folder in the order of its full paths, walking it one directory at a time', async () => {
    const src = join(dir, 'order');
    const names = ['a/b', 'a-c/f', 'a.txt', 'a0', 'ab/x/y', 'ab.z', 'b/a/c', 'b/a-c', 'B'];
    for (const name of names) {
      await mkdir(join(src, name, '..'), { recursive: true });
      await writeFile(join(src, name), name);
    }
    const store = new ArtifactStore(new FsBackend(join(dir, 'store-order')));
    const manifest = await store.getJson<{ entries: TreeEntry[] }>(await store.putTree(src));
    assert.deepEqual(
      manifest.entries.map((e) => e.path),
      [...names].sort(),
    );
  });

  it('keeps at most the configured number of files in flight, and uses them', async () => {
    const backend = new SlowBackend(join(dir, 'store-b'), 3);
    const store = new ArtifactStore(backend, { transferConcurrency: 5 });
    const ref = await store.putTree(tree);
    assert.equal(backend.maxInFlight, 5, 'puts in flight');
    backend.maxInFlight = 0;
    await store.getTree(ref, join(dir, 'out-b'));
    assert.equal(backend.maxInFlight, 5, 'gets in flight');
    assert.equal(backend.inFlight, 0);
  });

  it('reports monotone progress that ends at the totals', async () => {
    const store = new ArtifactStore(new FsBackend(join(dir, 'store-c')));
    const puts: TransferProgress[] = [];
    const ref = await store.putTree(tree, { onProgress: (p) => puts.push(p) });
    const gets: TransferProgress[] = [];
    await store.get(ref, join(dir, 'out-c'), { onProgress: (p) => gets.push(p) });
    for (const [name, seen] of [
      ['put', puts],
      ['get', gets],
    ] as const) {
      assert.equal(seen.length, TREE_FILES + 1, `${name}: one report at the start and one per file`);
      for (let k = 1; k < seen.length; k++) {
        assert.ok(seen[k]!.filesDone > seen[k - 1]!.filesDone, `${name}: files done grow`);
        assert.ok(seen[k]!.bytesDone >= seen[k - 1]!.bytesDone, `${name}: bytes done never shrink`);
      }
      const last = seen.at(-1)!;
      assert.equal(last.filesDone, TREE_FILES);
      assert.equal(last.filesTotal, TREE_FILES);
      assert.equal(last.etaSec, 0);
    }
    const totalBytes = gets.at(-1)!.bytesTotal;
    assert.equal(gets.at(-1)!.bytesDone, totalBytes);
    assert.equal(puts.at(-1)!.bytesDone, totalBytes);
  });

  it('stops a get midway on abort and leaves no directory or partial file behind', async () => {
    const backend = new SlowBackend(join(dir, 'store-d'), 5);
    const store = new ArtifactStore(backend, { transferConcurrency: 4 });
    const ref = await store.putTree(tree);
    const parent = join(dir, 'cancel');
    await mkdir(parent);
    const controller = new AbortController();
    let lastDone = 0;
    backend.reads = 0;
    await assert.rejects(
      store.getTree(ref, join(parent, 'images'), {
        signal: controller.signal,
        onProgress: (p) => {
          lastDone = p.filesDone;
          if (p.filesDone === 40) controller.abort();
        },
      }),
      { name: 'AbortError' },
    );
    assert.deepEqual(await readdir(parent), [], 'nothing left in the destination folder');
    assert.equal(backend.inFlight, 0, 'every read stopped before getTree returned');
    assert.ok(lastDone < TREE_FILES / 2, `stopped early (${lastDone} files)`);
    // The manifest read plus the files started: at most the ones in flight beyond the 40 done.
    assert.ok(backend.reads <= 1 + 40 + 4, `reads after abort: ${backend.reads}`);
    // An aborted signal starts nothing.
    await assert.rejects(store.getTree(ref, join(parent, 'again'), { signal: controller.signal }), {
      name: 'AbortError',
    });
    assert.deepEqual(await readdir(parent), []);
  });

  it('stops a put midway on abort and stores no manifest', async () => {
    const backend = new SlowBackend(join(dir, 'store-e'), 5);
    const store = new ArtifactStore(backend, { transferConcurrency: 4 });
    const controller = new AbortController();
    await assert.rejects(
      store.putTree(tree, {
        signal: controller.signal,
        onProgress: (p) => p.filesDone === 20 && controller.abort(),
      }),
      { name: 'AbortError' },
    );
    assert.equal(backend.inFlight, 0);
    assert.ok(!(await store.has(SEQUENTIAL_DIGEST)));
    assert.ok((await store.backend.list('sha256')).length < TREE_FILES / 2);
  });

  it('checks a tree with a big manifest by streaming it: a missing file, a damaged manifest', async () => {
    const storeDir = join(dir, 'store-g');
    const store = new ArtifactStore(new FsBackend(storeDir), { cachedManifestMaxBytes: 0 });
    const ref = await store.putTree(tree);
    assert.deepEqual(await store.verify(ref), { status: 'ok' });
    const victim = createHash('sha256')
      .update(await readFile(join(tree, 'd3/s2/f0017.bin')))
      .digest('hex');
    await rm(join(storeDir, 'sha256', victim.slice(0, 2), victim), { force: true });
    assert.deepEqual(await store.verify(ref), { status: 'missing' });
    await store.putTree(tree);
    assert.equal(await store.isIntact(ref), true);
    // A manifest whose bytes no longer match its digest: the tree is corrupt, whatever it lists.
    const hex = ref.digest.slice(7);
    const manifestPath = join(storeDir, 'sha256', hex.slice(0, 2), hex);
    const text = await readFile(manifestPath, 'utf8');
    await rm(manifestPath, { force: true });
    await writeFile(manifestPath, text.replace('"version":1', '"version":2'));
    assert.equal((await store.verify(ref)).status, 'corrupt');
  });

  it('refuses a tree whose manifest is not one, naming why, and leaves nothing', async () => {
    const store = new ArtifactStore(new FsBackend(join(dir, 'store-f')));
    const cases: Array<[string, RegExp]> = [
      [
        '{"version":1,"entries":[{"path":"a","digest":"sha256:00","sizeBytes":1,"path":"b"}]}',
        /repeated|duplicate/i,
      ],
      ['{"version":2,"entries":[]}', /version is 2, expected 1$/],
      ['{"version":1,"entries":[],"extra":[{"a":1}]}', /unknown key "extra"/],
      ['{"version":1,"entries":[{"path":"a"}]}', /an entry is not \{path, digest, sizeBytes\}/],
      ['{"version":1,"entries":[', /at byte 24$/],
      ['{"version":1}', /no "entries"$/],
    ];
    for (const [text, pattern] of cases) {
      const ref = await store.putBytes(text, { mediaType: TREE_MEDIA_TYPE });
      await assert.rejects(store.getTree(ref, join(dir, 'out-f')), corrupt(pattern), text);
      assert.deepEqual(
        (await readdir(dir)).filter((n) => n.startsWith('out-f')),
        [],
        `nothing left for ${text}`,
      );
    }
  });
});

describe('streamed tree manifests', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-manifest-test-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('writes the bytes JSON.stringify wrote, for no entries and for many', async () => {
    for (const count of [0, 1, 2, 1000]) {
      const entries = Array.from({ length: count }, (_, i) => syntheticEntry(i));
      const writer = new ManifestWriter(join(dir, `m${count}.json`));
      for (const e of entries) await writer.add(e);
      const written = await writer.close();
      const expected = JSON.stringify({ version: 1, entries });
      assert.equal(await readFile(writer.path, 'utf8'), expected);
      assert.equal(written.digest, hashBytes(expected));
      assert.equal(written.entries, count);
      const read: TreeEntry[] = [];
      for await (const e of readManifestEntries(createReadStream(writer.path, { highWaterMark: 97 }), 'm'))
        read.push(e);
      assert.deepEqual(read, entries, `${count} entries read back across 97-byte chunks`);
    }
  });

  it('writes and reads a 200k-entry manifest entry by entry', async (t) => {
    const COUNT = 200_000;
    const path = join(dir, 'big.json');
    const base = process.memoryUsage().rss;
    let peak = base;
    const sample = () => (peak = Math.max(peak, process.memoryUsage().rss));
    const writer = new ManifestWriter(path);
    for (let i = 0; i < COUNT; i++) {
      await writer.add(syntheticEntry(i));
      if (i % 10_000 === 0) sample();
    }
    const written = await writer.close();
    sample();
    let n = 0;
    for await (const e of readManifestEntries(createReadStream(path), 'big')) {
      if (n % 20_011 === 0) assert.deepEqual(e, syntheticEntry(n));
      n += 1;
      if (n % 10_000 === 0) sample();
    }
    assert.equal(n, COUNT);
    assert.equal(written.entries, COUNT);
    t.diagnostic(
      `200k-entry manifest: ${(written.sizeBytes / 1e6).toFixed(1)} MB, peak RSS +${((peak - base) / 1e6).toFixed(1)} MB while writing and reading`,
    );
  });

  it('hands results on in order with a bounded window, whatever order they finish in', async () => {
    let inFlight = 0;
    let max = 0;
    const order: number[] = [];
    await mapOrderedLimit(
      Array.from({ length: 100 }, (_, i) => i),
      3,
      async (i) => {
        inFlight += 1;
        max = Math.max(max, inFlight);
        await sleep((i * 7) % 5);
        inFlight -= 1;
        return i * 2;
      },
      (r, i) => void order.push(r / 2 === i ? i : -1),
    );
    assert.equal(max, 3);
    assert.deepEqual(
      order,
      Array.from({ length: 100 }, (_, i) => i),
    );
  });
});

describe('transfers in a step', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-transfer-step-'));
    await makeTree(join(dir, 'tree'), 20);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('takes its concurrency from the flag, else ABLATE_TRANSFER_CONCURRENCY, else 16', () => {
    assert.equal(resolveConfig({}, {}, '/cwd').transferConcurrency, 16);
    assert.equal(resolveConfig({}, { ABLATE_TRANSFER_CONCURRENCY: '64' }, '/cwd').transferConcurrency, 64);
    assert.equal(
      resolveConfig({ transferConcurrency: 2 }, { ABLATE_TRANSFER_CONCURRENCY: '64' }, '/cwd')
        .transferConcurrency,
      2,
    );
    assert.throws(() => resolveConfig({}, { ABLATE_TRANSFER_CONCURRENCY: '0' }, '/cwd'), {
      message: 'ABLATE_TRANSFER_CONCURRENCY=0: expected a positive integer',
    });
    assert.throws(() => new ArtifactStore(new FsBackend(dir), { transferConcurrency: 1.5 }), {
      message: 'transfer concurrency must be an integer >= 1, got 1.5',
    });
  });

  it('says how far a transfer got, in one line', () => {
    const line = formatTransfer('fetching', 'images', {
      direction: 'get',
      filesDone: 1234,
      filesTotal: 10_000,
      bytesDone: 123e6,
      bytesTotal: 1e9,
      bytesPerSec: 56.2e6,
      etaSec: 11.3,
    });
    assert.equal(line, 'fetching images: 1,234/10,000 files, 56 MB/s, ETA 12 s');
  });

  it('a cancelled step fetches nothing, but still publishes (its final checkpoint)', async () => {
    const store = new ArtifactStore(new FsBackend(join(dir, 'store')));
    const ref = await store.putTree(join(dir, 'tree'));
    const controller = new AbortController();
    const { ctx } = createStepContext({ store, workDir: join(dir, 'work'), signal: controller.signal });
    const fetched = await ctx.fetch(ref);
    const files = await readdir(fetched, { recursive: true, withFileTypes: true });
    assert.equal(files.filter((f) => f.isFile()).length, 20);
    controller.abort();
    await assert.rejects(ctx.fetch(ref), { name: 'AbortError' });
    assert.equal((await ctx.publish(join(dir, 'tree'))).digest, ref.digest);
  });
});
