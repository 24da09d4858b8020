/**
 * `ablate compare` and `ablate report` on synthetic runs written straight into a store: per cell and
 * metric both values and the difference, cells only in one run, the inputs behind each difference; the
 * Markdown report; and the errors a user gets for a run that has no summary or a bad flag.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

import { compareRuns, type RunComparison } from '../../infra/report/compare';
import { openStore } from '../../infra/store/index';
import { ablate } from '../helpers/cli';
import { syntheticAp, writeSyntheticRun } from './fixture';

const grid = {
  schedules: ['1x', '2x'],
  subsets: [
    { name: '1k', images: 1000 },
    { name: '10k', images: 10000 },
  ],
};
const CHANGED = 'init=scratch,schedule=2x,subset=1k';

describe('ablate compare and ablate report (synthetic runs)', () => {
  let dir: string;
  let storeUrl: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-compare-'));
    storeUrl = pathToFileURL(join(dir, 'store')).href;
    const store = await openStore(storeUrl);
    await writeSyntheticRun(store, { runId: 'run-a', ...grid });
    // B: one cell trained with another learning rate scores 0.05 higher; the last cell never ran.
    await writeSyntheticRun(store, {
      runId: 'run-b',
      ...grid,
      cells: 7,
      variant: (id) => (id === CHANGED ? { apDelta: 0.05, params: { lr: 0.04 } } : undefined),
    });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('gives both values and the difference per cell, and the inputs behind a difference', async () => {
    const c: RunComparison = await compareRuns(await openStore(storeUrl), 'run-a', 'run-b');
    assert.deepEqual(c.onlyInA, ['init=scratch,schedule=2x,subset=10k']);
    assert.deepEqual(c.onlyInB, []);
    assert.equal(c.cells.length, 7);
    const changed = c.cells.find((x) => x.id === CHANGED)!;
    const a = syntheticAp('scratch', 2, 1000, 0);
    assert.equal(changed.metrics.AP!.a, a);
    assert.equal(changed.metrics.AP!.b, a + 0.05);
    assert.ok(Math.abs(changed.metrics.AP!.diff! - 0.05) < 1e-12);
    assert.deepEqual(
      changed.inputs.map((d) => [d.step, d.field, d.a, d.b]),
      [['train', 'params.lr', null, 0.04]],
    );
    assert.deepEqual(
      c.cells.filter((x) => x.differs).map((x) => x.id),
      [CHANGED],
    );

    const text = await ablate(['compare', 'run-a', 'run-b', '--store', storeUrl]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /\* init=scratch,schedule=2x,subset=1k .* \+0\.0500/);
    assert.match(text.stdout, /train params\.lr: null -> 0\.04/);
    assert.match(text.stdout, /only in A: init=scratch,schedule=2x,subset=10k/);
    const json = await ablate(['compare', 'run-a', 'run-b', '--json', '--store', storeUrl]);
    assert.deepEqual(JSON.parse(json.stdout), JSON.parse(JSON.stringify(c)));
  });

  it('writes the Markdown report with the paired table', async () => {
    const out = join(dir, 'md');
    const r = await ablate(['report', 'run-a', '--out', out, '--format', 'md', '--store', storeUrl]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), join(out, 'report.md'));
    const md = await readFile(join(out, 'report.md'), 'utf8');
    const ap = (init: string) => syntheticAp(init, 1, 1000, 0).toFixed(4);
    assert.ok(md.includes(`| imagenet | 1x | 1k | ${ap('imagenet')} |`), md);
    const delta = (syntheticAp('scratch', 1, 1000, 0) - syntheticAp('imagenet', 1, 1000, 0)).toFixed(4);
    assert.ok(md.includes(`| 1x | 1k | ${ap('imagenet')} | ${ap('scratch')} | ${delta} |`), md);
  });

  it('plots loss or AP of the run or one train step as SVG', async () => {
    const all = join(dir, 'loss.svg');
    const r = await ablate(['plot', 'run-a', '--metric', 'loss', '--out', all, '--store', storeUrl]);
    assert.equal(r.code, 0, r.stderr);
    const svg = await readFile(all, 'utf8');
    assert.match(svg, /^<svg/);
    // One line per cell (Vega draws each series of a line mark as its own mark group).
    const lines = (s: string) => s.match(/class="mark-line role-mark/g)?.length ?? 0;
    assert.equal(lines(svg), 8);
    const one = join(dir, 'ap.svg');
    const label = 'train[init=scratch,schedule=2x,subset=1k]';
    const s = await ablate(['plot', 'run-a', label, '--metric', 'AP', '--out', one, '--store', storeUrl]);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(lines(await readFile(one, 'utf8')), 1);
    const bad = await ablate(['plot', 'run-a', 'scenes', '--out', one, '--store', storeUrl]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /step scenes is a dataset\.synth step; plot takes a train\.detector step/);
  });

  it('names the problem for a run without a summary and for a bad flag', async () => {
    const missing = await ablate(['report', 'nope', '--out', join(dir, 'x'), '--store', storeUrl]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no summary of run nope in file:\/\/.*: a report needs a finished run/);
    const format = await ablate(['report', 'run-a', '--out', join(dir, 'x'), '--format', 'pdf']);
    assert.equal(format.code, 2);
    assert.match(format.stderr, /--format must be html or md, got "pdf"/);
    const one = await ablate(['compare', 'run-a']);
    assert.equal(one.code, 2);
    assert.match(one.stderr, /give two run ids/);
  });
});
