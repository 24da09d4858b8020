/**
 * Cheap but real step kinds for demos, tests and orchestration benchmarks: they write, hash and combine
 * small artifacts, and one fails on purpose.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { AblateError, ErrorType } from '../../../infra/errors';
import {
  utilWriteKind,
  utilHashKind,
  utilConcatKind,
  utilFailKind,
  utilNoopKind,
} from '../../../infra/kinds/util';
import { implementKind } from '../../runtime/step-kind';

/** `utilWrite`'s implementation (its descriptor: infra/kinds). */
export const utilWrite = implementKind(utilWriteKind, import.meta.url, async (params, ctx) => {
  const isText = params.text !== undefined;
  const data = isText ? (params.text as string) : JSON.stringify(params.json);
  const file = await ctx.publishBytes(data, {
    mediaType: params.mediaType ?? (isText ? 'text/plain' : 'application/json'),
  });
  return { file: file };
});

/** `utilHash`'s implementation (its descriptor: infra/kinds). */
export const utilHash = implementKind(utilHashKind, import.meta.url, async (params, ctx) => {
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
});

/** `utilConcat`'s implementation (its descriptor: infra/kinds). */
export const utilConcat = implementKind(utilConcatKind, import.meta.url, async (params, ctx) => {
  const parts: Buffer[] = [];
  for (const [i, ref] of params.inputs.entries()) {
    if (i > 0 && params.separator) parts.push(Buffer.from(params.separator, 'utf8'));
    parts.push(await ctx.readBytes(ref));
  }
  const file = await ctx.publishBytes(Buffer.concat(parts), { mediaType: params.inputs[0]!.mediaType });
  return { file: file };
});

/** `utilFail`'s implementation (its descriptor: infra/kinds). */
export const utilFail = implementKind(utilFailKind, import.meta.url, async (params, ctx) => {
  // Every attempt fetches its input as a real step would (the provenance says from where).
  if (params.input) await ctx.fetch(params.input);
  if (params.afterMs) await new Promise((r) => setTimeout(r, params.afterMs));
  if (params.succeedOnAttempt !== undefined && ctx.attempt >= params.succeedOnAttempt)
    return { attempt: ctx.attempt };
  throw new AblateError(ErrorType.InvalidInput, params.message, { retryable: params.retryable ?? false });
});

/** `utilNoop`'s implementation (its descriptor: infra/kinds). */
export const utilNoop = implementKind(utilNoopKind, import.meta.url, async (params, ctx) => {
  // The sleep ends early when the step is cancelled (the runner waits for a cancelled step to stop).
  if (params.sleepMs) await sleep(params.sleepMs, undefined, { signal: ctx.signal });
  return { tag: params.tag ?? null };
});
