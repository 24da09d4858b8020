/**
 * Writers of synthetic datasets in the real on-disk formats:
 *
 * - COCO:  `images/<12-digit id>.jpg`, `annotations/instances_train.json`, `annotations/instances_val.json`
 * - VOC:   `VOCdevkit/VOC<year>/{Annotations/*.xml, ImageSets/Main/*.txt, JPEGImages/*.jpg}`
 * - ImageNet: `train/<wnid>/<wnid>_<n>.JPEG`, `val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG`, `synsets.txt`
 *
 * Train image i is a pure function of (seed, 'train', i) and val image j of (seed, 'val', j): a train
 * set of N images is a prefix of one of M > N, and the val set does not depend on N. Files are written
 * in a fixed order with fixed encoder settings (sharp's bundled libjpeg, quality 92, 4:4:4), so the same
 * options give byte-identical files. Memory stays bounded: images and annotation records stream to disk.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';

import { ErrorType, permanent } from '../../../../infra/errors';
import {
  CLASSIFICATION_CLASSES,
  DETECTION_CLASSES,
  MAX_DETECTION_CLASSES,
  SHAPES,
  detectionCategoryName,
  wnidOf,
} from './primitives';
import {
  renderClassificationImage,
  renderDetectionScene,
  type DetectionSceneOptions,
  type SceneInstance,
} from './scene';
import { renderContactSheet, type SheetTile } from './contact-sheet';

/** JPEG settings: fixed, so output bytes are reproducible. 4:4:4 keeps small coloured objects intact. */
const JPEG = { quality: 92, chromaSubsampling: '4:4:4', mozjpeg: false } as const;

/** First image id of the val split of a COCO set (train ids are 1..N). */
export const COCO_VAL_ID_BASE = 10_000_000;

/** Progress callback: `done` of `total` images written. */
export type SynthProgress = (done: number, total: number) => void;

/** Options common to the detection generators. */
export interface DetectionSynthOptions extends Omit<DetectionSceneOptions, 'classes'> {
  seed: number | string;
  /** Train images. */
  images: number;
  /** Val images (a fixed set: it depends on the seed only). @default 300 */
  valImages?: number;
  /** Detection classes, 1..20. @default 12 */
  classes?: number;
}

/** What a generator wrote, for value outputs and logs. */
export interface SynthSummary {
  images: { train: number; val: number };
  annotations: { train: number; val: number };
  crowd: number;
  difficult: number;
  categories: string[];
  /** Per-category instance counts over train + val (crowds excluded). */
  perCategory: Record<string, number>;
  /** Non-crowd instances per COCO area range, with thresholds scaled to the image size. */
  areaRanges: { small: number; medium: number; large: number };
}

/**
 * JPEG-encodes and writes images with at most `window` encodes in flight (sharp runs them on libuv's
 * thread pool while the next scene renders). The first failure is rethrown by the next call.
 */
function createEncoder(window = 4): {
  write(path: string, pixels: Buffer, width: number, height: number): Promise<void>;
  drain(): Promise<void>;
} {
  const pending = new Set<Promise<void>>();
  let failure: Error | undefined;
  return {
    async write(path, pixels, width, height) {
      if (failure) throw failure;
      const { default: sharp } = await import('sharp');
      const job = sharp(pixels, { raw: { width, height, channels: 3 } })
        .jpeg(JPEG)
        .toFile(path)
        .then(
          () => undefined,
          (err: unknown) => {
            failure ??= err instanceof Error ? err : new Error(String(err));
          },
        );
      const tracked = job.finally(() => pending.delete(tracked));
      pending.add(tracked);
      if (pending.size >= window) await Promise.race(pending);
    },
    async drain() {
      await Promise.all(pending);
      if (failure) throw failure;
    },
  };
}

