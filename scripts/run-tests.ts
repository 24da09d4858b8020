/**
 * The test command: runs every `test/**\/*.test.ts` file with Node's test runner, in separate processes.
 *
 *   npm test                      # all tests
 *   npm test -- test/compiler     # only files under a path (or matching a substring)
 *
 * Services: when e2e tests are selected and ABLATE_TEST_S3_URL is not set, one S3 server (rclone serve
 * s3) is started for the whole run and its URL and AWS credentials are passed to every test process.
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';

import { startS3Server, TEST_S3_URL_ENV, type S3TestServer } from '../infra/testing/s3-server';

const root = join(import.meta.dirname, '..');

async function findTests(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.test.ts'))
      out.push(relative(root, join(entry.parentPath, entry.name)));
  }
  return out.sort();
}

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  let files = await findTests(join(root, 'test'));
  if (filters.length > 0) files = files.filter((f) => filters.some((p) => f.includes(p)));
  if (files.length === 0) {
    console.error(`no test files match ${filters.join(' ')}`);
    return 1;
  }
  // Never let an AWS SDK in a test probe the EC2 metadata address for credentials (nor print its
  // notice about future Node versions into every test's output).
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  let s3: S3TestServer | undefined;
  if (files.some((f) => f.endsWith('.e2e.test.ts')) && !process.env[TEST_S3_URL_ENV]) {
    s3 = await startS3Server({ bucket: 'ablate-test' });
    Object.assign(env, s3.env, { [TEST_S3_URL_ENV]: s3.storeUrl('shared') });
  }
  try {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-reporter', 'spec', '--test-concurrency', '2', ...files],
      { cwd: root, stdio: 'inherit', env },
    );
    return await new Promise((resolve) =>
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))),
    );
  } finally {
    await s3?.stop({ removeData: true });
  }
}

process.exitCode = await main();
