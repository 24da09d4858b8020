/** The per-kind step breakdown and core utilisation shown at the end of `ablate run` (infra/run-breakdown.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { breakdownText, computeBreakdown, machineCpuTimes, type StepTiming } from '../../infra/run-breakdown';

const w = (pid: number, taskQueue = 'ablate-gpu') => ({ host: 'h', pid, taskQueue });
const steps: StepTiming[] = [
  { uses: 'train.detector', status: 'done', durationMs: 60_000, worker: w(11) },
  { uses: 'train.detector', status: 'done', durationMs: 40_000, worker: w(12) },
  { uses: 'train.detector', status: 'done', durationMs: 50_000, worker: w(11) },
  { uses: 'eval.coco', status: 'done', durationMs: 1_000, worker: w(10, 'ablate-cpu') },
  { uses: 'eval.coco', status: 'done', durationMs: 3_000, worker: w(10, 'ablate-cpu') },
  // Served from the cache: counted apart, its (cache check) time is not step time.
  { uses: 'train.pretrain', status: 'cached', durationMs: 200, worker: w(10, 'ablate-cpu') },
  // An older record without the worker field.
  { uses: 'eval.coco', status: 'done', durationMs: 2_000 },
];

describe('run breakdown', () => {
  it('per kind: steps run and cached, total and median of the ones that ran, slowest kind first', () => {
    const b = computeBreakdown(steps, { wallMs: 100_000, cores: 2 });
    assert.deepEqual(b.kinds, [
      { uses: 'train.detector', ran: 3, cached: 0, totalMs: 150_000, medianMs: 50_000 },
      { uses: 'eval.coco', ran: 3, cached: 0, totalMs: 6_000, medianMs: 2_000 },
      { uses: 'train.pretrain', ran: 0, cached: 1, totalMs: 0, medianMs: 0 },
    ]);
    assert.equal(b.busyStepMs, 156_000);
    assert.equal(b.workerProcesses, 3);
    // Derived: 156 s of steps over 100 s x 2 cores.
    assert.equal(b.stepUtilization, 0.78);
    assert.equal(b.measured, undefined);
  });

  it('an even count takes the mean of the two middle durations', () => {
    const b = computeBreakdown(steps.slice(0, 2), { wallMs: 1, cores: 1 });
    assert.equal(b.kinds[0]!.medianMs, 50_000);
  });

  it('measured CPU: the processes’ CPU time over their own wall time x cores, labelled apart', () => {
    const b = computeBreakdown(steps, {
      wallMs: 100_000,
      cores: 2,
      usage: { wallMs: 102_000, cores: 2, cpuMs: 153_000, processes: 3, machineBusy: 0.9 },
    });
    assert.equal(b.measured!.cpuUtilization, 0.75);
    assert.deepEqual(breakdownText(b), [
      'step time by kind (from the step records; wall 1m40s, 2 cores, 3 worker processes ran steps):',
      'kind            ran  cached  total  median',
      'train.detector    3          2m30s     50s',
      'eval.coco         3           6.0s    2.0s',
      'train.pretrain    0       1',
      'cores busy, derived: 78% (step time 2m36s / (wall x 2 cores))',
      'cores busy, measured: 75% (CPU time of 3 ablate processes: 2m33s over 1m42s x 2 cores); whole machine, every process: 90%',
    ]);
  });

  it('an empty or instant run divides by nothing without NaN', () => {
    const b = computeBreakdown([], {
      wallMs: 0,
      cores: 2,
      usage: { wallMs: 0, cores: 2, cpuMs: 0, processes: 1 },
    });
    assert.equal(b.stepUtilization, 0);
    assert.equal(b.measured!.cpuUtilization, 0);
  });

  it('reads the machine’s CPU times on Linux', { skip: process.platform !== 'linux' }, () => {
    const t = machineCpuTimes();
    assert.ok(t && t.total > 0 && t.busy >= 0 && t.busy <= t.total, JSON.stringify(t));
  });
});
