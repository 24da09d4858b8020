import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { scanJsonObject } from '../../activities/kinds/dataset/json-stream';
import { JsonLexError, parseJsonBytes, positionInBytes } from '../../infra/json-lexer';
import { loadCocoInstances } from '../../activities/kinds/dataset/index';
import { makeCoco } from './helpers';

// Strings with escaped quotes, backslashes (as in compressed RLE counts), brackets and commas inside
// strings, nested arrays, primitives and non-ASCII text.
const TRICKY = {
  info: { note: 'a "quoted" {brace} [bracket], comma \\ backslash', uni: 'café ✓', emoji: '😀\u0000' },
  images: [
    { id: 1, s: '\\"]}' },
    { id: 2, nested: [[1, [2, { x: ']' }]], []] },
    { id: 3, file_name: 'ü😀.jpg', 'k:,}': '{[:,' },
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

  it('reads escaped text, surrogate pairs included, exactly as JSON.parse does, even 1 byte at a time', async () => {
    // Escapes written out by hand (JSON.stringify would emit most characters themselves).
    const text = String.raw`{"info": {"s": "\ud83d\ude00 \u00e9\n\t\"\\\/ \u0041"}, "images": [{"file_name": "\ud83d\ude00\u002Ejpg", "\u0069d": 1}, "a\"]b", -0.5e+2, 0, true, null], "\u0041nnotations": []}`;
    const f = join(dir, 'escapes.json');
    await writeFile(f, text);
    const expected = JSON.parse(text) as { info: { s: string }; images: unknown[] };
    assert.equal(expected.info.s, '😀 é\n\t"\\/ A');
    for (const chunkBytes of [1, 1 << 20]) {
      const images: unknown[] = [];
      const members: Record<string, unknown> = {};
      await scanJsonObject(
        f,
        {
          streamed: new Set(['images']),
          onElement: (_key, raw, _index, value) => {
            assert.deepEqual(value, JSON.parse(raw.toString('utf8')));
            images.push(value);
          },
          onMember: (key, raw) => {
            members[key] = JSON.parse(raw.toString('utf8'));
          },
        },
        { chunkBytes },
      );
      assert.deepEqual(images, expected.images, `chunkBytes ${chunkBytes}`);
      assert.deepEqual(members, { info: expected.info, Annotations: [] });
    }
  });
});

/**
 * Malformed inputs and the exact error each gives after the file name, the same whatever the chunk
 * size. Records inside the streamed arrays take the fast path (JSON.parse, then the strict lexer only
 * to name a fault), so the cases "in a record" cover that path and the others the lexer's own.
 */
