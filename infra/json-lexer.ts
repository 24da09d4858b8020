/**
 * A strict, incremental JSON checker over bytes (RFC 8259): it is fed a document in chunks of any size,
 * checks every comma, colon, bracket, string escape, number and literal, rejects a key repeated in any
 * object, and stops at the first fault with its byte offset. It builds no values: callers that need
 * them cut the bytes of a value out of the chunks (the hooks give the offsets where values at shallow
 * depths start and end) and hand them to JSON.parse.
 *
 * Why not JSON.parse alone: it needs the whole document as one string (the COCO train2017 file is
 * 448 MB), silently keeps the last of two duplicate keys, and names faults by a character offset in
 * words that change between Node versions. Why not a streaming parser from npm: @streamparser/json
 * 0.0.26 took 3.1 s just to tokenize a 53 MB COCO file that the previous scanner plus JSON.parse of
 * every record read in 1.1 s. And a checker in JavaScript is itself slower per byte than JSON.parse
 * (native), so a big file's records can be deferred (see the constructor's `deferDepth`): the lexer
 * only delimits them, and the caller checks each with JSON.parse, coming back here only to name a fault.
 *
 * Line and column are not tracked while scanning (that would cost every byte); {@link positionInBytes}
 * and {@link positionInFile} compute them from the offset once a fault is found.
 */
import { createReadStream } from 'node:fs';

/** A syntax fault at a byte offset of the document. */
export class JsonLexError extends Error {
  override readonly name = 'JsonLexError';
  constructor(
    message: string,
    /** 0-based byte offset of the fault (the document's length for an early end). */
    readonly offset: number,
    /** For a duplicate key: the offset of its first occurrence. */
    readonly firstOffset?: number,
  ) {
    super(message);
  }
}

/**
 * Called for values whose depth (number of enclosing arrays and objects) is at most the lexer's
 * `hookDepth`; offsets are byte offsets in the document. Throwing a {@link JsonLexError} from a hook
 * reports it like a syntax fault.
 */
export interface JsonLexHooks {
  /** A value starts at `offset` with byte `byte` (`{`, `[`, `"`, a digit, `-`, `t`, `f` or `n`). */
  valueStart(depth: number, offset: number, byte: number): void;
  /** The value that started last at `depth` ends just before `endOffset`. */
  valueEnd(depth: number, endOffset: number): void;
  /** An object key at `depth` (the object's members are at `depth`), its opening quote at `offset`. */
  key(depth: number, key: string, offset: number): void;
}

