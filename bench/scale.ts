/**
 * Plans of any size on the embedded server: runs plans of 1k, 10k and 100k trivial steps (cells of two
 * chained `util.noop` steps) and reports, per size, steps/s, the number of continue-as-new generations,
 * the largest history of any execution of the run (the run's generations and its step batches: events
 * and bytes), and the overhead per step against plain Temporal on the same server: a workflow running the
 * same number of trivial activities at the same parallelism (bench/fixtures/raw-fanout-workflow.ts).
 *
 *   npm run bench -- scale [--json] [--sizes 1000,10000,100000] [--parallel 64] [--slots 16]
 *
 * Measured 2026-12-03 on the shared 2-core machine (other jobs running): 1k steps 66 steps/s (plain
 * Temporal 231), 10k 100 steps/s (320), 100k 57 steps/s (228) in 28m44s, 21 generations, largest history
 * of any execution 4,172 events / 2.3 MB. Batches gather outcomes for up to 250 ms (pipeline-run.ts): at
 * 2k steps that took the run from 59 to 71 steps/s.
 *
 * Both sides pay the dev server (SQLite) per activity; ablate also writes each step's record,
 * provenance, OpenLineage events and cache entry, and advances its scheduler once per batch of outcomes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { NativeConnection, Worker } from '@temporalio/worker';

import { compilePipeline } from '../infra/compiler/compile';
import { startRun, waitForRun } from '../infra/runs';
import { openSession, type Session } from '../infra/session';
import { QUEUES } from '../infra/task-queues';
import { resolveConfig } from '../temporal.config';
import { argValue, report } from './_util';

const sizes = (argValue('sizes') ?? '1000,10000,100000').split(',').map(Number);
const parallel = Number(argValue('parallel') ?? 64);
const slots = Number(argValue('slots') ?? 16);
/** Activities per generation of the plain-Temporal baseline (3 events each, under the 51,200 limit). */
const RAW_PER_GENERATION = 10_000;

/** A plan of `steps` trivial steps: cells of two chained no-ops. */
export function trivialPlanDoc(steps: number, name = `scale-${steps}`): object {
  return {
    name,
    grid: { i: Array.from({ length: Math.ceil(steps / 2) }, (_, i) => i) },
    steps: {
      first: { uses: 'util.noop', with: { tag: '${grid.i}' } },
      second: { uses: 'util.noop', needs: ['first'], with: { tag: '${grid.i}' } },
    },
  };
}

/** The largest history among the run's executions: every generation of the run and every step batch. */
async function largestHistory(
  session: Session,
  runId: string,
): Promise<{ executions: number; maxEvents: number; maxBytes: number; runMaxEvents: number }> {
  let executions = 0;
  let maxEvents = 0;
  let maxBytes = 0;
  let runMaxEvents = 0;
  const query = `WorkflowId = "${runId}" OR WorkflowType = "stepBatch"`;
  for await (const wf of session.client.workflow.list({ query })) {
    if (wf.workflowId !== runId && !wf.workflowId.startsWith(`${runId}/`)) continue;
    executions++;
    maxEvents = Math.max(maxEvents, wf.historyLength);
    maxBytes = Math.max(maxBytes, wf.historySize ?? 0);
    if (wf.workflowId === runId) runMaxEvents = Math.max(runMaxEvents, wf.historyLength);
  }
  return { executions, maxEvents, maxBytes, runMaxEvents };
}

const home = await mkdtemp(join(tmpdir(), 'ablate-bench-scale-'));
const config = resolveConfig(
  { home, storeUrl: pathToFileURL(join(home, 'artifacts')).href, workerSlots: slots, maxParallel: parallel },
  {},
);
const session = await openSession(config, { workers: { queues: QUEUES, workflows: true } });
try {
  const rawConnection = await NativeConnection.connect({ address: session.address });
  const rawWorker = await Worker.create({
    connection: rawConnection,
    taskQueue: 'bench-raw',
    workflowsPath: join(import.meta.dirname, 'fixtures', 'raw-fanout-workflow.ts'),
    activities: { echo: async (i: number) => i },
    maxConcurrentActivityTaskExecutions: slots,
  });
  const rawRunning = rawWorker.run();
  const timeRaw = async (n: number) => {
    const t0 = performance.now();
    await session.client.workflow.execute('rawFanout', {
      taskQueue: 'bench-raw',
      workflowId: `raw-${n}-${Date.now()}`,
      args: [n, parallel, RAW_PER_GENERATION],
    });
    return performance.now() - t0;
  };
  const warm = compilePipeline(JSON.stringify(trivialPlanDoc(20, 'warmup')), { maxCells: 100_000 });
  await waitForRun(session, (await startRun(session, warm, { noCache: true })).runId);
  await timeRaw(20);

  const rows: Array<Record<string, number>> = [];
  for (const steps of sizes) {
    const t0 = performance.now();
    const plan = compilePipeline(JSON.stringify(trivialPlanDoc(steps)), { maxCells: 1_000_000 });
    const compileMs = performance.now() - t0;
    const t1 = performance.now();
    const { runId } = await startRun(session, plan, { noCache: true });
    const { summary } = await waitForRun(session, runId);
    const ms = performance.now() - t1;
    if (summary?.status !== 'completed' || summary.counts.done !== plan.steps.length)
      throw new Error(`benchmark run ${runId} ended ${summary?.status} (${JSON.stringify(summary?.counts)})`);
    const history = await largestHistory(session, runId);
    const rawMs = await timeRaw(plan.steps.length);
    const row = {
      steps: plan.steps.length,
      compileMs,
      runMs: ms,
      stepsPerSec: plan.steps.length / (ms / 1000),
      generations: summary.generations,
      executions: history.executions,
      largestHistoryEvents: history.maxEvents,
      largestHistoryBytes: history.maxBytes,
      runGenerationMaxEvents: history.runMaxEvents,
      plainTemporalMs: rawMs,
      plainTemporalStepsPerSec: plan.steps.length / (rawMs / 1000),
      overheadPerStepMs: (ms - rawMs) / plan.steps.length,
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  rawWorker.shutdown();
  await rawRunning;
  await rawConnection.close();
  report(`scale: plans of ${sizes.join(', ')} trivial steps, ${parallel} in flight, ${slots} worker slots`, {
    parallel,
    workerSlots: slots,
    rows,
  });
} finally {
  await session.close();
  await rm(home, { recursive: true, force: true });
}
