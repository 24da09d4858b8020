/**
 * Readers that turn PASCAL VOC data into {@link VocGroundTruth} / {@link VocDetections}:
 * - a devkit tree (`Annotations/*.xml` + `ImageSets/Main/<set>.txt`, optionally under `VOCdevkit/VOC20xx/`),
 * - the devkit's detection files (`comp4_det_<set>_<class>.txt`, lines `<image> <score> x1 y1 x2 y2`),
 * - COCO ground truth and COCO results, for VOC data converted to or loaded as COCO.
 *
 * COCO boxes `[x, y, w, h]` (0-based, continuous) become VOC corners `(x+1, y+1, x+w, y+h)` (1-based,
 * inclusive), the inverse of the usual VOC -> COCO conversion (Detectron2 subtracts 1 from xmin/ymin), so
 * the devkit's +1 overlap formula gives the plain continuous IoU.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';

import { ErrorType, permanent } from '../../../infra/errors';
import type { VocBoxes, VocDetections, VocGroundTruth } from './voc';
import { VOC_CLASSES } from '../dataset/voc';
import { child, parseXml, XmlError, type XmlElement } from './xml';

export { VOC_CLASSES } from '../dataset/voc';

function bad(message: string): never {
  throw permanent(ErrorType.InvalidInput, message);
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The directory holding `Annotations/` and `ImageSets/`: `root` itself, or the single `VOC*` folder below it
 * (or below `root/VOCdevkit`).
 */
export async function findVocRoot(root: string, year?: string): Promise<string> {
  if ((await isDir(join(root, 'Annotations'))) && (await isDir(join(root, 'ImageSets')))) return root;
  for (const base of [root, join(root, 'VOCdevkit')]) {
    if (!(await isDir(base))) continue;
    const names = (await readdir(base)).filter((n) => /^VOC/.test(n) && n !== 'VOCdevkit').sort();
    const cands: string[] = [];
    for (const n of names)
      if ((await isDir(join(base, n, 'Annotations'))) && (year === undefined || n.endsWith(year)))
        cands.push(n);
    if (cands.length === 1) return join(base, cands[0]!);
    if (cands.length > 1)
      bad(`${base} holds several VOC years (${cands.join(', ')}); point to one of them (or pass the year)`);
  }
  return bad(
    `${root} is not a VOC devkit directory: expected Annotations/ and ImageSets/Main/ (or VOCdevkit/VOC20xx/)`,
  );
}

function num(el: XmlElement | undefined, what: string, file: string): number {
  const t = el?.text.trim();
  if (t === undefined || t === '') bad(`${file}: missing <${what}>`);
  const v = Number(t);
  if (!Number.isFinite(v)) bad(`${file}: <${what}> must be a number, got ${JSON.stringify(t)}`);
  return v;
}

/** Options of {@link readVocDevkit}. */
export interface VocDevkitOptions {
  /** Class names; objects of other classes are an error. @default VOC_CLASSES */
  classes?: readonly string[];
  /** Pick this year's folder when the tree holds several (e.g. "2007"). */
  year?: string;
}

/**
 * Read the GT of image set `imageSet` (`ImageSets/Main/<imageSet>.txt`) from a devkit tree. Coordinates are
 * taken as written (integers in the real devkit; decimals are accepted); a missing `<difficult>` is 0.
 */
