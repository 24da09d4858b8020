/**
 * The findings rule (infra/report/findings.ts): per-seed quantities paired by seed, mean and range, the
 * three verdicts at the noise threshold, nested differences with `where`, object axis values matched by
 * name, and the errors a pipeline author gets for a rule that does not fit the grid.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  evaluateFindings,
  findingsMarkdown,
  FindingsError,
  type FindingRule,
  type MetricRow,
} from '../../infra/report/findings';

const full = { name: 'full', images: 1000 };
const tenth = { name: '1/10', images: 100 };

/** AP per (init, schedule, data, seed). */
function rows(ap: Record<string, [number, number]>): MetricRow[] {
  const out: MetricRow[] = [];
  for (const [key, perSeed] of Object.entries(ap)) {
    const [init, schedule, data] = key.split(' ');
    perSeed.forEach((v, s) =>
      out.push({
        cell: { init: init!, schedule: schedule!, data: data === 'full' ? full : tenth, seed: s + 1 },
        value: { AP: v, AP50: v * 2 },
      }),
    );
  }
  return out;
}

const gain = { minus: [{ cell: { init: 'imagenet' } }, { cell: { init: 'scratch' } }] } as const;
const ahead: FindingRule = {
  id: 'a',
  claim: 'at short schedules pre-training is ahead',
  metric: 'AP',
  where: { schedule: '1x', data: 'full' },
  value: { ...gain, minus: [...gain.minus] },
  expect: 'positive',
};

