/**
 * The `dataset.split` step kind: a deterministic subset of a COCO instances file (or of a VOC image
 * set) by seed, as a new artifact. See split.ts for the selection rule and byte-determinism.
 */
import { join } from 'node:path';
import { ErrorType, permanent } from '../../../infra/errors';
import type { JsonValue } from '../../../workflows/plan-types';
import { datasetSplitKind } from '../../../infra/kinds/dataset-split';
import { implementKind } from '../../runtime/step-kind';

/** `datasetSplit`'s implementation (its descriptor: infra/kinds). */
export const datasetSplit = implementKind(datasetSplitKind, import.meta.url, async (params, ctx) => {
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
});
