/**
 * The `dataset.split` step kind: a deterministic subset of a COCO instances file (or of a VOC image
 * set) by seed, as a new artifact. See split.ts for the selection rule and byte-determinism.
 */
import { join } from 'node:path';

import { ErrorType, permanent } from '../../../infra/errors';
import type { ArtifactRef, JsonValue } from '../../../workflows/plan-types';
import { artifactRefSchema, defineStepKind } from '../../runtime/step-kind';

/** Parameters of `dataset.split`. */
export interface DatasetSplitParams {
  /** COCO instances JSON to subset. */
  annotations?: ArtifactRef;
  /** Instead of `annotations`: a tree holding a VOC devkit, with `year` and `imageSet`. */
  devkit?: ArtifactRef;
  year?: string;
  imageSet?: string;
  count?: number;
  fraction?: number;
  /** A named subset (e.g. `coco-10k`): sets the count and checks the source's image count. */
  preset?: string;
  seed: number | string;
  /** The parent subset (same format as the output): candidates are restricted to its images. */
  nestedIn?: ArtifactRef;
}

/** `dataset.split`: seeded, category-covering, byte-deterministic subset selection. */
export const datasetSplit = defineStepKind<DatasetSplitParams>({
  name: 'dataset.split',
  version: '1',
  summary: 'Select a deterministic, category-covering subset of a COCO file (or VOC image set) by seed.',
  queue: 'cpu',
  withSchema: {
    type: 'object',
    required: ['seed'],
    properties: {
      annotations: { ...artifactRefSchema, description: 'COCO instances JSON.' },
      devkit: { ...artifactRefSchema, description: 'Tree artifact holding VOCdevkit/VOC<year>.' },
      year: { type: 'string', pattern: '^\\d{4}$' },
      imageSet: { type: 'string', description: 'VOC image set, e.g. trainval.' },
      count: { type: 'integer', minimum: 1 },
      fraction: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
      preset: { type: 'string', description: 'Named subset, e.g. coco-10k (see `ablate data presets`).' },
      seed: { type: ['integer', 'string'] },
      nestedIn: { ...artifactRefSchema, description: 'Parent subset: choose only among its images.' },
    },
    oneOf: [{ required: ['annotations'] }, { required: ['devkit', 'year', 'imageSet'] }],
    additionalProperties: false,
  },
  outputs: {
    annotations: {
      type: 'artifact',
      description: 'The subset: COCO JSON, or a VOC ImageSet .txt when the input was a devkit.',
    },
    images: { type: 'value', description: 'Images in the subset.' },
    perCategory: { type: 'value', description: 'Per category: { images, instances } in the subset.' },
  },
  defaults: { timeoutMs: 3600_000 },
  async run(params, ctx) {
    const { writeCocoSubset, writeVocSubset } = await import('./split');
    const { checkPresetCounts, getPreset } = await import('./presets');
    const size: { count?: number; fraction?: number } = {};
    if (params.count !== undefined) size.count = params.count;
    if (params.fraction !== undefined) size.fraction = params.fraction;
    const preset = params.preset === undefined ? undefined : getPreset(params.preset);
    if (preset) {
      if (size.count !== undefined || size.fraction !== undefined)
        throw permanent(ErrorType.InvalidInput, 'give either preset or count/fraction, not both');
      if (!preset.subsetOf)
        throw permanent(ErrorType.InvalidInput, `preset ${preset.name} is not a subset preset`);
      size.count = preset.images;
    }
    const nestedIn = params.nestedIn ? await ctx.fetch(params.nestedIn) : undefined;
    const dest = join(ctx.workDir, 'subset');
    let summary;
    if (params.annotations) {
      const source = await ctx.fetch(params.annotations);
      summary = await writeCocoSubset(source, `${dest}.json`, {
        ...size,
        seed: params.seed,
        nestedIn,
        signal: ctx.signal,
        checkSource: preset
          ? (images) => checkPresetCounts(getPreset(preset.subsetOf!), [{ file: 'annotations', images }])
          : undefined,
      });
    } else {
      const root = await ctx.fetch(params.devkit!);
      summary = await writeVocSubset(root, params.year!, params.imageSet!, `${dest}.txt`, {
        ...size,
        seed: params.seed,
        nestedIn,
      });
    }
    if (summary.missingCategories.length > 0)
      ctx.log.warn(
        `subset misses ${summary.missingCategories.length} categories (count too small to cover all)`,
        {
          missing: summary.missingCategories,
        },
      );
    const file = params.annotations ? `${dest}.json` : `${dest}.txt`;
    return {
      annotations: await ctx.publish(file, {
        mediaType: params.annotations ? 'application/json' : 'text/plain',
      }),
      images: summary.images,
      perCategory: summary.perCategory as unknown as JsonValue,
    };
  },
});
