/**
 * The RLE mask API against pycocotools' `mask` module: polygon rasterisation (including degenerate and
 * out-of-image polygons), the 4-number box quirk, uncompressed RLE, the string codec, area, toBbox and IoU
 * (with crowd columns) must be identical.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  bboxIou,
  rleArea,
  rleDecode,
  rleEncode,
  rleFromString,
  rleIou,
  rleMerge,
  rleToBbox,
  rleToString,
  segmentationToRle,
  type Rle,
} from '../../activities/kinds/eval/mask';
import { createRng, decodeF64, runOracle } from './helpers';

interface MaskCase {
  h: number;
  w: number;
  segs: unknown[];
  crowd: number[];
  boxes: number[][];
}

interface MaskOracle {
  rles: string[];
  areas: number[];
  bboxes: number[][];
  iou: string;
  bboxIou: string;
}

function randomPolygon(rng: () => number, h: number, w: number): number[] {
  const n = 3 + Math.floor(rng() * 9);
  const cx = rng() * w;
  const cy = rng() * h;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const kind = rng();
    // mostly inside, sometimes outside the image, sometimes integers, sometimes a repeated point
    if (kind < 0.1 && out.length >= 2) out.push(out[out.length - 2]!, out[out.length - 1]!);
    else if (kind < 0.2) out.push(Math.round(rng() * w), Math.round(rng() * h));
    else if (kind < 0.28) out.push((rng() - 0.3) * w * 1.6, (rng() - 0.3) * h * 1.6);
    else out.push(cx + (rng() - 0.5) * w * 0.8, cy + (rng() - 0.5) * h * 0.8);
  }
  return out;
}

function cases(): MaskCase[] {
  const rng = createRng(77);
  const out: MaskCase[] = [];
  for (let c = 0; c < 30; c++) {
    const h = 8 + Math.floor(rng() * 70);
    const w = 8 + Math.floor(rng() * 70);
    const segs: unknown[] = [];
    const n = 2 + Math.floor(rng() * 6);
    for (let i = 0; i < n; i++) {
      const k = rng();
      if (k < 0.55) segs.push([randomPolygon(rng, h, w)]);
      else if (k < 0.7) segs.push([randomPolygon(rng, h, w), randomPolygon(rng, h, w)]);
      // a later 4-number "polygon" is rasterised as a 2-point polygon, as pycocotools does
      else if (k < 0.8) segs.push([randomPolygon(rng, h, w), [rng() * w, rng() * h, rng() * w, rng() * h]]);
      else {
        // uncompressed RLE with random runs summing to h*w
        const counts: number[] = [];
        let left = h * w;
        while (left > 0) {
          const r = Math.min(left, Math.floor(rng() * 30));
          counts.push(r);
          left -= r;
        }
        segs.push({ size: [h, w], counts });
      }
    }
    const boxes = segs.map(() => [rng() * w, rng() * h, rng() * w * 0.7, rng() * h * 0.7]);
    out.push({ h, w, segs, crowd: segs.map(() => (rng() < 0.3 ? 1 : 0)), boxes });
  }
  return out;
}

describe('RLE mask API matches pycocotools', () => {
  let dir: string;
  const mc = cases();
  let oracle: MaskOracle[];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-mask-'));
    await writeFile(join(dir, 'm.json'), JSON.stringify(mc));
    oracle = runOracle('oracle_coco.py', ['--mask', join(dir, 'm.json')]) as MaskOracle[];
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('rasterises polygons and reads RLE to the same runs, areas and boxes', () => {
    let n = 0;
    for (const [i, c] of mc.entries()) {
      for (const [j, seg] of c.segs.entries()) {
        const rle = segmentationToRle(seg, c.h, c.w);
        assert.equal(rleToString(rle), oracle[i]!.rles[j], `case ${i} seg ${j}`);
        assert.equal(rleArea(rle), oracle[i]!.areas[j]);
        assert.deepEqual(rleToBbox(rle), oracle[i]!.bboxes[j]);
        n++;
      }
    }
    assert.ok(n > 100);
  });

  it('gives the same mask and box IoU matrices, crowd columns included', () => {
    for (const [i, c] of mc.entries()) {
      const rles = c.segs.map((s) => segmentationToRle(s, c.h, c.w));
      assert.deepEqual(
        Array.from(rleIou(rles, rles, c.crowd)),
        Array.from(decodeF64(oracle[i]!.iou)),
        `case ${i}`,
      );
      const flat = c.boxes.flat();
      assert.deepEqual(Array.from(bboxIou(flat, flat, c.crowd)), Array.from(decodeF64(oracle[i]!.bboxIou)));
    }
  });

  it('round-trips masks and large counts through the string codec', () => {
    const rng = createRng(5);
    for (let k = 0; k < 50; k++) {
      const h = 1 + Math.floor(rng() * 40);
      const w = 1 + Math.floor(rng() * 40);
      const mask = Uint8Array.from({ length: h * w }, () => (rng() < 0.4 ? 1 : 0));
      const rle = rleEncode(mask, h, w);
      assert.deepEqual(rleDecode(rleFromString(rleToString(rle), h, w)), mask);
    }
    const big: Rle = { h: 70000, w: 60000, counts: Uint32Array.from([4000000000, 3, 200000000, 1]) };
    assert.deepEqual(rleFromString(rleToString(big), big.h, big.w).counts, big.counts);
    const a = rleEncode([0, 1, 1, 0], 2, 2);
    const b = rleEncode([1, 1, 0, 0], 2, 2);
    assert.deepEqual(rleDecode(rleMerge([a, b])), Uint8Array.from([1, 1, 1, 0]));
    assert.deepEqual(rleDecode(rleMerge([a, b], true)), Uint8Array.from([0, 1, 0, 0]));
  });

  it('refuses malformed RLE', () => {
    assert.throws(() => rleFromString('0a~', 4, 4), /character "~" at 2/);
    assert.throws(() => rleDecode({ h: 2, w: 2, counts: Uint32Array.from([3, 3]) }), /Invalid RLE/);
    assert.throws(
      () => segmentationToRle({ size: [4], counts: 'abc' }, 4, 4),
      /size must be \[height, width\]/,
    );
    assert.throws(() => segmentationToRle([], 4, 4), /empty polygon list/);
    assert.throws(
      () => segmentationToRle([[1, 2, 3, 4]], 4, 4),
      /\[0\] has 4 numbers; a polygon needs at least 3 points/,
    );
    assert.throws(
      () => segmentationToRle([[1, 2, 3, 4, 5, 6]], undefined, undefined),
      /no numeric height\/width/,
    );
  });
});
