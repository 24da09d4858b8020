/** The live view and failure lines, as pure functions: width, no duplicated columns, one line per cause. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { RunView, StepView } from '../../infra/runs';
import { cascadeLines, failureLine, fitToWidth, liveText } from '../../infra/cli/render-run';
import { resolveConfig } from '../../temporal.config';

function view(steps: StepView[]): RunView {
  const counts = { pending: 0, running: 0, done: 0, cached: 0, failed: 0, skipped: 0, cancelled: 0 };
  for (const s of steps) counts[s.status]++;
  return {
    runId: 'grid-20261203-080000-abcd',
    workflowStatus: 'RUNNING',
    plan: {} as RunView['plan'],
    counts,
    steps,
  };
}

const train: StepView = {
  key: 'k1',
  label: 'train{init=imagenet,schedule=1x,norm=bn-batch,backbone=resnet50-with-a-very-long-name}',
  uses: 'train.detector',
  status: 'running',
  progress: {
    iteration: 120,
    totalIterations: 1000,
    loss: 0.3125,
    imagesPerSec: 41.5,
    etaSec: 600,
    message: 'iteration 120/1000 loss 0.3125 lr 0.0200',
  },
};

describe('live view', () => {
  it('fits every line to the terminal width', () => {
    const text = fitToWidth(liveText(view([train]), 5_000), 40);
    for (const line of text.split('\n')) assert.ok([...line].length <= 40, `${line.length}: ${line}`);
    assert.ok(text.split('\n').some((l) => l.endsWith('…')));
  });

  it('shows each progress field once (the kind message repeats them)', () => {
    const text = liveText(view([train]), 5_000);
    assert.equal(text.match(/\b120\b/g)?.length, 1, text);
    assert.match(text, /it 120\/1000, loss 0\.3125, 41\.5 img\/s, ETA 10m/);
  });
});

describe('failure lines', () => {
  const plan = { steps: [{ key: 'k2', cells: ['init=imagenet,schedule=1x'] }] };
  it('one line: step, kind, cell, first line of the error, log', () => {
    const failed: StepView = {
      key: 'k2',
      label: 'train@imagenet-1x',
      uses: 'train.detector',
      status: 'failed',
      error: 'Diverged: loss is NaN at iteration 12\n    at step (loop.ts:1)',
    };
    assert.equal(
      failureLine(failed, plan, '/h/logs/sdk.log'),
      '✖ train@imagenet-1x failed (train.detector, cell init=imagenet,schedule=1x): Diverged: loss is NaN at iteration 12; full log: /h/logs/sdk.log',
    );
  });

  it('summarizes the steps a failure kept from running, again only when the count grows', () => {
    const skipped = (key: string): StepView => ({
      key,
      label: key,
      uses: 'eval.coco',
      status: 'skipped',
      error: 'not run: upstream step train@imagenet-1x failed',
    });
    const reported = new Set<string>();
    const v = view(Array.from({ length: 12 }, (_, i) => skipped(`s${i}`)));
    assert.deepEqual(cascadeLines(v, reported), [
      '⊘ 12 steps not run: they need train@imagenet-1x, which failed',
    ]);
    assert.deepEqual(cascadeLines(v, reported), []);
  });
});

describe('state directory default', () => {
  it('is per user: XDG_STATE_HOME, else ~/.local/state; ABLATE_HOME and --home win; never the cwd', () => {
    assert.equal(resolveConfig({}, { XDG_STATE_HOME: '/xdg' }, '/cwd').home, '/xdg/ablate');
    assert.equal(resolveConfig({}, { HOME: '/u' }, '/cwd').home, '/u/.local/state/ablate');
    // A relative XDG_STATE_HOME is invalid (XDG spec) and ignored.
    assert.equal(
      resolveConfig({}, { XDG_STATE_HOME: 'rel', HOME: '/u' }, '/cwd').home,
      '/u/.local/state/ablate',
    );
    assert.equal(resolveConfig({}, { ABLATE_HOME: 'st', XDG_STATE_HOME: '/xdg' }, '/cwd').home, '/cwd/st');
    assert.equal(resolveConfig({ home: '/flag' }, { ABLATE_HOME: '/env' }, '/cwd').home, '/flag');
  });
});
