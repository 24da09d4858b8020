/**
 * The embedded Temporal server: `temporal server start-dev` with SQLite persistence in ablate's state
 * directory, on free ports, with its Web UI, its log kept next to the database, a readiness wait and a
 * clean stop. One server per state directory: a second ablate process finds it through `server.json`
 * and connects to it instead of starting another.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, openSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { delimiter, join } from 'node:path';

import { AblateError, ErrorType } from '../errors';

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
}

export interface DevServer {
  address: string;
  namespace: string;
  /** Web UI base URL, when the UI runs. */
  uiUrl: string | undefined;
  dbPath: string;
  logPath: string;
  /** Whether this process started it (and so stops it). */
  owned: boolean;
  stop(): Promise<void>;
}

interface ServerInfo {
  pid: number;
  address: string;
  uiUrl?: string;
  dbPath: string;
  logPath: string;
  startedAt: string;
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
          `the temporal binary ${c} does not exist or is not executable`,
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

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
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

/** Start the embedded server for `home`, or connect to the one already running for it. */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const { home, namespace } = options;
  const log = options.log ?? (() => undefined);
  await mkdir(join(home, 'logs'), { recursive: true });
  const infoPath = join(home, 'server.json');
  const dbPath = join(home, 'temporal.db');
  const logPath = join(home, 'logs', 'temporal-server.log');

  const existing = await readFile(infoPath, 'utf8')
    .then((t) => JSON.parse(t) as ServerInfo)
    .catch(() => undefined);
  if (existing && isAlive(existing.pid)) {
    const { host, port } = splitAddress(existing.address);
    if (await portOpen(host, port)) {
      log(`using the embedded Temporal server already running at ${existing.address} (pid ${existing.pid})`);
      return { ...existing, namespace, uiUrl: existing.uiUrl, owned: false, stop: async () => undefined };
    }
  }

  const bin = findTemporalBinary(options.temporalBin);
  if (!bin) return startWithSdkDownload(options, dbPath, log);
  const port = await freePort();
  const ui = options.ui ?? true;
  const uiPort = ui ? await freePort() : undefined;
  const address = `127.0.0.1:${port}`;
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--db-filename',
    dbPath,
    '--namespace',
    namespace,
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
  const out = openSync(logPath, 'a');
  log(`starting the embedded Temporal server (${bin}) on ${address}; state in ${dbPath}`);
  // Its own process group, so a Ctrl-C aimed at ablate does not kill the server before ablate stops it.
  const child = spawn(bin, args, { stdio: ['ignore', out, out], detached: true });
  child.unref();
  const uiUrl = uiPort ? `http://127.0.0.1:${uiPort}` : undefined;
  try {
    await waitForPort(address, options.readyTimeoutMs ?? 60_000, child, logPath);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const info: ServerInfo = {
    pid: child.pid!,
    address,
    uiUrl,
    dbPath,
    logPath,
    startedAt: new Date().toISOString(),
  };
  await writeFile(infoPath, JSON.stringify(info, null, 2));

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (child.exitCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      const current = await readFile(infoPath, 'utf8').catch(() => '');
      if (current.includes(`"pid": ${info.pid},`)) await rm(infoPath, { force: true });
    })());
  return { address, namespace, uiUrl, dbPath, logPath, owned: true, stop };
}

/**
 * Last resort where no `temporal` binary exists (e.g. a laptop without Python): the Temporal SDK
 * downloads the CLI itself (needs access to temporal.download). The server then lives in this process.
 */
async function startWithSdkDownload(
  options: DevServerOptions,
  dbPath: string,
  log: (m: string) => void,
): Promise<DevServer> {
  log(
    'no `temporal` binary found (npm run setup installs one into .venv); downloading the Temporal CLI through the Temporal SDK',
  );
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const ui = options.ui ?? true;
  const uiPort = ui ? await freePort() : undefined;
  let env;
  try {
    env = await TestWorkflowEnvironment.createLocal({
      server: { dbFilename: dbPath, namespace: options.namespace, ui, ...(uiPort ? { uiPort } : {}) },
    });
  } catch (err) {
    throw new AblateError(
      ErrorType.InvalidConfig,
      `no \`temporal\` binary found and the SDK could not download one (${(err as Error).message}): run \`npm run setup\`, set TEMPORAL_BIN, or set TEMPORAL_ADDRESS`,
    );
  }
  return {
    address: env.address,
    namespace: options.namespace,
    uiUrl: uiPort ? `http://127.0.0.1:${uiPort}` : undefined,
    dbPath,
    logPath: '(the SDK pipes the server log to this process)',
    owned: true,
    stop: () => env.teardown(),
  };
}
