import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { AblateError } from '../../infra/errors';
import {
  checkShapes,
  decodeCheckpoint,
  encodeCheckpoint,
  readCheckpointFile,
  writeCheckpointFile,
  type HostTensor,
} from '../../activities/kinds/train/checkpoint';
import { createRng } from '../../infra/prng';

describe('checkpoint format', () => {
  const dirs: string[] = [];
  after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  const tensors = new Map<string, HostTensor>([
    [
      'backbone.stem.conv.w',
      { shape: [3, 3, 3, 4], data: Float32Array.from({ length: 108 }, (_, i) => Math.sin(i) * 1e-3) },
    ],
    ['backbone.stem.norm.gamma', { shape: [4], data: Float32Array.from([1, 2, Number.MIN_VALUE, -0]) }],
    ['optimizer.momentum/head.out.b', { shape: [0], data: new Float32Array(0) }],
  ]);

  it('round-trips tensors bit for bit and the metadata exactly, through an atomic file write', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ablate-ckpt-'));
    dirs.push(dir);
    const path = join(dir, 'c.safetensors');
    const meta = { iteration: 40, augRng: createRng(3).state(), lossCurve: [[1, 0.1 + 0.2]] };
    await writeCheckpointFile(path, tensors, meta);
    assert.deepEqual(await readdir(dir), ['c.safetensors']);
    const back = await readCheckpointFile(path);
    assert.deepEqual(back.metadata, meta);
    assert.deepEqual([...back.tensors.keys()], [...tensors.keys()]);
    for (const [name, t] of tensors) {
      const b = back.tensors.get(name) as HostTensor;
      assert.deepEqual(b.shape, t.shape);
      assert.deepEqual(Buffer.from(b.data.buffer), Buffer.from(t.data.buffer), name);
    }
    // safetensors layout, read here independently of the decoder: u64 little-endian header length, a JSON
    // header (padded with spaces to 8 bytes) giving each tensor's dtype, shape and byte range, then the
    // data; ablate's own metadata is a JSON string under __metadata__.ablate.
    const bytes = await readFile(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    assert.equal((8 + headerLength) % 8, 0);
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString()) as Record<string, unknown>;
    const ranges = header as Record<string, { data_offsets: [number, number] }>;
    assert.deepEqual(header, {
      'backbone.stem.conv.w': { dtype: 'F32', shape: [3, 3, 3, 4], data_offsets: [0, 432] },
      'backbone.stem.norm.gamma': { dtype: 'F32', shape: [4], data_offsets: [432, 448] },
      'optimizer.momentum/head.out.b': { dtype: 'F32', shape: [0], data_offsets: [448, 448] },
      __metadata__: { ablate: JSON.stringify(meta) },
    });
    const data = bytes.subarray(8 + headerLength);
    assert.equal(data.length, 448);
    for (const [name, t] of tensors) {
      const [start, end] = ranges[name]!.data_offsets;
      assert.deepEqual(
        data.subarray(start, end),
        Buffer.from(t.data.buffer),
        `${name}: bytes at its offsets`,
      );
    }
  });

  it('names the layer whose shape does not match, and a missing one', () => {
    const decoded = decodeCheckpoint(encodeCheckpoint(tensors, null), 'weights.safetensors');
    const expected = new Map([
      ['backbone.stem.conv.w', [3, 3, 3, 8]],
      ['backbone.stem.norm.gamma', [4]],
    ]);
    assert.throws(
      () => checkShapes(expected, decoded.tensors, 'pre-trained weights w.safetensors'),
      (err: unknown) =>
        err instanceof AblateError &&
        err.type === 'ShapeMismatch' &&
        err.message ===
          'pre-trained weights w.safetensors: layer backbone.stem.conv.w has shape [3,3,3,4] but the model expects [3,3,3,8] (was it trained with another arch or norm?)',
    );
    assert.throws(
      () => checkShapes(new Map([['backbone.stem.norm.mean', [4]]]), decoded.tensors, 'w'),
      /w has no tensor for layer backbone\.stem\.norm\.mean \(expected shape \[4\]\)/,
    );
  });

  it('refuses a truncated or foreign file as corrupt', () => {
    const bytes = encodeCheckpoint(tensors, null);
    assert.throws(
      () => decodeCheckpoint(bytes.subarray(0, bytes.length - 8), 'x.safetensors'),
      /x\.safetensors is not a valid checkpoint: tensor .* do not fit/,
    );
    assert.throws(
      () => decodeCheckpoint(Buffer.from('{"not":"a checkpoint"}'), 'y'),
      /y is not a valid checkpoint: header length/,
    );
  });

  it('RNG state survives the round trip: the resumed stream continues exactly', () => {
    const a = createRng(42);
    for (let i = 0; i < 10; i++) a.float();
    const b = createRng(JSON.parse(JSON.stringify(a.state())) as [number, number, number, number]);
    assert.deepEqual(
      Array.from({ length: 5 }, () => a.uint32()),
      Array.from({ length: 5 }, () => b.uint32()),
    );
    assert.notDeepEqual(createRng(1).state(), createRng(2).state());
  });
});
