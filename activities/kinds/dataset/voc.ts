/**
 * PASCAL VOC devkits: `VOCdevkit/VOC<year>/{Annotations/<id>.xml, ImageSets/Main/<set>.txt,
 * JPEGImages/<id>.jpg}`. Boxes stay in VOC's convention (1-based, inclusive integer corners) in
 * {@link VocObject}; {@link vocToCoco} converts to COCO boxes the way Detectron2 does
 * (x = xmin - 1, w = xmax - xmin + 1).
 *
 * The XML reader is a small, strict element parser (VOC files use no namespaces, DTDs or CDATA): it
 * reports malformed files with path and line instead of guessing.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { ErrorType, permanent } from '../../../infra/errors';
import type { CocoAnnotation, CocoDataset } from './coco';
import { BBOX_TOLERANCE_PX, Issues, requireImages } from './validate';

/** The 20 PASCAL VOC classes, in the devkit's order. */
export const VOC_CLASSES = [
  'aeroplane',
  'bicycle',
  'bird',
  'boat',
  'bottle',
  'bus',
  'car',
  'cat',
  'chair',
  'cow',
  'diningtable',
  'dog',
  'horse',
  'motorbike',
  'person',
  'pottedplant',
  'sheep',
  'sofa',
  'train',
  'tvmonitor',
] as const;

/** One annotated object. */
export interface VocObject {
  name: string;
  /** [xmin, ymin, xmax, ymax], 1-based inclusive pixel corners, as written in the XML. */
  bbox: [number, number, number, number];
  difficult: boolean;
  truncated: boolean;
  occluded: boolean;
  pose: string;
}

/** One image of an image set. */
export interface VocImage {
  /** The id in the ImageSet file, e.g. `2008_000008`. */
  id: string;
  /** Absolute path of the JPEG. */
  path: string;
  width: number;
  height: number;
  depth: number;
  objects: VocObject[];
}

/** A loaded image set. */
export interface VocDataset {
  /** The `VOC<year>` directory. */
  root: string;
  year: string;
  imageSet: string;
  /** Class names: `options.classes`, or the sorted names found. */
  classes: string[];
  images: VocImage[];
}

/** A parsed XML element. */
interface XmlElement {
  name: string;
  children: XmlElement[];
  text: string;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? m;
  });
}

/** Parse an XML document into elements (attributes are read and ignored). */
export function parseXml(text: string, file: string): XmlElement {
  const root: XmlElement = { name: '#document', children: [], text: '' };
  const stack: XmlElement[] = [root];
  let i = 0;
  const line = (pos: number): number => text.slice(0, pos).split('\n').length;
  const fail = (pos: number, what: string): never => {
    throw permanent(ErrorType.InvalidInput, `${file}:${line(pos)}: malformed XML: ${what}`);
  };
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const chunk = lt < 0 ? text.slice(i) : text.slice(i, lt);
    if (chunk.trim() !== '') stack[stack.length - 1]!.text += decodeEntities(chunk);
    if (lt < 0) break;
    if (text.startsWith('<!--', lt)) {
      const end = text.indexOf('-->', lt);
      if (end < 0) fail(lt, 'unterminated comment');
      i = end + 3;
      continue;
    }
    if (text.startsWith('<?', lt) || text.startsWith('<!', lt)) {
      const end = text.indexOf('>', lt);
      if (end < 0) fail(lt, 'unterminated declaration');
      i = end + 1;
      continue;
    }
    const gt = text.indexOf('>', lt);
    if (gt < 0) fail(lt, 'unterminated tag');
    const body = text.slice(lt + 1, gt);
    if (body.startsWith('/')) {
      const name = body.slice(1).trim();
      const open = stack.pop()!;
      if (open.name !== name) fail(lt, `</${name}> closes <${open.name}>`);
    } else {
      const selfClosing = body.endsWith('/');
      const name = /^[A-Za-z_][\w.:-]*/.exec(body)?.[0];
      if (!name) fail(lt, `bad tag <${body}>`);
      const el: XmlElement = { name: name!, children: [], text: '' };
      stack[stack.length - 1]!.children.push(el);
      if (!selfClosing) stack.push(el);
    }
    i = gt + 1;
  }
  if (stack.length !== 1) fail(text.length, `<${stack[stack.length - 1]!.name}> is never closed`);
  return root;
}

