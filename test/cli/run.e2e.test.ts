import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { ablate, lastJsonLine, spawnAblate } from '../helpers/cli';
import { testSession, testTemporalAddress, type TestSession } from '../helpers/temporal';

const ROOT = join(import.meta.dirname, '..', '..');
const slowPipeline = {
  name: 'slow',
  steps: {
    // A short heartbeat timeout: after a crash, a lost attempt is retried within seconds.
    a: { uses: 'util.noop', heartbeatTimeout: '4s', with: { tag: 'a', sleepMs: 1500 } },
    b: { uses: 'util.noop', heartbeatTimeout: '4s', needs: ['a'], with: { tag: 'b', sleepMs: 1500 } },
    c: { uses: 'util.noop', heartbeatTimeout: '4s', needs: ['b'], with: { tag: 'c', sleepMs: 1500 } },
  },
};

describe('ablate run / status / runs end to end', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-cli-run-'));
    await writeFile(join(dir, 'slow.json'), JSON.stringify(slowPipeline));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('runs the smoke example on the embedded default, then lists and shows it', async () => {
    const home = join(dir, 'embedded');
    const env = { ABLATE_HOME: home, TEMPORAL_ADDRESS: '' };
    const run = await ablate(['run', join(ROOT, 'pipelines/examples/smoke.json'), '--json'], {
      env,
      timeoutMs: 180_000,
    });
    assert.equal(run.code, 0, run.stderr);
    const out = lastJsonLine<{
      runId: string;
      status: string;
      uiUrl: string;
      steps: Record<string, { status: string; outputs: object }>;
    }>(run.stdout);
    assert.equal(out.status, 'completed');
    assert.equal(Object.keys(out.steps).length, 19);
    assert.ok(Object.values(out.steps).every((s) => s.status === 'done'));
    assert.match(
      out.uiUrl,
      new RegExp(`^http://127\\.0\\.0\\.1:\\d+/namespaces/default/workflows/${out.runId}$`),
    );
    assert.match(run.stdout, /run smoke-\d{8}-\d{6}-[0-9a-f]{4}: completed in/);
    assert.match(run.stdout, /word=alpha,algorithm=sha256\s+completed/);
    // The server's state (SQLite) and the log stay in ABLATE_HOME; the server was stopped.
    const serverLog = await readFile(join(home, 'logs', 'temporal-server.log'), 'utf8');
    assert.ok(
      serverLog.includes(`Temporal Persistence: ${join(home, 'temporal.db')}`),
      `the server did not keep its state in ABLATE_HOME:\n${serverLog.slice(0, 400)}`,
    );
    assert.ok((await stat(join(home, 'temporal.db'))).size > 0);
    await assert.rejects(readFile(join(home, 'server.json')));

    const runs = await ablate(['runs'], { env });
    assert.equal(runs.code, 0, runs.stderr);
    assert.match(runs.stdout, new RegExp(`${out.runId}\\s+smoke\\s+completed`));
    const status = await ablate(['status', out.runId, '--json'], { env });
    assert.equal(status.code, 0, status.stderr);
    assert.equal(lastJsonLine<{ workflowStatus: string }>(status.stdout).workflowStatus, 'COMPLETED');
  });

  it('survives ablate and its server being killed mid-run: `status --watch` resumes it from the same database', async () => {
    const home = join(dir, 'restart');
    const env = { ABLATE_HOME: home, TEMPORAL_ADDRESS: '' };
    const child = spawnAblate(['run', join(dir, 'slow.json')], { env });
    let stderr = '';
    const runId = await new Promise<string>((resolve, reject) => {
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /done\s+a \(util\.noop\)/.test(stderr) && /run (slow-\S+) started/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      child.on('exit', () => reject(new Error(`ablate run exited early:\n${stderr}`)));
    });
    child.kill('SIGKILL');
    const server = JSON.parse(await readFile(join(home, 'server.json'), 'utf8')) as { pid: number };
    process.kill(server.pid, 'SIGKILL');
    const resumed = await ablate(['status', runId, '--watch', '--json'], { env, timeoutMs: 120_000 });
    assert.equal(resumed.code, 0, resumed.stderr);
    const out = lastJsonLine<{ status: string; steps: Record<string, { label: string; status: string }> }>(
      resumed.stdout,
    );
    assert.equal(out.status, 'completed');
    assert.deepEqual(
      Object.values(out.steps).map((s) => s.status),
      ['done', 'done', 'done'],
    );
  });

  describe('against a Temporal server and workers elsewhere', () => {
    let workers: TestSession;
    let flags: string[];
    before(async () => {
      workers = await testSession();
      flags = [
        '--address',
        await testTemporalAddress(),
        '--task-queue-prefix',
        workers.config.taskQueuePrefix,
        '--store',
        pathToFileURL(join(workers.dir, 'artifacts')).href,
      ];
    });
    after(() => workers.dispose());

    it('detaches, and a later client reattaches with `status --watch`', async () => {
      const started = await ablate(['run', join(dir, 'slow.json'), '--detach', ...flags]);
      assert.equal(started.code, 0, started.stderr);
      const runId = started.stdout.trim();
      assert.match(runId, /^slow-/);
      const watched = await ablate(['status', runId, '--watch', '--json', ...flags], { timeoutMs: 60_000 });
      assert.equal(watched.code, 0, watched.stderr);
      assert.equal(lastJsonLine<{ status: string }>(watched.stdout).status, 'completed');
    });

    it('cancels a run from another client', async () => {
      const started = await ablate(['run', join(dir, 'slow.json'), '--detach', '--no-cache', ...flags]);
      const runId = started.stdout.trim();
      const cancelled = await ablate(['cancel', runId, ...flags]);
      assert.equal(cancelled.code, 0, cancelled.stderr);
      assert.match(cancelled.stdout, new RegExp(`run ${runId}: cancelled`));
      const status = await ablate(['status', runId, '--json', ...flags]);
      assert.equal(lastJsonLine<{ workflowStatus: string }>(status.stdout).workflowStatus, 'CANCELLED');
    });
  });
});
