/**
 * `ablate run --slots gpu=N` on the embedded server: the gpu queue's steps run in N trainer processes
 * at once, and no trainer outlives `ablate run`, however it ends (SIGKILL included). A trainer that
 * cannot start is reported with its log; a run whose trainers all died is cancelled, not left waiting;
 * `ablate worker --parent-pid` notices a SIGKILLed parent even without an IPC channel.
 * Real processes; util.noop steps moved to the gpu queue stand in for training (same queue, same
 * workers, seconds instead of minutes).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import type { StepRecord } from '../../activities/runtime/run-records';
import { ablate, lastJsonLine, spawnAblate } from '../helpers/cli';
import { processesMentioning, waitForStderr, waitNoProcesses } from './procs';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'ablate.mjs');

const pipeline = (name: string, sleepMs: number) => ({
  name,
  steps: {
    a: { uses: 'util.noop', queue: 'gpu', heartbeatTimeout: '4s', with: { tag: 'a', sleepMs } },
    b: { uses: 'util.noop', queue: 'gpu', heartbeatTimeout: '4s', with: { tag: 'b', sleepMs } },
    c: { uses: 'util.noop', needs: ['a', 'b'], with: { tag: 'c' } },
  },
});

/** The trainer processes of a state directory (`ablate worker --queue gpu ... --home HOME`). */
function trainerPids(home: string): number[] {
  return processesMentioning(home).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--parent-pid');
    } catch {
      return false;
    }
  });
}

/**
 * Wait for `ablate run` to show `step` running: up to 2 minutes, since trainers start slowly on a busy
 * machine (CI runs two test files at once on 2 cores). On a timeout the run is stopped and the error
 * carries the logs of `home`.
 */
async function waitRunning(child: ChildProcess, home: string, step: string) {
  const watch = waitForStderr(child, new RegExp(`running\\s+${step} \\(util\\.noop\\)`), 120_000);
  try {
    await watch.match;
  } catch (err) {
    // Ctrl-C: the run detaches and stops the server and trainers it started, leaving nothing behind.
    child.kill('SIGINT');
    await Promise.race([watch.exit, new Promise((r) => setTimeout(r, 15_000))]);
    const logDir = join(home, 'logs');
    const logs = await readdir(logDir).catch(() => [] as string[]);
    const texts = await Promise.all(
      logs.map(async (n) => `--- ${n}\n${await readFile(join(logDir, n), 'utf8').catch(String)}`),
    );
    throw new Error(`${(err as Error).message}\n${texts.join('\n')}`);
  }
  return watch;
}

async function stepRecords(home: string, runId: string): Promise<StepRecord[]> {
  const dir = join(home, 'artifacts', 'records', 'runs', runId, 'steps');
  const names = await readdir(dir);
  return Promise.all(names.map(async (n) => JSON.parse(await readFile(join(dir, n), 'utf8')) as StepRecord));
}

