/**
 * A streaming scanner for JSON documents shaped like COCO annotation files: a top-level object whose
 * big members are arrays of small records. It reads the file in 1 MiB chunks and hands over each
 * element of the chosen top-level arrays as its raw bytes (which the caller may JSON.parse or copy
 * verbatim), plus every other top-level member whole. Memory is one chunk plus one element, whatever
 * the file size: the real COCO train2017 file (448 MB) cannot even be held as one V8 string comfortably.
 *
 * The scanner tracks only strings (with escapes: COCO RLE strings contain backslashes), nesting and
 * commas; each element is then parsed by JSON.parse, which validates it. Structural faults (truncated
 * file, a non-object top level) are reported with the byte offset.
 */
import { createReadStream } from 'node:fs';

import { ErrorType, permanent } from '../../../infra/errors';

/** Callbacks of {@link scanJsonObject}. */
export interface JsonScanHandlers {
  /** Top-level keys whose array value is streamed element by element. */
  streamed: ReadonlySet<string>;
  /** One element of a streamed array: raw bytes (valid JSON if the file is), 0-based index. */
  onElement(key: string, raw: Buffer, index: number): void | Promise<void>;
  /** Any other top-level member, raw bytes of its value (also streamed keys whose value is not an array). */
  onMember(key: string, raw: Buffer): void | Promise<void>;
  /** A streamed array opens (called before its elements, in document order). */
  onArrayStart?(key: string): void | Promise<void>;
  /** A streamed array closes (after its last element). */
  onArrayEnd?(key: string): void | Promise<void>;
}

/** Events of one chunk, delivered in document order once the chunk is scanned. */
type ScanEvent =
  { kind: 'element' | 'member'; key: string; raw: Buffer } | { kind: 'start' | 'end'; key: string };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/** Where {@link skipInside} stopped, and the lexer state there (module scratch: no allocation per call). */
const SKIP = { depth: 0, inString: false, escaped: false };

/**
 * The hot loop: inside a captured container only quotes, escapes and brackets matter. Scans `buf` from
 * `from` with plain locals (fast in V8) and returns the index of the bracket that closes the capture
 * (depth back to `target`), not consumed, or -1 at the end of the chunk; SKIP holds the state.
 */