/** 1-based line and column (in characters) of a byte offset. */
export interface JsonPosition {
  line: number;
  column: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const LF = 0x0a;

// Lexer states. The number states follow the grammar -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?.
const S_VALUE = 0; // a value: at the start, after ':' and after ',' in an array
const S_VALUE_OR_CLOSE = 1; // after '['
const S_KEY_OR_CLOSE = 2; // after '{'
const S_KEY = 3; // after ',' in an object
const S_COLON = 4; // after a key
const S_AFTER = 5; // after a value: ',' or the closing bracket (at depth 0: only whitespace)
const S_STRING = 6;
const S_ESCAPE = 7; // after a backslash in a string
const S_UNICODE = 8; // inside \uXXXX (`hexLeft` digits to go)
const S_MINUS = 9; // after a leading '-'
const S_ZERO = 10; // a leading 0
const S_INT = 11;
const S_DOT = 12;
const S_FRAC = 13;
const S_EXP = 14; // after e/E
const S_EXP_SIGN = 15; // after e+ / e-
const S_EXP_DIGITS = 16;
const S_LITERAL = 17; // inside true / false / null
const S_DEFERRED = 18; // inside a container at `deferDepth`: only strings and brackets are followed

/** 1 for the bytes that can start a value: " { [ - 0-9 t f n. */
const IS_VALUE_START = new Uint8Array(256);
for (const c of Buffer.from('"{[-0123456789tfn')) IS_VALUE_START[c] = 1;

const OBJECT = 1;
const ARRAY = 2;
/** Deeper nesting is refused rather than risking a stack of unbounded size. */
export const MAX_JSON_DEPTH = 4096;

const LITERALS: Record<number, Buffer> = {
  0x74: Buffer.from('true'),
  0x66: Buffer.from('false'),
  0x6e: Buffer.from('null'),
};

/** Keys seen in one open object: a short list (most objects have a few keys), a Map past 16. */
class KeyFrame {
  // Reused from object to object: `count` entries are live (no allocation per object).
  private names: string[] = [];
  private offsets: number[] = [];
  private count = 0;
  private map: Map<string, number> | undefined;
  reset(): void {
    this.count = 0;
    this.map = undefined;
  }
  /** Record `key`; returns the offset of an earlier occurrence, or -1. */
  add(key: string, offset: number): number {
    if (this.map) {
      const first = this.map.get(key);
      if (first !== undefined) return first;
      this.map.set(key, offset);
      return -1;
    }
    const names = this.names;
    const count = this.count;
    for (let k = 0; k < count; k++) if (names[k] === key) return this.offsets[k]!;
    names[count] = key;
    this.offsets[count] = offset;
    this.count = count + 1;
    if (count === 16) {
      this.map = new Map();
      for (let k = 0; k <= count; k++) this.map.set(names[k]!, this.offsets[k]!);
    }
    return -1;
  }
}

/**
 * Recently seen keys by a hash of their bytes, so that the keys repeated in every record (a COCO file
 * has a dozen distinct keys and millions of records) cost no string allocation and no call into C++.
 */
class KeyCache {
  private readonly strings: (string | undefined)[] = new Array<string | undefined>(256);
  private readonly bytes: (Buffer | undefined)[] = new Array<Buffer | undefined>(256);
  /** The key in `buf[start, end)` (no escapes), from the cache or decoded. */
  get(buf: Buffer, start: number, end: number): string {
    const len = end - start;
    if (len > 32) return buf.toString('utf8', start, end);
    let h = len;
    for (let k = start; k < end; k++) h = (h * 31 + buf[k]!) | 0;
    const slot = h & 255;
    const cached = this.bytes[slot];
    if (cached !== undefined && cached.length === len) {
      let same = true;
      for (let k = 0; k < len; k++)
        if (cached[k] !== buf[start + k]) {
          same = false;
          break;
        }
      if (same) return this.strings[slot]!;
    }
    const copy = Buffer.from(buf.subarray(start, end));
    const str = copy.toString('utf8');
    this.bytes[slot] = copy;
    this.strings[slot] = str;
    return str;
  }
}

/** "expected X, found Y": the fault for byte `i` where `expected` was due ('' after the top-level value). */
function unexpectedByte(buf: Buffer, i: number, base: number, state: number, expected: string): JsonLexError {
  const found = describeByte(buf, i);
  if (expected === '') return new JsonLexError(`unexpected ${found} after the top-level value`, base + i);
  return new JsonLexError(`expected ${expected}, found ${found}${hintFor(buf[i]!, state)}`, base + i);
}

/** How a byte reads in a message: 'x', U+000A for controls, the character for UTF-8 text. */
function describeByte(buf: Buffer, i: number): string {
  const c = buf[i]!;
  if (c >= 0x20 && c < 0x7f) return `'${String.fromCharCode(c)}'`;
  if (c < 0x80) return `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
  // A UTF-8 lead byte says how long its sequence is; one cut by the chunk's end is named as a byte.
  const len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
  if (len === 1 || i + len > buf.length) return `byte 0x${c.toString(16).toUpperCase()}`;
  const ch = buf.toString('utf8', i, i + len).codePointAt(0)!;
  if (ch === 0xfeff) return 'a byte order mark (U+FEFF; save the file as UTF-8 without BOM)';
  return `'${String.fromCodePoint(ch)}' (U+${ch.toString(16).toUpperCase().padStart(4, '0')})`;
}

/** A hint for a common non-JSON habit, appended to "found ..." (empty when none applies). */
function hintFor(c: number, state: number): string {
  if (c === 0x27) return ' (JSON strings use double quotes)';
  if (c === 0x2f) return ' (JSON has no comments)';
  const atValue = state === S_VALUE || state === S_VALUE_OR_CLOSE;
  if (atValue && (c === 0x4e || c === 0x49)) return ' (NaN and Infinity are not JSON numbers)';
  if (atValue && c === PLUS) return " (a number may not start with '+')";
  if (atValue && c === DOT) return " (a number needs a digit before '.')";
  return '';
}

/**
 * The checker. Feed it with {@link write} (chunks in order; `buf` must not change until write returns)
 * and finish with {@link end}; either throws {@link JsonLexError} at the first fault.
 */
export class JsonLexer {
  private state = S_VALUE;
  private depth = 0;
  private readonly stack = new Uint8Array(MAX_JSON_DEPTH);
  private readonly frames: KeyFrame[] = [];
  private readonly keyCache = new KeyCache();
  private base = 0; // document offset of the current chunk
  private done = false; // the top-level value is complete
  private isKey = false; // the open string is a key
  private keyStart = 0; // in-chunk offset just after the key's opening quote
  private keyOffset = 0; // document offset of the key's opening quote
  private keyPieces: Buffer[] = [];
  private keyEscaped = false;
  private lastKey = '';
  private hexLeft = 0;
  private literal: Buffer = LITERALS[0x74]!;
  private literalAt = 0;

  private deferNesting = 0;
  private deferInString = false;
  private deferEscaped = false;
  private deferColons = 0;

  constructor(
    private readonly hooks?: JsonLexHooks,
    /** Hooks fire for values at depth <= hookDepth. */
    private readonly hookDepth = -1,
    /**
     * Arrays and objects that start at this depth are not checked here, only delimited (at several
     * times the speed): the owner of the hooks must check each one when valueEnd reports it, e.g. with
     * JSON.parse (which the owner needs anyway) and {@link deferredKeyCount}, and locate a fault with
     * {@link checkJsonBytes}. Requires deferDepth <= hookDepth; -1: check everything here.
     */
    private readonly deferDepth = -1,
  ) {
    if (deferDepth > hookDepth || (hookDepth >= 0 && !hooks))
      throw new Error('JsonLexer: deferred values need hooks at their depth');
  }

  /** The number of keys (at any depth) of the deferred value that ended last. */
  get deferredKeyCount(): number {
    return this.deferColons;
  }

  /** True while inside a deferred value (whose bytes the hooks' owner is collecting). */
  get isInDeferred(): boolean {
    return this.state === S_DEFERRED;
  }

  /** Bytes consumed so far. */
  get offset(): number {
    return this.base;
  }

  /** Check the next chunk. */
  write(buf: Buffer): void {
    const n = buf.length;
    const hooks = this.hooks;
    const hookDepth = this.hookDepth;
    const stack = this.stack;
    const base = this.base;
    let state = this.state;
    let depth = this.depth;
    let i = 0;
    for (; i < n; i++) {
      let c = buf[i]!;
      switch (state) {
        case S_DEFERRED: {
          // The fast path for the records of a big file: find the closing bracket, counting the
          // colons (= keys) on the way; the hook's owner checks the record (see deferDepth).
          let d = this.deferNesting;
          let str = this.deferInString;
          let esc = this.deferEscaped;
          let colons = this.deferColons;
          for (; i < n; i++) {
            c = buf[i]!;
            if (str) {
              if (esc) esc = false;
              else if (c === BACKSLASH) esc = true;
              else if (c === QUOTE) str = false;
            } else if (c === QUOTE) str = true;
            else if (c === COLON) colons++;
            else if (c === LBRACE || c === LBRACKET) d++;
            else if ((c === RBRACE || c === RBRACKET) && --d === 0) break;
          }
          this.deferNesting = d;
          this.deferInString = str;
          this.deferEscaped = esc;
          this.deferColons = colons;
          if (i === n) break;
          state = S_AFTER;
          if (depth === 0) this.done = true;
          if (depth <= hookDepth) hooks!.valueEnd(depth, base + i + 1);
          continue;
        }
        case S_STRING: {
          // The hot loop for strings: skip plain bytes.
          while (c !== QUOTE && c !== BACKSLASH && c >= 0x20) {
            if (++i === n) break;
            c = buf[i]!;
          }
          if (i === n) break;
          if (c === BACKSLASH) state = S_ESCAPE;
          else if (c === QUOTE) {
            if (this.isKey) {
              this.isKey = false;
              this.endKey(buf, i, depth);
              state = S_COLON;
            } else {
              state = S_AFTER;
              if (depth === 0) this.done = true;
              if (depth <= hookDepth) hooks!.valueEnd(depth, base + i + 1);
            }
          } else
            throw new JsonLexError(
              `unescaped control character ${describeByte(buf, i)} in a string (escape it, e.g. \\n; or is a closing quote missing?)`,
              base + i,
            );
          continue;
        }
        case S_INT:
        case S_FRAC:
        case S_EXP_DIGITS:
          while (c >= ZERO && c <= NINE) {
            if (++i === n) break;
            c = buf[i]!;
          }
          if (i === n) break;
          if (state === S_INT && c === DOT) state = S_DOT;
          else if (state !== S_EXP_DIGITS && (c === 0x65 || c === 0x45)) state = S_EXP;
          else {
            state = S_AFTER;
            if (depth === 0) this.done = true;
            if (depth <= hookDepth) hooks!.valueEnd(depth, base + i);
            i--; // the terminator is read again in S_AFTER
          }
          continue;
        case S_AFTER:
          if (c === COMMA && depth > 0) {
            state = stack[depth - 1] === OBJECT ? S_KEY : S_VALUE;
            continue;
          }
          if (c === RBRACE || c === RBRACKET) {
            if (depth === 0) throw unexpectedByte(buf, i, base, state, '');
            if (stack[depth - 1] !== (c === RBRACE ? OBJECT : ARRAY))
              throw new JsonLexError(
                `expected ${stack[depth - 1] === OBJECT ? "',' or '}' after an object member" : "',' or ']' after an array element"}, found ${describeByte(buf, i)}`,
                base + i,
              );
            depth--;
            state = S_AFTER;
            if (depth === 0) this.done = true;
            if (depth <= hookDepth) hooks!.valueEnd(depth, base + i + 1);
            continue;
          }
          if (c === 0x20 || c === LF || c === 0x0d || c === 0x09) continue;
          if (depth === 0) throw unexpectedByte(buf, i, base, state, '');
          throw unexpectedByte(
            buf,
            i,
            base,
            state,
            stack[depth - 1] === OBJECT
              ? "',' or '}' after an object member"
              : "',' or ']' after an array element",
          );
          continue;
        case S_VALUE:
        case S_VALUE_OR_CLOSE: {
          if (c === 0x20 || c === LF || c === 0x0d || c === 0x09) continue;
          if (c === RBRACKET && state === S_VALUE_OR_CLOSE) {
            depth--;
            state = S_AFTER;
            if (depth === 0) this.done = true;
            if (depth <= hookDepth) hooks!.valueEnd(depth, base + i + 1);
            continue;
          }
          if (depth <= hookDepth && IS_VALUE_START[c] === 1) hooks!.valueStart(depth, base + i, c);
          if (c === QUOTE) {
            state = S_STRING;
          } else if ((c === LBRACE || c === LBRACKET) && depth === this.deferDepth) {
            state = S_DEFERRED;
            this.deferNesting = 1;
            this.deferColons = 0;
          } else if (c === LBRACE || c === LBRACKET) {
            if (depth === MAX_JSON_DEPTH)
              throw new JsonLexError(`nesting deeper than ${MAX_JSON_DEPTH} levels`, base + i);
            stack[depth++] = c === LBRACE ? OBJECT : ARRAY;
            if (c === LBRACE) {
              (this.frames[depth] ??= new KeyFrame()).reset();
              state = S_KEY_OR_CLOSE;
            } else state = S_VALUE_OR_CLOSE;
          } else if (c === ZERO) state = S_ZERO;
          else if (c > ZERO && c <= NINE) state = S_INT;
          else if (c === MINUS) state = S_MINUS;
          else if (c === 0x74 || c === 0x66 || c === 0x6e) {
            this.literal = LITERALS[c]!;
            this.literalAt = 1;
            state = S_LITERAL;
          } else if (c === RBRACKET && depth > 0 && stack[depth - 1] === ARRAY)
            throw new JsonLexError(`expected a value, found ']' (a trailing comma?)`, base + i);
          else
            throw unexpectedByte(
              buf,
              i,
              base,
              state,
              depth > 0 && stack[depth - 1] === ARRAY ? "a value or ']'" : 'a value',
            );
          continue;
        }
        case S_KEY_OR_CLOSE:
        case S_KEY:
          if (c === 0x20 || c === LF || c === 0x0d || c === 0x09) continue;
          if (c === QUOTE) {
            state = S_STRING;
            this.isKey = true;
            this.keyStart = i + 1;
            this.keyOffset = base + i;
            if (this.keyPieces.length > 0) this.keyPieces = [];
            this.keyEscaped = false;
          } else if (c === RBRACE && state === S_KEY_OR_CLOSE) {
            depth--;
            state = S_AFTER;
            if (depth === 0) this.done = true;
            if (depth <= hookDepth) hooks!.valueEnd(depth, base + i + 1);
          } else if (c === RBRACE)
            throw new JsonLexError(
              `expected a key in double quotes, found '}' (a trailing comma?)`,
              base + i,
            );
          else
            throw unexpectedByte(
              buf,
              i,
              base,
              state,
              state === S_KEY ? 'a key in double quotes' : "a key in double quotes or '}'",
            );
          continue;
        case S_COLON:
          if (c === COLON) state = S_VALUE;
          else if (!(c === 0x20 || c === LF || c === 0x0d || c === 0x09))
            throw unexpectedByte(buf, i, base, state, `':' after the key ${JSON.stringify(this.lastKey)}`);
          continue;
        case S_ESCAPE:
          if (
            c === QUOTE ||
            c === BACKSLASH ||
            c === 0x2f ||
            c === 0x62 ||
            c === 0x66 ||
            c === 0x6e ||
            c === 0x72 ||
            c === 0x74
          )
            state = S_STRING;
          else if (c === 0x75) {
            state = S_UNICODE;
            this.hexLeft = 4;
          } else
            throw new JsonLexError(
              `invalid escape '\\${c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '?'}' in a string (valid: \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)`,
              base + i - 1,
            );
          if (this.isKey) this.keyEscaped = true;
          continue;
        case S_UNICODE:
          if ((c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)) {
            if (--this.hexLeft === 0) state = S_STRING;
          } else
            throw new JsonLexError(
              `invalid \\u escape: expected 4 hex digits, found ${describeByte(buf, i)}`,
              base + i,
            );
          continue;
        case S_MINUS:
          if (c === ZERO) state = S_ZERO;
          else if (c > ZERO && c <= NINE) state = S_INT;
          else
            throw new JsonLexError(
              `expected a digit after '-', found ${describeByte(buf, i)}${hintFor(c, S_VALUE)}`,
              base + i,
            );
          continue;
        case S_ZERO:
          if (c >= ZERO && c <= NINE) throw new JsonLexError('a number may not have leading zeros', base + i);
          if (c === DOT) state = S_DOT;
          else if (c === 0x65 || c === 0x45) state = S_EXP;
          else {
            state = S_AFTER;
            if (depth === 0) this.done = true;
            if (depth <= hookDepth) hooks!.valueEnd(depth, base + i);
            i--;
          }
          continue;
        case S_DOT:
          if (c >= ZERO && c <= NINE) state = S_FRAC;
          else
            throw new JsonLexError(
              `expected a digit after the decimal point, found ${describeByte(buf, i)}`,
              base + i,
            );
          continue;
        case S_EXP:
          if (c >= ZERO && c <= NINE) state = S_EXP_DIGITS;
          else if (c === PLUS || c === MINUS) state = S_EXP_SIGN;
          else
            throw new JsonLexError(
              `expected a digit or sign in the exponent, found ${describeByte(buf, i)}`,
              base + i,
            );
          continue;
        case S_EXP_SIGN:
          if (c >= ZERO && c <= NINE) state = S_EXP_DIGITS;
          else
            throw new JsonLexError(
              `expected a digit in the exponent, found ${describeByte(buf, i)}`,
              base + i,
            );
          continue;
        case S_LITERAL: {
          const lit = this.literal;
          if (c !== lit[this.literalAt])
            throw new JsonLexError(
              `invalid literal: expected '${lit.toString('latin1')}', found ${describeByte(buf, i)}`,
              base + i,
            );
          if (++this.literalAt === lit.length) {
            state = S_AFTER;
            if (depth === 0) this.done = true;
            if (depth <= hookDepth) hooks!.valueEnd(depth, base + i + 1);
          }
          continue;
        }
      }
    }
    if (state === S_STRING || state === S_ESCAPE || state === S_UNICODE) {
      if (this.isKey) {
        this.keyPieces.push(buf.subarray(this.keyStart));
        this.keyStart = 0;
      }
    }
    this.state = state;
    this.depth = depth;
    this.base = base + n;
  }

  /** The document ends: throws unless it held exactly one complete value. */
  end(): void {
    const state = this.state;
    if (this.done && state === S_AFTER) return;
    if (
      this.depth === 0 &&
      (state === S_ZERO || state === S_INT || state === S_FRAC || state === S_EXP_DIGITS)
    ) {
      if (this.hookDepth >= 0) this.hooks!.valueEnd(0, this.base);
      return;
    }
    const at = this.base;
    if (at === 0 && state === S_VALUE) throw new JsonLexError('empty file: expected a JSON value', at);
    let expected: string;
    switch (state) {
      case S_STRING:
      case S_ESCAPE:
      case S_UNICODE:
        expected = this.isKey ? "the closing '\"' of a key" : "the closing '\"' of a string";
        break;
      case S_COLON:
        expected = `':' after the key ${JSON.stringify(this.lastKey)}`;
        break;
      case S_KEY:
        expected = 'a key in double quotes';
        break;
      case S_KEY_OR_CLOSE:
        expected = "a key in double quotes or '}'";
        break;
      case S_VALUE_OR_CLOSE:
        expected = "a value or ']'";
        break;
      case S_AFTER:
        expected =
          this.stack[this.depth - 1] === OBJECT
            ? "',' or '}' after an object member"
            : "',' or ']' after an array element";
        break;
      case S_LITERAL:
        expected = `the rest of '${this.literal.toString('latin1')}'`;
        break;
      case S_VALUE:
        expected = 'a value';
        break;
      case S_DEFERRED: // the hooks' owner names the fault (checkJsonBytes); a fallback
        expected = 'the end of a deferred value';
        break;
      case S_ZERO:
      case S_INT:
      case S_FRAC:
      case S_EXP_DIGITS: // a complete number
        expected =
          this.stack[this.depth - 1] === OBJECT
            ? "',' or '}' after an object member"
            : "',' or ']' after an array element";
        break;
      default:
        expected = 'a digit';
    }
    const inside =
      this.depth === 0
        ? ''
        : this.stack[this.depth - 1] === OBJECT
          ? ' inside an object'
          : ' inside an array';
    throw new JsonLexError(`unexpected end of file${inside}: expected ${expected} (truncated file?)`, at);
  }

  /** A key's closing quote is at in-chunk offset `i`: decode it, check for a duplicate, call the hook. */
  private endKey(buf: Buffer, i: number, depth: number): void {
    let key: string;
    if (this.keyPieces.length === 0 && !this.keyEscaped) key = this.keyCache.get(buf, this.keyStart, i);
    else {
      const bytes = Buffer.concat([...this.keyPieces, buf.subarray(this.keyStart, i)]);
      // Only escaped keys need decoding; the checker has already validated the escapes.
      key = this.keyEscaped ? (JSON.parse(`"${bytes.toString('utf8')}"`) as string) : bytes.toString('utf8');
    }
    this.lastKey = key;
    const first = this.frames[depth]!.add(key, this.keyOffset);
    if (first >= 0) {
      throw new JsonLexError(`duplicate key ${JSON.stringify(key)}`, this.keyOffset, first);
    }
    if (depth <= this.hookDepth) this.hooks!.key(depth, key, this.keyOffset);
  }
}

/**
 * Check a whole document held in memory; throws {@link JsonLexError}, its offsets shifted by
 * `baseOffset` (where `bytes` lie in a bigger document).
 */
export function checkJsonBytes(bytes: Buffer, baseOffset = 0): void {
  try {
    const lexer = new JsonLexer();
    lexer.write(bytes);
    lexer.end();
  } catch (err) {
    if (!(err instanceof JsonLexError) || baseOffset === 0) throw err;
    throw new JsonLexError(
      err.message,
      err.offset + baseOffset,
      err.firstOffset === undefined ? undefined : err.firstOffset + baseOffset,
    );
  }
}

/**
 * The number of keys of all objects in `value`, at any depth. An array whose first element is not an
 * array or object is taken to hold none (polygons and RLE counts are long runs of numbers): a mixed
 * array makes the count too low, which only sends that value through the strict lexer.
 */
function countKeys(value: object): number {
  let n = 0;
  if (Array.isArray(value)) {
    const items = value as unknown[];
    if (items.length === 0 || typeof items[0] !== 'object') return 0;
    for (const x of items) if (typeof x === 'object' && x !== null) n += countKeys(x);
    return n;
  }
  const values = Object.values(value) as unknown[];
  n = values.length;
  for (let k = 0; k < values.length; k++) {
    const x = values[k];
    if (typeof x === 'object' && x !== null) n += countKeys(x);
  }
  return n;
}

/**
 * Parse and check a value whose bytes a lexer only delimited (see the constructor's `deferDepth`):
 * JSON.parse does the checking at native speed; only a value it refuses, or one with fewer keys than the
 * lexer counted colons (a duplicate key, which JSON.parse silently drops), goes through the strict
 * lexer to name the fault. Throws {@link JsonLexError} with offsets shifted by `baseOffset`.
 */
export function parseDeferredValue(raw: Buffer, baseOffset: number, colons: number): unknown {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    checkJsonBytes(raw, baseOffset);
    // Not expected: the lexer accepted what JSON.parse refused. Report JSON.parse's reason.
    throw new JsonLexError(`not valid JSON (${(err as Error).message})`, baseOffset);
  }
  if (typeof value === 'object' && value !== null && countKeys(value) !== colons)
    checkJsonBytes(raw, baseOffset);
  return value;
}

const NO_HOOKS: JsonLexHooks = { valueStart() {}, valueEnd() {}, key() {} };

/**
 * Parse a whole document held in memory, strictly (JSON.parse would accept duplicate keys and name
 * faults by offset); throws {@link JsonLexError}. The top-level container is checked by JSON.parse
 * and located here only on a fault (see {@link parseDeferredValue}), so this costs little more than
 * JSON.parse.
 */
export function parseJsonBytes(bytes: Buffer): unknown {
  const lexer = new JsonLexer(NO_HOOKS, 0, 0);
  lexer.write(bytes);
  if (lexer.isInDeferred) checkJsonBytes(bytes); // truncated: name where
  lexer.end();
  // Leading whitespace is fine for JSON.parse; only the offsets of its faults would shift, and the
  // strict lexer reports those from the document's start anyway.
  return parseDeferredValue(bytes, 0, lexer.deferredKeyCount);
}

/** Line and column of byte `offset` in `bytes`; the column counts characters, not bytes. */
export function positionInBytes(bytes: Buffer, offset: number): JsonPosition {
  return new PositionCounter().feed(bytes, offset).position;
}

/** Line and column of byte `offset` in the file at `path` (read again up to there). */
export async function positionInFile(path: string, offset: number): Promise<JsonPosition> {
  const counter = new PositionCounter();
  if (offset > 0)
    for await (const chunk of createReadStream(path, { end: offset - 1, highWaterMark: 1 << 20 }))
      counter.feed(chunk as Buffer, (chunk as Buffer).length);
  return counter.position;
}

/** Counts lines and characters (UTF-8 lead bytes) of the bytes fed to it. */
class PositionCounter {
  private line = 1;
  private column = 1;
  feed(bytes: Buffer, upTo: number): this {
    const end = Math.min(upTo, bytes.length);
    for (let i = 0; i < end; i++) {
      const c = bytes[i]!;
      if (c === LF) {
        this.line++;
        this.column = 1;
      } else if ((c & 0xc0) !== 0x80) this.column++;
    }
    return this;
  }
  get position(): JsonPosition {
    return { line: this.line, column: this.column };
  }
}

/**
 * The user-facing text of a fault: `file:line:column: malformed JSON: what`, with the position of the
 * first occurrence for a duplicate key.
 */
export function formatJsonLexError(
  file: string,
  err: JsonLexError,
  at: JsonPosition,
  first?: JsonPosition,
  /** What the file is, e.g. "COCO results", shown after "malformed JSON". */
  what?: string,
): string {
  const firstText = first ? ` (first at ${first.line}:${first.column})` : '';
  const whatText = what ? ` (${what})` : '';
  return `${file}:${at.line}:${at.column}: malformed JSON${whatText}: ${err.message}${firstText}`;
}
