import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

import {
  generateVocDetection,
  loadCocoInstances,
  readImageSet,
  writeCocoSubset,
  writeVocSubset,
} from '../../activities/kinds/dataset/index';
import { datasetSplit } from '../../activities/kinds/dataset/split-kind';
import { runStepLocally } from '../../activities/runtime/step-context';
import { AblateError } from '../../infra/errors';
import { openStore } from '../../infra/store/index';
import { makeCoco } from './helpers';

const idsOf = async (file: string): Promise<number[]> =>
  (await loadCocoInstances(file, { requireImages: false })).images.map((im) => im.id);

describe('dataset.split', () => {
  let dir: string;
  let source: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-split-'));
    source = join(dir, 'source.json');
    await writeFile(source, JSON.stringify(makeCoco()));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('selects exactly N images, their annotations, all categories, and covers every category', async () => {
    const out = join(dir, 'n10.json');
    const summary = await writeCocoSubset(source, out, { count: 10, seed: 1 });
    const sub = await loadCocoInstances(out);
    const src = await loadCocoInstances(source);
    assert.equal(sub.images.length, 10);
    assert.equal(summary.images, 10);
    assert.deepEqual(sub.categories, src.categories);
    const chosen = new Set(sub.images.map((im) => im.id));
    assert.deepEqual(
      sub.annotations,
      src.annotations.filter((a) => chosen.has(a.image_id)),
    );
    assert.deepEqual(summary.missingCategories, []);
    assert.equal(summary.perCategory.rare!.images, 1, 'the category with a single image is kept');
    // By chance alone, the one "rare" image would be in a 5-of-60 subset with p = 1/12 per seed.
    for (let seed = 1; seed <= 8; seed++) {
      const s = await writeCocoSubset(source, join(dir, 'n5.json'), { count: 5, seed });
      assert.deepEqual(s.missingCategories, [], `seed ${seed}`);
    }
    // Selected images keep their source order.
    const order = src.images.map((im) => im.id).filter((id) => chosen.has(id));
    assert.deepEqual(
      sub.images.map((im) => im.id),
      order,
    );
  });

  it('is byte-identical for the same inputs and seed, and differs for another seed', async () => {
    await writeCocoSubset(source, join(dir, 'a.json'), { count: 20, seed: 42 });
    await writeCocoSubset(source, join(dir, 'b.json'), { count: 20, seed: 42 });
    await writeCocoSubset(source, join(dir, 'c.json'), { count: 20, seed: 43 });
    const a = await readFile(join(dir, 'a.json'));
    assert.ok(a.equals(await readFile(join(dir, 'b.json'))));
    assert.notDeepEqual(await idsOf(join(dir, 'a.json')), await idsOf(join(dir, 'c.json')));
  });

  it('does not depend on the order of records in the source file', async () => {
    const doc = makeCoco();
    doc.images.reverse();
    doc.annotations.reverse();
    const shuffled = join(dir, 'reversed.json');
    await writeFile(shuffled, JSON.stringify(doc));
    await writeCocoSubset(shuffled, join(dir, 'r.json'), { count: 20, seed: 42 });
    const a = (await idsOf(join(dir, 'a.json'))).sort();
    assert.deepEqual((await idsOf(join(dir, 'r.json'))).sort(), a);
  });

  it('nests: --nested-in restricts to the parent, and same-seed subsets nest anyway', async () => {
    const p30 = join(dir, 'p30.json');
    await writeCocoSubset(source, p30, { count: 30, seed: 5 });
    const c10 = join(dir, 'c10.json');
    await writeCocoSubset(source, c10, { count: 10, seed: 5, nestedIn: p30 });
    const parent = new Set(await idsOf(p30));
    const child = await idsOf(c10);
    assert.equal(child.length, 10);
    assert.ok(child.every((id) => parent.has(id)));
    const c3 = join(dir, 'c3.json');
    await writeCocoSubset(source, c3, { count: 8, seed: 5, nestedIn: c10 });
    assert.ok((await idsOf(c3)).every((id) => child.includes(id)));
    const free = await idsOf(
      (await writeCocoSubset(source, join(dir, 'f10.json'), { count: 10, seed: 5 }), join(dir, 'f10.json')),
    );
    assert.ok(
      free.every((id) => parent.has(id)),
      'without --nested-in, 10 of seed 5 lies inside 30 of seed 5',
    );
  });

  it('takes fractions rounded to the nearest image', async () => {
    const s = await writeCocoSubset(source, join(dir, 'frac.json'), { fraction: 0.25, seed: 1 });
    assert.equal(s.images, 15);
  });

  it('keeps the source bytes of each selected record', async () => {
    const doc = makeCoco(8);
    const raw = JSON.stringify(doc, null, 1).replace('"fixture"', '"fixture", "extra": [1.50, "x\\"y"]');
    const file = join(dir, 'pretty.json');
    await writeFile(file, raw);
    const out = join(dir, 'pretty-all.json');
    await writeCocoSubset(file, out, { count: 8, seed: 1 });
    const written = await readFile(out, 'utf8');
    assert.ok(written.includes('"extra": [1.50, "x\\"y"]'));
    assert.deepEqual(JSON.parse(written), JSON.parse(raw));
  });

  it('refuses empty and impossible splits with a precise error', async () => {
    await assert.rejects(writeCocoSubset(source, join(dir, 'x.json'), { count: 0, seed: 1 }), {
      name: 'AblateError',
      type: 'EmptyDataset',
      message: `${source}: the split is empty (count 0)`,
    });
    await assert.rejects(writeCocoSubset(source, join(dir, 'x.json'), { fraction: 0.001, seed: 1 }), {
      message: `${source}: the split is empty (fraction 0.001 of 60 images rounds to 0)`,
    });
    await assert.rejects(writeCocoSubset(source, join(dir, 'x.json'), { count: 61, seed: 1 }), {
      message: `${source}: asked for 61 images but only 60 are available`,
    });
    const other = join(dir, 'other.json');
    const doc = makeCoco(3);
    doc.images[0]!.id = 99999;
    await writeFile(other, JSON.stringify({ ...doc, annotations: [] }));
    await assert.rejects(
      writeCocoSubset(source, join(dir, 'x.json'), { count: 1, seed: 1, nestedIn: other }),
      {
        message: `${other}: not a subset of ${source}: 1 of its images (e.g. id 99999) are not in it`,
      },
    );
    const empty = join(dir, 'empty.json');
    await writeFile(empty, JSON.stringify({ images: [], annotations: [], categories: [] }));
    await assert.rejects(writeCocoSubset(empty, join(dir, 'x.json'), { count: 1, seed: 1 }), {
      type: 'EmptyDataset',
      message: `${empty}: no images: the split is empty`,
    });
  });

  it('subsets a VOC image set deterministically', async () => {
    const devkit = join(dir, 'voc');
    await generateVocDetection(devkit, { seed: 2, images: 12, valImages: 2, size: 32, classes: 4 });
    const a = join(dir, 'voc-a.txt');
    const b = join(dir, 'voc-b.txt');
    const s = await writeVocSubset(devkit, '2012', 'train', a, { count: 5, seed: 9 });
    await writeVocSubset(devkit, '2012', 'train', b, { count: 5, seed: 9 });
    assert.equal(s.images, 5);
    assert.ok((await readFile(a)).equals(await readFile(b)));
    const ids = await readImageSet(a);
    assert.equal(ids.length, 5);
    const all = await readImageSet(join(devkit, 'VOCdevkit/VOC2012/ImageSets/Main/train.txt'));
    assert.deepEqual(
      ids,
      all.filter((id) => ids.includes(id)),
      'source order kept',
    );
  });

  it('runs as a step kind: artifact, image count and per-category counts; presets check the source', async () => {
    const store = await openStore(pathToFileURL(join(dir, 'store')).href);
    const ref = await store.putFile(source, { mediaType: 'application/json' });
    const { outputs } = await runStepLocally(
      datasetSplit,
      { annotations: ref, count: 12, seed: 3 },
      { store },
    );
    assert.equal(outputs.images, 12);
    const perCategory = outputs.perCategory as Record<string, { images: number; instances: number }>;
    assert.deepEqual(Object.keys(perCategory), ['c1', 'c2', 'c3', 'c4', 'rare']);
    const again = await runStepLocally(datasetSplit, { annotations: ref, count: 12, seed: 3 }, { store });
    assert.deepEqual(again.outputs.annotations, outputs.annotations);
    await assert.rejects(
      runStepLocally(datasetSplit, { annotations: ref, preset: 'coco-1k', seed: 3 }, { store }),
      (err: unknown) =>
        err instanceof AblateError &&
        err.message ===
          'annotations has 60 images; coco2017-train expects instances_train2017.json with 118,287 (for other data, use --count/--fraction instead of a preset)',
    );
  });
});
