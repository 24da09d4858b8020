/**
 * Conformance: ablate's COCO evaluation against PyPI pycocotools on many generated cases. Every statistic,
 * every precision/recall entry and the printed summary must be identical (the brief asks for 1e-9; ablate
 * reproduces pycocotools' floating-point order, so the comparison is exact).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { evaluateCoco, formatCocoSummary } from '../../activities/kinds/eval/coco';
import { decodeF64, generateCocoCase, runOracle, type CocoCase } from './helpers';

interface OracleResult {
  stats: number[];
  precision: string;
  recall: string;
  shape: number[];
  summary: string;
}

function specialCases(): CocoCase[] {
  const images = [
    { id: 1, width: 100, height: 100 },
    { id: 2, width: 100, height: 100 },
  ];
  const categories = [
    { id: 1, name: 'a' },
    { id: 2, name: 'b' },
  ];
  const ann = (id: number, image_id: number, category_id: number, bbox: number[], extra = {}) => ({
    id,
    image_id,
    category_id,
    bbox,
    area: bbox[2]! * bbox[3]!,
    iscrowd: 0,
    ...extra,
  });
  return [
    {
      name: 'single perfect detection (precision 1/(1+eps))',
      gt: { images, categories, annotations: [ann(1, 1, 1, [10, 10, 20, 20])] },
      dt: [{ image_id: 1, category_id: 1, bbox: [10, 10, 20, 20], score: 0.9 }],
      iouType: 'bbox',
    },
    {
      name: 'empty detection list',
      gt: { images, categories, annotations: [ann(1, 1, 1, [10, 10, 20, 20]), ann(2, 2, 2, [0, 0, 50, 50])] },
      dt: [],
      iouType: 'bbox',
    },
    {
      name: 'GT without annotations',
      gt: { images, categories, annotations: [] },
      dt: [{ image_id: 1, category_id: 1, bbox: [10, 10, 20, 20], score: 0.9 }],
      iouType: 'bbox',
    },
    {
      name: 'annotation id 0 and area exactly 1024',
      gt: {
        images,
        categories,
        annotations: [ann(0, 1, 1, [10, 10, 32, 32]), ann(5, 2, 1, [10, 10, 32, 32])],
      },
      dt: [
        { image_id: 1, category_id: 1, bbox: [10, 10, 32, 32], score: 0.5 },
        { image_id: 2, category_id: 1, bbox: [10, 10, 32, 32], score: 0.5 },
      ],
      iouType: 'bbox',
    },
    {
      name: 'ties go to the later GT; crowd re-matched; scores above 1',
      gt: {
        images,
        categories,
        annotations: [
          ann(1, 1, 1, [0, 0, 10, 10]),
          ann(2, 1, 1, [0, 0, 10, 10]),
          ann(3, 1, 1, [50, 50, 40, 40], { iscrowd: 1 }),
        ],
      },
      dt: [
        { image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], score: 3 },
        { image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], score: 3 },
        { image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], score: 3 },
        { image_id: 1, category_id: 1, bbox: [55, 55, 10, 10], score: 2 },
        { image_id: 1, category_id: 1, bbox: [60, 60, 10, 10], score: 2 },
      ],
      iouType: 'bbox',
    },
  ];
}

describe('COCO evaluation matches pycocotools', () => {
  let dir: string;
  const cases: CocoCase[] = [];
  let oracle: OracleResult[];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-coco-conf-'));
    for (let s = 1; s <= 60; s++) cases.push(generateCocoCase(s, 'bbox'));
    for (let s = 1; s <= 24; s++) cases.push(generateCocoCase(1000 + s, 'segm'));
    // box evaluation of mask results (boxes from toBbox, areas from the masks, when results carry no bbox)
    for (let s = 1; s <= 8; s++)
      cases.push({ ...generateCocoCase(1000 + s, 'segm'), iouType: 'bbox', name: `bbox of segm seed ${s}` });
    cases.push(...specialCases());
    const manifest = [];
    for (const [i, c] of cases.entries()) {
      const gt = join(dir, `gt-${i}.json`);
      const dt = join(dir, `dt-${i}.json`);
      await writeFile(gt, JSON.stringify(c.gt));
      await writeFile(dt, JSON.stringify(c.dt));
      manifest.push({ gt, dt, iouType: c.iouType });
    }
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
    oracle = runOracle('oracle_coco.py', ['--batch', join(dir, 'manifest.json')]) as OracleResult[];
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('covers the situations the spec lists', () => {
    let crowd = 0;
    let ties = 0;
    let over100 = 0;
    let imagesWithoutGt = 0;
    let imagesWithoutDets = 0;
    const areas = new Set<string>();
    for (const c of cases) {
      const anns = (c.gt.annotations ?? []) as { image_id: unknown; iscrowd: number; area: number }[];
      const imgs = c.gt.images as { id: unknown }[];
      crowd += anns.filter((a) => a.iscrowd).length;
      for (const a of anns) areas.add(a.area < 1024 ? 's' : a.area <= 9216 ? 'm' : 'l');
      imagesWithoutGt += imgs.filter((im) => !anns.some((a) => a.image_id === im.id)).length;
      imagesWithoutDets += imgs.filter((im) => !c.dt.some((d) => d.image_id === im.id)).length;
      const scores = c.dt.map((d) => d.score as number);
      ties += scores.length - new Set(scores).size;
      const per = new Map<string, number>();
      for (const d of c.dt) {
        const key = `${String(d.image_id)}/${String(d.category_id)}`;
        per.set(key, (per.get(key) ?? 0) + 1);
      }
      if ([...per.values()].some((n) => n > 100)) over100++;
    }
    assert.ok(crowd > 10 && ties > 100 && over100 >= 3, `crowd ${crowd}, ties ${ties}, over100 ${over100}`);
    assert.ok(imagesWithoutGt > 5 && imagesWithoutDets > 5);
    assert.deepEqual([...areas].sort(), ['l', 'm', 's']);
  });

  it('gives identical stats, precision, recall and summary text on every case', () => {
    assert.equal(oracle.length, cases.length);
    let compared = 0;
    for (const [i, c] of cases.entries()) {
      const ref = oracle[i]!;
      const ours = evaluateCoco(c.gt, c.dt, { iouType: c.iouType });
      assert.deepEqual(ours.stats, ref.stats, `${c.name}: stats`);
      const [T, R, K, A, M] = ref.shape;
      assert.deepEqual(
        [ours.shape.T, ours.shape.R, ours.shape.K, ours.shape.A, ours.shape.M],
        [T, R, K, A, M],
      );
      const p = decodeF64(ref.precision);
      const r = decodeF64(ref.recall);
      for (let j = 0; j < p.length; j++)
        if (ours.precision[j] !== p[j])
          assert.fail(`${c.name}: precision[${j}] = ${ours.precision[j]} but pycocotools has ${p[j]}`);
      for (let j = 0; j < r.length; j++)
        if (ours.recall[j] !== r[j])
          assert.fail(`${c.name}: recall[${j}] = ${ours.recall[j]} but pycocotools has ${r[j]}`);
      assert.equal(formatCocoSummary(ours.stats), ref.summary.trimEnd(), `${c.name}: summary`);
      compared++;
    }
    assert.equal(compared, cases.length);
  });

  it('reproduces the 1/(1+eps) precision of a single perfect detection', () => {
    const i = cases.findIndex((c) => c.name.startsWith('single perfect'));
    const ours = evaluateCoco(cases[i]!.gt, cases[i]!.dt);
    // precision[t=0, r=0, k=0, area all, maxDets 100]
    assert.equal(ours.precision[2], 0.9999999999999998);
    assert.equal(ours.recall[2], 1);
  });
});
