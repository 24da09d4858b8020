/**
 * COCO instances JSON: types, a streaming loader with validation, and cross-reference checks.
 *
 * The loader never reads the file as one string: {@link scanJsonObject} hands over one record at a
 * time, so parsing the 448 MB train2017 file needs memory for the parsed records only (and less with
 * `segmentation: false`, for box-only training). Records keep the fields listed in the types below;
 * other fields (coco_url, flickr_url, ...) are dropped to save memory. Steps that must preserve a
 * file's bytes (dataset.split) copy raw records instead, through {@link scanCocoRaw}.
 */
import { stat } from 'node:fs/promises';

import { ErrorType, permanent } from '../../../infra/errors';
import { scanJsonObject } from './json-stream';
import {
  BBOX_TOLERANCE_PX,
  checkCocoAnnotation,
  checkCocoCategory,
  checkCocoImage,
  Issues,
  requireImages,
  where,
} from './validate';

/** An image record. `file_name` is relative to the images directory. */
export interface CocoImage {
  id: number;
  file_name: string;
  width: number;
  height: number;
}

/** A category record. */
export interface CocoCategory {
  id: number;
  name: string;
  supercategory?: string;
}

/** COCO run-length encoding: column-major runs starting with background; `counts` compressed or not. */
export interface CocoRle {
  counts: number[] | string;
  size: [number, number];
}

/** Polygons (flat x,y lists) for ordinary instances, RLE for crowds. */
export type CocoSegmentation = number[][] | CocoRle;

/** An instance annotation. `bbox` is [x, y, width, height] in pixels, top-left origin. */
export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  area: number;
  iscrowd: 0 | 1;
  /** Absent when loaded with `segmentation: false` or when the file has none. */
  segmentation?: CocoSegmentation;
}

/** A loaded instances file. */
export interface CocoDataset {
  info?: unknown;
  licenses?: unknown;
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: CocoCategory[];
}

/** Options of {@link loadCocoInstances}. */
export interface LoadCocoOptions {
  /** Keep segmentations (polygons / RLE). Box-only consumers save most of the memory with false. @default true */
  segmentation?: boolean;
  /** Run the cross-reference checks (missing images, unknown categories, boxes outside images). @default true */
  validate?: boolean;
  /** Throw EmptyDataset when the file has no images. @default true */
  requireImages?: boolean;
  /** How far a box may exceed its image, in pixels. @default 1 */
  bboxTolerancePx?: number;
  signal?: AbortSignal;
}

/** The raw records of an instances file, for byte-preserving consumers. */
export interface CocoRawHandlers {
  image?(record: CocoImage, raw: Buffer, index: number): void | Promise<void>;
  annotation?(record: CocoAnnotation, raw: Buffer, index: number): void | Promise<void>;
  category?(record: CocoCategory, raw: Buffer, index: number): void | Promise<void>;
  /** Any other top-level member (info, licenses, type ...), raw. */
  member?(key: string, raw: Buffer): void | Promise<void>;
  /** A record that failed the field checks (already reported); lets callers avoid follow-on errors. */
  rejected?(section: string, record: unknown): void;
  /** `images`, `annotations` or `categories` opens / closes, in document order. */
  sectionStart?(key: string): void | Promise<void>;
  sectionEnd?(key: string): void | Promise<void>;
}

const SECTIONS = new Set(['images', 'annotations', 'categories']);

/**
 * Stream the records of a COCO instances file, checking each record's fields (types, negative sizes).
 * Records failing the field checks are reported together at the end (InvalidInput); cross-references
 * are the caller's business (see {@link checkCocoReferences}).
 */
