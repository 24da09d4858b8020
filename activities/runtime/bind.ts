/**
 * Binding: replacing each `{$from: {step, output, path?}}` placeholder of a planned step's parameters
 * with the upstream step's output. Used by the step runner (outputs from step records) and by
 * `ablate plan --cached` (outputs from cache entries).
 */
import type { JsonValue, OutputReference, OutputValue, StepOutputs } from '../../workflows/plan-types';

/** The `$from` of a placeholder, or undefined. */
export function outputReference(v: unknown): OutputReference['$from'] | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const from = (v as Partial<OutputReference>).$from;
  return from && Object.keys(v).length === 1 ? from : undefined;
}

/** The value a reference reads from an upstream step's outputs (with its field path followed). */
export function readOutput(outputs: StepOutputs, from: OutputReference['$from']): OutputValue | undefined {
  if (!(from.output in outputs)) return undefined;
  let out = outputs[from.output] as JsonValue;
  for (const seg of from.path ?? []) {
    out = out !== null && typeof out === 'object' ? ((out as Record<string, JsonValue>)[seg] ?? null) : null;
  }
  return out;
}

/** Replace every placeholder in `value` using `resolve` (which may be async and may throw). */
export async function bindReferences(
  value: JsonValue,
  resolve: (from: OutputReference['$from']) => Promise<OutputValue>,
): Promise<JsonValue> {
  const from = outputReference(value);
  if (from) return (await resolve(from)) as JsonValue;
  if (Array.isArray(value)) return Promise.all(value.map((v) => bindReferences(v, resolve)));
  if (value === null || typeof value !== 'object') return value;
  const entries = await Promise.all(
    Object.entries(value).map(async ([k, v]) => [k, await bindReferences(v, resolve)] as const),
  );
  return Object.fromEntries(entries);
}
