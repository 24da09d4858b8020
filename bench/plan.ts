/**
 * Planning speed: compile a 10,000-cell grid with 6 steps per cell (two shared prefixes, four per-cell
 * steps) plus a whole-grid fan-in report, and report the median compile time and peak memory.
 *
 *   npm run bench -- plan [--json] [--runs N]
 * Target: under 1 s on the 2-core machine.
 */
import { compilePipeline } from '../infra/compiler/compile';
import { argValue, median, peakRssMiB, report } from './_util';

const axis = (n: number) => Array.from({ length: n }, (_, i) => `v${i}`);
const pipeline = {
  name: 'plan-bench',
  description: '10 x 10 x 10 x 10 grid, 6 steps per cell and a fan-in report',
  grid: { subset: axis(10), norm: axis(10), schedule: axis(10), seed: axis(10) },
  steps: {
    split: { uses: 'util.write', with: { text: 'split ${grid.subset}' } },
    pretrain: { uses: 'util.write', with: { text: 'pretrain ${grid.norm}' } },
    train: {
      uses: 'util.concat',
      with: {
        inputs: ['${steps.split.outputs.file}', '${steps.pretrain.outputs.file}'],
        separator: '${grid.schedule}/${grid.seed}',
      },
    },
    detect: {
      uses: 'util.concat',
      with: { inputs: ['${steps.train.outputs.file}', '${steps.split.outputs.file}'] },
    },
    evaluate: { uses: 'util.hash', with: { inputs: ['${steps.detect.outputs.file}'] } },
    summarize: { uses: 'util.noop', with: { tag: '${cell.id}' }, needs: ['evaluate'] },
    report: { uses: 'report.table', groupBy: [], with: { rows: '${steps.evaluate.outputs.hex}' } },
  },
};
const text = JSON.stringify(pipeline);
const runs = Number(argValue('runs') ?? 7);
const times: number[] = [];
let stats;
for (let r = 0; r < runs; r++) {
  const t0 = performance.now();
  const plan = compilePipeline(text, { maxCells: 10_000 });
  times.push(performance.now() - t0);
  stats = plan.stats;
}
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const heapBefore = process.memoryUsage().heapUsed;
const kept = compilePipeline(text, { maxCells: 10_000 });
const heapPlanMiB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;

report('plan: 10,000 cells x 6 steps', {
  cells: stats?.cells,
  stepInstances: stats?.stepInstances,
  uniqueSteps: kept.stats.uniqueSteps,
  runs,
  medianMs: median(times),
  minMs: Math.min(...times),
  maxMs: Math.max(...times),
  heapOfPlanMiB: heapPlanMiB,
  peakRssMiB: peakRssMiB(),
});
