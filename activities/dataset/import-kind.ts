/**
 * `dataset.import`: brings data that already exists on the worker's disk (a COCO annotation file, an
 * image directory, an ImageNet folder tree, a VOC devkit) into the artifact store, content-addressed, so
 * that the rest of the pipeline (and its lineage) refers to exact bytes. Never served from the step
 * cache: the files at a path can change, so they are hashed again on every run (blobs already in the
 * store are not written twice).
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ErrorType, permanent } from '../../infra/errors';
import type { TreeManifest } from '../../infra/store/artifact-store';
import { TREE_MEDIA_TYPE } from '../../workflows/plan-types';
import { defineStepKind } from '../step-kind';

export interface DatasetImportParams {
  /** A file or directory on the worker, absolute (or `file://` URL); relative paths are taken from the worker's cwd. */
  path: string;
  /** What `path` must be. @default any */
  expect?: 'file' | 'directory' | 'any';
}

export const datasetImport = defineStepKind<DatasetImportParams>({
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
    data: { type: 'artifact', description: 'The file, or the directory as a tree.' },
    files: { type: 'value', description: 'Number of files.' },
    bytes: { type: 'value', description: 'Total size in bytes.' },
  },
  defaults: { timeoutMs: 6 * 3600_000, heartbeatTimeoutMs: 30_000 },
  async run(params, ctx) {
    const path = params.path.startsWith('file://')
      ? fileURLToPath(params.path)
      : isAbsolute(params.path)
        ? params.path
        : resolve(params.path);
    let info;
    try {
      info = await stat(path);
    } catch (err) {
      throw permanent(
        ErrorType.DatasetNotFound,
        `dataset.import: ${path} does not exist on this worker (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    const expect = params.expect ?? 'any';
    if (expect === 'file' && !info.isFile())
      throw permanent(ErrorType.InvalidInput, `dataset.import: ${path} is not a file`);
    if (expect === 'directory' && !info.isDirectory())
      throw permanent(ErrorType.InvalidInput, `dataset.import: ${path} is not a directory`);
    ctx.heartbeat({ message: `hashing ${path}` });
    const data = await ctx.publish(path);
    if (data.mediaType !== TREE_MEDIA_TYPE) return { data, files: 1, bytes: data.sizeBytes };
    const manifest = JSON.parse((await ctx.readBytes(data)).toString('utf8')) as TreeManifest;
    if (manifest.entries.length === 0)
      throw permanent(ErrorType.EmptyDataset, `dataset.import: ${path} holds no files`);
    return {
      data,
      files: manifest.entries.length,
      bytes: manifest.entries.reduce((n, e) => n + e.sizeBytes, 0),
    };
  },
});
