/**
 * The `dataset.synth` step kind: generates a synthetic dataset in a real on-disk format and publishes
 * it as tree/file artifacts (layout in generate.ts and the README's Datasets section). The generator
 * module (and sharp) load lazily, inside `run`.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { ErrorType, permanent } from '../../infra/errors';
import type { JsonValue, StepOutputs } from '../../workflows/plan-types';
import { defineStepKind } from '../step-kind';

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
export const datasetSynth = defineStepKind<DatasetSynthParams>({
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
    dataset: { type: 'artifact', description: 'The whole dataset directory (tree).' },
    images: {
      type: 'artifact',
      description: 'coco: the image directory (tree); file_name is relative to it.',
      optional: true,
    },
    train: {
      type: 'artifact',
      description: 'coco: instances JSON of the train set.',
      mediaType: 'application/json',
      optional: true,
    },
    val: {
      type: 'artifact',
      description: 'coco: instances JSON of the val set.',
      mediaType: 'application/json',
      optional: true,
    },
    devkit: {
      type: 'artifact',
      description: 'voc: VOCdevkit/VOC<year>/{Annotations,ImageSets/Main,JPEGImages} (tree).',
      optional: true,
    },
    classes: { type: 'value', description: 'Number of classes.' },
    summary: { type: 'value', description: 'Counts: images, annotations, per category, per area range.' },
    contactSheet: {
      type: 'artifact',
      description: 'PNG grid of samples with boxes.',
      mediaType: 'image/png',
    },
  },
  defaults: { timeoutMs: 4 * 3600_000, heartbeatTimeoutMs: 30_000 },
  async run(params, ctx) {
    const mismatch = taskFormatMismatch(params.task, params.format);
    if (mismatch) throw permanent(ErrorType.InvalidInput, mismatch);
    const gen = await import('./synth/generate');
    const dir = join(ctx.workDir, 'dataset');
    await mkdir(dir, { recursive: true });
    const sheet = join(ctx.workDir, 'contact-sheet.png');
    let last = 0;
    const hooks = {
      contactSheet: sheet,
      signal: ctx.signal,
      onProgress(done: number, total: number) {
        if (done - last >= 100 || done === total) {
          last = done;
          ctx.heartbeat({ message: `image ${done}/${total}`, iteration: done, totalIterations: total });
        }
      },
    };
    const outputs: StepOutputs = {};
    if (params.format === 'imagenet') {
      const summary = await gen.generateImagenetClassification(
        dir,
        {
          seed: params.seed,
          images: params.images,
          classes: params.classes,
          valPerClass: params.valPerClass,
          size: params.size,
        },
        hooks,
      );
      outputs.classes = summary.classes;
      outputs.summary = summary as unknown as JsonValue;
    } else {
      const options = {
        seed: params.seed,
        images: params.images,
        size: params.size ?? 64,
        classes: params.classes,
        valImages: params.valImages,
        meanObjects: params.meanObjects,
        maxObjects: params.maxObjects,
        sizeMix: params.sizeMix,
        meanDistractors: params.meanDistractors,
        crowdRate: params.crowdRate,
      };
      if (params.format === 'coco') {
        const summary = await gen.generateCocoDetection(dir, options, hooks);
        outputs.images = await ctx.publish(join(dir, 'images'));
        outputs.train = await ctx.publish(join(dir, 'annotations', 'instances_train.json'), {
          mediaType: 'application/json',
        });
        outputs.val = await ctx.publish(join(dir, 'annotations', 'instances_val.json'), {
          mediaType: 'application/json',
        });
        outputs.classes = summary.categories.length;
        outputs.summary = summary as unknown as JsonValue;
      } else {
        const summary = await gen.generateVocDetection(dir, { ...options, year: params.year }, hooks);
        outputs.devkit = await ctx.publish(dir);
        outputs.classes = summary.categories.length;
        outputs.summary = summary as unknown as JsonValue;
      }
    }
    outputs.dataset = await ctx.publish(dir);
    outputs.contactSheet = await ctx.publish(sheet, { mediaType: 'image/png' });
    ctx.annotate({ generator: 'ablate dataset.synth', format: params.format });
    return outputs;
  },
});
