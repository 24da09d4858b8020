/**
 * The checkpoint file format: safetensors-compatible, so any safetensors reader can open our weights.
 *
 *   bytes 0..7   header length H, unsigned 64-bit little-endian
 *   bytes 8..8+H JSON header (UTF-8, padded with spaces to a multiple of 8):
 *                { "<tensor name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ...,
 *                  "__metadata__": { "ablate": "<JSON string of the run state>" } }
 *   then         the raw little-endian tensor data; offsets are relative to the end of the header
 *
 * Tensor names are the model's parameter names (`backbone.stage2.block0.conv1.w`), optimizer slots are
 * `optimizer.momentum/<name>`. The metadata holds what a resumed run needs besides tensors (iteration,
 * RNG state, data order position, loss series). Files are written atomically (temp file + rename).
 */
import { randomBytes } from 'node:crypto';
import { endianness } from 'node:os';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';

import { ErrorType, permanent } from '../../../infra/errors';
import type { JsonValue } from '../../../workflows/plan-types';

/** One tensor's host copy. Only float32 is stored: every trainable and statistic tensor is float32. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** A decoded checkpoint. Tensor order is the file's order. */
export interface Checkpoint {
  tensors: Map<string, HostTensor>;
  metadata: JsonValue;
}

const METADATA_KEY = '__metadata__';

function assertLittleEndian(): void {
  // Float32Array views use the host byte order; the format is little-endian.
  if (endianness() !== 'LE') throw new Error('checkpoint I/O needs a little-endian host');
}

/** Serialises tensors and metadata into one buffer. */
export function encodeCheckpoint(tensors: Map<string, HostTensor>, metadata: JsonValue): Buffer {
  assertLittleEndian();
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new Error(
        `tensor ${name}: shape [${t.shape.join(',')}] needs ${count} values, has ${t.data.length}`,
      );
    }
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  header[METADATA_KEY] = { ablate: JSON.stringify(metadata) };
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, pos);
    pos += t.data.byteLength;
  }
  return out;
}

/** Parses a checkpoint; `source` names the file or artifact in error messages. */
export function decodeCheckpoint(bytes: Uint8Array, source = 'checkpoint'): Checkpoint {
  assertLittleEndian();
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const corrupt = (why: string) =>
    permanent(ErrorType.CorruptArtifact, `${source} is not a valid checkpoint: ${why}`);
  if (buf.length < 8) throw corrupt(`only ${buf.length} bytes`);
  const headerLength = Number(buf.readBigUInt64LE(0));
  if (headerLength > buf.length - 8)
    throw corrupt(`header length ${headerLength} exceeds the file size ${buf.length}`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw corrupt(`header is not JSON (${(err as Error).message})`);
  }
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, HostTensor>();
  let metadata: JsonValue = null;
  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      const text = (entry as { ablate?: unknown } | null)?.ablate;
      if (typeof text === 'string') metadata = JSON.parse(text) as JsonValue;
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e.dtype !== 'F32')
      throw corrupt(`tensor ${name} has dtype ${String(e.dtype)}, only F32 is supported`);
    const shape = e.shape;
    const offsets = e.data_offsets;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
      throw corrupt(`tensor ${name} has no valid shape`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2) throw corrupt(`tensor ${name} has no data_offsets`);
    const [begin, end] = offsets as [number, number];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end - begin !== count * 4 || dataStart + end > buf.length || begin < 0) {
      throw corrupt(
        `tensor ${name}: data_offsets [${begin}, ${end}] do not fit shape [${shape.join(',')}] or the file`,
      );
    }
    // Copy: the data need not be 4-byte aligned inside the buffer.
    const data = new Float32Array(count);
    Buffer.from(data.buffer).set(buf.subarray(dataStart + begin, dataStart + end));
    tensors.set(name, { shape: shape as number[], data });
  }
  return { tensors, metadata };
}

/** Writes a checkpoint file atomically: a temp file next to `path`, then rename. */
export async function writeCheckpointFile(
  path: string,
  tensors: Map<string, HostTensor>,
  metadata: JsonValue,
): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(tmp, encodeCheckpoint(tensors, metadata));
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Reads a checkpoint file. */
export async function readCheckpointFile(path: string): Promise<Checkpoint> {
  return decodeCheckpoint(await readFile(path), path);
}

/**
 * Checks that `loaded` has every tensor of `expected` with the same shape. Throws a permanent
 * ShapeMismatch naming the first layer that differs (or is missing), the two shapes, and the source.
 */
export function checkShapes(
  expected: Map<string, number[]>,
  loaded: Map<string, HostTensor>,
  source: string,
): void {
  for (const [name, shape] of expected) {
    const got = loaded.get(name);
    if (!got) {
      throw permanent(
        ErrorType.ShapeMismatch,
        `${source} has no tensor for layer ${name} (expected shape [${shape.join(',')}]); ` +
          `it holds ${loaded.size} tensors, e.g. ${[...loaded.keys()].slice(0, 3).join(', ') || 'none'}`,
      );
    }
    if (got.shape.length !== shape.length || got.shape.some((d, i) => d !== shape[i])) {
      throw permanent(
        ErrorType.ShapeMismatch,
        `${source}: layer ${name} has shape [${got.shape.join(',')}] but the model expects [${shape.join(',')}]` +
          ` (was it trained with another arch or norm?)`,
      );
    }
  }
}
