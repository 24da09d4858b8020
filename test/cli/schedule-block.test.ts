/** The pipeline's `schedule` block: checked by the compiler with the usual FILE:POINTER form. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { compilePipeline } from '../../infra/compiler/compile';
import { PipelineInvalidError } from '../../infra/compiler/issues';

const steps = { a: { uses: 'util.noop' } };

function problems(schedule: unknown): string[] {
  try {
    compilePipeline(JSON.stringify({ name: 'p', steps, schedule }), { file: 'p.json' });
  } catch (err) {
    if (err instanceof PipelineInvalidError)
      return err.lines().map((l) => l.replace(/ \(line \d+:\d+\)$/, ''));
    throw err;
  }
  return [];
}

describe('pipeline schedule block', () => {
  it('is carried into the plan, normalised, with the pipeline name as the default name', () => {
    const plan = compilePipeline(
      JSON.stringify({
        name: 'p',
        steps,
        schedule: { cron: '0 2 * * *', timezone: 'Europe/Paris', noCache: true, catchupWindow: '2h' },
      }),
    );
    assert.deepEqual(plan.pipeline.schedule, {
      name: 'p',
      cron: '0 2 * * *',
      timezone: 'Europe/Paris',
      noCache: true,
      catchupWindowMs: 7_200_000,
    });
    const every = compilePipeline(
      JSON.stringify({ name: 'p', steps, schedule: { name: 'often', every: '30m', overlap: 'buffer-one' } }),
    );
    assert.deepEqual(every.pipeline.schedule, { name: 'often', everyMs: 1_800_000, overlap: 'buffer-one' });
    assert.equal(compilePipeline(JSON.stringify({ name: 'p', steps })).pipeline.schedule, undefined);
  });

  it('reports every problem at its pointer, with a hint where there is one', () => {
    assert.deepEqual(problems({ cron: '0 2 * *', timezone: 'Europe/Pari', overlap: 'skipp' }), [
      'p.json:/schedule/cron: a cron expression has 5 fields (minute hour day-of-month month day-of-week), found 4 in "0 2 * *"',
      'p.json:/schedule/timezone: unknown time zone "Europe/Pari" (did you mean "Europe/Paris"?); expected an IANA name such as "Europe/Paris" or "UTC"',
      'p.json:/schedule/overlap: must be one of "skip", "buffer-one", "allow-all", found "skipp" (did you mean "skip"?)',
    ]);
    assert.deepEqual(problems({ cron: '0 2 * * *', every: '1h' }), [
      'p.json:/schedule: has both `cron` and `every`; give one of them',
    ]);
    assert.deepEqual(problems({ timezone: 'UTC' }), [
      'p.json:/schedule: needs `cron` (e.g. "0 2 * * *") or `every` (e.g. "6h")',
    ]);
    assert.deepEqual(problems({ every: '500ms' }), [
      'p.json:/schedule/every: expected whole seconds, at least 1s (e.g. "30s", "6h"), found "500ms"',
    ]);
    assert.deepEqual(problems({ cron: '@dayly' }), [
      'p.json:/schedule/cron: unknown cron macro "@dayly" (did you mean "@daily"?); expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly',
    ]);
    assert.deepEqual(problems({ cron: '@daily', notify: { url: 'hooks.example/x' } }), [
      'p.json:/schedule/notify/url: expected an http:// or https:// URL, found "hooks.example/x"',
    ]);
    assert.deepEqual(problems({ cron: '0 2 * * MON-FRI', colour: 'blue' }), [
      'p.json:/schedule/colour: unknown field "colour"; expected one of: name, cron, every, timezone, noCache, overlap, notify, catchupWindow',
    ]);
  });
});
