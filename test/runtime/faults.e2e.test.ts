/**
 * Real faults against real processes: `ablate worker` processes on the test Temporal server, killed
 * with real signals mid-training, a checkpoint corrupted on disk, `ablate cancel` and `ablate resume`.
 * Training is toy-sized (32 px, width 4) so the whole file takes a few minutes, most of it the 30 s
 * heartbeat timeout after a SIGKILL, which is the behaviour under test.
 *
 * What a user would notice is asserted: the same final bytes as an uninterrupted run, how long the
 * retry took to resume and from where, what `ablate status` said meanwhile, what is left in the temp
 * directory.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { defaultPayloadConverter } from '@temporalio/common';

import type { CheckpointIndexRecord } from '../../activities/runtime/checkpoint-index';
import type { StepHeartbeat } from '../../activities/runtime/run-step';
import type { RunSummary, StepRecord } from '../../activities/runtime/run-records';
import { getRunView, waitForRun } from '../../infra/runs';
import type { ArtifactRef } from '../../workflows/plan-types';
import { openStore } from '../../infra/store/index';
import { ablate, lastJsonLine, spawnAblate } from '../helpers/cli';
import { testSession, testTemporalAddress, type TestSession } from '../helpers/temporal';

// Sized for an idle 2-core machine, where a 32 px tiny detector trains at ~30 ms per iteration: the
// faults must land mid-training (a kill at iteration 8..ITERATIONS-16, an `ablate cancel` or a worker's
// 5 s shutdown grace after iteration 8 of LONG), however fast the machine is.
const ITERATIONS = 200;
const LONG = 1200;

function pipeline(name: string, seeds: number[], iterations: number, retry?: { maxAttempts: number }) {
  return {
    name,
    grid: { seed: seeds },
    steps: {
      data: {
        uses: 'dataset.synth',
        with: { task: 'detection', format: 'coco', images: 16, valImages: 4, seed: 5, size: 32, classes: 2 },
      },
      train: {
        uses: 'train.detector',
        ...(retry ? { retry } : {}),
        with: {
          images: '${steps.data.outputs.images}',
          train: '${steps.data.outputs.train}',
          val: '${steps.data.outputs.val}',
          init: 'scratch',
          norm: 'gn',
          schedule: '1x',
          baseIterations: iterations,
          width: 4,
          batchSize: 4,
          imageSize: 32,
          seed: '${grid.seed}',
          checkpointEvery: 5,
          evalEvery: 10,
          backend: 'wasm',
        },
      },
    },
  };
}

/** Deterministic "random" kill points: a small LCG per test seed. */
function killIteration(seed: number): number {
  const x = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return 8 + (x % (ITERATIONS - 16));
}

interface Pending {
  key: string;
  attempt: number;
  workerPid?: number;
  heartbeat?: StepHeartbeat;
}

