/**
 * The test command: runs every `test/**\/*.test.ts` file with Node's test runner, in separate processes.
 *
 *   npm test                      # all tests
 *   npm test -- test/compiler     # only files under a path (or matching a substring)
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';

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
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-reporter', 'spec', '--test-concurrency', '2', ...files],
    { cwd: root, stdio: 'inherit', env: process.env },
  );
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

process.exitCode = await main();
