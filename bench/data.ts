/**
 * `npm run bench -- data [--json] [--quick]`: dataset throughput and memory.
 *
 * 1. decode + resize (letterbox to 64 px) + augment (horizontal flip on every other image) with sharp,
 *    one Node process, sharp.concurrency(1) (one libvips thread per image) and 1 or 2 images in flight
 *    on libuv's pool: images/s for 640x480 JPEGs (COCO-sized) and for the 64 px synthetic JPEGs.
 * 2. synthetic generation: COCO-format images/s at 64 px (render + JPEG + JSON).
 * 3. a COCO-like annotation file of about 448 MB (118,287 images, ~860k annotations with polygons and
 *    some crowd RLEs, the shape of instances_train2017.json) is generated into a temp dir, then each of
 *    these runs in a fresh child process that reports its wall time and peak RSS:
 *      - loadCocoInstances (segmentation kept), loadCocoInstances({ segmentation: false }),
 *      - writeCocoSubset to 10,000 images (the paper's 10k subset),
 *      - for comparison, a naive JSON.parse(readFileSync(file, 'utf8')),
 *      - and parseJsonBytes(readFileSync(file)), the strict whole-file reader of the eval inputs.
 *    All but the naive one check the whole file strictly (infra/json-lexer.ts).
 *    The file is deleted afterwards. `--quick` uses a 1/8-size file.
 * The machine has 2 cores shared with other work: figures are medians of 3 runs where cheap.
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  createRng,
  generateCocoDetection,
  loadCocoInstances,
  readImageRgb,
  renderDetectionScene,
  writeCocoSubset,
} from '../activities/kinds/dataset/index';
import { parseJsonBytes } from '../infra/json-lexer';

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Child mode: run one measured operation and print {seconds, peakRssMB, ...} as JSON. */
async function child(op: string, file: string, out: string): Promise<void> {
  const t0 = performance.now();
  let extra: Record<string, number> = {};
  if (op === 'load') {
    const d = await loadCocoInstances(file);
    extra = { images: d.images.length, annotations: d.annotations.length };
  } else if (op === 'load-boxes') {
    const d = await loadCocoInstances(file, { segmentation: false });
    extra = { images: d.images.length, annotations: d.annotations.length };
  } else if (op === 'split') {
    const s = await writeCocoSubset(file, out, { count: 10_000, seed: 1 });
    extra = { images: s.images, annotations: s.annotations };
  } else if (op === 'naive') {
    const d = JSON.parse(readFileSync(file, 'utf8')) as { images: unknown[]; annotations: unknown[] };
    extra = { images: d.images.length, annotations: d.annotations.length };
  } else if (op === 'strict-whole') {
    const d = parseJsonBytes(readFileSync(file)) as { images: unknown[]; annotations: unknown[] };
    extra = { images: d.images.length, annotations: d.annotations.length };
  }
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ seconds, peakRssMB: process.resourceUsage().maxRSS / 1024, ...extra }));
}

function runChild(op: string, file: string, out: string): Record<string, number> | { error: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--child', op, file, out], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(last) as Record<string, number>;
  } catch {
    return {
      error: (r.stderr.split('\n').find((l) => /heap|memory|Error/i.test(l)) ?? `exit ${r.status}`).slice(
        0,
        200,
      ),
    };
  }
}

/** Write a COCO-like instances file shaped like train2017 (polygon lengths tuned to ~448 MB at full size). */
async function writeBigCoco(file: string, images: number, annotations: number): Promise<void> {
  const rng = createRng('bench-coco');
  const out = createWriteStream(file, { highWaterMark: 1 << 20 });
  const put = async (s: string): Promise<void> => {
    if (!out.write(s)) await once(out, 'drain');
  };
  const r2 = (v: number): number => Math.round(v * 100) / 100;
  await put(
    '{"info":{"description":"COCO-like benchmark file","year":2017},"licenses":[{"id":1,"name":"x","url":""}],"images":[',
  );
  const widths: number[] = [];
  const heights: number[] = [];
  for (let i = 0; i < images; i++) {
    const id = 9 + i * 4;
    const [w, h] = rng.chance(0.7) ? [640, rng.pick([427, 480, 426, 424])] : [rng.pick([427, 480, 612]), 640];
    widths.push(w);
    heights.push(h);
    await put(
      `${i ? ',' : ''}${JSON.stringify({ license: 1, file_name: `${String(id).padStart(12, '0')}.jpg`, coco_url: `http://images.cocodataset.org/train2017/${String(id).padStart(12, '0')}.jpg`, height: h, width: w, date_captured: '2013-11-14 16:28:13', flickr_url: 'http://farm4.staticflickr.com/0000/00000000000_0000000000_z.jpg', id })}`,
    );
  }
  await put('],"annotations":[');
  for (let k = 0; k < annotations; k++) {
    const index = rng.int(images);
    const imageId = 9 + index * 4;
    const crowd = rng.chance(0.01);
    const bw = r2(rng.range(2, 140));
    const bh = r2(rng.range(2, 100));
    const x = r2(rng.range(0, widths[index]! - bw));
    const y = r2(rng.range(0, heights[index]! - bh));
    let seg: unknown;
    if (crowd) {
      const counts = Array.from({ length: 40 + rng.int(200) }, () => rng.int(400));
      seg = { counts, size: [heights[index]!, widths[index]!] };
    } else {
      const n = 8 + rng.int(37);
      const poly: number[] = [];
      for (let j = 0; j < n; j++) poly.push(r2(x + rng.float() * bw), r2(y + rng.float() * bh));
      seg = [poly];
    }
    await put(
      `${k ? ',' : ''}${JSON.stringify({ segmentation: seg, area: r2(bw * bh * 0.6), iscrowd: crowd ? 1 : 0, image_id: imageId, bbox: [x, y, bw, bh], category_id: 1 + rng.int(80), id: 100000 + k })}`,
    );
  }
  const cats = Array.from({ length: 80 }, (_, i) => ({
    supercategory: 'thing',
    id: i + 1,
    name: `category${i + 1}`,
  }));
  await put(`],"categories":${JSON.stringify(cats)}}`);
  out.end();
  await once(out, 'finish');
}

