/**
 * `runStep`: the one activity that runs any step kind. For a step of a run it
 * 1. reads the step from the plan artifact and binds upstream outputs (from their step records),
 * 2. checks the parameters against the kind's schema,
 * 3. looks up the cache: key = hash(kind, kind version, params with artifacts as digests); a hit whose
 *    output artifacts and provenance all verify intact is reused (`cached`); a damaged one is a miss,
 *    and the recomputed outputs repair the store,
 * 4. otherwise runs the kind with heartbeats (progress + checkpoint), cancellation and resume points
 *    (the previous attempt's last heartbeat and the checkpoints saved for the same cache key by any
 *    run, see checkpoint-index.ts); on cancellation it waits for the kind to stop (bounded) before it
 *    removes the work directory,
 * 5. writes the provenance record, the OpenLineage events, the step record and the cache entry.
 *
 * Permanent faults (AblateError, non-retryable) become non-retryable ApplicationFailures of the same
 * type; anything else is retried by Temporal with the step's retry policy.
 */
import { arch, platform, versions } from 'node:process';

import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';

import { assertStepParams } from '../../infra/compiler/kind-schemas';
import { AblateError, ErrorType, errorMessage, permanent } from '../../infra/errors';
import type { ArtifactStore } from '../../infra/store/index';
import type { LocalCache } from '../../infra/store/local-cache';
import {
  isArtifactRef,
  type ArtifactRef,
  type JsonValue,
  type StepOutputs,
} from '../../workflows/plan-types';
import { bindReferences, readOutput } from './bind';
import { cacheKeyOf, kindIdentity } from './cache-key';
import { createCheckpointIndex, stepCheckpoints } from './checkpoint-index';
import type { LoadedPlan } from './plan-loader';
import { createLineageEmitter } from './openlineage';
import { collectArtifactRefs, getCodeVersion, workerIdentity, type ProvenanceRecord } from './provenance';
import { getStepKind } from './registry';
import { recordKeys, type CacheEntry, type ProducerRecord, type StepRecord } from './run-records';
import { createStepContext } from './step-context';
import type { CheckpointCandidate, StepProgress } from './step-kind';
import { removeWorkDir, STOP_GRACE_MS, untilStopped, workDirPath } from './work-dirs';

export interface RunStepInput {
  runId: string;
  planRef: ArtifactRef;
  /** Key of the planned step. */
  key: string;
  /** Ignore cached results (they are still written). */
  noCache: boolean;
}

export interface RunStepResult {
  cached: boolean;
  durationMs: number;
}

/** Heartbeat details: the kind's last progress report. */
export interface StepHeartbeat {
  progress: StepProgress;
  atMs: number;
}

export interface RunStepDeps {
  store: ArtifactStore;
  /** The worker's cache of inputs (steps read them in place); without one each attempt copies them. */
  cache?: LocalCache;
  loadPlan: (ref: ArtifactRef) => Promise<LoadedPlan>;
  /** OpenLineage namespace of the datasets/jobs. */
  lineageNamespace?: string;
}

