/**
 * The `eval.coco` / `eval.voc` step kinds run through runStepLocally against a real store, and the
 * `ablate eval coco|voc` command as a user runs it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

import { evaluateCoco, formatCocoSummary } from '../../activities/kinds/eval/coco';
import { evalCoco, evalVoc } from '../../activities/kinds/eval/kinds';
import { getStepKind } from '../../activities/runtime/registry';
import { runStepLocally } from '../../activities/runtime/step-context';
import { AblateError } from '../../infra/errors';
import { openStore, type ArtifactStore } from '../../infra/store/index';
import { isArtifactRef, type ArtifactRef } from '../../workflows/plan-types';
import { generateCocoCase } from './helpers';

const root = join(import.meta.dirname, '..', '..');
const quiet = { info: () => undefined, warn: () => undefined };

function ablate(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const res = spawnSync(process.execPath, [join(root, 'bin', 'ablate.mjs'), ...args], { encoding: 'utf8' });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('eval step kinds and CLI', () => {
  let dir: string;
  let store: ArtifactStore;
  const c = generateCocoCase(42, 'bbox');
  let gtRef: ArtifactRef;
  let dtRef: ArtifactRef;
  const voc = { root: '', dets: '' };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-eval-kinds-'));
    store = await openStore(pathToFileURL(join(dir, 'store')).href);
    await writeFile(join(dir, 'gt.json'), JSON.stringify(c.gt));
    await writeFile(join(dir, 'dt.json'), JSON.stringify(c.dt));
    gtRef = await store.putFile(join(dir, 'gt.json'), { mediaType: 'application/json' });
    dtRef = await store.putFile(join(dir, 'dt.json'), { mediaType: 'application/json' });
    // a tiny devkit tree: two dogs (one difficult), one cat; detections as devkit files
    voc.root = join(dir, 'VOCdevkit', 'VOC2007');
    voc.dets = join(dir, 'voc-dets');
    await mkdir(join(voc.root, 'Annotations'), { recursive: true });
    await mkdir(join(voc.root, 'ImageSets', 'Main'), { recursive: true });
    await mkdir(voc.dets, { recursive: true });
    const obj = (n: string, d: number, b: number[]) =>
      `<object><name>${n}</name><difficult>${d}</difficult><bndbox><xmin>${b[0]}</xmin><ymin>${b[1]}</ymin><xmax>${b[2]}</xmax><ymax>${b[3]}</ymax></bndbox></object>`;
    await writeFile(join(voc.root, 'ImageSets', 'Main', 'test.txt'), 'a\nb\n');
    await writeFile(
      join(voc.root, 'Annotations', 'a.xml'),
      `<annotation>${obj('dog', 0, [1, 1, 50, 50])}${obj('dog', 1, [60, 60, 90, 90])}</annotation>`,
    );
    await writeFile(
      join(voc.root, 'Annotations', 'b.xml'),
      `<annotation>${obj('cat', 0, [10, 10, 40, 40])}</annotation>`,
    );
    // dog: a hit, a detection on the difficult dog (ignored), a miss; cat: a duplicate after a hit
    await writeFile(
      join(voc.dets, 'comp4_det_test_dog.txt'),
      'a 0.9 1 1 50 50\na 0.8 60 60 90 90\nb 0.7 1 1 20 20\n',
    );
    await writeFile(join(voc.dets, 'comp4_det_test_cat.txt'), 'b 0.6 10 10 40 40\nb 0.5 11 11 40 40\n');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('registers both kinds', () => {
    assert.equal(getStepKind('eval.coco'), evalCoco);
    assert.equal(getStepKind('eval.voc'), evalVoc);
  });

  it('eval.coco outputs named stats, per-category AP and a full report artifact', async () => {
    const expected = evaluateCoco(c.gt, c.dt);
    const { outputs } = await runStepLocally(
      evalCoco,
      { gt: gtRef, detections: dtRef },
      { store, log: quiet },
    );
    const metrics = outputs.metrics as Record<string, unknown>;
    assert.equal(metrics.AP, expected.stats[0]);
    assert.equal(metrics.ARl, expected.stats[11]);
    assert.deepEqual(
      metrics.perCategory,
      Object.fromEntries(expected.perCategory.map((p) => [p.name, p.AP])),
    );
    assert.ok(isArtifactRef(outputs.report));
    const report = JSON.parse((await store.getBytes(outputs.report)).toString()) as {
      stats: number[];
      precision: { shape: number[]; data: number[] };
    };
    assert.deepEqual(report.stats, expected.stats);
    assert.deepEqual(report.precision.shape, [10, 101, expected.shape.K, 4, 3]);
    assert.deepEqual(report.precision.data, Array.from(expected.precision));
  });

  it('eval.coco fails permanently on bad detections', async () => {
    const bad = await store.putBytes(
      JSON.stringify([{ image_id: 424242, category_id: 1, bbox: [0, 0, 1, 1], score: 1 }]),
    );
    await assert.rejects(
      runStepLocally(evalCoco, { gt: gtRef, detections: bad }, { store, log: quiet }),
      (err: unknown) =>
        err instanceof AblateError &&
        err.type === 'InvalidInput' &&
        !err.retryable &&
        /image_id 424242 is not an image/.test(err.message),
    );
  });

  it('eval.voc reads a devkit tree artifact and devkit detection files', async () => {
    const gt = await store.putTree(join(dir, 'VOCdevkit'));
    const dets = await store.putTree(voc.dets);
    const { outputs } = await runStepLocally(
      evalVoc,
      { gt, imageSet: 'test', detections: dets, classes: ['dog', 'cat'] },
      { store, log: quiet },
    );
    const m = outputs.metrics as {
      mAP07: number;
      mAP12: number;
      perClass: Record<string, { AP07: number; AP12: number; npos: number }>;
    };
    // dog: 1 positive, hit first -> AP 1 (the difficult match is ignored, the miss comes later)
    assert.equal(m.perClass.dog!.npos, 1);
    assert.equal(m.perClass.dog!.AP12, 1);
    assert.equal(m.perClass.cat!.AP12, 1);
    assert.equal(m.mAP12, 1);
    // the 11-point metric sums p/11 eleven times: not exactly 1
    assert.equal(m.mAP07, 1.0000000000000002);
    await assert.rejects(
      runStepLocally(evalVoc, { gt, detections: dets }, { store, log: quiet }),
      /`imageSet` is required when `gt` is a VOC devkit tree/,
    );
  });

  it('ablate eval coco prints pycocotools-format lines, JSON, and writes a report', async () => {
    const expected = evaluateCoco(c.gt, c.dt);
    const human = ablate(['eval', 'coco', '--gt', join(dir, 'gt.json'), '--dt', join(dir, 'dt.json')]);
    assert.equal(human.status, 0, human.stderr);
    assert.ok(human.stdout.includes(formatCocoSummary(expected.stats)));
    assert.match(human.stdout, /category\s+id\s+AP\s+AP50\s+AP75/);
    const report = join(dir, 'report.json');
    const js = ablate([
      'eval',
      'coco',
      '--gt',
      join(dir, 'gt.json'),
      '--dt',
      join(dir, 'dt.json'),
      '--json',
      '--report',
      report,
    ]);
    assert.equal(js.status, 0, js.stderr);
    const out = JSON.parse(js.stdout) as {
      stats: number[];
      perCategory: Record<string, { AP: number }>;
      metrics: Record<string, number>;
    };
    assert.deepEqual(out.stats, expected.stats);
    assert.equal(out.metrics.AP50, expected.stats[1]);
    assert.equal(Object.keys(out.perCategory).length, expected.perCategory.length);
    const full = JSON.parse(await readFile(report, 'utf8')) as { recall: { data: number[] } };
    assert.deepEqual(full.recall.data, Array.from(expected.recall));
  });

  it('ablate eval voc prints a table and JSON; bad flags and bad input exit non-zero with a message', () => {
    const human = ablate([
      'eval',
      'voc',
      '--gt',
      join(dir, 'VOCdevkit'),
      '--dt',
      voc.dets,
      '--classes',
      'dog,cat',
    ]);
    assert.equal(human.status, 0, human.stderr);
    assert.match(human.stdout, /mAP \(VOC2010\+ area\): {2}1\.0000/);
    const js = ablate([
      'eval',
      'voc',
      '--gt',
      join(dir, 'VOCdevkit'),
      '--dt',
      voc.dets,
      '--classes',
      'dog,cat',
      '--metric',
      'voc07',
      '--json',
    ]);
    const out = JSON.parse(js.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(out), ['iouThreshold', 'metric', 'mAP07', 'perClass']);
    const usage = ablate(['eval', 'coco', '--gt', join(dir, 'gt.json')]);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /ablate eval: --dt is required/);
    const badIn = ablate([
      'eval',
      'voc',
      '--gt',
      join(dir, 'VOCdevkit'),
      '--dt',
      voc.dets,
      '--image-set',
      'val',
    ]);
    assert.equal(badIn.status, 1);
    assert.match(
      badIn.stderr,
      /^ablate eval: InvalidInput: image set "val" not found: .*\(available: test\)/,
    );
  });
});
