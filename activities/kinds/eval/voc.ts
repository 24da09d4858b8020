/**
 * PASCAL VOC detection AP with the rules of the devkit's Python port (`voc_eval.py`, as used by
 * py-faster-rcnn and Detectron2): integer-pixel boxes with the +1 convention, `difficult` objects neither
 * true nor false positives, greedy matching in descending score order with a strict `> threshold`, and
 * both the VOC2007 11-point metric and the VOC2010+ all-point (area) metric.
 *
 * Tie rule (documented deviation): `voc_eval` sorts scores with numpy's default, unstable quicksort, so the
 * order of equal scores is implementation-defined. ablate sorts stably: equal scores keep their input
 * order (line order in a devkit file, list order in COCO results). Without ties the results are identical.
 *
 * A class with no non-difficult GT object has an undefined AP (the devkit divides by zero): its AP is
 * `null` and it is left out of the mAP.
 */
import { EPS as NUMPY_EPS, numpySum } from './numeric';

const EPS = NUMPY_EPS;

/** VOC ground truth: per class, the objects of each image, boxes as 1-based inclusive corners. */
export interface VocGroundTruth {
  classes: string[];
  /** Image keys, e.g. devkit ids (`000005`) or COCO image ids as strings. */
  images: string[];
  /** Image key -> index; may hold aliases (e.g. a COCO image's file name stem) for the same index. */
  imageIndex: Map<string, number>;
  /** One entry per class. */
  objects: VocBoxes[];
}

/** Boxes of one class: image index, `[x1, y1, x2, y2]` corners, difficult flag. */
export interface VocBoxes {
  img: Int32Array;
  box: Float64Array;
  difficult: Uint8Array;
}

/** Detections of one class, in input order. */
export interface VocDetections {
  img: Int32Array;
  score: Float64Array;
  box: Float64Array;
}

/** Which AP definition(s) to compute. */
export type VocMetric = 'voc07' | 'voc12' | 'both';

export interface VocEvalOptions {
  /** Overlap a detection must exceed (strictly) to match. @default 0.5 */
  iouThreshold?: number;
  /** @default 'both' */
  metric?: VocMetric;
}

/** One class's result. */
export interface VocClassResult {
  name: string;
  /** VOC2007 11-point AP (null when the class has no non-difficult GT, or when not requested). */
  AP07: number | null;
  /** VOC2010+ all-point AP. */
  AP12: number | null;
  /** Non-difficult GT objects. */
  npos: number;
  numDetections: number;
  truePositives: number;
  falsePositives: number;
}

export interface VocEvalResult {
  iouThreshold: number;
  metric: VocMetric;
  /** Mean of AP07 over classes with GT; null if not requested or no class has GT. */
  mAP07: number | null;
  mAP12: number | null;
  perClass: VocClassResult[];
  /** Per class, the precision/recall curves (cumulative over the score-sorted detections). */
  curves: { name: string; recall: number[]; precision: number[] }[];
}

/** `np.arange(0., 1.1, 0.1)`: i * 0.1 (0.30000000000000004, ...). */
const VOC07_THRESHOLDS = Array.from({ length: 11 }, (_, i) => i * 0.1);

/** The VOC2007 11-point AP of a precision/recall curve (voc_ap with use_07_metric=True). */
export function vocAp07(rec: ArrayLike<number>, prec: ArrayLike<number>): number {
  let ap = 0;
  for (const t of VOC07_THRESHOLDS) {
    let p = 0;
    let any = false;
    for (let i = 0; i < rec.length; i++) {
      if (rec[i]! >= t) {
        if (!any || prec[i]! > p) p = prec[i]!;
        any = true;
      }
    }
    ap = ap + p / 11;
  }
  return ap;
}

/** The VOC2010+ all-point AP (area under the monotone precision envelope; voc_ap default). */
export function vocAp12(rec: ArrayLike<number>, prec: ArrayLike<number>): number {
  const n = rec.length;
  const mrec = new Float64Array(n + 2);
  const mpre = new Float64Array(n + 2);
  for (let i = 0; i < n; i++) {
    mrec[i + 1] = rec[i]!;
    mpre[i + 1] = prec[i]!;
  }
  mrec[n + 1] = 1;
  for (let i = n + 1; i > 0; i--) mpre[i - 1] = Math.max(mpre[i - 1]!, mpre[i]!);
  const terms: number[] = [];
  for (let i = 0; i < n + 1; i++)
    if (mrec[i + 1] !== mrec[i]) terms.push((mrec[i + 1]! - mrec[i]!) * mpre[i + 1]!);
  return numpySum(terms);
}

