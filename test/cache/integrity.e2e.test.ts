/**
 * A cache that never serves bad bytes, end to end on the real server and the real file store: a
 * corrupted cached blob and a file deleted from a cached folder are cache misses, the rerun recomputes
 * exactly those steps and repairs the store (consumers stay cached, since the recomputed bytes are the
 * same), `ablate plan --cached` agrees with the runner, and `ablate verify RUN --repair` does the same
 * from the command line.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { cacheStatus } from '../../infra/cache-status';
import { verifyRun } from '../../infra/lineage';
import { startRun, waitForRun } from '../../infra/runs';
import type { TreeManifest } from '../../infra/store/artifact-store';
import type { RunSummary } from '../../activities/runtime/run-records';
import type { ArtifactRef } from '../../workflows/plan-types';
import { ablate, lastJsonLine } from '../helpers/cli';
import { tamper } from '../helpers/tamper';
import { plan, testSession, testTemporalAddress, type TestSession } from '../helpers/temporal';

const PIPELINE = {
  name: 'integrity',
  steps: {
    data: {
      uses: 'dataset.synth',
      with: { task: 'detection', format: 'coco', images: 4, valImages: 2, seed: 1, size: 16, classes: 2 },
    },
    note: { uses: 'util.write', with: { text: 'a cached note\n' } },
    pick: { uses: 'dataset.split', with: { annotations: '${steps.data.outputs.train}', count: 2, seed: 1 } },
    hash: { uses: 'util.hash', with: { inputs: ['${steps.note.outputs.file}'] } },
  },
};

function statuses(summary: RunSummary | undefined): Record<string, string> {
  return Object.fromEntries((summary?.steps ?? []).map((s) => [s.label, s.status]));
}

describe('cache integrity', () => {
  let session: TestSession;
  let firstRun: string;
  let note: ArtifactRef;
  let images: ArtifactRef;

  /** Corrupt the cached note and delete one image of the cached folder; returns that image's URL. */
  async function damage(): Promise<URL> {
    await tamper(note.uri, 'a rotten note\n');
    const manifest = await session.store.getJson<TreeManifest>(images);
    const hex = manifest.entries[1]!.digest.slice('sha256:'.length);
    const image = new URL(`sha256/${hex.slice(0, 2)}/${hex}`, `${session.store.url}/`);
    await rm(image);
    return image;
  }

  before(async () => {
    session = await testSession();
    ({ runId: firstRun } = await startRun(session, plan(PIPELINE)));
    const { summary } = await waitForRun(session, firstRun);
    assert.deepEqual(statuses(summary), { data: 'done', note: 'done', pick: 'done', hash: 'done' });
    const outputs = Object.fromEntries(summary!.steps.map((s) => [s.label, s.outputs!]));
    note = outputs.note!.file as ArtifactRef;
    images = outputs.data!.images as ArtifactRef;
  });
  after(() => session.dispose());

  it('recomputes a corrupted blob and a folder missing a file, and the store is repaired', async () => {
    const image = await damage();
    const p = plan(PIPELINE);
    const cached = await cacheStatus(p, session.store);
    assert.deepEqual(
      Object.fromEntries(p.steps.map((s) => [s.label, cached.get(s.key)])),
      { data: 'run', note: 'run', pick: 'run', hash: 'run' },
      '`ablate plan --cached` must not promise a damaged hit',
    );
    const { runId } = await startRun(session, p);
    const { summary } = await waitForRun(session, runId);
    assert.equal(summary?.status, 'completed');
    // The damaged steps ran again; their consumers were served from the cache (same bytes as before).
    assert.deepEqual(statuses(summary), { data: 'done', note: 'done', pick: 'cached', hash: 'cached' });
    assert.equal(await readFile(new URL(note.uri), 'utf8'), 'a cached note\n');
    assert.equal((await stat(image)).mode & 0o777, 0o444);
    assert.deepEqual((await verifyRun(session.store, firstRun)).problems, []);
    assert.deepEqual((await verifyRun(session.store, runId)).problems, []);
    // And now the cache is whole again.
    const again = await cacheStatus(p, session.store);
    assert.ok([...again.values()].every((s) => s === 'cached'));
  });

  it('`ablate verify RUN --repair` recomputes what is damaged, then verify passes', async () => {
    await damage();
    const env = { TEMPORAL_ADDRESS: await testTemporalAddress(), ABLATE_STORE_URL: session.store.url };
    const flags = ['--home', session.dir, '--task-queue-prefix', session.config.taskQueuePrefix];
    const broken = await ablate(['verify', firstRun, ...flags], { env });
    assert.equal(broken.code, 1, broken.stderr);
    assert.match(broken.stderr, new RegExp(`CORRUPT: ${note.uri} \\(${note.digest}\\), output file of note`));
    assert.match(
      broken.stderr,
      new RegExp(`MISSING: ${images.uri} \\(${images.digest}\\), output images of data`),
    );

    const fixed = await ablate(['verify', firstRun, '--repair', '--json', ...flags], {
      env,
      timeoutMs: 180_000,
    });
    assert.equal(fixed.code, 0, fixed.stderr);
    const report = lastJsonLine<{
      repairRunId: string;
      repairStatus: string;
      repaired: Array<{ step: string; role: string; status: string }>;
      unrepaired: unknown[];
    }>(fixed.stdout);
    assert.equal(report.repairStatus, 'COMPLETED');
    // The image is also a file of the whole `dataset` folder.
    assert.deepEqual(report.repaired.map((p) => [p.step, p.role, p.status]).sort(), [
      ['data', 'output dataset', 'missing'],
      ['data', 'output images', 'missing'],
      ['note', 'output file', 'corrupt'],
    ]);
    assert.deepEqual(report.unrepaired, []);
    const repairSummary = await session.store.getRecord<RunSummary>(`runs/${report.repairRunId}/summary`);
    assert.deepEqual(statuses(repairSummary), { data: 'done', note: 'done', pick: 'cached', hash: 'cached' });

    const ok = await ablate(['verify', firstRun, ...flags], { env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`${firstRun}: \\d+ artifacts checked, all intact`));
  });

  it("`ablate artifacts` lists a run's outputs and `ablate get` fetches one, verified", async () => {
    const env = { TEMPORAL_ADDRESS: await testTemporalAddress(), ABLATE_STORE_URL: session.store.url };
    const flags = ['--home', session.dir];
    const listed = await ablate(['artifacts', firstRun, ...flags], { env });
    assert.equal(listed.code, 0, listed.stderr);
    const manifest = await session.store.getJson<TreeManifest>(images);
    assert.match(
      listed.stdout,
      new RegExp(`data\\s+images\\s+directory \\(${manifest.entries.length} files\\)`),
    );
    assert.match(listed.stdout, /note\s+file\s+file\s+14 B\s+sha256:/);
    const json = await ablate(['artifacts', firstRun, 'note', '--json', ...flags], { env });
    assert.deepEqual(lastJsonLine<unknown[]>(json.stdout), [
      {
        step: 'note',
        stepKey: plan(PIPELINE).steps.find((st) => st.label === 'note')!.key,
        status: 'done',
        output: 'file',
        type: 'file',
        uri: note.uri,
        digest: note.digest,
        mediaType: note.mediaType,
        sizeBytes: 14,
      },
    ]);

    const out = join(session.dir, 'fetched');
    const file = await ablate(['get', firstRun, 'note', 'file', '--out', join(out, 'note.txt'), ...flags], {
      env,
    });
    assert.equal(file.code, 0, file.stderr);
    assert.equal(await readFile(join(out, 'note.txt'), 'utf8'), 'a cached note\n');
    const again = await ablate(['get', firstRun, 'note', 'file', '--out', join(out, 'note.txt'), ...flags], {
      env,
    });
    assert.equal(again.code, 2);
    assert.match(again.stderr, /note\.txt exists; remove it or pass --force to replace it/);
    const dir = await ablate(['get', firstRun, 'data', 'images', '--out', join(out, 'images'), ...flags], {
      env,
    });
    assert.equal(dir.code, 0, dir.stderr);
    assert.deepEqual((await readdir(join(out, 'images'))).sort(), manifest.entries.map((e) => e.path).sort());
    const value = await ablate(
      ['get', firstRun, 'hash', 'bytes', '--out', join(out, 'bytes.json'), ...flags],
      { env },
    );
    assert.equal(value.code, 0, value.stderr);
    assert.equal(await readFile(join(out, 'bytes.json'), 'utf8'), '14\n');
    const wrong = await ablate(['get', firstRun, 'note', 'nope', '--out', join(out, 'x'), ...flags], { env });
    assert.equal(wrong.code, 2);
    assert.match(
      wrong.stderr,
      new RegExp(`step note of run ${firstRun} has no output "nope"; its outputs: file`),
    );
    // A damaged artifact is refused, and nothing appears at --out.
    await tamper(note.uri, 'a rotten note\n');
    const bad = await ablate(['get', firstRun, 'note', 'file', '--out', join(out, 'bad.txt'), ...flags], {
      env,
    });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /is corrupt: expected sha256:/);
    await assert.rejects(stat(join(out, 'bad.txt')));
  });
});
