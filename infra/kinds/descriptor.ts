/**
 * What a step kind is, as data: its name, version, the JSON Schema of its `with`, the type of every
 * output, its default queue and limits. The compiler (infra/compiler) and the step runtime
 * (activities/runtime) both depend on this module and on the descriptors in this folder; only the
 * runtime knows how a kind runs (activities/kinds/*). Descriptors import nothing heavy, so `ablate
 * validate` and `ablate plan` stay fast.
 */
import type { QueueName, RetrySpec } from '../../workflows/plan-types';

/** A JSON Schema (draft 2020-12) object. */
export type JsonSchema = { [key: string]: unknown };

/**
 * The type of a step output:
 * - `file`: one artifact (an ArtifactRef to a blob in the store);
 * - `folder`: a directory artifact (an ArtifactRef to a tree manifest);
 * - `artifact`: a file or a folder, which one depends on the parameters (e.g. `dataset.import`);
 * - `value`: small JSON (metrics, counts), described by `schema`.
 */
export type OutputType = 'file' | 'folder' | 'artifact' | 'value';

/** One output a step kind produces. */
export interface OutputSpec {
  type: OutputType;
  description: string;
  /** For files: the media type written. */
  mediaType?: string;
  /** For values: the JSON Schema of the value, so the compiler can check every reference to it. */
  schema?: JsonSchema;
  /** Produced only for some parameters (e.g. per format); reads as null when absent. */
  optional?: boolean;
}

/** A step kind's description: everything but how it runs. */
export interface KindDescriptor<P = Record<string, unknown>> {
  /** e.g. `dataset.split`. Also the Temporal activity type of its steps. */
  name: string;
  /** Bump when the same inputs would give different outputs (part of the cache key, beside the code digest). */
  version: string;
  /** One line for `ablate kinds`. */
  summary: string;
  /** Queue used unless the pipeline says otherwise. */
  queue: QueueName;
  /** JSON Schema (draft 2020-12) of the step's `with`; artifact inputs use {@link fileRefSchema} or {@link folderRefSchema}. */
  withSchema: JsonSchema;
  outputs: Record<string, OutputSpec>;
  /**
   * False for kinds whose outputs depend on more than their parameters (e.g. files read from a path):
   * their results are never taken from the step cache. @default true
   */
  cacheable?: boolean;
  /** Defaults for the step's limits; the pipeline's `timeout` / `retry` override them. */
  defaults?: { timeoutMs?: number; heartbeatTimeoutMs?: number; retry?: Partial<RetrySpec> };
  /** Phantom: the type of the validated `with` (never set; gives `P` a use). */
  readonly params?: P;
}

/** Identity function that gives a descriptor literal its type. */
export function defineKind<P>(kind: KindDescriptor<P>): KindDescriptor<P> {
  return kind;
}

/** The keyword that marks an artifact-valued parameter in a `with` schema, and which type it takes. */
export const ARTIFACT_KEYWORD = 'x-ablate-artifact';

const refProperties = {
  uri: { type: 'string' },
  digest: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' },
  sizeBytes: { type: 'integer', minimum: 0 },
  mediaType: { type: 'string' },
};

function refSchema(accepts: 'file' | 'folder' | 'any'): JsonSchema {
  return {
    type: 'object',
    required: ['uri', 'digest', 'sizeBytes', 'mediaType'],
    properties: refProperties,
    additionalProperties: false,
    [ARTIFACT_KEYWORD]: accepts,
  };
}

/**
 * The JSON Schema of an artifact-valued parameter. In pipelines it is written as a template such as
 * `${steps.split.outputs.annotations}`; the compiler checks that the output is an artifact of the type
 * the parameter takes, and the runner binds the ref.
 */
export const fileRefSchema: JsonSchema = refSchema('file');
/** A parameter that takes a folder (tree) artifact. */
export const folderRefSchema: JsonSchema = refSchema('folder');
/** A parameter that takes a file or a folder artifact (the kind handles both). */
export const artifactRefSchema: JsonSchema = refSchema('any');

/** JSON Schema of a value that is a JSON object of numbers and other fields (metrics). */
export const metricsSchema: JsonSchema = { type: 'object' };

/**
 * A fan-in parameter: one `{cell, value}` per grid cell, as `${steps.ID.outputs.NAME}` reads in a step
 * with groupBy. `value` is the schema of each cell's value.
 */
export function cellRowsSchema(value: JsonSchema, description: string): JsonSchema {
  return {
    type: 'array',
    description,
    items: {
      type: 'object',
      required: ['cell', 'value'],
      properties: { cell: { type: 'object' }, value },
      additionalProperties: false,
    },
  };
}
