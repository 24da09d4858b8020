/**
 * Loading evaluation inputs from files and shaping results into the JSON documents ablate publishes:
 * the small `metrics` value of the eval steps, the full `report` artifact, and `ablate eval --json`.
 * Shared by the step kinds and the CLI so both say the same thing.
 */
import { readFile, stat } from 'node:fs/promises';

import { ErrorType, permanent } from '../../../infra/errors';
import { formatJsonLexError, JsonLexError, parseJsonBytes, positionInBytes } from '../../../infra/json-lexer';
import type { JsonObject, JsonValue } from '../../../workflows/plan-types';
import {
  COCO_PARAMS,
  COCO_STAT_NAMES,
  evaluateCoco,
  prepareCocoGroundTruth,
  type CocoEvalOptions,
  type CocoEvalResult,
} from './coco';
import { evaluateVoc, type VocEvalOptions, type VocEvalResult } from './voc';
import {
  readVocDetectionFiles,
  readVocDevkit,
  vocDetectionsFromCoco,
  vocGroundTruthFromCoco,
  type VocDevkitOptions,
} from './voc-devkit';

/**
 * Read and parse a JSON file strictly; a missing file is DatasetNotFound, malformed JSON (duplicate
 * keys included) an InvalidInput error naming the file, line and column.
 */
export async function readJsonFile(path: string, what: string): Promise<unknown> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw permanent(
      ErrorType.DatasetNotFound,
      `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  try {
    return parseJsonBytes(bytes);
  } catch (err) {
    if (!(err instanceof JsonLexError)) throw err;
    const first = err.firstOffset === undefined ? undefined : positionInBytes(bytes, err.firstOffset);
    throw permanent(
      ErrorType.InvalidInput,
      formatJsonLexError(path, err, positionInBytes(bytes, err.offset), first, what),
    );
  }
}

/** Evaluate COCO files (instances JSON + results JSON). */
export async function evaluateCocoFiles(
  gtPath: string,
  dtPath: string,
  opts: Omit<CocoEvalOptions, 'detectionsSource'> = {},
): Promise<CocoEvalResult> {
  const gtDoc = await readJsonFile(gtPath, 'COCO ground truth');
  const dtDoc = await readJsonFile(dtPath, 'COCO results');
  return evaluateCoco(prepareCocoGroundTruth(gtDoc, gtPath), dtDoc, { ...opts, detectionsSource: dtPath });
}

/** Category names as JSON keys; a repeated name gets its id appended. */
function categoryKeys(result: CocoEvalResult): string[] {
  const count = new Map<string, number>();
  for (const c of result.perCategory) count.set(c.name, (count.get(c.name) ?? 0) + 1);
  return result.perCategory.map((c) => (count.get(c.name)! > 1 ? `${c.name}#${String(c.id)}` : c.name));
}

/** The 12 statistics by name: `{AP, AP50, ..., ARl}`. */
export function cocoNamedStats(result: CocoEvalResult): Record<(typeof COCO_STAT_NAMES)[number], number> {
  return Object.fromEntries(COCO_STAT_NAMES.map((n, i) => [n, result.stats[i]!])) as Record<
    (typeof COCO_STAT_NAMES)[number],
    number
  >;
}

/** `metrics` output of `eval.coco`: the named stats plus `perCategory: {name: AP}`. */
export function cocoMetrics(result: CocoEvalResult): JsonObject {
  const keys = categoryKeys(result);
  return {
    ...cocoNamedStats(result),
    perCategory: Object.fromEntries(result.perCategory.map((c, i) => [keys[i]!, c.AP])),
  };
}

/** `ablate eval coco --json`: stats in pycocotools' order, named stats, per-category results, counts. */
export function cocoSummaryJson(result: CocoEvalResult): JsonObject {
  const keys = categoryKeys(result);
  return {
    iouType: result.iouType,
    stats: result.stats,
    metrics: cocoNamedStats(result),
    perCategory: Object.fromEntries(
      result.perCategory.map((c, i) => [
        keys[i]!,
        { id: c.id, AP: c.AP, AP50: c.AP50, AP75: c.AP75, numGt: c.numGt, numDetections: c.numDetections },
      ]),
    ),
    numImages: result.numImages,
    numGt: result.numGt,
    numDetections: result.numDetections,
    warnings: result.warnings,
  };
}

