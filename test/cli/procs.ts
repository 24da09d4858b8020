/** Process checks for the CLI fault tests: which processes still use a state directory. */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import type { ChildProcess } from 'node:child_process';

/** Pids of live processes whose command line mentions `needle` (e.g. a test's state directory). */
export function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // A zombie has exited; only its parent has not collected it yet.
      if (cmdline.includes(needle) && !/\) Z /.test(stat)) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Wait (bounded) until no process mentions `needle`; resolves to the pids still left. */
export async function waitNoProcesses(needle: string, timeoutMs = 15_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let left = processesMentioning(needle);
  while (left.length && Date.now() < deadline) {
    await sleep(200);
    left = processesMentioning(needle);
  }
  return left;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Collect a child's stderr and resolve when it matches `pattern` (reject if it exits first). */
export function waitForStderr(
  child: ChildProcess,
  pattern: RegExp,
  timeoutMs = 60_000,
): { match: Promise<RegExpExecArray>; text: () => string; exit: Promise<number | null> } {
  let stderr = '';
  const exit = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const match = new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${stderr}`)),
      timeoutMs,
    );
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = pattern.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    void exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`ablate exited (${code}) before ${pattern}:\n${stderr}`));
    });
  });
  match.catch(() => undefined);
  return { match, text: () => stderr, exit };
}
