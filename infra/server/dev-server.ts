/**
 * The embedded Temporal server: `temporal server start-dev` with SQLite persistence in ablate's state
 * directory, with its Web UI, its log kept next to the database, a readiness wait and a clean stop.
 * One server per state directory (see ./registry.ts): every ablate process of that directory finds
 * it through `server.json` under a lock and uses it; a restarted server comes back on the ports it had.
 * Who stops it: `ablate server stop` for a server `ablate server start` started; otherwise the last
 * ablate process that used it, when it leaves (a SIGKILLed process is noticed by the next one).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { delimiter, join } from 'node:path';

import { AblateError, ErrorType } from '../errors';
import {
  addClient,
  isProcess,
  liveClients,
  readPorts,
  readServerRecord,
  removeClient,
  removeServerRecord,
  serverPaths,
  withServerLock,
  writePorts,
  writeServerRecord,
  type ServerMode,
  type ServerRecord,
} from './registry';
import { ensureWritableDir } from '../preflight';

export interface DevServerOptions {
  /** State directory: the database, log and server.json go here. */
  home: string;
  namespace: string;
  /** The `temporal` binary; found automatically when absent (see {@link findTemporalBinary}). */
  temporalBin?: string;
  /** Start the Web UI. @default true */
  ui?: boolean;
  /** Log progress messages (e.g. to stderr). */
  log?: (message: string) => void;
  /** How long to wait for the server to accept connections. @default 60 s (cold starts on CI) */
  readyTimeoutMs?: number;
  /** Who stops a server started here (see {@link ServerMode}). @default 'implicit' */
  mode?: ServerMode;
  /** Frontend port for a server started here; it must be free. @default the recorded one, else a free one */
  port?: number;
}

export interface DevServer {
  address: string;
  namespace: string;
  /** Web UI base URL, when the UI runs. */
  uiUrl: string | undefined;
  dbPath: string;
  logPath: string;
  /** Whether this process started it. */
  owned: boolean;
  /** The record in `server.json` as this process found or wrote it. */
  record: ServerRecord;
  /**
   * This process stops using the server; when it was the last user of an implicitly started server,
   * the server is stopped.
   */
  stop(): Promise<void>;
}

const REPO_ROOT = new URL('../..', import.meta.url).pathname;

/**
 * The `temporal` CLI to run: an explicit path, else the one `npm run setup` installs in `.venv/bin`,
 * else `temporal` on PATH. Returns undefined when there is none.
 */
export function findTemporalBinary(explicit?: string): string | undefined {
  const candidates = [explicit, join(REPO_ROOT, '.venv', 'bin', 'temporal')];
  for (const dir of (process.env.PATH ?? '').split(delimiter))
    if (dir) candidates.push(join(dir, 'temporal'));
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      if (c === explicit)
        throw new AblateError(
          ErrorType.InvalidConfig,
          `the temporal binary ${c} (TEMPORAL_BIN) does not exist or is not executable: fix the path, or unset TEMPORAL_BIN to use the one \`npm run setup\` installs`,
        );
    }
  }
  return undefined;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function portOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => done(true));
  });
}

