/**
 * `dataset.voc2coco`: PASCAL VOC image sets (e.g. VOC2007 trainval + VOC2012 train, as the paper trains)
 * as one COCO instances file, so the detector and the COCO/VOC evaluators read VOC data. Boxes follow
 * Detectron2's conversion (1-based inclusive corners to 0-based xywh); `difficult` objects become crowd
 * regions (ignored in training and evaluation). Categories are the 20 VOC classes in their standard
 * order by default (or a given list, or those of the first set), the same for every set converted. `file_name`s are relative to the devkit
 * directory given, so that directory (a tree artifact) serves as the image directory.
 */
import { relative } from 'node:path';

import type { ArtifactRef } from '../../../workflows/plan-types';
import { artifactRefSchema, defineStepKind } from '../../runtime/step-kind';
import { loadVocDevkit, VOC_CLASSES, vocToCoco } from './voc';

export interface Voc2CocoParams {
  /** The VOCdevkit directory (tree artifact) holding VOC<year>/ folders. */
  devkit: ArtifactRef;
  /** Image sets to convert and concatenate, e.g. [{year: "2007", imageSet: "trainval"}, {year: "2012", imageSet: "train"}]. */
  sets: Array<{ year: string; imageSet: string }>;
  /** Category order: the 20 standard VOC classes, the classes found in the first set, or a list. @default "voc20" */
  classes?: 'voc20' | 'found' | string[];
}

export const datasetVoc2Coco = defineStepKind<Voc2CocoParams>({
  name: 'dataset.voc2coco',
  version: '1',
  summary: 'Convert PASCAL VOC image sets into one COCO instances file (standard 20-class order).',
  queue: 'cpu',
  withSchema: {
    type: 'object',
    required: ['devkit', 'sets'],
    properties: {
      devkit: { ...artifactRefSchema, description: 'VOCdevkit directory (tree) holding VOC<year>/.' },
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
      type: 'artifact',
      description: 'COCO instances JSON; file_name relative to the devkit directory.',
      mediaType: 'application/json',
    },
    images: { type: 'value', description: 'Images converted.' },
    objects: { type: 'value', description: 'Objects (difficult ones as crowd regions).' },
  },
  async run(params, ctx) {
    const root = await ctx.fetch(params.devkit);
    const images: Array<Record<string, unknown>> = [];
    const annotations: Array<Record<string, unknown>> = [];
    let categories: Array<{ id: number; name: string }> = [];
    const choice = params.classes ?? 'voc20';
    let classes: string[] | undefined =
      choice === 'voc20' ? [...VOC_CLASSES] : choice === 'found' ? undefined : choice;
    for (const set of params.sets) {
      const voc = await loadVocDevkit(root, set.year, set.imageSet, classes ? { classes } : {});
      classes ??= voc.classes;
      const coco = vocToCoco(voc);
      categories = coco.categories;
      const offset = images.length;
      coco.images.forEach((im, i) => {
        images.push({
          ...im,
          id: offset + i + 1,
          file_name: relative(root, voc.images[i]!.path).split('\\').join('/'),
        });
      });
      for (const a of coco.annotations)
        annotations.push({ ...a, id: annotations.length + 1, image_id: a.image_id + offset });
      ctx.heartbeat({ message: `converted VOC${set.year} ${set.imageSet}: ${coco.images.length} images` });
    }
    const annotationsRef = await ctx.publishBytes(JSON.stringify({ images, annotations, categories }), {
      mediaType: 'application/json',
    });
    return { annotations: annotationsRef, images: images.length, objects: annotations.length };
  },
});