describe('ablate run --slots gpu=N: trainer processes', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-cli-slots-'));
    await writeFile(join(dir, 'two.json'), JSON.stringify(pipeline('two', 3000)));
    await writeFile(join(dir, 'long.json'), JSON.stringify(pipeline('long', 60_000)));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('runs two independent gpu steps at once in two trainer processes, and leaves none behind', async () => {
    const home = join(dir, 'two');
    const env = { ABLATE_HOME: home, TEMPORAL_ADDRESS: '' };
    const r = await ablate(['run', join(dir, 'two.json'), '--slots', 'gpu=2', '--json'], {
      env,
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^2 trainer processes \(wasm, 1 thread each\); logs: .*trainer-N\.log$/m);
    // The trainers' CPU-fallback warning goes to their logs, not to the user's terminal.
    assert.doesNotMatch(r.stderr, /WARNING/);
    const out = lastJsonLine<{
      runId: string;
      status: string;
      breakdown: {
        workerProcesses: number;
        kinds: Array<{ uses: string; ran: number }>;
        measured: { processes: number };
      };
    }>(r.stdout);
    assert.equal(out.status, 'completed');
    // Where the time went: 3 noop steps, in 3 processes (2 trainers and ablate run), all 3 measured.
    assert.deepEqual(
      out.breakdown.kinds.map((k) => [k.uses, k.ran]),
      [['util.noop', 3]],
    );
    assert.equal(out.breakdown.workerProcesses, 3);
    assert.equal(out.breakdown.measured.processes, 3);
    assert.match(r.stdout, /^cores busy, measured: \d+% \(CPU time of 3 ablate processes: /m);

    const records = await stepRecords(home, out.runId);
    const byLabel = new Map(records.map((s) => [s.label, s]));
    const [a, b, c] = ['a', 'b', 'c'].map((l) => byLabel.get(l)!);
    assert.ok(a?.worker && b?.worker && c?.worker, JSON.stringify(records));
    assert.equal(a.worker.taskQueue, 'ablate-gpu');
    assert.notEqual(a.worker.pid, b.worker.pid, 'a and b ran in the same process');
    // Neither in `ablate run` itself, which ran the cpu step c.
    assert.equal(c.worker.taskQueue, 'ablate-cpu');
    assert.ok(![a.worker.pid, b.worker.pid].includes(c.worker.pid));
    // At once: each sleeps 3 s, and they overlap.
    const overlapMs =
      Math.min(Date.parse(a.endedAt), Date.parse(b.endedAt)) -
      Math.max(Date.parse(a.startedAt), Date.parse(b.startedAt));
    assert.ok(overlapMs > 1_500, `a and b overlapped ${overlapMs} ms`);

    for (const n of [1, 2]) {
      const log = await readFile(join(home, 'logs', `trainer-${n}.log`), 'utf8');
      assert.match(log, /worker: queue gpu \(ablate-gpu\), 1 slot\(s\)/);
    }
    assert.deepEqual(await waitNoProcesses(home, 10_000), []);
  });

  it('SIGKILL of `ablate run` leaves no trainer process alive within seconds', async () => {
    const home = join(dir, 'kill');
    const child = spawnAblate(['run', join(dir, 'long.json'), '--slots', 'gpu=2'], {
      env: { ABLATE_HOME: home, TEMPORAL_ADDRESS: '' },
    });
    const watch = await waitRunning(child, home, 'a');
    const trainers = trainerPids(home);
    assert.equal(trainers.length, 2, `trainers: ${trainers.join(', ')}\n${watch.text()}`);
    child.kill('SIGKILL');
    await watch.exit;
    // Each trainer notices within a second and winds down (running steps get 5 s).
    const started = Date.now();
    const left = await waitNoProcesses(home, 15_000);
    assert.deepEqual(
      left.filter((pid) => trainers.includes(pid)),
      [],
      `trainers still alive after ${Date.now() - started} ms`,
    );
    for (const n of [1, 2])
      assert.match(
        await readFile(join(home, 'logs', `trainer-${n}.log`), 'utf8'),
        /the parent process \(pid \d+\) is gone \((channel closed|re-parented)\): stopping/,
      );
    // The last of them to leave stopped the embedded server too.
    assert.deepEqual(left, []);
  });

  it('Ctrl-C detaches (exit 130) and stops the trainers; one trainer dying is reported, the other goes on', async () => {
    const home = join(dir, 'int');
    const child = spawnAblate(['run', join(dir, 'long.json'), '--slots', 'gpu=2'], {
      env: { ABLATE_HOME: home, TEMPORAL_ADDRESS: '' },
    });
    const watch = await waitRunning(child, home, 'b');
    const [first, second] = trainerPids(home);
    process.kill(first!, 'SIGKILL');
    const lost = waitForStderr(
      child,
      /^trainer \d \(pid (\d+)\) exited \(SIGKILL; log \S+\); 1 of 2 still train$/m,
    );
    assert.equal(Number((await lost.match)[1]), first);
    child.kill('SIGINT');
    assert.equal(await watch.exit, 130, watch.text());
    assert.match(watch.text(), /^detached from long-\S+;/m);
    assert.equal(
      processesMentioning(home).includes(second!),
      false,
      'the surviving trainer outlived ablate run',
    );
    assert.deepEqual(await waitNoProcesses(home, 15_000), []);
  });

  it('`status RUN --watch --slots gpu=2` resumes a detached run with trainer processes', async () => {
    const home = join(dir, 'resume');
    const env = { ABLATE_HOME: home, TEMPORAL_ADDRESS: '' };
    const child = spawnAblate(['run', join(dir, 'two.json')], { env });
    const watch = await waitRunning(child, home, 'a');
    child.kill('SIGINT');
    assert.equal(await watch.exit, 130, watch.text());
    const runId = /detached from (two-\S+);/.exec(watch.text())![1]!;
    const resumed = await ablate(['status', runId, '--watch', '--slots', 'gpu=2', '--json'], {
      env,
      timeoutMs: 120_000,
    });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /^2 trainer processes /m);
    assert.equal(lastJsonLine<{ status: string }>(resumed.stdout).status, 'completed');
    const records = await stepRecords(home, runId);
    const [b, c] = ['b', 'c'].map((l) => records.find((r) => r.label === l)!);
    // b waited for `ablate run`'s one gpu slot and never started before the detach: a trainer ran it,
    // not the `status` process that ran the cpu step c.
    assert.equal(b!.worker?.taskQueue, 'ablate-gpu');
    assert.equal(c!.worker?.taskQueue, 'ablate-cpu');
    assert.notEqual(b!.worker?.pid, c!.worker?.pid);
    assert.deepEqual(await waitNoProcesses(home, 15_000), []);
  });

  it('`ablate worker --parent-pid` without an IPC channel stops when its parent is SIGKILLed', async () => {
    const home = join(dir, 'orphan');
    // bash is the parent; the worker has no IPC channel, so only the parent-pid poll can notice.
    const sh = spawn(
      'bash',
      [
        '-c',
        `"${process.execPath}" "${BIN}" worker --queue cpu --no-workflows --home "${home}" --parent-pid $$ & wait`,
      ],
      { env: { ...process.env, TEMPORAL_ADDRESS: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const ready = waitForStderr(sh, /worker: queue cpu/);
    await ready.match;
    const shExited = new Promise((r) => sh.once('exit', r));
    sh.kill('SIGKILL');
    // Until bash is gone its own command line still mentions --parent-pid.
    await shExited;
    const worker = processesMentioning(home).filter((pid) =>
      readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--parent-pid'),
    );
    assert.equal(worker.length, 1);
    assert.deepEqual(await waitNoProcesses(home, 15_000), []);
  });

  it('a trainer that cannot start is reported with its log, and nothing is left running', async () => {
    const home = join(dir, 'bad');
    const r = await ablate(['run', join(dir, 'two.json'), '--slots', 'gpu=2'], {
      env: { ABLATE_HOME: home, TEMPORAL_ADDRESS: '', ABLATE_TFJS_BACKEND: 'bogus' },
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 3, r.stderr);
    assert.match(
      r.stderr,
      /trainer \d \(pid \d+\) exited before it was ready \(see \S+trainer-\d\.log\): .*ABLATE_TFJS_BACKEND=bogus is not a backend/,
    );
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    assert.deepEqual(await waitNoProcesses(home, 15_000), []);
  });

  it('when every trainer dies mid-run, says so and cancels the run instead of waiting forever', async () => {
    const home = join(dir, 'die');
    const child = spawnAblate(['run', join(dir, 'long.json'), '--slots', 'gpu=2', '--json'], {
      env: { ABLATE_HOME: home, TEMPORAL_ADDRESS: '' },
    });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const watch = await waitRunning(child, home, 'a');
    for (const pid of trainerPids(home)) process.kill(pid, 'SIGKILL');
    const code = await Promise.race([
      watch.exit,
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000)),
    ]);
    if (code === 'timeout') child.kill('SIGKILL');
    assert.equal(code, 1, watch.text());
    assert.match(
      watch.text(),
      /^all 2 trainer processes exited \(trainer 1: SIGKILL, trainer 2: SIGKILL; logs: \S+trainer-N\.log\): cancelling run long-\S+$/m,
    );
    // The steps on the killed trainers end at their heartbeat timeout; the run ends either way.
    assert.match(lastJsonLine<{ status: string }>(stdout).status, /^(cancelled|failed)$/);
    assert.deepEqual(await waitNoProcesses(home, 15_000), []);
  });
});
