/**
 * Trainer processes: the gpu queue's workers that `ablate run --slots gpu=N` starts as N child
 * processes (`ablate worker --queue gpu --slots 1 --parent-pid <us>`), because tfjs blocks a process's
 * JS thread while it trains: two trainings run in parallel only in two processes. Each runs one step
 * on one wasm thread (`ABLATE_WASM_THREADS=1`), and writes its output to `<home>/logs/trainer-<n>.log`.
 *
 * No orphans, however this process ends: `close()` sends SIGTERM (the worker's wind-down: running
 * steps get 5 s, then save a checkpoint), waits, and SIGKILLs after a bound; an `exit` handler SIGTERMs
 * whatever is left on a sudden exit; and each child watches us (IPC channel and parent pid, see
 * `exitWithParent` in lifecycle.ts), so even a SIGKILL of this process ends them within seconds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Client } from '@temporalio/client';

import type { AblateConfig } from '../../temporal.config';
import { expectedBackend, TRAIN_ENV } from '../../activities/kinds/train/backend';
import type { QueueName } from '../../workflows/plan-types';
import { QUEUES } from '../task-queues';
import { EnvKey } from '../env';
import { AblateError, ErrorType } from '../errors';
import { configArgs } from './config-flags';
import { hurried, onShutdown } from './lifecycle';

const BIN = fileURLToPath(new URL('../../bin/ablate.mjs', import.meta.url));

/** Messages between `ablate run` and its trainer processes (over the IPC channel). */
export type TrainerMessage =
  | { type: 'ready'; pid: number }
  /** Ask for the CPU time used so far. */
  | { type: 'cpu?' }
  /** CPU time used so far, microseconds (`process.cpuUsage()`). */
  | { type: 'cpu'; user: number; system: number };

/** One trainer process. */
export interface Trainer {
  /** 1-based, as in its log's name. */
  index: number;
  pid: number;
  logPath: string;
}

export interface TrainerPool {
  trainers: Trainer[];
  /**
   * Resolves once every trainer polls the gpu queue; rejects, naming the trainer and its log's last
   * lines, if one exits before that or none is ready within `readyTimeoutMs`.
   */
  ready: Promise<void>;
  /** Resolves (with a one-line account) when every trainer has exited on its own, i.e. not in close(). */
  allExited: Promise<string>;
  /**
   * CPU time (user + system, µs) the trainers used so far: asked of the live ones (bounded), the
   * last report of the ones that ended. Measured by each process itself.
   */
  cpuMicros(): Promise<number>;
  /** Stop them: SIGTERM, wait up to `graceMs`, then SIGKILL. Idempotent. */
  close(options?: { graceMs?: number }): Promise<void>;
}

export interface TrainerPoolOptions {
  config: AblateConfig;
  count: number;
  /** Pass --debug on. */
  debug?: boolean;
  /** @default 120 s: loading tfjs and bundling on a busy small machine takes a while */
  readyTimeoutMs?: number;
  /** A trainer ended on its own (not in `close()`): its account, and how many still run. */
  onExit?: (account: string, left: number) => void;
}

/** A worker's wind-down: 5 s for running steps, up to 40 s for a cancelled step to stop and checkpoint. */
export const TRAINER_STOP_GRACE_MS = 50_000;

interface Child {
  trainer: Trainer;
  process: ChildProcess;
  /** How it ended: `exit code N` or the signal's name. */
  exited: Promise<string>;
  /** Last CPU report, µs. */
  cpuMicros: number;
  isReady: boolean;
}

function isRunning(c: Child): boolean {
  return c.process.exitCode === null && c.process.signalCode === null;
}