/** Appends JSON array elements to a temp file; keeps memory flat for any dataset size. */
class ArrayPart {
  private readonly stream: WriteStream;
  private first = true;
  count = 0;
  constructor(readonly path: string) {
    this.stream = createWriteStream(path);
  }
  async push(json: string): Promise<void> {
    const ok = this.stream.write(this.first ? json : `,${json}`);
    this.first = false;
    this.count++;
    if (!ok) await once(this.stream, 'drain');
  }
  async close(): Promise<void> {
    this.stream.end();
    await once(this.stream, 'finish');
  }
}

/** Assemble `{head, "images":[...], "annotations":[...], tail}` from parts, streaming. */
async function writeCocoFile(
  path: string,
  head: string,
  images: ArrayPart,
  annotations: ArrayPart,
  tail: string,
): Promise<void> {
  const out = createWriteStream(path);
  const put = async (s: string): Promise<void> => {
    if (!out.write(s)) await once(out, 'drain');
  };
  const copy = async (part: ArrayPart): Promise<void> => {
    for await (const chunk of createReadStream(part.path)) if (!out.write(chunk)) await once(out, 'drain');
    await rm(part.path);
  };
  await put(`${head},"images":[`);
  await copy(images);
  await put('],"annotations":[');
  await copy(annotations);
  await put(`],${tail}`);
  out.end();
  await once(out, 'finish');
}

function checkDetectionOptions(
  o: DetectionSynthOptions,
): Required<Pick<DetectionSynthOptions, 'classes' | 'valImages'>> {
  const classes = o.classes ?? 12;
  const valImages = o.valImages ?? 300;
  if (!Number.isInteger(classes) || classes < 1 || classes > MAX_DETECTION_CLASSES)
    throw permanent(
      ErrorType.InvalidInput,
      `classes must be an integer in 1..${MAX_DETECTION_CLASSES}, got ${classes}`,
    );
  if (!Number.isInteger(o.images) || o.images < 1)
    throw permanent(ErrorType.InvalidInput, `images must be a positive integer, got ${o.images}`);
  if (!Number.isInteger(valImages) || valImages < 0)
    throw permanent(ErrorType.InvalidInput, `valImages must be a non-negative integer, got ${valImages}`);
  if (!Number.isInteger(o.size) || o.size < 16 || o.size > 1024)
    throw permanent(ErrorType.InvalidInput, `size must be an integer in 16..1024 pixels, got ${o.size}`);
  return { classes, valImages };
}

function newSummary(categories: string[]): SynthSummary {
  return {
    images: { train: 0, val: 0 },
    annotations: { train: 0, val: 0 },
    crowd: 0,
    difficult: 0,
    categories,
    perCategory: Object.fromEntries(categories.map((c) => [c, 0])),
    areaRanges: { small: 0, medium: 0, large: 0 },
  };
}

function tally(summary: SynthSummary, inst: SceneInstance, size: number): void {
  if (inst.isCrowd) {
    summary.crowd++;
    return;
  }
  if (inst.difficult) summary.difficult++;
  const name = summary.categories[inst.category]!;
  summary.perCategory[name] = (summary.perCategory[name] ?? 0) + 1;
  const k = (size / 640) ** 2;
  if (inst.area < 32 * 32 * k) summary.areaRanges.small++;
  else if (inst.area < 96 * 96 * k) summary.areaRanges.medium++;
  else summary.areaRanges.large++;
}

/** The scene options a detection generator passes down. */
function sceneOptions(o: DetectionSynthOptions, classes: number): DetectionSceneOptions {
  const out: DetectionSceneOptions = { size: o.size, classes };
  if (o.meanObjects !== undefined) out.meanObjects = o.meanObjects;
  if (o.maxObjects !== undefined) out.maxObjects = o.maxObjects;
  if (o.sizeMix !== undefined) out.sizeMix = o.sizeMix;
  if (o.meanDistractors !== undefined) out.meanDistractors = o.meanDistractors;
  if (o.crowdRate !== undefined) out.crowdRate = o.crowdRate;
  return out;
}

