import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { letterboxGeometry, mapBox, readImageRgb } from '../../activities/kinds/dataset/index';

/** RGB of pixel (x, y) of a decoded image, in 0..255. */
const px = (img: { data: Float32Array; width: number }, x: number, y: number): number[] =>
  [0, 1, 2].map((c) => Math.round(img.data[(y * img.width + x) * 3 + c]! * 255));

describe('image decoding', () => {
  let dir: string;
  let png: string;
  before(async () => {
    const { default: sharp } = await import('sharp');
    dir = await mkdtemp(join(tmpdir(), 'ablate-images-'));
    // 40x20: left half red, right half blue, one green pixel at (5, 15).
    const raw = Buffer.alloc(40 * 20 * 3);
    for (let y = 0; y < 20; y++)
      for (let x = 0; x < 40; x++) raw.set(x < 20 ? [255, 0, 0] : [0, 0, 255], (y * 40 + x) * 3);
    raw.set([0, 255, 0], (15 * 40 + 5) * 3);
    png = join(dir, 'two-tone.png');
    await sharp(raw, { raw: { width: 40, height: 20, channels: 3 } })
      .png()
      .toFile(png);
    await sharp(Buffer.alloc(8 * 6, 128), { raw: { width: 8, height: 6, channels: 1 } })
      .png()
      .toFile(join(dir, 'grey.png'));
    await sharp({
      create: { width: 8, height: 6, channels: 4, background: { r: 10, g: 20, b: 30, alpha: 0.5 } },
    })
      .png()
      .toFile(join(dir, 'alpha.png'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('decodes exactly at the source size, HWC RGB in 0..1', async () => {
    const img = await readImageRgb(png);
    assert.deepEqual([img.width, img.height, img.data.length], [40, 20, 40 * 20 * 3]);
    assert.deepEqual(px(img, 0, 0), [255, 0, 0]);
    assert.deepEqual(px(img, 39, 19), [0, 0, 255]);
    assert.deepEqual(px(img, 5, 15), [0, 255, 0]);
    assert.equal(img.data[0], 1);
  });

  it('letterboxes: keeps the aspect ratio, centres, pads with the fill colour', async () => {
    const img = await readImageRgb(png, { size: 20 });
    assert.deepEqual(
      [img.width, img.height, img.scaleX, img.scaleY, img.padX, img.padY],
      [20, 20, 0.5, 0.5, 0, 5],
    );
    assert.deepEqual(px(img, 10, 0), [128, 128, 128], 'top padding');
    assert.deepEqual(px(img, 10, 19), [128, 128, 128], 'bottom padding');
    assert.deepEqual(px(img, 2, 8), [255, 0, 0]);
    assert.deepEqual(px(img, 17, 8), [0, 0, 255]);
    assert.deepEqual(mapBox([20, 0, 20, 20], img), [10, 5, 10, 10]);
    const black = await readImageRgb(png, { size: 20, fill: [0, 0, 0] });
    assert.deepEqual(px(black, 10, 0), [0, 0, 0]);
  });

  it('flips horizontally before resizing, and mapBox follows', async () => {
    const img = await readImageRgb(png, { size: 20, flip: true });
    assert.deepEqual(px(img, 2, 8), [0, 0, 255]);
    assert.deepEqual(px(img, 17, 8), [255, 0, 0]);
    // The red half [0, 0, 20, 20] lands on the right after flipping.
    assert.deepEqual(mapBox([0, 0, 20, 20], img), [10, 5, 10, 10]);
    const full = await readImageRgb(png, { flip: true });
    assert.deepEqual(px(full, 34, 15), [0, 255, 0]);
  });

  it('stretches without letterbox', async () => {
    const img = await readImageRgb(png, { size: 16, letterbox: false });
    assert.deepEqual(
      [img.width, img.height, img.scaleX, img.scaleY, img.padX, img.padY],
      [16, 16, 0.4, 0.8, 0, 0],
    );
    assert.deepEqual(px(img, 1, 1), [255, 0, 0]);
    assert.deepEqual(mapBox([20, 0, 20, 20], img), [8, 0, 8, 16]);
  });

  it('turns greyscale and alpha images into 3-channel RGB', async () => {
    const grey = await readImageRgb(join(dir, 'grey.png'), { size: 8 });
    assert.equal(grey.data.length, 8 * 8 * 3);
    assert.deepEqual(px(grey, 4, 4), [128, 128, 128]);
    const alpha = await readImageRgb(join(dir, 'alpha.png'));
    assert.equal(alpha.data.length, 8 * 6 * 3);
  });

  it('computes letterbox geometry for portrait and landscape sources', () => {
    assert.deepEqual(letterboxGeometry(640, 480, 64), {
      width: 64,
      height: 48,
      padX: 0,
      padY: 8,
      scaleX: 0.1,
      scaleY: 0.1,
    });
    assert.deepEqual(letterboxGeometry(333, 500, 100), {
      width: 67,
      height: 100,
      padX: 16,
      padY: 0,
      scaleX: 67 / 333,
      scaleY: 0.2,
    });
  });
});
