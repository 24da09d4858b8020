/**
 * Step kinds `eval.coco` and `eval.voc`: detection metrics that equal pycocotools' and the VOC devkit's.
 * The evaluators are imported inside `run`, so listing kinds stays cheap.
 */
import type { ArtifactRef } from '../../workflows/plan-types';
import { artifactRefSchema, defineKind, fileRefSchema, metricsSchema } from './descriptor';

/** Parameters of `eval.coco`. */
export interface EvalCocoInput {
  /** COCO instances JSON (images, annotations with `area` and `iscrowd`, categories). */
  gt: ArtifactRef;
  /** COCO results JSON: `[{image_id, category_id, bbox | segmentation, score}]`. */
  detections: ArtifactRef;
  /** @default 'bbox' */
  iouType?: 'bbox' | 'segm';
  /** Detections of categories missing from the GT: refuse (default) or drop as pycocotools does. */
  unknownCategories?: 'error' | 'ignore';
}

/** Parameters of `eval.voc`. */
export interface EvalVocInput {
  /** A VOC devkit tree (Annotations/, ImageSets/Main/) or a COCO instances JSON file. */
  gt: ArtifactRef;
  /** Image set of a devkit tree, e.g. `test` (ImageSets/Main/test.txt). */
  imageSet?: string;
  /** COCO results JSON, or a tree of devkit files `comp4_det_<set>_<class>.txt`. */
  detections: ArtifactRef;
  /** @default 0.5 */
  iouThreshold?: number;
  /** @default 'both' */
  metric?: 'voc07' | 'voc12' | 'both';
  /** Class names for a devkit tree. @default the 20 VOC classes */
  classes?: string[];
}

/** `eval.coco`: COCO AP/AR exactly as pycocotools' COCOeval (bbox or segm). */
export const evalCocoKind = defineKind<EvalCocoInput>({
  name: 'eval.coco',
  version: '1',
  summary: "COCO detection metrics (12 stats, per-category AP) identical to pycocotools' COCOeval.",
  queue: 'cpu',
  withSchema: {
    type: 'object',
    required: ['gt', 'detections'],
    properties: {
      gt: { ...fileRefSchema, description: 'COCO instances JSON (ground truth).' },
      detections: { ...fileRefSchema, description: 'COCO results JSON list.' },
      iouType: { enum: ['bbox', 'segm'], default: 'bbox' },
      unknownCategories: {
        enum: ['error', 'ignore'],
        default: 'error',
        description:
          'Detections of categories not in the GT: fail (default) or drop them as pycocotools does.',
      },
    },
    additionalProperties: false,
  },
  outputs: {
    metrics: {
      type: 'value',
      description:
        '{AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl, perCategory: {name: AP}} in [0,1], -1 = undefined.',
      schema: metricsSchema,
    },
    report: {
      type: 'file',
      description: 'Full JSON report: stats, per-category AP50/AP75, precision/recall arrays.',
      mediaType: 'application/json',
    },
  },
  defaults: { timeoutMs: 30 * 60_000 },
});

/** `eval.voc`: PASCAL VOC per-class AP and mAP (VOC07 11-point and/or VOC2010+ area). */
export const evalVocKind = defineKind<EvalVocInput>({
  name: 'eval.voc',
  version: '1',
  summary: 'PASCAL VOC per-class AP and mAP (07 11-point and 2010+ area) with the devkit rules.',
  queue: 'cpu',
  withSchema: {
    type: 'object',
    required: ['gt', 'detections'],
    properties: {
      gt: { ...artifactRefSchema, description: 'VOC devkit tree, or COCO instances JSON.' },
      imageSet: {
        type: 'string',
        minLength: 1,
        description:
          'Image set of a devkit tree (e.g. test); also the <set> in devkit detection file names (default test).',
      },
      detections: {
        ...artifactRefSchema,
        description: 'COCO results JSON, or a tree of devkit detection files.',
      },
      iouThreshold: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.5 },
      metric: { enum: ['voc07', 'voc12', 'both'], default: 'both' },
      classes: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, uniqueItems: true },
    },
    additionalProperties: false,
  },
  outputs: {
    metrics: {
      type: 'value',
      description: '{mAP07, mAP12, perClass: {name: {AP07, AP12, npos, ...}}} in [0,1].',
      schema: metricsSchema,
    },
    report: {
      type: 'file',
      description: 'Full JSON report including per-class precision/recall curves.',
      mediaType: 'application/json',
    },
  },
  defaults: { timeoutMs: 30 * 60_000 },
});
