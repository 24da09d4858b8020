import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DagState, decodeStatuses, runStatus, type DagNode } from '../../workflows/dag';

/** Nodes from `label: [needs by label]`, in the given (topological) order. */
function graph(spec: Record<string, string[]>): DagNode[] {
  const labels = Object.keys(spec);
  return labels.map((label) => ({ label, needs: spec[label]!.map((n) => labels.indexOf(n)) }));
}

const labelsOf = (nodes: DagNode[], idx: number[]) => idx.map((i) => nodes[i]!.label);

//   a   b
//  / \  |
// c   d e
//  \ /
//   f
const DIAMOND = graph({ a: [], b: [], c: ['a'], d: ['a'], e: ['b'], f: ['c', 'd'] });

describe('DagState', () => {
  it('starts ready steps lowest plan index first, at most the limit, and only once', () => {
    const s = new DagState(DIAMOND);
    assert.deepEqual(labelsOf(DIAMOND, s.take(1)), ['a']);
    assert.deepEqual(labelsOf(DIAMOND, s.take(5)), ['b']);
    assert.deepEqual(s.take(5), []);
    assert.equal(s.hasReady(), false);
    // e becomes ready before c and d, but c and d come first in the plan.
    s.finish({ i: 1, status: 'done' });
    s.finish({ i: 0, status: 'cached' });
    assert.deepEqual(labelsOf(DIAMOND, s.take(2)), ['c', 'd']);
    assert.deepEqual(labelsOf(DIAMOND, s.take(2)), ['e']);
  });

  it('starts a step only when every step it needs succeeded', () => {
    const s = new DagState(DIAMOND);
    s.take(2);
    s.finish({ i: 0, status: 'done' });
    s.take(2); // c, d
    s.finish({ i: 2, status: 'done' });
    assert.deepEqual(s.take(9), [], 'f still waits for d; e for b');
    s.finish({ i: 3, status: 'done' });
    assert.deepEqual(labelsOf(DIAMOND, s.take(9)), ['f']);
  });

  it('a failure skips everything downstream of it, naming the cause, and nothing else', () => {
    const s = new DagState(DIAMOND);
    s.take(2);
    s.finish({ i: 0, status: 'failed', error: 'InvalidInput: boom' });
    assert.equal(s.statusOf(0), 'failed');
    assert.equal(s.errorOf(0), 'InvalidInput: boom');
    for (const i of [2, 3, 5]) {
      assert.equal(s.statusOf(i), 'skipped', DIAMOND[i]!.label);
      assert.equal(s.errorOf(i), 'not run: upstream step a failed');
    }
    assert.equal(s.statusOf(4), 'pending');
    s.finish({ i: 1, status: 'done' });
    assert.deepEqual(labelsOf(DIAMOND, s.take(9)), ['e']);
    s.finish({ i: 4, status: 'done' });
    assert.equal(s.isFinished(), true);
    const counts = s.counts();
    assert.deepEqual(counts, {
      pending: 0,
      running: 0,
      done: 2,
      cached: 0,
      failed: 1,
      skipped: 3,
      cancelled: 0,
    });
    assert.equal(runStatus(counts, false), 'failed');
    assert.deepEqual([...s.failed().keys()], [0]);
  });

  it('a step already skipped by one failure is not skipped again by another', () => {
    const nodes = graph({ a: [], b: [], c: ['a', 'b'], d: ['c'] });
    const s = new DagState(nodes);
    s.take(2);
    s.finish({ i: 0, status: 'failed', error: 'x' });
    s.finish({ i: 1, status: 'failed', error: 'y' });
    assert.equal(s.errorOf(3), 'not run: upstream step a failed');
    assert.equal(s.counts().skipped, 2);
  });

  it('keeps counts up to date through every change', () => {
    const s = new DagState(DIAMOND);
    assert.deepEqual(s.counts(), {
      pending: 6,
      running: 0,
      done: 0,
      cached: 0,
      failed: 0,
      skipped: 0,
      cancelled: 0,
    });
    s.take(2);
    assert.equal(s.counts().running, 2);
    s.finish({ i: 0, status: 'cancelled' });
    s.cancelRemaining();
    assert.deepEqual(s.counts(), {
      pending: 0,
      running: 0,
      done: 0,
      cached: 0,
      failed: 0,
      skipped: 0,
      cancelled: 6,
    });
    assert.equal(runStatus(s.counts(), true), 'cancelled');
    assert.equal(s.hasReady(), false);
  });

  it('ignores an outcome for a step that is not running (a repeated signal)', () => {
    const s = new DagState(DIAMOND);
    s.take(1);
    s.finish({ i: 0, status: 'done' });
    s.finish({ i: 0, status: 'failed', error: 'late' });
    s.finish({ i: 5, status: 'done' });
    assert.equal(s.statusOf(0), 'done');
    assert.equal(s.statusOf(5), 'pending');
    assert.equal(s.errorOf(0), undefined);
  });

  it('round-trips through its snapshot; running steps stay running and report later', () => {
    const s = new DagState(DIAMOND);
    s.take(2); // a, b
    s.finish({ i: 0, status: 'done' });
    s.take(1); // c
    s.finish({ i: 1, status: 'failed', error: 'b broke' });
    const snap = s.snapshot();
    assert.equal(snap.statuses, 'dfrpsp');
    assert.deepEqual(decodeStatuses(snap.statuses), [
      'done',
      'failed',
      'running',
      'pending',
      'skipped',
      'pending',
    ]);
    const r = new DagState(DIAMOND, JSON.parse(JSON.stringify(snap)) as typeof snap);
    assert.equal(r.encode(), s.encode());
    assert.deepEqual(r.counts(), s.counts());
    assert.equal(r.errorOf(4), 'not run: upstream step b failed');
    assert.equal(r.errorOf(1), 'b broke');
    // Carried over: c is still running (not started again); d is ready.
    assert.deepEqual(labelsOf(DIAMOND, r.take(9)), ['d']);
    r.finish({ i: 2, status: 'done' });
    r.finish({ i: 3, status: 'done' });
    assert.deepEqual(labelsOf(DIAMOND, r.take(9)), ['f']);
    r.finish({ i: 5, status: 'done' });
    assert.equal(r.isFinished(), true);
  });

  it('rejects a snapshot of another plan', () => {
    assert.throws(
      () => new DagState(DIAMOND, { statuses: 'ppp', errors: {}, skippedBy: {} }),
      /snapshot has 3 statuses for a plan of 6 steps/,
    );
  });

  it('says when steps are pending but none can ever start', () => {
    const nodes = graph({ a: [], b: ['a'] });
    // b pending, a cancelled: b waits forever.
    const s = new DagState(nodes, { statuses: 'xp', errors: {}, skippedBy: {} });
    assert.equal(s.isStuck(), true);
    assert.equal(new DagState(nodes).isStuck(), false);
  });

  it('runs a 100,000-step plan (chains and a fan-out) to the end, every step exactly once', () => {
    const n = 100_000;
    const nodes: DagNode[] = Array.from({ length: n }, (_, i) => ({
      label: `s${i}`,
      needs: i === 0 ? [] : [i % 2 ? 0 : i - 2 < 0 ? 0 : i - 2],
    }));
    const s = new DagState(nodes);
    let started = 0;
    while (!s.isFinished()) {
      const batch = s.take(500);
      assert.ok(batch.length > 0, 'stuck');
      started += batch.length;
      for (const i of batch) s.finish({ i, status: 'done' });
    }
    assert.equal(started, n);
    assert.equal(s.counts().done, n);
  });
});