/** The full report: the summary plus parameters and pycocotools' precision/recall arrays (flat, C order). */
export function cocoReport(result: CocoEvalResult): JsonObject {
  const { T, R, K, A, M } = result.shape;
  return {
    ...cocoSummaryJson(result),
    statNames: [...COCO_STAT_NAMES],
    params: {
      iouThrs: [...COCO_PARAMS.iouThrs],
      recThrs: [...COCO_PARAMS.recThrs],
      maxDets: [...COCO_PARAMS.maxDets],
      areaRng: COCO_PARAMS.areaRng.map((r) => [...r]),
      areaRngLbl: [...COCO_PARAMS.areaRngLbl],
      catIds: result.perCategory.map((c) => c.id),
    },
    precision: { shape: [T, R, K, A, M], data: Array.from(result.precision) },
    recall: { shape: [T, K, A, M], data: Array.from(result.recall) },
  };
}

/** Where VOC inputs come from: a devkit directory or a COCO JSON file, for GT and for detections. */
export interface VocInputs {
  /** A devkit directory (with `imageSet`) or a COCO instances JSON file. */
  gt: string;
  /** Required when `gt` is a devkit directory. */
  imageSet?: string;
  /** A COCO results JSON file or a directory of devkit detection files. */
  detections: string;
  classes?: readonly string[];
  year?: string;
}

async function isDirectory(path: string, what: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (err) {
    throw permanent(
      ErrorType.DatasetNotFound,
      `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}

/** Evaluate VOC inputs from files or directories (see {@link VocInputs}). */
export async function evaluateVocFiles(inputs: VocInputs, opts: VocEvalOptions = {}): Promise<VocEvalResult> {
  const gtIsDir = await isDirectory(inputs.gt, 'VOC ground truth');
  const dtIsDir = await isDirectory(inputs.detections, 'VOC detections');
  let gt;
  if (gtIsDir) {
    if (!inputs.imageSet)
      throw permanent(
        ErrorType.InvalidInput,
        `${inputs.gt} is a VOC devkit directory: name the image set to evaluate (e.g. test, val)`,
      );
    const devOpts: VocDevkitOptions = {};
    if (inputs.classes) devOpts.classes = inputs.classes;
    if (inputs.year) devOpts.year = inputs.year;
    gt = await readVocDevkit(inputs.gt, inputs.imageSet, devOpts);
  } else {
    gt = vocGroundTruthFromCoco(await readJsonFile(inputs.gt, 'COCO ground truth'), inputs.gt);
  }
  const dets = dtIsDir
    ? await readVocDetectionFiles(inputs.detections, inputs.imageSet ?? 'test', gt)
    : vocDetectionsFromCoco(await readJsonFile(inputs.detections, 'COCO results'), gt, inputs.detections);
  return evaluateVoc(gt, dets, opts);
}

/** `metrics` output of `eval.voc` and `ablate eval voc --json`: mAPs and per-class APs. */
export function vocSummaryJson(result: VocEvalResult): JsonObject {
  const out: JsonObject = { iouThreshold: result.iouThreshold, metric: result.metric };
  if (result.metric !== 'voc12') out.mAP07 = result.mAP07;
  if (result.metric !== 'voc07') out.mAP12 = result.mAP12;
  const perClass: JsonObject = {};
  for (const c of result.perClass) {
    const e: { [k: string]: JsonValue } = {};
    if (result.metric !== 'voc12') e.AP07 = c.AP07;
    if (result.metric !== 'voc07') e.AP12 = c.AP12;
    e.npos = c.npos;
    e.numDetections = c.numDetections;
    e.truePositives = c.truePositives;
    e.falsePositives = c.falsePositives;
    perClass[c.name] = e;
  }
  out.perClass = perClass;
  return out;
}

/** The full VOC report: the summary plus each class's precision/recall curve. */
export function vocReport(result: VocEvalResult): JsonObject {
  return {
    ...vocSummaryJson(result),
    tieRule: 'equal scores keep input order (stable sort)',
    curves: Object.fromEntries(
      result.curves.map((c) => [c.name, { recall: c.recall, precision: c.precision }]),
    ),
  };
}
