/**
 * The test command: runs every `test/**\/*.test.ts` file with Node's test runner, in separate processes.
 * Before that it starts the services the tests need, unless the environment already points at them:
 *   - a Temporal dev server (ABLATE_TEST_TEMPORAL_ADDRESS), shared by all test files;
 *   - when e2e tests are selected, an S3 server (rclone serve s3; ABLATE_TEST_S3_URL plus AWS credentials).
 *
 *   npm test                      # all tests
 *   npm test -- test/compiler     # only files under a path (or matching a substring)
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

import { startDevServer } from '../infra/server/dev-server';
import { startS3Server, TEST_S3_URL_ENV } from '../infra/testing/s3-server';

const root = join(import.meta.dirname, '..');

async function findTests(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.test.ts'))
      out.push(relative(root, join(entry.parentPath, entry.name)));
  }
  return out.sort();
}

/** Start what the tests need; returns the environment to pass on and a cleanup function. */
async function startServices(
  files: string[],
): Promise<{ env: NodeJS.ProcessEnv; stop: () => Promise<void> }> {
  // Never let an AWS SDK in a test probe the EC2 metadata address for credentials (nor print its
  // notice about future Node versions into every test's output).
  const env: NodeJS.ProcessEnv = {
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const stops: Array<() => Promise<void>> = [];
  if (!process.env.ABLATE_TEST_TEMPORAL_ADDRESS) {
    const home = await mkdtemp(join(tmpdir(), 'ablate-tests-temporal-'));
    const server = await startDevServer({
      home,
      namespace: 'default',
      ui: false,
      log: (m) => console.error(`[tests] ${m}`),
    });
    env.ABLATE_TEST_TEMPORAL_ADDRESS = server.address;
    stops.push(async () => {
      await server.stop();
      await rm(home, { recursive: true, force: true });
    });
  }
  if (files.some((f) => f.endsWith('.e2e.test.ts')) && !process.env[TEST_S3_URL_ENV]) {
    const s3 = await startS3Server({ bucket: 'ablate-test' });
    Object.assign(env, s3.env, { [TEST_S3_URL_ENV]: s3.storeUrl('shared') });
    stops.push(() => s3.stop({ removeData: true }));
  }
  return { env, stop: async () => void (await Promise.all(stops.map((s) => s()))) };
}

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  let files = await findTests(join(root, 'test'));
  if (filters.length > 0) files = files.filter((f) => filters.some((p) => f.includes(p)));
  if (files.length === 0) {
    console.error(`no test files match ${filters.join(' ')}`);
    return 1;
  }
  const services = await startServices(files);
  try {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-reporter', 'spec', '--test-concurrency', '2', ...files],
      { cwd: root, stdio: 'inherit', env: { ...process.env, ...services.env } },
    );
    const stopChild = () => child.kill('SIGINT');
    process.on('SIGINT', stopChild);
    return await new Promise((resolve) =>
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))),
    );
  } finally {
    await services.stop();
  }
}

process.exitCode = await main();
