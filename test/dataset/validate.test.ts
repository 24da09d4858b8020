import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  checkImageFiles,
  generateVocDetection,
  listImagenetFolder,
  loadCocoInstances,
  loadVocDevkit,
  readImageBatch,
  readImageRgb,
} from '../../activities/kinds/dataset/index';
import { makeCoco } from './helpers';

describe('validation of bad inputs', () => {
  let dir: string;
  let n = 0;
  const cocoFile = async (mutate: (doc: ReturnType<typeof makeCoco>) => void): Promise<string> => {
    const doc = makeCoco(6);
    mutate(doc);
    const file = join(dir, `bad-${n++}.json`);
    await writeFile(file, JSON.stringify(doc));
    return file;
  };
  const rejectsWith = async (file: string, lines: string[], type = 'InvalidInput'): Promise<void> => {
    const noun = lines.length === 1 ? 'problem' : 'problems';
    await assert.rejects(loadCocoInstances(file), {
      name: 'AblateError',
      type,
      message: `${file}: ${lines.length} ${noun}:\n${lines.map((l) => `  ${l}`).join('\n')}`,
    });
  };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-validate-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('COCO: an annotation referencing a missing image', async () => {
    const file = await cocoFile((d) => (d.annotations[0]!.image_id = 7));
    await rejectsWith(file, ['/annotations/0 (id 1000): image_id 7 is not in /images']);
  });

  it('COCO: a bbox outside its image (beyond the 1 px tolerance)', async () => {
    const file = await cocoFile((d) => {
      d.annotations[1]!.bbox = [60, 1, 5.5, 9]; // 65.5 > 64 + 1
      d.annotations[2]!.bbox = [-0.5, 1, 64.5, 9]; // within tolerance
    });
    await rejectsWith(file, ['/annotations/1 (id 1001): bbox [60,1,5.5,9] lies outside image 106 (64x48)']);
  });

  it('COCO: negative sizes', async () => {
    const file = await cocoFile((d) => {
      d.annotations[0]!.bbox = [1, 1, -3, 2];
      d.images[2]!.width = -64;
    });
    await rejectsWith(file, [
      '/images/2 (id 106): width must be a positive integer, got -64',
      '/annotations/0 (id 1000): bbox [1,1,-3,2] has a negative width',
    ]);
  });

  it('COCO: an unknown category id', async () => {
    const file = await cocoFile((d) => (d.annotations[3]!.category_id = 91));
    await rejectsWith(file, ['/annotations/3 (id 1003): category_id 91 is not in /categories']);
  });

  it('COCO: duplicate image, annotation and category ids', async () => {
    const file = await cocoFile((d) => {
      d.images[4]!.id = d.images[0]!.id; // image 4 has no annotations, so nothing dangles
      d.annotations[4]!.id = d.annotations[0]!.id;
      d.categories.push({ id: 1, name: 'again' });
    });
    await rejectsWith(file, [
      '/images/4: duplicate image id 100 (first at /images/0)',
      '/categories/5: duplicate category id 1 (first at /categories/0)',
      '/annotations/4 (id 1000): duplicate annotation id 1000 (first at /annotations/0)',
    ]);
  });

  it('COCO: lists at most 10 problems, then a count', async () => {
    const file = await cocoFile((d) => d.annotations.forEach((a) => (a.bbox = [1, 1, -1, -1])));
    await assert.rejects(loadCocoInstances(file), (err: Error) => {
      const lines = err.message.split('\n');
      assert.equal(lines[0], `${file}: 14 problems:`);
      assert.equal(lines.length, 12);
      assert.equal(lines[11], '  ... and 4 more');
      return true;
    });
  });

  it('COCO: an empty split, a missing file, malformed and truncated JSON', async () => {
    const empty = await cocoFile((d) => {
      d.images = [];
      d.annotations = [];
    });
    await assert.rejects(loadCocoInstances(empty), {
      type: 'EmptyDataset',
      message: `${empty}: no images: the split is empty`,
    });
    const missing = join(dir, 'nope.json');
    await assert.rejects(loadCocoInstances(missing), {
      type: 'DatasetNotFound',
      message: `${missing}: annotation file not found`,
    });
    const truncated = join(dir, 'truncated.json');
    const text = JSON.stringify(makeCoco(6));
    await writeFile(truncated, text.slice(0, 300));
    await assert.rejects(loadCocoInstances(truncated), {
      message: `${truncated}:1:301: malformed JSON: unexpected end of file inside an object: expected a key in double quotes (truncated file?)`,
    });
    const notObject = join(dir, 'array.json');
    await writeFile(notObject, '  [1, 2]');
    await assert.rejects(loadCocoInstances(notObject), {
      message: `${notObject}:1:3: malformed JSON: the top level must be an object, found '['`,
    });
    const badRecord = join(dir, 'bad-record.json');
    await writeFile(badRecord, text.replace('"file_name"', 'file_name'));
    await assert.rejects(loadCocoInstances(badRecord), {
      message: `${badRecord}:1:70: malformed JSON: expected a key in double quotes, found 'f'`,
    });
  });

  describe('images', () => {
    let good: string;
    before(async () => {
      const { default: sharp } = await import('sharp');
      good = join(dir, 'good.jpg');
      await sharp({ create: { width: 32, height: 24, channels: 3, background: '#3366cc' } })
        .jpeg()
        .toFile(good);
      const bytes = await readFile(good);
      await writeFile(join(dir, 'truncated.jpg'), bytes.subarray(0, Math.floor(bytes.length / 2)));
      await writeFile(join(dir, 'text.jpg'), 'this is not an image');
    });

    it('a truncated, a non-image and a missing file are CorruptImage errors naming the path', async () => {
      for (const [name, reason] of [
        ['truncated.jpg', /^cannot decode image .*truncated\.jpg: .+/],
        ['text.jpg', /^cannot decode image .*text\.jpg: not an image \(unsupported or unknown format\)$/],
        ['missing.jpg', /^cannot decode image .*missing\.jpg: file not found$/],
      ] as const) {
        await assert.rejects(
          readImageRgb(join(dir, name), { size: 16 }),
          (err: Error & { type?: string }) => {
            assert.equal(err.type, 'CorruptImage');
            assert.match(err.message, reason);
            assert.ok(err.message.includes(join(dir, name)));
            return true;
          },
        );
      }
    });

    it("policy 'fail' fails the batch; 'skip' leaves the image out, reports and warns", async () => {
      const items = [{ path: good }, { path: join(dir, 'truncated.jpg') }, { path: good, flip: true }];
      await assert.rejects(readImageBatch(items, { size: 16 }), { type: 'CorruptImage' });
      const warnings: string[] = [];
      const batch = await readImageBatch(items, {
        size: 16,
        onCorrupt: 'skip',
        warn: (m) => warnings.push(m),
      });
      assert.equal(batch.images.length, 2);
      assert.equal(batch.data.length, 2 * 16 * 16 * 3);
      assert.deepEqual(
        batch.images.map((im) => [im.index, im.flipped]),
        [
          [0, false],
          [2, true],
        ],
      );
      assert.equal(batch.skipped.length, 1);
      assert.equal(batch.skipped[0]!.index, 1);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /^skipping cannot decode image .*truncated\.jpg/);
    });

    it('checkImageFiles compares sizes with the annotations', async () => {
      await assert.rejects(checkImageFiles([{ path: good, width: 32, height: 20 }]), {
        type: 'CorruptImage',
        message: `cannot decode image ${good}: size 32x24 differs from the annotation's 32x20`,
      });
      const r = await checkImageFiles(
        [{ path: good, width: 32, height: 24 }, { path: join(dir, 'text.jpg') }],
        { onCorrupt: 'skip', warn: () => undefined },
      );
      assert.deepEqual([r.checked, r.skipped.map((s) => s.path)], [2, [join(dir, 'text.jpg')]]);
    });
  });

  describe('VOC', () => {
    let devkit: string;
    let ann: string;
    before(async () => {
      devkit = join(dir, 'voc');
      await generateVocDetection(devkit, { seed: 4, images: 6, valImages: 0, size: 32, classes: 3 });
      ann = join(devkit, 'VOCdevkit/VOC2012/Annotations');
    });
    const setFile = (): string => join(devkit, 'VOCdevkit/VOC2012/ImageSets/Main/train.txt');
    const firstObject = async (id: string): Promise<string> => {
      const xml = await readFile(join(ann, `${id}.xml`), 'utf8');
      return xml;
    };

    it('reports unknown classes, negative and out-of-image boxes, missing files and duplicates together', async () => {
      const xml1 = await firstObject('2012_000001');
      await writeFile(
        join(ann, '2012_000001.xml'),
        xml1.replace(/<name>[^<]+<\/name>/, '<name>unicorn</name>'),
      );
      const xml2 = await firstObject('2012_000002');
      await writeFile(join(ann, '2012_000002.xml'), xml2.replace(/<xmax>\d+<\/xmax>/, '<xmax>0</xmax>'));
      const xml3 = await firstObject('2012_000003');
      await writeFile(join(ann, '2012_000003.xml'), xml3.replace(/<ymax>\d+<\/ymax>/, '<ymax>40</ymax>'));
      await rm(join(devkit, 'VOCdevkit/VOC2012/JPEGImages/2012_000004.jpg'));
      await rm(join(ann, '2012_000005.xml'));
      const ids = await readFile(setFile(), 'utf8');
      await writeFile(setFile(), `${ids}2012_000006\n`);
      const known = ['solid_star', 'striped_circle', 'checkered_triangle'];
      await assert.rejects(loadVocDevkit(devkit, '2012', 'train', { classes: known }), (err: Error) => {
        const lines = err.message.split('\n');
        assert.equal(lines[0], `${setFile()}: 6 problems:`);
        assert.match(lines[1]!, /2012_000001\.xml: object 1: unknown category "unicorn"$/);
        assert.match(
          lines[2]!,
          /2012_000002\.xml: object 1 \(\w+\): bndbox \[\d+, \d+, 0, \d+\] has a negative size \(xmax < xmin or ymax < ymin\)$/,
        );
        assert.match(
          lines[3]!,
          /2012_000003\.xml: object 1 \(\w+\): bndbox \[\d+, \d+, \d+, 40\] lies outside the 32x32 image$/,
        );
        assert.match(
          lines[4]!,
          /^ {2}line 4: image 2012_000004 is missing: .*JPEGImages\/2012_000004\.jpg not found$/,
        );
        assert.match(
          lines[5]!,
          /^ {2}line 5: image 2012_000005 has no annotation file .*Annotations\/2012_000005\.xml$/,
        );
        assert.equal(lines[6], '  line 7: duplicate image id 2012_000006 (first on line 6)');
        return true;
      });
    });

    it('reports malformed XML with file and line, a missing devkit, and an empty image set', async () => {
      await writeFile(
        join(ann, '2012_000006.xml'),
        '<annotation>\n<size>\n<width>3</width>\n</annotation>\n',
      );
      await writeFile(setFile(), '2012_000006\n');
      await assert.rejects(loadVocDevkit(devkit, '2012', 'train'), {
        message: `${join(ann, '2012_000006.xml')}:4: malformed XML: </annotation> closes <size>`,
      });
      await writeFile(setFile(), '\n');
      await assert.rejects(loadVocDevkit(devkit, '2012', 'train'), {
        type: 'EmptyDataset',
        message: `${setFile()}: no images: the split is empty`,
      });
      await assert.rejects(loadVocDevkit(devkit, '2007', 'train'), { type: 'DatasetNotFound' });
    });
  });

  it('ImageNet: a missing folder and a folder without classes', async () => {
    await assert.rejects(listImagenetFolder(join(dir, 'none')), {
      type: 'DatasetNotFound',
      message: `${join(dir, 'none')}: classification folder not found`,
    });
    await mkdir(join(dir, 'inet-empty', 'train'), { recursive: true });
    await assert.rejects(listImagenetFolder(join(dir, 'inet-empty', 'train')), { type: 'EmptyDataset' });
  });
});