export async function readVocDevkit(
  root: string,
  imageSet: string,
  opts: VocDevkitOptions = {},
): Promise<VocGroundTruth> {
  const dir = await findVocRoot(root, opts.year);
  const classes = [...(opts.classes ?? VOC_CLASSES)];
  const classIndex = new Map(classes.map((c, i) => [c, i]));
  const setFile = join(dir, 'ImageSets', 'Main', `${imageSet}.txt`);
  let setText: string;
  try {
    setText = await readFile(setFile, 'utf8');
  } catch {
    const avail = (await readdir(join(dir, 'ImageSets', 'Main')).catch(() => [] as string[]))
      .filter((f) => f.endsWith('.txt') && !f.includes('_'))
      .map((f) => f.slice(0, -4));
    return bad(
      `image set ${JSON.stringify(imageSet)} not found: no ${setFile} (available: ${avail.join(', ') || 'none'})`,
    );
  }
  const images = setText
    .split(/\r?\n/)
    .map((l) => l.trim().split(/\s+/)[0]!)
    .filter((l) => l !== '');
  const imageIndex = new Map<string, number>();
  images.forEach((id, i) => {
    if (imageIndex.has(id)) bad(`${setFile}: image ${id} is listed twice`);
    imageIndex.set(id, i);
  });
  const acc = classes.map(() => ({ img: [] as number[], box: [] as number[], difficult: [] as number[] }));
  for (const [i, id] of images.entries()) {
    const file = join(dir, 'Annotations', `${id}.xml`);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return bad(`${file}: missing annotation for image ${id} of ${imageSet}.txt`);
    }
    let doc: XmlElement;
    try {
      doc = parseXml(text);
    } catch (err) {
      if (err instanceof XmlError) bad(`${file}: malformed XML, ${err.message}`);
      throw err;
    }
    for (const obj of doc.children.filter((c) => c.name === 'object')) {
      const name = child(obj, 'name')?.text.trim();
      if (!name) bad(`${file}: an <object> has no <name>`);
      const c = classIndex.get(name);
      if (c === undefined)
        bad(
          `${file}: object class ${JSON.stringify(name)} is not one of the ${classes.length} classes evaluated (${classes.slice(0, 5).join(', ')}, ...); pass the class list`,
        );
      const diffEl = child(obj, 'difficult');
      const difficult = diffEl && diffEl.text.trim() !== '' ? num(diffEl, 'difficult', file) : 0;
      const bb = child(obj, 'bndbox');
      if (!bb) bad(`${file}: object ${name} has no <bndbox>`);
      const x1 = num(child(bb, 'xmin'), 'xmin', file);
      const y1 = num(child(bb, 'ymin'), 'ymin', file);
      const x2 = num(child(bb, 'xmax'), 'xmax', file);
      const y2 = num(child(bb, 'ymax'), 'ymax', file);
      if (x2 < x1 || y2 < y1) bad(`${file}: object ${name} has xmax < xmin or ymax < ymin`);
      const a = acc[c]!;
      a.img.push(i);
      a.box.push(x1, y1, x2, y2);
      a.difficult.push(difficult ? 1 : 0);
    }
  }
  return { classes, images, imageIndex, objects: acc.map(toBoxes) };
}

function toBoxes(a: { img: number[]; box: number[]; difficult: number[] }): VocBoxes {
  return {
    img: Int32Array.from(a.img),
    box: Float64Array.from(a.box),
    difficult: Uint8Array.from(a.difficult),
  };
}

/** Where a class's detection file is, given the directory and the image set. */
async function findDetectionFiles(
  dir: string,
  imageSet: string,
  classes: readonly string[],
): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  for (const cls of classes) {
    const devkit = files.filter((f) =>
      new RegExp(`^comp\\d+_det_${escapeRe(imageSet)}_${escapeRe(cls)}\\.txt$`).test(basename(f)),
    );
    const plain = files.filter((f) => basename(f) === `${cls}.txt`);
    const cands = devkit.length > 0 ? devkit : plain;
    if (cands.length > 1)
      bad(
        `several detection files for class ${cls}: ${cands.map((f) => relative(dir, f)).join(', ')}; keep one`,
      );
    if (cands.length === 1) found.set(cls, cands[0]!);
  }
  return found;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Read the devkit's per-class detection files from `dir` (searched recursively): `comp<N>_det_<set>_<class>.txt`
 * (or `<class>.txt`, as Detectron2 writes them), each line `<image id> <score> <x1> <y1> <x2> <y2>`. A class
 * without a file has no detections; a directory with no file for any class is an error.
 */
