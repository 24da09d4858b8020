/** Run the real `ablate` command in a child process, as a user would. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'ablate.mjs');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `ablate ...args` to completion. */
export function ablate(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  const child = spawnAblate(args, options);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** Start `ablate ...args` and return the child (for tests that kill it midway). */
export function spawnAblate(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? join(import.meta.dirname, '..', '..'),
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The last line of a text, parsed as JSON. */
export function lastJsonLine<T = Record<string, unknown>>(text: string): T {
  const lines = text.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}
