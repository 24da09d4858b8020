/**
 * A small, strict XML reader for annotation files (PASCAL VOC `Annotations/*.xml`). It handles what such
 * files contain (declaration, comments, DOCTYPE, CDATA, attributes, the five predefined entities and
 * numeric character references) and reports malformed input with a line number, instead of guessing.
 * No external entities, no namespaces processing: names are taken literally.
 */

/** An element: its name, attributes, child elements and concatenated direct text. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/** Malformed XML; `line` is 1-based. */
export class XmlError extends Error {
  override readonly name = 'XmlError';
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
  }
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string, lineAt: () => number): string {
  if (!s.includes('&')) return s;
  return s.replace(/&([^;\s&<]*);?/g, (m, body: string) => {
    if (!m.endsWith(';')) throw new XmlError(`"&" must start an entity such as &amp;`, lineAt());
    if (body.startsWith('#x') || body.startsWith('#X')) {
      const cp = Number.parseInt(body.slice(2), 16);
      if (!Number.isFinite(cp) || !/^[0-9a-fA-F]+$/.test(body.slice(2)))
        throw new XmlError(`bad character reference ${m}`, lineAt());
      return String.fromCodePoint(cp);
    }
    if (body.startsWith('#')) {
      if (!/^[0-9]+$/.test(body.slice(1))) throw new XmlError(`bad character reference ${m}`, lineAt());
      return String.fromCodePoint(Number(body.slice(1)));
    }
    const v = ENTITIES[body];
    if (v === undefined) throw new XmlError(`unknown entity ${m}`, lineAt());
    return v;
  });
}

/** Parse a document and return its root element. */
export function parseXml(src: string): XmlElement {
  let pos = 0;
  const lineAt = (at = pos): number => {
    let n = 1;
    for (let i = 0; i < at && i < src.length; i++) if (src.charCodeAt(i) === 10) n++;
    return n;
  };
  const fail = (msg: string, at = pos): never => {
    throw new XmlError(msg, lineAt(at));
  };
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const nameRe = /[A-Za-z_:][-A-Za-z0-9_:.]*/y;
  const readName = (): string => {
    nameRe.lastIndex = pos;
    const m = nameRe.exec(src);
    if (!m) return fail('expected a name');
    pos = nameRe.lastIndex;
    return m[0];
  };
  const skipWs = () => {
    while (pos < src.length && /\s/.test(src[pos]!)) pos++;
  };
  if (src.charCodeAt(0) === 0xfeff) pos = 1;
  while (pos < src.length) {
    const lt = src.indexOf('<', pos);
    const textEnd = lt < 0 ? src.length : lt;
    if (textEnd > pos) {
      const raw = src.slice(pos, textEnd);
      const top = stack[stack.length - 1];
      if (top) top.text += decodeEntities(raw, () => lineAt());
      else if (raw.trim() !== '') fail('text outside the root element');
      pos = textEnd;
      continue;
    }
    if (src.startsWith('<!--', pos)) {
      const end = src.indexOf('-->', pos + 4);
      if (end < 0) fail('unterminated comment');
      pos = end + 3;
    } else if (src.startsWith('<![CDATA[', pos)) {
      const end = src.indexOf(']]>', pos + 9);
      if (end < 0) fail('unterminated CDATA section');
      const top = stack[stack.length - 1];
      if (!top) fail('CDATA outside the root element');
      top!.text += src.slice(pos + 9, end);
      pos = end + 3;
    } else if (src.startsWith('<?', pos)) {
      const end = src.indexOf('?>', pos + 2);
      if (end < 0) fail('unterminated processing instruction');
      pos = end + 2;
    } else if (src.startsWith('<!', pos)) {
      // DOCTYPE (possibly with an internal subset in brackets)
      let depth = 0;
      let i = pos + 2;
      for (; i < src.length; i++) {
        const c = src[i];
        if (c === '[') depth++;
        else if (c === ']') depth--;
        else if (c === '>' && depth <= 0) break;
      }
      if (i >= src.length) fail('unterminated declaration');
      pos = i + 1;
    } else if (src.startsWith('</', pos)) {
      pos += 2;
      const at = pos;
      const name = readName();
      skipWs();
      if (src[pos] !== '>') fail(`expected ">" to close </${name}`);
      pos++;
      const top = stack.pop();
      if (!top) fail(`closing tag </${name}> without an open element`, at);
      if (top!.name !== name) fail(`closing tag </${name}> does not match <${top!.name}>`, at);
    } else {
      pos++;
      const name = readName();
      const el: XmlElement = { name, attrs: {}, children: [], text: '' };
      for (;;) {
        skipWs();
        if (src.startsWith('/>', pos)) {
          pos += 2;
          break;
        }
        if (src[pos] === '>') {
          pos++;
          stack.push(el);
          break;
        }
        if (pos >= src.length) fail(`unterminated tag <${name}`);
        const an = readName();
        skipWs();
        if (src[pos] !== '=') fail(`attribute ${an} of <${name}> needs a value`);
        pos++;
        skipWs();
        const q = src[pos];
        if (q !== '"' && q !== "'") fail(`attribute ${an} of <${name}> must be quoted`);
        const end = src.indexOf(q!, pos + 1);
        if (end < 0) fail(`unterminated attribute value of ${an}`);
        el.attrs[an] = decodeEntities(src.slice(pos + 1, end), () => lineAt());
        pos = end + 1;
      }
      const parent = stack[stack.length - (stack[stack.length - 1] === el ? 2 : 1)];
      if (parent) parent.children.push(el);
      else if (root) fail(`a second root element <${name}>`);
      else root = el;
    }
  }
  if (stack.length > 0) fail(`<${stack[stack.length - 1]!.name}> is never closed`);
  if (!root) fail('no root element');
  return root!;
}

/** The first child element called `name`, if any. */
export function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}
