/**
 * Folder artifact transfers: `store.putTree` / `store.getTree` of a tree of many small files, one file
 * at a time (concurrency 1: the order of work of the sequential code this replaced) vs many at once
 * (the default, 16), on the filesystem store and on the S3 store over a local S3 server (rclone serve
 * s3 on the same disk), side by side.
 *
 *   npm run bench -- transfer [--json] [--files 10000] [--size-kb 20] [--reps 3] [--concurrency 16]
 *
 * Every repetition puts into an empty store (a stored blob would be skipped) and gets into a fresh
 * directory; get includes reading and checking the manifest and verifying every file. Medians over the
 * repetitions; MB = 10^6 bytes. All temporary data is removed at the end.
 */
import { numberFlag, median } from './_util';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { openStore, type ArtifactStore } from '../infra/store/index';
import type { S3Backend } from '../infra/store/s3-backend';
import { DEFAULT_TRANSFER_CONCURRENCY } from '../infra/store/transfer';
import { startS3Server } from '../infra/testing/s3-server';

const args = process.argv.slice(2);
const asJson = args.includes('--json');
const files = numberFlag('--files', 10_000, { integer: true });
const sizeKb = numberFlag('--size-kb', 20, { integer: true });
const reps = numberFlag('--reps', 3, { integer: true });
const concurrency = numberFlag('--concurrency', DEFAULT_TRANSFER_CONCURRENCY, { integer: true });

const log = (line: string) => {
  if (!asJson) console.log(line);
  else console.error(line);
};

const root = await mkdtemp(join(tmpdir(), 'ablate-bench-transfer-'));
const server = await startS3Server({ dataDir: join(root, 's3-data'), logFile: join(root, 's3.log') });
Object.assign(process.env, server.env);
const opened: ArtifactStore[] = [];
try {
  const tree = join(root, 'tree');
  log(`writing ${files} files of ${sizeKb} KB…`);
  for (let i = 0; i < files; i++) {
    const sub = join(tree, `shard-${String(i % 100).padStart(3, '0')}`);
    if (i < 100) await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `img-${String(i).padStart(7, '0')}.jpg`), randomBytes(sizeKb * 1000));
  }
  const MB = (files * sizeKb * 1000) / 1e6;

  type Mode = 'sequential' | 'parallel';
  type Backend = 'fs' | 's3';
  const secs: Record<Backend, Record<Mode, { put: number[]; get: number[] }>> = {
    fs: { sequential: { put: [], get: [] }, parallel: { put: [], get: [] } },
    s3: { sequential: { put: [], get: [] }, parallel: { put: [], get: [] } },
  };
  const loadBefore = loadavg()[0]!;
  let n = 0;
  for (let rep = 0; rep < reps; rep++) {
    for (const backend of ['fs', 's3'] as const) {
      for (const mode of ['sequential', 'parallel'] as const) {
        n += 1;
        const url =
          backend === 'fs' ? pathToFileURL(join(root, `fs-store-${n}`)).href : server.storeUrl(`bench-${n}`);
        const store = await openStore(url, { transferConcurrency: mode === 'sequential' ? 1 : concurrency });
        opened.push(store);
        await store.putBytes('warm-up'); // connections and directories before timing
        let t = performance.now();
        const ref = await store.putTree(tree);
        const putSec = (performance.now() - t) / 1000;
        const dest = join(root, `out-${n}`);
        t = performance.now();
        await store.getTree(ref, dest);
        const getSec = (performance.now() - t) / 1000;
        secs[backend][mode].put.push(putSec);
        secs[backend][mode].get.push(getSec);
        log(
          `rep ${rep + 1} ${backend} ${mode.padEnd(10)}: put ${putSec.toFixed(2)} s (${(files / putSec).toFixed(0)} files/s), get ${getSec.toFixed(2)} s (${(files / getSec).toFixed(0)} files/s)`,
        );
        await rm(dest, { recursive: true, force: true });
        if (backend === 'fs') await rm(join(root, `fs-store-${n}`), { recursive: true, force: true });
        else {
          for (const key of await store.backend.list('')) await store.backend.delete(key);
        }
      }
    }
  }
  const summary = (b: Backend, m: Mode) => {
    const put = median(secs[b][m].put);
    const get = median(secs[b][m].get);
    return {
      putSec: put,
      getSec: get,
      putFilesPerSec: files / put,
      getFilesPerSec: files / get,
      putMBps: MB / put,
      getMBps: MB / get,
    };
  };
  const result = {
    files,
    sizeKb,
    reps,
    concurrency,
    fs: { sequential: summary('fs', 'sequential'), parallel: summary('fs', 'parallel') },
    s3: { sequential: summary('s3', 'sequential'), parallel: summary('s3', 'parallel') },
    speedup: {
      fsPut: median(secs.fs.sequential.put) / median(secs.fs.parallel.put),
      fsGet: median(secs.fs.sequential.get) / median(secs.fs.parallel.get),
      s3Put: median(secs.s3.sequential.put) / median(secs.s3.parallel.put),
      s3Get: median(secs.s3.sequential.get) / median(secs.s3.parallel.get),
    },
    machine: { cpus: cpus().length, loadAvg1mBefore: loadBefore, loadAvg1mAfter: loadavg()[0]! },
  };
  log('');
  log(`median of ${reps} runs, ${files} files x ${sizeKb} KB    put (s)   get (s)`);
  for (const b of ['fs', 's3'] as const)
    for (const m of ['sequential', 'parallel'] as const)
      log(
        `  ${b} ${m === 'parallel' ? `parallel (${concurrency})` : 'sequential (1)'}`.padEnd(40) +
          `${result[b][m].putSec.toFixed(2).padStart(8)}  ${result[b][m].getSec.toFixed(2).padStart(8)}`,
      );
  log(
    `speedup: fs put ${result.speedup.fsPut.toFixed(1)}x, get ${result.speedup.fsGet.toFixed(1)}x; s3 put ${result.speedup.s3Put.toFixed(1)}x, get ${result.speedup.s3Get.toFixed(1)}x`,
  );
  log(
    `load average (1 min) before/after: ${loadBefore.toFixed(1)} / ${result.machine.loadAvg1mAfter.toFixed(1)} on ${result.machine.cpus} cores`,
  );
  if (asJson) console.log(JSON.stringify(result));
} finally {
  for (const s of opened) if (s.url.startsWith('s3:')) (s.backend as S3Backend).destroy();
  await server.stop();
  await rm(root, { recursive: true, force: true });
}