/** Match one class's detections against its GT (voc_eval's loop); returns cumulative tp/fp curves. */
function matchClass(
  gt: VocBoxes,
  nImages: number,
  dets: VocDetections,
  thr: number,
): { rec: Float64Array; prec: Float64Array; npos: number; tp: number; fp: number } {
  // Per-image GT lists, in input order (argmax takes the first maximum).
  const start = new Int32Array(nImages + 1);
  for (let j = 0; j < gt.img.length; j++) start[gt.img[j]! + 1]!++;
  for (let i = 0; i < nImages; i++) start[i + 1]! += start[i]!;
  const byImg = new Int32Array(gt.img.length);
  const fill = start.slice(0, nImages);
  for (let j = 0; j < gt.img.length; j++) byImg[fill[gt.img[j]!]!++] = j;
  let npos = 0;
  for (let j = 0; j < gt.difficult.length; j++) if (!gt.difficult[j]) npos++;
  const used = new Uint8Array(gt.img.length);

  const nd = dets.score.length;
  const order = Int32Array.from({ length: nd }, (_, i) => i);
  order.sort((a, b) => dets.score[b]! - dets.score[a]! || a - b);
  const tpc = new Float64Array(nd);
  const fpc = new Float64Array(nd);
  let tp = 0;
  let fp = 0;
  for (let q = 0; q < nd; q++) {
    const d = order[q]!;
    const i = dets.img[d]!;
    const bx1 = dets.box[4 * d]!;
    const by1 = dets.box[4 * d + 1]!;
    const bx2 = dets.box[4 * d + 2]!;
    const by2 = dets.box[4 * d + 3]!;
    let ovmax = -Infinity;
    let jmax = -1;
    for (let s = start[i]!; s < start[i + 1]!; s++) {
      const j = byImg[s]!;
      const gx1 = gt.box[4 * j]!;
      const gy1 = gt.box[4 * j + 1]!;
      const gx2 = gt.box[4 * j + 2]!;
      const gy2 = gt.box[4 * j + 3]!;
      const ixmin = Math.max(gx1, bx1);
      const iymin = Math.max(gy1, by1);
      const ixmax = Math.min(gx2, bx2);
      const iymax = Math.min(gy2, by2);
      const iw = Math.max(ixmax - ixmin + 1, 0);
      const ih = Math.max(iymax - iymin + 1, 0);
      const inters = iw * ih;
      const uni = (bx2 - bx1 + 1) * (by2 - by1 + 1) + (gx2 - gx1 + 1) * (gy2 - gy1 + 1) - inters;
      const ov = inters / uni;
      if (Number.isNaN(ov)) {
        // np.max propagates NaN (0/0 from two zero-area boxes): no match.
        ovmax = NaN;
        break;
      }
      if (jmax < 0 || ov > ovmax) {
        ovmax = ov;
        jmax = j;
      }
    }
    if (ovmax > thr) {
      if (!gt.difficult[jmax]) {
        if (!used[jmax]) {
          tp++;
          used[jmax] = 1;
        } else fp++;
      }
    } else fp++;
    tpc[q] = tp;
    fpc[q] = fp;
  }
  const rec = new Float64Array(nd);
  const prec = new Float64Array(nd);
  for (let q = 0; q < nd; q++) {
    rec[q] = tpc[q]! / npos;
    prec[q] = tpc[q]! / Math.max(tpc[q]! + fpc[q]!, EPS);
  }
  return { rec, prec, npos, tp, fp };
}

/** Per-class AP and mAP with the devkit's rules (see the module comment). */
export function evaluateVoc(
  gt: VocGroundTruth,
  dets: readonly VocDetections[],
  opts: VocEvalOptions = {},
): VocEvalResult {
  const thr = opts.iouThreshold ?? 0.5;
  const metric = opts.metric ?? 'both';
  const want07 = metric !== 'voc12';
  const want12 = metric !== 'voc07';
  const perClass: VocClassResult[] = [];
  const curves: VocEvalResult['curves'] = [];
  const aps07: number[] = [];
  const aps12: number[] = [];
  gt.classes.forEach((name, c) => {
    const d = dets[c] ?? { img: new Int32Array(0), score: new Float64Array(0), box: new Float64Array(0) };
    const { rec, prec, npos, tp, fp } = matchClass(gt.objects[c]!, gt.images.length, d, thr);
    const defined = npos > 0;
    const ap07 = want07 && defined ? vocAp07(rec, prec) : null;
    const ap12 = want12 && defined ? vocAp12(rec, prec) : null;
    if (ap07 !== null) aps07.push(ap07);
    if (ap12 !== null) aps12.push(ap12);
    perClass.push({
      name,
      AP07: ap07,
      AP12: ap12,
      npos,
      numDetections: d.score.length,
      truePositives: tp,
      falsePositives: fp,
    });
    curves.push({ name, recall: defined ? Array.from(rec) : [], precision: Array.from(prec) });
  });
  return {
    iouThreshold: thr,
    metric,
    mAP07: want07 && aps07.length > 0 ? numpySum(aps07) / aps07.length : null,
    mAP12: want12 && aps12.length > 0 ? numpySum(aps12) / aps12.length : null,
    perClass,
    curves,
  };
}
