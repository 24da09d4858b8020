/**
 * The services the test suite runs against: a Temporal dev server and an S3 server (rclone serve s3).
 * Started by `npm test` (scripts/run-tests.ts) and by `.ci/run` (scripts/test-services.ts); a service
 * whose variable is already set in the environment is not started again.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startDevServer } from '../server/dev-server';
import { startS3Server, TEST_S3_URL_ENV } from './s3-server';

export const TEST_TEMPORAL_ADDRESS_ENV = 'ABLATE_TEST_TEMPORAL_ADDRESS';

export interface TestServices {
  /** Variables the test processes need (addresses, credentials). */
  env: Record<string, string>;
  /** Human-readable summary, for logs. */
  describe: string;
  stop(): Promise<void>;
}

export async function startTestServices(options: {
  s3: boolean;
  log?: (m: string) => void;
}): Promise<TestServices> {
  // Never let an AWS SDK in a test probe the EC2 metadata address for credentials (nor print its
  // notice about future Node versions into every test's output).
  const env: Record<string, string> = {
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const stops: Array<() => Promise<void>> = [];
  const parts: string[] = [];
  try {
    if (!process.env[TEST_TEMPORAL_ADDRESS_ENV]) {
      const home = await mkdtemp(join(tmpdir(), 'ablate-tests-temporal-'));
      const server = await startDevServer({ home, namespace: 'default', ui: false, log: options.log });
      env[TEST_TEMPORAL_ADDRESS_ENV] = server.address;
      parts.push(`Temporal ${server.address}`);
      stops.push(async () => {
        await server.stop();
        await rm(home, { recursive: true, force: true });
      });
    }
    if (options.s3 && !process.env[TEST_S3_URL_ENV]) {
      const s3 = await startS3Server({ bucket: 'ablate-test' });
      Object.assign(env, s3.env, { [TEST_S3_URL_ENV]: s3.storeUrl('shared') });
      parts.push(`S3 ${s3.endpoint}`);
      stops.push(() => s3.stop({ removeData: true }));
    }
  } catch (err) {
    await Promise.all(stops.map((s) => s()));
    throw err;
  }
  return {
    env,
    describe: parts.join(', ') || 'none started (all given by the environment)',
    stop: async () => void (await Promise.all(stops.map((s) => s()))),
  };
}