async function benchDecode(dir: string): Promise<Record<string, number>> {
  const { default: sharp } = await import('sharp');
  sharp.concurrency(1);
  // COCO-sized JPEGs: upscaled synthetic scenes plus sensor-like grain, quality 90.
  const big = join(dir, 'big');
  await mkdir(big);
  const nBig = quick ? 24 : 64;
  const grainRng = createRng('grain');
  for (let i = 0; i < nBig; i++) {
    const scene = renderDetectionScene(3, 'bench', i, { size: 96, classes: 12 });
    const up = await sharp(scene.pixels, { raw: { width: 96, height: 96, channels: 3 } })
      .resize(640, 480, { fit: 'fill' })
      .raw()
      .toBuffer();
    for (let j = 0; j < up.length; j++)
      up[j] = Math.max(0, Math.min(255, up[j]! + Math.round(grainRng.normal() * 6)));
    await sharp(up, { raw: { width: 640, height: 480, channels: 3 } })
      .jpeg({ quality: 90 })
      .toFile(join(big, `${i}.jpg`));
  }
  const small = join(dir, 'small');
  await generateCocoDetection(small, { seed: 4, images: quick ? 128 : 512, valImages: 0, size: 64 });
  const smallFiles = (await readdir(join(small, 'images'))).map((f) => join(small, 'images', f));
  const bigFiles = (await readdir(big)).map((f) => join(big, f));

  const rate = async (files: string[], inFlight: number, rounds: number): Promise<number> => {
    const list = Array.from({ length: rounds }, () => files).flat();
    let next = 0;
    const t0 = performance.now();
    const worker = async (): Promise<void> => {
      while (next < list.length) {
        const i = next++;
        await readImageRgb(list[i]!, { size: 64, letterbox: true, flip: i % 2 === 1 });
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    return list.length / ((performance.now() - t0) / 1000);
  };
  await rate(bigFiles.slice(0, 8), 2, 1); // warm-up
  const out: Record<string, number> = {};
  for (const inFlight of [1, 2]) {
    const big3: number[] = [];
    for (let r = 0; r < 3; r++) big3.push(await rate(bigFiles, inFlight, quick ? 1 : 2));
    out[`decode640x480_to64_imgPerSec_inflight${inFlight}`] = median(big3);
    const xs: number[] = [];
    for (let r = 0; r < 3; r++) xs.push(await rate(smallFiles, inFlight, 1));
    out[`decode64_synthetic_imgPerSec_inflight${inFlight}`] = median(xs);
  }
  return out;
}

async function benchSynth(dir: string): Promise<number> {
  const n = quick ? 100 : 400;
  const t0 = performance.now();
  await generateCocoDetection(join(dir, 'gen'), { seed: 9, images: n, valImages: 0, size: 64 });
  return n / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  if (args[0] === '--child') return child(args[1]!, args[2]!, args[3]!);
  const dir = await mkdtemp(join(tmpdir(), 'ablate-bench-data-'));
  try {
    const figures: Record<string, unknown> = { cores: 2, process: '1 Node process, sharp.concurrency(1)' };
    console.error('== decode + letterbox to 64 px + flip');
    Object.assign(figures, await benchDecode(dir));
    console.error('== synthetic generation');
    figures.synthCoco64_imgPerSec = await benchSynth(dir);
    const scale = quick ? 8 : 1;
    const file = join(dir, 'instances_big.json');
    console.error(`== writing a COCO-like annotation file (1/${scale} of train2017)`);
    const tw = performance.now();
    await writeBigCoco(file, Math.round(118_287 / scale), Math.round(860_001 / scale));
    figures.bigFileMB = (await stat(file)).size / 1e6;
    figures.bigFileWriteSec = (performance.now() - tw) / 1000;
    for (const op of ['load', 'load-boxes', 'split', 'naive', 'strict-whole']) {
      console.error(`== ${op}`);
      figures[op] = runChild(op, file, join(dir, 'subset.json'));
    }
    if (!json)
      for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(40)} ${JSON.stringify(v)}`);
    if (json) console.log(JSON.stringify(figures));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
