/**
 * Cheap but real step kinds for demos, tests and orchestration benchmarks: they write, hash and combine
 * small artifacts, and one fails on purpose.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { AblateError, ErrorType } from '../infra/errors';
import type { ArtifactRef } from '../workflows/plan-types';
import { artifactRefSchema, defineStepKind } from './step-kind';

/** `util.write`: stores a text (or JSON) value as an artifact. */
export const utilWrite = defineStepKind<{ text?: string; json?: unknown; mediaType?: string }>({
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
  outputs: { file: { type: 'artifact', description: 'The stored bytes.' } },
  async run(params, ctx) {
    const isText = params.text !== undefined;
    const data = isText ? (params.text as string) : JSON.stringify(params.json);
    const file = await ctx.publishBytes(data, {
      mediaType: params.mediaType ?? (isText ? 'text/plain' : 'application/json'),
    });
    return { file: file };
  },
});

/** `util.hash`: hashes the bytes of one or more artifacts. */
export const utilHash = defineStepKind<{ inputs: ArtifactRef[]; algorithm: 'sha1' | 'sha256' | 'md5' }>({
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
    hex: { type: 'value', description: 'Hex digest of the concatenated inputs.' },
    bytes: { type: 'value', description: 'Number of bytes hashed.' },
    report: {
      type: 'artifact',
      description: 'JSON report {algorithm, hex, bytes, inputs}.',
      mediaType: 'application/json',
    },
  },
  async run(params, ctx) {
    const hash = createHash(params.algorithm ?? 'sha256');
    let bytes = 0;
    for (const ref of params.inputs) {
      const data = await ctx.readBytes(ref);
      hash.update(data);
      bytes += data.length;
    }
    const hex = hash.digest('hex');
    const report = await ctx.publishBytes(
      JSON.stringify({
        algorithm: params.algorithm ?? 'sha256',
        hex,
        bytes,
        inputs: params.inputs.map((r) => r.digest),
      }),
      { mediaType: 'application/json' },
    );
    return { hex, bytes, report: report };
  },
});

/** `util.concat`: concatenates artifacts, with an optional separator. */
export const utilConcat = defineStepKind<{ inputs: ArtifactRef[]; separator?: string }>({
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
  outputs: { file: { type: 'artifact', description: 'The concatenation.' } },
  async run(params, ctx) {
    const parts: Buffer[] = [];
    for (const [i, ref] of params.inputs.entries()) {
      if (i > 0 && params.separator) parts.push(Buffer.from(params.separator, 'utf8'));
      parts.push(await ctx.readBytes(ref));
    }
    const file = await ctx.publishBytes(Buffer.concat(parts), { mediaType: params.inputs[0]!.mediaType });
    return { file: file };
  },
});

/** `util.fail`: fails on purpose (for tests and demos of failure handling). */
export const utilFail = defineStepKind<{
  message: string;
  retryable?: boolean;
  afterMs?: number;
  succeedOnAttempt?: number;
}>({
  name: 'util.fail',
  version: '1',
  summary: 'Fail with a message (optionally retryable, optionally succeeding on a given attempt).',
  queue: 'cpu',
  withSchema: {
    type: 'object',
    required: ['message'],
    properties: {
      message: { type: 'string' },
      retryable: { type: 'boolean', default: false },
      afterMs: { type: 'integer', minimum: 0, maximum: 600000, default: 0 },
      succeedOnAttempt: { type: 'integer', minimum: 1, description: 'Succeed from this attempt on.' },
    },
    additionalProperties: false,
  },
  outputs: { attempt: { type: 'value', description: 'The attempt that succeeded.' } },
  async run(params, ctx) {
    if (params.afterMs) await new Promise((r) => setTimeout(r, params.afterMs));
    if (params.succeedOnAttempt !== undefined && ctx.attempt >= params.succeedOnAttempt)
      return { attempt: ctx.attempt };
    throw new AblateError(ErrorType.InvalidInput, params.message, { retryable: params.retryable ?? false });
  },
});

/** `util.noop`: does nothing (measures orchestration overhead). */
export const utilNoop = defineStepKind<{ tag?: string | number; sleepMs?: number }>({
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
  outputs: { tag: { type: 'value', description: 'The tag, echoed.' } },
  async run(params, ctx) {
    // The sleep ends early when the step is cancelled (the runner waits for a cancelled step to stop).
    if (params.sleepMs) await sleep(params.sleepMs, undefined, { signal: ctx.signal });
    return { tag: params.tag ?? null };
  },
});
