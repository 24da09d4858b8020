/**
 * Bad environments: each gives one clear first line naming the place and the fix, exit code 3, and
 * nothing hangs. The table holds the exact first line each case must print (a RegExp where a part
 * depends on the machine: a port, an endpoint, a library's message).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { TEST_S3_URL_ENV } from '../../infra/testing/s3-server';
import { ablate } from '../helpers/cli';
import { testTemporalAddress } from '../helpers/temporal';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'ablate.mjs');

interface Row {
  name: string;
  args: string[];
  env?: Record<string, string>;
  firstLine: string | RegExp;
  /** Why the row cannot run here, if it cannot. */
  skip?: string;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('bad environments: one clear line and a fix, exit 3, no hang', () => {
  let dir: string;
  let file: string;
  let busy: Server;
  let busyPort: number;
  let silent: Server;
  let silentPort: number;
  let closedPort: number;
  const rows: Row[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-cli-badenv-'));
    file = join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    // A port taken by another program.
    busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    busyPort = (busy.address() as { port: number }).port;
    // A "server" that accepts connections and never answers: the connection must time out.
    silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    silentPort = (silent.address() as { port: number }).port;
    // A port where nothing listens.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    closedPort = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));

    const home = join(dir, 'home');
    const unreachable = (port: number) =>
      `ablate status: InvalidConfig: cannot reach Temporal namespace "default" at 127.0.0.1:${port} within 15 s (Failed to connect before the deadline): check TEMPORAL_ADDRESS / --address and TEMPORAL_NAMESPACE, or unset TEMPORAL_ADDRESS to use the embedded server`;
    const s3 = process.env[TEST_S3_URL_ENV];
    rows.push(
      {
        name: 'state directory the file system cannot hold (/proc)',
        args: ['status', 'r1', '--home', '/proc/ablate'],
        firstLine:
          'ablate status: InvalidConfig: state directory /proc/ablate cannot be created (the file system does not allow creating it): set --home or ABLATE_HOME to a writable directory',
      },
      {
        name: 'state directory not permitted (/sys)',
        args: ['status', 'r1'],
        env: { ABLATE_HOME: '/sys/ablate' },
        firstLine:
          'ablate status: InvalidConfig: state directory /sys/ablate cannot be created (permission denied): set --home or ABLATE_HOME to a writable directory',
      },
      {
        name: 'state directory is a file',
        args: ['status', 'r1', '--home', file],
        firstLine: `ablate status: InvalidConfig: state directory ${file} is a file, not a directory: set --home or ABLATE_HOME to a writable directory`,
      },
      {
        name: 'state directory below a file',
        args: ['status', 'r1', '--home', join(file, 'sub')],
        firstLine: `ablate status: InvalidConfig: state directory ${join(file, 'sub')} cannot be created (a part of the path is a file, not a directory): set --home or ABLATE_HOME to a writable directory`,
      },
      {
        name: 'artifact store path impossible',
        args: ['status', 'r1', '--home', home, '--store', 'file:///proc/ablate-store'],
        firstLine:
          'ablate status: InvalidConfig: artifact store /proc/ablate-store cannot be created (the file system does not allow creating it): set --store or ABLATE_STORE_URL to a writable directory',
      },
      {
        name: 'artifact store URL of an unknown kind',
        args: ['status', 'r1', '--home', home, '--store', 'http://example.com/x'],
        firstLine:
          'ablate status: InvalidConfig: ABLATE_STORE_URL=http://example.com/x: expected file:///path or s3://bucket/prefix',
      },
      {
        name: 'Temporal binary missing',
        args: ['status', 'r1', '--home', join(dir, 'nobin')],
        env: { TEMPORAL_BIN: '/nonexistent/temporal', TEMPORAL_ADDRESS: '' },
        firstLine:
          'ablate status: InvalidConfig: the temporal binary /nonexistent/temporal (TEMPORAL_BIN) does not exist or is not executable: fix the path, or unset TEMPORAL_BIN to use the one `npm run setup` installs',
      },
      {
        name: 'server port in use',
        args: ['server', 'start', '--home', join(dir, 'busy'), '--port', String(busyPort)],
        env: { TEMPORAL_ADDRESS: '' },
        firstLine: `ablate server: InvalidConfig: port ${busyPort} is already in use by another program: choose another with --port, or stop that program`,
      },
      {
        name: 'Temporal address where nothing listens',
        args: ['status', 'r1', '--home', home, '--address', `127.0.0.1:${closedPort}`],
        firstLine: unreachable(closedPort),
      },
      {
        name: 'Temporal address that accepts and never answers',
        args: ['status', 'r1', '--home', home, '--address', `127.0.0.1:${silentPort}`],
        firstLine: unreachable(silentPort),
      },
      {
        name: 'gpu worker without the GPU backend',
        args: ['worker', '--queue', 'gpu', '--home', home],
        firstLine: new RegExp(
          `^${escape('ablate worker: InvalidConfig: this gpu worker cannot load the GPU backend @tensorflow/tfjs-node-gpu (')}.+${escape('): install CUDA 11.2 and cuDNN 8.1 for tfjs-node-gpu 4.22 (README "Backends"), or pass --allow-cpu-fallback to run gpu steps on CPU')}$`,
        ),
        skip: existsGpu() ? 'this machine has a GPU' : undefined,
      },
      {
        name: 'S3 store with a wrong secret key',
        args: [
          'status',
          'r1',
          '--home',
          home,
          '--address',
          `127.0.0.1:${closedPort}`,
          '--store',
          s3 ?? 's3://x/y',
        ],
        env: { AWS_SECRET_ACCESS_KEY: 'definitely-wrong' },
        // A HEAD request's 403 has no body saying which part of the credentials is wrong.
        firstLine:
          /^ablate status: StoreUnavailable: http:\/\/127\.0\.0\.1:\d+ denied access \(HTTP 403\) for HEAD s3:\/\/\S+\/runs\/\.ablate-preflight: the credentials \(access key id "[^"]+"\) are wrong or lack permission on bucket "[^"]+"$/,
        skip: s3 ? undefined : `${TEST_S3_URL_ENV} is not set (run through npm test)`,
      },
    );
  });
  after(async () => {
    busy.close();
    silent.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('prints the exact first line and exits 3 for every row', async () => {
    const results = [];
    // Three at a time: the machine is small, and the two connection rows each wait their 15 s.
    for (let i = 0; i < rows.length; i += 3) {
      results.push(
        ...(await Promise.all(
          rows.slice(i, i + 3).map(async (row) => {
            if (row.skip) return { row, skipped: true as const };
            const r = await ablate(row.args, {
              env: { TEMPORAL_ADDRESS: '', ...row.env },
              timeoutMs: 50_000,
            });
            return { row, r, skipped: false as const };
          }),
        )),
      );
    }
    const failures: string[] = [];
    for (const res of results) {
      if (res.skipped) continue;
      const { row, r } = res;
      const first = r.stderr.split('\n')[0] ?? '';
      const ok =
        r.code === 3 &&
        (typeof row.firstLine === 'string' ? first === row.firstLine : row.firstLine.test(first));
      if (!ok)
        failures.push(
          `${row.name}: exit ${r.code}\n  got:      ${first}\n  expected: ${String(row.firstLine)}`,
        );
      // One clear line: no stack, no "run with --debug" second line for a known problem.
      if (/^\s+at /m.test(r.stderr)) failures.push(`${row.name}: a stack trace\n${r.stderr}`);
    }
    assert.deepEqual(failures, []);
  });
  it('a full disk while writing an artifact: one line naming the place, exit 3, nothing written', async () => {
    // A private user + mount namespace: a 64 KiB tmpfs, nearly filled, holds the store; mounting it
    // needs no privileges and it vanishes with the process.
    const mount = join(dir, 'full-disk');
    await mkdir(mount);
    const store = join(mount, 'store');
    const child = spawn(
      'unshare',
      [
        '--user',
        '--map-root-user',
        '--mount',
        'sh',
        '-c',
        'mount -t tmpfs -o size=64k ablate-full "$0" && mkdir "$0/store" && head -c 61440 /dev/zero > "$0/fill" && exec "$@"',
        mount,
        process.execPath,
        BIN,
        'run',
        'pipelines/examples/smoke.json',
        '--store',
        pathToFileURL(store).href,
        '--address',
        await testTemporalAddress(),
        '--home',
        join(dir, 'full-home'),
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 3, stderr);
    assert.match(
      stderr.split('\n')[0] ?? '',
      /^ablate run: StorageFull: the disk holding .*\/store\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64} is full; nothing was written$/,
    );
  });
});

function existsGpu(): boolean {
  return existsSync('/dev/nvidiactl') || existsSync('/dev/nvidia0');
}
