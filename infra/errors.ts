/**
 * The failure taxonomy. Permanent faults (bad input, corrupt data, impossible parameters) are thrown as
 * {@link AblateError} with `retryable: false`; the step runner turns them into non-retryable Temporal
 * ApplicationFailures of the same `type`. Transient faults (network, S3 5xx, a killed worker) stay plain
 * errors, so Temporal retries them with the step's retry policy.
 */

/** Every error type ablate raises on purpose, defined once. */
export const ErrorType = {
  /** The pipeline document is malformed or inconsistent. */
  InvalidPipeline: 'InvalidPipeline',
  /** A step's parameters or its input data are wrong (not fixed by retrying). */
  InvalidInput: 'InvalidInput',
  /** A dataset, annotation file or image is missing. */
  DatasetNotFound: 'DatasetNotFound',
  /** A split or dataset has no images. */
  EmptyDataset: 'EmptyDataset',
  /** An image file is missing, truncated or not decodable (the message names the path). */
  CorruptImage: 'CorruptImage',
  /** An artifact's bytes do not match its digest. */
  CorruptArtifact: 'CorruptArtifact',
  /** An artifact is missing from the store. */
  ArtifactNotFound: 'ArtifactNotFound',
  /** The artifact store refused the request (credentials, missing bucket) or stayed unreachable. */
  StoreUnavailable: 'StoreUnavailable',
  /** The local disk or the store is full. */
  StorageFull: 'StorageFull',
  /** A checkpoint's tensor shapes do not match the model. */
  ShapeMismatch: 'ShapeMismatch',
  /** Training diverged (NaN or infinite loss). */
  Diverged: 'Diverged',
  /** The step ran out of memory (e.g. too large a batch). */
  OutOfMemory: 'OutOfMemory',
  /** Bad configuration (environment, flags, temporal.config.ts). */
  InvalidConfig: 'InvalidConfig',
  /** An upstream step failed, so this one could not run. */
  UpstreamFailed: 'UpstreamFailed',
} as const;

export type ErrorTypeName = (typeof ErrorType)[keyof typeof ErrorType];

/** An error ablate raises on purpose, with a type from {@link ErrorType}. */
export class AblateError extends Error {
  override readonly name = 'AblateError';
  /** Whether retrying the same operation could succeed. */
  readonly retryable: boolean;

  constructor(
    readonly type: ErrorTypeName,
    message: string,
    options: { retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options.retryable ?? false;
  }
}

/** Shorthand for a permanent, non-retryable error. */
export function permanent(type: ErrorTypeName, message: string, cause?: unknown): AblateError {
  return new AblateError(type, message, { retryable: false, cause });
}

/** The message of any thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