export async function scanCocoRaw(
  file: string,
  handlers: CocoRawHandlers,
  options: {
    signal?: AbortSignal;
    /** Drop segmentations (the handler's record has none; `raw` is still the full record). */
    skipSegmentation?: boolean;
  } = {},
): Promise<{ issues: Issues }> {
  await assertFile(file);
  const issues = new Issues(file);
  await scanJsonObject(
    file,
    {
      streamed: SECTIONS,
      // The reader has checked and parsed each record (syntax faults name file:line:column).
      async onElement(key, raw, index, rec) {
        if (key === 'images') {
          if (checkCocoImage(rec, index, issues)) await handlers.image?.(rec as CocoImage, raw, index);
          else handlers.rejected?.(key, rec);
        } else if (key === 'annotations') {
          if (options.skipSegmentation && typeof rec === 'object' && rec !== null)
            delete (rec as { segmentation?: unknown }).segmentation;
          if (checkCocoAnnotation(rec, index, issues))
            await handlers.annotation?.(rec as CocoAnnotation, raw, index);
          else handlers.rejected?.(key, rec);
        } else if (key === 'categories') {
          if (checkCocoCategory(rec, index, issues))
            await handlers.category?.(rec as CocoCategory, raw, index);
          else handlers.rejected?.(key, rec);
        }
      },
      async onMember(key, raw) {
        if (SECTIONS.has(key)) issues.add(`/${key}: expected an array, got ${raw.toString('utf8', 0, 40)}`);
        else await handlers.member?.(key, raw);
      },
      onArrayStart: (key) => handlers.sectionStart?.(key),
      onArrayEnd: (key) => handlers.sectionEnd?.(key),
    },
    { signal: options.signal },
  );
  return { issues };
}