/** COCO annotation record of a scene instance, in real COCO's key order. */
export function cocoAnnotationOf(
  inst: SceneInstance,
  imageId: number,
  annId: number,
): Record<string, unknown> {
  return {
    segmentation: inst.isCrowd ? inst.rle : inst.polygons,
    area: inst.area,
    iscrowd: inst.isCrowd ? 1 : 0,
    image_id: imageId,
    bbox: inst.bbox,
    category_id: inst.category + 1,
    id: annId,
  };
}

/** COCO image id of train/val image `index`. */
export function cocoImageId(split: 'train' | 'val', index: number): number {
  return split === 'train' ? index + 1 : COCO_VAL_ID_BASE + index + 1;
}

/** COCO `file_name` of an image id. */
export function cocoFileName(id: number): string {
  return `${String(id).padStart(12, '0')}.jpg`;
}

function tileOf(pixels: Buffer, size: number, instances: SceneInstance[], names: string[]): SheetTile {
  return {
    pixels,
    width: size,
    height: size,
    boxes: instances.map((inst) => ({
      bbox: inst.bbox,
      label: `${names[inst.category]!}${inst.isCrowd ? ' (crowd)' : inst.difficult ? ' (difficult)' : ''}`,
      colour: DETECTION_CLASSES[inst.category]!.colour,
      dashed: inst.isCrowd || inst.difficult,
    })),
  };
}

/**
 * Write a detection set in COCO format into `dir` (which must be empty or absent): `images/`,
 * `annotations/instances_train.json`, `annotations/instances_val.json`. With `contactSheet`, also
 * writes a PNG of the first 24 train images with their boxes to that path.
 */
export async function generateCocoDetection(
  dir: string,
  options: DetectionSynthOptions,
  hooks: { onProgress?: SynthProgress; contactSheet?: string; signal?: AbortSignal } = {},
): Promise<SynthSummary> {
  const { classes, valImages } = checkDetectionOptions(options);
  const specs = DETECTION_CLASSES.slice(0, classes);
  const names = specs.map(detectionCategoryName);
  const summary = newSummary(names);
  const imagesDir = join(dir, 'images');
  const annDir = join(dir, 'annotations');
  await mkdir(imagesDir, { recursive: true });
  await mkdir(annDir, { recursive: true });
  const encoder = createEncoder();
  const sceneOpts = sceneOptions(options, classes);
  const total = options.images + valImages;
  const tiles: SheetTile[] = [];
  const head = JSON.stringify({
    info: {
      description: `ablate synthetic detection set (seed ${options.seed}, ${classes} classes, ${options.size}px)`,
      version: '1.0',
      year: 2019,
      contributor: 'ablate dataset.synth',
      date_created: '2019/01/01',
    },
    licenses: [{ url: '', id: 1, name: 'CC0 1.0 (synthetic)' }],
  }).slice(0, -1);
  const tail = JSON.stringify({
    categories: specs.map((s, i) => ({ supercategory: SHAPES[s.shape]!, id: i + 1, name: names[i]! })),
  }).slice(1);
  let done = 0;
  for (const split of ['train', 'val'] as const) {
    const n = split === 'train' ? options.images : valImages;
    const images = new ArrayPart(join(annDir, `.images-${split}.part`));
    const anns = new ArrayPart(join(annDir, `.annotations-${split}.part`));
    for (let i = 0; i < n; i++) {
      hooks.signal?.throwIfAborted();
      const scene = renderDetectionScene(options.seed, split, i, sceneOpts);
      const id = cocoImageId(split, i);
      const fileName = cocoFileName(id);
      await encoder.write(join(imagesDir, fileName), scene.pixels, scene.width, scene.height);
      await images.push(
        JSON.stringify({ license: 1, file_name: fileName, height: scene.height, width: scene.width, id }),
      );
      for (const [k, inst] of scene.instances.entries()) {
        await anns.push(JSON.stringify(cocoAnnotationOf(inst, id, id * 100 + k)));
        tally(summary, inst, options.size);
      }
      if (split === 'train' && tiles.length < 24)
        tiles.push(tileOf(scene.pixels, options.size, scene.instances, names));
      hooks.onProgress?.(++done, total);
    }
    await images.close();
    await anns.close();
    summary.images[split] = images.count;
    summary.annotations[split] = anns.count;
    await writeCocoFile(join(annDir, `instances_${split}.json`), head, images, anns, tail);
  }
  await encoder.drain();
  if (hooks.contactSheet)
    await writeFile(
      hooks.contactSheet,
      await renderContactSheet(tiles, {
        columns: 6,
        title: `COCO synthetic, seed ${options.seed}: first ${tiles.length} train images (dashed: crowd/difficult)`,
      }),
    );
  return summary;
}

