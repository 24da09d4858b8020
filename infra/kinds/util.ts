/**
 * Cheap but real step kinds for demos, tests and orchestration benchmarks: they write, hash and combine
 * small artifacts, and one fails on purpose.
 */
import type { ArtifactRef } from '../../workflows/plan-types';
import { artifactRefSchema, defineKind } from './descriptor';

/** `util.write`: stores a text (or JSON) value as an artifact. */
export const utilWriteKind = defineKind<{ text?: string; json?: unknown; mediaType?: string }>({
  name: 'util.write',
  version: '1',
  summary: 'Write a text or JSON value as an artifact.',
  queue: 'cpu',
  withSchema: {
    type: 'object',
    properties: {
      text: { type: 'string', description: 'Text to store (UTF-8).' },
      json: { description: 'Any JSON value to store, serialised.' },
      mediaType: { type: 'string', description: 'Media type recorded with the artifact.' },
    },
    oneOf: [{ required: ['text'] }, { required: ['json'] }],
    additionalProperties: false,
  },
  outputs: { file: { type: 'file', description: 'The stored bytes.' } },
});

/** `util.hash`: hashes the bytes of one or more artifacts. */
export const utilHashKind = defineKind<{ inputs: ArtifactRef[]; algorithm: 'sha1' | 'sha256' | 'md5' }>({
  name: 'util.hash',
  version: '1',
  summary: 'Hash the concatenated bytes of artifacts; outputs the hex digest and a report artifact.',
  queue: 'cpu',
  withSchema: {
    type: 'object',
    required: ['inputs'],
    properties: {
      inputs: {
        type: 'array',
        items: artifactRefSchema,
        minItems: 1,
        description: 'Artifacts to hash, in order.',
      },
      algorithm: { enum: ['sha1', 'sha256', 'md5'], default: 'sha256' },
    },
    additionalProperties: false,
  },
  outputs: {
    hex: { type: 'value', description: 'Hex digest of the concatenated inputs.', schema: { type: 'string' } },
    bytes: { type: 'value', description: 'Number of bytes hashed.', schema: { type: 'integer' } },
    report: {
      type: 'file',
      description: 'JSON report {algorithm, hex, bytes, inputs}.',
      mediaType: 'application/json',
    },
  },
});

/** `util.concat`: concatenates artifacts, with an optional separator. */
export const utilConcatKind = defineKind<{ inputs: ArtifactRef[]; separator?: string }>({
  name: 'util.concat',
  version: '1',
  summary: 'Concatenate artifacts into one.',
  queue: 'cpu',
  withSchema: {
    type: 'object',
    required: ['inputs'],
    properties: {
      inputs: { type: 'array', items: artifactRefSchema, minItems: 1 },
      separator: { type: 'string', default: '' },
    },
    additionalProperties: false,
  },
  outputs: { file: { type: 'file', description: 'The concatenation.' } },
});

/** `util.fail`: fails on purpose (for tests and demos of failure handling). */
export const utilFailKind = defineKind<{
  message: string;
  retryable?: boolean;
  afterMs?: number;
  succeedOnAttempt?: number;
  input?: ArtifactRef;
}>({
  name: 'util.fail',
  version: '1',
  summary:
    'Fail with a message (optionally retryable, optionally succeeding on a given attempt, optionally ' +
    'after fetching an input as a step does).',
  queue: 'cpu',
  withSchema: {
    type: 'object',
    required: ['message'],
    properties: {
      message: { type: 'string' },
      retryable: { type: 'boolean', default: false },
      afterMs: { type: 'integer', minimum: 0, maximum: 600000, default: 0 },
      succeedOnAttempt: { type: 'integer', minimum: 1, description: 'Succeed from this attempt on.' },
      input: artifactRefSchema,
    },
    additionalProperties: false,
  },
  outputs: {
    attempt: { type: 'value', description: 'The attempt that succeeded.', schema: { type: 'integer' } },
  },
});

/** `util.noop`: does nothing (measures orchestration overhead). */
export const utilNoopKind = defineKind<{ tag?: string | number; sleepMs?: number }>({
  name: 'util.noop',
  version: '1',
  summary: 'Do nothing (optionally sleep); for orchestration benchmarks.',
  queue: 'cpu',
  withSchema: {
    type: 'object',
    properties: {
      tag: { type: ['string', 'number'], description: 'Distinguishes otherwise identical steps.' },
      sleepMs: { type: 'integer', minimum: 0, maximum: 3600000 },
    },
    additionalProperties: false,
  },
  outputs: {
    tag: { type: 'value', description: 'The tag, echoed.', schema: { type: ['string', 'number', 'null'] } },
  },
});
