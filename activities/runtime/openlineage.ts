/**
 * OpenLineage (spec 2-0-2) run events for each step run, emitted as things happen: START when the step
 * starts running (after a cache miss), then COMPLETE with its outputs, FAIL with the error, or ABORT
 * when it is cancelled. They are kept in the artifact store under `runs/<run>/openlineage/<step>` for
 * lineage tools to collect.
 *
 * The producer is package.json's `repository` URL when it declares one, else a `urn:ablate:` name with
 * the version and commit: never an address that does not exist.
 */
import { createHash } from 'node:crypto';

import type { ArtifactStore } from '../../infra/store/index';
import type { CodeVersion, ProvenanceInput } from './provenance';
import { recordKeys } from './run-records';
import type { ArtifactRef } from '../../workflows/plan-types';

const SCHEMA_URL = 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent';

/** What every event of one step run names. */
export interface LineageRun {
  runId: string;
  stepKey: string;
  label: string;
  code: CodeVersion;
  /** OpenLineage namespace of datasets and jobs (the store URL). */
  namespace: string;
  inputs: ProvenanceInput[];
}

/** The producer URI of ablate's events. */
export function lineageProducer(code: CodeVersion): string {
  return code.repository ?? `urn:ablate:${code.package}:${code.version}:${code.commit}`;
}

/** A deterministic, name-based UUID (version 5 layout over SHA-1), since OpenLineage wants UUIDs. */
export function uuidFromText(text: string): string {
  const h = createHash('sha1').update(text).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function event(
  run: LineageRun,
  eventType: 'START' | 'COMPLETE' | 'FAIL' | 'ABORT',
  at: Date,
  outputs: ArtifactRef[],
  error?: string,
): object {
  const producer = lineageProducer(run.code);
  const dataset = (uri: string, digest: string) => ({
    namespace: run.namespace,
    name: uri,
    facets: {
      version: {
        _producer: producer,
        _schemaURL: 'https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json',
        datasetVersion: digest,
      },
    },
  });
  return {
    eventType,
    eventTime: at.toISOString(),
    producer,
    schemaURL: SCHEMA_URL,
    run: {
      runId: uuidFromText(`${run.runId}/${run.stepKey}`),
      facets: {
        parent: {
          _producer: producer,
          _schemaURL: 'https://openlineage.io/spec/facets/1-0-1/ParentRunFacet.json',
          run: { runId: uuidFromText(run.runId) },
          job: { namespace: run.namespace, name: run.runId },
        },
        ...(error
          ? {
              errorMessage: {
                _producer: producer,
                _schemaURL: 'https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json',
                message: error,
                programmingLanguage: 'TypeScript',
              },
            }
          : {}),
      },
    },
    job: { namespace: run.namespace, name: run.label },
    inputs: run.inputs.map((i) => dataset(i.uri, i.digest)),
    outputs: outputs.map((o) => dataset(o.uri, o.digest)),
  };
}

/** Emits one step run's events into the store as they happen. Emission failures are logged, not fatal. */
export function createLineageEmitter(
  store: ArtifactStore,
  run: LineageRun,
  warn: (message: string) => void,
): {
  start(at: Date): Promise<void>;
  complete(at: Date, outputs: ArtifactRef[]): Promise<void>;
  fail(at: Date, error: string, cancelled: boolean): Promise<void>;
} {
  const events: object[] = [];
  const write = async () => {
    try {
      await store.putRecord(recordKeys.openLineage(run.runId, run.stepKey), { events });
    } catch (err) {
      warn(`could not write OpenLineage events of ${run.label}: ${(err as Error).message}`);
    }
  };
  return {
    start: async (at) => {
      events.push(event(run, 'START', at, []));
      await write();
    },
    complete: async (at, outputs) => {
      events.push(event(run, 'COMPLETE', at, outputs));
      await write();
    },
    fail: async (at, error, cancelled) => {
      events.push(event(run, cancelled ? 'ABORT' : 'FAIL', at, [], error));
      await write();
    },
  };
}
