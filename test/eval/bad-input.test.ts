/**
 * Bad input to the evaluators: a clear InvalidInput error naming the place, or pycocotools' behaviour
 * where that is well defined (documented in README "Evaluation").
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { evaluateCoco, prepareCocoGroundTruth } from '../../activities/kinds/eval/coco';
import { evaluateCocoFiles } from '../../activities/kinds/eval/report';
import { readVocDetectionFiles, readVocDevkit } from '../../activities/kinds/eval/voc-devkit';
import { parseXml } from '../../activities/kinds/eval/xml';
import { AblateError } from '../../infra/errors';

const gtDoc = {
  images: [
    { id: 1, width: 100, height: 80 },
    { id: 2, width: 100, height: 80 },
  ],
  categories: [
    { id: 1, name: 'cat' },
    { id: 3, name: 'dog' },
  ],
  annotations: [
    { id: 10, image_id: 1, category_id: 1, bbox: [10, 10, 30, 30], area: 900, iscrowd: 0 },
    { id: 11, image_id: 2, category_id: 3, bbox: [0, 0, 50, 40], area: 2000, iscrowd: 0 },
  ],
};
const det = (extra: Record<string, unknown> = {}) => ({
  image_id: 1,
  category_id: 1,
  bbox: [10, 10, 30, 30],
  score: 0.9,
  ...extra,
});

/** Asserts an InvalidInput AblateError (non-retryable) whose message matches `re`. */
function rejects(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AblateError, `expected AblateError, got ${String(err)}`);
    assert.equal(err.type, 'InvalidInput');
    assert.equal(err.retryable, false);
    assert.match(err.message, re);
    return true;
  });
}

