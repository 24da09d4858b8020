/**
 * Orchestration overhead on the embedded server: a chain of no-op steps (per-step overhead: workflow
 * task, activity dispatch, step records and provenance written, completion) and a 500-step fan-out
 * (throughput). Each step does nothing, so the time measured is ablate + Temporal. Side by side, in the
 * same run and on the same server: a plain Temporal workflow running a trivial activity in sequence
 * (bench/fixtures/raw-chain-workflow.ts), i.e. what Temporal alone costs per sequential activity here.
 *
 *   npm run bench -- orchestration [--json] [--chain N] [--fanout N] [--runs N]
 * Target: median overhead under 30 ms per step.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { NativeConnection, Worker } from '@temporalio/worker';

import { compilePipeline } from '../infra/compiler/compile';
import { startRun, waitForRun } from '../infra/runs';
import { openSession } from '../infra/session';
import { resolveConfig } from '../temporal.config';
import { argValue, median, report } from './_util';
import { QUEUES } from '../infra/task-queues';

const chainLength = Number(argValue('chain') ?? 50);
const fanout = Number(argValue('fanout') ?? 500);
const runs = Number(argValue('runs') ?? 3);

const home = await mkdtemp(join(tmpdir(), 'ablate-bench-orch-'));
const config = resolveConfig(
  { home, storeUrl: pathToFileURL(join(home, 'artifacts')).href, workerSlots: 16 },
  {},
);
const session = await openSession(config, { workers: { queues: QUEUES, workflows: true } });

async function timeRun(doc: object): Promise<{ ms: number; generations: number; done: number }> {
  const plan = compilePipeline(JSON.stringify(doc), { maxCells: 100_000 });
  const t0 = performance.now();
  const { runId } = await startRun(session, plan, { noCache: true });
  const { summary } = await waitForRun(session, runId);
  if (summary?.status !== 'completed') throw new Error(`benchmark run ${runId} ended ${summary?.status}`);
  return { ms: performance.now() - t0, generations: summary.generations, done: summary.counts.done };
}

try {
  const chainSteps: Record<string, object> = {};
  for (let i = 0; i < chainLength; i++)
    chainSteps[`s${i}`] = { uses: 'util.noop', with: { tag: i }, ...(i ? { needs: [`s${i - 1}`] } : {}) };
  const chain = { name: 'bench-chain', steps: chainSteps };
  const fan = {
    name: 'bench-fanout',
    grid: { i: Array.from({ length: fanout }, (_, i) => i) },
    steps: { work: { uses: 'util.noop', with: { tag: '${grid.i}' } } },
  };
  await timeRun({ name: 'warmup', steps: { a: { uses: 'util.noop' } } });
  const rawConnection = await NativeConnection.connect({ address: session.address });
  const rawWorker = await Worker.create({
    connection: rawConnection,
    taskQueue: 'bench-raw',
    workflowsPath: join(import.meta.dirname, 'fixtures', 'raw-chain-workflow.ts'),
    activities: { echo: async (i: number) => i },
  });
  const rawRunning = rawWorker.run();
  const timeRaw = async () => {
    const t0 = performance.now();
    await session.client.workflow.execute('rawChain', {
      taskQueue: 'bench-raw',
      workflowId: `raw-${Date.now()}`,
      args: [chainLength],
    });
    return performance.now() - t0;
  };
  await timeRaw();
  const chainMs: number[] = [];
  const rawMs: number[] = [];
  const fanMs: number[] = [];
  let fanGenerations = 0;
  for (let r = 0; r < runs; r++) {
    rawMs.push(await timeRaw());
    chainMs.push((await timeRun(chain)).ms);
    const f = await timeRun(fan);
    fanMs.push(f.ms);
    fanGenerations = f.generations;
  }
  rawWorker.shutdown();
  await rawRunning;
  await rawConnection.close();
  const chainMedian = median(chainMs);
  const fanMedian = median(fanMs);
  report(`orchestration: chain of ${chainLength} no-op steps, fan-out of ${fanout}`, {
    chainSteps: chainLength,
    runs,
    chainMedianMs: chainMedian,
    overheadPerStepMs: chainMedian / chainLength,
    overheadPerStepMsPerRun: chainMs.map((m) => m / chainLength),
    rawTemporalPerActivityMs: median(rawMs) / chainLength,
    ablateAbovePlainTemporalPerStepMs: (chainMedian - median(rawMs)) / chainLength,
    fanoutSteps: fanout,
    fanoutMedianMs: fanMedian,
    fanoutStepsPerSec: fanout / (fanMedian / 1000),
    fanoutGenerations: fanGenerations,
    workerSlots: config.workerSlots.cpu,
    maxParallel: config.maxParallel,
  });
} finally {
  await session.close();
  await rm(home, { recursive: true, force: true });
}
