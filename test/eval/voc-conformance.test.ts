/**
 * Conformance of the VOC evaluation: generated devkit trees and detection files are evaluated by ablate and
 * by an independent numpy port of voc_eval's rules (oracle_voc.py, reading the same files with
 * xml.etree). AP07, AP12, mAPs and the precision/recall curves must be identical. The same data in COCO form
 * must give the same numbers.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { evaluateVoc, type VocEvalResult } from '../../activities/kinds/eval/voc';
import {
  readVocDetectionFiles,
  readVocDevkit,
  VOC_CLASSES,
  vocDetectionsFromCoco,
  vocGroundTruthFromCoco,
} from '../../activities/kinds/eval/voc-devkit';
import { createRng, decodeF64, runOracle } from './helpers';

interface VocCase {
  root: string;
  detDir: string;
  imageSet: string;
  classes: string[];
  thr: number;
  coco: { gt: Record<string, unknown>; dt: Record<string, unknown>[] };
}

interface OracleClass {
  ap07: number | null;
  ap12: number | null;
  npos: number;
  rec: string;
  prec: string;
}

/** Write one random devkit tree + detection files; also return the same data as COCO JSON. */
async function writeVocCase(dir: string, seed: number): Promise<VocCase> {
  const rng = createRng(seed);
  const classes = VOC_CLASSES.slice(0, 3 + Math.floor(rng() * 6));
  const root = join(dir, `case-${seed}`, 'VOCdevkit', 'VOC2007');
  const detDir = join(dir, `case-${seed}`, 'results');
  await mkdir(join(root, 'Annotations'), { recursive: true });
  await mkdir(join(root, 'ImageSets', 'Main'), { recursive: true });
  await mkdir(detDir, { recursive: true });
  const imageSet = 'test';
  const nImages = 2 + Math.floor(rng() * 12);
  const names: string[] = [];
  const dets = new Map<string, string[]>(classes.map((c) => [c, []]));
  const cocoImages: Record<string, unknown>[] = [];
  const cocoAnns: Record<string, unknown>[] = [];
  const cocoDets: Record<string, unknown>[] = [];
  const decimals = rng() < 0.5;
  const coarse = rng() < 0.6;
  const score = () => (coarse ? Math.round(rng() * 20) / 20 : Math.round(rng() * 1000) / 1000);
  let annId = 1;
  for (let im = 0; im < nImages; im++) {
    const name = String(100 + im * 7).padStart(6, '0');
    names.push(name);
    const W = 200 + Math.floor(rng() * 300);
    const H = 200 + Math.floor(rng() * 300);
    cocoImages.push({ id: im + 1, file_name: `${name}.jpg`, width: W, height: H });
    const objs: string[] = [];
    const nObj = rng() < 0.15 ? 0 : 1 + Math.floor(rng() * 6);
    for (let o = 0; o < nObj; o++) {
      const c = Math.floor(rng() * (classes.length - 1));
      const cls = classes[c]!;
      const w = 5 + Math.floor(rng() * 150);
      const h = 5 + Math.floor(rng() * 150);
      const x1 = 1 + Math.floor(rng() * (W - w));
      const y1 = 1 + Math.floor(rng() * (H - h));
      const x2 = x1 + w;
      const y2 = y1 + h;
      const difficult = rng() < 0.15 ? 1 : 0;
      objs.push(
        `  <object>\n    <name>${cls}</name>\n    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n` +
          (rng() < 0.1 && !difficult ? '' : `    <difficult>${difficult}</difficult>\n`) +
          `    <bndbox>\n      <xmin>${x1}</xmin>\n      <ymin>${y1}</ymin>\n      <xmax>${x2}</xmax>\n      <ymax>${y2}</ymax>\n    </bndbox>\n  </object>`,
      );
      cocoAnns.push({
        id: annId++,
        image_id: im + 1,
        category_id: c + 1,
        bbox: [x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1],
        area: (x2 - x1 + 1) * (y2 - y1 + 1),
        iscrowd: 0,
        difficult,
      });
      // detections near the object: duplicates, jitter, sometimes the wrong class
      const nd = Math.floor(rng() * 3);
      for (let d = 0; d < nd; d++) {
        const j = (v: number, s: number) => v + (rng() - 0.5) * s * (d === 0 ? 0.2 : 0.6);
        addDet(
          rng() < 0.1 ? Math.floor(rng() * classes.length) : c,
          im,
          j(x1, w),
          j(y1, h),
          j(x2, w),
          j(y2, h),
        );
      }
    }
    for (let f = 0; f < Math.floor(rng() * 4); f++) {
      const x1 = 1 + rng() * (W - 60);
      const y1 = 1 + rng() * (H - 60);
      addDet(Math.floor(rng() * classes.length), im, x1, y1, x1 + 10 + rng() * 50, y1 + 10 + rng() * 50);
    }
    const xml =
      `<?xml version="1.0" encoding="utf-8"?>\n<!-- generated for ablate's tests -->\n<annotation verified="no">\n` +
      `  <folder>VOC2007</folder>\n  <filename>${name}.jpg</filename>\n  <source><database>The VOC2007 &amp; test</database></source>\n` +
      `  <size><width>${W}</width><height>${H}</height><depth>3</depth></size>\n  <segmented>0</segmented>\n${objs.join('\n')}\n</annotation>\n`;
    await writeFile(join(root, 'Annotations', `${name}.xml`), xml);
  }
  function addDet(c: number, im: number, x1: number, y1: number, x2: number, y2: number) {
    const r = (v: number) => (decimals ? Math.round(v * 10) / 10 : Math.round(v));
    const [a, b, cc, d] = [r(x1), r(y1), r(Math.max(x1, x2)), r(Math.max(y1, y2))];
    const s = score();
    dets
      .get(classes[c]!)!
      .push(`${names[im]} ${s.toFixed(3)} ${a.toFixed(1)} ${b.toFixed(1)} ${cc.toFixed(1)} ${d.toFixed(1)}`);
    cocoDets.push({
      image_id: im + 1,
      category_id: c + 1,
      bbox: [a - 1, b - 1, cc - a + 1, d - b + 1],
      score: Number(s.toFixed(3)),
    });
  }
  await writeFile(join(root, 'ImageSets', 'Main', `${imageSet}.txt`), names.join('\n') + '\n');
  const skipped = seed % 3 === 0 ? classes[1] : undefined;
  for (const [cls, lines] of dets) {
    // one class gets no file at all: no detections
    if (cls === skipped) continue;
    await writeFile(
      join(detDir, `comp4_det_${imageSet}_${cls}.txt`),
      lines.join('\n') + (lines.length ? '\n' : ''),
    );
  }
  return {
    root,
    detDir,
    imageSet,
    classes: [...classes],
    thr: pickThr(rng),
    coco: {
      gt: {
        images: cocoImages,
        annotations: cocoAnns,
        categories: classes.map((c, i) => ({ id: i + 1, name: c })),
      },
      dt: cocoDets.filter((d) => classes[(d.category_id as number) - 1] !== skipped),
    },
  };
}

