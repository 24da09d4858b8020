/**
 * Checks of the environment made before any work starts, so a bad one gives one clear line with a fix
 * instead of an errno from deep inside (or a hang): directories that must be writable, and a bound on
 * every wait for something outside the process.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

import { AblateError, ErrorType } from './errors';

const REASON: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EEXIST: 'it is a file, not a directory',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOENT: 'the file system does not allow creating it',
};

/**
 * Make sure `dir` exists (creating it) and that files can be written in it. `what` names it in the
 * message ("state directory"), `fix` says what to do.
 */
export async function ensureWritableDir(dir: string, what: string, fix: string): Promise<void> {
  try {
    await mkdirs(resolve(dir));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new AblateError(
      ErrorType.InvalidConfig,
      code === 'EEXIST'
        ? `${what} ${dir} is a file, not a directory: ${fix}`
        : `${what} ${dir} cannot be created (${REASON[code] ?? code}): ${fix}`,
    );
  }
  const probe = join(dir, `.write-test-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(probe, 'ok');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new AblateError(
      ErrorType.InvalidConfig,
      `${what} ${dir} is not writable (${REASON[code] ?? code}): ${fix}`,
    );
  } finally {
    await rm(probe, { force: true }).catch(() => undefined);
  }
}

/**
 * `mkdir -p`, one level at a time. Node 20's `mkdir(path, { recursive: true })` spins forever on some
 * paths it cannot create (e.g. `/proc/ablate`: ENOENT although the parent exists).
 */
async function mkdirs(dir: string): Promise<void> {
  const missing: string[] = [];
  let at = dir;
  for (;;) {
    const info = await stat(at).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (info) {
      if (!info.isDirectory())
        throw Object.assign(new Error(`${at} is not a directory`), {
          code: at === dir ? 'EEXIST' : 'ENOTDIR',
        });
      break;
    }
    missing.push(at);
    const parent = dirname(at);
    if (parent === at) break;
    at = parent;
  }
  for (const d of missing.reverse()) {
    await mkdir(d).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
}

/** `promise`, or an {@link AblateError} with `message` when it takes longer than `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new AblateError(ErrorType.InvalidConfig, message, { retryable: true })),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