const child = (el: XmlElement, name: string): XmlElement | undefined =>
  el.children.find((c) => c.name === name);
const textOf = (el: XmlElement, name: string): string | undefined => child(el, name)?.text.trim();

/** Where a VOC<year> directory is, given a devkit root, its parent, or the VOC<year> directory itself. */
export async function resolveVocRoot(root: string, year: string): Promise<string> {
  for (const candidate of [join(root, 'VOCdevkit', `VOC${year}`), join(root, `VOC${year}`), root]) {
    try {
      if ((await stat(join(candidate, 'ImageSets', 'Main'))).isDirectory()) return candidate;
    } catch {
      // try the next layout
    }
  }
  throw permanent(
    ErrorType.DatasetNotFound,
    `${root}: no VOC${year} devkit here (looked for VOCdevkit/VOC${year}/ImageSets/Main, VOC${year}/ImageSets/Main and ImageSets/Main)`,
  );
}

/** Read an ImageSet file: one id per line (per-class files carry a flag after the id, ignored here). */
export async function readImageSet(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw permanent(ErrorType.DatasetNotFound, `${file}: image set not found`);
    throw err;
  }
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0]!)
    .filter((l) => l !== '');
}

/** Parse one annotation XML into an image record, adding problems to `issues`. */
export function parseVocAnnotation(
  xml: string,
  file: string,
  id: string,
  imagePath: string,
  issues: Issues,
  classes?: ReadonlySet<string>,
): VocImage | undefined {
  const doc = parseXml(xml, file);
  const ann = child(doc, 'annotation');
  if (!ann) {
    issues.add(`${file}: no <annotation> element`);
    return undefined;
  }
  const size = child(ann, 'size');
  const width = Number(size && textOf(size, 'width'));
  const height = Number(size && textOf(size, 'height'));
  const depth = Number((size && textOf(size, 'depth')) ?? 3);
  if (!Number.isInteger(width) || width <= 0 || !Number.isInteger(height) || height <= 0) {
    issues.add(`${file}: <size> must hold positive integer <width> and <height>, got ${width}x${height}`);
    return undefined;
  }
  const objects: VocObject[] = [];
  for (const [k, obj] of ann.children.filter((c) => c.name === 'object').entries()) {
    const at = `${file}: object ${k + 1}`;
    const name = textOf(obj, 'name') ?? '';
    if (name === '') issues.add(`${at}: missing <name>`);
    else if (classes && !classes.has(name)) issues.add(`${at}: unknown category ${JSON.stringify(name)}`);
    const box = child(obj, 'bndbox');
    const nums = ['xmin', 'ymin', 'xmax', 'ymax'].map((f) => Number(box && textOf(box, f)));
    if (!box || !nums.every(Number.isFinite)) {
      issues.add(`${at} (${name}): <bndbox> must hold numeric xmin, ymin, xmax, ymax`);
      continue;
    }
    const [xmin, ymin, xmax, ymax] = nums as [number, number, number, number];
    if (xmax < xmin || ymax < ymin)
      issues.add(
        `${at} (${name}): bndbox [${nums.join(', ')}] has a negative size (xmax < xmin or ymax < ymin)`,
      );
    // Valid corners are 1..width / 1..height; allow BBOX_TOLERANCE_PX of slack, as for COCO.
    else if (
      xmin < 1 - BBOX_TOLERANCE_PX ||
      ymin < 1 - BBOX_TOLERANCE_PX ||
      xmax > width + BBOX_TOLERANCE_PX ||
      ymax > height + BBOX_TOLERANCE_PX
    )
      issues.add(`${at} (${name}): bndbox [${nums.join(', ')}] lies outside the ${width}x${height} image`);
    const flag = (f: string): boolean => (textOf(obj, f) ?? '0') === '1';
    objects.push({
      name,
      bbox: [xmin, ymin, xmax, ymax],
      difficult: flag('difficult'),
      truncated: flag('truncated'),
      occluded: flag('occluded'),
      pose: textOf(obj, 'pose') ?? 'Unspecified',
    });
  }
  return { id, path: imagePath, width, height, depth, objects };
}

