/**
 * Shared pieces of the evaluation conformance tests: a seeded PRNG, generators of random COCO cases, and
 * runners for the Python oracles (PyPI pycocotools; the VOC reference in oracle_voc.py).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { rleFromPolygon, rleToString } from '../../activities/kinds/eval/mask';

const root = join(import.meta.dirname, '..', '..');
export const PYTHON = join(root, '.venv', 'bin', 'python');

/** mulberry32: small, fast, good enough for test data; same seed, same case. */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Run a Python oracle script with arguments; returns its parsed JSON stdout. Fails (never skips) with a
 * clear message when the virtual environment or pycocotools is missing.
 */
export function runOracle(script: string, args: string[]): unknown {
  if (!existsSync(PYTHON))
    throw new Error(
      `${PYTHON} does not exist: the conformance tests need the project's Python environment with ` +
        'pycocotools; run `npm run setup` first',
    );
  const res = spawnSync(PYTHON, [join(root, 'test', 'eval', script), ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  if (res.status !== 0)
    throw new Error(
      `${script} failed (exit ${res.status}): ${res.stderr.slice(-2000)}` +
        (res.status === 3 ? '\nrun `npm run setup` to install pycocotools into .venv' : ''),
    );
  return JSON.parse(res.stdout);
}

/** Decode the oracle's base64 little-endian float64 arrays. */
export function decodeF64(b64: string): Float64Array {
  const buf = Buffer.from(b64, 'base64');
  const out = new Float64Array(buf.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = buf.readDoubleLE(i * 8);
  return out;
}

export interface CocoCase {
  name: string;
  gt: Record<string, unknown>;
  dt: Record<string, unknown>[];
  iouType: 'bbox' | 'segm';
}

function pick<T>(rng: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)]!;
}

/** A random polygon around a box: a jittered ellipse with 5..12 vertices, inside the image. */
function polygonIn(rng: () => number, x: number, y: number, w: number, h: number): number[] {
  const n = 5 + Math.floor(rng() * 8);
  const pts: number[] = [];
  for (let i = 0; i < n; i++) {
    const ang = (2 * Math.PI * i) / n + rng() * 0.3;
    const r = 0.6 + rng() * 0.4;
    pts.push(
      Math.round((x + w / 2 + (Math.cos(ang) * r * w) / 2) * 100) / 100,
      Math.round((y + h / 2 + (Math.sin(ang) * r * h) / 2) * 100) / 100,
    );
  }
  return pts;
}

/**
 * A random COCO case covering what the conformance suite must: images without GT, images without
 * detections, crowd regions, ties in scores, more than 100 detections for one (image, category), objects
 * of all sizes (and areas exactly at the range bounds), categories absent from GT, non-contiguous ids.
 */
export function generateCocoCase(seed: number, iouType: 'bbox' | 'segm' = 'bbox'): CocoCase {
  const rng = createRng(seed);
  const segm = iouType === 'segm';
  const nImages = 1 + Math.floor(rng() * (segm ? 6 : 14));
  const nCats = 1 + Math.floor(rng() * 5);
  const catIds = Array.from({ length: nCats }, (_, i) => i * 3 + 1 + Math.floor(rng() * 2));
  const absentCat = nCats > 1 && rng() < 0.4 ? pick(rng, catIds) : undefined;
  const stringImageIds = !segm && rng() < 0.15;
  const images: Record<string, unknown>[] = [];
  const annotations: Record<string, unknown>[] = [];
  const dets: Record<string, unknown>[] = [];
  const scoreMode = pick(rng, ['continuous', 'coarse', 'mixed'] as const);
  const score = (): number => {
    const s = rng();
    if (scoreMode === 'coarse' || (scoreMode === 'mixed' && rng() < 0.5)) return Math.round(s * 10) / 10;
    return s;
  };
  let annId = rng() < 0.1 ? 0 : 1 + Math.floor(rng() * 50);
  const withSegDets = segm && rng() < 0.5;
  for (let im = 0; im < nImages; im++) {
    const id = stringImageIds ? `img-${(im * 7919) % 1000}` : 1000 + im * 13 + Math.floor(rng() * 5);
    const W = segm ? 30 + Math.floor(rng() * 60) : 200 + Math.floor(rng() * 500);
    const H = segm ? 30 + Math.floor(rng() * 60) : 200 + Math.floor(rng() * 500);
    images.push({ id, width: W, height: H, file_name: `${String(id)}.jpg` });
    const noGt = rng() < 0.15;
    const noDet = rng() < 0.15;
    const nGt = noGt ? 0 : Math.floor(rng() * 8);
    for (let g = 0; g < nGt; g++) {
      const cat = pick(
        rng,
        catIds.filter((c) => c !== absentCat),
      );
      // log-uniform sizes so small, medium and large objects all occur
      const w = Math.min(W - 1, Math.exp(rng() * Math.log(segm ? W : 400)) + 1);
      const h = Math.min(H - 1, Math.exp(rng() * Math.log(segm ? H : 400)) + 1);
      const x = Math.round(rng() * (W - w) * 10) / 10;
      const y = Math.round(rng() * (H - h) * 10) / 10;
      const bw = Math.round(w * 10) / 10;
      const bh = Math.round(h * 10) / 10;
      const crowd = rng() < 0.1 ? 1 : 0;
      const u = rng();
      const area = u < 0.05 ? 1024 : u < 0.1 ? 9216 : Math.round(bw * bh * (0.5 + rng() * 0.5) * 100) / 100;
      const ann: Record<string, unknown> = {
        id: annId,
        image_id: id,
        category_id: cat,
        bbox: [x, y, bw, bh],
        area,
        iscrowd: crowd,
      };
      annId += 1 + Math.floor(rng() * 3);
      if (segm) {
        if (crowd) {
          // crowd regions come as uncompressed RLE, as in COCO
          const poly = rleFromPolygon(polygonIn(rng, x, y, bw, bh), H, W);
          ann.segmentation = { size: [H, W], counts: Array.from(poly.counts) };
        } else if (rng() < 0.2) {
          ann.segmentation = {
            size: [H, W],
            counts: rleToString(rleFromPolygon(polygonIn(rng, x, y, bw, bh), H, W)),
          };
        } else {
          const parts = rng() < 0.2 ? 2 : 1;
          ann.segmentation = Array.from({ length: parts }, () => polygonIn(rng, x, y, bw, bh));
        }
      }
      annotations.push(ann);
      if (noDet) continue;
      const nd = rng() < 0.2 ? 0 : 1 + Math.floor(rng() * 3);
      for (let d = 0; d < nd; d++) {
        const j = () => 1 + (rng() - 0.5) * (d === 0 ? 0.3 : 0.8);
        const dw = Math.max(0.5, Math.round(bw * j() * 10) / 10);
        const dh = Math.max(0.5, Math.round(bh * j() * 10) / 10);
        const dx = Math.round((x + (rng() - 0.5) * bw * 0.3) * 10) / 10;
        const dy = Math.round((y + (rng() - 0.5) * bh * 0.3) * 10) / 10;
        const dc = rng() < 0.1 ? pick(rng, catIds) : cat;
        dets.push(makeDet(rng, id, dc, dx, dy, dw, dh, score(), segm, withSegDets, W, H));
      }
    }
    if (noDet) continue;
    // false positives, sometimes many for one category (more than 100 per image and category)
    const many = rng() < 0.1;
    const nFp = many ? 101 + Math.floor(rng() * 40) : Math.floor(rng() * 6);
    const fpCat = pick(rng, catIds);
    for (let f = 0; f < nFp; f++) {
      const w = Math.exp(rng() * Math.log(segm ? W / 2 : 300)) + 1;
      const h = Math.exp(rng() * Math.log(segm ? H / 2 : 300)) + 1;
      const x = Math.round(rng() * (W - w) * 10) / 10;
      const y = Math.round(rng() * (H - h) * 10) / 10;
      const c = many ? fpCat : pick(rng, catIds);
      dets.push(
        makeDet(
          rng,
          id,
          c,
          x,
          y,
          Math.round(w * 10) / 10,
          Math.round(h * 10) / 10,
          score(),
          segm,
          withSegDets,
          W,
          H,
        ),
      );
    }
  }
  // shuffle the detections a little so file order differs from image order
  for (let i = dets.length - 1; i > 0; i--) {
    if (rng() < 0.5) continue;
    const j = Math.floor(rng() * (i + 1));
    [dets[i], dets[j]] = [dets[j]!, dets[i]!];
  }
  const categories = catIds.map((id) => ({ id, name: `cat${id}`, supercategory: 'thing' }));
  if (rng() < 0.5) categories.reverse();
  return {
    name: `${iouType} seed ${seed}`,
    gt: { images, annotations, categories },
    dt: dets,
    iouType,
  };
}

function makeDet(
  rng: () => number,
  imageId: unknown,
  cat: number,
  x: number,
  y: number,
  w: number,
  h: number,
  score: number,
  segm: boolean,
  segOnly: boolean,
  W: number,
  H: number,
): Record<string, unknown> {
  if (!segm) return { image_id: imageId, category_id: cat, bbox: [x, y, w, h], score };
  const poly = polygonIn(rng, x, y, w, h);
  if (segOnly) {
    // segm results as compressed RLE without bbox: area comes from the mask
    return {
      image_id: imageId,
      category_id: cat,
      segmentation: { size: [H, W], counts: rleToString(rleFromPolygon(poly, H, W)) },
      score,
    };
  }
  // segm results with a bbox: pycocotools takes the area from the box
  return { image_id: imageId, category_id: cat, bbox: [x, y, w, h], segmentation: [poly], score };
}