/** Whether `port` on 127.0.0.1 can be listened on right now. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/** Wait until a Temporal frontend answers (a TCP connect, then a namespace describe by the caller). */
export async function waitForPort(
  address: string,
  timeoutMs: number,
  child?: ChildProcess,
  logPath?: string,
): Promise<void> {
  const { host, port } = splitAddress(address);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) {
      const tail = logPath
        ? (await readFile(logPath, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n')
        : '';
      throw new AblateError(
        ErrorType.InvalidConfig,
        `the Temporal dev server exited with code ${child.exitCode}:\n${tail}`,
      );
    }
    if (await portOpen(host, port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new AblateError(
    ErrorType.InvalidConfig,
    `the Temporal server at ${address} did not come up within ${timeoutMs / 1000} s${logPath ? `; see ${logPath}` : ''}`,
    {
      retryable: true,
    },
  );
}

/**
 * Use the embedded server of `home`: the one already running for it, or a new one. Holds the state
 * directory's lock while deciding, so two processes never start two servers on one database. This
 * process is recorded as a user until `stop()`.
 */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const { home, namespace } = options;
  const log = options.log ?? (() => undefined);
  const paths = serverPaths(home);
  await ensureWritableDir(home, 'state directory', 'set --home or ABLATE_HOME to a writable directory');
  await ensureWritableDir(paths.logs, 'log directory', 'set --home or ABLATE_HOME to a writable directory');
  const { record, owned } = await withServerLock(home, async () => {
    const existing = await readServerRecord(home);
    if (existing && isProcess(existing.pid, 'start-dev')) {
      const { host, port } = splitAddress(existing.address);
      if (await portOpen(host, port)) {
        await addClient(home);
        return { record: existing, owned: false };
      }
      // Alive but not answering while nobody holds the lock: hung. Replace it.
      log(
        `the embedded Temporal server (pid ${existing.pid}) does not answer on ${existing.address}; restarting it`,
      );
      await stopProcess(existing.pid, 5_000);
    }
    if (existing) await removeServerRecord(home);
    const started = await spawnServer(options, log);
    await writeServerRecord(home, started);
    await writePorts(home, { port: started.port, uiPort: started.uiPort });
    await addClient(home);
    return { record: started, owned: true };
  });
  let stopping: Promise<void> | undefined;
  return {
    address: record.address,
    namespace,
    uiUrl: record.uiUrl,
    dbPath: record.dbPath,
    logPath: record.logPath,
    owned,
    record,
    stop: () => (stopping ??= leaveServer(home, record.pid)),
  };
}

/** This process stops using the server; the last user of an implicit server stops it. */
async function leaveServer(home: string, pid: number): Promise<void> {
  await withServerLock(home, async () => {
    await removeClient(home);
    const current = await readServerRecord(home);
    if (!current || current.pid !== pid || current.mode !== 'implicit') return;
    if ((await liveClients(home)).length > 0) return;
    await stopProcess(current.pid, 10_000);
    await removeServerRecord(home);
  });
}

/**
 * Stop the embedded server of `home` (and its background workers first), whoever started it.
 * Resolves to the record of what was stopped, or undefined when nothing ran.
 */
export async function stopDevServer(
  home: string,
  log: (m: string) => void = () => undefined,
): Promise<ServerRecord | undefined> {
  // The workers first, and outside the lock: on their way out they update the record under it.
  const before = await readServerRecord(home);
  if (before?.workers && isProcess(before.workers.pid, 'ablate')) {
    log(
      `stopping the background workers (pid ${before.workers.pid}); running steps get 5 s, then checkpoint`,
    );
    await stopProcess(before.workers.pid, 20_000);
  }
  return withServerLock(home, async () => {
    const current = await readServerRecord(home);
    if (!current) return undefined;
    if (isProcess(current.pid, 'start-dev')) {
      log(`stopping the Temporal server (pid ${current.pid}) at ${current.address}`);
      await stopProcess(current.pid, 10_000);
    }
    await removeServerRecord(home);
    return current;
  });
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL; resolves once the process is gone. */
export async function stopProcess(pid: number, graceMs: number): Promise<void> {
  const gone = () => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  };
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (!gone() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (!gone()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    while (!gone()) await new Promise((r) => setTimeout(r, 50));
  }
}

/** Ports for a new server: the requested one, else the recorded ones when still free, else free ones. */
async function choosePorts(
  options: DevServerOptions,
  log: (m: string) => void,
): Promise<{ port: number; uiPort: number | undefined }> {
  const ui = options.ui ?? true;
  if (options.port !== undefined) {
    if (!(await portFree(options.port)))
      throw new AblateError(
        ErrorType.InvalidConfig,
        `port ${options.port} is already in use by another program: choose another with --port, or stop that program`,
      );
    return { port: options.port, uiPort: ui ? await freePort() : undefined };
  }
  const recorded = await readPorts(options.home);
  let port = recorded?.port;
  if (port !== undefined && !(await portFree(port))) {
    log(
      `port ${port}, where this state directory's server ran before, is taken by another program; using a new port (restart workers started with the old address)`,
    );
    port = undefined;
  }
  let uiPort = ui ? recorded?.uiPort : undefined;
  if (uiPort !== undefined && !(await portFree(uiPort))) uiPort = undefined;
  return { port: port ?? (await freePort()), uiPort: ui ? (uiPort ?? (await freePort())) : undefined };
}

/** Start `temporal server start-dev` as a detached process and wait until it accepts connections. */
async function spawnServer(options: DevServerOptions, log: (m: string) => void): Promise<ServerRecord> {
  const paths = serverPaths(options.home);
  const bin = findTemporalBinary(options.temporalBin);
  if (!bin)
    throw new AblateError(
      ErrorType.InvalidConfig,
      'no `temporal` binary found: run `npm run setup` (installs it into .venv), put `temporal` on PATH, set TEMPORAL_BIN, or set TEMPORAL_ADDRESS to use a running server',
    );
  const { port, uiPort } = await choosePorts(options, log);
  const address = `127.0.0.1:${port}`;
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--db-filename',
    paths.db,
    '--namespace',
    options.namespace,
    '--log-format',
    'pretty',
    '--log-level',
    'warn',
    // Lets a worker that completes a workflow task start the activities it scheduled on its own queue
    // at once, without a round trip through the matching service: less overhead per step.
    '--dynamic-config-value',
    'system.enableActivityEagerExecution=true',
    // Write-ahead log, synced at checkpoints rather than every commit: state survives a crash of
    // ablate or the server (the OS keeps the log), and each step costs fewer fsyncs.
    '--sqlite-pragma',
    'journal_mode=wal',
    '--sqlite-pragma',
    'synchronous=normal',
    ...(uiPort ? ['--ui-port', String(uiPort)] : ['--headless']),
  ];
  const out = openSync(paths.serverLog, 'a');
  log(`starting the embedded Temporal server on ${address}; state in ${paths.db}`);
  // Detached, in its own process group: a Ctrl-C aimed at ablate does not reach it, and it outlives
  // the process that started it (the record in server.json says who stops it).
  const child = spawn(bin, args, { stdio: ['ignore', out, out], detached: true });
  closeSync(out);
  child.unref();
  try {
    await waitForPort(address, options.readyTimeoutMs ?? 60_000, child, paths.serverLog);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    pid: child.pid!,
    address,
    port,
    uiPort,
    uiUrl: uiPort ? `http://127.0.0.1:${uiPort}` : undefined,
    namespace: options.namespace,
    dbPath: paths.db,
    logPath: paths.serverLog,
    startedAt: new Date().toISOString(),
    mode: options.mode ?? 'implicit',
  };
}

/** Change the record of the running server under the lock (e.g. make it explicit, add workers). */
export async function updateServerRecord(
  home: string,
  pid: number,
  patch: (r: ServerRecord) => ServerRecord,
): Promise<ServerRecord | undefined> {
  return withServerLock(home, async () => {
    const current = await readServerRecord(home);
    if (!current || current.pid !== pid) return undefined;
    const next = patch(current);
    await writeServerRecord(home, next);
    return next;
  });
}

/** What `ablate server status` shows. */
export interface ServerStatus {
  running: boolean;
  home: string;
  record?: ServerRecord;
  /** Whether the frontend accepts connections. */
  answering?: boolean;
  clients: number[];
  workersRunning: boolean;
}

export async function serverStatus(home: string): Promise<ServerStatus> {
  const record = await readServerRecord(home);
  const clients = await liveClients(home);
  if (!record || !isProcess(record.pid, 'start-dev'))
    return { running: false, home, clients, workersRunning: false };
  const { host, port } = splitAddress(record.address);
  return {
    running: true,
    home,
    record,
    answering: await portOpen(host, port),
    clients,
    workersRunning: record.workers !== undefined && isProcess(record.workers.pid, 'ablate'),
  };
}
