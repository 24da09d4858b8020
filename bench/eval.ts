/**
 * `npm run bench -- eval [--json] [--reps N] [--images N]`: COCO bbox evaluation of a val2017-sized
 * synthetic case (5,000 images, ~38,000 GT boxes, 80 categories, 100 detections per image) by ablate and by
 * PyPI pycocotools, side by side in one run. Reports medians over the repetitions of:
 *   - evaluation: ablate's prepareCocoGroundTruth + evaluateCoco (on parsed JSON; includes validation and
 *     grouping) vs pycocotools' evaluate() + accumulate() + summarize();
 *   - load + evaluation in one process (reading and parsing both files, pycocotools' COCO() + loadRes());
 *   - the whole `ablate eval coco --json` command (process start, tsx, JSON parsing, evaluation);
 * plus each side's peak RSS, and checks that both report the same 12 statistics (exactly).
 * With --json the last line is one JSON object of the figures.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { synthVal2017 } from './_coco-synth';

const root = join(import.meta.dirname, '..');
const argv = process.argv.slice(2);
const asJson = argv.includes('--json');
const opt = (name: string, fallback: number): number => {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) {
    console.error(`--${name} needs a positive integer`);
    process.exit(2);
  }
  return v;
};
const reps = opt('reps', 3);
const nImages = opt('images', 5000);
const log = (s: string) => {
  if (!asJson) console.log(s);
  else console.error(s);
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface WorkerOut {
  runs: { loadMs: number; evalMs: number }[];
  stats: number[];
  peakRssMB: number;
}

function run(cmd: string, args: string[]): string {
  const res = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (res.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (${res.status}): ${res.stderr.slice(-1500)}`);
  return res.stdout;
}

const dir = await mkdtemp(join(tmpdir(), 'ablate-bench-eval-'));
try {
  const synth = synthVal2017(2017, nImages);
  const gtPath = join(dir, 'gt.json');
  const dtPath = join(dir, 'dets.json');
  await writeFile(gtPath, JSON.stringify(synth.gt));
  await writeFile(dtPath, JSON.stringify(synth.dt));
  const sizes = {
    images: synth.gt.images.length,
    gtBoxes: synth.gt.annotations.length,
    detections: synth.dt.length,
    categories: synth.gt.categories.length,
  };
  log(`case: ${JSON.stringify(sizes)}; ${reps} repetitions each`);

  log('ablate (in-process) ...');
  const ablate = JSON.parse(
    run(process.execPath, [
      '--import',
      'tsx',
      join(root, 'bench', '_eval-ablate.ts'),
      gtPath,
      dtPath,
      'bbox',
      String(reps),
    ]),
  ) as WorkerOut;

  log('ablate eval coco (whole command) ...');
  const cliMs: number[] = [];
  let cliStats: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    const out = run(process.execPath, [
      join(root, 'bin', 'ablate.mjs'),
      'eval',
      'coco',
      '--gt',
      gtPath,
      '--dt',
      dtPath,
      '--json',
    ]);
    cliMs.push(performance.now() - t0);
    cliStats = (JSON.parse(out) as { stats: number[] }).stats;
  }

  log('pycocotools ...');
  const py = JSON.parse(
    run(join(root, '.venv', 'bin', 'python'), [
      join(root, 'test', 'eval', 'oracle_coco.py'),
      '--bench',
      gtPath,
      dtPath,
      'bbox',
      String(reps),
    ]),
  ) as WorkerOut;

  const statsMatch =
    JSON.stringify(ablate.stats) === JSON.stringify(py.stats) &&
    JSON.stringify(cliStats) === JSON.stringify(py.stats);
  const figures = {
    ...sizes,
    reps,
    ablateEvalMs: Math.round(median(ablate.runs.map((r) => r.evalMs))),
    ablateLoadMs: Math.round(median(ablate.runs.map((r) => r.loadMs))),
    ablateTotalMs: Math.round(median(ablate.runs.map((r) => r.loadMs + r.evalMs))),
    ablateCliMs: Math.round(median(cliMs)),
    ablatePeakRssMB: Math.round(ablate.peakRssMB),
    pycocotoolsEvalMs: Math.round(median(py.runs.map((r) => r.evalMs))),
    pycocotoolsLoadMs: Math.round(median(py.runs.map((r) => r.loadMs))),
    pycocotoolsTotalMs: Math.round(median(py.runs.map((r) => r.loadMs + r.evalMs))),
    pycocotoolsPeakRssMB: Math.round(py.peakRssMB),
    ratio: 0,
    ratioTotal: 0,
    ratioCli: 0,
    statsMatch,
    AP: py.stats[0],
  };
  figures.ratio = Math.round((figures.pycocotoolsEvalMs / figures.ablateEvalMs) * 10) / 10;
  figures.ratioTotal = Math.round((figures.pycocotoolsTotalMs / figures.ablateTotalMs) * 10) / 10;
  figures.ratioCli = Math.round((figures.pycocotoolsTotalMs / figures.ablateCliMs) * 10) / 10;
  log(
    [
      '',
      '                      ablate      pycocotools   ratio',
      `evaluation        ${String(figures.ablateEvalMs).padStart(8)} ms ${String(figures.pycocotoolsEvalMs).padStart(10)} ms   ${figures.ratio}x`,
      `load + evaluation ${String(figures.ablateTotalMs).padStart(8)} ms ${String(figures.pycocotoolsTotalMs).padStart(10)} ms   ${figures.ratioTotal}x`,
      `whole CLI command ${String(figures.ablateCliMs).padStart(8)} ms ${String(figures.pycocotoolsTotalMs).padStart(10)} ms   ${figures.ratioCli}x (python: load + eval)`,
      `peak RSS          ${String(figures.ablatePeakRssMB).padStart(8)} MB ${String(figures.pycocotoolsPeakRssMB).padStart(10)} MB`,
      `identical stats: ${statsMatch}`,
    ].join('\n'),
  );
  if (asJson) console.log(JSON.stringify(figures));
  if (!statsMatch) process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
