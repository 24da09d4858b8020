/**
 * Signals and exit codes of the real `ablate` binary on the embedded server: Ctrl-C detaches with one
 * line and exit 130 (no crash, no stack, no minified dump), SIGTERM and a closed pipe end cleanly,
 * and no exit path leaves a server or worker process behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { ablate, lastJsonLine, spawnAblate } from '../helpers/cli';
import { waitForStderr, waitNoProcesses } from './procs';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'ablate.mjs');
const pipeline = {
  name: 'sig',
  steps: {
    a: { uses: 'util.noop', heartbeatTimeout: '4s', with: { tag: 'a', sleepMs: 6000 } },
    b: { uses: 'util.noop', heartbeatTimeout: '4s', needs: ['a'], with: { tag: 'b', sleepMs: 500 } },
  },
};

/** What no user should ever see on stderr. */
function assertNoCrash(stderr: string): void {
  assert.doesNotMatch(stderr, /Channel has been shut down/);
  assert.doesNotMatch(stderr, /^\s+at /m, 'a stack trace');
  assert.doesNotMatch(stderr, /\[WARN\]|No workflows registered/);
  assert.ok(stderr.length < 2_000, `stderr is ${stderr.length} chars:\n${stderr.slice(0, 3000)}`);
}

describe('signals and exit codes', () => {
  let dir: string;
  let file: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-cli-signals-'));
    file = join(dir, 'sig.json');
    await writeFile(file, JSON.stringify(pipeline));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('Ctrl-C detaches with one line and exit 130, stops the server it started; `status --watch` resumes the run', async () => {
    const home = join(dir, 'int');
    const env = { ABLATE_HOME: home, TEMPORAL_ADDRESS: '' };
    const child = spawnAblate(['run', file], { env });
    const watch = waitForStderr(child, /running\s+a \(util\.noop\)/);
    await watch.match;
    child.kill('SIGINT');
    const code = await watch.exit;
    const stderr = watch.text();
    assert.equal(code, 130, stderr);
    assertNoCrash(stderr);
    const detachLines = stderr.split('\n').filter((l) => l.startsWith('detached from'));
    assert.equal(detachLines.length, 1, stderr);
    assert.match(
      detachLines[0]!,
      /^detached from (sig-\S+); it pauses until ablate runs again \(`ablate server start --workers` keeps it going\)\. Reattach: ablate status \1 --watch$/,
    );
    // The server this run started implicitly is gone with it, and its record too.
    assert.deepEqual(await waitNoProcesses(home), []);
    await assert.rejects(access(join(home, 'server.json')));

    const runId = /detached from (sig-\S+);/.exec(detachLines[0]!)![1]!;
    const resumed = await ablate(['status', runId, '--watch', '--json'], { env, timeoutMs: 60_000 });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(lastJsonLine<{ status: string }>(resumed.stdout).status, 'completed');
    assertNoCrash(resumed.stderr);
    assert.deepEqual(await waitNoProcesses(home), []);
  });

  it('SIGTERM ends `ablate run` quietly with 143 and leaves no process', async () => {
    const home = join(dir, 'term');
    const child = spawnAblate(['run', file], { env: { ABLATE_HOME: home, TEMPORAL_ADDRESS: '' } });
    const watch = waitForStderr(child, /running\s+a \(util\.noop\)/);
    await watch.match;
    child.kill('SIGTERM');
    const code = await watch.exit;
    assert.equal(code, 143, watch.text());
    assertNoCrash(watch.text());
    assert.doesNotMatch(watch.text(), /detached from/);
    assert.deepEqual(await waitNoProcesses(home), []);
  });

  it('a second Ctrl-C stops at once: exit 130, no crash, no process left', async () => {
    const home = join(dir, 'int2');
    const child = spawnAblate(['run', file], { env: { ABLATE_HOME: home, TEMPORAL_ADDRESS: '' } });
    const watch = waitForStderr(child, /running\s+a \(util\.noop\)/);
    await watch.match;
    child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    const code = await watch.exit;
    assert.equal(code, 130, watch.text());
    assertNoCrash(watch.text());
    // Whatever the second Ctrl-C cut short, nothing outlives the test: the server stops with its last
    // user, or the next command of this state directory stops it.
    let left = await waitNoProcesses(home, 5_000);
    if (left.length) {
      const next = await ablate(['server', 'status'], { env: { ABLATE_HOME: home } });
      assert.equal(next.code, 0);
      await ablate(['server', 'stop'], { env: { ABLATE_HOME: home } });
      left = await waitNoProcesses(home);
    }
    assert.deepEqual(left, []);
  });

  it('`ablate run | head -1` ends with 141 (closed output) and leaves no process', async () => {
    const home = join(dir, 'pipe');
    const status = join(dir, 'pipe-status');
    // head exits after the first line; ablate's next write meets a closed pipe.
    const sh = spawn(
      'bash',
      [
        '-c',
        `"${process.execPath}" "${BIN}" run "${file}" 2>&1 | head -1; echo "\${PIPESTATUS[0]}" > "${status}"`,
      ],
      { env: { ...process.env, ABLATE_HOME: home, TEMPORAL_ADDRESS: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    sh.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => sh.on('close', r));
    const { readFile } = await import('node:fs/promises');
    assert.equal((await readFile(status, 'utf8')).trim(), '141', out);
    assert.equal(out.trim().split('\n').length, 1);
    assert.deepEqual(await waitNoProcesses(home), []);
  });

  it('`ablate --help` documents the exit codes', async () => {
    const r = await ablate(['--help']);
    assert.equal(r.code, 0);
    for (const line of [
      /^ {2}0 {4}success$/m,
      /^ {2}1 {4}the run failed/m,
      /^ {2}2 {4}usage error or invalid pipeline$/m,
      /^ {2}3 {4}bad environment/m,
      /^ {2}130 {2}interrupted by Ctrl-C: detached from the run/m,
      /^ {2}141 {2}output closed/m,
      /^ {2}143 {2}terminated by SIGTERM$/m,
    ])
      assert.match(r.stdout, line);
  });
});
