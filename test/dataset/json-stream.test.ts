import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { scanJsonObject } from '../../activities/kinds/dataset/json-stream';
import { loadCocoInstances } from '../../activities/kinds/dataset/index';
import { makeCoco } from './helpers';

// Strings with escaped quotes, backslashes (as in compressed RLE counts), brackets and commas inside
// strings, nested arrays, primitives and non-ASCII text.
const TRICKY = {
  info: { note: 'a "quoted" {brace} [bracket], comma \\ backslash', uni: 'café ✓' },
  images: [
    { id: 1, s: '\\"]}' },
    { id: 2, nested: [[1, [2, { x: ']' }]], []] },
  ],
  annotations: [
    { segmentation: { counts: 'PPY1\\1>0O1N0O\\', size: [4, 4] } },
    7,
    'str,ing',
    null,
    true,
    -1.5e-3,
  ],
  categories: [],
  other: [1, 2],
  n: 12.5,
  t: 'x',
};

describe('streaming JSON scanner', () => {
  let dir: string;
  let file: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-jsonstream-'));
    file = join(dir, 'tricky.json');
    await writeFile(file, JSON.stringify(TRICKY, null, 2));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('hands over every element and member intact, whatever the chunk boundaries', async () => {
    for (const chunkBytes of [1, 2, 3, 5, 7, 13, 64, 1 << 20]) {
      const got: Record<string, unknown> = {};
      const events: string[] = [];
      await scanJsonObject(
        file,
        {
          streamed: new Set(['images', 'annotations', 'categories']),
          onElement(key, raw, index) {
            const list = (got[key] ??= []) as unknown[];
            assert.equal(index, list.length);
            list.push(JSON.parse(raw.toString('utf8')));
          },
          onMember(key, raw) {
            got[key] = JSON.parse(raw.toString('utf8'));
            events.push(key);
          },
          onArrayStart(key) {
            got[key] = [];
            events.push(`[${key}`);
          },
          onArrayEnd(key) {
            events.push(`${key}]`);
          },
        },
        { chunkBytes },
      );
      assert.deepEqual(got, TRICKY, `chunkBytes ${chunkBytes}`);
      assert.deepEqual(events, [
        'info',
        '[images',
        'images]',
        '[annotations',
        'annotations]',
        '[categories',
        'categories]',
        'other',
        'n',
        't',
      ]);
    }
  });

  it('loads a pretty-printed COCO file through small chunks like the compact one', async () => {
    const doc = makeCoco(30);
    const compact = join(dir, 'compact.json');
    const pretty = join(dir, 'pretty.json');
    await writeFile(compact, JSON.stringify(doc));
    await writeFile(pretty, JSON.stringify(doc, null, '\t'));
    const a = await loadCocoInstances(compact);
    const b = await loadCocoInstances(pretty);
    assert.deepEqual(a, b);
    assert.equal(a.images.length, 30);
    assert.deepEqual(a.annotations[0], doc.annotations[0]);
  });

  it('rejects content after the closing brace', async () => {
    const bad = join(dir, 'trailing.json');
    await writeFile(bad, '{"images": []} x');
    await assert.rejects(
      scanJsonObject(bad, { streamed: new Set(), onElement: () => undefined, onMember: () => undefined }),
      { message: `${bad}: malformed JSON at byte 15: content after the closing brace` },
    );
  });
});

describe('box-only loading', () => {
  it('strips segmentations wherever they sit in the record, and loads the same boxes', async () => {
    const { withoutSegmentation } = await import('../../activities/kinds/dataset/coco');
    const cases = [
      '{"segmentation":[[1,2,3,4,5,6]],"area":1,"id":3}',
      '{"id":3, "segmentation" : {"counts":"a\\\\b\\"}","size":[1,2]} ,"area":1}',
      '{"id":3,"area":1,"segmentation":[[1,2,3,4,5,6]]}',
      '{"id":3,"area":1,"segmentation":null}',
      '{"id":3,"area":1,"note":"\\"segmentation\\""}',
    ];
    for (const raw of cases) {
      const full = JSON.parse(raw) as Record<string, unknown>;
      delete full.segmentation;
      assert.deepEqual(JSON.parse(withoutSegmentation(Buffer.from(raw)).toString()), full, raw);
    }
    const dir = await mkdtemp(join(tmpdir(), 'ablate-boxes-'));
    try {
      const file = join(dir, 'c.json');
      await writeFile(file, JSON.stringify(makeCoco(20), null, 1));
      const full = await loadCocoInstances(file);
      const boxes = await loadCocoInstances(file, { segmentation: false });
      assert.deepEqual(
        boxes.annotations,
        full.annotations.map(({ segmentation: _s, ...rest }) => rest),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
