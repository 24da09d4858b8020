/**
 * Scratch directories of running steps: `<tmpdir>/ablate-work-<pid>-<name>-<random>`.
 *
 * A directory is removed when its step's work has stopped (success, failure, cancellation, worker
 * shutdown). A process that is SIGKILLed cannot clean up after itself, so every worker sweeps, when it
 * starts, the directories whose owning process (the pid in the name) is gone.
 */
import { randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PREFIX = 'ablate-work-';
const OWNED = /^ablate-work-(\d+)-/;

/** A fresh work directory path for `name` (not created: steps make it on first use). */
export function workDirPath(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
  return join(tmpdir(), `${PREFIX}${process.pid}-${safe}-${randomBytes(4).toString('hex')}`);
}

/** Remove a work directory; no error if it does not exist. */
export async function removeWorkDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}

/** Runs `fn` with a work directory path that is removed once `fn` has settled, however it ends. */
export async function withWorkDir<T>(name: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = workDirPath(name);
  try {
    return await fn(dir);
  } finally {
    await removeWorkDir(dir);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove the work directories left by processes that no longer run (a SIGKILLed or OOM-killed worker).
 * Returns the paths removed.
 */
export async function sweepOrphanWorkDirs(dir = tmpdir()): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(OWNED.exec(name)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    await removeWorkDir(join(dir, name)).catch(() => undefined);
    removed.push(join(dir, name));
  }
  return removed;
}

/**
 * How long a cancelled step may take to stop before it is abandoned: a training step finishes its
 * iteration and saves a final checkpoint, itself bounded by 30 s (train/loop.ts), hence the margin.
 */
export const STOP_GRACE_MS = 40_000;

/**
 * Waits for `work` to settle. Once `signal` aborts, the work gets `graceMs` more to stop (a training
 * step saves its final checkpoint then); if it is still running after that, `onAbandon` is called and
 * the wait ends with the signal's reason, so a step that ignores cancellation cannot hold its worker
 * slot for ever. Without an abort this is just `await work`.
 */
export async function untilStopped<T>(
  work: Promise<T>,
  signal: AbortSignal,
  graceMs: number,
  onAbandon: () => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const abandoned = new Promise<never>((_, reject) => {
    onAbort = () => {
      timer = setTimeout(() => {
        onAbandon();
        reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
      }, graceMs);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  // The work's own rejection is handled by the race; this keeps an abandoned one from going unhandled.
  work.catch(() => undefined);
  try {
    return await Promise.race([work, abandoned]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
