/**
 * A strict JSON parser that remembers where every value came from, so that every error can name its
 * line and column, and that rejects duplicate keys (which JSON.parse silently merges: a pipeline with
 * two steps called "train" must be an error, not a lost step).
 */

/** 1-based line and column. */
export interface SourcePosition {
  line: number;
  column: number;
}

/** A parse error with its position. */
export class JsonSyntaxError extends Error {
  override readonly name = 'JsonSyntaxError';
  constructor(
    message: string,
    readonly position: SourcePosition,
  ) {
    super(message);
  }
}

/** A duplicate key: reported like a schema error (at its JSON pointer), not as a syntax error. */
export interface DuplicateKey {
  pointer: string;
  key: string;
  position: SourcePosition;
  first: SourcePosition;
}

export interface ParsedJson {
  value: unknown;
  /** JSON pointer -> position of the value (for object members: of the key). */
  positions: Map<string, SourcePosition>;
  duplicates: DuplicateKey[];
}

/** Escape one JSON-pointer token (RFC 6901). */
export function escapePointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Parse `text`; throws {@link JsonSyntaxError} with a position for malformed input. */
export function parseJsonWithPositions(text: string): ParsedJson {
  const positions = new Map<string, SourcePosition>();
  const duplicates: DuplicateKey[] = [];
  let i = 0;
  // Line starts, for offset -> line/column.
  const lineStarts = [0];
  for (let k = 0; k < text.length; k++) if (text.charCodeAt(k) === 10) lineStarts.push(k + 1);

  const positionOf = (offset: number): SourcePosition => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - lineStarts[lo]! + 1 };
  };
  const fail = (message: string, offset = i): never => {
    throw new JsonSyntaxError(message, positionOf(offset));
  };
  const describe = (offset: number): string =>
    offset >= text.length ? 'end of input' : `${JSON.stringify(text[offset])}`;

  const skipWhitespace = (): void => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else break;
    }
  };

  const parseString = (): string => {
    const start = i;
    i++; // opening quote
    let out = '';
    let runStart = i;
    for (;;) {
      if (i >= text.length) fail('unterminated string', start);
      const c = text.charCodeAt(i);
      if (c === 34) {
        out += text.slice(runStart, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('control character in string (escape it, e.g. \\n)');
      if (c === 92) {
        out += text.slice(runStart, i);
        const e = text[i + 1];
        const simple: Record<string, string> = {
          '"': '"',
          '\\': '\\',
          '/': '/',
          b: '\b',
          f: '\f',
          n: '\n',
          r: '\r',
          t: '\t',
        };
        if (e !== undefined && simple[e] !== undefined) {
          out += simple[e];
          i += 2;
        } else if (e === 'u') {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape in string');
          out += String.fromCharCode(parseInt(hex, 16));
          i += 6;
        } else {
          fail(`bad escape \\${e ?? ''} in string`);
        }
        runStart = i;
        continue;
      }
      i++;
    }
  };

  const parseNumber = (): number => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) fail(`unexpected ${describe(i)}: expected a value`);
    i += m![0].length;
    return Number(m![0]);
  };

  const parseValue = (pointer: string): unknown => {
    skipWhitespace();
    if (!positions.has(pointer)) positions.set(pointer, positionOf(i));
    const c = text[i];
    if (c === '{') return parseObject(pointer);
    if (c === '[') return parseArray(pointer);
    if (c === '"') return parseString();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return parseNumber();
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return value;
      }
    }
    if (c === "'") fail('strings must use double quotes');
    return fail(`unexpected ${describe(i)}: expected a value`);
  };

  const parseObject = (pointer: string): Record<string, unknown> => {
    i++; // {
    const out: Record<string, unknown> = {};
    const seen = new Map<string, SourcePosition>();
    skipWhitespace();
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      skipWhitespace();
      if (text[i] !== '"') {
        fail(
          text[i] === '}'
            ? 'trailing comma before "}"'
            : `unexpected ${describe(i)}: expected a "key" in double quotes`,
        );
      }
      const keyPos = positionOf(i);
      const key = parseString();
      const childPointer = `${pointer}/${escapePointerToken(key)}`;
      const first = seen.get(key);
      if (first) duplicates.push({ pointer: childPointer, key, position: keyPos, first });
      else {
        seen.set(key, keyPos);
        positions.set(childPointer, keyPos);
      }
      skipWhitespace();
      if (text[i] !== ':') fail(`unexpected ${describe(i)}: expected ":" after key "${key}"`);
      i++;
      const value = parseValue(first ? `${childPointer}#dup` : childPointer);
      if (!first)
        Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      skipWhitespace();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '}') {
        i++;
        return out;
      }
      fail(`unexpected ${describe(i)}: expected "," or "}"`);
    }
  };

  const parseArray = (pointer: string): unknown[] => {
    i++; // [
    const out: unknown[] = [];
    skipWhitespace();
    if (text[i] === ']') {
      i++;
      return out;
    }
    for (;;) {
      skipWhitespace();
      if (text[i] === ']') fail('trailing comma before "]"');
      out.push(parseValue(`${pointer}/${out.length}`));
      skipWhitespace();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === ']') {
        i++;
        return out;
      }
      fail(`unexpected ${describe(i)}: expected "," or "]"`);
    }
  };

  if (text.charCodeAt(0) === 0xfeff) i = 1; // BOM
  skipWhitespace();
  if (i >= text.length) fail('the file is empty: expected a JSON object');
  const value = parseValue('');
  skipWhitespace();
  if (i < text.length) fail(`unexpected ${describe(i)} after the end of the JSON value`);
  return { value, positions, duplicates };
}
