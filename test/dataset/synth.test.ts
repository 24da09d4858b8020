import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  cocoFileName,
  cocoImageId,
  generateCocoDetection,
  generateImagenetClassification,
  generateVocDetection,
  listImagenetFolder,
  loadCocoInstances,
  loadVocDevkit,
  readImageRgb,
  renderClassificationImage,
  renderDetectionScene,
  type CocoAnnotation,
} from '../../activities/kinds/dataset/index';
import { cocoAnnotationOf, vocObjectOf } from '../../activities/kinds/dataset/synth/generate';
import { hashTree } from './helpers';

/** Mean absolute difference, in 8-bit levels, between decoded floats and rendered bytes. */
function meanAbsDiff(decoded: Float32Array, rendered: Buffer): number {
  let err = 0;
  for (let i = 0; i < decoded.length; i++) err += Math.abs(decoded[i]! * 255 - rendered[i]!);
  return err / decoded.length;
}

const OPTS = { seed: 11, images: 16, valImages: 6, size: 48, classes: 6 };
const SCENE = { size: 48, classes: 6 };

describe('dataset.synth generator', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-synth-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('writes COCO that the loader reads back exactly as the generator drew it', async () => {
    const out = join(dir, 'coco-a');
    const summary = await generateCocoDetection(out, OPTS, { contactSheet: join(dir, 'sheet-a.png') });
    assert.deepEqual(summary.images, { train: 16, val: 6 });
    for (const split of ['train', 'val'] as const) {
      const data = await loadCocoInstances(join(out, 'annotations', `instances_${split}.json`));
      const n = split === 'train' ? 16 : 6;
      const expectedImages = [];
      const expectedAnns: CocoAnnotation[] = [];
      for (let i = 0; i < n; i++) {
        const scene = renderDetectionScene(11, split, i, SCENE);
        const id = cocoImageId(split, i);
        expectedImages.push({ id, file_name: cocoFileName(id), width: 48, height: 48 });
        for (const [k, inst] of scene.instances.entries())
          expectedAnns.push(cocoAnnotationOf(inst, id, id * 100 + k) as unknown as CocoAnnotation);
      }
      assert.deepEqual(data.images, expectedImages);
      assert.deepEqual(data.annotations, expectedAnns);
      assert.deepEqual(
        data.categories.map((c) => c.name),
        [
          'solid_star',
          'striped_circle',
          'checkered_triangle',
          'dotted_square',
          'solid_cross',
          'ringed_hexagon',
        ],
      );
      assert.equal(summary.annotations[split], expectedAnns.length);
    }
    // The JPEG on disk is the rendered scene, up to JPEG loss.
    const img = await readImageRgb(join(out, 'images', cocoFileName(4)));
    const own = meanAbsDiff(img.data, renderDetectionScene(11, 'train', 3, SCENE).pixels);
    const other = meanAbsDiff(img.data, renderDetectionScene(11, 'train', 4, SCENE).pixels);
    assert.ok(own < 8 && other > 4 * own, `mean abs error ${own} (own scene) vs ${other} (another)`);
    const sheet = await readFile(join(dir, 'sheet-a.png'));
    assert.equal(sheet.subarray(1, 4).toString(), 'PNG');
  });

  it('is byte-identical for the same seed and differs for another seed', async () => {
    const b = join(dir, 'coco-b');
    const c = join(dir, 'coco-c');
    await generateCocoDetection(b, OPTS);
    await generateCocoDetection(c, { ...OPTS, seed: 12 });
    const ha = await hashTree(join(dir, 'coco-a'));
    const hb = await hashTree(b);
    const hc = await hashTree(c);
    assert.deepEqual([...hb], [...ha]);
    assert.equal(ha.size, 16 + 6 + 2);
    const differing = [...ha].filter(([f, h]) => hc.get(f) !== h).length;
    assert.equal(differing, ha.size, 'every file differs under another seed');
  });

  it('makes a smaller train set a prefix of a larger one, with the same val set', async () => {
    const small = join(dir, 'coco-small');
    await generateCocoDetection(small, { ...OPTS, images: 5 });
    const hs = await hashTree(small);
    const ha = await hashTree(join(dir, 'coco-a'));
    for (let id = 1; id <= 5; id++)
      assert.equal(hs.get(`images/${cocoFileName(id)}`), ha.get(`images/${cocoFileName(id)}`));
    assert.equal(hs.get('annotations/instances_val.json'), ha.get('annotations/instances_val.json'));
  });

  it('covers the scaled COCO area ranges, crowds and difficult objects at scale', () => {
    const counts = { small: 0, medium: 0, large: 0, crowd: 0, difficult: 0, truncated: 0, occluded: 0 };
    const k = (64 / 640) ** 2;
    for (let i = 0; i < 200; i++) {
      for (const inst of renderDetectionScene(5, 'train', i, { size: 64, classes: 12 }).instances) {
        if (inst.isCrowd) {
          counts.crowd++;
          assert.ok(inst.rle && inst.rle.counts.reduce((a, b) => a + b, 0) === 64 * 64);
          continue;
        }
        if (inst.area < 1024 * k) counts.small++;
        else if (inst.area < 9216 * k) counts.medium++;
        else counts.large++;
        if (inst.difficult) counts.difficult++;
        if (inst.truncated) counts.truncated++;
        if (inst.occluded) counts.occluded++;
        // The box is the tight box of the polygons.
        const xs = inst.polygons!.flatMap((p) => p.filter((_, j) => j % 2 === 0));
        assert.equal(inst.bbox[0], Math.min(...xs));
      }
    }
    for (const [name, n] of Object.entries(counts)) assert.ok(n > 0, `${name}: ${n}`);
    const total = counts.small + counts.medium + counts.large;
    assert.ok(counts.small / total > 0.08 && counts.large / total > 0.2, JSON.stringify(counts));
    assert.ok(counts.difficult / total < 0.2, `difficult stays "a few": ${JSON.stringify(counts)}`);
  });

  it('writes a VOC devkit that loadVocDevkit reads back exactly', async () => {
    const out = join(dir, 'voc');
    await generateVocDetection(out, { ...OPTS, year: '2007' });
    const names = [
      'solid_star',
      'striped_circle',
      'checkered_triangle',
      'dotted_square',
      'solid_cross',
      'ringed_hexagon',
    ];
    const train = await loadVocDevkit(out, '2007', 'train', { classes: names });
    assert.equal(train.images.length, 16);
    for (const [i, image] of train.images.entries()) {
      const scene = renderDetectionScene(11, 'train', i, SCENE);
      assert.equal(image.id, String(i + 1).padStart(6, '0'));
      assert.deepEqual(
        image.objects,
        scene.instances.map((inst) => ({ ...vocObjectOf(inst, names, 48, 48), pose: 'Unspecified' })),
      );
    }
    const trainval = await loadVocDevkit(join(out, 'VOCdevkit'), '2007', 'trainval');
    assert.equal(trainval.images.length, 22);
    const perClass = await readFile(
      join(out, 'VOCdevkit/VOC2007/ImageSets/Main/solid_star_train.txt'),
      'utf8',
    );
    assert.equal(perClass.trim().split('\n').length, 16);
    assert.match(perClass, /^000001 (-1| 1| 0)$/m);
  });

  it('writes ImageNet class folders that listImagenetFolder reads with the right labels', async () => {
    const out = join(dir, 'inet');
    const summary = await generateImagenetClassification(out, {
      seed: 3,
      images: 25,
      classes: 5,
      valPerClass: 2,
      size: 32,
    });
    assert.deepEqual(summary.images, { train: 25, val: 10 });
    const train = await listImagenetFolder(join(out, 'train'));
    assert.deepEqual(train.classes, ['n90000000', 'n90000001', 'n90000002', 'n90000003', 'n90000004']);
    assert.deepEqual(train.names, [
      'solid circle',
      'striped square',
      'checkered triangle',
      'dotted diamond',
      'gridded pentagon',
    ]);
    assert.equal(train.items.length, 25);
    assert.deepEqual(
      train.items.filter((it) => it.label === 2).map((it) => it.path.split('/').slice(-2).join('/')),
      [1, 2, 3, 4, 5].map((n) => `n90000002/n90000002_${n}.JPEG`),
    );
    const val = await listImagenetFolder(join(out, 'val'));
    assert.equal(val.items.length, 10);
    const img = await readImageRgb(train.items[0]!.path);
    const own = meanAbsDiff(img.data, renderClassificationImage(3, 'train', 0, 0, 32));
    const other = meanAbsDiff(img.data, renderClassificationImage(3, 'train', 1, 0, 32));
    assert.ok(own < 8 && other > 4 * own, `mean abs error ${own} (own image) vs ${other} (another)`);
  });

  it('rejects impossible options with the field named', async () => {
    await assert.rejects(generateCocoDetection(join(dir, 'bad'), { ...OPTS, classes: 21 }), {
      message: 'classes must be an integer in 1..20, got 21',
    });
    await assert.rejects(
      generateImagenetClassification(join(dir, 'bad2'), { seed: 1, images: 3, classes: 5 }),
      {
        message: 'images must be an integer >= classes (5) so every class has an image, got 3',
      },
    );
  });
});