describe('findings', () => {
  it('reproduces a claim whose mean exceeds noise x seed spread, with the expected sign', () => {
    const r = evaluateFindings(
      { findings: [ahead] },
      rows({ 'imagenet 1x full': [0.3, 0.32], 'scratch 1x full': [0.2, 0.21] }),
    );
    const f = r.findings[0]!;
    assert.deepEqual(f.perSeed, { '1': 0.3 - 0.2, '2': 0.32 - 0.21 });
    assert.ok(Math.abs(f.mean - 0.105) < 1e-12);
    assert.ok(Math.abs(f.spread - 0.01) < 1e-12);
    assert.equal(f.verdict, 'reproduced');
    assert.equal(f.quantity, '[schedule=1x, data=full] init=imagenet - init=scratch');
    assert.deepEqual(r.seeds, ['1', '2']);
  });

  it('says "not shown" within the noise and "contradicted" beyond it with the wrong sign', () => {
    const noisy = evaluateFindings(
      { findings: [ahead] },
      rows({ 'imagenet 1x full': [0.25, 0.2], 'scratch 1x full': [0.2, 0.21] }),
    );
    // per seed +0.05 and -0.01: mean 0.02, spread 0.06, threshold 0.12.
    assert.equal(noisy.findings[0]!.verdict, 'not shown');
    const opposite = evaluateFindings(
      { findings: [ahead] },
      rows({ 'imagenet 1x full': [0.1, 0.11], 'scratch 1x full': [0.2, 0.2] }),
    );
    assert.equal(opposite.findings[0]!.verdict, 'contradicted');
    // The same numbers with a looser rule, and with an effect floor.
    assert.equal(
      evaluateFindings(
        { noise: 0.1, findings: [ahead] },
        rows({ 'imagenet 1x full': [0.25, 0.2], 'scratch 1x full': [0.2, 0.21] }),
      ).findings[0]!.verdict,
      'reproduced',
    );
    assert.equal(
      evaluateFindings(
        { noise: 0.1, minEffect: 0.05, findings: [ahead] },
        rows({ 'imagenet 1x full': [0.25, 0.2], 'scratch 1x full': [0.2, 0.21] }),
      ).findings[0]!.verdict,
      'not shown',
    );
  });

  it('evaluates nested differences seed by seed (the gain shrinks from 1x to 4x)', () => {
    const catchUp: FindingRule = {
      id: 'b',
      claim: 'with longer schedules scratch catches up',
      metric: 'AP',
      where: { data: 'full' },
      value: {
        minus: [
          {
            where: { schedule: '4x' },
            minus: [{ cell: { init: 'imagenet' } }, { cell: { init: 'scratch' } }],
          },
          {
            where: { schedule: '1x' },
            minus: [{ cell: { init: 'imagenet' } }, { cell: { init: 'scratch' } }],
          },
        ],
      },
      expect: 'negative',
    };
    const r = evaluateFindings(
      { findings: [catchUp] },
      rows({
        'imagenet 1x full': [0.3, 0.31],
        'scratch 1x full': [0.1, 0.12],
        'imagenet 4x full': [0.5, 0.5],
        'scratch 4x full': [0.48, 0.49],
      }),
    );
    const f = r.findings[0]!;
    // seed 1: (0.5-0.48) - (0.3-0.1) = -0.18; seed 2: (0.5-0.49) - (0.31-0.12) = -0.18.
    assert.ok(Math.abs(f.perSeed['1']! + 0.18) < 1e-9 && Math.abs(f.perSeed['2']! + 0.18) < 1e-9);
    assert.equal(f.verdict, 'reproduced');
    assert.equal(f.arms.length, 4);
    assert.match(f.quantity, /^\[data=full\] \(\[schedule=4x\] init=imagenet - init=scratch\) - /);
  });

  it('gives no verdict from one seed (no spread)', () => {
    const one = rows({ 'imagenet 1x full': [0.3, 0.3], 'scratch 1x full': [0.1, 0.1] }).filter(
      (r) => r.cell.seed === 1,
    );
    const f = evaluateFindings({ findings: [ahead] }, one).findings[0]!;
    assert.equal(f.verdict, 'not shown');
    assert.ok(Number.isNaN(f.spread));
  });

  it('names the rule and what does not fit: ambiguous, missing cells, metrics, shapes', () => {
    const grid = rows({
      'imagenet 1x full': [0.3, 0.3],
      'scratch 1x full': [0.1, 0.1],
      'imagenet 1x tenth': [0.2, 0.2],
      'scratch 1x tenth': [0.1, 0.1],
    });
    const run = (rule: Partial<FindingRule>) => evaluateFindings({ findings: [{ ...ahead, ...rule }] }, grid);
    assert.throws(
      () => run({ where: { schedule: '1x' } }),
      (e: Error) =>
        e instanceof FindingsError &&
        /\/findings\/0 \(a\)\/value\/minus\/0: .* matches more than one cell per seed \(they differ in data\)/.test(
          e.message,
        ),
    );
    assert.throws(
      () => run({ where: { schedule: '4x', data: 'full' } }),
      /no cell matches \{schedule=4x, data=full, init=imagenet\}/,
    );
    assert.throws(() => run({ metric: 'mAP07' }), /has no numeric metric "mAP07"/);
    assert.throws(
      () => run({ value: { minus: [{ cell: { init: 'imagenet' } }] } as never }),
      /\/findings\/0 \(a\)\/value: expected \{cell: \{\.\.\.\}\} or \{minus: \[A, B\]/,
    );
    assert.throws(() => run({ value: { cell: { init: 'imagenet', seed: 1 } } }), /selects on the seed axis/);
    assert.throws(
      () => evaluateFindings({ findings: [ahead, ahead] }, grid),
      /\/findings\/1 \(a\): id a is used twice/,
    );
  });

  it('writes a Markdown table with every number behind each verdict', () => {
    const md = findingsMarkdown(
      evaluateFindings(
        { findings: [ahead] },
        rows({ 'imagenet 1x full': [0.3, 0.32], 'scratch 1x full': [0.2, 0.21] }),
      ),
    );
    assert.match(md, /\| a \| at short schedules pre-training is ahead \|/);
    assert.match(md, /1: \+0\.100, 2: \+0\.110 \| \+0\.105 \| 0\.010 \| \*\*reproduced\*\* \|/);
    assert.match(md, /exceeds 2 × the seed spread/);
  });
});
