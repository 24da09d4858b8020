import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { ablate, lastJsonLine } from '../helpers/cli';

describe('ablate CLI (validate, plan, help)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-cli-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('prints help and exits 0', async () => {
    const r = await ablate(['--help']);
    assert.equal(r.code, 0);
    for (const cmd of ['validate', 'plan', 'run', 'status', 'cancel', 'runs', 'worker'])
      assert.match(r.stdout, new RegExp(`\\n  ${cmd} `));
  });

  it('validate: exit 0 for valid files, 1 with every problem as FILE:POINTER: message, never a stack trace', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(
      bad,
      JSON.stringify(
        { name: 'x', steps: { a: { uses: 'util.hsh' }, b: { uses: 'util.write', wiht: {} } } },
        null,
        2,
      ),
    );
    const malformed = join(dir, 'malformed.json');
    await writeFile(malformed, '{\n  "name": "x",\n  "steps": {\n');
    const ok = await ablate(['validate', 'pipelines/examples/smoke.json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /smoke\.json: valid \(6 cells, 19 unique steps\)/);
    const r = await ablate(['validate', 'pipelines/examples/smoke.json', bad, malformed]);
    assert.equal(r.code, 1);
    assert.deepEqual(r.stderr.trim().split('\n'), [
      `${bad}:/steps/a/uses: unknown step kind "util.hsh" (did you mean "util.hash"?); see \`ablate kinds\` for the list (line 5:7)`,
      `${bad}:/steps/b/wiht: unknown field "wiht" (did you mean "with"?) (line 9:7)`,
      `${malformed}:4:1: malformed JSON: unexpected end of input: expected a "key" in double quotes`,
    ]);
    assert.doesNotMatch(r.stderr + r.stdout, /\n\s+at /);
  });

  it('plan --json is one JSON object with cells, steps, edges and stats; --dot is Graphviz', async () => {
    const json = await ablate(['plan', 'pipelines/examples/smoke.json', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const plan = lastJsonLine<{
      stats: { saved: number };
      steps: unknown[];
      edges: unknown[];
      cells: unknown[];
    }>(json.stdout);
    assert.equal(plan.stats.saved, 12);
    assert.equal(plan.steps.length, 19);
    assert.equal(plan.cells.length, 6);
    assert.equal(plan.edges.length, 3 + 2 + 12 + 6 + 6);
    const dot = await ablate(['plan', 'pipelines/examples/smoke.json', '--dot']);
    assert.match(dot.stdout, /^digraph "smoke" \{/);
  });

  it('plan refuses a grid over the cell limit unless --max-cells raises it', async () => {
    const big = join(dir, 'big.json');
    const axis = Array.from({ length: 20 }, (_, i) => i);
    await writeFile(
      big,
      JSON.stringify({
        name: 'big',
        grid: { a: axis, b: axis },
        steps: { s: { uses: 'util.noop', with: { tag: '${grid.a}-${grid.b}' } } },
      }),
    );
    const refused = await ablate(['plan', big, '--max-cells', '100']);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /the grid has 400 cells \(20 x 20\), over the limit of 100; raise it with --max-cells/,
    );
    const allowed = await ablate(['plan', big, '--max-cells', '400']);
    assert.equal(allowed.code, 0);
  });

  it('--set overrides existing fields with JSON values, and names a field that does not exist', async () => {
    const json = await ablate([
      'plan',
      'pipelines/examples/smoke.json',
      '--json',
      '--set',
      'grid.word=["alpha","beta"]',
      '--set',
      'params.greeting=hello',
    ]);
    assert.equal(json.code, 0, json.stderr);
    const plan = lastJsonLine<{ cells: unknown[]; steps: Array<{ id: string; with: { text?: string } }> }>(
      json.stdout,
    );
    assert.equal(plan.cells.length, 4);
    assert.equal(plan.steps.find((s) => s.id === 'seed')!.with.text, 'hello\n');
    const typo = await ablate(['plan', 'pipelines/examples/smoke.json', '--set', 'params.greting=x']);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /--set params\.greting=x: the pipeline has no field params\.greting/);
    const bad = await ablate(['plan', 'pipelines/examples/smoke.json', '--set', 'grid.word=3']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /smoke\.json \(with --set\):\/grid\/word: must be array/);
  });

  it('bad flags give a usage message and exit 2', async () => {
    const r = await ablate(['plan', '--bogus', 'x.json']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /ablate plan: Unknown option '--bogus'/);
    assert.match(r.stderr, /Usage: ablate plan FILE/);
  });
});