function skipInside(
  buf: Buffer,
  from: number,
  depth: number,
  target: number,
  inString: boolean,
  escaped: boolean,
): number {
  const n = buf.length;
  let d = depth;
  let str = inString;
  let esc = escaped;
  let j = from;
  for (; j < n; j++) {
    const c = buf[j]!;
    if (str) {
      if (esc) esc = false;
      else if (c === BACKSLASH) esc = true;
      else if (c === QUOTE) str = false;
    } else if (c === QUOTE) str = true;
    else if (c === LBRACE || c === LBRACKET) d++;
    else if (c === RBRACE || c === RBRACKET) {
      if (d - 1 === target) break;
      d--;
    }
  }
  SKIP.depth = d;
  SKIP.inString = str;
  SKIP.escaped = esc;
  return j < n ? j : -1;
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * Scan the JSON file at `path`, calling `handlers` for its top-level members. Resolves once the closing
 * brace is seen; rejects with InvalidInput naming the file and byte offset on malformed structure.
 */
export async function scanJsonObject(
  path: string,
  handlers: JsonScanHandlers,
  options: { chunkBytes?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const fail = (offset: number, what: string): never => {
    throw permanent(ErrorType.InvalidInput, `${path}: malformed JSON at byte ${offset}: ${what}`);
  };
  let depth = 0;
  let inString = false;
  let escaped = false;
  let base = 0; // file offset of the current chunk
  let done = false;
  let started = false;
  // Top-level member state.
  let keyBytes: number[] | undefined; // collecting a key
  let key: string | undefined;
  let expectKey = false;
  let expectValue = false;
  let streaming = false; // inside a streamed array (depth 2 holds its elements)
  let elementIndex = 0;
  // Capture of the current element (depth >= 2) or member value (depth >= 1).
  let capturing = false;
  let captureDepth = 0; // depth at which the capture ends
  let capturePrimitive = false;
  let pieces: Buffer[] = [];
  let captureStart = 0; // offset in the current chunk

  const stream = createReadStream(path, { highWaterMark: options.chunkBytes ?? 1 << 20 });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (options.signal?.aborted) {
      stream.destroy();
      throw options.signal.reason;
    }
    const buf = chunk;
    const n = buf.length;
    const events: ScanEvent[] = [];
    const endCapture = (end: number): void => {
      pieces.push(buf.subarray(captureStart, end));
      const raw = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
      pieces = [];
      capturing = false;
      events.push({ kind: streaming ? 'element' : 'member', key: key!, raw });
    };
    for (let i = 0; i < n; i++) {
      if (capturing && !capturePrimitive && depth > captureDepth) {
        const stop = skipInside(buf, i, depth, captureDepth, inString, escaped);
        depth = SKIP.depth;
        inString = SKIP.inString;
        escaped = SKIP.escaped;
        if (stop < 0) break;
        i = stop;
      }
      const c = buf[i]!;
      if (inString) {
        if (escaped) escaped = false;
        else if (c === BACKSLASH) escaped = true;
        else if (c === QUOTE) {
          inString = false;
          if (keyBytes) {
            key = Buffer.from(keyBytes).toString('utf8');
            keyBytes = undefined;
          } else if (capturing && capturePrimitive && depth === captureDepth) {
            // A string value ends here; the capture ends at the following , ] or }.
          }
        } else if (keyBytes) keyBytes.push(c);
        continue;
      }
      if (isSpace(c)) continue;
      if (done) fail(base + i, 'content after the closing brace');
      if (!started) {
        if (c !== LBRACE) fail(base + i, 'the top level must be an object');
        started = true;
        depth = 1;
        expectKey = true;
        continue;
      }
      // A primitive capture ends at the first structural character at its depth.
      if (
        capturing &&
        capturePrimitive &&
        depth === captureDepth &&
        (c === COMMA || c === RBRACKET || c === RBRACE)
      ) {
        endCapture(i);
      }
      switch (c) {
        case QUOTE:
          inString = true;
          if (depth === 1 && expectKey) {
            keyBytes = [];
            expectKey = false;
          } else if (!capturing) startValue(i, true);
          break;
        case LBRACE:
        case LBRACKET:
          if (!capturing) {
            if (
              depth === 1 &&
              expectValue &&
              c === LBRACKET &&
              key !== undefined &&
              handlers.streamed.has(key)
            ) {
              expectValue = false;
              streaming = true;
              events.push({ kind: 'start', key });
            } else startValue(i, false);
          }
          depth++;
          break;
        case RBRACE:
        case RBRACKET:
          depth--;
          if (depth < 0) fail(base + i, 'unbalanced closing bracket');
          if (capturing && !capturePrimitive && depth === captureDepth) endCapture(i + 1);
          else if (streaming && depth === 1) {
            if (c !== RBRACKET) fail(base + i, 'expected ] to close an array');
            streaming = false;
            events.push({ kind: 'end', key: key! });
          } else if (depth === 0) {
            if (c !== RBRACE) fail(base + i, 'expected } to close the top-level object');
            done = true;
          }
          break;
        case COMMA:
          if (depth === 1) expectKey = true;
          break;
        case COLON:
          if (depth === 1) {
            if (key === undefined) fail(base + i, 'a member without a key');
            expectValue = true;
          }
          break;
        default:
          if (!capturing) startValue(i, true);
      }
    }
    if (capturing) {
      pieces.push(buf.subarray(captureStart));
      captureStart = 0;
    }
    base += n;
    for (const ev of events) {
      if (ev.kind === 'element') await handlers.onElement(ev.key, ev.raw, elementIndex++);
      else if (ev.kind === 'member') await handlers.onMember(ev.key, ev.raw);
      else if (ev.kind === 'start') {
        elementIndex = 0;
        await handlers.onArrayStart?.(ev.key);
      } else await handlers.onArrayEnd?.(ev.key);
    }

    function startValue(i: number, primitive: boolean): void {
      if (streaming && depth === 2) {
        // An element of a streamed array.
      } else if (depth === 1 && expectValue) {
        expectValue = false;
      } else return;
      capturing = true;
      capturePrimitive = primitive;
      captureDepth = depth;
      captureStart = i;
    }
  }
  if (!done)
    fail(base, started ? 'the file ends before the top-level object closes (truncated?)' : 'empty file');
}
