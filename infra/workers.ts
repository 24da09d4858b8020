/**
 * Temporal workers for ablate: one per step queue. The cpu queue's worker also runs the pipeline
 * workflows. GPU hosts run `ablate worker --queue gpu` (activities only).
 */
import { createHash } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  bundleWorkflowCode,
  DefaultLogger,
  type LogEntry,
  NativeConnection,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';

import { createActivities } from '../activities/runtime/activities';
import { STOP_GRACE_MS, sweepOrphanWorkDirs } from '../activities/runtime/work-dirs';
import type { QueueName } from '../workflows/plan-types';
import type { ArtifactStore } from './store/index';
import { LocalCache } from './store/local-cache';
import { taskQueueName } from './task-queues';

const WORKFLOWS_DIR = fileURLToPath(new URL('../workflows', import.meta.url));

let runtimeInstalled = false;
let sdkLogging: { file?: string; debug: boolean } = { debug: false };

/**
 * Where the SDK's own messages go: appended to `file` (e.g. `<home>/logs/sdk.log`), and to stderr
 * only with `debug`. They are for developers ("No workflows registered", "Activity failed" with a
 * stack and a task token); ablate prints its own one-line account of a failed step.
 */
export function configureSdkLogging(options: { file?: string; debug: boolean }): void {
  sdkLogging = options;
}

function writeSdkLog(entry: LogEntry): void {
  const meta = JSON.stringify(entry.meta ?? {}, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
  const at = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  const line = `${at} [${entry.level}] ${entry.message} ${meta}\n`;
  if (sdkLogging.file) {
    try {
      appendFileSync(sdkLogging.file, line);
    } catch {
      // The log is a convenience: a full disk must not take the worker down with it.
    }
  }
  if (sdkLogging.debug || !sdkLogging.file) process.stderr.write(line);
}

/**
 * Install the Temporal runtime once per process: SDK logs at INFO into the SDK log (see
 * {@link configureSdkLogging}), and no signal handlers (ablate's commands handle Ctrl-C themselves,
 * to stop workers and the embedded server in order).
 */
export function installRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({
    logger: new DefaultLogger(sdkLogging.debug ? 'DEBUG' : 'INFO', writeSdkLog),
    shutdownSignals: [],
  });
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/**
 * The workflow bundle, built once per process and cached on disk under `cacheDir`, keyed by the hash
 * of the workflow sources and the SDK version (bundling takes seconds on a small machine).
 */
export function workflowBundle(cacheDir: string): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= (async () => {
    const hash = createHash('sha256');
    const sdk = JSON.parse(
      await readFile(new URL('../node_modules/@temporalio/workflow/package.json', import.meta.url), 'utf8'),
    ) as { version: string };
    hash.update(sdk.version);
    for (const f of (await readdir(WORKFLOWS_DIR)).filter((n) => n.endsWith('.ts')).sort()) {
      hash.update(f).update(await readFile(join(WORKFLOWS_DIR, f)));
    }
    const file = join(cacheDir, `workflow-bundle-${hash.digest('hex').slice(0, 16)}.json`);
    try {
      return JSON.parse(await readFile(file, 'utf8')) as WorkflowBundleWithSourceMap;
    } catch {
      const built = await bundleWorkflowCode({
        workflowsPath: join(WORKFLOWS_DIR, 'index.ts'),
        logger: new DefaultLogger('WARN'),
      });
      await mkdir(cacheDir, { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(built));
      await rename(tmp, file);
      return built;
    }
  })();
  return bundle;
}

export interface WorkerSetOptions {
  address: string;
  namespace: string;
  taskQueuePrefix: string;
  /** Step queues to serve with activities. */
  queues: readonly QueueName[];
  /** Steps at once, per queue. */
  slots: Record<QueueName, number>;
  store: ArtifactStore;
  /** The cache of step inputs on this host (shared by its worker processes). */
  inputCache?: { dir: string; maxBytes: number };
  /** Also run the pipeline workflows (on the cpu task queue). */
  workflows: boolean;
  /** Where the workflow bundle is cached. */
  cacheDir: string;
}

export interface WorkerSet {
  /** Settles when every worker has stopped. */
  done: Promise<void>;
  /** Stop polling, let running steps finish for a moment, then cancel them. */
  shutdown(): Promise<void>;
}

export async function startWorkers(options: WorkerSetOptions): Promise<WorkerSet> {
  installRuntime();
  // Work directories of SIGKILLed workers on this machine (no process left to remove them).
  await sweepOrphanWorkDirs();
  const connection = await NativeConnection.connect({ address: options.address });
  const cache = options.inputCache ? new LocalCache(options.store, options.inputCache) : undefined;
  const activities = createActivities({ store: options.store, ...(cache ? { cache } : {}) });
  const workers: Worker[] = [];
  const queues = new Set<QueueName>(options.queues);
  if (options.workflows) queues.add('cpu');
  for (const queue of queues) {
    const withActivities = options.queues.includes(queue);
    const withWorkflows = options.workflows && queue === 'cpu';
    workers.push(
      await Worker.create({
        connection,
        namespace: options.namespace,
        taskQueue: taskQueueName(options.taskQueuePrefix, queue),
        ...(withActivities ? { activities, maxConcurrentActivityTaskExecutions: options.slots[queue] } : {}),
        ...(withWorkflows ? { workflowBundle: await workflowBundle(options.cacheDir) } : {}),
        // Heartbeats reach the server within 2 s, so progress is live and cancellation is prompt.
        maxHeartbeatThrottleInterval: '2s',
        // On shutdown, running steps get this long to finish before they are cancelled; cancelled, a
        // training step saves a final checkpoint (bounded) and is retried elsewhere from it.
        shutdownGraceTime: '5s',
        // Never hang on a step that ignores cancellation: the grace, the bounded stop, and a margin.
        shutdownForceTime: 5_000 + STOP_GRACE_MS + 15_000,
      }),
    );
  }
  const done = Promise.all(workers.map((w) => w.run())).then(() => undefined);
  let stopping: Promise<void> | undefined;
  return {
    done,
    shutdown: () =>
      (stopping ??= (async () => {
        for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
        await done.catch(() => undefined);
        await connection.close();
      })()),
  };
}