describe('fault tolerance with real workers', { timeout: 600_000 }, () => {
  let dir: string;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let session: TestSession;
  const workers = new Set<ChildProcess>();
  const files: Record<string, string> = {};

  async function startWorker(queue: 'cpu' | 'gpu'): Promise<ChildProcess> {
    // This machine has no GPU: gpu-queue workers train on CPU, which they refuse unless told so.
    const args = ['worker', '--queue', queue, '--slots', queue === 'gpu' ? '1' : '4'];
    if (queue === 'gpu') args.push('--allow-cpu-fallback');
    const child = spawnAblate(args, { env });
    workers.add(child);
    const log = createWriteStream(join(dir, `worker-${queue}-${child.pid}.log`));
    child.stderr!.pipe(log);
    child.once('exit', () => workers.delete(child));
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes(`worker: queue ${queue}`)) resolve();
      });
      child.once('exit', (code) => reject(new Error(`worker exited ${code}: ${stderr}`)));
    });
    return child;
  }

  /** Step keys (activity ids) of the steps of `uses` in a run's plan. */
  async function keysOf(runId: string, uses: string): Promise<Set<string>> {
    const view = await getRunView(session, runId);
    return new Set(view.steps.filter((s) => s.uses === uses).map((s) => s.key));
  }

  /** The run's step activities now pending: they belong to its step batches (workflows/step-batch.ts). */
  async function pending(runId: string): Promise<Pending[]> {
    const out: Pending[] = [];
    const batches = session.client.workflow.list({
      query: 'WorkflowType = "stepBatch" AND ExecutionStatus = "Running"',
    });
    for await (const wf of batches) {
      if (!wf.workflowId.startsWith(`${runId}/`)) continue;
      const desc = await session.client.workflow.getHandle(wf.workflowId, wf.runId).describe();
      for (const p of desc.raw.pendingActivities ?? []) {
        const payload = p.heartbeatDetails?.payloads?.[0];
        out.push({
          key: p.activityId ?? '',
          attempt: p.attempt ?? 1,
          workerPid: p.lastWorkerIdentity ? Number(p.lastWorkerIdentity.split('@')[0]) : undefined,
          heartbeat: payload ? defaultPayloadConverter.fromPayload<StepHeartbeat>(payload) : undefined,
        });
      }
    }
    return out;
  }

  async function startRun(file: string, ...flags: string[]): Promise<string> {
    const r = await ablate(['run', file, '--detach', ...flags], { env });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  }

  async function summaryOf(runId: string): Promise<RunSummary> {
    const { summary } = await waitForRun(session, runId);
    assert.ok(summary, `run ${runId} has a summary`);
    return summary;
  }

  const trainSteps = (s: RunSummary) => s.steps.filter((x) => x.uses === 'train.detector');
  const weightsOf = (s: RunSummary) => trainSteps(s).map((x) => (x.outputs?.weights as ArtifactRef).digest);
  const workDirsLeft = async () => (await readdir(work)).filter((n) => n.startsWith('ablate-work-'));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-test-faults-'));
    work = join(dir, 'tmp');
    await mkdir(work);
    const prefix = `t-${randomBytes(4).toString('hex')}`;
    env = {
      TEMPORAL_ADDRESS: await testTemporalAddress(),
      ABLATE_HOME: join(dir, 'home'),
      ABLATE_STORE_URL: pathToFileURL(join(dir, 'artifacts')).href,
      ABLATE_TASK_QUEUE_PREFIX: prefix,
      ABLATE_WASM_THREADS: '1',
      // Workers' scratch space, so the test can see what is left in it.
      TMPDIR: work,
    };
    session = await testSession({ workers: false, storeDir: dir, prefix });
    for (const [name, doc] of Object.entries({
      grid: pipeline('failover', [1, 2, 3], ITERATIONS),
      // Long enough that `ablate cancel` (a process start) and a worker's 5 s grace land mid-training.
      one: pipeline('cancel', [4], LONG),
      once: pipeline('fail-once', [5], LONG, { maxAttempts: 1 }),
    })) {
      files[name] = join(dir, `${name}.json`);
      await writeFile(files[name], JSON.stringify(doc));
    }
    await startWorker('cpu');
  });

  after(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await session?.dispose();
    if (process.env.ABLATE_TEST_KEEP) console.log(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  });

  it('a SIGKILLed worker: retried within 60 s on the waiting worker, from its checkpoint, to the same bytes', async () => {
    const gpu = await Promise.all([1, 2, 3, 4].map(() => startWorker('gpu')));
    const reference = await summaryOf(await startRun(files.grid!));
    assert.equal(reference.status, 'completed');
    const expected = weightsOf(reference);

    const runId = await startRun(files.grid!, '--no-cache');
    const trainKeys = await keysOf(runId, 'train.detector');
    const targets = new Map<string, number>();
    const killedAt = new Map<string, { ms: number; iteration: number; checkpoint: number }>();
    const resumedAfterMs = new Map<string, number>();
    const statusLines = new Set<string>();
    let seed = 0;
    while ((await session.client.workflow.getHandle(runId).describe()).status.name === 'RUNNING') {
      for (const p of (await pending(runId)).filter((x) => trainKeys.has(x.key))) {
        if (!targets.has(p.key) && p.heartbeat?.progress.iteration !== undefined)
          targets.set(p.key, killIteration(++seed));
        const iteration = p.heartbeat?.progress.iteration ?? 0;
        if (p.attempt === 1 && !killedAt.has(p.key) && iteration >= (targets.get(p.key) ?? Infinity)) {
          const victim = gpu.find((w) => w.pid === p.workerPid);
          assert.ok(victim, `step ${p.key} runs on one of our workers (pid ${p.workerPid})`);
          victim.kill('SIGKILL');
          killedAt.set(p.key, {
            ms: Date.now(),
            iteration,
            checkpoint: p.heartbeat?.progress.checkpointIteration ?? 0,
          });
          // The machine is replaced; the waiting worker takes the retry meanwhile.
          void startWorker('gpu').then((w) => gpu.push(w));
        }
        const killed = killedAt.get(p.key);
        if (killed && p.attempt >= 2 && !resumedAfterMs.has(p.key) && p.heartbeat?.progress.iteration)
          resumedAfterMs.set(p.key, Date.now() - killed.ms);
      }
      const view = await getRunView(session, runId).catch(() => undefined);
      for (const s of view?.steps ?? [])
        if (s.progress?.message?.startsWith('retrying')) statusLines.add(s.progress.message);
      await new Promise((r) => setTimeout(r, 250));
    }
    const summary = await summaryOf(runId);
    assert.equal(summary.status, 'completed');
    assert.equal(killedAt.size, 3, 'every training step was killed once');
    assert.deepEqual(weightsOf(summary), expected, 'the same final weights as the uninterrupted run');
    assert.deepEqual(
      trainSteps(summary).map((x) => (x.outputs?.detections as ArtifactRef).digest),
      trainSteps(reference).map((x) => (x.outputs?.detections as ArtifactRef).digest),
    );
    for (const step of trainSteps(summary)) {
      const killed = killedAt.get(step.key)!;
      assert.ok(
        resumedAfterMs.get(step.key)! < 60_000,
        `resumed ${resumedAfterMs.get(step.key)} ms after SIGKILL`,
      );
      // The heartbeat the test saw may lag the worker by a checkpoint (heartbeats are throttled).
      const from = step.resumedFrom?.iteration ?? -1;
      assert.ok(
        from >= killed.checkpoint && from > 0,
        `resumed from ${from}, last heartbeat said ${killed.checkpoint}`,
      );
      console.log(
        `[figures] ${step.label}: SIGKILL at iteration ${killed.iteration} (last heartbeat), resumed from ${from} ` +
          `(about ${Math.max(0, killed.iteration - from)} iterations lost) ${(resumedAfterMs.get(step.key)! / 1000).toFixed(1)} s later`,
      );
    }
    for (const line of statusLines) assert.match(line, /^retrying: worker lost \(attempt 2\)$/);
    console.log(
      `[figures] status lines seen: ${[...statusLines].join(' | ') || 'none (the retry started at once)'}`,
    );
    for (const w of gpu) w.kill('SIGTERM');
  });

  /** Waits until the step running `uses` in `runId` reports at least `iteration`; returns what it reported. */
  async function waitForIteration(runId: string, iteration: number): Promise<number> {
    const trainKeys = await keysOf(runId, 'train.detector');
    for (;;) {
      const p = (await pending(runId)).find((x) => trainKeys.has(x.key));
      const seen = p?.heartbeat?.progress.iteration ?? 0;
      if (seen >= iteration) return seen;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The checkpoint index entries a run saved (newest first), from any cache key. */
  async function checkpointsOf(runId: string, store = session.store) {
    for (const key of await store.listRecords('checkpoints/')) {
      const record = await store.getRecord<CheckpointIndexRecord>(key);
      const own = record?.entries.filter((e) => e.runId === runId) ?? [];
      if (own.length > 0) return { cacheKey: record!.cacheKey, entries: own };
    }
    return { cacheKey: '', entries: [] };
  }

  let seed4Weights: string | undefined;

  it('ablate cancel mid-training stops it within 30 s with a final checkpoint; ablate resume continues from it', async () => {
    const gpu = await startWorker('gpu');
    const runId = await startRun(files.one!);
    const seen = await waitForIteration(runId, 8);
    const t0 = Date.now();
    const cancel = await ablate(['cancel', runId], { env });
    const stopMs = Date.now() - t0;
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.equal(cancel.stdout.trim(), `run ${runId}: cancelled`);
    assert.ok(stopMs < 30_000, `stopped ${stopMs} ms after the cancel request`);
    const { cacheKey, entries } = await checkpointsOf(runId);
    const final = entries[0]!;
    assert.ok(final.iteration >= seen && final.iteration < LONG, `final checkpoint at ${final.iteration}`);
    assert.ok(await session.store.has(final.ref.digest));
    assert.ok(cacheKey);
    assert.deepEqual(await workDirsLeft(), [], 'no work directory remains');
    console.log(
      `[figures] cancel: stopped ${(stopMs / 1000).toFixed(1)} s after the request, final checkpoint at ${final.iteration}`,
    );

    const [dataKey] = await keysOf(runId, 'dataset.synth');
    const dataRecordBefore = await session.store.getRecord<StepRecord>(`runs/${runId}/steps/${dataKey}`);
    const resumed = await ablate(['resume', runId, '--json'], { env, timeoutMs: 300_000 });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(
      resumed.stderr,
      new RegExp(`run ${runId} \\(cancelled\\) resumed: 1 step\\(s\\) reused, 1 to run`),
    );
    const out = lastJsonLine<{
      status: string;
      steps: Record<
        string,
        { uses: string; status: string; resumedFrom?: { iteration: number; checkpoint: ArtifactRef } }
      >;
    }>(resumed.stdout);
    assert.equal(out.status, 'completed');
    const train = Object.values(out.steps).find((x) => x.uses === 'train.detector')!;
    assert.equal(train.resumedFrom?.iteration, final.iteration);
    assert.equal(train.resumedFrom?.checkpoint.digest, final.ref.digest);
    // Reused: it keeps the status it finished with in the first execution (computed, or from the cache).
    assert.ok(['done', 'cached'].includes(out.steps[dataKey!]?.status ?? ''), out.steps[dataKey!]?.status);
    assert.deepEqual(
      await session.store.getRecord<StepRecord>(`runs/${runId}/steps/${dataKey}`),
      dataRecordBefore,
      'the dataset step was reused, not rerun',
    );
    const summary = (await session.store.getRecord<RunSummary>(`runs/${runId}/summary`))!;
    seed4Weights = (trainSteps(summary)[0]!.outputs!.weights as ArtifactRef).digest;
    // Lineage names the checkpoint as an input of the resumed step.
    const provenance = await session.store.getJson<{ inputs: Array<{ path: string; digest: string }> }>(
      trainSteps(summary)[0]!.provenance!,
    );
    assert.ok(provenance.inputs.some((i) => i.path === '#resumedFrom' && i.digest === final.ref.digest));
    gpu.kill('SIGTERM');
  });

  it('SIGTERM on a worker writes a final checkpoint; ablate resume of the failed run reuses its completed steps', async () => {
    await startWorker('gpu');
    const runId = await startRun(files.once!);
    const seen = await waitForIteration(runId, 8);
    // The worker that runs the step (gpu workers of earlier tests may still be up): SIGTERM that one.
    const trainKeys = await keysOf(runId, 'train.detector');
    const running = (await pending(runId)).find((x) => trainKeys.has(x.key));
    const gpu = [...workers].find((w) => w.pid === running?.workerPid);
    assert.ok(gpu, `the step runs on one of our workers (pid ${running?.workerPid})`);
    const exited = new Promise<number | null>((r) => gpu.once('exit', (code) => r(code)));
    const t0 = Date.now();
    gpu.kill('SIGTERM');
    // A graceful stop on SIGTERM exits 143, as every ablate command does (see `ablate --help`).
    assert.equal(await exited, 143);
    const stopMs = Date.now() - t0;
    const summary = await summaryOf(runId);
    assert.equal(summary.status, 'failed');
    const { entries } = await checkpointsOf(runId);
    assert.ok(
      entries[0]!.iteration > seen,
      `final checkpoint at ${entries[0]?.iteration}, last seen ${seen}`,
    );
    assert.ok(stopMs < 45_000, `worker stopped ${stopMs} ms after SIGTERM`);
    assert.deepEqual(await workDirsLeft(), [], 'no work directory remains');

    const next = await startWorker('gpu');
    const resumed = await ablate(['resume', runId, '--json'], { env, timeoutMs: 300_000 });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /\(failed\) resumed: 1 step\(s\) reused, 1 to run/);
    const out = lastJsonLine<{
      status: string;
      steps: Record<string, { uses: string; status: string; resumedFrom?: { iteration: number } }>;
    }>(resumed.stdout);
    assert.equal(out.status, 'completed');
    const train = Object.values(out.steps).find((x) => x.uses === 'train.detector')!;
    assert.equal(train.resumedFrom?.iteration, entries[0]!.iteration);
    next.kill('SIGTERM');
  });

  it('SIGKILL of the client and its embedded server: running the file again continues, past a corrupt newest checkpoint', async () => {
    const home = join(dir, 'embedded');
    const embeddedEnv = { ...env, TEMPORAL_ADDRESS: '', ABLATE_HOME: home, ABLATE_STORE_URL: '' };
    const store = await openStore(pathToFileURL(join(home, 'artifacts')).href);
    const client = spawnAblate(['run', files.one!], { env: embeddedEnv });
    const clientExited = new Promise((r) => client.once('exit', r));
    let entries: CheckpointIndexRecord['entries'] = [];
    while (entries.length < 3) {
      const keys = await store.listRecords('checkpoints/').catch(() => []);
      entries = keys.length ? ((await store.getRecord<CheckpointIndexRecord>(keys[0]!))?.entries ?? []) : [];
      await new Promise((r) => setTimeout(r, 200));
    }
    const server = JSON.parse(await readFile(join(home, 'server.json'), 'utf8')) as { pid: number };
    client.kill('SIGKILL');
    process.kill(server.pid, 'SIGKILL');
    await clientExited;
    // The newest checkpoint is corrupted on disk; the one before it must be used.
    const [newest, previous] = entries as [
      CheckpointIndexRecord['entries'][0],
      CheckpointIndexRecord['entries'][0],
    ];
    await writeFile(fileURLToPath(newest.ref.uri), Buffer.alloc(newest.ref.sizeBytes, 1));

    const again = await ablate(['run', files.one!, '--json'], { env: embeddedEnv, timeoutMs: 300_000 });
    assert.equal(again.code, 0, again.stderr);
    const out = lastJsonLine<{
      status: string;
      steps: Record<
        string,
        {
          uses: string;
          status: string;
          outputs: Record<string, ArtifactRef>;
          resumedFrom?: { iteration: number };
        }
      >;
    }>(again.stdout);
    assert.equal(out.status, 'completed');
    const train = Object.values(out.steps).find((x) => x.uses === 'train.detector')!;
    // Never from the corrupted checkpoint: from the one before it, or from a later good one. (When the
    // server comes back, the crashed run's own step is retried too, from the same index, and may have
    // saved a newer checkpoint by the time the new run's step starts.)
    const from = train.resumedFrom?.iteration;
    const index = entries.map((e) => e.iteration).join(', ');
    assert.ok(
      from !== undefined && from !== newest.iteration && from >= previous.iteration,
      `resumed from ${JSON.stringify(train.resumedFrom)}; the index had ${index}, ${newest.iteration} corrupted`,
    );
    const after = (await store.getRecord<CheckpointIndexRecord>(
      (await store.listRecords('checkpoints/'))[0]!,
    ))!;
    assert.ok(
      !after.entries.some((e) => e.ref.digest === newest.ref.digest),
      'the corrupted checkpoint was dropped from the index',
    );
    if (seed4Weights)
      assert.equal(
        train.outputs.weights!.digest,
        seed4Weights,
        'the same weights as the cancelled-and-resumed run',
      );
  });
});
