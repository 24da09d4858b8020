/**
 * The `dataset.synth` step kind: generates a synthetic dataset in a real on-disk format and publishes
 * it as tree/file artifacts (layout in generate.ts and the README's Datasets section). The generator
 * module (and sharp) load lazily, inside `run`.
 */
import { defineKind } from './descriptor';

/** Parameters of `dataset.synth`. */
export interface DatasetSynthParams {
  task: 'classification' | 'detection';
  format: 'imagenet' | 'coco' | 'voc';
  /** Train images. */
  images: number;
  seed: number | string;
  /** Image side in pixels. @default 64 */
  size?: number;
  /** Classes: 2..100 for classification (default 100), 1..20 for detection (default 12). */
  classes?: number;
  /** Detection: val images (a fixed set for the seed). @default 300 */
  valImages?: number;
  /** Classification: val images per class. @default 10 */
  valPerClass?: number;
  /** VOC: devkit year. @default '2012' */
  year?: '2007' | '2012';
  meanObjects?: number;
  maxObjects?: number;
  sizeMix?: [number, number, number];
  meanDistractors?: number;
  crowdRate?: number;
}

/** Check that task and format agree; returns the message of the mismatch, if any. */
export function taskFormatMismatch(task: string, format: string): string | undefined {
  if (task === 'classification' && format !== 'imagenet')
    return `a classification set is written in imagenet format, not ${format}`;
  if (task === 'detection' && format === 'imagenet')
    return 'a detection set is written in coco or voc format, not imagenet';
  return undefined;
}

/** `dataset.synth`: a seeded synthetic dataset in ImageNet, COCO or VOC layout. */
export const datasetSynthKind = defineKind<DatasetSynthParams>({
  name: 'dataset.synth',
  version: '1',
  summary: 'Generate a seeded synthetic dataset (ImageNet folders, COCO JSON or a VOC devkit).',
  queue: 'cpu',
  withSchema: {
    type: 'object',
    required: ['task', 'format', 'images', 'seed'],
    properties: {
      task: { enum: ['classification', 'detection'] },
      format: { enum: ['imagenet', 'coco', 'voc'] },
      images: { type: 'integer', minimum: 1, maximum: 2000000, description: 'Train images.' },
      seed: { type: ['integer', 'string'], description: 'Same seed, same bytes.' },
      size: { type: 'integer', minimum: 16, maximum: 1024, default: 64, description: 'Image side, px.' },
      classes: { type: 'integer', minimum: 1, maximum: 100 },
      valImages: { type: 'integer', minimum: 0, default: 300 },
      valPerClass: { type: 'integer', minimum: 0, default: 10 },
      year: { enum: ['2007', '2012'], default: '2012' },
      meanObjects: { type: 'number', minimum: 1, maximum: 20, default: 3 },
      maxObjects: { type: 'integer', minimum: 1, maximum: 50, default: 8 },
      sizeMix: {
        type: 'array',
        items: { type: 'number', minimum: 0 },
        minItems: 3,
        maxItems: 3,
        description: 'Fractions of small / medium / large objects (COCO ranges scaled to the image).',
      },
      meanDistractors: { type: 'number', minimum: 0, maximum: 20, default: 1 },
      crowdRate: { type: 'number', minimum: 0, maximum: 1, default: 0.03 },
    },
    additionalProperties: false,
  },
  outputs: {
    dataset: { type: 'folder', description: 'The whole dataset directory.' },
    images: {
      type: 'folder',
      description: 'coco: the image directory (tree); file_name is relative to it.',
      optional: true,
    },
    train: {
      type: 'file',
      description: 'coco: instances JSON of the train set.',
      mediaType: 'application/json',
      optional: true,
    },
    val: {
      type: 'file',
      description: 'coco: instances JSON of the val set.',
      mediaType: 'application/json',
      optional: true,
    },
    devkit: {
      type: 'folder',
      description: 'voc: VOCdevkit/VOC<year>/{Annotations,ImageSets/Main,JPEGImages} (tree).',
      optional: true,
    },
    classes: { type: 'value', description: 'Number of classes.', schema: { type: 'integer' } },
    summary: {
      type: 'value',
      description: 'Counts: images, annotations, per category, per area range.',
      schema: { type: 'object' },
    },
    contactSheet: {
      type: 'file',
      description: 'PNG grid of samples with boxes.',
      mediaType: 'image/png',
    },
  },
  defaults: { timeoutMs: 4 * 3600_000, heartbeatTimeoutMs: 30_000 },
});
