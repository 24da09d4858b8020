/**
 * The record of the embedded server of one state directory, shared by every ablate process that uses
 * it:
 *   - `<home>/server.json`: pid, address, ports, mode and (optionally) the background workers, present
 *     while the server runs;
 *   - `<home>/ports.json`: the ports last used, kept across restarts so a restarted server comes back
 *     on the same address (separately started workers reconnect, the Web UI link stays valid);
 *   - `<home>/clients/<pid>`: one empty file per ablate process using the server right now;
 *   - `<home>/server.lock`: the lock (proper-lockfile) every read-modify-write of the above holds.
 * A record whose pid is gone (the server was killed) or whose client pids are gone (an ablate process
 * was SIGKILLed) is stale and is cleaned up by the next process that takes the lock.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import lockfile from 'proper-lockfile';

import { AblateError, ErrorType } from '../errors';
import type { QueueName } from '../../workflows/plan-types';

/**
 * Who stops the server: `explicit` (started by `ablate server start`) runs until `ablate server stop`;
 * `implicit` (started by a command that needed it) is stopped by the last ablate process leaving it.
 */
export type ServerMode = 'explicit' | 'implicit';

/** Background workers started by `ablate server start --workers`. */
export interface WorkersRecord {
  pid: number;
  queues: QueueName[];
  logPath: string;
  startedAt: string;
}

/** Contents of `<home>/server.json`. */
export interface ServerRecord {
  pid: number;
  address: string;
  port: number;
  uiPort?: number;
  uiUrl?: string;
  namespace: string;
  dbPath: string;
  logPath: string;
  startedAt: string;
  mode: ServerMode;
  workers?: WorkersRecord;
}

/** Contents of `<home>/ports.json`. */
export interface PortsRecord {
  port: number;
  uiPort?: number;
}

export function serverPaths(home: string) {
  return {
    record: join(home, 'server.json'),
    ports: join(home, 'ports.json'),
    clients: join(home, 'clients'),
    lockTarget: join(home, 'server'),
    logs: join(home, 'logs'),
    db: join(home, 'temporal.db'),
    serverLog: join(home, 'logs', 'temporal-server.log'),
    workersLog: join(home, 'logs', 'workers.log'),
  };
}

/** Whether a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether `pid` is still the process we recorded (and not a new process that reused the pid): on
 * Linux its command line must contain `needle`; elsewhere, being alive is all we can check.
 */
export function isProcess(pid: number, needle: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle);
  } catch {
    return process.platform !== 'linux';
  }
}

/**
 * Run `fn` holding the state directory's server lock. A lock left by a killed process goes stale
 * after 10 s (proper-lockfile refreshes the lock's mtime while it is held) and is taken over.
 */
export async function withServerLock<T>(home: string, fn: () => Promise<T>): Promise<T> {
  const paths = serverPaths(home);
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(paths.lockTarget, {
      realpath: false,
      stale: 10_000,
      update: 2_000,
      // Starting a server holds the lock for a few seconds; waiting up to ~60 s covers a cold start.
      retries: { retries: 300, factor: 1, minTimeout: 200, maxTimeout: 200 },
      onCompromised: () => undefined,
    });
  } catch (err) {
    throw new AblateError(
      ErrorType.InvalidConfig,
      `cannot lock ${paths.lockTarget}.lock (${(err as Error).message}): another ablate process holds it; if none runs, remove that directory`,
    );
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, path);
}

export const readServerRecord = (home: string) => readJson<ServerRecord>(serverPaths(home).record);
export const writeServerRecord = (home: string, r: ServerRecord) =>
  writeJsonAtomic(serverPaths(home).record, r);
export const removeServerRecord = (home: string) => rm(serverPaths(home).record, { force: true });
export const readPorts = (home: string) => readJson<PortsRecord>(serverPaths(home).ports);
export const writePorts = (home: string, p: PortsRecord) => writeJsonAtomic(serverPaths(home).ports, p);

/** Record `pid` as a user of the server. */
export async function addClient(home: string, pid = process.pid): Promise<void> {
  const dir = serverPaths(home).clients;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, String(pid)), '');
}

export async function removeClient(home: string, pid = process.pid): Promise<void> {
  await rm(join(serverPaths(home).clients, String(pid)), { force: true });
}

/** Pids of the live users of the server; the files of dead ones are removed on the way. */
export async function liveClients(home: string): Promise<number[]> {
  const dir = serverPaths(home).clients;
  const names = await readdir(dir).catch(() => [] as string[]);
  const live: number[] = [];
  for (const name of names) {
    const pid = Number(name);
    if (Number.isInteger(pid) && isAlive(pid)) live.push(pid);
    else await rm(join(dir, name), { force: true });
  }
  return live;
}
