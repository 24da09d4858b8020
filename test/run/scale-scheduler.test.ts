/**
 * The run scheduler (activities/run-scheduler.ts) against a real filesystem store: retried calls get the
 * answer of the first attempt, another worker picks the run up from the store, and the state restored
 * from snapshot + deltas is the state the calls built.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { createPlanLoader } from '../../activities/runtime/plan-loader';
import {
  createRunScheduler,
  dagNodes,
  restoreRunState,
  SNAPSHOT_EVERY,
  type AdvanceRunResult,
} from '../../activities/runtime/run-scheduler';
import { compilePipeline } from '../../infra/compiler/compile';
import { openStore } from '../../infra/store/index';
import type { ArtifactStore } from '../../infra/store/index';
import type { StepOutcome } from '../../workflows/dag';
import type { ArtifactRef, Plan } from '../../workflows/plan-types';

describe('run scheduler', () => {
  let dir: string;
  let store: ArtifactStore;
  let plan: Plan;
  let planRef: ArtifactRef;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-test-sched-'));
    store = await openStore(pathToFileURL(join(dir, 'artifacts')).href);
    plan = compilePipeline(
      JSON.stringify({
        name: 'sched',
        grid: { i: Array.from({ length: 150 }, (_, i) => i) },
        steps: {
          a: { uses: 'util.noop', with: { tag: '${grid.i}' } },
          b: { uses: 'util.noop', needs: ['a'], with: { tag: '${grid.i}' } },
        },
      }),
      { file: 'sched.json' },
    );
    planRef = await store.putJson(plan, 'application/vnd.ablate.plan+json');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const scheduler = () => createRunScheduler({ store, loadPlan: createPlanLoader(store) });

  it('answers a retried call with its first answer, and hands the run over to another worker', async () => {
    const first = scheduler();
    const runId = 'retry-run';
    const r1 = await first.advanceRun({ runId, planRef, seq: 0, finished: [], capacity: 4 });
    assert.equal(r1.seq, 1);
    assert.deepEqual(
      r1.start.map((s) => s.i),
      [0, 1, 2, 3],
    );
    assert.equal(r1.start[0]!.key, plan.steps[0]!.key);
    assert.deepEqual(r1.profiles[r1.start[0]!.profile]!.queue, 'cpu');
    // The same call again (its answer was lost): the same answer, nothing started twice.
    assert.deepEqual(await first.advanceRun({ runId, planRef, seq: 0, finished: [], capacity: 4 }), r1);
    // Another worker (nothing in memory) takes the next call from the store.
    const second = scheduler();
    const r2 = await second.advanceRun({
      runId,
      planRef,
      seq: 1,
      finished: [
        { i: 0, status: 'done' },
        { i: 1, status: 'failed', error: 'InvalidInput: no' },
      ],
      capacity: 2,
    });
    assert.equal(r2.seq, 2);
    assert.equal(r2.counts.running, 4);
    assert.equal(r2.counts.failed, 1);
    assert.deepEqual(r2.newFailures, [
      { key: plan.steps[1]!.key, label: plan.steps[1]!.label, error: 'InvalidInput: no' },
    ]);
    // A late retry of that call on the first worker (its memory is a call behind) gets the stored answer.
    const r2again = await first.advanceRun({
      runId,
      planRef,
      seq: 1,
      finished: [],
      capacity: 9,
    });
    assert.deepEqual(r2again, r2);
  });

  it('restores the state of any call from snapshot and deltas; runs the plan to the end', async () => {
    const s = scheduler();
    const runId = 'long-run';
    let seq = 0;
    let running: number[] = [];
    let last: AdvanceRunResult | undefined;
    // One step finishes per call, so the run takes more than SNAPSHOT_EVERY calls.
    for (;;) {
      const finished: StepOutcome[] = running.length ? [{ i: running.shift()!, status: 'done' }] : [];
      last = await s.advanceRun({ runId, planRef, seq, finished, capacity: 3 - running.length });
      seq = last.seq;
      running.push(...last.start.map((x) => x.i));
      if (last.finished) break;
      assert.equal(last.stuck, false);
    }
    assert.ok(seq > 2 * SNAPSHOT_EVERY, `seq ${seq}`);
    assert.equal(last.counts.done, 300);
    running = [];
    const nodes = {
      digest: planRef.digest,
      nodes: dagNodes(plan, new Map(plan.steps.map((p, i) => [p.key, i]))),
    };
    const end = await restoreRunState(store, runId, nodes, seq);
    assert.deepEqual(end.state.counts(), last.counts);
    assert.ok(end.snapshotSeq > 0, 'restored without a snapshot');
    // An earlier call's state (before the latest snapshot) replays from the start: the same counts.
    const early = await restoreRunState(store, runId, nodes, 5);
    assert.equal(early.state.counts().done, 4);
    assert.equal(early.state.counts().running, 3);
    // The CLI takes a newer snapshot when it has one.
    const later = await restoreRunState(store, runId, nodes, 5, { orLater: true });
    assert.equal(later.seq, end.snapshotSeq);
  });
});
