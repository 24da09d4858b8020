/**
 * Every environment variable ablate reads, defined once. Only the config resolver
 * (temporal.config.ts) and the store/server launchers read `process.env`.
 */
export const EnvKey = {
  /**
   * Directory for ablate's state (server database, artifacts, logs).
   * @default $XDG_STATE_HOME/ablate, else ~/.local/state/ablate
   */
  Home: 'ABLATE_HOME',
  /** host:port of a Temporal frontend. Unset: ablate starts an embedded dev server. */
  TemporalAddress: 'TEMPORAL_ADDRESS',
  /** Temporal namespace. @default default */
  TemporalNamespace: 'TEMPORAL_NAMESPACE',
  /** Path of the `temporal` CLI binary for the embedded server. */
  TemporalBin: 'TEMPORAL_BIN',
  /** Artifact store URL: file:///path or s3://bucket/prefix. @default file://$ABLATE_HOME/artifacts */
  StoreUrl: 'ABLATE_STORE_URL',
  /** Prefix of the task queue names (`<prefix>-cpu`, `<prefix>-gpu`). @default ablate */
  TaskQueuePrefix: 'ABLATE_TASK_QUEUE_PREFIX',
  /** Steps one worker runs at once. */
  WorkerSlots: 'ABLATE_WORKER_SLOTS',
  /**
   * Slots per queue for `ablate run`'s own workers, e.g. `gpu=2,cpu=4`: `gpu=N` runs the gpu queue's
   * steps in N trainer processes (one step and one wasm thread each). Unset: one in-process gpu slot.
   */
  Slots: 'ABLATE_SLOTS',
  /** Steps one pipeline run keeps in flight at once. */
  MaxParallel: 'ABLATE_MAX_PARALLEL',
  /** Files of a folder artifact one worker or command uploads or downloads at once. @default 16 */
  TransferConcurrency: 'ABLATE_TRANSFER_CONCURRENCY',
  /** A worker's cache of step inputs (read in place by its steps). @default $ABLATE_HOME/cache/inputs */
  WorkerCacheDir: 'ABLATE_WORKER_CACHE_DIR',
  /** Bound on that cache: bytes, or with a binary suffix (`500G`, `2T`). @default 100G */
  WorkerCacheBytes: 'ABLATE_WORKER_CACHE_BYTES',
} as const;
