/**
 * A connection to Temporal for one CLI command: the configured frontend, or the embedded dev server
 * (started, or reused when another ablate process already runs it), optionally with in-process
 * workers, and the artifact store. `close()` stops what this session started, in order.
 */
import { join } from 'node:path';

import { Client, Connection } from '@temporalio/client';

import type { AblateConfig } from '../temporal.config';
import { AblateError, ErrorType } from './errors';
import { startDevServer, type DevServer } from './server/dev-server';
import { openStore, type ArtifactStore } from './store/index';
import { startWorkers, type WorkerSet } from './workers';
import type { QueueName } from '../workflows/plan-types';

export interface SessionOptions {
  /** In-process workers: step queues to serve, and whether to run workflows. */
  workers?: { queues: readonly QueueName[]; workflows: boolean };
  log?: (message: string) => void;
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
  /** Web UI link of a run. */
  runUrl(runId: string): string | undefined;
  close(): Promise<void>;
}

export async function openSession(config: AblateConfig, options: SessionOptions = {}): Promise<Session> {
  const log = options.log ?? (() => undefined);
  const store = await openStore(config.storeUrl);
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
  let connection: Connection | undefined;
  let workers: WorkerSet | undefined;
  try {
    connection = await connect(address, config.namespace);
    if (options.workers) {
      workers = await startWorkers({
        address,
        namespace: config.namespace,
        taskQueuePrefix: config.taskQueuePrefix,
        queues: options.workers.queues,
        slots: config.workerSlots,
        store,
        workflows: options.workers.workflows,
        cacheDir: join(config.home, 'cache'),
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
  return {
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
        await workers?.shutdown();
        await connection.close();
        await server?.stop();
      })()),
  };
}

/** Connect and wait until the namespace answers (a fresh dev server registers it just after start). */
async function connect(address: string, namespace: string): Promise<Connection> {
  const deadline = Date.now() + 30_000;
  let lastError: unknown;
  while (Date.now() < deadline) {
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ address, connectTimeout: '5s' });
      await connection.workflowService.describeNamespace({ namespace });
      return connection;
    } catch (err) {
      lastError = err;
      await connection?.close();
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new AblateError(
    ErrorType.InvalidConfig,
    `cannot reach Temporal namespace "${namespace}" at ${address}: ${(lastError as Error | undefined)?.message ?? 'timed out'}`,
    { retryable: true },
  );
}
