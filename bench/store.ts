/**
 * Artifact store throughput and cache-lookup latency, filesystem store vs the S3 store on a local S3
 * server (rclone serve s3 over a directory on the same disk), side by side in one run.
 *
 *   npm run bench -- store [--json] [--size-mib 512] [--reps 3] [--lookups 200]
 *
 * Upload = `store.putFile` of a fresh artifact (hash + exists check + copy/upload), download =
 * `store.getFile` (stream + sha256 verification + atomic rename); MB = 10^6 bytes. Lookup =
 * `store.getRecord(key)` (what the step cache does), for a record that exists (hit) and one that does not
 * (miss). The S3 store runs with its defaults (16 MiB parts, 4 at once, sha256 + MD5 upload checksums).
 * Medians over the repetitions. All temporary data is removed at the end.
 */
import { numberFlag, median } from './_util';
import { randomBytes } from 'node:crypto';
import { open, mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { blobKey } from '../infra/store/artifact-store';
import { openStore, type ArtifactStore } from '../infra/store/index';
import type { S3Backend } from '../infra/store/s3-backend';
import { startS3Server } from '../infra/testing/s3-server';

const args = process.argv.slice(2);
const asJson = args.includes('--json');
const sizeMiB = numberFlag('--size-mib', 512);
const reps = numberFlag('--reps', 3);
const lookups = numberFlag('--lookups', 200);

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const file = await open(path, 'w');
  try {
    const chunk = 8 * 1024 * 1024;
    for (let done = 0; done < bytes; done += chunk)
      await file.write(randomBytes(Math.min(chunk, bytes - done)));
  } finally {
    await file.close();
  }
}

async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const log = (line: string) => {
  if (!asJson) console.log(line);
  else console.error(line);
};

const root = await mkdtemp(join(tmpdir(), 'ablate-bench-store-'));
const server = await startS3Server({ dataDir: join(root, 's3-data'), logFile: join(root, 's3.log') });
Object.assign(process.env, server.env);
try {
  const stores: Record<'fs' | 's3', ArtifactStore> = {
    fs: await openStore(pathToFileURL(join(root, 'fs-store')).href),
    s3: await openStore(server.storeUrl('bench')),
  };
  const src = join(root, 'artifact.bin');
  const sizeBytes = sizeMiB * 1024 * 1024;
  log(`writing a ${sizeMiB} MiB artifact of random bytes…`);
  await writeRandomFile(src, sizeBytes);
  const MB = sizeBytes / 1e6;

  const up: Record<'fs' | 's3', number[]> = { fs: [], s3: [] };
  const down: Record<'fs' | 's3', number[]> = { fs: [], s3: [] };
  // Open connections and create directories before timing anything.
  for (const store of Object.values(stores)) await store.putBytes('warm-up');
  const loadBefore = loadavg()[0]!;
  for (let rep = 0; rep < reps; rep++) {
    for (const name of ['fs', 's3'] as const) {
      const store = stores[name];
      let ref = undefined as Awaited<ReturnType<ArtifactStore['putFile']>> | undefined;
      const upMs = await timeMs(async () => {
        ref = await store.putFile(src);
      });
      const dest = join(root, `out-${name}.bin`);
      const downMs = await timeMs(() => store.getFile(ref!, dest));
      up[name].push(MB / (upMs / 1000));
      down[name].push(MB / (downMs / 1000));
      log(
        `rep ${rep + 1} ${name}: upload ${(MB / (upMs / 1000)).toFixed(0)} MB/s, download ${(MB / (downMs / 1000)).toFixed(0)} MB/s`,
      );
      // Next repetition uploads it afresh (a stored blob would be skipped).
      await store.backend.delete(blobKey(ref!.digest));
      await rm(dest, { force: true });
    }
  }

  const lookupMs: Record<'fs' | 's3', { hit: number; miss: number }> = {
    fs: { hit: 0, miss: 0 },
    s3: { hit: 0, miss: 0 },
  };
  for (const name of ['fs', 's3'] as const) {
    const store = stores[name];
    await store.putRecord('cache/bench-hit', {
      outputs: { model: 'sha256:…' },
      finishedAt: new Date().toISOString(),
    });
    const hits: number[] = [];
    const misses: number[] = [];
    for (let i = 0; i < lookups; i++) {
      hits.push(await timeMs(() => store.getRecord('cache/bench-hit')));
      misses.push(await timeMs(() => store.getRecord(`cache/bench-miss-${i}`)));
    }
    lookupMs[name] = { hit: median(hits), miss: median(misses) };
  }
  (stores.s3.backend as S3Backend).destroy();

  const result = {
    sizeMiB,
    reps,
    lookups,
    fs: { uploadMBps: median(up.fs), downloadMBps: median(down.fs) },
    s3: { uploadMBps: median(up.s3), downloadMBps: median(down.s3) },
    ratioFsOverS3: { upload: median(up.fs) / median(up.s3), download: median(down.fs) / median(down.s3) },
    lookupMs,
    machine: { cpus: cpus().length, loadAvg1mBefore: loadBefore, loadAvg1mAfter: loadavg()[0]! },
  };
  const f = (x: number) => x.toFixed(0).padStart(6);
  log('');
  log(`median of ${reps} runs, ${sizeMiB} MiB artifact        filesystem     S3 (local rclone)   fs/S3`);
  log(
    `  upload   (MB/s)                          ${f(result.fs.uploadMBps)}         ${f(result.s3.uploadMBps)}         ${result.ratioFsOverS3.upload.toFixed(1)}x`,
  );
  log(
    `  download (MB/s)                          ${f(result.fs.downloadMBps)}         ${f(result.s3.downloadMBps)}         ${result.ratioFsOverS3.download.toFixed(1)}x`,
  );
  log(`median of ${lookups} record lookups (ms)`);
  log(
    `  hit                                      ${lookupMs.fs.hit.toFixed(3).padStart(6)}         ${lookupMs.s3.hit.toFixed(3).padStart(6)}`,
  );
  log(
    `  miss                                     ${lookupMs.fs.miss.toFixed(3).padStart(6)}         ${lookupMs.s3.miss.toFixed(3).padStart(6)}`,
  );
  log(
    `load average (1 min) before/after: ${loadBefore.toFixed(1)} / ${result.machine.loadAvg1mAfter.toFixed(1)} on ${result.machine.cpus} cores`,
  );
  if (asJson) console.log(JSON.stringify(result));
} finally {
  await server.stop();
  await rm(root, { recursive: true, force: true });
}