export function startTrainers(options: TrainerPoolOptions): TrainerPool {
  const { config, count } = options;
  const env: NodeJS.ProcessEnv = { ...process.env, [TRAIN_ENV.wasmThreads]: '1' };
  // The children are told their slots explicitly; the run's own setting must not leak into them.
  delete env[EnvKey.Slots];
  const children: Child[] = [];
  let closing = false;
  for (let index = 1; index <= count; index++) {
    const logPath = join(config.home, 'logs', `trainer-${index}.log`);
    const out = openSync(logPath, 'a');
    const args = [
      BIN,
      'worker',
      '--queue',
      'gpu',
      '--slots',
      '1',
      '--no-workflows',
      '--allow-cpu-fallback',
      '--parent-pid',
      String(process.pid),
      ...configArgs(config),
      ...(options.debug ? ['--debug'] : []),
    ];
    // Its own process group: a Ctrl-C in the terminal reaches `ablate run` alone, which decides.
    const child = spawn(process.execPath, args, { stdio: ['ignore', out, out, 'ipc'], env, detached: true });
    closeSync(out);
    const exited = new Promise<string>((resolve) => {
      child.once('exit', (code, signal) => resolve(signal ?? `exit code ${code}`));
      // A process that could not be spawned emits no 'exit'.
      child.once('error', (err) => {
        if (child.pid === undefined) resolve(`not started: ${err.message}`);
      });
    });
    const c: Child = {
      trainer: { index, pid: child.pid ?? -1, logPath },
      process: child,
      exited,
      cpuMicros: 0,
      isReady: false,
    };
    void exited.then((how) => {
      if (closing || !c.isReady) return;
      const left = children.filter(isRunning).length;
      options.onExit?.(`trainer ${index} (pid ${c.trainer.pid}) exited (${how}; log ${logPath})`, left);
    });
    child.on('message', (m: TrainerMessage) => {
      if (m.type === 'ready') c.isReady = true;
      else if (m.type === 'cpu') c.cpuMicros = m.user + m.system;
    });
    // An IPC write to a child that just died: the exit handler reports it.
    child.on('error', () => undefined);
    children.push(c);
  }
  const onExit = () => {
    for (const c of children) if (isRunning(c)) c.process.kill('SIGTERM');
  };
  process.once('exit', onExit);

  const tail = async (c: Child) =>
    (await readFile(c.trainer.logPath, 'utf8').catch(() => ''))
      .trim()
      .split('\n')
      .filter((l) => l && !/^WARNING: this gpu worker trains on CPU/.test(l))
      .slice(-3)
      .join(' | ');

  const ready = (async () => {
    const deadline = Date.now() + (options.readyTimeoutMs ?? 120_000);
    for (;;) {
      for (const c of children) {
        if (!isRunning(c) || c.trainer.pid === -1)
          throw new AblateError(
            ErrorType.InvalidConfig,
            `trainer ${c.trainer.index} (pid ${c.trainer.pid}) exited before it was ready (see ${c.trainer.logPath}): ${await tail(c)}`,
          );
      }
      if (children.every((c) => c.isReady)) return;
      if (closing) return;
      if (Date.now() > deadline) {
        const late = children.filter((c) => !c.isReady);
        throw new AblateError(
          ErrorType.InvalidConfig,
          `${late.length} trainer process(es) not ready within ${(options.readyTimeoutMs ?? 120_000) / 1000} s (see ${late[0]!.trainer.logPath}): ${await tail(late[0]!)}`,
          { retryable: true },
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  ready.catch(() => undefined);

  const allExited = (async () => {
    const how = await Promise.all(children.map((c) => c.exited));
    if (closing) return new Promise<string>(() => undefined);
    return `all ${children.length} trainer processes exited (${how.map((h, i) => `trainer ${i + 1}: ${h}`).join(', ')}; logs: ${join(config.home, 'logs', 'trainer-N.log')})`;
  })();

  let closed: Promise<void> | undefined;
  let killAt = Infinity;
  let killTimer: NodeJS.Timeout | undefined;
  const killLate = () => {
    for (const c of children) if (isRunning(c)) c.process.kill('SIGKILL');
  };
  return {
    trainers: children.map((c) => c.trainer),
    ready,
    allExited,
    async cpuMicros() {
      const live = children.filter((c) => c.process.connected && c.process.exitCode === null);
      await Promise.all(
        live.map(
          (c) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, 1_000);
              const onMessage = (m: TrainerMessage) => {
                if (m.type !== 'cpu') return;
                clearTimeout(timer);
                c.process.off('message', onMessage);
                resolve();
              };
              c.process.on('message', onMessage);
              c.process.send({ type: 'cpu?' } satisfies TrainerMessage, (err) => {
                if (err) resolve();
              });
            }),
        ),
      );
      return children.reduce((sum, c) => sum + c.cpuMicros, 0);
    },
    close(closeOptions = {}) {
      // A later close with a shorter grace (a second Ctrl-C while the first wind-down runs) hurries it.
      const deadline = Date.now() + (closeOptions.graceMs ?? TRAINER_STOP_GRACE_MS);
      if (deadline < killAt) {
        killAt = deadline;
        clearTimeout(killTimer);
        killTimer = setTimeout(killLate, Math.max(0, killAt - Date.now()));
      }
      return (closed ??= (async () => {
        closing = true;
        for (const c of children) if (isRunning(c)) c.process.kill('SIGTERM');
        await Promise.all(children.map((c) => c.exited));
        clearTimeout(killTimer);
        for (const c of children) if (c.process.connected) c.process.disconnect();
        process.off('exit', onExit);
      })());
    },
  };
}

/** The trainer processes of one command (possibly none), stopped by `close()` or on any exit path. */
export interface CommandTrainers {
  pool: TrainerPool | undefined;
  close(): Promise<void>;
}

/**
 * Start the trainer processes `config.trainerProcesses` asks for, for a command whose session runs
 * in-process workers for the cpu queue only (see {@link workerQueues}); print the one line about them
 * and wait until they poll. None when the session runs no workers (background workers serve the
 * state directory: then say so). Their stop is registered for every exit path (a second Ctrl-C
 * shortens it).
 */
export async function startCommandTrainers(
  session: { workers: unknown; backgroundWorkersPid: number | undefined },
  config: AblateConfig,
  debug: boolean,
): Promise<CommandTrainers> {
  const count = config.trainerProcesses;
  if (!count) return { pool: undefined, close: async () => undefined };
  if (!session.workers) {
    console.error(
      `--slots gpu=${count} ignored: ${session.backgroundWorkersPid ? `the background workers (pid ${session.backgroundWorkersPid}) serve this state directory` : 'this command runs no workers'}`,
    );
    return { pool: undefined, close: async () => undefined };
  }
  const pool = startTrainers({
    config,
    count,
    debug,
    onExit: (account, left) => {
      if (left > 0) console.error(`${account}; ${left} of ${count} still train`);
    },
  });
  const grace = () => ({ graceMs: hurried.aborted ? 2_000 : undefined });
  const unregister = onShutdown(() => pool.close(grace()));
  const close = async () => {
    await pool.close(grace());
    unregister();
  };
  let backend: string;
  try {
    backend = expectedBackend();
  } catch {
    backend = 'backend per ABLATE_TFJS_BACKEND'; // invalid: each trainer's log says why
  }
  console.error(
    `${count} trainer process${count === 1 ? '' : 'es'} (${backend === 'wasm' ? 'wasm, 1 thread each' : backend}); logs: ${config.home}/logs/trainer-N.log`,
  );
  try {
    await pool.ready;
  } catch (err) {
    await close();
    throw err;
  }
  return { pool, close };
}

/** The queues a command's in-process workers serve: the cpu queue alone when trainers take the gpu one. */
export function workerQueues(config: AblateConfig): readonly QueueName[] {
  return config.trainerProcesses ? ['cpu'] : QUEUES;
}

/**
 * Cancel `runId` when every trainer has died (its training steps would wait forever otherwise), saying
 * why; nothing once the command is winding down.
 */
export function cancelWhenTrainersDie(
  trainers: CommandTrainers,
  session: { call<T>(fn: () => Promise<T>): Promise<T>; client: Client },
  runId: string,
  interrupted: AbortSignal,
): void {
  void trainers.pool?.allExited.then(async (why) => {
    if (interrupted.aborted) return;
    console.error(`${why}: cancelling run ${runId}`);
    await session.call(() => session.client.workflow.getHandle(runId).cancel()).catch(() => undefined);
  });
}
