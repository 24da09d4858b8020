import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { datasetImport } from '../../activities/kinds/dataset/import-kind';
import { generateVocDetection } from '../../activities/kinds/dataset/synth/generate';
import { datasetVoc2Coco } from '../../activities/kinds/dataset/voc2coco-kind';
import { runStepLocally } from '../../activities/runtime/step-context';
import { openStore, type ArtifactStore } from '../../infra/store/index';
import { isArtifactRef, type ArtifactRef } from '../../workflows/plan-types';

describe('dataset.import and dataset.voc2coco', () => {
  let dir: string;
  let store: ArtifactStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-import-'));
    store = await openStore(pathToFileURL(join(dir, 'store')).href);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('imports a directory as a tree and a file as a blob, and is never served from the cache', async () => {
    const src = join(dir, 'src');
    await mkdir(join(src, 'a'), { recursive: true });
    await writeFile(join(src, 'a', 'x.txt'), 'x');
    await writeFile(join(src, 'y.json'), '{"y":1}');
    const tree = await runStepLocally(datasetImport, { path: src, expect: 'directory' }, { store });
    assert.deepEqual([tree.outputs.files, tree.outputs.bytes], [2, 8]);
    const file = await runStepLocally(
      datasetImport,
      { path: pathToFileURL(join(src, 'y.json')).href },
      { store },
    );
    assert.equal((await store.getBytes(file.outputs.data as ArtifactRef)).toString(), '{"y":1}');
    assert.equal(datasetImport.cacheable, false);
  });

  it('refuses a missing path, a file where a directory is expected, and an empty directory', async () => {
    await assert.rejects(
      runStepLocally(datasetImport, { path: join(dir, 'nope') }, { store }),
      /dataset\.import: .*nope does not exist on this worker \(ENOENT\)/,
    );
    await assert.rejects(
      runStepLocally(datasetImport, { path: join(dir, 'src', 'y.json'), expect: 'directory' }, { store }),
      /is not a directory/,
    );
    await mkdir(join(dir, 'empty'));
    await assert.rejects(
      runStepLocally(datasetImport, { path: join(dir, 'empty') }, { store }),
      /holds no files/,
    );
  });

  it('converts VOC image sets into one COCO file whose file_names resolve inside the devkit', async () => {
    const out = join(dir, 'voc');
    await generateVocDetection(out, { images: 12, valImages: 6, seed: 5, size: 48, year: '2007' });
    const devkit = await store.put(join(out, 'VOCdevkit'));
    const { outputs } = await runStepLocally(
      datasetVoc2Coco,
      {
        devkit,
        sets: [
          { year: '2007', imageSet: 'train' },
          { year: '2007', imageSet: 'val' },
        ],
        classes: 'found',
      },
      { store },
    );
    assert.equal(outputs.images, 18);
    assert.ok(isArtifactRef(outputs.annotations));
    const coco = JSON.parse((await store.getBytes(outputs.annotations)).toString()) as {
      images: Array<{ id: number; file_name: string }>;
      annotations: Array<{ image_id: number; bbox: number[] }>;
      categories: unknown[];
    };
    assert.deepEqual(
      coco.images.map((i) => i.id),
      Array.from({ length: 18 }, (_, i) => i + 1),
    );
    for (const im of coco.images.slice(0, 3))
      assert.ok((await readFile(join(out, 'VOCdevkit', im.file_name))).length > 0);
    assert.equal(coco.annotations.length, outputs.objects);
    await assert.rejects(
      runStepLocally(datasetVoc2Coco, { devkit, sets: [{ year: '2007', imageSet: 'train' }] }, { store }),
      /unknown|class/i,
      'the 20 standard VOC classes do not include synthetic ones',
    );
  });
});
