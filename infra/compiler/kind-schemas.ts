/**
 * One ajv instance (JSON Schema draft 2020-12) for the pipeline schema and every step kind's `with`
 * schema, compiled once per kind. Used by the compiler and again by the step runner.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020';

import type { KindDescriptor } from '../kinds/descriptor';
import { ErrorType, permanent } from '../errors';
import { ajvIssues } from './issues';

// useDefaults fills in the kind's defaults, so `{}` and `{ algorithm: 'sha256' }` are the same step.
export const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: false, useDefaults: true });

const validators = new Map<string, ValidateFunction>();

/** The compiled validator of a kind's `with`. */
export function kindValidator(kind: KindDescriptor<unknown>): ValidateFunction {
  let v = validators.get(kind.name);
  if (!v) {
    v = ajv.compile(kind.withSchema);
    validators.set(kind.name, v);
  }
  return v;
}

/** Check bound parameters at run time; throws a non-retryable InvalidInput naming each problem. */
export function assertStepParams(kind: KindDescriptor<unknown>, params: unknown, where: string): void {
  const validate = kindValidator(kind);
  if (validate(params)) return;
  const problems = ajvIssues(validate.errors ?? [], '').map((i) => `${i.pointer || '/'}: ${i.message}`);
  throw permanent(
    ErrorType.InvalidInput,
    `parameters of ${where} (${kind.name}) are invalid: ${problems.join('; ')}`,
  );
}