function pickThr(rng: () => number): number {
  return [0.5, 0.5, 0.7, 0.3][Math.floor(rng() * 4)]!;
}

describe('VOC evaluation matches the devkit rules', () => {
  let dir: string;
  const cases: VocCase[] = [];
  let oracle: { perClass: Record<string, OracleClass>; mAP07: number | null; mAP12: number | null }[];
  const ours: VocEvalResult[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-voc-conf-'));
    for (let s = 1; s <= 40; s++) cases.push(await writeVocCase(dir, s));
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(cases.map(({ coco: _c, ...rest }) => rest)));
    oracle = runOracle('oracle_voc.py', [join(dir, 'manifest.json')]) as typeof oracle;
    for (const c of cases) {
      const gt = await readVocDevkit(join(c.root, '..', '..'), c.imageSet, { classes: c.classes });
      const dets = await readVocDetectionFiles(c.detDir, c.imageSet, gt);
      ours.push(evaluateVoc(gt, dets, { iouThreshold: c.thr }));
    }
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('gives identical AP07, AP12, mAP and curves from devkit files', () => {
    let classes = 0;
    let differ0712 = 0;
    let undefinedClasses = 0;
    for (const [i, c] of cases.entries()) {
      const ref = oracle[i]!;
      const res = ours[i]!;
      assert.equal(res.mAP07, ref.mAP07, `case ${i}: mAP07`);
      assert.equal(res.mAP12, ref.mAP12, `case ${i}: mAP12`);
      for (const [k, pc] of res.perClass.entries()) {
        const r = ref.perClass[pc.name]!;
        assert.equal(pc.AP07, r.ap07, `case ${i} ${pc.name}: AP07`);
        assert.equal(pc.AP12, r.ap12, `case ${i} ${pc.name}: AP12`);
        assert.equal(pc.npos, r.npos, `case ${i} ${pc.name}: npos`);
        if (r.npos > 0) assert.deepEqual(res.curves[k]!.recall, Array.from(decodeF64(r.rec)));
        assert.deepEqual(res.curves[k]!.precision, Array.from(decodeF64(r.prec)));
        if (pc.AP07 !== null && pc.AP07 !== pc.AP12) differ0712++;
        if (pc.AP07 === null) undefinedClasses++;
        classes++;
      }
      assert.ok(c.classes.length === res.perClass.length);
    }
    assert.ok(classes > 150, `${classes} classes compared`);
    assert.ok(differ0712 > 50, 'the 07 and 12 metrics differ on most classes');
    assert.ok(undefinedClasses >= 40, 'classes without GT are covered');
  });

  it('gives the same numbers when the same data comes as COCO JSON', () => {
    for (const [i, c] of cases.entries()) {
      const gt = vocGroundTruthFromCoco(c.coco.gt);
      const res = evaluateVoc(gt, vocDetectionsFromCoco(c.coco.dt, gt), { iouThreshold: c.thr });
      assert.deepEqual(
        res.perClass.map((p) => [p.AP07, p.AP12, p.npos]),
        ours[i]!.perClass.map((p) => [p.AP07, p.AP12, p.npos]),
        `case ${i}`,
      );
      assert.equal(res.mAP12, ours[i]!.mAP12);
    }
  });

  it('reads COCO results against a devkit tree (1-based class index) and devkit files against COCO GT', async () => {
    const c = cases[4]!;
    const devGt = await readVocDevkit(join(c.root, '..', '..'), c.imageSet, { classes: c.classes });
    // COCO results name images by devkit id and classes by 1-based index
    const names = devGt.images;
    const dt = c.coco.dt.map((d) => ({ ...d, image_id: names[(d.image_id as number) - 1] }));
    const a = evaluateVoc(devGt, vocDetectionsFromCoco(dt, devGt), { iouThreshold: c.thr });
    const cocoGt = vocGroundTruthFromCoco(c.coco.gt);
    const b = evaluateVoc(cocoGt, await readVocDetectionFiles(c.detDir, c.imageSet, cocoGt), {
      iouThreshold: c.thr,
    });
    assert.equal(a.mAP12, ours[4]!.mAP12);
    assert.equal(b.mAP12, ours[4]!.mAP12);
    assert.equal(b.mAP07, ours[4]!.mAP07);
  });
});