const MALFORMED: Array<[name: string, text: string, error: string]> = [
  [
    'a missing comma between two annotations',
    '{"annotations": [\n  {"id": 1, "bbox": [0, 0, 2, 2]}\n  {"id": 2, "bbox": [1, 1, 2, 2]}\n]}',
    `3:3: malformed JSON: expected ',' or ']' after an array element, found '{'`,
  ],
  [
    'a missing comma in a record',
    '{"annotations": [{"id": 1 "bbox": [0, 0, 2, 2]}]}',
    `1:27: malformed JSON: expected ',' or '}' after an object member, found '"'`,
  ],
  [
    'a missing colon',
    '{"images" []}',
    `1:11: malformed JSON: expected ':' after the key "images", found '['`,
  ],
  [
    'truncation inside a string',
    '{"info": {"description": "COCO 20',
    `1:34: malformed JSON: unexpected end of file inside an object: expected the closing '"' of a string (truncated file?)`,
  ],
  [
    'truncation inside a record',
    '{"annotations": [{"id": 1}, {"id": 2, "bbox": [1, 2',
    `1:52: malformed JSON: unexpected end of file inside an array: expected ',' or ']' after an array element (truncated file?)`,
  ],
  [
    'truncation inside an array, after a comma',
    '{"annotations": [{"id": 1},',
    '1:28: malformed JSON: unexpected end of file inside an array: expected a value (truncated file?)',
  ],
  [
    'truncation after a key',
    '{"images": [], "annotations"',
    `1:29: malformed JSON: unexpected end of file inside an object: expected ':' after the key "annotations" (truncated file?)`,
  ],
  ['trailing garbage', '{"images": []}\nx', `2:1: malformed JSON: unexpected 'x' after the top-level value`],
  [
    'a second document',
    '{"images": []}{"images": []}',
    `1:15: malformed JSON: unexpected '{' after the top-level value`,
  ],
  [
    'duplicate top-level keys',
    '{"images": [],\n "annotations": [],\n "images": []}',
    '3:2: malformed JSON: duplicate key "images" (first at 1:2)',
  ],
  [
    'a duplicate key spelled with an escape',
    String.raw`{"info": 1, "\u0069nfo": 2}`,
    '1:13: malformed JSON: duplicate key "info" (first at 1:2)',
  ],
  [
    'a duplicate key in an annotation',
    '{"annotations": [\n{"id": 1, "bbox": [0, 0, 1, 1], "id": 2}\n]}',
    '2:33: malformed JSON: duplicate key "id" (first at 2:2)',
  ],
  [
    'a duplicate key nested in a record',
    '{"annotations": [{"id": 1, "segmentation": {"size": [1, 1], "size": [2, 2]}}]}',
    '1:61: malformed JSON: duplicate key "size" (first at 1:45)',
  ],
  [
    'an unterminated string',
    '{"info": "abc\n"}',
    String.raw`1:14: malformed JSON: unescaped control character U+000A in a string (escape it, e.g. \n; or is a closing quote missing?)`,
  ],
  [
    'a bad escape in a record',
    String.raw`{"images": [{"file_name": "a\x.jpg"}]}`,
    String.raw`1:29: malformed JSON: invalid escape '\x' in a string (valid: \" \\ \/ \b \f \n \r \t \uXXXX)`,
  ],
  [
    'a bad unicode escape',
    String.raw`{"info": "\u12G4"}`,
    String.raw`1:15: malformed JSON: invalid \u escape: expected 4 hex digits, found 'G'`,
  ],
  [
    'leading zeros in a record',
    '{"annotations": [{"id": 007}]}',
    '1:26: malformed JSON: a number may not have leading zeros',
  ],
  ['leading zeros', '{"n": 01}', '1:8: malformed JSON: a number may not have leading zeros'],
  [
    'a bare decimal point',
    '{"n": 1.}',
    `1:9: malformed JSON: expected a digit after the decimal point, found '}'`,
  ],
  ['a bare minus', '{"n": -}', `1:8: malformed JSON: expected a digit after '-', found '}'`],
  [
    'an empty exponent',
    '{"n": 1e}',
    `1:9: malformed JSON: expected a digit or sign in the exponent, found '}'`,
  ],
  [
    'a leading decimal point',
    '{"n": .5}',
    `1:7: malformed JSON: expected a value, found '.' (a number needs a digit before '.')`,
  ],
  [
    'a plus sign',
    '{"n": +1}',
    `1:7: malformed JSON: expected a value, found '+' (a number may not start with '+')`,
  ],
  [
    'a NaN literal in a record',
    '{"annotations": [{"area": NaN}]}',
    `1:27: malformed JSON: expected a value, found 'N' (NaN and Infinity are not JSON numbers)`,
  ],
  ['a bad literal', '{"n": nul}', `1:10: malformed JSON: invalid literal: expected 'null', found '}'`],
  [
    'single-quoted keys',
    `{'images': []}`,
    `1:2: malformed JSON: expected a key in double quotes or '}', found ''' (JSON strings use double quotes)`,
  ],
  [
    'a single-quoted string in a record',
    `{"images": [{"file_name": 'a.jpg'}]}`,
    `1:27: malformed JSON: expected a value, found ''' (JSON strings use double quotes)`,
  ],
  [
    'a line comment',
    '{"images": [] // none\n}',
    `1:15: malformed JSON: expected ',' or '}' after an object member, found '/' (JSON has no comments)`,
  ],
  [
    'a block comment',
    '/* c */ {"images": []}',
    `1:1: malformed JSON: expected a value, found '/' (JSON has no comments)`,
  ],
  [
    'a trailing comma in an array',
    '{"annotations": [1, 2,]}',
    `1:23: malformed JSON: expected a value, found ']' (a trailing comma?)`,
  ],
  [
    'a trailing comma in a record',
    '{"images": [{"id": 1,}]}',
    `1:22: malformed JSON: expected a key in double quotes, found '}' (a trailing comma?)`,
  ],
  [
    'mismatched brackets in a record',
    '{"images": [{"id": [1}]}',
    `1:22: malformed JSON: expected ',' or ']' after an array element, found '}'`,
  ],
  ['a top-level array', '[1]', `1:1: malformed JSON: the top level must be an object, found '['`],
  ['an empty file', '', '1:1: malformed JSON: empty file: expected a JSON value'],
  [
    'columns counted in characters, not bytes',
    '{"info": "café" "x"}',
    `1:17: malformed JSON: expected ',' or '}' after an object member, found '"'`,
  ],
];

