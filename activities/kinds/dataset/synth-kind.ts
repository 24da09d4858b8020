/**
 * The `dataset.synth` step kind: generates a synthetic dataset in a real on-disk format and publishes
 * it as tree/file artifacts (layout in generate.ts and the README's Datasets section). The generator
 * module (and sharp) load lazily, inside `run`.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorType, permanent } from '../../../infra/errors';
import type { JsonValue, StepOutputs } from '../../../workflows/plan-types';
import { taskFormatMismatch, datasetSynthKind } from '../../../infra/kinds/dataset-synth';
import { implementKind } from '../../runtime/step-kind';

/** `datasetSynth`'s implementation (its descriptor: infra/kinds). */
export const datasetSynth = implementKind(datasetSynthKind, import.meta.url, async (params, ctx) => {
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
});
