/**
 * Training data for the two kinds, on top of the dataset loaders (activities/dataset): decoded,
 * letterboxed images cached in memory (within a budget), normalised with the ImageNet mean/std, and
 * horizontally flipped on the host when the augmentation RNG says so (the paper's only augmentation).
 */
import { join } from 'node:path';

import { ErrorType, permanent } from '../../../infra/errors';
import {
  listImagenetFolder,
  loadCocoInstances,
  readImageRgb,
  type CocoDataset,
  type RgbImage,
} from '../dataset/index';
import type { TargetBox } from './detector';
import type { Rng } from '../../../infra/prng';

/** ImageNet channel statistics, the usual input normalisation for ResNets. */
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];
/** Decoded images kept in memory at most (bytes); beyond it images are decoded again per batch. */
const CACHE_BUDGET_BYTES = 1024 ** 3;

/** Decodes images at one size, caching the decoded pixels while they fit the budget. */
export class ImageCache {
  private readonly cache = new Map<string, RgbImage>();
  private bytes = 0;

  constructor(readonly size: number) {}

  async get(path: string): Promise<RgbImage> {
    const hit = this.cache.get(path);
    if (hit) return hit;
    const img = await readImageRgb(path, { size: this.size, letterbox: true });
    if (this.bytes + img.data.byteLength <= CACHE_BUDGET_BYTES) {
      this.cache.set(path, img);
      this.bytes += img.data.byteLength;
    }
    return img;
  }
}

/** Writes image `img` (HWC 0..1) normalised, optionally mirrored, into `out` at `offset`. */
export function writeNormalised(img: RgbImage, flip: boolean, out: Float32Array, offset: number): void {
  const { width: w, height: h, data } = img;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const src = (y * w + (flip ? w - 1 - x : x)) * 3;
      const dst = offset + (y * w + x) * 3;
      for (let c = 0; c < 3; c++)
        out[dst + c] = ((data[src + c] as number) - (MEAN[c] as number)) / (STD[c] as number);
    }
  }
}

/** One detection image: its file, its COCO id, its non-crowd objects. */
export interface DetectionItem {
  id: number;
  path: string;
  /** Source-pixel boxes [x,y,w,h] and contiguous class indices. */
  objects: Array<{ bbox: [number, number, number, number]; cls: number }>;
}

/** A COCO split ready for training or evaluation. */
export interface DetectionSet {
  items: DetectionItem[];
  /** COCO category ids in contiguous-class order. */
  categoryIds: number[];
  categoryNames: string[];
  /** The loaded instances (for the evaluator's ground truth). */
  coco: CocoDataset;
}

/**
 * Loads a COCO instances file whose `file_name`s are relative to `imagesDir`. Crowd regions are not
 * training targets (as in Detectron). Throws EmptyDataset for a split without images.
 */
export async function loadDetectionSet(
  imagesDir: string,
  annotations: string,
  what: string,
): Promise<DetectionSet> {
  const coco = await loadCocoInstances(annotations, { segmentation: false });
  if (coco.images.length === 0) {
    throw permanent(
      ErrorType.EmptyDataset,
      `${what} (${annotations}) has 0 images: nothing to train or evaluate on`,
    );
  }
  const cats = [...coco.categories].sort((a, b) => a.id - b.id);
  const clsOf = new Map(cats.map((c, i) => [c.id, i]));
  const byImage = new Map<number, DetectionItem>();
  const items = coco.images.map((img) => {
    const item: DetectionItem = { id: img.id, path: join(imagesDir, img.file_name), objects: [] };
    byImage.set(img.id, item);
    return item;
  });
  for (const a of coco.annotations) {
    if (a.iscrowd) continue;
    const cls = clsOf.get(a.category_id);
    const item = byImage.get(a.image_id);
    if (cls !== undefined && item) item.objects.push({ bbox: a.bbox, cls });
  }
  return { items, categoryIds: cats.map((c) => c.id), categoryNames: cats.map((c) => c.name), coco };
}

/** A detection batch: normalised NHWC pixels and targets in input pixels. */
export interface DetectionBatch {
  pixels: Float32Array;
  objects: TargetBox[][];
}

/** Assembles a training batch: decode (cached), flip with probability 1/2 from `rng`, map boxes. */
export async function detectionBatch(
  set: DetectionSet,
  cache: ImageCache,
  indices: number[],
  rng: Rng,
): Promise<DetectionBatch> {
  const s = cache.size;
  const pixels = new Float32Array(indices.length * s * s * 3);
  const objects: TargetBox[][] = [];
  for (const [b, index] of indices.entries()) {
    const item = set.items[index] as DetectionItem;
    const flip = rng.float() < 0.5;
    const img = await cache.get(item.path);
    writeNormalised(img, flip, pixels, b * s * s * 3);
    objects.push(
      item.objects.map(({ bbox, cls }) => {
        const x = bbox[0] * img.scaleX + img.padX;
        const w = bbox[2] * img.scaleX;
        return { box: [flip ? s - x - w : x, bbox[1] * img.scaleY + img.padY, w, bbox[3] * img.scaleY], cls };
      }),
    );
  }
  return { pixels, objects };
}

/** An ImageNet-layout classification split. */
export interface ClassificationSet {
  classes: string[];
  items: Array<{ path: string; label: number }>;
}

/** Lists `<dir>/<split>/<class>/*` (EmptyDataset for a split without images, named). */
export async function loadClassificationSet(dir: string, split: 'train' | 'val'): Promise<ClassificationSet> {
  const folder = await listImagenetFolder(join(dir, split));
  return { classes: folder.classes, items: folder.items };
}

/** A classification batch: normalised NHWC pixels and one-hot labels. */
export interface ClassificationBatch {
  pixels: Float32Array;
  oneHot: Float32Array;
  labels: number[];
}

/** Assembles a classification batch; flips from `rng` when given (training), never otherwise. */
export async function classificationBatch(
  set: ClassificationSet,
  cache: ImageCache,
  indices: number[],
  rng: Rng | undefined,
): Promise<ClassificationBatch> {
  const s = cache.size;
  const k = set.classes.length;
  const pixels = new Float32Array(indices.length * s * s * 3);
  const oneHot = new Float32Array(indices.length * k);
  const labels: number[] = [];
  for (const [b, index] of indices.entries()) {
    const item = set.items[index] as { path: string; label: number };
    const flip = rng ? rng.float() < 0.5 : false;
    writeNormalised(await cache.get(item.path), flip, pixels, b * s * s * 3);
    oneHot[b * k + item.label] = 1;
    labels.push(item.label);
  }
  return { pixels, oneHot, labels };
}
