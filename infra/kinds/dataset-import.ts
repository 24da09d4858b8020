/**
 * `dataset.import`: brings data that already exists on the worker's disk (a COCO annotation file, an
 * image directory, an ImageNet folder tree, a VOC devkit) into the artifact store, content-addressed, so
 * that the rest of the pipeline (and its lineage) refers to exact bytes. Never served from the step
 * cache: the files at a path can change, so they are hashed again on every run (blobs already in the
 * store are not written twice).
 */
import { defineKind } from './descriptor';

export interface DatasetImportParams {
  /** A file or directory on the worker, absolute (or `file://` URL); relative paths are taken from the worker's cwd. */
  path: string;
  /** What `path` must be. @default any */
  expect?: 'file' | 'directory' | 'any';
}

export const datasetImportKind = defineKind<DatasetImportParams>({
  name: 'dataset.import',
  version: '1',
  summary: "Store a file or directory from the worker's disk as an artifact (hashed on every run).",
  queue: 'cpu',
  cacheable: false,
  withSchema: {
    type: 'object',
    required: ['path'],
    properties: {
      path: {
        type: 'string',
        minLength: 1,
        description: 'File or directory on the worker (absolute path or file:// URL).',
      },
      expect: { enum: ['file', 'directory', 'any'], default: 'any' },
    },
    additionalProperties: false,
  },
  outputs: {
    data: {
      type: 'artifact',
      description: 'The file, or the directory as a folder (per `expect` and what is at `path`).',
    },
    files: { type: 'value', description: 'Number of files.', schema: { type: 'integer' } },
    bytes: { type: 'value', description: 'Total size in bytes.', schema: { type: 'integer' } },
  },
  defaults: { timeoutMs: 6 * 3600_000, heartbeatTimeoutMs: 30_000 },
});
