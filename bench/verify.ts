/**
 * The cost of verifying a cache hit: `store.isIntact(ref)`, the check the step runner makes before it
 * serves a cached output, for one large file and for a folder of many small files, on the file store
 * and on the S3 store (a local `rclone serve s3` over a directory on the same disk).
 *
 *   npm run bench -- verify [--json] [--size-mib 1024] [--files 10000] [--file-kib 4] [--no-s3]
 *
 * cold        no verification remembered: every byte is read and hashed (file store; S3 objects
 *             without a stored checksum, i.e. multipart uploads), or one HEAD per object (S3 objects
 *             with a stored SHA-256). The files were just written, so they are likely in the OS page
 *             cache: cold here means "not memoised", not "not cached by the kernel".
 * warm        the same store again: the verified-stat memo (file store) or the ETag memo (S3).
 * sidecar     a fresh store object over the same directory, as another process would see it: the file
 *             store's `.verified/` sidecars, one stat and one small read per blob.
 * full        `store.verify(ref)`, what `ablate verify RUN_ID` does: always every byte.
 *
 * Figures are ms per GB (10^9 bytes) for the large file and ms per 10k files for the folder (scaled from
 * --files). All temporary data is removed at the end.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import { ArtifactStore } from '../infra/store/artifact-store';
import { FsBackend } from '../infra/store/fs-backend';
import { openStore } from '../infra/store/index';
import type { S3Backend } from '../infra/store/s3-backend';
import { startS3Server } from '../infra/testing/s3-server';
import type { ArtifactRef } from '../workflows/plan-types';
import { numberFlag, report } from './_util';

const args = process.argv.slice(2);
const sizeMiB = numberFlag('--size-mib', 1024);
const files = Math.round(numberFlag('--files', 10_000));
const fileKiB = numberFlag('--file-kib', 4);
const withS3 = !args.includes('--no-s3');

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  const ok = await fn();
  const ms = performance.now() - t0;
  if (ok === false) throw new Error('the artifact did not verify intact');
  return ms;
}

const root = await mkdtemp(join(tmpdir(), 'ablate-bench-verify-'));
const figures: Record<string, unknown> = {
  sizeMiB,
  files,
  fileKiB,
  cpus: cpus().length,
  loadavg1: loadavg()[0],
};
try {
  // Inputs: one large file of random bytes, and a folder of small files.
  const big = join(root, 'big.bin');
  const fh = await open(big, 'w');
  const chunk = randomBytes(1 << 20);
  for (let i = 0; i < sizeMiB; i++) await fh.write(chunk.map((b) => b ^ (i & 0xff)));
  await fh.close();
  const folder = join(root, 'folder');
  for (let i = 0; i < files; i++) {
    const sub = join(folder, `d${Math.floor(i / 1000)}`);
    if (i % 1000 === 0) await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `f${i}.bin`), randomBytes(fileKiB * 1024));
  }
  const gb = (sizeMiB * 2 ** 20) / 1e9;
  const per10k = 10_000 / files;

  // File store.
  const fsRoot = join(root, 'fs-store');
  const fsStore = new ArtifactStore(new FsBackend(fsRoot));
  const bigRef = await fsStore.putFile(big);
  const treeRef = await fsStore.putTree(folder);
  const measureFs = async (name: string, ref: ArtifactRef, scale: number) => {
    await rm(join(fsRoot, '.verified'), { recursive: true, force: true });
    const store = new ArtifactStore(new FsBackend(fsRoot));
    const cold = await timed(() => store.isIntact(ref));
    const warm = await timed(() => store.isIntact(ref));
    const sidecar = await timed(() => new ArtifactStore(new FsBackend(fsRoot)).isIntact(ref));
    const full = await timed(async () => (await store.verify(ref)).status === 'ok');
    figures[`fs_${name}_cold_ms`] = cold * scale;
    figures[`fs_${name}_warm_ms`] = warm * scale;
    figures[`fs_${name}_sidecar_ms`] = sidecar * scale;
    figures[`fs_${name}_full_ms`] = full * scale;
  };
  await measureFs('per_gb', bigRef, 1 / gb);
  await measureFs('per_10k_files', treeRef, per10k);

  if (withS3) {
    const server = await startS3Server({ dataDir: join(root, 's3-data'), logFile: join(root, 's3.log') });
    Object.assign(process.env, server.env);
    try {
      const url = server.storeUrl('bench');
      const writer = await openStore(url);
      const s3Big = await writer.putFile(big);
      const s3Tree = await writer.putTree(folder);
      (writer.backend as S3Backend).destroy();
      const measureS3 = async (name: string, ref: ArtifactRef, scale: number) => {
        const store = await openStore(url);
        try {
          figures[`s3_${name}_cold_ms`] = (await timed(() => store.isIntact(ref))) * scale;
          figures[`s3_${name}_warm_ms`] = (await timed(() => store.isIntact(ref))) * scale;
        } finally {
          (store.backend as S3Backend).destroy();
        }
      };
      // 1 GiB goes up in parts: its checksum is composite, so cold is a full read.
      await measureS3('per_gb', s3Big, 1 / gb);
      await measureS3('per_10k_files', s3Tree, per10k);
    } finally {
      await server.stop();
    }
  }
  report('verifying a cache hit (ms per GB, ms per 10k-file folder)', figures);
} finally {
  await rm(root, { recursive: true, force: true });
}
