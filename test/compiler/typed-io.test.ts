/**
 * Typed I/O: `validate` refuses, with the exact place and reason, every reference whose output type
 * the consuming parameter cannot take (what `run` would otherwise hit only after upstream steps ran).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { compilePipeline } from '../../infra/compiler/compile';
import { PipelineInvalidError } from '../../infra/compiler/issues';
import { getKindDescriptor, kindDescriptors } from '../../infra/kinds/index';
import { stepKinds } from '../../activities/runtime/registry';

function problems(doc: unknown): string[] {
  try {
    compilePipeline(JSON.stringify(doc, null, 2), { file: 'p.json' });
  } catch (err) {
    if (err instanceof PipelineInvalidError) return err.lines();
    throw err;
  }
  assert.fail('expected the pipeline to be invalid');
}

const synth = {
  uses: 'dataset.synth',
  with: { task: 'detection', format: 'coco', images: 4, seed: 1 },
};

describe('typed step inputs and outputs', () => {
  it('every output declares file, folder, artifact or a value with its JSON Schema', () => {
    for (const kind of kindDescriptors) {
      for (const [name, spec] of Object.entries(kind.outputs)) {
        assert.ok(['file', 'folder', 'artifact', 'value'].includes(spec.type), `${kind.name}.${name}`);
        if (spec.type === 'value') assert.ok(spec.schema, `${kind.name}.${name} declares no schema`);
      }
    }
  });

  it('every descriptor has an implementation and the runtime agrees with it', () => {
    assert.deepEqual(
      stepKinds.map((k) => k.name),
      kindDescriptors.map((k) => k.name),
    );
    for (const k of stepKinds) assert.equal(k.withSchema, getKindDescriptor(k.name)!.withSchema);
  });

  it('refuses a value where a file is needed', () => {
    assert.deepEqual(
      problems({
        name: 'p',
        steps: {
          w: { uses: 'util.write', with: { text: 'x' } },
          h: { uses: 'util.hash', with: { inputs: ['${steps.w.outputs.file}'] } },
          c: { uses: 'util.concat', with: { inputs: ['${steps.h.outputs.hex}'] } },
        },
      }),
      [
        'p.json:/steps/c/with/inputs/0: ${steps.h.outputs.hex}: util.concat expects a file or folder, but it is a value of type string (in cell default) (line 22:11)',
      ],
    );
  });

  it('refuses a file where a folder is needed, and a folder where a file is needed', () => {
    const lines = problems({
      name: 'p',
      steps: {
        s: synth,
        t: {
          uses: 'train.detector',
          with: {
            images: '${steps.s.outputs.train}',
            train: '${steps.s.outputs.images}',
            val: '${steps.s.outputs.val}',
            init: 'scratch',
            norm: 'gn',
            schedule: '1x',
          },
        },
      },
    });
    assert.deepEqual(lines, [
      'p.json:/steps/t/with/images: ${steps.s.outputs.train}: train.detector expects a folder, but it is a file (in cell default) (line 16:9)',
      'p.json:/steps/t/with/train: ${steps.s.outputs.images}: train.detector expects a file, but it is a folder (in cell default) (line 17:9)',
    ]);
  });

  it('report.table needs groupBy: a single value is not a list of rows', () => {
    const doc = {
      name: 'p',
      grid: { x: [1, 2] },
      steps: {
        n: { uses: 'util.noop', with: { tag: '${grid.x}' } },
        r: { uses: 'report.table', with: { rows: '${steps.n.outputs.tag}' } },
      },
    };
    assert.deepEqual(problems(doc), [
      'p.json:/steps/r/with/rows: ${steps.n.outputs.tag}: report.table expects a list, but it is a value of type string or number (hint: in a step with groupBy, an output reads as a list of {cell, value}) (in cell x=1; also in 1 other cell) (line 19:9)',
    ]);
    // With groupBy the same reference reads as the list of rows, and the pipeline is valid.
    const grouped = { ...doc, steps: { ...doc.steps, r: { ...doc.steps.r, groupBy: [] } } };
    assert.equal(compilePipeline(JSON.stringify(grouped), { file: 'p.json' }).stats.cells, 2);
  });

  it('a groupBy step reads another step of the same group as its one value, not a list', () => {
    const plan = compilePipeline(
      JSON.stringify({
        name: 'p',
        grid: { x: [1, 2], y: ['a', 'b'] },
        steps: {
          n: { uses: 'util.noop', with: { tag: '${grid.x}' } },
          t: { uses: 'report.table', groupBy: ['y'], with: { rows: '${steps.n.outputs.tag}' } },
          c: { uses: 'util.concat', groupBy: ['y'], with: { inputs: ['${steps.t.outputs.markdown}'] } },
        },
      }),
      { file: 'p.json' },
    );
    const concats = plan.steps.filter((s) => s.uses === 'util.concat');
    assert.equal(concats.length, 2);
    for (const c of concats) {
      const [ref] = (c.with as { inputs: Array<{ $from: { step: string } }> }).inputs;
      const table = plan.steps.find((s) => s.key === ref!.$from.step)!;
      // The table of the same y group, read as one artifact.
      assert.equal(table.uses, 'report.table');
      assert.deepEqual(table.cells, c.cells);
    }
  });

  it('checks fields read from a typed value against the parameter', () => {
    assert.deepEqual(
      problems({
        name: 'p',
        steps: {
          w: { uses: 'util.write', with: { text: 'x' } },
          h: { uses: 'util.hash', with: { inputs: ['${steps.w.outputs.file}'] } },
          s: {
            uses: 'dataset.synth',
            with: { task: 'detection', format: 'coco', images: '${steps.h.outputs.hex}', seed: 1 },
          },
        },
      }),
      [
        'p.json:/steps/s/with/images: ${steps.h.outputs.hex}: dataset.synth expects an integer, but it is a value of type string (in cell default) (line 23:9)',
      ],
    );
  });
});
