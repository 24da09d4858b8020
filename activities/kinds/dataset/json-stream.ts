/**
 * A streaming reader for JSON documents shaped like COCO annotation files: a top-level object whose
 * big members are arrays of small records. It reads the file in 1 MiB chunks and hands over each
 * element of the chosen top-level arrays parsed and as its raw bytes (which the caller may copy
 * verbatim), plus the raw bytes of every other top-level member. Memory is one chunk and its records, whatever
 * the file size: the real COCO train2017 file (448 MB) cannot even be held as one V8 string comfortably.
 *
 * The whole file is checked strictly as it streams by ({@link JsonLexer}): a missing comma between two
 * annotations, a truncated file, trailing garbage or a key repeated in any object is an InvalidInput
 * error naming the file, line and column, before any element after the fault is handed over. Every
 * element handed over is therefore valid JSON without duplicate keys.
 */
import { createReadStream } from 'node:fs';

import { ErrorType, permanent } from '../../../infra/errors';
import {
  checkJsonBytes,
  formatJsonLexError,
  parseDeferredValue,
  JsonLexer,
  JsonLexError,
  positionInFile,
  type JsonLexHooks,
} from '../../../infra/json-lexer';

/** Callbacks of {@link scanJsonObject}. */
export interface JsonScanHandlers {
  /** Top-level keys whose array value is streamed element by element. */
  streamed: ReadonlySet<string>;
  /** One element of a streamed array: its raw bytes, its 0-based index and its parsed value. */
  onElement(key: string, raw: Buffer, index: number, value: unknown): void | Promise<void>;
  /** Any other top-level member, raw bytes of its value (also streamed keys whose value is not an array). */
  onMember(key: string, raw: Buffer): void | Promise<void>;
  /** A streamed array opens (called before its elements, in document order). */
  onArrayStart?(key: string): void | Promise<void>;
  /** A streamed array closes (after its last element). */
  onArrayEnd?(key: string): void | Promise<void>;
}

/** Events of one chunk, delivered in document order once the chunk is checked. */
type ScanEvent =
  | { kind: 'element'; key: string; raw: Buffer; value: unknown }
  | { kind: 'member'; key: string; raw: Buffer }
  | { kind: 'start' | 'end'; key: string };

const LBRACE = 0x7b;
const LBRACKET = 0x5b;

/**
 * The lexer's hooks for depths 0..2: cuts out top-level member values (depth 1) and the elements of
 * streamed arrays (depth 2), which may span chunks.
 */
class MemberCutter implements JsonLexHooks {
  /** The chunk being checked and its offset in the file. */
  chunk: Buffer = Buffer.alloc(0);
  base = 0;
  lexer: JsonLexer | undefined;
  events: ScanEvent[] = [];
  private memberKey = '';
  private streaming = false; // inside a streamed array: its elements are at depth 2
  private capturing = false;
  private captureStart = 0; // in the current chunk
  private captureOffset = 0; // in the file
  private pieces: Buffer[] = [];

  constructor(private readonly streamed: ReadonlySet<string>) {}

  valueStart(depth: number, offset: number, byte: number): void {
    if (depth === 0) {
      if (byte !== LBRACE)
        throw new JsonLexError(
          `the top level must be an object, found '${String.fromCharCode(byte)}'`,
          offset,
        );
    } else if (depth === 1 && byte === LBRACKET && this.streamed.has(this.memberKey)) {
      this.streaming = true;
      this.events.push({ kind: 'start', key: this.memberKey });
    } else if (depth === 1 || this.streaming) {
      this.capturing = true;
      this.captureStart = offset - this.base;
      this.captureOffset = offset;
    }
  }

  valueEnd(depth: number, endOffset: number): void {
    if (depth === 1 && this.streaming) {
      this.streaming = false;
      this.events.push({ kind: 'end', key: this.memberKey });
    } else if (depth === 1 || (depth === 2 && this.streaming)) {
      this.pieces.push(this.chunk.subarray(this.captureStart, endOffset - this.base));
      const raw = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces);
      this.pieces = [];
      this.capturing = false;
      if (!this.streaming) this.events.push({ kind: 'member', key: this.memberKey, raw });
      else {
        const value: unknown =
          raw[0] === LBRACE || raw[0] === LBRACKET
            ? parseDeferredValue(raw, this.captureOffset, this.lexer!.deferredKeyCount)
            : (JSON.parse(raw.toString('utf8')) as unknown); // a scalar, checked by the lexer
        this.events.push({ kind: 'element', key: this.memberKey, raw, value });
      }
    }
  }

  key(depth: number, key: string): void {
    if (depth === 1) this.memberKey = key;
  }

  /** The file ended inside a deferred record: name the fault in its bytes (throws). */
  checkTruncatedRecord(): void {
    checkJsonBytes(Buffer.concat(this.pieces), this.captureOffset);
  }

  /** The chunk is checked: keep the part of an open capture that lies in it. */
  endChunk(): void {
    if (this.capturing) {
      this.pieces.push(this.chunk.subarray(this.captureStart));
      this.captureStart = 0;
    }
  }
}

/**
 * Stream the JSON file at `path`, calling `handlers` for its top-level members. Resolves once the file
 * has ended after one complete top-level object; rejects with InvalidInput naming the file, line and
 * column at the first syntax fault (see {@link JsonLexer}).
 */
export async function scanJsonObject(
  path: string,
  handlers: JsonScanHandlers,
  options: { chunkBytes?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const cutter = new MemberCutter(handlers.streamed);
  // Records (depth 2) are delimited by the lexer and checked by JSON.parse (see parseDeferredValue).
  const lexer = new JsonLexer(cutter, 2, 2);
  cutter.lexer = lexer;
  let elementIndex = 0;
  const stream = createReadStream(path, { highWaterMark: options.chunkBytes ?? 1 << 20 });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (options.signal?.aborted) throw options.signal.reason;
      cutter.chunk = chunk;
      cutter.base = lexer.offset;
      lexer.write(chunk);
      cutter.endChunk();
      const events = cutter.events;
      cutter.events = [];
      for (const ev of events) {
        if (ev.kind === 'element') await handlers.onElement(ev.key, ev.raw, elementIndex++, ev.value);
        else if (ev.kind === 'member') await handlers.onMember(ev.key, ev.raw);
        else if (ev.kind === 'start') {
          elementIndex = 0;
          await handlers.onArrayStart?.(ev.key);
        } else await handlers.onArrayEnd?.(ev.key);
      }
    }
    if (lexer.isInDeferred) cutter.checkTruncatedRecord();
    lexer.end();
  } catch (err) {
    if (!(err instanceof JsonLexError)) throw err;
    const at = await positionInFile(path, err.offset);
    const first = err.firstOffset === undefined ? undefined : await positionInFile(path, err.firstOffset);
    throw permanent(ErrorType.InvalidInput, formatJsonLexError(path, err, at, first));
  } finally {
    stream.destroy();
  }
}
