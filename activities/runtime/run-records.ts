/**
 * What ablate writes about a run into the artifact store, and where: one record per finished step
 * (its outputs and provenance), the cache index, and the run summary. Keys are defined here once.
 */
import type { ArtifactRef, JsonValue, StepOutputs, StepStatus } from '../../workflows/plan-types';

/** Record of a step that finished in a run (or was served from the cache). */
export interface StepRecord {
  runId: string;
  key: string;
  label: string;
  uses: string;
  status: 'done' | 'cached';
  outputs: StepOutputs;
  /** The provenance record (a JSON artifact): where every output came from. */
  provenance: ArtifactRef;
  cacheKey: string;
  /** The checkpoint this step continued from (after a crash, a cancel or in `ablate resume`). */
  resumedFrom?: ResumePoint;
  attempt: number;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  /** The worker process that ran it (or served it from the cache); older records lack it. */
  worker?: { host: string; pid: number; taskQueue: string };
}

/** Where a step's training continued from. */
export interface ResumePoint {
  iteration: number;
  checkpoint: ArtifactRef;
}

/** A cache entry: the outputs a step kind produced for one cache key. */
export interface CacheEntry {
  cacheKey: string;
  uses: string;
  kindVersion: string;
  outputs: StepOutputs;
  provenance: ArtifactRef;
  /** The run and step that computed it. */
  runId: string;
  stepKey: string;
  createdAt: string;
}

/** Per-cell outcome in a run summary. */
export interface CellSummary {
  id: string;
  values: Record<string, JsonValue>;
  status: 'completed' | 'failed' | 'cancelled';
  /** For a failed cell: the first failed step and why. */
  failedStep?: { key: string; label: string; error: string };
}

export interface StepSummary {
  key: string;
  label: string;
  uses: string;
  status: StepStatus;
  outputs?: StepOutputs;
  provenance?: ArtifactRef;
  error?: string;
  durationMs?: number;
  /** The worker process that ran it (from its record). */
  worker?: StepRecord['worker'];
  resumedFrom?: ResumePoint;
}

/** The run summary written when a run ends. */
export interface RunSummary {
  runId: string;
  pipeline: { name: string; digest: string };
  plan: ArtifactRef;
  status: 'completed' | 'failed' | 'cancelled';
  counts: Record<StepStatus, number>;
  startedAt: string;
  endedAt: string;
  generations: number;
  steps: StepSummary[];
  cells: CellSummary[];
  /** The schedule that started the run (scheduled runs only). */
  schedule?: string;
  /** The drift check of a scheduled run, added when it has been made (activities/drift-verdict.ts). */
  drift?: DriftOutcome;
}

/** The outcome of comparing a run with its pipeline's baseline. */
export interface DriftOutcome {
  /**
   * `ok`: within the tolerance bands; `drifted`: at least one metric outside them; `no-baseline`: the
   * pipeline has no baseline to compare with; `not-checked`: the run did not complete (see `detail`).
   * A drift check that fails (e.g. an unreadable baseline) fails the scheduled run's workflow instead.
   */
  verdict: 'ok' | 'drifted' | 'no-baseline' | 'not-checked';
  baselineRunId?: string;
  /** The full drift report (a JSON artifact), when one was computed. */
  report?: ArtifactRef;
  /** One line for people: what drifted, or why nothing was checked. */
  detail?: string;
}

export const recordKeys = {
  step: (runId: string, stepKey: string) => `runs/${runId}/steps/${stepKey}`,
  steps: (runId: string) => `runs/${runId}/steps/`,
  openLineage: (runId: string, stepKey: string) => `runs/${runId}/openlineage/${stepKey}`,
  summary: (runId: string) => `runs/${runId}/summary`,
  /** What `ablate run` measured over the run (CPU time, cores): infra/run-breakdown.ts. */
  usage: (runId: string) => `runs/${runId}/usage`,
  cache: (cacheKey: string) => `cache/${cacheKey}`,
  /** Who produced an artifact (first producer wins): for `ablate lineage sha256:…`. */
  producer: (digest: string) => `artifacts/${digest.replace(/^sha256:/, '')}`,
};

/** Index entry: the step run that produced an artifact. */
export interface ProducerRecord {
  digest: string;
  runId: string;
  stepKey: string;
  label: string;
  output: string;
}