/** PASCAL VOC image name of train/val image `index`. */
export function vocImageName(year: string, split: 'train' | 'val', index: number): string {
  const n = (split === 'train' ? 0 : 500_000) + index + 1;
  return year === '2007' ? String(n).padStart(6, '0') : `${year}_${String(n).padStart(6, '0')}`;
}

/** The VOC object of a scene instance: 1-based inclusive integer corners, VOC's convention. */
export function vocObjectOf(
  inst: SceneInstance,
  names: readonly string[],
  width: number,
  height: number,
): {
  name: string;
  truncated: boolean;
  occluded: boolean;
  difficult: boolean;
  bbox: [number, number, number, number];
} {
  const [x, y, w, h] = inst.bbox;
  const xmin = Math.min(width, Math.max(1, Math.floor(x) + 1));
  const ymin = Math.min(height, Math.max(1, Math.floor(y) + 1));
  const xmax = Math.min(width, Math.max(xmin, Math.ceil(x + w)));
  const ymax = Math.min(height, Math.max(ymin, Math.ceil(y + h)));
  return {
    name: names[inst.category]!,
    truncated: inst.truncated,
    occluded: inst.occluded,
    difficult: inst.difficult,
    bbox: [xmin, ymin, xmax, ymax],
  };
}

function vocXml(
  year: string,
  name: string,
  width: number,
  height: number,
  objects: ReturnType<typeof vocObjectOf>[],
): string {
  const lines = [
    '<annotation>',
    `\t<folder>VOC${year}</folder>`,
    `\t<filename>${name}.jpg</filename>`,
    '\t<source>',
    '\t\t<database>ablate synthetic</database>',
    '\t\t<annotation>ablate dataset.synth</annotation>',
    '\t\t<image>procedural</image>',
    '\t</source>',
    '\t<size>',
    `\t\t<width>${width}</width>`,
    `\t\t<height>${height}</height>`,
    '\t\t<depth>3</depth>',
    '\t</size>',
    '\t<segmented>0</segmented>',
  ];
  for (const o of objects) {
    lines.push(
      '\t<object>',
      `\t\t<name>${o.name}</name>`,
      '\t\t<pose>Unspecified</pose>',
      `\t\t<truncated>${o.truncated ? 1 : 0}</truncated>`,
      `\t\t<occluded>${o.occluded ? 1 : 0}</occluded>`,
      `\t\t<difficult>${o.difficult ? 1 : 0}</difficult>`,
      '\t\t<bndbox>',
      `\t\t\t<xmin>${o.bbox[0]}</xmin>`,
      `\t\t\t<ymin>${o.bbox[1]}</ymin>`,
      `\t\t\t<xmax>${o.bbox[2]}</xmax>`,
      `\t\t\t<ymax>${o.bbox[3]}</ymax>`,
      '\t\t</bndbox>',
      '\t</object>',
    );
  }
  lines.push('</annotation>', '');
  return lines.join('\n');
}

/**
 * Write a detection set as a PASCAL VOC devkit under `dir`: `VOCdevkit/VOC<year>/` with
 * `JPEGImages/`, `Annotations/`, and `ImageSets/Main/{train,val,trainval}.txt` plus the per-class
 * `<class>_<set>.txt` files (1 present, -1 absent, 0 only difficult instances), as in the real devkit.
 * Crowd regions become one object flagged `difficult`.
 */
