/**
 * COCO detection evaluation that reproduces pycocotools' `COCOeval` (bbox and segm) number for number:
 * the same parameters, the same greedy matching with crowd and ignore rules, the same stable score order
 * and tie behaviour, the same precision envelope and recall sampling, and means summed in numpy's pairwise
 * order. See shared/notes/eval-spec.md for the semantics this file follows.
 *
 * It is faster than pycocotools because it works on typed arrays grouped once by (category, image), computes
 * each IoU matrix once, and evaluates and accumulates one category at a time, so memory stays bounded by
 * the largest category rather than by the whole `evalImgs` list.
 *
 * Bad input gets an {@link AblateError} (`InvalidInput`) naming the file, the JSON path and what was
 * expected. Where pycocotools accepts odd input and the answer is still well defined (scores outside [0, 1],
 * GT without annotations, an empty detection list), the reference behaviour is kept.
 */
import { ErrorType, permanent } from '../../../infra/errors';
import { bboxIou, rleArea, rleIou, rleToBbox, segmentationToRle, SegmentationError, type Rle } from './mask';
import { EPS as NUMPY_EPS, formatFixed, numpySum } from './numeric';

// Local copy: module bindings read through getters in some loaders, which is slow in hot loops.
const EPS = NUMPY_EPS;

/** What is compared: boxes or masks. (Keypoint OKS evaluation is not implemented.) */
export type CocoIouType = 'bbox' | 'segm';

/** Names of the 12 summary statistics, in pycocotools' `stats` order. */
export const COCO_STAT_NAMES = [
  'AP',
  'AP50',
  'AP75',
  'APs',
  'APm',
  'APl',
  'AR1',
  'AR10',
  'AR100',
  'ARs',
  'ARm',
  'ARl',
] as const;

/** pycocotools' default detection parameters (`Params.setDetParams`). */
export const COCO_PARAMS = {
  /** `np.linspace(.5, .95, 10)`, bit for bit (iouThrs[8] is 0.8999999999999999). */
  iouThrs: linspace(0.5, 0.95, 10),
  /** `np.linspace(0, 1, 101)`, bit for bit (e.g. 0.35000000000000003). */
  recThrs: linspace(0, 1, 101),
  maxDets: [1, 10, 100],
  areaRng: [
    [0, 1e10],
    [0, 1024],
    [1024, 9216],
    [9216, 1e10],
  ] as [number, number][],
  areaRngLbl: ['all', 'small', 'medium', 'large'],
} as const;

/** `np.linspace(start, stop, num)` with endpoint, reproducing numpy's arithmetic. */
function linspace(start: number, stop: number, num: number): number[] {
  const step = (stop - start) / (num - 1);
  const out = Array.from({ length: num }, (_, i) => i * step + start);
  out[num - 1] = stop;
  return out;
}

const T = COCO_PARAMS.iouThrs.length;
const R = COCO_PARAMS.recThrs.length;
const A = COCO_PARAMS.areaRng.length;
const M = COCO_PARAMS.maxDets.length;
const MAX_DET = COCO_PARAMS.maxDets[M - 1]!;

/** Options of {@link evaluateCoco}. */
export interface CocoEvalOptions {
  /** @default 'bbox' */
  iouType?: CocoIouType;
  /**
   * What to do with a detection whose `category_id` is not a GT category. pycocotools drops it silently;
   * ablate refuses by default because it is nearly always a label-mapping bug (e.g. 0-based labels).
   * @default 'error'
   */
  unknownCategories?: 'error' | 'ignore';
  /** How error messages name the detections, e.g. the file path. @default 'detections' */
  detectionsSource?: string;
}

/** One category's results. */
export interface CocoCategoryResult {
  id: number | string;
  name: string;
  /** Mean precision over IoU 0.50:0.95 and the 101 recall points, area all, maxDets 100 (-1: no GT). */
  AP: number;
  AP50: number;
  AP75: number;
  /** Non-crowd GT objects of this category. */
  numGt: number;
  /** Detections of this category (before the top-100-per-image cut). */
  numDetections: number;
}

/** The full result of {@link evaluateCoco}. */
export interface CocoEvalResult {
  iouType: CocoIouType;
  /** The 12 summary statistics in pycocotools' order ({@link COCO_STAT_NAMES}); -1 where undefined. */
  stats: number[];
  /** One entry per GT category, in sorted category-id order. */
  perCategory: CocoCategoryResult[];
  /** pycocotools' `eval['precision']`, shape [T, R, K, A, M], C order; -1 where a category has no GT. */
  precision: Float64Array;
  /** pycocotools' `eval['recall']`, shape [T, K, A, M], C order. */
  recall: Float64Array;
  /** [T, R, K, A, M]. */
  shape: { T: number; R: number; K: number; A: number; M: number };
  numImages: number;
  numGt: number;
  numDetections: number;
  /** Things that were accepted but deserve a look (e.g. annotation id 0, dropped annotations). */
  warnings: string[];
}

type Id = number | string;

