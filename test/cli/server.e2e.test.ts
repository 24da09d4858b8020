/**
 * One embedded server per state directory, shared by every ablate process of it: the real binary,
 * real processes, real SIGKILL. A server `ablate server start` started outlives the commands and keeps
 * detached runs going with its background workers; one a command started is stopped by the last
 * process that used it; a restarted server comes back on the same port.
 */
import assert from 'node:assert/strict';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { ablate, lastJsonLine, spawnAblate } from '../helpers/cli';
import { isAlive, waitForStderr, waitNoProcesses } from './procs';

const pipeline = (name: string, sleepMs: number) => ({
  name,
  steps: {
    a: { uses: 'util.noop', heartbeatTimeout: '4s', with: { tag: name, sleepMs } },
    b: { uses: 'util.noop', heartbeatTimeout: '4s', needs: ['a'], with: { tag: `${name}-b`, sleepMs: 200 } },
  },
});

interface StatusJson {
  running: boolean;
  address: string | null;
  uiUrl: string | null;
  pid: number | null;
  mode: string | null;
  workers: { pid: number; queues: string[] } | null;
}

describe('ablate server: one embedded server per state directory', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-cli-server-'));
    await writeFile(join(dir, 'short.json'), JSON.stringify(pipeline('short', 1000)));
    await writeFile(join(dir, 'long.json'), JSON.stringify(pipeline('long', 9000)));
    // The first of two concurrent runs: long enough for the second to start while it runs.
    await writeFile(join(dir, 'first.json'), JSON.stringify(pipeline('first', 12000)));
    await writeFile(join(dir, 'second.json'), JSON.stringify(pipeline('second', 16000)));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('two `ablate run`s share one server; the first to end does not stop it, the last one does', async () => {
    const home = join(dir, 'shared');
    const env = { ABLATE_HOME: home, TEMPORAL_ADDRESS: '' };
    const first = spawnAblate(['run', join(dir, 'first.json'), '--no-cache'], { env });
    const firstOut = waitForStderr(first, /run first-\S+ started/);
    await firstOut.match;
    const record = JSON.parse(await readFile(join(home, 'server.json'), 'utf8')) as {
      pid: number;
      address: string;
    };
    const second = spawnAblate(['run', join(dir, 'second.json'), '--no-cache', '--json'], { env });
    let secondStdout = '';
    second.stdout!.on('data', (d: Buffer) => (secondStdout += d.toString()));
    const secondOut = waitForStderr(second, /run second-\S+ started/);
    await secondOut.match;
    assert.equal(
      first.exitCode,
      null,
      'the first run ended before the second started: the test proves nothing',
    );
    assert.doesNotMatch(secondOut.text(), /starting the embedded Temporal server/);

    assert.equal(await firstOut.exit, 0, firstOut.text());
    // The first one is gone; the server it started serves the second one still.
    assert.ok(isAlive(record.pid), 'the server was stopped while another ablate process used it');
    assert.equal(await secondOut.exit, 0, secondOut.text());
    assert.equal(lastJsonLine<{ status: string }>(secondStdout).status, 'completed');
    // The last user left: server and record gone.
    assert.deepEqual(await waitNoProcesses(home), []);
    assert.ok(!isAlive(record.pid));
    await assert.rejects(access(join(home, 'server.json')));
  });

  it('after a SIGKILLed `ablate run`, the next command reuses its server and, leaving last, stops it', async () => {
    const home = join(dir, 'killed');
    const env = { ABLATE_HOME: home, TEMPORAL_ADDRESS: '' };
    const child = spawnAblate(['run', join(dir, 'long.json'), '--no-cache'], { env });
    const out = waitForStderr(child, /run (long-\S+) started/);
    const runId = (await out.match)[1]!;
    child.kill('SIGKILL');
    await out.exit;
    const record = JSON.parse(await readFile(join(home, 'server.json'), 'utf8')) as { pid: number };
    assert.ok(isAlive(record.pid));
    const status = await ablate(['status', runId, '--json'], { env, timeoutMs: 60_000 });
    assert.equal(status.code, 0, status.stderr);
    assert.doesNotMatch(status.stderr, /starting the embedded Temporal server/);
    assert.equal(lastJsonLine<{ workflowStatus: string }>(status.stdout).workflowStatus, 'RUNNING');
    assert.deepEqual(await waitNoProcesses(home), []);
    await assert.rejects(access(join(home, 'server.json')));
  });

  it('`server start --workers` keeps a detached run going; `server stop` stops workers then server; a restart keeps the port', async () => {
    const home = join(dir, 'explicit');
    const env = { ABLATE_HOME: home, TEMPORAL_ADDRESS: '' };
    try {
      const started = await ablate(['server', 'start', '--workers'], { env, timeoutMs: 90_000 });
      assert.equal(started.code, 0, started.stderr);
      assert.match(started.stdout, /^ {2}workers {3}pid \d+, queues cpu, gpu, log .*workers\.log$/m);
      const s1 = lastJsonLine<StatusJson>((await ablate(['server', 'status', '--json'], { env })).stdout);
      assert.equal(s1.running, true);
      assert.equal(s1.mode, 'explicit');
      assert.ok(s1.workers && isAlive(s1.workers.pid));
      const ui = await ablate(['ui'], { env });
      assert.equal(ui.stdout.trim(), s1.uiUrl);

      // Detached: this process starts no workers and exits; the background workers run it.
      const run = await ablate(['run', join(dir, 'short.json'), '--detach', '--no-cache'], { env });
      assert.equal(run.code, 0, run.stderr);
      const runId = run.stdout.trim();
      const watched = await ablate(['status', runId, '--watch', '--json'], { env, timeoutMs: 60_000 });
      assert.equal(watched.code, 0, watched.stderr);
      assert.equal(lastJsonLine<{ status: string }>(watched.stdout).status, 'completed');
      // The explicit server outlives every command.
      assert.ok(isAlive(s1.pid!));

      const stopped = await ablate(['server', 'stop'], { env, timeoutMs: 60_000 });
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.match(stopped.stderr, /stopping the background workers[\s\S]*stopping the Temporal server/);
      assert.deepEqual(await waitNoProcesses(home), []);
      const s2 = lastJsonLine<StatusJson>((await ablate(['server', 'status', '--json'], { env })).stdout);
      assert.equal(s2.running, false);

      const again = await ablate(['server', 'start'], { env, timeoutMs: 90_000 });
      assert.equal(again.code, 0, again.stderr);
      const s3 = lastJsonLine<StatusJson>((await ablate(['server', 'status', '--json'], { env })).stdout);
      assert.equal(s3.address, s1.address);
      assert.equal(s3.uiUrl, s1.uiUrl);
    } finally {
      await ablate(['server', 'stop'], { env, timeoutMs: 60_000 });
      assert.deepEqual(await waitNoProcesses(home), []);
    }
  });
});
