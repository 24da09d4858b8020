/**
 * Report rendering: a synthetic 86-cell run (2 inits x 3 schedules x 3 subsets x 5 seeds, trimmed to
 * 86 cells; 2,000 loss points and 4 AP points per train step) written into a temp filesystem store,
 * then gathered from the store and rendered to HTML. Reports the median gather and render times and
 * the HTML size.
 *
 *   npm run bench -- report [--json] [--runs N]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { gatherReport } from '../infra/report/gather';
import { renderHtml } from '../infra/report/html';
import { openStore } from '../infra/store/index';
import { writeSyntheticRun } from '../test/report/fixture';
import { argValue, median, peakRssMiB, report } from './_util';

const dir = await mkdtemp(join(tmpdir(), 'ablate-bench-report-'));
try {
  const store = await openStore(pathToFileURL(dir).href);
  await writeSyntheticRun(store, {
    runId: 'bench-86',
    schedules: ['1x', '2x', '3x'],
    subsets: [
      { name: '1k', images: 1000 },
      { name: '3k', images: 3000 },
      { name: '10k', images: 10000 },
    ],
    seeds: [1, 2, 3, 4, 5],
    cells: 86,
    lossPoints: 2000,
  });
  const runs = Number(argValue('runs') ?? 3);
  const gatherMs: number[] = [];
  const renderMs: number[] = [];
  let sizeBytes = 0;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const data = await gatherReport(store, 'bench-86');
    const t1 = performance.now();
    const html = await renderHtml(data);
    renderMs.push(performance.now() - t1);
    gatherMs.push(t1 - t0);
    sizeBytes = Buffer.byteLength(html);
  }
  report('report: 86-cell synthetic run, gather from a filesystem store + render HTML', {
    cells: 86,
    gatherMsMedian: Math.round(median(gatherMs)),
    renderMsMedian: Math.round(median(renderMs)),
    htmlBytes: sizeBytes,
    peakRssMiB: peakRssMiB(),
  });
} finally {
  await rm(dir, { recursive: true, force: true });
}