/** COCO ground truth indexed for evaluation; prepare once, evaluate many detection sets against it. */
export interface CocoGroundTruth {
  source: string;
  imgIds: Id[];
  imgIndex: Map<Id, number>;
  imgH: Float64Array;
  imgW: Float64Array;
  catIds: Id[];
  catIndex: Map<Id, number>;
  catNames: string[];
  /** GT annotations used, ordered by (category, image), file order within. */
  n: number;
  img: Int32Array;
  cat: Int32Array;
  box: Float64Array;
  area: Float64Array;
  crowd: Uint8Array;
  id: Float64Array;
  /** Raw `segmentation` values (converted to RLE on demand for segm). */
  seg: unknown[];
  /** Index into the GT annotation list of each used annotation (for messages). */
  srcIndex: Int32Array;
  /** Start of each category's annotations; length K+1. */
  catStart: Int32Array;
  hasBbox: boolean;
  /** Whether every used annotation has a valid `bbox`, and the first one that has not. */
  firstMissingBbox: number;
  warnings: string[];
  rles?: Rle[];
}

function bad(message: string): never {
  throw permanent(ErrorType.InvalidInput, message);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isId(v: unknown): v is Id {
  return (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'string';
}

/** Sort ids like `np.unique`: numbers numerically, strings by code point; mixed kinds are refused. */
function sortedUniqueIds(ids: Id[], what: string, source: string): Id[] {
  const uniq = [...new Set(ids)];
  const numbers = uniq.filter((x) => typeof x === 'number');
  if (numbers.length > 0 && numbers.length < uniq.length)
    bad(`${source}: ${what} ids mix numbers and strings; use one kind (pycocotools cannot sort them either)`);
  if (numbers.length === uniq.length) return numbers.sort((a, b) => a - b);
  return (uniq as string[]).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Stable order of `n` items by (key2, key1): two counting-sort passes (least significant first), so equal
 * keys keep their input order, as pycocotools' per-(image, category) lists keep file order.
 */
function orderByKeys(n: number, key1: Int32Array, n1: number, key2: Int32Array, n2: number): Int32Array {
  const tmp = new Int32Array(n);
  const out = new Int32Array(n);
  const c1 = new Int32Array(n1 + 1);
  for (let j = 0; j < n; j++) c1[key1[j]! + 1]!++;
  for (let j = 0; j < n1; j++) c1[j + 1]! += c1[j]!;
  for (let j = 0; j < n; j++) tmp[c1[key1[j]!]!++] = j;
  const c2 = new Int32Array(n2 + 1);
  for (let j = 0; j < n; j++) c2[key2[j]! + 1]!++;
  for (let j = 0; j < n2; j++) c2[j + 1]! += c2[j]!;
  for (let j = 0; j < n; j++) {
    const s = tmp[j]!;
    out[c2[key2[s]!]!++] = s;
  }
  return out;
}

function readBox(v: unknown, where: string): [number, number, number, number] {
  let ok = Array.isArray(v) && v.length === 4;
  if (ok) {
    const b = v as unknown[];
    for (let i = 0; i < 4; i++) {
      const x = b[i];
      if (typeof x !== 'number' || !Number.isFinite(x)) ok = false;
    }
  }
  if (!ok) bad(`${where} must be [x, y, width, height] (4 finite numbers), got ${describe(v)}`);
  const b = v as [number, number, number, number];
  if (b[2] < 0 || b[3] < 0)
    bad(`${where} has a negative width or height (${describe(v)}); COCO boxes are [x, y, width, height]`);
  return b;
}

/**
 * Index COCO ground truth (an instances JSON document) for evaluation, like `COCO(...)` plus
 * `COCOeval._prepare`: images and categories are sorted by id; annotations on unknown images or of unknown
 * categories are dropped (pycocotools does the same); `ignore` is set from `iscrowd` only.
 *
 * @param source how messages name the document, e.g. its path.
 */
export function prepareCocoGroundTruth(doc: unknown, source = 'ground truth'): CocoGroundTruth {
  if (!isObject(doc))
    bad(`${source}: expected a COCO instances JSON object {images, annotations, categories}`);
  const warnings: string[] = [];
  const images = doc.images;
  const categories = doc.categories;
  if (!Array.isArray(images)) bad(`${source}: "images" must be a list, got ${describe(images)}`);
  if (!Array.isArray(categories)) bad(`${source}: "categories" must be a list, got ${describe(categories)}`);
  const annotations = doc.annotations ?? [];
  if (!Array.isArray(annotations))
    bad(`${source}: "annotations" must be a list, got ${describe(annotations)}`);

  const rawImgIds: Id[] = [];
  const sizeById = new Map<Id, [number, number]>();
  images.forEach((img, i) => {
    if (!isObject(img) || !isId(img.id))
      bad(
        `${source}: images[${i}].id must be a number or a string, got ${describe(isObject(img) ? img.id : img)}`,
      );
    rawImgIds.push(img.id);
    sizeById.set(img.id, [
      typeof img.height === 'number' ? img.height : NaN,
      typeof img.width === 'number' ? img.width : NaN,
    ]);
  });
  const imgIds = sortedUniqueIds(rawImgIds, 'image', source);
  const imgIndex = new Map(imgIds.map((id, i) => [id, i]));
  const imgH = Float64Array.from(imgIds, (id) => sizeById.get(id)![0]);
  const imgW = Float64Array.from(imgIds, (id) => sizeById.get(id)![1]);

  const rawCatIds: Id[] = [];
  const nameById = new Map<Id, string>();
  categories.forEach((c, i) => {
    if (!isObject(c) || !isId(c.id))
      bad(
        `${source}: categories[${i}].id must be a number or a string, got ${describe(isObject(c) ? c.id : c)}`,
      );
    rawCatIds.push(c.id);
    nameById.set(c.id, typeof c.name === 'string' ? c.name : String(c.id));
  });
  const catIds = sortedUniqueIds(rawCatIds, 'category', source);
  const catIndex = new Map(catIds.map((id, i) => [id, i]));
  const catNames = catIds.map((id) => nameById.get(id)!);

  // Keep the annotations pycocotools evaluates, remembering their file position.
  const keep: number[] = [];
  const imgOf: number[] = [];
  const catOf: number[] = [];
  let droppedImg = 0;
  let droppedCat = 0;
  const seenIds = new Map<number, number>();
  annotations.forEach((ann, j) => {
    if (!isObject(ann)) bad(`${source}: annotations[${j}] must be an object, got ${describe(ann)}`);
    const i = imgIndex.get(ann.image_id as Id);
    const k = catIndex.get(ann.category_id as Id);
    if (i === undefined) {
      droppedImg++;
      return;
    }
    if (k === undefined) {
      droppedCat++;
      return;
    }
    if (typeof ann.id !== 'number' || !Number.isFinite(ann.id))
      bad(`${source}: annotations[${j}].id must be a number, got ${describe(ann.id)}`);
    const prev = seenIds.get(ann.id);
    if (prev !== undefined)
      bad(
        `${source}: annotations[${j}].id ${ann.id} repeats annotations[${prev}].id; annotation ids must be unique ` +
          '(pycocotools would silently evaluate one of them twice)',
      );
    seenIds.set(ann.id, j);
    keep.push(j);
    imgOf.push(i);
    catOf.push(k);
  });
  if (droppedImg > 0)
    warnings.push(`${droppedImg} GT annotation(s) refer to image ids not in "images" and were ignored`);
  if (droppedCat > 0)
    warnings.push(
      `${droppedCat} GT annotation(s) refer to category ids not in "categories" and were ignored`,
    );
  if (seenIds.has(0))
    warnings.push(
      'a GT annotation has id 0: pycocotools (and so ablate) counts a detection matched to it as a false positive',
    );

  const n = keep.length;
  const order = orderByKeys(n, Int32Array.from(imgOf), imgIds.length, Int32Array.from(catOf), catIds.length);
  const gt: CocoGroundTruth = {
    source,
    imgIds,
    imgIndex,
    imgH,
    imgW,
    catIds,
    catIndex,
    catNames,
    n,
    img: new Int32Array(n),
    cat: new Int32Array(n),
    box: new Float64Array(4 * n),
    area: new Float64Array(n),
    crowd: new Uint8Array(n),
    id: new Float64Array(n),
    seg: new Array<unknown>(n),
    srcIndex: new Int32Array(n),
    catStart: new Int32Array(catIds.length + 1),
    hasBbox: true,
    firstMissingBbox: -1,
    warnings,
  };
  for (let p = 0; p < n; p++) {
    const s = order[p]!;
    const j = keep[s]!;
    const ann = annotations[j] as Record<string, unknown>;
    gt.img[p] = imgOf[s]!;
    gt.cat[p] = catOf[s]!;
    gt.srcIndex[p] = j;
    gt.id[p] = ann.id as number;
    if (typeof ann.area !== 'number' || Number.isNaN(ann.area))
      bad(
        `${source}: annotations[${j}].area must be a number (the object's pixel area), got ${describe(ann.area)}`,
      );
    gt.area[p] = ann.area;
    // pycocotools sets ignore := iscrowd (an existing `ignore` field is overwritten). A missing iscrowd is
    // read as 0 here, where pycocotools raises KeyError.
    const crowd = ann.iscrowd;
    if (crowd !== undefined && typeof crowd !== 'number' && typeof crowd !== 'boolean')
      bad(`${source}: annotations[${j}].iscrowd must be 0 or 1, got ${describe(crowd)}`);
    gt.crowd[p] = crowd ? 1 : 0;
    gt.seg[p] = ann.segmentation;
    const bb = ann.bbox;
    if (
      Array.isArray(bb) &&
      bb.length === 4 &&
      bb.every((x) => typeof x === 'number' && Number.isFinite(x))
    ) {
      gt.box.set(bb as number[], 4 * p);
    } else if (gt.firstMissingBbox < 0 || j < gt.firstMissingBbox) {
      gt.hasBbox = false;
      gt.firstMissingBbox = j;
    }
  }
  for (let p = 0; p < n; p++) gt.catStart[gt.cat[p]! + 1]!++;
  for (let k = 0; k < catIds.length; k++) gt.catStart[k + 1]! += gt.catStart[k]!;
  return gt;
}

function gtRles(gt: CocoGroundTruth): Rle[] {
  if (gt.rles) return gt.rles;
  const rles = new Array<Rle>(gt.n);
  for (let p = 0; p < gt.n; p++) {
    const i = gt.img[p]!;
    const j = gt.srcIndex[p]!;
    const h = gt.imgH[i]!;
    const w = gt.imgW[i]!;
    if (gt.seg[p] === undefined)
      bad(`${gt.source}: annotations[${j}] has no "segmentation" (needed for segm evaluation)`);
    rles[p] = toRle(gt.seg[p], h, w, `${gt.source}: annotations[${j}].segmentation`);
  }
  gt.rles = rles;
  return rles;
}

function toRle(seg: unknown, h: number, w: number, where: string): Rle {
  let rle: Rle;
  try {
    rle = segmentationToRle(seg, Number.isFinite(h) ? h : undefined, Number.isFinite(w) ? w : undefined);
  } catch (err) {
    if (err instanceof SegmentationError) bad(`${where} ${err.message}`);
    throw err;
  }
  if (Number.isFinite(h) && Number.isFinite(w) && (rle.h !== h || rle.w !== w))
    bad(
      `${where} is a ${rle.h}x${rle.w} mask but its image is ${h}x${w} (height x width); ` +
        'pycocotools would give it IoU -1 with every object',
    );
  return rle;
}

/** Detections indexed for evaluation: grouped by (category, image), score-sorted, top 100 per group kept. */
interface PreparedDetections {
  /** Kept detections in (category, image, score desc, file order) order. */
  n: number;
  img: Int32Array;
  score: Float64Array;
  area: Float64Array;
  box: Float64Array;
  /** Rank of the detection within its (image, category) group (0 = best). */
  rank: Int32Array;
  rles: Rle[] | undefined;
  catStart: Int32Array;
  /** Detections per category before the top-100 cut. */
  perCat: Int32Array;
  total: number;
}

function prepareDetections(
  gt: CocoGroundTruth,
  results: unknown,
  iouType: CocoIouType,
  opts: CocoEvalOptions,
): PreparedDetections {
  const source = opts.detectionsSource ?? 'detections';
  if (!Array.isArray(results))
    bad(
      `${source}: expected a list of COCO results [{image_id, category_id, bbox|segmentation, score}], got ${describe(results)}`,
    );
  const N = results.length;
  const K = gt.catIds.length;
  const I = gt.imgIds.length;
  // pycocotools' loadRes picks one branch for the whole list from the first result's keys.
  let useBbox = true;
  if (N > 0) {
    const first = results[0] as unknown;
    if (!isObject(first)) bad(`${source}[0] must be an object, got ${describe(first)}`);
    const fb = first.bbox;
    if (fb !== undefined && !(Array.isArray(fb) && fb.length === 0)) useBbox = true;
    else if (first.segmentation !== undefined) useBbox = false;
    else
      bad(
        `${source}[0] has neither "bbox" nor "segmentation" (keypoint results are not supported); ` +
          'pycocotools decides the format of all results from the first one',
      );
  }
  const imgOf = new Int32Array(N);
  const catOf = new Int32Array(N);
  const score = new Float64Array(N);
  const area = new Float64Array(N);
  const box = new Float64Array(4 * N);
  const rles: Rle[] | undefined = iouType === 'segm' ? new Array<Rle>(N) : undefined;
  const valid = new Uint8Array(N);
  let nValid = 0;
  for (let j = 0; j < N; j++) {
    const d = results[j] as unknown;
    const where = `${source}[${j}]`;
    if (!isObject(d)) bad(`${where} must be an object, got ${describe(d)}`);
    const i = gt.imgIndex.get(d.image_id as Id);
    if (i === undefined)
      bad(
        `${where}.image_id ${describe(d.image_id)} is not an image of ${gt.source} (${I} images); ` +
          'every result must refer to a GT image',
      );
    const k = gt.catIndex.get(d.category_id as Id);
    if (k === undefined) {
      if (opts.unknownCategories === 'ignore') continue;
      bad(
        `${where}.category_id ${describe(d.category_id)} is not a category of ${gt.source} ` +
          `(ids ${describe(gt.catIds.slice(0, 10))}${K > 10 ? '...' : ''}); check the label mapping, ` +
          'or pass unknownCategories: "ignore" (--ignore-unknown-categories) to drop such results as pycocotools does',
      );
    }
    const s = d.score;
    if (typeof s !== 'number' || !Number.isFinite(s))
      bad(`${where}.score must be a finite number, got ${describe(s)}`);
    imgOf[j] = i;
    catOf[j] = k;
    score[j] = s;
    valid[j] = 1;
    nValid++;
    const h = gt.imgH[i]!;
    const w = gt.imgW[i]!;
    if (useBbox) {
      const b = readBox(d.bbox, `${where}.bbox`);
      box[4 * j] = b[0];
      box[4 * j + 1] = b[1];
      box[4 * j + 2] = b[2];
      box[4 * j + 3] = b[3];
      area[j] = b[2] * b[3];
      if (rles) {
        const x1 = b[0];
        const y1 = b[1];
        const x2 = b[0] + b[2];
        const y2 = b[1] + b[3];
        const seg = d.segmentation ?? [[x1, y1, x1, y2, x2, y2, x2, y1]];
        rles[j] = toRle(seg, h, w, `${where}.segmentation`);
      }
    } else {
      if (d.segmentation === undefined)
        bad(`${where} has no "segmentation" (the first result has none, so every result needs one)`);
      const rle = toRle(d.segmentation, h, w, `${where}.segmentation`);
      if (rles) rles[j] = rle;
      area[j] = rleArea(rle);
      if (d.bbox !== undefined) box.set(readBox(d.bbox, `${where}.bbox`), 4 * j);
      else box.set(rleToBbox(rle), 4 * j);
    }
  }
  // Group by (category, image) keeping file order, then sort each group by score (stable) and keep the top
  // maxDets[-1], as computeIoU/evaluateImg do.
  let order = orderByKeys(N, imgOf, I, catOf, K);
  if (nValid < N) order = order.filter((j) => valid[j] === 1);
  const perCat = new Int32Array(K);
  for (const j of order) perCat[catOf[j]!]!++;
  const keptIdx: number[] = [];
  const rankOf: number[] = [];
  let g = 0;
  while (g < order.length) {
    let e = g + 1;
    const key0 = catOf[order[g]!]! * I + imgOf[order[g]!]!;
    while (e < order.length && catOf[order[e]!]! * I + imgOf[order[e]!]! === key0) e++;
    const group = order.subarray(g, e);
    sortByScoreStable(group, score);
    const keepN = Math.min(MAX_DET, group.length);
    for (let r = 0; r < keepN; r++) {
      keptIdx.push(group[r]!);
      rankOf.push(r);
    }
    g = e;
  }
  const n = keptIdx.length;
  const out: PreparedDetections = {
    n,
    img: new Int32Array(n),
    score: new Float64Array(n),
    area: new Float64Array(n),
    box: new Float64Array(4 * n),
    rank: Int32Array.from(rankOf),
    rles: rles ? new Array<Rle>(n) : undefined,
    catStart: new Int32Array(K + 1),
    perCat,
    total: nValid,
  };
  for (let p = 0; p < n; p++) {
    const j = keptIdx[p]!;
    out.img[p] = imgOf[j]!;
    out.score[p] = score[j]!;
    out.area[p] = area[j]!;
    for (let c = 0; c < 4; c++) out.box[4 * p + c] = box[4 * j + c]!;
    if (rles) out.rles![p] = rles[j]!;
    out.catStart[catOf[j]! + 1]!++;
  }
  for (let k = 0; k < K; k++) out.catStart[k + 1]! += out.catStart[k]!;
  return out;
}

/** Sort indices (given in ascending file order) by descending score; equal scores keep their order. */
function sortByScoreStable(idx: Int32Array, score: Float64Array): void {
  const n = idx.length;
  if (n <= 24) {
    for (let a = 1; a < n; a++) {
      const v = idx[a]!;
      const s = score[v]!;
      let b = a - 1;
      while (b >= 0 && score[idx[b]!]! < s) {
        idx[b + 1] = idx[b]!;
        b--;
      }
      idx[b + 1] = v;
    }
    return;
  }
  idx.sort((x, y) => score[y]! - score[x]! || x - y);
}

/**
 * Evaluate COCO results against prepared ground truth, exactly as pycocotools' `COCOeval(gt, dt, iouType)`
 * followed by `evaluate()`, `accumulate()` and `summarize()` with default parameters.
 *
 * @param gt from {@link prepareCocoGroundTruth} (or a raw instances JSON object).
 * @param results the COCO results list: `[{image_id, category_id, bbox | segmentation, score}]`.
 */
export function evaluateCoco(
  gt: CocoGroundTruth | Record<string, unknown>,
  results: unknown,
  opts: CocoEvalOptions = {},
): CocoEvalResult {
  const G = 'catStart' in gt && 'imgIndex' in gt ? (gt as CocoGroundTruth) : prepareCocoGroundTruth(gt);
  const iouType = opts.iouType ?? 'bbox';
  if (iouType !== 'bbox' && iouType !== 'segm')
    bad(`iouType must be "bbox" or "segm", got ${describe(iouType)}`);
  const dt = prepareDetections(G, results, iouType, opts);
  if (iouType === 'bbox' && !G.hasBbox && dt.n > 0)
    bad(
      `${G.source}: annotations[${G.firstMissingBbox}].bbox must be [x, y, width, height] (4 finite numbers)`,
    );
  const gtR = iouType === 'segm' ? gtRles(G) : undefined;
  const K = G.catIds.length;
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  const npigAll = new Int32Array(K);

  let maxCat = 0;
  for (let k = 0; k < K; k++) maxCat = Math.max(maxCat, dt.catStart[k + 1]! - dt.catStart[k]!);
  const codes = new Uint8Array(A * T * maxCat);
  const scratch = new Scratch();
  const npig = new Int32Array(A);

  for (let k = 0; k < K; k++) {
    const g0 = G.catStart[k]!;
    const g1 = G.catStart[k + 1]!;
    const d0 = dt.catStart[k]!;
    const d1 = dt.catStart[k + 1]!;
    const nd = d1 - d0;
    npig.fill(0);
    // evaluateImg for every image that has GT or detections of this category, in image order.
    let gi = g0;
    let di = d0;
    while (gi < g1 || di < d1) {
      const img = Math.min(gi < g1 ? G.img[gi]! : Infinity, di < d1 ? dt.img[di]! : Infinity);
      let ge = gi;
      while (ge < g1 && G.img[ge] === img) ge++;
      let de = di;
      while (de < d1 && dt.img[de] === img) de++;
      evaluateGroup(G, dt, gtR, gi, ge, di, de, di - d0, nd, codes, npig, scratch);
      gi = ge;
      di = de;
    }
    npigAll[k] = npig[0]!;
    accumulateCategory(dt, d0, nd, k, K, codes, npig, precision, recall, scratch);
  }

  const stats = summarize(precision, recall, K);
  const perCategory: CocoCategoryResult[] = G.catIds.map((id, k) => ({
    id,
    name: G.catNames[k]!,
    AP: meanAbove(precision, (push) => {
      for (let t = 0; t < T; t++) for (let r = 0; r < R; r++) push(pIdx(t, r, k, 0, M - 1, K));
    }),
    AP50: meanAbove(precision, (push) => {
      for (let r = 0; r < R; r++) push(pIdx(0, r, k, 0, M - 1, K));
    }),
    AP75: meanAbove(precision, (push) => {
      const t = COCO_PARAMS.iouThrs.indexOf(0.75);
      if (t >= 0) for (let r = 0; r < R; r++) push(pIdx(t, r, k, 0, M - 1, K));
    }),
    numGt: npigAll[k]!,
    numDetections: dt.perCat[k]!,
  }));
  let numGt = 0;
  for (let p = 0; p < G.n; p++) if (!G.crowd[p]) numGt++;
  return {
    iouType,
    stats,
    perCategory,
    precision,
    recall,
    shape: { T, R, K, A, M },
    numImages: G.imgIds.length,
    numGt,
    numDetections: dt.total,
    warnings: [...G.warnings],
  };
}

/** Reusable buffers, grown on demand, so the hot loops allocate nothing per image. */
class Scratch {
  iou = new Float64Array(1024);
  dBox = new Float64Array(4 * MAX_DET);
  gBox = new Float64Array(256);
  gCrowd = new Uint8Array(64);
  gIg = new Uint8Array(64);
  perm = new Int32Array(64);
  gMatched = new Uint8Array(64);
  maxIou = new Float64Array(MAX_DET);
  order = new Int32Array(0);
  busy = new Uint8Array(0);
  tp = new Float64Array(T);
  fp = new Float64Array(T);
  firstPr = new Float64Array(T);
  kr = new Int32Array(R);
  prAt = new Float64Array(0);
  ensureGt(G: number): void {
    if (this.gCrowd.length < G) {
      const n = Math.max(G, this.gCrowd.length * 2);
      this.gBox = new Float64Array(4 * n);
      this.gCrowd = new Uint8Array(n);
      this.gIg = new Uint8Array(n);
      this.perm = new Int32Array(n);
      this.gMatched = new Uint8Array(n);
    }
  }
  ensureIou(n: number): void {
    if (this.iou.length < n) this.iou = new Float64Array(Math.max(n, this.iou.length * 2));
  }
  ensureCat(nd: number): void {
    if (this.order.length < nd) {
      this.order = new Int32Array(nd);
      this.busy = new Uint8Array(nd);
    }
  }
  ensureNp(np: number): void {
    if (this.prAt.length < T * (np + 1)) this.prAt = new Float64Array(T * (np + 1) * 2);
  }
}

const MIN_IOU_THR = Math.min(...COCO_PARAMS.iouThrs);
const THR = Float64Array.from(COCO_PARAMS.iouThrs, (t) => Math.min(t, 1 - 1e-10));
const REC_THRS = Float64Array.from(COCO_PARAMS.recThrs);
const AREA_LO = Float64Array.from(COCO_PARAMS.areaRng, (r) => r[0]);
const AREA_HI = Float64Array.from(COCO_PARAMS.areaRng, (r) => r[1]);

/**
 * pycocotools' `computeIoU` + `evaluateImg` for one (image, category) and all area ranges. Writes, per area
 * range, IoU threshold and detection, a code into `codes[a][pos*T + t]`: 0 = false positive, 1 = true
 * positive, 2 = ignored; and adds the non-ignored GT count to `npig[a]`.
 */
function evaluateGroup(
  gt: CocoGroundTruth,
  dt: PreparedDetections,
  gtR: Rle[] | undefined,
  g0: number,
  g1: number,
  d0: number,
  d1: number,
  pos0: number,
  nd: number,
  codes: Uint8Array,
  npig: Int32Array,
  s: Scratch,
): void {
  const G = g1 - g0;
  const D = d1 - d0;
  s.ensureGt(G);
  const crowd = s.gCrowd;
  for (let g = 0; g < G; g++) crowd[g] = gt.crowd[g0 + g]!;
  let ious = s.iou;
  const hasIou = G > 0 && D > 0;
  if (hasIou) {
    s.ensureIou(D * G);
    ious = s.iou;
    if (gtR) {
      const dR = dt.rles!.slice(d0, d1);
      const gRl = gtR.slice(g0, g1);
      rleIou(dR, gRl, crowd.subarray(0, G), ious);
    } else {
      bboxIou(dt.box, gt.box, crowd, ious, d0, D, g0, G);
    }
    // A detection whose best IoU is below the lowest threshold matches nothing at any threshold.
    for (let d = 0; d < D; d++) {
      let mx = -Infinity;
      for (let g = 0; g < G; g++) if (ious[d * G + g]! > mx) mx = ious[d * G + g]!;
      s.maxIou[d] = mx;
    }
  }
  const gIg = s.gIg;
  const perm = s.perm;
  const matched = s.gMatched;
  for (let a = 0; a < A; a++) {
    const lo = AREA_LO[a]!;
    const hi = AREA_HI[a]!;
    const base = a * T * nd + pos0 * T;
    // GT ignore flags; non-ignored GT first (stable), as evaluateImg's mergesort on _ignore.
    let nNotIg = 0;
    for (let g = 0; g < G; g++) {
      const ar = gt.area[g0 + g]!;
      const ig = crowd[g] || ar < lo || ar > hi ? 1 : 0;
      if (!ig) perm[nNotIg++] = g;
      gIg[g] = ig;
    }
    npig[a]! += nNotIg;
    let q = nNotIg;
    for (let g = 0; g < G; g++) if (gIg[g]) perm[q++] = g;
    for (let d = 0; d < D; d++) {
      const dArea = dt.area[d0 + d]!;
      const outside = dArea < lo || dArea > hi;
      const off = base + d * T;
      if (!hasIou || !(s.maxIou[d]! >= MIN_IOU_THR)) {
        codes.fill(outside ? 2 : 0, off, off + T);
      }
    }
    if (!hasIou) continue;
    for (let t = 0; t < T; t++) {
      const thr = THR[t]!;
      matched.fill(0, 0, G);
      for (let d = 0; d < D; d++) {
        const mx = s.maxIou[d]!;
        if (!(mx >= MIN_IOU_THR)) continue;
        if (!(mx >= thr)) {
          // No GT reaches this threshold: unmatched, like the full loop would find.
          const dArea = dt.area[d0 + d]!;
          codes[base + d * T + t] = dArea < lo || dArea > hi ? 2 : 0;
          continue;
        }
        let best = thr;
        let m = -1;
        const row = d * G;
        for (let j = 0; j < G; j++) {
          const g = perm[j]!;
          if (matched[g] && !crowd[g]) continue;
          if (m > -1 && !gIg[m] && gIg[g]) break;
          const v = ious[row + g]!;
          if (v < best) continue;
          best = v;
          m = g;
        }
        const off = base + d * T + t;
        if (m === -1) {
          const dArea = dt.area[d0 + d]!;
          codes[off] = dArea < lo || dArea > hi ? 2 : 0;
          continue;
        }
        matched[m] = 1;
        // dtMatches holds the GT id, so a match to GT id 0 reads as "unmatched" (pycocotools quirk).
        const isMatch = gt.id[g0 + m] !== 0;
        let ig = gIg[m]!;
        if (!isMatch) {
          const dArea = dt.area[d0 + d]!;
          if (dArea < lo || dArea > hi) ig = 1;
        }
        codes[off] = ig ? 2 : isMatch ? 1 : 0;
      }
    }
  }
}

function pIdx(t: number, r: number, k: number, a: number, m: number, K: number): number {
  return (((t * R + r) * K + k) * A + a) * M + m;
}

function rIdx(t: number, k: number, a: number, m: number, K: number): number {
  return ((t * K + k) * A + a) * M + m;
}

/**
 * pycocotools' `accumulate` for one category: precision/recall for every threshold, area and maxDets.
 *
 * Same numbers, less work: pycocotools computes rc and pr at every detection, takes the running maximum of
 * pr from the right, and samples it where rc first reaches each recall threshold. rc only changes at true
 * positives, so the sample point for threshold r is the k_r-th true positive, where k_r is the smallest
 * count with `k_r / npig >= recThrs[r]` (the same float division pycocotools does). The right-running maximum
 * of pr from a true positive onwards is attained at a true positive (pr falls between them), so pr is only
 * computed there. Each value is produced by the same floating-point operation as in pycocotools.
 */
function accumulateCategory(
  dt: PreparedDetections,
  d0: number,
  nd: number,
  k: number,
  K: number,
  codes: Uint8Array,
  npig: Int32Array,
  precision: Float64Array,
  recall: Float64Array,
  s: Scratch,
): void {
  s.ensureCat(nd);
  // Detections of all images concatenated in image order, then stably sorted by descending score. The
  // top-maxDet cut per image keeps relative order, so one sort serves every maxDets value.
  const order = s.order.subarray(0, nd);
  for (let p = 0; p < nd; p++) order[p] = p;
  const score = dt.score.subarray(d0, d0 + nd);
  order.sort((x, y) => score[y]! - score[x]! || x - y);
  const rank = dt.rank.subarray(d0, d0 + nd);
  // The sorted detections that survive each maxDets cut (the cut is per image: rank within the image).
  const lists: Int32Array[] = [];
  for (let m = 0; m < M; m++) {
    const maxDet = COCO_PARAMS.maxDets[m]!;
    if (maxDet >= MAX_DET) lists.push(order);
    else lists.push(order.filter((p) => rank[p]! < maxDet));
  }
  const tp = s.tp;
  const ig = s.fp;
  const first = s.firstPr;
  const kr = s.kr;
  for (let a = 0; a < A; a++) {
    const np = npig[a]!;
    if (np === 0) continue;
    s.ensureNp(np);
    const prAt = s.prAt;
    const stride = np + 1;
    // k_r: the true-positive count at which rc = k / npig first reaches each recall threshold.
    let kk = 0;
    for (let r = 0; r < R; r++) {
      while (kk <= np && !(kk / np >= REC_THRS[r]!)) kk++;
      kr[r] = kk;
    }
    const base = a * T * nd;
    // Which detections are anything but a false positive at some threshold (most are not).
    const busy = s.busy;
    for (let p = 0; p < nd; p++) {
      const off = base + p * T;
      let any = 0;
      for (let t = 0; t < T; t++) any |= codes[off + t]!;
      busy[p] = any;
    }
    for (let m = 0; m < M; m++) {
      const list = lists[m]!;
      const n = list.length;
      tp.fill(0);
      ig.fill(0);
      // fp is implicit: (position + 1) - tp - ignored, an exact integer, as pycocotools' cumulative sum.
      for (let q = 0; q < n; q++) {
        const p = list[q]!;
        if (!busy[p]) continue;
        const off = base + p * T;
        for (let t = 0; t < T; t++) {
          const c = codes[off + t];
          if (c === 1) {
            const v = ++tp[t]!;
            const f = q + 1 - v - ig[t]!;
            prAt[t * stride + v] = v / (f + v + EPS);
          } else if (c === 2) ig[t]!++;
        }
      }
      if (n > 0) {
        // pr at the first detection (which may be no true positive): needed when k_r = 0.
        const off = base + list[0]! * T;
        for (let t = 0; t < T; t++) {
          const c = codes[off + t]!;
          const tp0 = c === 1 ? 1 : 0;
          const fp0 = c === 0 ? 1 : 0;
          first[t] = tp0 / (fp0 + tp0 + EPS);
        }
      }
      for (let t = 0; t < T; t++) {
        const o = t * stride;
        const nTp = tp[t]!;
        recall[rIdx(t, k, a, m, K)] = n > 0 ? nTp / np : 0;
        // Right-running maximum over the true positives (the precision envelope).
        for (let v = nTp - 1; v >= 1; v--)
          if (prAt[o + v + 1]! > prAt[o + v]!) prAt[o + v] = prAt[o + v + 1]!;
        for (let r = 0; r < R; r++) {
          const need = kr[r]!;
          let val: number;
          if (n === 0 || need > nTp) val = 0;
          else if (need === 0) val = nTp > 0 && prAt[o + 1]! > first[t]! ? prAt[o + 1]! : first[t]!;
          else val = prAt[o + need]!;
          precision[pIdx(t, r, k, a, m, K)] = val;
        }
      }
    }
  }
}

/** `np.mean(s[s > -1])` over the indices `each` visits (in numpy's C order), or -1 if none. */
function meanAbove(arr: Float64Array, each: (push: (idx: number) => void) => void): number {
  const vals: number[] = [];
  each((i) => {
    const v = arr[i]!;
    if (v > -1) vals.push(v);
  });
  return vals.length === 0 ? -1 : numpySum(vals) / vals.length;
}

function summarize(precision: Float64Array, recall: Float64Array, K: number): number[] {
  const ap = (iouThr: number | undefined, a: number, maxDets: number): number => {
    const ts = iouThr === undefined ? [...Array(T).keys()] : tIndices(iouThr);
    const m = (COCO_PARAMS.maxDets as readonly number[]).indexOf(maxDets);
    if (m < 0) return -1;
    return meanAbove(precision, (push) => {
      for (const t of ts)
        for (let r = 0; r < R; r++) for (let k = 0; k < K; k++) push(pIdx(t, r, k, a, m, K));
    });
  };
  const ar = (a: number, maxDets: number): number => {
    const m = (COCO_PARAMS.maxDets as readonly number[]).indexOf(maxDets);
    if (m < 0) return -1;
    return meanAbove(recall, (push) => {
      for (let t = 0; t < T; t++) for (let k = 0; k < K; k++) push(rIdx(t, k, a, m, K));
    });
  };
  const md = COCO_PARAMS.maxDets;
  return [
    ap(undefined, 0, 100),
    ap(0.5, 0, md[2]),
    ap(0.75, 0, md[2]),
    ap(undefined, 1, md[2]),
    ap(undefined, 2, md[2]),
    ap(undefined, 3, md[2]),
    ar(0, md[0]),
    ar(0, md[1]),
    ar(0, md[2]),
    ar(1, md[2]),
    ar(2, md[2]),
    ar(3, md[2]),
  ];
}

/** `np.where(iouThr == p.iouThrs)[0]`. */
function tIndices(iouThr: number): number[] {
  const out: number[] = [];
  COCO_PARAMS.iouThrs.forEach((v, i) => {
    if (v === iouThr) out.push(i);
  });
  return out;
}

/**
 * The 12 lines pycocotools' `summarize()` prints, character for character (including Python's
 * round-half-to-even on exact ties in `{:0.3f}`).
 */
export function formatCocoSummary(stats: readonly number[]): string {
  const rows: [ap: boolean, iou: string, area: string, maxDets: number][] = [
    [true, '0.50:0.95', 'all', 100],
    [true, '0.50', 'all', 100],
    [true, '0.75', 'all', 100],
    [true, '0.50:0.95', 'small', 100],
    [true, '0.50:0.95', 'medium', 100],
    [true, '0.50:0.95', 'large', 100],
    [false, '0.50:0.95', 'all', 1],
    [false, '0.50:0.95', 'all', 10],
    [false, '0.50:0.95', 'all', 100],
    [false, '0.50:0.95', 'small', 100],
    [false, '0.50:0.95', 'medium', 100],
    [false, '0.50:0.95', 'large', 100],
  ];
  return rows
    .map(([ap, iou, area, md], i) => {
      const title = (ap ? 'Average Precision' : 'Average Recall').padEnd(18);
      return ` ${title} ${ap ? '(AP)' : '(AR)'} @[ IoU=${iou.padEnd(9)} | area=${area.padStart(6)} | maxDets=${String(md).padStart(3)} ] = ${formatFixed(stats[i]!, 3)}`;
    })
    .join('\n');
}
