import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { pathToFileURL } from 'node:url';

import { datasetSynth } from '../../activities/kinds/dataset/synth-kind';
import { getStepKind } from '../../activities/runtime/registry';
import { runStepLocally } from '../../activities/runtime/step-context';
import { main } from '../../infra/cli/main';
import { openStore } from '../../infra/store/index';
import type { ArtifactRef } from '../../workflows/plan-types';

/** Run the CLI with console output captured. */
async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = mock.method(console, 'log', (...a: unknown[]) => out.push(a.join(' ')));
  const error = mock.method(console, 'error', (...a: unknown[]) => err.push(a.join(' ')));
  const write = mock.method(process.stderr, 'write', () => true);
  try {
    const code = await main(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mock.restore();
    error.mock.restore();
    write.mock.restore();
  }
}

describe('dataset step kinds and `ablate data`', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-data-cli-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('registers dataset.synth and dataset.split', () => {
    assert.equal(getStepKind('dataset.synth')?.name, 'dataset.synth');
    assert.equal(getStepKind('dataset.split')?.name, 'dataset.split');
  });

  it('dataset.synth publishes images, train, val, dataset; the same params give the same digests', async () => {
    const store = await openStore(pathToFileURL(join(dir, 'store')).href);
    const params = {
      task: 'detection',
      format: 'coco',
      images: 6,
      valImages: 3,
      seed: 1,
      size: 32,
      classes: 4,
    } as const;
    const { outputs } = await runStepLocally(datasetSynth, params, { store, log: { info() {}, warn() {} } });
    for (const k of ['images', 'train', 'val', 'dataset', 'contactSheet']) assert.ok(outputs[k], k);
    assert.equal(outputs.classes, 4);
    const train = JSON.parse((await store.getBytes(outputs.train as ArtifactRef)).toString()) as {
      images: unknown[];
    };
    assert.equal(train.images.length, 6);
    const tree = JSON.parse((await store.getBytes(outputs.images as ArtifactRef)).toString()) as {
      entries: Array<{ path: string }>;
    };
    assert.equal(tree.entries.length, 9);
    assert.equal(tree.entries[0]!.path, '000000000001.jpg');
    const again = await runStepLocally(datasetSynth, params, { store, log: { info() {}, warn() {} } });
    assert.deepEqual(
      ['images', 'train', 'val', 'dataset'].map((k) => again.outputs[k]),
      ['images', 'train', 'val', 'dataset'].map((k) => outputs[k]),
    );
    await assert.rejects(runStepLocally(datasetSynth, { ...params, task: 'classification' }, { store }), {
      message: 'a classification set is written in imagenet format, not coco',
    });
  });

  it('`ablate data synth` writes the directory atomically and refuses to overwrite it', async () => {
    const out = join(dir, 'inet');
    const r = await cli([
      'data',
      'synth',
      '--format',
      'imagenet',
      '--images',
      '6',
      '--classes',
      '3',
      '--val-per-class',
      '1',
      '--size',
      '24',
      '--seed',
      '5',
      '--out',
      out,
    ]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual((await readdir(out)).sort(), ['contact-sheet.png', 'synsets.txt', 'train', 'val']);
    assert.equal((await readdir(dir)).filter((f) => f.includes('.part-')).length, 0);
    assert.equal((JSON.parse(r.out) as { images: { train: number } }).images.train, 6);
    const again = await cli([
      'data',
      'synth',
      '--format',
      'imagenet',
      '--images',
      '6',
      '--seed',
      '5',
      '--out',
      out,
    ]);
    assert.equal(again.code, 2);
    assert.match(again.err, /already exists \(pass --force to replace it\)/);
  });

  it('`ablate data split` is byte-deterministic and reports usage errors', async () => {
    const coco = join(dir, 'coco');
    assert.equal(
      (
        await cli([
          'data',
          'synth',
          '--format',
          'coco',
          '--images',
          '20',
          '--val-images',
          '2',
          '--size',
          '24',
          '--seed',
          '2',
          '--out',
          coco,
        ])
      ).code,
      0,
    );
    const ann = join(coco, 'annotations', 'instances_train.json');
    const a = await cli([
      'data',
      'split',
      '--annotations',
      ann,
      '--count',
      '8',
      '--seed',
      '3',
      '--out',
      join(dir, 'a.json'),
    ]);
    const b = await cli([
      'data',
      'split',
      '--annotations',
      ann,
      '--count',
      '8',
      '--seed',
      '3',
      '--out',
      join(dir, 'b.json'),
    ]);
    assert.equal(a.code + b.code, 0, a.err + b.err);
    assert.ok((await readFile(join(dir, 'a.json'))).equals(await readFile(join(dir, 'b.json'))));
    const both = await cli([
      'data',
      'split',
      '--annotations',
      ann,
      '--count',
      '8',
      '--fraction',
      '0.5',
      '--seed',
      '3',
      '--out',
      join(dir, 'c.json'),
    ]);
    assert.equal(both.code, 2);
    assert.match(both.err, /give --count or --fraction, not both/);
    const preset = await cli([
      'data',
      'split',
      '--annotations',
      ann,
      '--preset',
      'coco-1k',
      '--seed',
      '3',
      '--out',
      join(dir, 'd.json'),
    ]);
    assert.equal(preset.code, 1);
    assert.match(preset.err, /has 20 images; coco2017-train expects instances_train2017\.json with 118,287/);
    const check = await cli(['data', 'check', '--annotations', ann, '--images', join(coco, 'images')]);
    assert.equal(check.code, 0, check.err);
    assert.match(check.err, /decoded 20\/20 images/);
  });
});