export async function generateVocDetection(
  dir: string,
  options: DetectionSynthOptions & { year?: '2007' | '2012' },
  hooks: { onProgress?: SynthProgress; contactSheet?: string; signal?: AbortSignal } = {},
): Promise<SynthSummary> {
  const { classes, valImages } = checkDetectionOptions(options);
  const year = options.year ?? '2012';
  if (options.images >= 500_000 || valImages >= 500_000)
    throw permanent(ErrorType.InvalidInput, 'VOC sets are limited to 499,999 train and 499,999 val images');
  const specs = DETECTION_CLASSES.slice(0, classes);
  const names = specs.map(detectionCategoryName);
  const summary = newSummary(names);
  const root = join(dir, 'VOCdevkit', `VOC${year}`);
  const jpegDir = join(root, 'JPEGImages');
  const annDir = join(root, 'Annotations');
  const setDir = join(root, 'ImageSets', 'Main');
  for (const d of [jpegDir, annDir, setDir]) await mkdir(d, { recursive: true });
  const encoder = createEncoder();
  const sceneOpts = sceneOptions(options, classes);
  const total = options.images + valImages;
  const tiles: SheetTile[] = [];
  const sets: Record<'train' | 'val', string[]> = { train: [], val: [] };
  // Per class and split: 1 / 0 / -1 per image, in image order.
  const perClass = names.map(() => ({ train: [] as string[], val: [] as string[] }));
  let done = 0;
  for (const split of ['train', 'val'] as const) {
    const n = split === 'train' ? options.images : valImages;
    for (let i = 0; i < n; i++) {
      hooks.signal?.throwIfAborted();
      const scene = renderDetectionScene(options.seed, split, i, sceneOpts);
      const name = vocImageName(year, split, i);
      await encoder.write(join(jpegDir, `${name}.jpg`), scene.pixels, scene.width, scene.height);
      const objects = scene.instances.map((inst) => vocObjectOf(inst, names, scene.width, scene.height));
      await writeFile(join(annDir, `${name}.xml`), vocXml(year, name, scene.width, scene.height, objects));
      sets[split].push(name);
      for (const [c, cls] of names.entries()) {
        const mine = objects.filter((o) => o.name === cls);
        const flag = mine.length === 0 ? '-1' : mine.some((o) => !o.difficult) ? ' 1' : ' 0';
        perClass[c]![split].push(`${name} ${flag}`);
      }
      for (const inst of scene.instances) tally(summary, inst, options.size);
      summary.annotations[split] += objects.length;
      if (split === 'train' && tiles.length < 24)
        tiles.push(tileOf(scene.pixels, options.size, scene.instances, names));
      hooks.onProgress?.(++done, total);
    }
    summary.images[split] = n;
  }
  await encoder.drain();
  const lines = (xs: string[]): string => (xs.length > 0 ? `${xs.join('\n')}\n` : '');
  await writeFile(join(setDir, 'train.txt'), lines(sets.train));
  await writeFile(join(setDir, 'val.txt'), lines(sets.val));
  await writeFile(join(setDir, 'trainval.txt'), lines([...sets.train, ...sets.val]));
  for (const [c, cls] of names.entries()) {
    const p = perClass[c]!;
    await writeFile(join(setDir, `${cls}_train.txt`), lines(p.train));
    await writeFile(join(setDir, `${cls}_val.txt`), lines(p.val));
    await writeFile(join(setDir, `${cls}_trainval.txt`), lines([...p.train, ...p.val]));
  }
  if (hooks.contactSheet)
    await writeFile(
      hooks.contactSheet,
      await renderContactSheet(tiles, {
        columns: 6,
        title: `VOC${year} synthetic, seed ${options.seed}: first ${tiles.length} train images (dashed: difficult)`,
      }),
    );
  return summary;
}