export async function readVocDetectionFiles(
  dir: string,
  imageSet: string,
  gt: VocGroundTruth,
): Promise<VocDetections[]> {
  const files = await findDetectionFiles(dir, imageSet, gt.classes);
  if (files.size === 0)
    bad(
      `${dir}: no detection files found; expected comp4_det_${imageSet}_<class>.txt (or <class>.txt) for classes ${gt.classes.slice(0, 3).join(', ')}, ...`,
    );
  const out: VocDetections[] = [];
  for (const cls of gt.classes) {
    const file = files.get(cls);
    if (!file) {
      out.push({ img: new Int32Array(0), score: new Float64Array(0), box: new Float64Array(0) });
      continue;
    }
    const img: number[] = [];
    const score: number[] = [];
    const box: number[] = [];
    const lines = (await readFile(file, 'utf8')).split(/\r?\n/);
    lines.forEach((line, ln) => {
      const parts = line.trim().split(/\s+/);
      if (parts.length === 1 && parts[0] === '') return;
      const where = `${file}:${ln + 1}`;
      if (parts.length !== 6)
        bad(
          `${where}: expected "<image id> <score> <x1> <y1> <x2> <y2>", got ${JSON.stringify(line.trim())}`,
        );
      const i = gt.imageIndex.get(parts[0]!);
      if (i === undefined)
        bad(`${where}: image ${JSON.stringify(parts[0])} is not in the evaluated image set`);
      const nums = parts.slice(1).map(Number);
      if (!nums.every(Number.isFinite))
        bad(`${where}: score and box must be numbers, got ${JSON.stringify(line.trim())}`);
      img.push(i);
      score.push(nums[0]!);
      box.push(nums[1]!, nums[2]!, nums[3]!, nums[4]!);
    });
    out.push({ img: Int32Array.from(img), score: Float64Array.from(score), box: Float64Array.from(box) });
  }
  return out;
}

type Id = number | string;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * VOC ground truth from a COCO instances document: classes are the categories (sorted by id, named by
 * `name`), images are keyed by `String(id)` and also by their `file_name` stem (so devkit detection files
 * can name them). An annotation counts as difficult when `difficult`, `iscrowd` or `ignore` is truthy.
 */
export function vocGroundTruthFromCoco(
  doc: unknown,
  source = 'ground truth',
): VocGroundTruth & { catIndex: Map<Id, number> } {
  if (!isObject(doc) || !Array.isArray(doc.images) || !Array.isArray(doc.categories))
    bad(`${source}: expected a COCO instances JSON object {images, annotations, categories}`);
  const imgs = doc.images as unknown[];
  const cats = doc.categories as unknown[];
  const anns = (doc.annotations ?? []) as unknown;
  if (!Array.isArray(anns)) bad(`${source}: "annotations" must be a list`);
  const catList = cats.map((c, i) => {
    if (!isObject(c) || (typeof c.id !== 'number' && typeof c.id !== 'string'))
      bad(`${source}: categories[${i}].id must be a number or a string`);
    return { id: c.id, name: typeof c.name === 'string' ? c.name : String(c.id) };
  });
  catList.sort((a, b) =>
    typeof a.id === 'number' && typeof b.id === 'number' ? a.id - b.id : String(a.id) < String(b.id) ? -1 : 1,
  );
  const catIndex = new Map(catList.map((c, i) => [c.id, i]));
  const images: string[] = [];
  const imageIndex = new Map<string, number>();
  const byId = new Map<Id, number>();
  imgs.forEach((im, i) => {
    if (!isObject(im) || (typeof im.id !== 'number' && typeof im.id !== 'string'))
      bad(`${source}: images[${i}].id must be a number or a string`);
    if (byId.has(im.id)) bad(`${source}: images[${i}].id ${JSON.stringify(im.id)} is used twice`);
    byId.set(im.id, i);
    images.push(String(im.id));
    imageIndex.set(String(im.id), i);
  });
  imgs.forEach((im, i) => {
    const fn = (im as Record<string, unknown>).file_name;
    if (typeof fn === 'string') {
      const stem = basename(fn).replace(/\.[^.]*$/, '');
      if (!imageIndex.has(stem)) imageIndex.set(stem, i);
    }
  });
  const acc = catList.map(() => ({ img: [] as number[], box: [] as number[], difficult: [] as number[] }));
  (anns as unknown[]).forEach((a, j) => {
    if (!isObject(a)) bad(`${source}: annotations[${j}] must be an object`);
    const i = byId.get(a.image_id as Id);
    const c = catIndex.get(a.category_id as Id);
    if (i === undefined)
      bad(`${source}: annotations[${j}].image_id ${JSON.stringify(a.image_id)} is not in "images"`);
    if (c === undefined)
      bad(`${source}: annotations[${j}].category_id ${JSON.stringify(a.category_id)} is not in "categories"`);
    const b = cocoBoxToVoc(a.bbox, `${source}: annotations[${j}].bbox`);
    const t = acc[c]!;
    t.img.push(i);
    t.box.push(...b);
    t.difficult.push(a.difficult || a.iscrowd || a.ignore ? 1 : 0);
  });
  return { classes: catList.map((c) => c.name), images, imageIndex, objects: acc.map(toBoxes), catIndex };
}

