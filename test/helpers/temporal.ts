/**
 * Test harness for tests against a real Temporal dev server: the shared one the test runner started
 * (ABLATE_TEST_TEMPORAL_ADDRESS), or one started here for this process when a file runs alone.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { compilePipeline } from '../../infra/compiler/compile';
import { startDevServer, type DevServer } from '../../infra/server/dev-server';
import { TEST_TEMPORAL_ADDRESS_ENV } from '../../infra/testing/services';
import { openSession, type Session } from '../../infra/session';
import { resolveConfig } from '../../temporal.config';
import type { Plan } from '../../workflows/plan-types';
import { QUEUES } from '../../infra/task-queues';

let server: Promise<DevServer> | undefined;

/** Address of a running Temporal dev server for tests. */
export async function testTemporalAddress(): Promise<string> {
  const shared = process.env[TEST_TEMPORAL_ADDRESS_ENV];
  if (shared) return shared;
  server ??= (async () => {
    const home = await mkdtemp(join(tmpdir(), 'ablate-test-temporal-'));
    const s = await startDevServer({ home, namespace: 'default', ui: false });
    process.once('exit', () => void s.stop());
    return s;
  })();
  return (await server).address;
}

/** Stop the server this process started, if any (call from `after`). */
export async function stopTestTemporal(): Promise<void> {
  if (server) await (await server).stop();
  server = undefined;
}

export interface TestSession extends Session {
  /** Temporary directory holding the store (removed by `dispose`). */
  dir: string;
  dispose(): Promise<void>;
}

/**
 * A session on the test server with its own task queues (so test files don't steal each other's
 * tasks), a store in a temp dir (or the given one), and in-process workers unless `workers: false`.
 */
export async function testSession(
  options: { workers?: boolean; storeDir?: string; storeUrl?: string; prefix?: string } = {},
): Promise<TestSession> {
  const address = await testTemporalAddress();
  const dir = options.storeDir ?? (await mkdtemp(join(tmpdir(), 'ablate-test-store-')));
  const config = resolveConfig(
    {
      home: dir,
      temporalAddress: address,
      storeUrl: options.storeUrl ?? pathToFileURL(join(dir, 'artifacts')).href,
      taskQueuePrefix: options.prefix ?? `t-${randomBytes(4).toString('hex')}`,
      workerSlots: 4,
    },
    {},
  );
  const session = await openSession(config, {
    workers: options.workers === false ? undefined : { queues: QUEUES, workflows: true },
  });
  return {
    ...session,
    dir,
    async dispose() {
      await session.close();
      if (!options.storeDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Compile a pipeline given as an object. */
export function plan(doc: unknown): Plan {
  return compilePipeline(JSON.stringify(doc), { file: 'test.json' });
}
