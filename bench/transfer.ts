/**
 * ablate's transfers against `rclone copy`, on the same local S3 server (rclone serve s3, on the same
 * disk): one big file and a tree of many small files, put and get, side by side; then the start of a
 * step whose big input (a folder of many files) is already in the worker's cache.
 *
 *   npm run bench -- transfer [--json] [--file-mb 1024] [--files 100000] [--size-kb 20] [--reps 3]
 *                             [--cached-files 200000] [--concurrency 16]
 *
 * ablate: `store.putFile` / `store.getFile` and `store.putTree` / `store.getTree` on an S3 store (a get
 * verifies every byte against its digest; a tree's get reads and checks the manifest too). rclone:
 * `rclone copy` with its defaults, local folder to the server and back, through a remote defined by
 * environment variables. Every repetition writes to an empty prefix and reads into a fresh folder; the
 * two tools take turns going first. Between the put and the get of the big file, one untimed HEAD of the
 * object: rclone serve s3 computes an object's MD5 (its ETag) on first access, unless the uploader left
 * it in rclone's own metadata as rclone's client does, and that one-off pass over 1 GiB on the server
 * belongs to neither tool's download. Figures are medians over the repetitions; MB = 10^6 bytes. A ratio is
 * ablate's throughput over rclone's (above 1: ablate is faster).
 *
 * cachedStartMs: from `ctx.fetch(ref)` to the path being ready, for an input of `--cached-files` files
 * already in the worker cache, in a fresh cache object each time (as after a worker restart); median of
 * 5. For comparison, `copyStartMs` is the same fetch without a cache (a copy into the step's work
 * directory, what every attempt did before) and `coldStartMs` the first fetch into the cache; the
 * cached input lives in a filesystem store (the store is not read on a hit).
 *
 * All temporary data is removed at the end. The last line (with --json) is one JSON object.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';

import { createStepContext } from '../activities/runtime/step-context';
import { openStore, type ArtifactStore } from '../infra/store/index';
import { LocalCache } from '../infra/store/local-cache';
import { removeTree } from '../infra/store/read-only';
import type { S3Backend } from '../infra/store/s3-backend';
import type { ArtifactRef } from '../workflows/plan-types';
import { DEFAULT_TRANSFER_CONCURRENCY } from '../infra/store/transfer';
import { RCLONE_BIN, startS3Server } from '../infra/testing/s3-server';
import { median, numberFlag, peakRssMiB } from './_util';

const args = process.argv.slice(2);
const asJson = args.includes('--json');
const fileMb = numberFlag('--file-mb', 1024, { integer: true });
const files = numberFlag('--files', 100_000, { integer: true });
const sizeKb = numberFlag('--size-kb', 20, { integer: true });
const reps = numberFlag('--reps', 3, { integer: true });
const cachedFiles = numberFlag('--cached-files', 200_000, { integer: true });
const concurrency = numberFlag('--concurrency', DEFAULT_TRANSFER_CONCURRENCY, { integer: true });
const CACHED_REPS = 5;

const log = (line: string) => {
  if (!asJson) console.log(line);
  else console.error(line);
};

type Tool = 'ablate' | 'rclone';
type Op = 'putFile' | 'getFile' | 'putTree' | 'getTree';
const OPS: Op[] = ['putFile', 'getFile', 'putTree', 'getTree'];

const root = await mkdtemp(join(tmpdir(), 'ablate-bench-transfer-'));
// A listing trusted for minutes, not the tests' 1 ms: with 1 ms every request lists its folder again,
// and a put of 100k files into one prefix slows down as it fills (both tools alike).
const server = await startS3Server({
  dataDir: join(root, 's3-data'),
  logFile: join(root, 's3.log'),
  dirCacheTime: '10m',
});
Object.assign(process.env, server.env);
// An rclone remote "bench" for the same server, defined by environment variables only.
const rcloneEnv: NodeJS.ProcessEnv = {
  ...process.env,
  RCLONE_CONFIG: join(root, 'rclone.conf'),
  RCLONE_CONFIG_BENCH_TYPE: 's3',
  RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
  RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: server.accessKeyId,
  RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: server.secretAccessKey,
  RCLONE_CONFIG_BENCH_ENDPOINT: server.endpoint,
  RCLONE_CONFIG_BENCH_REGION: 'us-east-1',
  RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
};
await writeFile(join(root, 'rclone.conf'), '');

function rclone(...rcloneArgs: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(RCLONE_BIN, ['copy', ...rcloneArgs], {
      env: rcloneEnv,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`rclone copy ${rcloneArgs.join(' ')} exited ${code}: ${stderr}`)),
    );
  });
}

async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

const opened: ArtifactStore[] = [];
try {
  // The data: one big file, and a tree of small ones in 100 folders.
  log(`writing a ${fileMb} MiB file and ${files} files of ${sizeKb} KB…`);
  const bigDir = join(root, 'big');
  await mkdir(bigDir);
  const bigFile = join(bigDir, 'big.bin');
  const out = createWriteStream(bigFile);
  for (let i = 0; i < fileMb; i++) if (!out.write(randomBytes(1 << 20))) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
  const tree = join(root, 'tree');
  for (let i = 0; i < files; i++) {
    const sub = join(tree, `shard-${String(i % 100).padStart(3, '0')}`);
    if (i < 100) await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `img-${String(i).padStart(7, '0')}.jpg`), randomBytes(sizeKb * 1000));
  }
  const bytes: Record<Op, number> = {
    putFile: fileMb * 2 ** 20,
    getFile: fileMb * 2 ** 20,
    putTree: files * sizeKb * 1000,
    getTree: files * sizeKb * 1000,
  };

  // A store at the bucket's root, to HEAD rclone's objects.
  const bucketRoot = await openStore(server.storeUrl(''));
  opened.push(bucketRoot);
  const secs: Record<Tool, Record<Op, number[]>> = {
    ablate: { putFile: [], getFile: [], putTree: [], getTree: [] },
    rclone: { putFile: [], getFile: [], putTree: [], getTree: [] },
  };
  const loadBefore = loadavg()[0]!;
  let n = 0;
  const runAblate = async (what: 'File' | 'Tree') => {
    const prefix = `ablate-${++n}`;
    const store = await openStore(server.storeUrl(prefix), { transferConcurrency: concurrency });
    opened.push(store);
    await store.putBytes('warm-up'); // connections and the bucket check before timing
    const dest = join(root, `out-${n}`);
    let ref: ArtifactRef | undefined;
    if (what === 'File') {
      secs.ablate.putFile.push(await seconds(async () => (ref = await store.putFile(bigFile))));
      if (!(await store.has(ref!.digest))) throw new Error('the big file is not in the store after its put');
      secs.ablate.getFile.push(await seconds(() => store.getFile(ref!, join(dest, 'big.bin'))));
    } else {
      secs.ablate.putTree.push(await seconds(async () => (ref = await store.putTree(tree))));
      secs.ablate.getTree.push(await seconds(() => store.getTree(ref!, dest)));
    }
    await rm(dest, { recursive: true, force: true });
    await rm(server.objectPath(prefix), { recursive: true, force: true });
  };
  const runRclone = async (what: 'File' | 'Tree') => {
    const prefix = `rclone-${++n}`;
    const remote = `bench:${server.bucket}/${prefix}`;
    const dest = join(root, `out-${n}`);
    if (what === 'File') {
      secs.rclone.putFile.push(await seconds(() => rclone(bigFile, remote)));
      if (!(await bucketRoot.backend.exists(`${prefix}/big.bin`)))
        throw new Error(`rclone's put left no ${prefix}/big.bin`);
      secs.rclone.getFile.push(await seconds(() => rclone(`${remote}/big.bin`, dest)));
    } else {
      secs.rclone.putTree.push(await seconds(() => rclone(tree, remote)));
      secs.rclone.getTree.push(await seconds(() => rclone(remote, dest)));
    }
    await rm(dest, { recursive: true, force: true });
    await rm(server.objectPath(prefix), { recursive: true, force: true });
  };
  for (let rep = 0; rep < reps; rep++) {
    for (const what of ['File', 'Tree'] as const) {
      const order = rep % 2 === 0 ? [runAblate, runRclone] : [runRclone, runAblate];
      for (const run of order) await run(what);
      const put = `put${what}` as const;
      const get = `get${what}` as const;
      const mbps = (tool: Tool, op: Op) => (bytes[op] / 1e6 / secs[tool][op].at(-1)!).toFixed(0).padStart(5);
      log(
        `rep ${rep + 1} ${what.toLowerCase()}: put ablate ${mbps('ablate', put)} MB/s, rclone ${mbps('rclone', put)} MB/s; ` +
          `get ablate ${mbps('ablate', get)} MB/s, rclone ${mbps('rclone', get)} MB/s`,
      );
    }
  }

  // A step's start with a big input already in the worker's cache.
  log(`writing ${cachedFiles} small files for the cached input…`);
  const cachedTree = join(root, 'cached-tree');
  for (let i = 0; i < cachedFiles; i++) {
    const sub = join(cachedTree, `d${String(i % 1000).padStart(4, '0')}`);
    if (i < 1000) await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `f${i}.txt`), `sample ${i}\n`);
  }
  const fsStore = await openStore(pathToFileURL(join(root, 'fs-store')).href, {
    transferConcurrency: concurrency,
  });
  const input = await fsStore.putTree(cachedTree);
  await rm(cachedTree, { recursive: true, force: true });
  const cacheDir = join(root, 'worker-cache');
  const fetchMs = async (cache: LocalCache | undefined, k: number) => {
    const { ctx, release } = createStepContext({
      store: fsStore,
      ...(cache ? { cache } : {}),
      workDir: join(root, `work-${k}`),
    });
    const t = performance.now();
    await ctx.fetch(input);
    const ms = performance.now() - t;
    release();
    await removeTree(join(root, `work-${k}`));
    return ms;
  };
  const newCache = () => new LocalCache(fsStore, { dir: cacheDir, maxBytes: 2 ** 40 });
  const copyStartMs = await fetchMs(undefined, 0);
  const coldStartMs = await fetchMs(newCache(), 1);
  const warm: number[] = [];
  for (let k = 0; k < CACHED_REPS; k++) warm.push(await fetchMs(newCache(), 2 + k));
  const cachedStartMs = median(warm);
  log(
    `step start, ${cachedFiles}-file input: copy ${(copyStartMs / 1000).toFixed(1)} s, first fetch into the cache ` +
      `${(coldStartMs / 1000).toFixed(1)} s, cached ${cachedStartMs.toFixed(1)} ms`,
  );

  const summary = (tool: Tool) =>
    Object.fromEntries(
      OPS.flatMap((op) => [
        [`${op}Sec`, median(secs[tool][op])],
        [`${op}MBps`, bytes[op] / 1e6 / median(secs[tool][op])],
      ]),
    );
  const ratio = (op: Op) => median(secs.rclone[op]) / median(secs.ablate[op]);
  const result = {
    ratios: {
      putFile: ratio('putFile'),
      getFile: ratio('getFile'),
      putTree: ratio('putTree'),
      getTree: ratio('getTree'),
    },
    cachedStartMs,
    copyStartMs,
    coldStartMs,
    ablate: summary('ablate'),
    rclone: summary('rclone'),
    sizes: { fileMiB: fileMb, files, sizeKb, cachedFiles, reps, concurrency },
    machine: {
      cpus: cpus().length,
      loadAvg1mBefore: loadBefore,
      loadAvg1mAfter: loadavg()[0]!,
      peakRssMiB: peakRssMiB(),
    },
  };
  log('');
  log(
    `median of ${reps}: ${fileMb} MiB file; ${files} files x ${sizeKb} KB      ablate MB/s   rclone MB/s   ratio`,
  );
  for (const op of OPS)
    log(
      `  ${op.padEnd(42)}${(bytes[op] / 1e6 / median(secs.ablate[op])).toFixed(0).padStart(11)}` +
        `${(bytes[op] / 1e6 / median(secs.rclone[op])).toFixed(0).padStart(14)}${ratio(op).toFixed(2).padStart(8)}`,
    );
  log(`  step start with a ${cachedFiles}-file input in the worker cache: ${cachedStartMs.toFixed(1)} ms`);
  log(
    `load average (1 min) before/after: ${loadBefore.toFixed(1)} / ${result.machine.loadAvg1mAfter.toFixed(1)} on ${result.machine.cpus} cores`,
  );
  if (asJson) console.log(JSON.stringify(result));
} finally {
  for (const s of opened) if (s.url.startsWith('s3:')) (s.backend as S3Backend).destroy();
  await server.stop();
  await removeTree(root);
}