async function assertFile(file: string): Promise<void> {
  try {
    const info = await stat(file);
    if (!info.isFile()) throw permanent(ErrorType.DatasetNotFound, `${file}: not a file`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw permanent(ErrorType.DatasetNotFound, `${file}: annotation file not found`);
    throw err;
  }
}

/**
 * The cross-reference checks: duplicate ids, annotations pointing at missing images or unknown
 * categories, boxes outside their image, RLE sizes that differ from their image. Adds to `issues`.
 */
export function checkCocoReferences(
  data: Pick<CocoDataset, 'images' | 'annotations' | 'categories'>,
  issues: Issues,
  tolerancePx = BBOX_TOLERANCE_PX,
  rejected: { images: ReadonlySet<unknown>; categories: ReadonlySet<unknown> } = {
    images: new Set(),
    categories: new Set(),
  },
  /** Position of each record in the file, when records were left out (default: array position). */
  positions?: { images: number[]; annotations: number[]; categories: number[] },
): void {
  const pos = (section: 'images' | 'annotations' | 'categories', i: number): number =>
    positions ? positions[section][i]! : i;
  const images = new Map<number, { index: number; image: CocoImage }>();
  for (const [i, image] of data.images.entries()) {
    const index = pos('images', i);
    const first = images.get(image.id);
    if (first)
      issues.add(
        `${where('images', index)}: duplicate image id ${image.id} (first at /images/${first.index})`,
      );
    else images.set(image.id, { index, image });
  }
  const categories = new Map<number, number>();
  for (const [i, cat] of data.categories.entries()) {
    const index = pos('categories', i);
    const first = categories.get(cat.id);
    if (first !== undefined)
      issues.add(
        `${where('categories', index)}: duplicate category id ${cat.id} (first at /categories/${first})`,
      );
    else categories.set(cat.id, index);
  }
  const annIds = new Map<number, number>();
  for (const [i, ann] of data.annotations.entries()) {
    const index = pos('annotations', i);
    const at = where('annotations', index, ann.id);
    const first = annIds.get(ann.id);
    if (first !== undefined)
      issues.add(`${at}: duplicate annotation id ${ann.id} (first at /annotations/${first})`);
    else annIds.set(ann.id, index);
    // References to records that failed their own checks are not reported a second time.
    if (!categories.has(ann.category_id) && !rejected.categories.has(ann.category_id))
      issues.add(`${at}: category_id ${ann.category_id} is not in /categories`);
    const entry = images.get(ann.image_id);
    if (!entry) {
      if (!rejected.images.has(ann.image_id)) issues.add(`${at}: image_id ${ann.image_id} is not in /images`);
      continue;
    }
    checkBoxInImage(ann, entry.image, at, issues, tolerancePx);
  }
}

/** A box must lie inside its image, up to `tolerancePx`; an RLE must have the image's size. */
export function checkBoxInImage(
  ann: CocoAnnotation,
  image: CocoImage,
  at: string,
  issues: Issues,
  tolerancePx = BBOX_TOLERANCE_PX,
): void {
  const [x, y, w, h] = ann.bbox;
  if (
    x < -tolerancePx ||
    y < -tolerancePx ||
    x + w > image.width + tolerancePx ||
    y + h > image.height + tolerancePx
  )
    issues.add(
      `${at}: bbox ${JSON.stringify(ann.bbox)} lies outside image ${image.id} (${image.width}x${image.height})`,
    );
  const seg = ann.segmentation;
  if (seg && !Array.isArray(seg) && (seg.size[0] !== image.height || seg.size[1] !== image.width))
    issues.add(
      `${at}: RLE size ${JSON.stringify(seg.size)} differs from image ${image.id} ([height, width] = [${image.height}, ${image.width}])`,
    );
}

/**
 * Load a COCO instances file (streamed), validate it and return typed records. Problems are thrown
 * together as one InvalidInput error naming the file and each record; an image-less file throws
 * EmptyDataset.
 */
export async function loadCocoInstances(file: string, options: LoadCocoOptions = {}): Promise<CocoDataset> {
  const keepSeg = options.segmentation ?? true;
  const data: CocoDataset = { images: [], annotations: [], categories: [] };
  const rejected = { images: new Set<unknown>(), categories: new Set<unknown>() };
  const positions = { images: [] as number[], annotations: [] as number[], categories: [] as number[] };
  const { issues } = await scanCocoRaw(
    file,
    {
      rejected(section, record) {
        const id = (record as { id?: unknown } | null)?.id;
        if (section === 'images') rejected.images.add(id);
        else if (section === 'categories') rejected.categories.add(id);
      },
      image(r, _raw, index) {
        positions.images.push(index);
        data.images.push({ id: r.id, file_name: r.file_name, width: r.width, height: r.height });
      },
      annotation(r, _raw, index) {
        positions.annotations.push(index);
        const ann: CocoAnnotation = {
          id: r.id,
          image_id: r.image_id,
          category_id: r.category_id,
          bbox: r.bbox,
          area: r.area ?? r.bbox[2] * r.bbox[3],
          iscrowd: r.iscrowd ?? 0,
        };
        if (keepSeg && r.segmentation != null) ann.segmentation = r.segmentation;
        data.annotations.push(ann);
      },
      category(r, _raw, index) {
        positions.categories.push(index);
        const cat: CocoCategory = { id: r.id, name: r.name };
        if (typeof r.supercategory === 'string') cat.supercategory = r.supercategory;
        data.categories.push(cat);
      },
      member(key, raw) {
        if (key === 'info') data.info = JSON.parse(raw.toString('utf8'));
        else if (key === 'licenses') data.licenses = JSON.parse(raw.toString('utf8'));
      },
    },
    { signal: options.signal, skipSegmentation: !keepSeg },
  );
  if (options.validate ?? true)
    checkCocoReferences(data, issues, options.bboxTolerancePx, rejected, positions);
  issues.throwIfAny();
  if (options.requireImages ?? true) requireImages(file, data.images.length);
  return data;
}

/** Serialise a dataset as COCO JSON (compact, keys in the order of the types above). */
export function cocoToJson(data: CocoDataset): string {
  return JSON.stringify({
    ...(data.info !== undefined ? { info: data.info } : {}),
    ...(data.licenses !== undefined ? { licenses: data.licenses } : {}),
    images: data.images,
    annotations: data.annotations,
    categories: data.categories,
  });
}