function cocoBoxToVoc(v: unknown, where: string): [number, number, number, number] {
  if (!Array.isArray(v) || v.length !== 4 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
    bad(`${where} must be [x, y, width, height] (4 finite numbers), got ${JSON.stringify(v)}`);
  const [x, y, w, h] = v as number[];
  if (w! < 0 || h! < 0) bad(`${where} has a negative width or height`);
  return [x! + 1, y! + 1, x! + w!, y! + h!];
}

/**
 * Detections from a COCO results list. `image_id` is looked up as `String(image_id)` among the GT's image
 * keys. `category_id` is a COCO category id when the GT came from COCO (`catIndex`); for devkit GT it is the
 * 1-based index into the class list (so 0-based label + 1), or the class name.
 */
export function vocDetectionsFromCoco(
  results: unknown,
  gt: VocGroundTruth & { catIndex?: Map<Id, number> },
  source = 'detections',
): VocDetections[] {
  if (!Array.isArray(results))
    bad(`${source}: expected a list of COCO results [{image_id, category_id, bbox, score}]`);
  const acc = gt.classes.map(() => ({ img: [] as number[], score: [] as number[], box: [] as number[] }));
  const nameIndex = new Map(gt.classes.map((c, i) => [c, i]));
  (results as unknown[]).forEach((d, j) => {
    const where = `${source}[${j}]`;
    if (!isObject(d)) bad(`${where} must be an object`);
    const i = gt.imageIndex.get(String(d.image_id));
    if (i === undefined)
      bad(`${where}.image_id ${JSON.stringify(d.image_id)} is not an image of the evaluated set`);
    let c: number | undefined;
    if (gt.catIndex) c = gt.catIndex.get(d.category_id as Id);
    else if (typeof d.category_id === 'number' && Number.isInteger(d.category_id)) c = d.category_id - 1;
    else if (typeof d.category_id === 'string') c = nameIndex.get(d.category_id);
    if (c === undefined || c < 0 || c >= gt.classes.length)
      bad(
        `${where}.category_id ${JSON.stringify(d.category_id)} is not a class of the ground truth` +
          (gt.catIndex
            ? ''
            : ` (for devkit GT use 1..${gt.classes.length}, the 1-based class index, or the class name)`),
      );
    if (typeof d.score !== 'number' || !Number.isFinite(d.score))
      bad(`${where}.score must be a finite number`);
    const t = acc[c]!;
    t.img.push(i);
    t.score.push(d.score);
    t.box.push(...cocoBoxToVoc(d.bbox, `${where}.bbox`));
  });
  return acc.map((a) => ({
    img: Int32Array.from(a.img),
    score: Float64Array.from(a.score),
    box: Float64Array.from(a.box),
  }));
}
