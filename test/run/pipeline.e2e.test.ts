import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';

import { WorkflowFailedError } from '@temporalio/client';

import type { ProvenanceRecord } from '../../activities/runtime/provenance';
import { recordKeys, type RunSummary, type StepRecord } from '../../activities/runtime/run-records';
import { compilePipeline } from '../../infra/compiler/compile';
import { getRunView, startRun, waitForRun } from '../../infra/runs';
import type { ArtifactRef } from '../../workflows/plan-types';
import { plan, testSession, type TestSession } from '../helpers/temporal';

async function runToEnd(session: TestSession, doc: unknown, options: Parameters<typeof startRun>[2] = {}) {
  const p = typeof doc === 'string' ? compilePipeline(doc) : plan(doc);
  const { runId } = await startRun(session, p, options);
  const { status, summary } = await waitForRun(session, runId);
  return { runId, status, summary: summary!, plan: p };
}

const stepsOf = (summary: RunSummary, label: string) =>
  summary.steps.filter((s) => s.label.startsWith(label));

describe('pipeline runs on a real Temporal dev server', () => {
  let session: TestSession;
  before(async () => {
    session = await testSession();
  });
  after(() => session.dispose());

  it('runs the smoke example: a shared step, a fan-out, a diamond and a fan-in, with real outputs', async () => {
    const { status, summary, runId } = await runToEnd(
      session,
      await readFile('pipelines/examples/smoke.json', 'utf8'),
    );
    assert.equal(status, 'COMPLETED');
    assert.equal(summary.status, 'completed');
    assert.equal(summary.counts.done, 19);
    assert.equal(summary.cells.filter((c) => c.status === 'completed').length, 6);
    // The diamond's bottom really combines both branches: left(alpha) = seed+"alpha\n"+seed, then the md5 report.
    const join = stepsOf(summary, 'join[word=alpha,algorithm=md5]')[0]!;
    const text = (await session.store.getBytes(join.outputs!.file as unknown as ArtifactRef)).toString();
    assert.ok(
      text.startsWith(
        'ablate smoke test\nalpha\nablate smoke test\n\n-- word=alpha,algorithm=md5 --\n{"algorithm":"md5"',
      ),
      text,
    );
    const report = stepsOf(summary, 'report')[0]!;
    assert.equal(report.outputs!.rows, 6);
    const md = (await session.store.getBytes(report.outputs!.markdown as unknown as ArtifactRef)).toString();
    assert.match(md, /\| alpha \| sha256 \| [0-9a-f]{64} \|/);
    // Each finished step has a record with its provenance.
    const rec = await session.store.getRecord<StepRecord>(recordKeys.step(runId, join.key));
    assert.equal(rec?.status, 'done');
    assert.ok(await session.store.has(rec.provenance.digest));
  });

  it('a failing step fails its downstream steps only; the rest of the grid finishes', async () => {
    const { summary, status } = await runToEnd(session, {
      name: 'failing',
      grid: { x: [1, 2, 3] },
      steps: {
        make: { uses: 'util.write', with: { text: 'x=${grid.x}' } },
        boom: {
          uses: 'util.fail',
          when: { x: 2 },
          needs: ['make'],
          with: { message: 'deliberate failure for x=2' },
          retry: 3,
        },
        flaky: {
          uses: 'util.fail',
          needs: ['make'],
          with: { message: 'transient', retryable: true, succeedOnAttempt: 2 },
          retry: { maxAttempts: 3, initialInterval: '100ms' },
        },
        after: {
          uses: 'util.hash',
          needs: ['boom', 'flaky'],
          with: { inputs: ['${steps.make.outputs.file}'] },
        },
      },
    });
    assert.equal(status, 'COMPLETED');
    assert.equal(summary.status, 'failed');
    const cells = Object.fromEntries(summary.cells.map((c) => [c.id, c]));
    assert.equal(cells['x=1']!.status, 'completed');
    assert.equal(cells['x=3']!.status, 'completed');
    assert.equal(cells['x=2']!.status, 'failed');
    assert.equal(cells['x=2']!.failedStep!.label, 'boom[x=2]');
    // Non-retryable: one attempt, and the error type and message travel the whole failure chain.
    assert.equal(cells['x=2']!.failedStep!.error, 'InvalidInput: deliberate failure for x=2');
    const after2 = stepsOf(summary, 'after[x=2]')[0]!;
    assert.equal(after2.status, 'skipped');
    assert.match(after2.error!, /upstream step boom\[x=2\] failed/);
    // The retryable step succeeded on its second attempt.
    for (const s of stepsOf(summary, 'flaky')) assert.deepEqual(s.outputs, { attempt: 2 });
  });

  it('a retry on the same worker finds its input in the worker cache: it starts without a download', async () => {
    const { summary, runId } = await runToEnd(session, {
      name: 'retry-input',
      steps: {
        data: { uses: 'util.write', with: { text: `input of the retried step ${Date.now()}` } },
        flaky: {
          uses: 'util.fail',
          with: {
            message: 'transient',
            retryable: true,
            succeedOnAttempt: 2,
            input: '${steps.data.outputs.file}',
          },
          retry: { maxAttempts: 3, initialInterval: '100ms' },
        },
      },
    });
    assert.equal(summary.status, 'completed');
    const flaky = stepsOf(summary, 'flaky')[0]!;
    assert.deepEqual(flaky.outputs, { attempt: 2 });
    const rec = await session.store.getRecord<StepRecord>(recordKeys.step(runId, flaky.key));
    const provenance = await session.store.getJson<ProvenanceRecord>(rec!.provenance);
    // The second attempt's provenance: its one input came from the worker cache the first attempt filled
    // (outside `runtime`, so drift reports do not compare it).
    assert.equal(provenance.attempt, 2);
    const data = stepsOf(summary, 'data')[0]!.outputs!.file as unknown as ArtifactRef;
    assert.deepEqual(
      provenance.fetched?.map((f) => [f.digest, f.from]),
      [[data.digest, 'worker cache']],
    );
  });

  it('reuses cached results; --no-cache recomputes; changing one axis value recomputes only what it affects', async () => {
    const doc = {
      name: 'cached',
      grid: { word: ['a', 'b', 'c'] },
      steps: {
        base: { uses: 'util.write', with: { text: 'base' } },
        per: {
          uses: 'util.concat',
          with: {
            inputs: ['${steps.base.outputs.file}', '${steps.base.outputs.file}'],
            separator: '${grid.word}',
          },
        },
        hash: { uses: 'util.hash', with: { inputs: ['${steps.per.outputs.file}'] } },
      },
    };
    const first = await runToEnd(session, doc);
    assert.equal(first.summary.counts.done, 7);
    const second = await runToEnd(session, doc);
    assert.deepEqual([second.summary.counts.done, second.summary.counts.cached], [0, 7]);
    const forced = await runToEnd(session, doc, { noCache: true });
    assert.deepEqual([forced.summary.counts.done, forced.summary.counts.cached], [7, 0]);
    // An output deleted behind ablate's back is not served from the cache: that step is recomputed.
    const perA = second.summary.steps.find((s) => s.label === 'per[word=a]')!;
    await rm(new URL((perA.outputs!.file as unknown as ArtifactRef).uri));
    const repaired = await runToEnd(session, doc);
    assert.deepEqual(
      repaired.summary.steps.filter((s) => s.status === 'done').map((s) => s.label),
      ['per[word=a]'],
    );
    const changed = await runToEnd(session, { ...doc, grid: { word: ['a', 'b', 'z'] } });
    const recomputed = changed.summary.steps
      .filter((s) => s.status === 'done')
      .map((s) => s.label)
      .sort();
    assert.deepEqual(recomputed, ['hash[word=z]', 'per[word=z]']);
    assert.equal(changed.summary.counts.cached, 5);
  });

  it('continues as new when the history grows, carrying the state over', async () => {
    const steps: Record<string, unknown> = {};
    for (let i = 0; i < 30; i++)
      steps[`s${i}`] = { uses: 'util.noop', with: { tag: i }, ...(i > 0 ? { needs: [`s${i - 1}`] } : {}) };
    const { summary, runId } = await runToEnd(session, { name: 'long', steps }, { maxHistoryEvents: 40 });
    assert.equal(summary.status, 'completed');
    assert.equal(summary.counts.done, 30);
    assert.ok(summary.generations >= 3, `generations: ${summary.generations}`);
    const history = await session.client.workflow.getHandle(runId).fetchHistory();
    assert.ok(history.events!.length <= 60, `last generation's history has ${history.events!.length} events`);
  });

  it('cancels a run: running steps stop, the rest is cancelled, the summary is written', async () => {
    const p = plan({
      name: 'cancel-me',
      grid: { n: [1, 2, 3, 4] },
      steps: {
        slow: { uses: 'util.noop', with: { tag: '${grid.n}', sleepMs: 120000 } },
        next: { uses: 'util.noop', needs: ['slow'] },
      },
    });
    const { runId } = await startRun(session, p);
    let running = 0;
    for (let i = 0; i < 150 && running < 4; i++) {
      running = (await getRunView(session, runId)).counts.running;
      if (running < 4) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(running, 4, 'the four slow steps never ran at once, so cancelling them proves nothing');
    const handle = session.client.workflow.getHandle(runId);
    await handle.cancel();
    await assert.rejects(handle.result(), (err: unknown) => err instanceof WorkflowFailedError);
    // Each running step acknowledged the cancellation (it stopped; it was not just abandoned), and none
    // finished: their 120 s sleeps did not run out. (How fast is a benchmark question, not a test one.)
    // Steps are activities of the run's step batches (child workflows): count their cancellations there.
    let cancelledActivities = 0;
    for await (const wf of session.client.workflow.list({ query: 'WorkflowType = "stepBatch"' })) {
      if (!wf.workflowId.startsWith(`${runId}/`)) continue;
      const batch = await session.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      cancelledActivities += batch.events!.filter(
        (e) => e.activityTaskCanceledEventAttributes != null,
      ).length;
    }
    assert.equal(cancelledActivities, 4);
    assert.deepEqual(await session.store.listRecords(`runs/${runId}/steps/`), []);
    assert.equal((await handle.describe()).status.name, 'CANCELLED');
    const summary = (await session.store.getRecord<RunSummary>(recordKeys.summary(runId)))!;
    assert.equal(summary.status, 'cancelled');
    assert.equal(summary.counts.cancelled, 8);
    assert.ok(summary.cells.every((c) => c.status === 'cancelled'));
  });
});