/** Options of the classification generator. */
export interface ClassificationSynthOptions {
  seed: number | string;
  /** Train images in total, spread evenly over the classes (the first classes get the remainder). */
  images: number;
  /** Number of classes, 2..100. @default 100 */
  classes?: number;
  /** Val images per class. @default 10 */
  valPerClass?: number;
  /** Image side in pixels. @default 64 */
  size?: number;
}

/** What the classification generator wrote. */
export interface ClassificationSummary {
  classes: number;
  images: { train: number; val: number };
  /** wnid -> human name, in label order. */
  synsets: Array<{ wnid: string; name: string }>;
}

/**
 * Write a classification set in ImageNet folder layout under `dir`: `train/<wnid>/<wnid>_<n>.JPEG`,
 * `val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG` (val already sorted into class folders, as most
 * training code expects) and `synsets.txt` (`<wnid> <name>` per line, like LOC_synset_mapping.txt).
 */
export async function generateImagenetClassification(
  dir: string,
  options: ClassificationSynthOptions,
  hooks: { onProgress?: SynthProgress; contactSheet?: string; signal?: AbortSignal } = {},
): Promise<ClassificationSummary> {
  const classes = options.classes ?? 100;
  const size = options.size ?? 64;
  const valPerClass = options.valPerClass ?? 10;
  if (!Number.isInteger(classes) || classes < 2 || classes > CLASSIFICATION_CLASSES.length)
    throw permanent(ErrorType.InvalidInput, `classes must be an integer in 2..100, got ${classes}`);
  if (!Number.isInteger(options.images) || options.images < classes)
    throw permanent(
      ErrorType.InvalidInput,
      `images must be an integer >= classes (${classes}) so every class has an image, got ${options.images}`,
    );
  if (!Number.isInteger(size) || size < 16 || size > 1024)
    throw permanent(ErrorType.InvalidInput, `size must be an integer in 16..1024 pixels, got ${size}`);
  if (!Number.isInteger(valPerClass) || valPerClass < 0)
    throw permanent(ErrorType.InvalidInput, `valPerClass must be a non-negative integer, got ${valPerClass}`);
  const synsets = CLASSIFICATION_CLASSES.slice(0, classes).map((c, k) => ({ wnid: wnidOf(k), name: c.name }));
  const encoder = createEncoder();
  const total = options.images + valPerClass * classes;
  const tiles: SheetTile[] = [];
  let done = 0;
  let trainCount = 0;
  let valCount = 0;
  for (const [k, { wnid }] of synsets.entries()) {
    const perClass = Math.floor(options.images / classes) + (k < options.images % classes ? 1 : 0);
    await mkdir(join(dir, 'train', wnid), { recursive: true });
    await mkdir(join(dir, 'val', wnid), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      hooks.signal?.throwIfAborted();
      const pixels = renderClassificationImage(options.seed, 'train', k, i, size);
      await encoder.write(join(dir, 'train', wnid, `${wnid}_${i + 1}.JPEG`), pixels, size, size);
      if (i === 0 && tiles.length < 48)
        tiles.push({ pixels, width: size, height: size, caption: synsets[k]!.name });
      trainCount++;
      hooks.onProgress?.(++done, total);
    }
    for (let i = 0; i < valPerClass; i++) {
      const pixels = renderClassificationImage(options.seed, 'val', k, i, size);
      const n = k * valPerClass + i + 1;
      await encoder.write(
        join(dir, 'val', wnid, `ILSVRC2012_val_${String(n).padStart(8, '0')}.JPEG`),
        pixels,
        size,
        size,
      );
      valCount++;
      hooks.onProgress?.(++done, total);
    }
  }
  await encoder.drain();
  await writeFile(join(dir, 'synsets.txt'), synsets.map((s) => `${s.wnid} ${s.name}\n`).join(''));
  if (hooks.contactSheet)
    await writeFile(
      hooks.contactSheet,
      await renderContactSheet(tiles, {
        columns: 8,
        title: `ImageNet-layout synthetic, seed ${options.seed}: one train image of each of the first ${tiles.length} classes`,
      }),
    );
  return { classes, images: { train: trainCount, val: valCount }, synsets };
}
