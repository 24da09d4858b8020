/**
 * Picks and starts the TensorFlow.js backend a training step runs on, once per process.
 *
 * Order (first that loads wins): `@tensorflow/tfjs-node-gpu` (only on a GPU worker), then
 * `@tensorflow/tfjs-node`, then `@tensorflow/tfjs` with the wasm backend (multithreaded where the
 * patches below apply), then the pure-JS `cpu` backend. The two native packages are optional
 * dependencies: on a machine that cannot download their libtensorflow binary they install without it,
 * fail to load here, and the next backend is used. `ABLATE_TFJS_BACKEND` forces one backend.
 *
 * wasm threads in Node: tfjs-backend-wasm 4.22 disables them in three places, patched here:
 *  1. the `WASM_HAS_MULTITHREAD_SUPPORT` flag is hard-wired to false under Node (tfjs#3830): set it true;
 *  2. the pthread worker script is handed over as a `blob:` URL that Node's worker_threads cannot load:
 *     `URL.createObjectURL` is overridden during init to return a real file holding the worker source, in
 *     which the branch that imports the main script from a Blob is replaced by an `importScripts` of the
 *     package's raw Emscripten glue (`wasm-out/tfjs-backend-wasm-threaded-simd.js`);
 *  3. the C++ side caps the thread count at `os.cpus().length / 2`; `os.cpus` reports doubled cores
 *     during init only.
 * All three rely on 4.22 internals, so they run only when the installed version is the pinned one and
 * the patch anchor is found; otherwise the backend starts single-threaded and says why.
 */
import { existsSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';

import type * as TfType from '@tensorflow/tfjs';
import type { BackendChoice } from '../../../infra/kinds/train-knobs';

import { workDirPath } from '../../runtime/work-dirs';

/** The tfjs version the wasm thread patches and the fast gradients were verified against. */
export const TFJS_PINNED_VERSION = '4.22.0';

/** Environment keys this module reads (only here). */
export const TRAIN_ENV = {
  /** Force a backend: `tensorflow-gpu`, `tensorflow`, `wasm` or `cpu`. */
  backend: 'ABLATE_TFJS_BACKEND',
  /** wasm thread count (1 disables the patches). Default: the number of cores. */
  wasmThreads: 'ABLATE_WASM_THREADS',
} as const;

/** The backends a training step can run on, in preference order. */
export type { BackendChoice } from '../../../infra/kinds/train-knobs';

type Tf = typeof TfType;

/** What was started: recorded in lineage through `ctx.annotate`. */
export interface TrainingRuntime {
  tf: Tf;
  /** The choice that loaded. */
  choice: BackendChoice;
  /** tfjs's own backend name (`tensorflow`, `wasm`, `cpu`). */
  backend: string;
  tfjsVersion: string;
  /** wasm threads actually running (1 for cpu; native backends manage their own pools: 0 = not ours). */
  threads: number;
  device: 'gpu' | 'cpu';
  /** Why a preferred backend was skipped, or why wasm runs single-threaded. */
  notes: string[];
}

/** Options of {@link initTrainingBackend}; explicit option > environment > default. */
export interface BackendOptions {
  /** Force one backend (no fallback). */
  force?: BackendChoice;
  /** Whether this worker has a GPU (decides whether tfjs-node-gpu is tried). @default false */
  gpu?: boolean;
  /** wasm threads. @default os.cpus().length */
  wasmThreads?: number;
}

const require = createRequire(import.meta.url);

/**
 * Whether this machine looks like a GPU worker (an NVIDIA device node, or CUDA_VISIBLE_DEVICES naming
 * devices): only then is tfjs-node-gpu tried, since loading it elsewhere fails slowly on missing CUDA.
 */
export function hasNvidiaGpu(): boolean {
  const visible = process.env.CUDA_VISIBLE_DEVICES;
  if (visible !== undefined) return visible !== '' && visible !== '-1';
  return existsSync('/dev/nvidiactl') || existsSync('/dev/nvidia0');
}
/**
 * The backend a training step will run on, without loading tfjs: the forced one (`force`, else
 * ABLATE_TFJS_BACKEND), else the first of tfjs-node-gpu (on a GPU worker), tfjs-node and wasm whose
 * package is installed. Part of the training kinds' cache keys: numerics differ between backends, so
 * a result computed on one is not served for another.
 */
export function expectedBackend(force?: BackendChoice): BackendChoice {
  const envForce = process.env[TRAIN_ENV.backend];
  const forced = force ?? (envForce ? parseChoice(envForce) : undefined);
  if (forced) return forced;
  const installed = (name: string) => {
    try {
      require.resolve(name);
      return true;
    } catch {
      return false;
    }
  };
  if (hasNvidiaGpu() && installed('@tensorflow/tfjs-node-gpu')) return 'tensorflow-gpu';
  if (installed('@tensorflow/tfjs-node')) return 'tensorflow';
  return 'wasm';
}

let started: Promise<TrainingRuntime> | undefined;
let wasmThreadsStarted: number | undefined;

/**
 * Starts the training backend (once per process; later calls return the same runtime unless `force`
 * names another already-registered backend, which is then activated: tests compare wasm and cpu that way).
 */
export async function initTrainingBackend(options: BackendOptions = {}): Promise<TrainingRuntime> {
  const envForce = process.env[TRAIN_ENV.backend];
  const force = options.force ?? (envForce ? parseChoice(envForce) : undefined);
  if (started && force) {
    const rt = await started;
    if (rt.choice !== force) return switchBackend(rt, force, options);
  }
  started ??= start({ ...options, force });
  return started;
}

function parseChoice(value: string): BackendChoice {
  const choices: BackendChoice[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
  if ((choices as string[]).includes(value)) return value as BackendChoice;
  throw new Error(`${TRAIN_ENV.backend}=${value} is not a backend: expected one of ${choices.join(', ')}`);
}

function wasmThreadCount(options: BackendOptions): number {
  const env = process.env[TRAIN_ENV.wasmThreads];
  const n = options.wasmThreads ?? (env ? Number(env) : os.cpus().length);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`wasm thread count must be a positive integer, got ${n}`);
  return n;
}

async function start(options: BackendOptions): Promise<TrainingRuntime> {
  const tf = await import('@tensorflow/tfjs');
  const notes: string[] = [];
  const order: BackendChoice[] = options.force
    ? [options.force]
    : options.gpu
      ? ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']
      : ['tensorflow', 'wasm', 'cpu'];
  for (const choice of order) {
    try {
      return await activate(tf, choice, options, notes);
    } catch (err) {
      if (options.force) throw err;
      notes.push(`${choice}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`no tfjs backend could start: ${notes.join('; ')}`);
}

async function switchBackend(
  rt: TrainingRuntime,
  force: BackendChoice,
  options: BackendOptions,
): Promise<TrainingRuntime> {
  const notes: string[] = [];
  const next = await activate(rt.tf, force, options, notes);
  started = Promise.resolve(next);
  return next;
}

async function activate(
  tf: Tf,
  choice: BackendChoice,
  options: BackendOptions,
  notes: string[],
): Promise<TrainingRuntime> {
  const base = { tf, choice, tfjsVersion: tf.version_core, notes };
  if (choice === 'tensorflow-gpu' || choice === 'tensorflow') {
    const pkg = choice === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
    if (!tf.findBackend('tensorflow')) {
      // A variable specifier: the package is optional and has no types here.
      const name: string = pkg;
      await import(name);
    }
    // A second copy of tfjs-core (version mismatch) would register the backend on another engine.
    if (!tf.findBackend('tensorflow'))
      throw new Error(`${pkg} loaded but registered no backend with this tfjs`);
    await setBackendOrThrow(tf, 'tensorflow');
    return {
      ...base,
      backend: 'tensorflow',
      threads: 0,
      device: choice === 'tensorflow-gpu' ? 'gpu' : 'cpu',
    };
  }
  if (choice === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (wasmThreadsStarted === undefined) {
      const wanted = wasmThreadCount(options);
      const patched =
        wanted > 1 ? await patchWasmThreads(tf, wasm.version_wasm, wanted) : 'one thread requested';
      if (patched !== true) notes.push(`wasm runs single-threaded: ${patched}`);
      try {
        await withDoubledCpus(patched === true, () => setBackendOrThrow(tf, 'wasm'));
      } finally {
        restoreObjectUrl?.();
      }
      const backend = tf.backend() as unknown as WasmBackendInternals;
      wasmThreadsStarted = backend.wasm?.tfjs?.getThreadsCount?.() ?? 1;
      // The pthread workers are ref'd Node workers: they would keep a finished process alive. The main
      // thread blocks while they compute, so unref'ing them changes nothing else.
      const pthreads = backend.wasm?.PThread;
      for (const worker of [...(pthreads?.runningWorkers ?? []), ...(pthreads?.unusedWorkers ?? [])])
        worker.unref();
    } else {
      await setBackendOrThrow(tf, 'wasm');
    }
    return { ...base, backend: 'wasm', threads: wasmThreadsStarted, device: 'cpu' };
  }
  await setBackendOrThrow(tf, 'cpu');
  return { ...base, backend: 'cpu', threads: 1, device: 'cpu' };
}

async function setBackendOrThrow(tf: Tf, name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`tf.setBackend('${name}') failed`);
  await tf.ready();
}

interface WasmBackendInternals {
  wasm?: {
    tfjs?: { getThreadsCount?: () => number };
    PThread?: { runningWorkers: Array<{ unref(): void }>; unusedWorkers: Array<{ unref(): void }> };
  };
}

let restoreObjectUrl: (() => void) | undefined;

/** Applies patches 1 and 2; returns true, or the reason threads stay off. */
async function patchWasmThreads(tf: Tf, wasmVersion: string, threads: number): Promise<true | string> {
  if (wasmVersion !== TFJS_PINNED_VERSION) {
    return `tfjs-backend-wasm ${wasmVersion} is not the pinned ${TFJS_PINNED_VERSION} the thread patches target`;
  }
  const pkgDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  const gluePath = join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js');
  const { wasmWorkerContents } = require(
    join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.worker.js'),
  ) as {
    wasmWorkerContents: string;
  };
  // The worker's branch that loads the main script: a string URL or a Blob. Ours is always the glue file.
  const anchor = /if\s*\(typeof e\.data\.urlOrBlob\s*==\s*"string"\)\s*\{[^}]*\}\s*else\s*\{[^}]*\}/;
  if (!anchor.test(wasmWorkerContents)) return 'the pthread worker source has no urlOrBlob branch to patch';
  // The contents are a template literal whose `\n` escapes became real newlines inside JS strings;
  // re-escape them as tfjs does before writing the file.
  const workerSource = wasmWorkerContents
    .replace(/\n/g, '\\n')
    .replace(anchor, `importScripts(${JSON.stringify(gluePath)});`);
  // Needed as long as the process runs (pthreads load it); removed at exit, or swept after a SIGKILL.
  const dir = workDirPath('wasm');
  await mkdir(dir, { recursive: true });
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const workerPath = join(dir, 'tfjs-backend-wasm-threaded-simd.worker.cjs');
  await writeFile(workerPath, workerSource);

  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  const original = URL.createObjectURL.bind(URL);
  URL.createObjectURL = (obj: Blob) => {
    // Only the worker script goes through here during init; any other Blob keeps the real behaviour.
    if (obj instanceof Blob && obj.type === 'application/javascript') return workerPath;
    return original(obj);
  };
  restoreObjectUrl = () => {
    URL.createObjectURL = original;
    restoreObjectUrl = undefined;
  };
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  wasm.setThreadsCount(threads);
  return true;
}

/** Patch 3: the wasm module caps threads at cores/2; report doubled cores while it initialises. */
async function withDoubledCpus<T>(enabled: boolean, fn: () => Promise<T>): Promise<T> {
  if (!enabled) return fn();
  const original = os.cpus;
  os.cpus = () => {
    const cpus = original();
    return [...cpus, ...cpus];
  };
  try {
    return await fn();
  } finally {
    os.cpus = original;
  }
}
