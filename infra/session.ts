/**
 * A connection to Temporal for one CLI command: the configured frontend, or the embedded dev server
 * (started, or reused when another ablate process already runs it), optionally with in-process
 * workers, and the artifact store. `close()` winds down in order: abort the calls in flight (a long
 * poll cut by a closed channel crashes the gRPC client), stop the workers, close the connection, then
 * leave the server (which stops it when this was its last user).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client, Connection } from '@temporalio/client';

import type { AblateConfig } from '../temporal.config';
import { AblateError, ErrorType } from './errors';
import { ensureWritableDir, withTimeout } from './preflight';
import { isProcess } from './server/registry';
import { startDevServer, type DevServer } from './server/dev-server';
import { openStore, type ArtifactStore } from './store/index';
import { configureSdkLogging, startWorkers, type WorkerSet } from './workers';
import type { QueueName } from '../workflows/plan-types';

export interface SessionOptions {
  /** In-process workers: step queues to serve, and whether to run workflows. */
  workers?: { queues: readonly QueueName[]; workflows: boolean };
  /**
   * Skip the in-process workers when `ablate server start --workers` runs background workers for
   * this state directory (they do the work, and go on after this process ends).
   */
  preferBackgroundWorkers?: boolean;
  log?: (message: string) => void;
  /** SDK warnings to stderr too (not only to `<home>/logs/sdk.log`). */
  debug?: boolean;
}

export interface Session {
  client: Client;
  config: AblateConfig;
  store: ArtifactStore;
  address: string;
  /** Web UI base URL (embedded server with UI, or unknown for a remote cluster). */
  uiUrl: string | undefined;
  embedded: boolean;
  workers: WorkerSet | undefined;
  /** Pid of the background workers (`ablate server start --workers`) doing the work, if any. */
  backgroundWorkersPid: number | undefined;
  /** Where the SDK's log (worker warnings, failed activities with their stacks) goes. */
  sdkLogPath: string;
  /** Web UI link of a run. */
  runUrl(runId: string): string | undefined;
  /**
   * Run a Temporal call that `close()` may have to cut short (long polls, queries): `close()` aborts
   * it and waits for it to settle before closing the connection.
   */
  call<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export async function openSession(config: AblateConfig, options: SessionOptions = {}): Promise<Session> {
  const log = options.log ?? (() => undefined);
  const sdkLogPath = join(config.home, 'logs', 'sdk.log');
  if (!config.temporalAddress || options.workers) {
    await ensureWritableDir(
      config.home,
      'state directory',
      'set --home or ABLATE_HOME to a writable directory',
    );
    await ensureWritableDir(
      join(config.home, 'logs'),
      'log directory',
      'set --home or ABLATE_HOME to a writable directory',
    );
  }
  if (config.storeUrl.startsWith('file:'))
    await ensureWritableDir(
      fileURLToPath(config.storeUrl),
      'artifact store',
      'set --store or ABLATE_STORE_URL to a writable directory',
    );
  configureSdkLogging({ file: sdkLogPath, debug: options.debug === true });
  const store = await openStore(config.storeUrl, { transferConcurrency: config.transferConcurrency });
  // A wrong S3 endpoint, bucket or credentials should stop the command here, in one line, not fail
  // every step of a run later.
  if (config.storeUrl.startsWith('s3:'))
    await withTimeout(
      store.backend.exists('runs/.ablate-preflight'),
      30_000,
      `the artifact store ${config.storeUrl} did not answer within 30 s: check ABLATE_STORE_URL, AWS_ENDPOINT_URL and the network`,
    );
  let server: DevServer | undefined;
  let address = config.temporalAddress;
  if (!address) {
    server = await startDevServer({
      home: config.home,
      namespace: config.namespace,
      temporalBin: config.temporalBin,
      log,
    });
    address = server.address;
  }
  const background = server?.record.workers;
  const backgroundWorkersPid = background && isProcess(background.pid, 'ablate') ? background.pid : undefined;
  let connection: Connection | undefined;
  let workers: WorkerSet | undefined;
  try {
    connection = await connect(address, config.namespace, server !== undefined);
    if (options.workers && !(options.preferBackgroundWorkers && backgroundWorkersPid)) {
      workers = await startWorkers({
        address,
        namespace: config.namespace,
        taskQueuePrefix: config.taskQueuePrefix,
        queues: options.workers.queues,
        slots: config.workerSlots,
        store,
        workflows: options.workers.workflows,
        cacheDir: join(config.home, 'cache'),
        inputCache: { dir: config.workerCacheDir, maxBytes: config.workerCacheBytes },
      });
    }
  } catch (err) {
    await connection?.close();
    await server?.stop();
    throw err;
  }
  const client = new Client({ connection, namespace: config.namespace });
  const uiUrl = server?.uiUrl;
  let closing: Promise<void> | undefined;
  const aborter = new AbortController();
  const inFlight = new Set<Promise<unknown>>();
  return {
    backgroundWorkersPid,
    sdkLogPath,
    call<T>(fn: () => Promise<T>): Promise<T> {
      // One controller per call, linked to the session's: the SDK adds an abort listener per call and
      // never removes it, which would pile up on one long-lived signal.
      const own = new AbortController();
      const onAbort = () => own.abort();
      if (aborter.signal.aborted) own.abort();
      else aborter.signal.addEventListener('abort', onAbort, { once: true });
      const p = connection.withAbortSignal(own.signal, fn);
      inFlight.add(p);
      void p
        .catch(() => undefined)
        .finally(() => {
          inFlight.delete(p);
          aborter.signal.removeEventListener('abort', onAbort);
        });
      return p;
    },
    client,
    config,
    store,
    address,
    uiUrl,
    embedded: server !== undefined,
    workers,
    runUrl: (runId) =>
      uiUrl ? `${uiUrl}/namespaces/${config.namespace}/workflows/${encodeURIComponent(runId)}` : undefined,
    close: () =>
      (closing ??= (async () => {
        aborter.abort();
        await Promise.race([
          Promise.allSettled([...inFlight]),
          new Promise((r) => setTimeout(r, 5_000).unref()),
        ]);
        try {
          await workers?.shutdown();
          await connection.close();
        } finally {
          await server?.stop();
        }
      })()),
  };
}

/**
 * Connect and wait until the namespace answers (a fresh dev server registers it just after start).
 * Bounded: 30 s for the embedded server (a cold start on a small machine), 15 s for a remote one.
 */
async function connect(address: string, namespace: string, embedded: boolean): Promise<Connection> {
  const budgetMs = embedded ? 30_000 : 15_000;
  const deadline = Date.now() + budgetMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ address, connectTimeout: '5s' });
      const c = connection;
      // Each describe is bounded too: a frontend that accepts TCP but never answers must not hang us.
      await c.withDeadline(Date.now() + 5_000, () => c.workflowService.describeNamespace({ namespace }));
      return connection;
    } catch (err) {
      lastError = err;
      await connection?.close();
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const reason = ((lastError as Error | undefined)?.message ?? 'timed out').split('\n')[0];
  throw new AblateError(
    ErrorType.InvalidConfig,
    `cannot reach Temporal namespace "${namespace}" at ${address} within ${budgetMs / 1000} s (${reason}): ${embedded ? 'see the server log in the state directory, or run `ablate server stop` and try again' : 'check TEMPORAL_ADDRESS / --address and TEMPORAL_NAMESPACE, or unset TEMPORAL_ADDRESS to use the embedded server'}`,
    { retryable: true },
  );
}