describe('COCO bad input', () => {
  it('refuses detections for unknown images, naming the result and the GT', () => {
    rejects(
      () =>
        evaluateCoco(prepareCocoGroundTruth(gtDoc, 'gt.json'), [det(), det({ image_id: 7 })], {
          detectionsSource: 'dets.json',
        }),
      /^dets\.json\[1\]\.image_id 7 is not an image of gt\.json \(2 images\)/,
    );
  });

  it('refuses unknown categories by default and drops them like pycocotools on request', () => {
    rejects(
      () => evaluateCoco(gtDoc, [det({ category_id: 2 })]),
      /detections\[0\]\.category_id 2 is not a category of ground truth \(ids \[1,3\]\); check the label mapping/,
    );
    const dropped = evaluateCoco(gtDoc, [det(), det({ category_id: 2 })], { unknownCategories: 'ignore' });
    assert.deepEqual(dropped.stats, evaluateCoco(gtDoc, [det()]).stats);
    assert.equal(dropped.numDetections, 1);
  });

  it('refuses malformed boxes: negative size, NaN, wrong length', () => {
    rejects(
      () => evaluateCoco(gtDoc, [det({ bbox: [1, 2, -3, 4] })]),
      /detections\[0\]\.bbox has a negative width or height \(\[1,2,-3,4\]\)/,
    );
    rejects(
      () => evaluateCoco(gtDoc, [det({ bbox: [1, 2, NaN, 4] })]),
      /detections\[0\]\.bbox must be \[x, y, width, height\] \(4 finite numbers\)/,
    );
    rejects(() => evaluateCoco(gtDoc, [det(), det({ bbox: [1, 2, 3] })]), /detections\[1\]\.bbox must be/);
  });

  it('refuses missing or non-numeric scores but keeps scores outside [0, 1] (only their order matters)', () => {
    rejects(
      () => evaluateCoco(gtDoc, [det({ score: undefined })]),
      /detections\[0\]\.score must be a finite number, got nothing/,
    );
    rejects(
      () => evaluateCoco(gtDoc, [det({ score: '0.5' })]),
      /detections\[0\]\.score must be a finite number, got "0\.5"/,
    );
    const scaled = evaluateCoco(gtDoc, [det({ score: 7 }), det({ bbox: [50, 50, 10, 10], score: -2 })]);
    const unit = evaluateCoco(gtDoc, [det({ score: 0.7 }), det({ bbox: [50, 50, 10, 10], score: 0.2 })]);
    assert.deepEqual(scaled.stats, unit.stats);
  });

  it('evaluates an empty detection list: AP 0 where GT exists, -1 where it does not', () => {
    const r = evaluateCoco(gtDoc, []);
    // large objects: none in the GT -> -1 (as pycocotools); the rest 0
    assert.deepEqual(r.stats, [0, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, -1]);
    assert.deepEqual(
      r.perCategory.map((c) => c.AP),
      [0, 0],
    );
  });

  it('evaluates GT without annotations: every statistic -1', () => {
    const r = evaluateCoco({ ...gtDoc, annotations: [] }, [det()]);
    assert.deepEqual(r.stats, Array(12).fill(-1));
    const r2 = evaluateCoco({ images: gtDoc.images, categories: gtDoc.categories }, []);
    assert.deepEqual(r2.stats, Array(12).fill(-1));
  });

  it('refuses GT with missing area, duplicate annotation ids or mixed id kinds', () => {
    rejects(
      () =>
        prepareCocoGroundTruth(
          { ...gtDoc, annotations: [{ ...gtDoc.annotations[0], area: undefined }] },
          'gt.json',
        ),
      /gt\.json: annotations\[0\]\.area must be a number \(the object's pixel area\), got nothing/,
    );
    rejects(
      () =>
        prepareCocoGroundTruth({
          ...gtDoc,
          annotations: [gtDoc.annotations[0], { ...gtDoc.annotations[1], id: 10 }],
        }),
      /annotations\[1\]\.id 10 repeats annotations\[0\]\.id/,
    );
    rejects(
      () => prepareCocoGroundTruth({ ...gtDoc, images: [{ id: 1 }, { id: 'b' }] }),
      /image ids mix numbers and strings/,
    );
    rejects(() => prepareCocoGroundTruth([]), /expected a COCO instances JSON object/);
  });

  it('refuses results that are not a list or have neither bbox nor segmentation', () => {
    rejects(() => evaluateCoco(gtDoc, { annotations: [] }), /expected a list of COCO results/);
    rejects(
      () => evaluateCoco(gtDoc, [{ image_id: 1, category_id: 1, score: 1, keypoints: [] }]),
      /has neither "bbox" nor "segmentation"/,
    );
  });

  it('refuses a mask whose size differs from its image', () => {
    const gt = {
      ...gtDoc,
      annotations: [{ ...gtDoc.annotations[0], segmentation: [[10, 10, 40, 10, 40, 40]] }],
    };
    rejects(
      () =>
        evaluateCoco(
          gt,
          [{ image_id: 1, category_id: 1, segmentation: { size: [10, 10], counts: '0d1' }, score: 1 }],
          { iouType: 'segm' },
        ),
      /detections\[0\]\.segmentation is a 10x10 mask but its image is 80x100/,
    );
  });

  it('names the file when a file is missing or is not JSON', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ablate-bad-'));
    try {
      await writeFile(join(dir, 'gt.json'), JSON.stringify(gtDoc));
      await writeFile(join(dir, 'bad.json'), '[{"image_id": 1,');
      await assert.rejects(evaluateCocoFiles(join(dir, 'gt.json'), join(dir, 'bad.json')), {
        message: `${join(dir, 'bad.json')}:1:17: malformed JSON (COCO results): unexpected end of file inside an object: expected a key in double quotes (truncated file?)`,
      });
      // JSON.parse would keep the second score silently.
      await writeFile(
        join(dir, 'dup.json'),
        '[\n {"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.9, "score": 0.1}\n]',
      );
      await assert.rejects(evaluateCocoFiles(join(dir, 'gt.json'), join(dir, 'dup.json')), {
        message: `${join(dir, 'dup.json')}:2:72: malformed JSON (COCO results): duplicate key "score" (first at 2:58)`,
      });
      await writeFile(
        join(dir, 'gt-missing-comma.json'),
        JSON.stringify(gtDoc, null, 1).replace(/},\n  {/, '}\n  {'),
      );
      await assert.rejects(
        evaluateCocoFiles(join(dir, 'gt-missing-comma.json'), join(dir, 'gt.json')),
        /gt-missing-comma\.json:\d+:3: malformed JSON \(COCO ground truth\): expected ',' or '\]' after an array element, found '\{'$/,
      );
      await assert.rejects(
        evaluateCocoFiles(join(dir, 'nope.json'), join(dir, 'bad.json')),
        (err: unknown) => {
          assert.ok(err instanceof AblateError && err.type === 'DatasetNotFound');
          assert.match(err.message, /cannot read COCO ground truth .*nope\.json: ENOENT/);
          return true;
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('VOC bad input', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-voc-bad-'));
    await mkdir(join(dir, 'VOC2007', 'Annotations'), { recursive: true });
    await mkdir(join(dir, 'VOC2007', 'ImageSets', 'Main'), { recursive: true });
    await mkdir(join(dir, 'dets'), { recursive: true });
    await writeFile(join(dir, 'VOC2007', 'ImageSets', 'Main', 'val.txt'), '000001\n000002\n');
    const obj = (name: string) =>
      `<object><name>${name}</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object>`;
    await writeFile(
      join(dir, 'VOC2007', 'Annotations', '000001.xml'),
      `<annotation>${obj('dog')}</annotation>`,
    );
    await writeFile(
      join(dir, 'VOC2007', 'Annotations', '000002.xml'),
      `<annotation>\n${obj('unicorn')}\n</annotation>`,
    );
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('lists the available image sets when the named one is missing', async () => {
    await assert.rejects(
      readVocDevkit(dir, 'test'),
      /image set "test" not found: no .*test\.txt \(available: val\)/,
    );
  });

  it('refuses objects of classes outside the evaluated list, naming the file', async () => {
    await assert.rejects(
      readVocDevkit(dir, 'val'),
      /000002\.xml: object class "unicorn" is not one of the 20 classes evaluated/,
    );
  });

  it('reports malformed XML with its line', async () => {
    await writeFile(
      join(dir, 'VOC2007', 'Annotations', '000002.xml'),
      '<annotation>\n<object>\n</annotation>',
    );
    await assert.rejects(
      readVocDevkit(dir, 'val'),
      /000002\.xml: malformed XML, line 3: closing tag <\/annotation> does not match <object>/,
    );
    assert.throws(() => parseXml('<a>&bogus;</a>'), /line 1: unknown entity &bogus;/);
    assert.equal(parseXml('<a x="1 &amp; 2"><![CDATA[<b>]]> &#65;&#x42;</a>').text, '<b> AB');
  });

  it('refuses malformed detection lines and detections of images outside the set', async () => {
    await writeFile(join(dir, 'VOC2007', 'Annotations', '000002.xml'), '<annotation/>');
    const gt = await readVocDevkit(dir, 'val', { classes: ['dog', 'cat'] });
    await assert.rejects(
      readVocDetectionFiles(join(dir, 'dets'), 'val', gt),
      /no detection files found; expected comp4_det_val_<class>\.txt/,
    );
    await writeFile(join(dir, 'dets', 'comp4_det_val_dog.txt'), '000001 0.9 1 2 30 40\n000001 0.8 1 2 30\n');
    await assert.rejects(
      readVocDetectionFiles(join(dir, 'dets'), 'val', gt),
      /comp4_det_val_dog\.txt:2: expected "<image id> <score> <x1> <y1> <x2> <y2>"/,
    );
    await writeFile(join(dir, 'dets', 'comp4_det_val_dog.txt'), '000009 0.9 1 2 30 40\n');
    await assert.rejects(
      readVocDetectionFiles(join(dir, 'dets'), 'val', gt),
      /comp4_det_val_dog\.txt:1: image "000009" is not in the evaluated image set/,
    );
  });
});