describe('strict JSON: malformed input is refused with file, line and column', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-jsonbad-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const [name, text, error] of MALFORMED) {
    it(name, async () => {
      const file = join(dir, 'bad.json');
      await writeFile(file, text);
      for (const chunkBytes of [1, 3, 1 << 20]) {
        await assert.rejects(
          scanJsonObject(
            file,
            {
              streamed: new Set(['images', 'annotations', 'categories']),
              onElement: () => undefined,
              onMember: () => undefined,
            },
            { chunkBytes },
          ),
          { message: `${file}:${error}` },
          `chunkBytes ${chunkBytes}`,
        );
      }
    });
  }

  it('a COCO file with two annotations run together fails to load instead of losing them', async () => {
    const doc = makeCoco(4);
    const text = JSON.stringify(doc, null, 1);
    const second = JSON.stringify(doc.annotations[1], null, 1).replace(/\n/g, '\n  ');
    const at = text.indexOf(second);
    const comma = text.lastIndexOf(',', at);
    const file = join(dir, 'coco.json');
    await writeFile(file, text.slice(0, comma) + text.slice(comma + 1)); // drop the comma
    const line = text.slice(0, at).split('\n').length;
    await assert.rejects(loadCocoInstances(file), {
      message: `${file}:${line}:3: malformed JSON: expected ',' or ']' after an array element, found '{'`,
    });
  });

  it('names a UTF-8 byte order mark', async () => {
    const file = join(dir, 'bom.json');
    await writeFile(file, '\ufeff{"images": []}');
    await assert.rejects(
      scanJsonObject(file, { streamed: new Set(), onElement: () => undefined, onMember: () => undefined }),
      {
        message: `${file}:1:1: malformed JSON: expected a value, found a byte order mark (U+FEFF; save the file as UTF-8 without BOM)`,
      },
    );
  });
});

describe('box-only loading', () => {
  it('loads the same records without their segmentations', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ablate-boxes-'));
    try {
      const file = join(dir, 'c.json');
      await writeFile(file, JSON.stringify(makeCoco(20), null, 1));
      const full = await loadCocoInstances(file);
      const boxes = await loadCocoInstances(file, { segmentation: false });
      assert.ok(full.annotations.some((a) => a.segmentation !== undefined));
      assert.deepEqual(
        boxes.annotations,
        full.annotations.map(({ segmentation: _s, ...rest }) => rest),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('parseJsonBytes (whole-file reader of the eval inputs)', () => {
  const parse = (text: string): unknown => parseJsonBytes(Buffer.from(text));
  const fault = (text: string): string => {
    try {
      parse(text);
    } catch (err) {
      assert.ok(err instanceof JsonLexError);
      const at = positionInBytes(Buffer.from(text), err.offset);
      return `${at.line}:${at.column}: ${err.message}`;
    }
    return 'accepted';
  };

  it('returns what JSON.parse returns for valid documents, whatever the top level', () => {
    for (const text of ['[{"a": [1, {"b": null}]}, 2]', ' {"k": "v"} \n', '-1.5e3', '"s"', '[]', '{}'])
      assert.deepEqual(parse(text), JSON.parse(text), text);
  });

  it('names the place of each fault', () => {
    assert.equal(
      fault('[\n {"score": 1}\n {"score": 2}\n]'),
      "3:2: expected ',' or ']' after an array element, found '{'",
    );
    assert.equal(fault('[{"score": 1}] x'), "1:16: unexpected 'x' after the top-level value");
    assert.equal(fault('[{"a": {"b": 1, "b": 2}}]'), '1:17: duplicate key "b"');
    assert.equal(
      fault('[{"score": 1}, {"sc'),
      `1:20: unexpected end of file inside an object: expected the closing '"' of a key (truncated file?)`,
    );
  });
});
