import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';

import { compilePipeline } from '../../infra/compiler/compile';
import { PipelineInvalidError } from '../../infra/compiler/issues';
import type { Plan } from '../../workflows/plan-types';

/** The problems the compiler reports for a pipeline, as printed lines. */
function problems(doc: unknown, options: { maxCells?: number } = {}): string[] {
  const text = typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2);
  try {
    compilePipeline(text, { file: 'p.json', ...options });
  } catch (err) {
    if (err instanceof PipelineInvalidError) return err.lines();
    throw err;
  }
  assert.fail('expected the pipeline to be invalid');
}

function compile(doc: unknown, options: { maxCells?: number } = {}): Plan {
  return compilePipeline(JSON.stringify(doc), { file: 'p.json', ...options });
}

const write = (text: string) => ({ uses: 'util.write', with: { text } });

describe('pipeline compiler', () => {
  it('compiles the smoke example: shared steps merge, the fan-in sees every cell', async () => {
    const plan = compilePipeline(await readFile('pipelines/examples/smoke.json', 'utf8'));
    assert.deepEqual(plan.stats, { cells: 6, stepInstances: 31, uniqueSteps: 19, saved: 12 });
    const byId = (id: string) => plan.steps.filter((s) => s.id === id);
    assert.equal(byId('seed').length, 1);
    assert.equal(byId('left').length, 3);
    assert.equal(byId('right').length, 2);
    assert.equal(byId('join').length, 6);
    const [report] = byId('report');
    assert.equal(report!.needs.length, 6);
    assert.equal((report!.with.rows as unknown[]).length, 6);
    // Topological order: every step after its needs.
    const position = new Map(plan.steps.map((s, i) => [s.key, i]));
    for (const s of plan.steps) for (const n of s.needs) assert.ok(position.get(n)! < position.get(s.key)!);
    // Defaults of the kind's schema are filled in (util.hash algorithm), so {} and the default merge.
    assert.equal(byId('right')[0]!.with.algorithm, 'sha256');
  });

  it('gives steps stable content ids that change with their params and upstream', () => {
    const doc = {
      name: 'p',
      grid: { n: [1, 2] },
      steps: {
        a: write('x${grid.n}'),
        b: { uses: 'util.hash', with: { inputs: ['${steps.a.outputs.file}'] } },
      },
    };
    const one = compile(doc);
    const two = compile(doc);
    assert.deepEqual(
      one.steps.map((s) => s.key),
      two.steps.map((s) => s.key),
    );
    const changed = compile({ ...doc, steps: { ...doc.steps, a: write('y${grid.n}') } });
    const keysOf = (p: Plan, id: string) => p.steps.filter((s) => s.id === id).map((s) => s.key);
    assert.notDeepEqual(keysOf(changed, 'a'), keysOf(one, 'a'));
    assert.notDeepEqual(
      keysOf(changed, 'b'),
      keysOf(one, 'b'),
      'a downstream step changes with its upstream',
    );
    assert.match(one.steps[0]!.key, /^[0-9a-f]{16}$/);
  });

  it('gives every step the hash of the canonical JSON of {uses, with, needs} (also for repeated shapes)', async () => {
    const { contentHash } = await import('../../infra/canonical-json');
    for (const file of [
      'pipelines/rethinking-imagenet.json',
      'pipelines/examples/smoke.json',
      'pipelines/examples/mini-rethinking.json',
    ]) {
      const p = compilePipeline(await readFile(file, 'utf8'));
      for (const s of p.steps)
        assert.equal(
          s.key,
          contentHash({ uses: s.uses, with: s.with, needs: s.needs }).slice(0, 16),
          `${file} ${s.label}`,
        );
    }
    const grid = compile({
      name: 'p',
      grid: { a: [1, 2, 3], b: ['x', 'y'] },
      steps: {
        up: { uses: 'util.write', with: { text: '${grid.a}${grid.b}' } },
        down: {
          uses: 'util.concat',
          with: { inputs: ['${steps.up.outputs.file}', '${steps.up.outputs.file}'], separator: '-' },
        },
      },
    });
    for (const s of grid.steps)
      assert.equal(s.key, contentHash({ uses: s.uses, with: s.with, needs: s.needs }).slice(0, 16));
    assert.equal(
      new Set(grid.steps.filter((s) => s.id === 'down').map((s) => JSON.stringify(s.with))).size,
      6,
    );
  });

  it('keeps the JSON type of a whole-string template and interpolates inside strings', () => {
    const plan = compile({
      name: 'p',
      grid: { lr: [0.1], sub: [{ name: '1k', count: 1000 }] },
      steps: {
        s: {
          uses: 'util.write',
          with: {
            json: {
              lr: '${grid.lr}',
              count: '${grid.sub.count}',
              tag: 'n=${grid.sub.count}',
              lit: '$${grid.lr}',
            },
          },
        },
      },
    });
    assert.deepEqual(plan.steps[0]!.with.json, { lr: 0.1, count: 1000, tag: 'n=1000', lit: '${grid.lr}' });
    assert.equal(plan.cells[0]!.id, 'lr=0.1,sub=1k');
  });

  it('expands include and exclude like a CI build matrix', () => {
    const plan = compile({
      name: 'p',
      grid: { init: ['imagenet', 'scratch'], schedule: ['1x', '2x', '3x'] },
      exclude: [{ init: 'imagenet', schedule: ['2x', '3x'] }],
      include: [
        { init: 'scratch', schedule: '3x', note: 'long' },
        { init: 'imagenet', schedule: '6x' },
      ],
      steps: { s: write('${grid.init}-${grid.schedule}') },
    });
    assert.deepEqual(
      plan.cells.map((c) => c.id),
      [
        'init=imagenet,schedule=1x',
        'init=scratch,schedule=1x',
        'init=scratch,schedule=2x',
        'init=scratch,schedule=3x,note=long',
        'init=imagenet,schedule=6x',
      ],
    );
  });

  it('runs a step only where `when` matches, and reads a left-out dependency as null', () => {
    const plan = compile({
      name: 'p',
      grid: { init: ['imagenet', 'scratch'] },
      steps: {
        pretrain: { uses: 'util.write', when: { init: 'imagenet' }, with: { text: 'weights' } },
        train: {
          uses: 'util.write',
          with: { json: { init: '${grid.init}', pretrained: '${steps.pretrain.outputs.file}' } },
        },
      },
    });
    const train = plan.steps.filter((s) => s.id === 'train');
    assert.equal(plan.steps.filter((s) => s.id === 'pretrain').length, 1);
    const scratch = train.find((s) => (s.with.json as { init: string }).init === 'scratch')!;
    const imagenet = train.find((s) => (s.with.json as { init: string }).init === 'imagenet')!;
    assert.equal((scratch.with.json as { pretrained: unknown }).pretrained, null);
    assert.deepEqual(scratch.needs, []);
    assert.equal(imagenet.needs.length, 1);
    assert.deepEqual((imagenet.with.json as { pretrained: unknown }).pretrained, {
      $from: { step: imagenet.needs[0], output: 'file' },
    });
  });

  it('merges identical steps across cells and reports how many runs merging saved', () => {
    const plan = compile({
      name: 'p',
      grid: { a: [1, 2, 3, 4], b: ['x', 'y'] },
      steps: { shared: write('same'), perA: write('a${grid.a}'), perCell: write('${grid.a}${grid.b}') },
    });
    assert.deepEqual(plan.stats, { cells: 8, stepInstances: 24, uniqueSteps: 1 + 4 + 8, saved: 11 });
    assert.equal(plan.steps.find((s) => s.id === 'perA')!.label, 'perA{a=1}');
  });

  it('reports a per-cell parameter error once, with a count of the other cells', () => {
    const lines = problems({ name: 'p', grid: { a: [1, 2, 3] }, steps: { s: write('${grid.a}') } });
    assert.deepEqual(lines, [
      'p.json:/steps/s/with/text: must be string, found integer 1 (in cell a=1; also in 2 other cells) (line 14:9)',
    ]);
  });

  describe('bad input', () => {
    it('malformed JSON: line and column', () => {
      assert.deepEqual(problems('{\n  "name": "p",\n  "steps": {,}\n}'), [
        'p.json:3:13: malformed JSON: unexpected ",": expected a "key" in double quotes',
      ]);
      assert.deepEqual(problems('{"name": "p", }'), [
        'p.json:1:15: malformed JSON: trailing comma before "}"',
      ]);
      assert.deepEqual(problems(''), [
        'p.json:1:1: malformed JSON: the file is empty: expected a JSON object',
      ]);
    });

    it('non-object top level', () => {
      assert.deepEqual(problems('[1, 2]'), [
        'p.json:/: the pipeline must be a JSON object, found an array (line 1:1)',
      ]);
    });

    it('unknown step kind, with a did-you-mean', () => {
      assert.deepEqual(problems({ name: 'p', steps: { a: { uses: 'util.hsh', with: {} } } }), [
        'p.json:/steps/a/uses: unknown step kind "util.hsh" (did you mean "util.hash"?); see `ablate kinds` for the list (line 5:7)',
      ]);
    });

    it('unknown or misspelled fields, at every level, with a did-you-mean', () => {
      const lines = problems({
        name: 'p',
        descripton: 'x',
        steps: {
          a: { uses: 'util.write', wiht: {} },
          b: { uses: 'util.hash', with: { inputs: [], algoritm: 'md5' } },
        },
      });
      assert.ok(
        lines.includes(
          'p.json:/descripton: unknown field "descripton" (did you mean "description"?) (line 3:3)',
        ),
        lines.join('\n'),
      );
      assert.ok(
        lines.includes('p.json:/steps/a/wiht: unknown field "wiht" (did you mean "with"?) (line 7:7)'),
        lines.join('\n'),
      );
      assert.ok(
        lines.some((l) =>
          l.startsWith('p.json:/steps/b/with/algoritm: unknown field "algoritm" (did you mean "algorithm"?)'),
        ),
        lines.join('\n'),
      );
    });

    it('wrong parameter type or value', () => {
      const lines = problems({
        name: 'p',
        grid: { alg: ['sha265'] },
        steps: {
          a: write('x'),
          b: { uses: 'util.hash', with: { inputs: ['${steps.a.outputs.file}'], algorithm: '${grid.alg}' } },
          c: { uses: 'util.noop', with: { sleepMs: -5 } },
          d: { uses: 'util.noop', with: { tag: true } },
        },
      });
      assert.deepEqual(lines.slice().sort(), [
        'p.json:/steps/b/with/algorithm: must be one of "sha1", "sha256", "md5", found "sha265" (did you mean "sha256"?) (in cell alg=sha265) (line 21:9)',
        'p.json:/steps/c/with/sleepMs: must be >= 0, found -5 (line 27:9)',
        'p.json:/steps/d/with/tag: must be string or number, found boolean true (line 33:9)',
      ]);
    });

    it('a renamed norm is an error naming the new value, not a silent alias', () => {
      const pretrain = (norm: string) => ({
        uses: 'train.pretrain',
        with: { dataset: '${steps.a.outputs.dataset}', norm },
      });
      const lines = problems({
        name: 'p',
        steps: {
          a: {
            uses: 'dataset.synth',
            with: { task: 'classification', format: 'imagenet', images: 8, seed: 0 },
          },
          old: pretrain('syncbn'),
          ambiguous: pretrain('bn'),
        },
      });
      assert.equal(lines.length, 2, lines.join('\n'));
      assert.match(
        lines.find((l) => l.includes('/steps/old/'))!,
        /^p\.json:\/steps\/old\/with\/norm: "syncbn" was renamed "bn-batch": BatchNorm statistics over the whole batch of one training process, which is not synchronised across devices; must be one of "gn", "bn-batch", "bn-replica" \(in cell default\) \(line \d+:\d+\)$/,
      );
      assert.match(
        lines.find((l) => l.includes('/steps/ambiguous/'))!,
        /^p\.json:\/steps\/ambiguous\/with\/norm: "bn" was split in two: "bn-replica" \(statistics per group of bnImagesPerReplica images, what "bn" computed\) or "bn-batch" \(statistics over the whole batch\); must be one of/,
      );
    });

    it('`needs` naming a missing step', () => {
      assert.deepEqual(
        problems({
          name: 'p',
          steps: {
            prepare: write('x'),
            train: { uses: 'util.write', needs: ['prepair'], with: { text: 'y' } },
          },
        }),
        ['p.json:/steps/train/needs/0: needs unknown step "prepair" (did you mean "prepare"?) (line 13:9)'],
      );
    });

    it('a cycle, printed', () => {
      const lines = problems({
        name: 'p',
        steps: {
          a: { uses: 'util.write', needs: ['c'], with: { text: 'a' } },
          b: { uses: 'util.write', needs: ['a'], with: { text: 'b' } },
          c: { uses: 'util.write', needs: ['b'], with: { text: 'c' } },
        },
      });
      assert.deepEqual(lines, ['p.json:/steps/a/needs: dependency cycle: a -> b -> c -> a (line 6:7)']);
    });

    it('a template referencing an unknown axis, param, step or output', () => {
      const lines = problems({
        name: 'p',
        grid: { norm: ['gn'] },
        params: { lr: 0.1 },
        steps: {
          a: write('${grid.nrom}'),
          b: write('${params.lr2}'),
          c: { uses: 'util.hash', with: { inputs: ['${steps.a.outputs.fiel}'] } },
          d: { uses: 'util.hash', with: { inputs: ['${steps.zz.outputs.file}'] } },
          e: write('${bogus.x}'),
        },
      });
      assert.deepEqual(
        lines.map((l) => l.replace(/ \(line \d+:\d+\)$/, '')),
        [
          'p.json:/steps/a/with/text: ${grid.nrom}: unknown axis "nrom" (did you mean "norm"?); the grid has norm',
          'p.json:/steps/b/with/text: ${params.lr2}: unknown param "lr2" (did you mean "lr"?); define it under "params"',
          'p.json:/steps/c/with/inputs/0: ${steps.a.outputs.fiel}: step "a" (util.write) has no output "fiel" (did you mean "file"?); its outputs: file',
          'p.json:/steps/d/with/inputs/0: ${steps.zz.outputs.file}: unknown step "zz"',
          'p.json:/steps/e/with/text: bad template ${bogus.x}: unknown scope "bogus"; templates start with grid., params., steps., cell. or pipeline.',
        ],
      );
    });

    it('an empty grid after exclude', () => {
      assert.deepEqual(
        problems({ name: 'p', grid: { a: [1, 2] }, exclude: [{ a: [1, 2] }], steps: { s: write('x') } }),
        ['p.json:/exclude: the grid is empty: exclude removed every cell (line 9:3)'],
      );
    });

    it('a grid over the cell limit, which --max-cells raises', () => {
      const doc = {
        name: 'p',
        grid: { a: [1, 2, 3, 4, 5], b: [1, 2, 3, 4, 5] },
        steps: { s: write('${grid.a}${grid.b}') },
      };
      assert.deepEqual(problems(doc, { maxCells: 20 }), [
        'p.json:/grid: the grid has 25 cells (5 x 5), over the limit of 20; raise it with --max-cells if you mean it (line 3:3)',
      ]);
      assert.equal(compile(doc, { maxCells: 25 }).stats.cells, 25);
    });

    it('duplicate step ids', () => {
      const text =
        '{\n  "name": "p",\n  "steps": {\n    "train": {"uses": "util.write", "with": {"text": "a"}},\n    "train": {"uses": "util.write", "with": {"text": "b"}}\n  }\n}';
      assert.deepEqual(problems(text), [
        'p.json:/steps/train: duplicate key "train" (first defined at line 4:5): step ids must be unique (line 5:5)',
      ]);
    });

    it('`when` and `groupBy` naming unknown axes or values', () => {
      const lines = problems({
        name: 'p',
        grid: { init: ['imagenet', 'scratch'] },
        steps: {
          a: { uses: 'util.write', when: { init: 'imagnet' }, with: { text: 'x' } },
          r: { uses: 'util.noop', groupBy: ['int'] },
        },
      });
      assert.deepEqual(
        lines.map((l) => l.replace(/ \(line \d+:\d+\)$/, '')),
        [
          'p.json:/steps/a/when/init: "imagnet" is not a value of axis "init" (values: "imagenet", "scratch"); did you mean "imagenet"?',
          'p.json:/steps/r/groupBy/0: unknown axis "int" (did you mean "init"?); the grid has init',
        ],
      );
    });

    it('reports every problem at once', () => {
      const lines = problems({
        name: 'bad name!',
        steps: {
          a: { uses: 'nope' },
          b: { uses: 'util.write', needs: ['x'], with: { text: 'b' } },
          c: { uses: 'util.write', with: { text: 1 } },
        },
      });
      assert.equal(lines.length, 4, lines.join('\n'));
    });
  });
});
