/**
 * The compiled plan and the values that flow between steps.
 *
 * Pure types (plus tiny pure helpers): shared by the compiler (infra/), the workflow (workflows/) and the
 * step implementations (activities/). Nothing here may touch I/O, so the workflow bundle can import it.
 */

/** Any value that survives a JSON round trip. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** The two task queues a step can run on. */
export type QueueName = 'cpu' | 'gpu';

/** A reference to an immutable, content-addressed artifact in an artifact store. */
export interface ArtifactRef {
  /** Where the bytes live, e.g. `file:///srv/ablate/sha256/ab/abcd…` or `s3://bucket/prefix/sha256/ab/abcd…`. */
  uri: string;
  /** `sha256:<64 lowercase hex>` of the bytes. For a directory (tree) artifact: of its manifest. */
  digest: string;
  /** Size of the bytes in `digest` (for a tree: the manifest's size; the files are counted in the manifest). */
  sizeBytes: number;
  /** IANA media type; {@link TREE_MEDIA_TYPE} marks a directory manifest. */
  mediaType: string;
}

/** Media type of a directory artifact: a JSON manifest `{ entries: [{ path, digest, sizeBytes }] }`. */
export const TREE_MEDIA_TYPE = 'application/vnd.ablate.tree+json';

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** True for a value shaped like an {@link ArtifactRef}. */
export function isArtifactRef(value: unknown): value is ArtifactRef {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.uri === 'string' &&
    typeof v.digest === 'string' &&
    DIGEST_RE.test(v.digest) &&
    typeof v.sizeBytes === 'number' &&
    typeof v.mediaType === 'string'
  );
}

/**
 * What a step returns: one entry per output the step kind declares. An artifact output carries an
 * {@link ArtifactRef}; a value output carries small JSON (metrics, counts), never bulk data.
 */
export type StepOutputs = Record<string, OutputValue>;

/** The value of one step output: an artifact reference or small JSON. */
export type OutputValue = ArtifactRef | JsonValue;

/**
 * A placeholder, inside a planned step's `with`, for an output of an upstream step. The workflow replaces
 * it with the upstream output (see `bindInputs` in workflows/dag.ts) before the step runs.
 */
export interface OutputReference {
  $from: {
    /** Key of the upstream step. */
    step: string;
    /** Name of the output, as the upstream step kind declares it. */
    output: string;
    /** Optional path into a value output, e.g. `["AP"]` for `${steps.eval.outputs.metrics.AP}`. */
    path?: string[];
  };
}

/** Retry policy of one step (mapped onto Temporal's RetryPolicy). */
export interface RetrySpec {
  /** Attempts in total, the first one included. 1 means no retry. */
  maxAttempts: number;
  initialIntervalMs: number;
  backoffCoefficient: number;
  maxIntervalMs: number;
}

/** One unique unit of work: a step template instantiated for one or more cells and merged. */
export interface PlannedStep {
  /** Stable content id: a hash of the canonical JSON of `uses`, resolved `with` and upstream keys. */
  key: string;
  /** The step template id in the pipeline (the first one, when templates merged). */
  id: string;
  /** Every template id that merged into this step. */
  ids: string[];
  /** The step kind, e.g. `dataset.split`. */
  uses: string;
  /** Resolved parameters; may contain {@link OutputReference}s. */
  with: JsonObject;
  /** Keys of the upstream steps, sorted. */
  needs: string[];
  queue: QueueName;
  retry: RetrySpec;
  /** Limit for one attempt (Temporal startToCloseTimeout). */
  timeoutMs: number;
  /** A step that has not heartbeated for this long is considered lost and retried. */
  heartbeatTimeoutMs: number;
  /** Whether a cached result may be reused. */
  cache: boolean;
  /** Ids of the cells that use this step. */
  cells: string[];
  /** Human-readable name: the id plus the axis values all its cells share, e.g. `pretrain{norm=gn}`. */
  label: string;
}

/** One point of the grid. */
export interface PlannedCell {
  /** `axis=value,axis=value` in axis order. */
  id: string;
  values: Record<string, JsonValue>;
  /** Step template id -> key of the planned step this cell uses (absent where `when` excluded it). */
  steps: Record<string, string>;
}

/** A pipeline's `schedule` block (pipelines/pipeline.schema.json), checked, durations in ms. */
export interface PipelineSchedule {
  /** The schedule's name; the pipeline's name when the block gives none. */
  name: string;
  /** Exactly one of `cron` and `everyMs`. */
  cron?: string;
  everyMs?: number;
  /** IANA time zone the cron expression is read in. @default "UTC" */
  timezone?: string;
  noCache?: boolean;
  overlap?: 'skip' | 'buffer-one' | 'allow-all';
  catchupWindowMs?: number;
  /** Where to announce a drifted or failed run: a shell command (payload on stdin) and/or a URL (POST). */
  notify?: { command?: string; url?: string };
}

/** The output of the compiler: everything the workflow needs, already validated. */
export interface Plan {
  /** Format version of this object. */
  version: 1;
  pipeline: {
    name: string;
    description: string;
    /** sha256 of the canonical JSON of the pipeline document. */
    digest: string;
    /** The pipeline's own `schedule` block, checked (absent when it declares none). */
    schedule?: PipelineSchedule;
  };
  /** Grid axes and their values, as declared. */
  axes: Record<string, JsonValue[]>;
  /** Tolerance bands for drift reports, as declared (absent: every metric uses its default band). */
  tolerance?: ToleranceBand[];
  cells: PlannedCell[];
  /** Unique steps in a topological order (every step after all of its `needs`). */
  steps: PlannedStep[];
  stats: {
    cells: number;
    /** Step instances before merging (cells x applicable templates). */
    stepInstances: number;
    uniqueSteps: number;
    /** stepInstances - uniqueSteps: step runs the merging saved. */
    saved: number;
  };
}

/**
 * How far a metric may move from its baseline before a drift report calls it drift. A band with both
 * `abs` and `rel` allows `abs + rel * |baseline|` (numpy's `isclose` rule).
 */
export interface ToleranceBand {
  /**
   * The metric: its full name `<stepId>.<output>[.<field>...]` (e.g. `eval_coco.metrics.AP`) or any
   * tail of it at a `.` boundary (`metrics.AP`, `AP`); the band naming the longest tail wins.
   */
  metric: string;
  /** Allowed absolute difference. */
  abs?: number;
  /** Allowed difference relative to the baseline value. */
  rel?: number;
  /** Report the metric but never count it as drift (e.g. a throughput). */
  ignore?: boolean;
}

/** Where a step stands during a run. */
export type StepStatus = 'pending' | 'running' | 'done' | 'cached' | 'failed' | 'skipped' | 'cancelled';
