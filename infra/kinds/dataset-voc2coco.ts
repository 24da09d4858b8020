/**
 * `dataset.voc2coco`: PASCAL VOC image sets (e.g. VOC2007 trainval + VOC2012 train, as the paper trains)
 * as one COCO instances file, so the detector and the COCO/VOC evaluators read VOC data. Boxes follow
 * Detectron2's conversion (1-based inclusive corners to 0-based xywh); `difficult` objects become crowd
 * regions (ignored in training and evaluation). Categories are the 20 VOC classes in their standard
 * order by default (or a given list, or those of the first set), the same for every set converted. `file_name`s are relative to the devkit
 * directory given, so that directory (a tree artifact) serves as the image directory.
 */
import type { ArtifactRef } from '../../workflows/plan-types';
import { defineKind, folderRefSchema } from './descriptor';

export interface Voc2CocoParams {
  /** The VOCdevkit directory (tree artifact) holding VOC<year>/ folders. */
  devkit: ArtifactRef;
  /** Image sets to convert and concatenate, e.g. [{year: "2007", imageSet: "trainval"}, {year: "2012", imageSet: "train"}]. */
  sets: Array<{ year: string; imageSet: string }>;
  /** Category order: the 20 standard VOC classes, the classes found in the first set, or a list. @default "voc20" */
  classes?: 'voc20' | 'found' | string[];
}

export const datasetVoc2CocoKind = defineKind<Voc2CocoParams>({
  name: 'dataset.voc2coco',
  version: '1',
  summary: 'Convert PASCAL VOC image sets into one COCO instances file (standard 20-class order).',
  queue: 'cpu',
  withSchema: {
    type: 'object',
    required: ['devkit', 'sets'],
    properties: {
      devkit: { ...folderRefSchema, description: 'VOCdevkit directory (tree) holding VOC<year>/.' },
      sets: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['year', 'imageSet'],
          properties: {
            year: { type: 'string', pattern: '^[0-9]{4}$' },
            imageSet: { type: 'string', minLength: 1 },
          },
          additionalProperties: false,
        },
      },
      classes: {
        oneOf: [
          { enum: ['voc20', 'found'] },
          { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, uniqueItems: true },
        ],
        default: 'voc20',
        description: 'Category order: the 20 VOC classes, those found in the first set, or a list.',
      },
    },
    additionalProperties: false,
  },
  outputs: {
    annotations: {
      type: 'file',
      description: 'COCO instances JSON; file_name relative to the devkit directory.',
      mediaType: 'application/json',
    },
    images: { type: 'value', description: 'Images converted.', schema: { type: 'integer' } },
    objects: {
      type: 'value',
      description: 'Objects (difficult ones as crowd regions).',
      schema: { type: 'integer' },
    },
  },
});
