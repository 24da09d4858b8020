/**
 * `ablate gc` on a real file store with hand-made records: a dry run deletes nothing; a blob only a
 * forgotten run referenced goes; what a kept, running or pinned run references stays, through tree
 * manifests and provenance records; young blobs stay; work dirs go only when old and unused.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

import { recordKeys, type StepRecord } from '../../activities/runtime/run-records';
import { collectGarbage, type GcOptions } from '../../infra/gc';
import { openStore, type ArtifactStore } from '../../infra/store/index';
import type { ArtifactRef } from '../../workflows/plan-types';

const DAY = 86_400_000;
const NOW = Date.now();
const ago = (days: number) => new Date(NOW - days * DAY).toISOString();
const exists = (ref: ArtifactRef) =>
  access(new URL(ref.uri)).then(
    () => true,
    () => false,
  );

describe('gc', () => {
  let dir: string;
  let store: ArtifactStore;
  let workRoot: string;
  type Name =
    | 'tree'
    | 'source'
    | 'oldOnly'
    | 'shared'
    | 'pinned'
    | 'running'
    | 'checkpoint'
    | 'orphan'
    | 'young'
    | 'heartbeat';
  const refs = {} as Record<Name, ArtifactRef>;
  let treeFiles: ArtifactRef[] = [];
  let oldProvenance: ArtifactRef;

  async function writeRun(
    runId: string,
    endedDaysAgo: number | undefined,
    outputs: Record<string, ArtifactRef>,
  ) {
    const provenance = await store.putJson(
      { schema: 'ablate.provenance/v1', runId, inputs: [] },
      'application/vnd.ablate.provenance+json',
    );
    await store.putRecord(recordKeys.step(runId, 'k1'), {
      runId,
      key: 'k1',
      label: 'step',
      uses: 'util.write',
      status: 'done',
      outputs,
      provenance,
      cacheKey: `ck-${runId}`,
      attempt: 1,
      startedAt: ago(endedDaysAgo ?? 0),
      endedAt: ago(endedDaysAgo ?? 0),
      durationMs: 1,
    });
    if (endedDaysAgo !== undefined)
      await store.putRecord(recordKeys.summary(runId), { runId, endedAt: ago(endedDaysAgo), steps: [] });
    await store.putRecord(recordKeys.cache(`ck-${runId}`), {
      cacheKey: `ck-${runId}`,
      outputs,
      provenance,
      runId,
      stepKey: 'k1',
      createdAt: ago(endedDaysAgo ?? 0),
    });
    for (const ref of Object.values(outputs))
      await store.putRecord(recordKeys.producer(ref.digest), { digest: ref.digest, runId });
  }

  const options = (extra: Partial<GcOptions> = {}): GcOptions => ({
    olderThanMs: 30 * DAY,
    dryRun: false,
    // Temporal reachable, nothing running: running-1 (no summary, a fresh step record) is then a run
    // that was terminated recently, kept by its age.
    runningRuns: new Map(),
    graceMs: 3_600_000,
    workDirRoot: workRoot,
    now: NOW,
    ...extra,
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-gc-test-'));
    store = await openStore(pathToFileURL(join(dir, 'store')).href);
    workRoot = join(dir, 'tmp');
    await mkdir(workRoot);
    // A directory output of the kept run: its files are referenced only through its manifest.
    const src = join(dir, 'tree');
    await mkdir(src);
    await writeFile(join(src, 'a.txt'), 'file a');
    await writeFile(join(src, 'b.txt'), 'file b');
    refs.tree = await store.putTree(src);
    treeFiles = await Promise.all(['file a', 'file b'].map((t) => store.putBytes(t)));
    refs.source = await store.putBytes('a source dataset');
    refs.oldOnly = await store.putBytes('only the forgotten run used this');
    refs.shared = await store.putBytes('both runs used this');
    refs.pinned = await store.putBytes('the baseline run made this');
    refs.running = await store.putBytes('a running run made this');
    refs.checkpoint = await store.putBytes('a checkpoint in the index');
    refs.orphan = await store.putBytes('nothing references this');
    refs.young = await store.putBytes('written a minute ago, records not yet');
    refs.heartbeat = await store.putBytes('a checkpoint only a running step heartbeat names');

    await writeRun('old-1', 60, { file: refs.oldOnly, shared: refs.shared });
    oldProvenance = (await store.getRecord<StepRecord>(recordKeys.step('old-1', 'k1')))!.provenance;
    await writeRun('new-1', 1, { dir: refs.tree, shared: refs.shared });
    // The kept run's provenance names a source input by digest and media type only.
    await store.putRecord(recordKeys.step('new-1', 'k2'), {
      runId: 'new-1',
      key: 'k2',
      label: 'import',
      status: 'done',
      outputs: {},
      provenance: await store.putJson(
        {
          inputs: [
            { path: 'dataset', uri: refs.source.uri, digest: refs.source.digest, mediaType: 'text/plain' },
          ],
        },
        'application/vnd.ablate.provenance+json',
      ),
      cacheKey: 'ck-import',
      endedAt: ago(1),
    });
    await writeRun('pinned-1', 90, { file: refs.pinned });
    await store.putRecord('baselines/mini', { name: 'mini', runId: 'pinned-1' });
    await writeRun('running-1', undefined, { file: refs.running });
    await store.putRecord('checkpoints/ck-x', { latest: refs.checkpoint });

    // Every blob is old except the young one.
    for (const blob of await store.listBlobs()) {
      const when =
        blob.digest === refs.young.digest
          ? new Date(NOW - 60_000)
          : blob.digest === refs.heartbeat.digest
            ? new Date(NOW - DAY)
            : new Date(NOW - 90 * DAY);
      await utimes(new URL(store.backend.uriFor(blob.key)), when, when);
    }
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('a dry run lists what it would delete and deletes nothing', async () => {
    const report = await collectGarbage(store, options({ dryRun: true }));
    assert.deepEqual(report.runs.forgotten, ['old-1']);
    // The forgotten run's provenance record goes with its only output.
    const doomed = [refs.oldOnly, refs.orphan, refs.heartbeat, oldProvenance];
    assert.deepEqual(report.blobs.digests.sort(), doomed.map((r) => r.digest).sort());
    assert.equal(
      report.blobs.bytes,
      doomed.reduce((n, r) => n + r.sizeBytes, 0),
    );
    assert.equal(report.cacheEntries.deleted, 1);
    assert.ok(await exists(refs.oldOnly));
    assert.ok(await exists(refs.orphan));
    assert.ok(await store.getRecord(recordKeys.summary('old-1')));
  });

  it('without Temporal, keeps a run that has not ended', async () => {
    const report = await collectGarbage(store, options({ dryRun: true, runningRuns: undefined }));
    assert.deepEqual(report.runs.running, ['running-1']);
    assert.ok(!report.blobs.digests.includes(refs.running.digest));
  });

  it('while a run is running, keeps every cache entry and every blob written since it started', async () => {
    const report = await collectGarbage(
      store,
      options({ dryRun: true, runningRuns: new Map([['running-1', NOW - 2 * DAY]]) }),
    );
    assert.deepEqual(report.runs.running, ['running-1']);
    assert.equal(report.cacheEntries.deleted, 0);
    // The forgotten run's records go, but its cache entry (still usable) keeps its output.
    assert.deepEqual(report.runs.forgotten, ['old-1']);
    assert.deepEqual(report.blobs.digests, [refs.orphan.digest]);
  });

  it('deletes a blob only a forgotten run referenced; keeps what kept, running and pinned runs need', async () => {
    const report = await collectGarbage(store, options());
    assert.deepEqual(report.runs.pinned, ['pinned-1']);
    assert.deepEqual(report.runs.running, []);
    assert.equal(report.blobs.deleted, 4);
    assert.equal(await exists(refs.oldOnly), false);
    assert.equal(await exists(refs.heartbeat), false);
    assert.equal(await exists(refs.orphan), false);
    assert.equal(await store.getRecord(recordKeys.producer(refs.oldOnly.digest)), undefined);
    assert.equal(await store.getRecord(recordKeys.summary('old-1')), undefined);
    assert.deepEqual(await store.listRecords('runs/old-1/'), []);
    assert.equal(await store.getRecord(recordKeys.cache('ck-old-1')), undefined);
    for (const name of ['shared', 'pinned', 'running', 'checkpoint', 'source', 'young', 'tree'] as const)
      assert.ok(await exists(refs[name]), `${name} was deleted`);
    for (const file of treeFiles) assert.ok(await exists(file), 'a file of a kept directory was deleted');
    assert.equal(await store.isIntact(refs.tree), true);
    assert.ok(await store.getRecord(recordKeys.cache('ck-new-1')));
    // Nothing left to do.
    const again = await collectGarbage(store, options());
    assert.deepEqual([again.blobs.deleted, again.records.deleted], [0, 0]);
  });

  it('deletes old work dirs, but not recent ones or one a live process works in', async () => {
    const old = new Date(NOW - 40 * DAY);
    const make = async (name: string, when?: Date) => {
      const path = join(workRoot, name);
      await mkdir(path);
      await writeFile(join(path, 'scratch.bin'), 'x'.repeat(1000));
      if (when) {
        await utimes(join(path, 'scratch.bin'), when, when);
        await utimes(path, when, when);
      }
      return path;
    };
    const stale = await make('ablate-work-999991-train-aaaaaaaa', old);
    const busy = await make('ablate-work-999992-train-bbbbbbbb', old);
    const recent = await make('ablate-work-999993-train-cccccccc');
    const other = await make('not-ablate', old);
    // Another ablate directory that is not a step's work dir (a test store, a server home): never touched.
    const store2 = await make('ablate-test-store-AbC123', old);
    const child = spawn('sleep', ['60'], { cwd: busy, stdio: 'ignore' });
    await new Promise((r) => child.once('spawn', r));
    try {
      const report = await collectGarbage(store, options());
      assert.deepEqual(report.workDirs.deleted, [stale]);
      assert.equal(report.workDirs.bytes, 1000);
      assert.deepEqual(report.workDirs.skippedInUse, [busy]);
      for (const [path, kept] of [
        [stale, false],
        [busy, true],
        [recent, true],
        [other, true],
        [store2, true],
      ] as const)
        assert.equal(
          await access(path).then(
            () => true,
            () => false,
          ),
          kept,
          path,
        );
    } finally {
      child.kill('SIGKILL');
    }
  });
});
