/**
 * Tree manifests written and read as streams. A manifest is content-addressed, so its bytes must stay
 * exactly what `JSON.stringify({ version: 1, entries })` gave before (existing trees keep their
 * digests); but a folder of a million files makes a manifest of ~150 MB, too big to build as one string
 * or parse as one value. The writer emits the same bytes entry by entry, hashing as it goes; the reader
 * checks the document strictly with the incremental lexer and yields entries one chunk at a time.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Readable } from 'node:stream';

import { ErrorType, permanent } from '../errors';
import { JsonLexer, JsonLexError, parseDeferredValue, type JsonLexHooks } from '../json-lexer';

/** One file of a tree. */
export interface TreeEntry {
  path: string;
  digest: string;
  sizeBytes: number;
}

/** The manifest of a directory artifact. */
export interface TreeManifest {
  version: 1;
  entries: TreeEntry[];
}

const HEAD = '{"version":1,"entries":[';
const TAIL = ']}';

/**
 * Writes a manifest to a local file entry by entry; the bytes equal `JSON.stringify({version: 1,
 * entries})` for the same entries in the same order.
 */
export class ManifestWriter {
  private readonly out;
  private readonly hash = createHash('sha256');
  private count = 0;
  private sizeBytes = 0;
  private pending: string[] = [];
  private pendingChars = 0;

  constructor(readonly path: string) {
    this.out = createWriteStream(path);
    this.push(HEAD);
  }

  /** Append one entry (key order path, digest, sizeBytes, as the format has always had). */
  async add(entry: TreeEntry): Promise<void> {
    const json = JSON.stringify({ path: entry.path, digest: entry.digest, sizeBytes: entry.sizeBytes });
    this.push(this.count++ === 0 ? json : `,${json}`);
    if (this.pendingChars >= 1 << 16) await this.drain();
  }

  /** Finish the file; returns the manifest's digest and size. */
  async close(): Promise<{ digest: string; sizeBytes: number; entries: number }> {
    this.push(TAIL);
    await this.drain();
    this.out.end();
    await once(this.out, 'finish');
    return { digest: `sha256:${this.hash.digest('hex')}`, sizeBytes: this.sizeBytes, entries: this.count };
  }

  /** Stop writing (the caller removes the file). */
  abort(): void {
    this.out.destroy();
  }

  private push(text: string): void {
    this.pending.push(text);
    this.pendingChars += text.length;
  }

  private async drain(): Promise<void> {
    const buf = Buffer.from(this.pending.join(''), 'utf8');
    this.pending = [];
    this.pendingChars = 0;
    this.hash.update(buf);
    this.sizeBytes += buf.length;
    if (!this.out.write(buf)) await once(this.out, 'drain');
  }
}

/**
 * The entries of a manifest read from a stream, checked strictly (RFC 8259, no repeated keys, version 1,
 * every entry a `{path, digest, sizeBytes}`), in order, with memory bounded by the stream's chunk size.
 * `name` names the manifest in errors, which are CorruptArtifact.
 */
export async function* readManifestEntries(source: Readable, name: string): AsyncGenerator<TreeEntry> {
  const corrupt = (why: string, cause?: unknown) =>
    permanent(ErrorType.CorruptArtifact, `tree manifest ${name} is not a tree manifest: ${why}`, cause);
  let topKey = '';
  let version: unknown;
  let sawEntries = false;
  let isTopObject = false;
  // The bytes of the value being cut out (an entry, or the version number), across chunks.
  let capturing = false;
  let captureStart = 0; // document offset
  let pieces: Buffer[] = [];
  let chunkBase = 0;
  let chunk: Buffer = Buffer.alloc(0);
  let ready: TreeEntry[] = [];

  const take = (endOffset: number): Buffer => {
    const from = Math.max(0, captureStart - chunkBase);
    pieces.push(chunk.subarray(from, endOffset - chunkBase));
    const raw = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
    pieces = [];
    capturing = false;
    return raw;
  };
  const hooks: JsonLexHooks = {
    valueStart(depth, offset, byte) {
      if (depth === 0) isTopObject = byte === 0x7b;
      else if (depth === 1 && topKey === 'version') [capturing, captureStart] = [true, offset];
      else if (depth === 1 && topKey === 'entries') {
        if (byte !== 0x5b) throw new JsonLexError('"entries" is not an array', offset);
        sawEntries = true;
      } else if (depth === 2 && topKey === 'entries') [capturing, captureStart] = [true, offset];
    },
    valueEnd(depth, endOffset) {
      if (depth === 1 && topKey === 'version' && capturing) version = JSON.parse(take(endOffset).toString());
      else if (depth === 2 && topKey === 'entries' && capturing) {
        const raw = take(endOffset);
        const value = parseDeferredValue(raw, captureStart, lexer.deferredKeyCount);
        ready.push(checkEntry(value, captureStart));
      }
    },
    key(depth, key, offset) {
      if (depth !== 1) return;
      // Deferred values under another key would go unchecked; the format has only these two.
      if (key !== 'version' && key !== 'entries') throw new JsonLexError(`unknown key "${key}"`, offset);
      topKey = key;
    },
  };
  const lexer = new JsonLexer(hooks, 2, 2);
  try {
    for await (const data of source) {
      chunk = data as Buffer;
      lexer.write(chunk);
      if (capturing) pieces.push(chunk.subarray(Math.max(0, captureStart - chunkBase)));
      chunkBase += chunk.length;
      if (ready.length > 0) {
        const out = ready;
        ready = [];
        yield* out;
      }
    }
    lexer.end();
  } catch (err) {
    if (err instanceof JsonLexError) throw corrupt(`${err.message} at byte ${err.offset}`, err);
    throw err;
  }
  if (!isTopObject) throw corrupt('not an object');
  if (version !== 1) throw corrupt(`version is ${JSON.stringify(version)}, expected 1`);
  if (!sawEntries) throw corrupt('no "entries"');
}

function checkEntry(value: unknown, offset: number): TreeEntry {
  const e = value as Partial<TreeEntry> | null;
  if (
    typeof e !== 'object' ||
    e === null ||
    typeof e.path !== 'string' ||
    typeof e.digest !== 'string' ||
    typeof e.sizeBytes !== 'number' ||
    !Number.isSafeInteger(e.sizeBytes) ||
    e.sizeBytes < 0
  )
    throw new JsonLexError('an entry is not {path, digest, sizeBytes}', offset);
  return { path: e.path, digest: e.digest, sizeBytes: e.sizeBytes };
}
