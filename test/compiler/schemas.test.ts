import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';

import { stepKinds } from '../../activities/runtime/registry';
import { stepKindsSchemaText } from '../../infra/compiler/kinds-schema';
import { ajv } from '../../infra/compiler/kind-schemas';

describe('published schemas', () => {
  it('pipelines/step-kinds.schema.json is up to date with the registry (npm run schemas)', async () => {
    assert.equal(await readFile('pipelines/step-kinds.schema.json', 'utf8'), stepKindsSchemaText());
  });

  it('every step kind publishes a schema that compiles, and declares its outputs', () => {
    for (const kind of stepKinds) {
      assert.doesNotThrow(() => ajv.compile(kind.withSchema), kind.name);
      assert.ok(Object.keys(kind.outputs).length > 0, `${kind.name} has no outputs`);
      assert.match(kind.name, /^[a-z]+\.[a-z0-9.-]+$/);
    }
  });

  it('the pipeline schema is a valid draft 2020-12 schema', async () => {
    const schema = JSON.parse(await readFile('pipelines/pipeline.schema.json', 'utf8')) as {
      $schema: string;
    };
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.ok(ajv.validateSchema(schema));
  });
});
