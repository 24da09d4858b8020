import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  learningRateAt,
  PAPER_BASE_ITERATIONS,
  resolveSchedule,
} from '../../activities/kinds/train/schedule';

describe('the paper schedule rule', () => {
  it("places the two x0.1 decays at the paper's last 60k and last 20k iterations", () => {
    const paper = (schedule: string) =>
      resolveSchedule({ schedule, baseIterations: PAPER_BASE_ITERATIONS, baseLr: 0.02 });
    assert.deepEqual([paper('2x').totalIterations, paper('2x').decayAt], [180_000, [120_000, 160_000]]);
    assert.deepEqual([paper('3x').totalIterations, paper('3x').decayAt], [270_000, [210_000, 250_000]]);
    assert.deepEqual([paper('6x').totalIterations, paper('6x').decayAt], [540_000, [480_000, 520_000]]);
    assert.deepEqual([paper('1x').totalIterations, paper('1x').decayAt], [90_000, [30_000, 70_000]]);
    assert.equal(paper('2x').scale, 1);
  });

  it('scales every distance by baseIterations / 90k, so longer schedules lengthen only the high-LR phase', () => {
    const demo = (schedule: string | number) =>
      resolveSchedule({ schedule, baseIterations: 300, baseLr: 0.02 });
    assert.equal(demo('1x').scale, 300 / 90_000);
    assert.deepEqual(demo('1x').decayAt, [100, 233]);
    assert.deepEqual(demo('2x').decayAt, [400, 533]);
    assert.deepEqual(demo(6).decayAt, [1600, 1733]);
    for (const s of ['1x', '2x', '3x', '6x']) {
      const r = demo(s);
      assert.equal(r.totalIterations - r.decayAt[0], 200);
      assert.equal(r.totalIterations - r.decayAt[1], 67);
    }
  });

  it('warms up linearly from warmupFactor * lr, then decays by 10x twice', () => {
    const r = resolveSchedule({
      schedule: '2x',
      baseIterations: 300,
      baseLr: 0.02,
      warmupIterations: 100,
      warmupFactor: 0.25,
    });
    const lr = (i: number) => +learningRateAt(r, i).toPrecision(6);
    assert.equal(lr(0), 0.005);
    assert.equal(lr(50), 0.0125);
    assert.equal(lr(100), 0.02);
    assert.equal(lr(399), 0.02);
    assert.equal(lr(400), 0.002);
    assert.equal(lr(532), 0.002);
    assert.equal(lr(533), 0.0002);
    assert.equal(lr(599), 0.0002);
  });

  it('refuses schedules that cannot hold the first decay, and malformed names', () => {
    assert.throws(
      () => resolveSchedule({ schedule: '0.5x', baseIterations: 300, baseLr: 0.1 }),
      /too few for the first decay 200 iterations before the end/,
    );
    assert.throws(
      () => resolveSchedule({ schedule: 'long', baseIterations: 300, baseLr: 0.1 }),
      /expected "1x".."6x" or a positive number/,
    );
    assert.throws(
      () => resolveSchedule({ schedule: '1x', baseIterations: 0, baseLr: 0.1 }),
      /baseIterations must be a positive integer/,
    );
  });
});
