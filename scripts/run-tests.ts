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
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';

import { startTestServices } from '../infra/testing/services';

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
  const services = await startTestServices({
    s3: files.some((f) => f.endsWith('.e2e.test.ts')),
    log: (m) => console.error(`[tests] ${m}`),
  });
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
