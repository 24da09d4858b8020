/**
 * Worker of bench/eval.ts, run in its own process so its peak RSS is its own: loads the GT and results
 * files and evaluates them REPS times; prints {runs: [{loadMs, evalMs}], stats, peakRssMB} as JSON.
 */
import { readFile } from 'node:fs/promises';

import { evaluateCoco, prepareCocoGroundTruth } from '../activities/kinds/eval/coco';

const [gtPath, dtPath, iouType, repsRaw] = process.argv.slice(2);
const reps = Number(repsRaw ?? 3);
const runs: { loadMs: number; evalMs: number }[] = [];
let stats: number[] = [];
for (let r = 0; r < reps; r++) {
  const t0 = performance.now();
  const gtDoc = JSON.parse(await readFile(gtPath!, 'utf8')) as unknown;
  const dtDoc = JSON.parse(await readFile(dtPath!, 'utf8')) as unknown;
  const t1 = performance.now();
  const result = evaluateCoco(prepareCocoGroundTruth(gtDoc, gtPath), dtDoc, {
    iouType: iouType === 'segm' ? 'segm' : 'bbox',
  });
  const t2 = performance.now();
  runs.push({ loadMs: t1 - t0, evalMs: t2 - t1 });
  stats = result.stats;
}
// maxRSS is in KiB
console.log(JSON.stringify({ runs, stats, peakRssMB: process.resourceUsage().maxRSS / 1024 }));
