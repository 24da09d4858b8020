/**
 * What a user reads: no SDK warnings or stacks unless --debug; a failed step is one line naming the
 * step, its cell, its kind, the error and where the full log is; the steps it kept from running are one
 * summary line.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { ablate, lastJsonLine } from '../helpers/cli';
import { waitNoProcesses } from './procs';

const failing = {
  name: 'fails',
  steps: {
    ok: { uses: 'util.noop', with: { tag: 'ok' } },
    bad: { uses: 'util.fail', with: { message: 'boom: the loss is NaN' } },
    c: { uses: 'util.noop', needs: ['bad'], with: { tag: 'c' } },
    d: { uses: 'util.noop', needs: ['bad'], with: { tag: 'd' } },
    e: { uses: 'util.noop', needs: ['c', 'd'], with: { tag: 'e' } },
  },
};

describe('quiet, useful output', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-cli-output-'));
    await writeFile(join(dir, 'fails.json'), JSON.stringify(failing));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('a failed step is one line, its dependents one summary line; no SDK warnings or stacks', async () => {
    const home = join(dir, 'quiet');
    const r = await ablate(['run', join(dir, 'fails.json'), '--json'], {
      env: { ABLATE_HOME: home, TEMPORAL_ADDRESS: '' },
      timeoutMs: 90_000,
    });
    assert.equal(r.code, 1, r.stderr);
    const sdkLog = join(home, 'logs', 'sdk.log');
    const lines = r.stderr.trim().split('\n');
    assert.deepEqual(
      lines.filter((l) => /bad|not run/.test(l)),
      [
        `✖ bad failed (util.fail, cell default): InvalidInput: boom: the loss is NaN; full log: ${sdkLog}`,
        '⊘ 3 steps not run: they need bad, which failed',
      ],
    );
    assert.doesNotMatch(r.stderr, /\[WARN\]|No workflows registered|Activity failed|taskToken/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    // Progress lines appear once per change, not repeated.
    assert.equal(lines.filter((l) => /done\s+ok \(util\.noop\)/.test(l)).length, 1);
    // The SDK's own account, with its stack, is in the log the line points at.
    assert.match(await readFile(sdkLog, 'utf8'), /Activity failed/);
    const out = lastJsonLine<{ status: string; steps: Record<string, { status: string }> }>(r.stdout);
    assert.equal(out.status, 'failed');
    assert.deepEqual(
      Object.values(out.steps)
        .map((s) => s.status)
        .sort(),
      ['done', 'failed', 'skipped', 'skipped', 'skipped'],
    );
    assert.deepEqual(await waitNoProcesses(home), []);
  });

  it('--debug shows the SDK messages on stderr', async () => {
    const home = join(dir, 'debug');
    const r = await ablate(['run', join(dir, 'fails.json'), '--debug'], {
      env: { ABLATE_HOME: home, TEMPORAL_ADDRESS: '' },
      timeoutMs: 90_000,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\[WARN\] Activity failed/);
    assert.deepEqual(await waitNoProcesses(home), []);
  });
});
