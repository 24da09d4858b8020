/**
 * The filesystem store under real faults: a full disk (a 1 MiB tmpfs mounted in a private user+mount
 * namespace, no privileges needed) and a put killed while it copies. Both run the store in a child
 * process (test/store/fixtures/store-cli.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { watch } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

import { blobKey, hashFile } from '../../infra/store/artifact-store';
import { FsBackend } from '../../infra/store/fs-backend';
import { openStore } from '../../infra/store/index';

const MiB = 1024 * 1024;
const root = join(import.meta.dirname, '..', '..');
const storeCli = join(import.meta.dirname, 'fixtures', 'store-cli.ts');

interface CliResult {
  op: string;
  ok: boolean;
  type?: string;
  message?: string;
  ref?: { digest: string };
  files?: Array<{ path: string; sizeBytes: number }>;
}

function run(command: string, args: string[]) {
  const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{
    code: number | null;
    signal: string | null;
    results: CliResult[];
    stderr: string;
  }>((resolve) =>
    child.on('exit', (code, signal) =>
      resolve({
        code,
        signal,
        stderr,
        results: stdout
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as CliResult),
      }),
    ),
  );
  return { child, done };
}

describe('filesystem store faults', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-fs-faults-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('reports a full disk as StorageFull and leaves no partial file', async () => {
    const small = join(dir, 'small.txt');
    const big = join(dir, 'big.bin');
    await writeFile(small, 'fits');
    await writeFile(big, randomBytes(3 * MiB));
    const mountPoint = join(dir, 'full-disk');
    await mkdir(mountPoint);
    const storeDir = join(mountPoint, 'store');
    const ops = [
      ['put', small],
      ['put', big],
      ['ls', storeDir],
    ];
    // A private user + mount namespace: mounting a 1 MiB tmpfs needs no privileges and vanishes with it.
    const { done } = run('unshare', [
      '--user',
      '--map-root-user',
      '--mount',
      'sh',
      '-c',
      'mount -t tmpfs -o size=1m ablate-full "$0" && exec "$@"',
      mountPoint,
      process.execPath,
      '--import',
      'tsx',
      storeCli,
      pathToFileURL(storeDir).href,
      JSON.stringify(ops),
    ]);
    const { code, results, stderr } = await done;
    assert.equal(code, 0, stderr);
    const [first, second, listing] = results;
    assert.equal(first?.ok, true);
    assert.equal(second?.ok, false);
    assert.equal(second?.type, 'StorageFull');
    assert.match(
      second?.message ?? '',
      /^the disk holding .*\/store\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64} is full; nothing was written$/,
    );
    // Only the small blob: no partial big blob, no leftover temporary file.
    assert.deepEqual(listing?.files, [{ path: blobKey(first.ref!.digest), sizeBytes: 4 }]);
  });

  it('leaves nothing visible when a put is killed while copying', async () => {
    const src = join(dir, 'killed.bin');
    await writeFile(src, randomBytes(128 * MiB));
    const { digest } = await hashFile(src);
    const storeDir = join(dir, 'kill-store');
    const tmp = join(storeDir, '.tmp');
    await mkdir(tmp, { recursive: true });
    const { child, done } = run(process.execPath, [
      '--import',
      'tsx',
      storeCli,
      pathToFileURL(storeDir).href,
      JSON.stringify([['put', src]]),
    ]);
    // Kill the writer the moment its temporary file appears, while the copy runs.
    const watcher = watch(tmp, () => child.kill('SIGKILL'));
    const { signal, results } = await done;
    watcher.close();
    assert.equal(signal, 'SIGKILL', `the put finished before the kill: ${JSON.stringify(results)}`);

    const store = await openStore(pathToFileURL(storeDir).href);
    assert.equal(await store.has(digest), false);
    assert.deepEqual(await store.backend.list('sha256'), []);
    // What the killed writer left is a temporary file, which the maintenance call removes.
    assert.ok(store.backend instanceof FsBackend);
    assert.equal((await readdir(tmp)).length, 1);
    assert.equal(await store.backend.removeStaleTemp(), 1);
    assert.deepEqual(await readdir(tmp), []);
    const ref = await store.putFile(src);
    assert.equal(ref.digest, digest);
    const dest = join(dir, 'killed.out');
    await store.getFile(ref, dest);
    assert.ok((await readFile(src)).equals(await readFile(dest)));
  });
});
