/**
 * The `dataset.split` step kind: a deterministic subset of a COCO instances file (or of a VOC image
 * set) by seed, as a new artifact. See split.ts for the selection rule and byte-determinism.
 */
import type { ArtifactRef } from '../../workflows/plan-types';
import { defineKind, fileRefSchema, folderRefSchema } from './descriptor';

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
export const datasetSplitKind = defineKind<DatasetSplitParams>({
  name: 'dataset.split',
  version: '1',
  summary: 'Select a deterministic, category-covering subset of a COCO file (or VOC image set) by seed.',
  queue: 'cpu',
  withSchema: {
    type: 'object',
    required: ['seed'],
    properties: {
      annotations: { ...fileRefSchema, description: 'COCO instances JSON.' },
      devkit: { ...folderRefSchema, description: 'Tree artifact holding VOCdevkit/VOC<year>.' },
      year: { type: 'string', pattern: '^\\d{4}$' },
      imageSet: { type: 'string', description: 'VOC image set, e.g. trainval.' },
      count: { type: 'integer', minimum: 1 },
      fraction: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
      preset: { type: 'string', description: 'Named subset, e.g. coco-10k (see `ablate data presets`).' },
      seed: { type: ['integer', 'string'] },
      nestedIn: { ...fileRefSchema, description: 'Parent subset: choose only among its images.' },
    },
    oneOf: [{ required: ['annotations'] }, { required: ['devkit', 'year', 'imageSet'] }],
    additionalProperties: false,
  },
  outputs: {
    annotations: {
      type: 'file',
      description: 'The subset: COCO JSON, or a VOC ImageSet .txt when the input was a devkit.',
    },
    images: { type: 'value', description: 'Images in the subset.', schema: { type: 'integer' } },
    perCategory: {
      type: 'value',
      description: 'Per category: { images, instances } in the subset.',
      schema: { type: 'object' },
    },
  },
  defaults: { timeoutMs: 3600_000 },
});