export function createRunStep(deps: RunStepDeps) {
  const { store } = deps;

  /**
   * Replace every `{$from}` in `value` with the upstream output it names. `producers` receives, for each
   * artifact bound, the key of the step that produced it (for provenance).
   */
  async function bind(
    value: JsonValue,
    runId: string,
    label: string,
    producers: Map<string, string>,
  ): Promise<JsonValue> {
    const records = new Map<string, StepRecord>();
    const read = async (stepKey: string): Promise<StepRecord> => {
      let r = records.get(stepKey);
      if (!r) {
        r = await store.getRecord<StepRecord>(recordKeys.step(runId, stepKey));
        if (!r)
          throw permanent(
            ErrorType.ArtifactNotFound,
            `${label}: upstream step ${stepKey} has no record in run ${runId}`,
          );
        records.set(stepKey, r);
      }
      return r;
    };
    return bindReferences(value, async (from) => {
      const record = await read(from.step);
      const out = readOutput(record.outputs, from);
      if (out === undefined) {
        throw permanent(
          ErrorType.InvalidInput,
          `${label}: upstream step ${record.label} has no output "${from.output}"`,
        );
      }
      if (isArtifactRef(out)) producers.set(out.digest, from.step);
      return out;
    });
  }

  return async function runStep(input: RunStepInput): Promise<RunStepResult> {
    const activity = Context.current();
    const info = activity.info;
    const started = Date.now();
    const { byKey } = await deps.loadPlan(input.planRef);
    const step = byKey.get(input.key);
    if (!step)
      throw nonRetryable(
        permanent(ErrorType.InvalidPipeline, `step ${input.key} is not in plan ${input.planRef.digest}`),
      );
    const kind = getStepKind(step.uses);
    if (!kind) {
      throw nonRetryable(
        permanent(
          ErrorType.InvalidPipeline,
          `step kind ${step.uses} is not installed on worker ${workerIdentity(info.taskQueue).host}`,
        ),
      );
    }
    if (info.activityType !== kind.name) {
      // The workflow names the activity type after the step's kind; a mismatch is a plan/worker bug.
      throw nonRetryable(
        permanent(
          ErrorType.InvalidPipeline,
          `step ${step.label} is a ${kind.name} step but ran as activity type ${info.activityType}`,
        ),
      );
    }
    let lineage: ReturnType<typeof createLineageEmitter> | undefined;
    try {
      const producers = new Map<string, string>();
      const params = (await bind(step.with, input.runId, step.label, producers)) as Record<string, JsonValue>;
      assertStepParams(kind, params, step.label);
      const identity = await kindIdentity(kind, params);
      const cacheKey = cacheKeyOf(identity, params);

      const cacheable = step.cache && kind.cacheable !== false;
      if (cacheable && !input.noCache) {
        const hit = await store.getRecord<CacheEntry>(recordKeys.cache(cacheKey));
        // Checking a large cached folder can take a while: heartbeat through it, keeping the last progress.
        const lastBeat = info.heartbeatDetails as StepHeartbeat | undefined;
        const keepAlive = () =>
          activity.heartbeat({
            progress: lastBeat?.progress ?? {},
            atMs: Date.now(),
          } satisfies StepHeartbeat);
        if (
          hit &&
          (await store.verifyOutputs([...Object.values(hit.outputs), hit.provenance], {
            onProgress: keepAlive,
          }))
        ) {
          await writeStepRecord({ status: 'cached', outputs: hit.outputs, provenance: hit.provenance });
          return { cached: true, durationMs: Date.now() - started };
        }
      }

      const inputs = collectArtifactRefs(params).map(({ path, ref }) => ({
        path,
        uri: ref.uri,
        digest: ref.digest,
        mediaType: ref.mediaType,
        ...(producers.has(ref.digest) ? { fromStep: producers.get(ref.digest) } : {}),
      }));
      const code = { ...(await getCodeVersion()), kind: identity.code };
      lineage = createLineageEmitter(
        store,
        {
          runId: input.runId,
          stepKey: step.key,
          label: step.label,
          code,
          namespace: deps.lineageNamespace ?? store.url,
          inputs,
        },
        (m) => {
          activity.log.warn(m);
        },
      );
      await lineage.start(new Date());

      const heartbeatDetails = info.heartbeatDetails as StepHeartbeat | undefined;
      const workDir = workDirPath(`${step.key}-${info.attempt}`);
      // The previous attempt's figures (iteration, ETA) are stale: keep only where it can resume from.
      const previous = heartbeatDetails?.progress;
      let lastProgress: StepProgress = {
        message: info.attempt > 1 ? `attempt ${info.attempt} starting` : 'starting',
        ...(previous?.checkpoint
          ? { checkpoint: previous.checkpoint, checkpointIteration: previous.checkpointIteration }
          : {}),
      };
      const beat = () =>
        activity.heartbeat({ progress: lastProgress, atMs: Date.now() } satisfies StepHeartbeat);
      // Heartbeats prove the worker is alive even while a kind reports nothing; they also carry
      // cancellation to us. Temporal throttles what actually goes to the server. No beat at the start:
      // a step that ends within the first interval costs the server no heartbeat (a trivial step then
      // costs noticeably less), and a retry still finds the previous attempt's details.
      const timer = setInterval(
        beat,
        Math.max(500, Math.min(10_000, (info.heartbeatTimeoutMs ?? 60_000) / 4)),
      );
      let outputs: StepOutputs;
      const log = {
        info: (message: string, fields?: Record<string, unknown>) => {
          activity.log.info(`${step.label}: ${message}`, fields);
        },
        warn: (message: string, fields?: Record<string, unknown>) => {
          activity.log.warn(`${step.label}: ${message}`, fields);
        },
      };
      let resumedFrom: CheckpointCandidate | undefined;
      const { ctx, annotations, fetched, release } = createStepContext({
        store,
        ...(deps.cache ? { cache: deps.cache } : {}),
        workDir,
        heartbeat: (progress) => {
          lastProgress = progress;
          beat();
        },
        resumeFrom: previous,
        checkpoints: stepCheckpoints({
          index: createCheckpointIndex(store, cacheKey),
          heartbeat: previous,
          runId: input.runId,
          ownRunOnly: input.noCache,
          log,
          onResumed: (c) => (resumedFrom = c),
        }),
        attempt: info.attempt,
        signal: activity.cancellationSignal,
        log,
      });
      const startedAt = new Date();
      try {
        // On cancellation the kind saves what a retry needs and stops; only then is its directory
        // removed. One that ignores ctx.signal is abandoned after the grace period.
        outputs = await untilStopped(kind.run(params, ctx), activity.cancellationSignal, STOP_GRACE_MS, () =>
          log.warn(`did not stop within ${STOP_GRACE_MS / 1000} s of being cancelled; abandoned`),
        );
      } finally {
        clearInterval(timer);
        release();
        await removeWorkDir(workDir);
      }
      for (const [name, spec] of Object.entries(kind.outputs)) {
        if (name in outputs) continue;
        if (!spec.optional)
          throw permanent(
            ErrorType.InvalidInput,
            `${step.label}: ${kind.name} did not produce its output "${name}"`,
          );
        outputs[name] = null;
      }
      const endedAt = new Date();
      const metrics: Record<string, JsonValue> = {};
      for (const [name, spec] of Object.entries(kind.outputs))
        if (spec.type === 'value') metrics[name] = outputs[name] as JsonValue;
      const record: ProvenanceRecord = {
        schema: 'ablate.provenance/v1',
        runId: input.runId,
        workflowId: info.workflowExecution?.workflowId ?? input.runId,
        temporalRunId: info.workflowExecution?.runId ?? '',
        step: {
          key: step.key,
          ids: step.ids,
          label: step.label,
          kind: kind.name,
          kindVersion: kind.version,
          cells: step.cells.length,
        },
        cacheKey,
        params,
        inputs: [
          ...inputs,
          // The checkpoint a resumed step continued from is an input like any other.
          ...(resumedFrom
            ? [
                {
                  path: '#resumedFrom',
                  uri: resumedFrom.ref.uri,
                  digest: resumedFrom.ref.digest,
                  mediaType: resumedFrom.ref.mediaType,
                },
              ]
            : []),
        ],
        outputs,
        metrics,
        parents: step.needs,
        code,
        // Only what was observed: the kind's runtime key (e.g. the expected tfjs backend) and what the
        // step itself reported (the backend and device it really used), never a default.
        runtime: {
          node: versions.node,
          platform,
          arch,
          ...(identity.runtime !== undefined ? { expected: identity.runtime } : {}),
          ...annotations,
        },
        worker: workerIdentity(info.taskQueue),
        attempt: info.attempt,
        ...(fetched.length > 0 ? { fetched } : {}),
        startedAt: startedAt.toISOString(),
        endedAt: endedAt.toISOString(),
      };
      const provenance = await store.putJson(record, 'application/vnd.ablate.provenance+json');
      const entry: CacheEntry = {
        cacheKey,
        uses: kind.name,
        kindVersion: kind.version,
        outputs,
        provenance,
        runId: input.runId,
        stepKey: step.key,
        createdAt: endedAt.toISOString(),
      };
      const recordProducer = async (output: string, digest: string) => {
        if (await store.getRecord(recordKeys.producer(digest))) return; // the first producer stays
        const producer: ProducerRecord = {
          digest,
          runId: input.runId,
          stepKey: step.key,
          label: step.label,
          output,
        };
        await store.putRecord(recordKeys.producer(digest), producer);
      };
      // Independent writes, so in parallel; all are done before the step reports success.
      await Promise.all([
        lineage.complete(endedAt, Object.values(outputs).filter(isArtifactRef)),
        writeStepRecord(
          {
            status: 'done',
            outputs,
            provenance,
            ...(resumedFrom
              ? { resumedFrom: { iteration: resumedFrom.iteration, checkpoint: resumedFrom.ref } }
              : {}),
          },
          startedAt,
          endedAt,
        ),
        ...Object.entries(outputs).map(([name, v]) =>
          isArtifactRef(v) ? recordProducer(name, v.digest) : undefined,
        ),
        cacheable ? store.putRecord(recordKeys.cache(cacheKey), entry) : undefined,
      ]);
      return { cached: false, durationMs: Date.now() - started };

      async function writeStepRecord(
        r: Pick<StepRecord, 'status' | 'outputs' | 'provenance' | 'resumedFrom'>,
        s: Date = new Date(started),
        e: Date = new Date(),
      ): Promise<void> {
        const full: StepRecord = {
          runId: input.runId,
          key: step!.key,
          label: step!.label,
          uses: step!.uses,
          ...r,
          cacheKey,
          attempt: info.attempt,
          startedAt: s.toISOString(),
          endedAt: e.toISOString(),
          durationMs: e.getTime() - s.getTime(),
          worker: workerIdentity(info.taskQueue),
        };
        await store.putRecord(recordKeys.step(input.runId, step!.key), full);
      }
    } catch (err) {
      const cancelled = err instanceof CancelledFailure || activity.cancellationSignal.aborted;
      await lineage?.fail(new Date(), err instanceof Error ? err.message : String(err), cancelled);
      if (err instanceof CancelledFailure) throw err;
      if (activity.cancellationSignal.aborted) {
        // The kind stopped because it was asked to: report the attempt as cancelled (Temporal retries a
        // worker shutdown's elsewhere), not as the kind's own "stopped" error.
        activity.log.info(`${step.label}: ${errorMessage(err)}`);
        const reason: unknown = activity.cancellationSignal.reason;
        throw reason instanceof CancelledFailure ? reason : new CancelledFailure(String(reason));
      }
      throw err instanceof AblateError ? nonRetryable(err) : err;
    }
  };
}

/** An AblateError as the ApplicationFailure Temporal understands (retryable or not, typed). */
function nonRetryable(err: AblateError): ApplicationFailure {
  return ApplicationFailure.create({
    type: err.type,
    message: err.message,
    nonRetryable: !err.retryable,
    cause: err,
  });
}
