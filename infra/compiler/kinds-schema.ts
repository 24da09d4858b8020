/**
 * The published schema of every step kind's `with`, as one JSON Schema document
 * (pipelines/step-kinds.schema.json): `$defs` per kind plus an if/then per `uses`, so an editor that
 * knows the pipeline schema can also check step parameters. Generated from the registry:
 * `npm run schemas` writes it, and a test fails when it is stale.
 */
import { kindDescriptors } from '../kinds/index';

export function stepKindsSchema(): object {
  const defs: Record<string, object> = {};
  for (const kind of kindDescriptors) {
    defs[kind.name] = {
      description: `${kind.summary} (version ${kind.version}, queue ${kind.queue})`,
      ...kind.withSchema,
    };
  }
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://github.com/ablate/ablate/pipelines/step-kinds.schema.json',
    title: 'ablate step parameters',
    description:
      'The `with` of each step kind. Generated from activities/registry.ts by `npm run schemas`; do not edit. Template strings (${...}) stand for values of the declared types.',
    $defs: defs,
    type: 'object',
    properties: { uses: { enum: kindDescriptors.map((k) => k.name) } },
    allOf: kindDescriptors.map((k) => ({
      if: { properties: { uses: { const: k.name } }, required: ['uses'] },
      then: { properties: { with: { $ref: `#/$defs/${k.name}` } } },
    })),
  };
}

/** The file's exact text (stable key order, trailing newline). */
export function stepKindsSchemaText(): string {
  return `${JSON.stringify(stepKindsSchema(), null, 2)}\n`;
}