/** Options of {@link loadVocDevkit}. */
export interface LoadVocOptions {
  /** Known class names; an object with another name is an error. Default: accept all, list them sorted. */
  classes?: readonly string[];
  /** Check that each JPEG exists (stat only; decoding is readImageRgb's job). @default true */
  checkImages?: boolean;
}

/**
 * Load image set `imageSet` (e.g. `trainval`) of `VOC<year>` under `root` (the devkit, its parent or
 * the VOC<year> directory). Problems (missing XML or JPEG, duplicate ids, unknown classes, bad boxes)
 * are thrown together; an empty set throws EmptyDataset.
 */
export async function loadVocDevkit(
  root: string,
  year: string,
  imageSet: string,
  options: LoadVocOptions = {},
): Promise<VocDataset> {
  const dir = await resolveVocRoot(root, year);
  const setFile = join(dir, 'ImageSets', 'Main', `${imageSet}.txt`);
  const ids = await readImageSet(setFile);
  const issues = new Issues(setFile);
  requireImages(setFile, ids.length);
  const known = options.classes ? new Set(options.classes) : undefined;
  const seen = new Map<string, number>();
  const images: VocImage[] = [];
  for (const [line, id] of ids.entries()) {
    const first = seen.get(id);
    if (first !== undefined) {
      issues.add(`line ${line + 1}: duplicate image id ${id} (first on line ${first + 1})`);
      continue;
    }
    seen.set(id, line);
    const xmlPath = join(dir, 'Annotations', `${id}.xml`);
    let xml: string;
    try {
      xml = await readFile(xmlPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      issues.add(`line ${line + 1}: image ${id} has no annotation file ${xmlPath}`);
      continue;
    }
    const imagePath = join(dir, 'JPEGImages', `${id}.jpg`);
    const image = parseVocAnnotation(xml, xmlPath, id, imagePath, issues, known);
    if (!image) continue;
    if (options.checkImages ?? true) {
      try {
        await stat(imagePath);
      } catch {
        issues.add(`line ${line + 1}: image ${id} is missing: ${imagePath} not found`);
        continue;
      }
    }
    images.push(image);
  }
  issues.throwIfAny();
  const classes = options.classes
    ? [...options.classes]
    : [...new Set(images.flatMap((im) => im.objects.map((o) => o.name)))].sort();
  return { root: dir, year, imageSet, classes, images };
}

/**
 * Convert a VOC set to COCO records: categories 1..K in `classes` order, images 1..N in set order
 * (`file_name` = `<id>.jpg`, relative to JPEGImages), boxes x = xmin - 1, w = xmax - xmin + 1.
 * `difficult` objects become `iscrowd: 1`, so COCO-style evaluation ignores them as VOC's does.
 */
export function vocToCoco(voc: VocDataset): CocoDataset {
  const catId = new Map(voc.classes.map((c, i) => [c, i + 1]));
  const annotations: CocoAnnotation[] = [];
  const images = voc.images.map((im, i) => {
    for (const o of im.objects) {
      const [xmin, ymin, xmax, ymax] = o.bbox;
      const w = xmax - xmin + 1;
      const h = ymax - ymin + 1;
      annotations.push({
        id: annotations.length + 1,
        image_id: i + 1,
        category_id: catId.get(o.name) ?? 0,
        bbox: [xmin - 1, ymin - 1, w, h],
        area: w * h,
        iscrowd: o.difficult ? 1 : 0,
      });
    }
    return { id: i + 1, file_name: `${im.id}.jpg`, width: im.width, height: im.height };
  });
  return {
    images,
    annotations,
    categories: voc.classes.map((name, i) => ({ id: i + 1, name })),
  };
}
