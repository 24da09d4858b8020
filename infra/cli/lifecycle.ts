/**
 * How an `ablate` process ends: exit codes, and what Ctrl-C, SIGTERM, a closed pipe (`| head`) and an
 * uncaught error do. Every path winds down in the same order (stop following the run, let calls in
 * flight settle, stop in-process workers, close the connection, leave the embedded server, which
 * stops it when this was its last user), so no exit leaves a server that nothing will reuse or stop.
 *
 *   Ctrl-C once      a command that follows something (`run`, `status --watch`, `worker`) gets the
 *                    interrupt and ends itself (detach: one line, exit 130); any other command winds
 *                    down and exits 130
 *   Ctrl-C twice     stop waiting for running steps (they were cancelled and checkpoint), exit 130
 *   Ctrl-C 3 times   exit at once
 *   SIGTERM          wind down quietly, exit 143
 *   SIGPIPE / EPIPE  stdout or stderr was closed: wind down quietly, exit 141
 *   parent gone      a child process (`ablate worker --parent-pid`) whose parent ended, however it
 *                    ended (SIGKILL included): wind down as on SIGTERM, exit 143 (bounded)
 */
import { errorMessage } from '../errors';

/** Exit codes of `ablate`, documented in `ablate --help` and the README. */
export const ExitCode = {
  Ok: 0,
  /** The run (or check) failed: a step failed, an artifact is corrupt, the operation did not succeed. */
  Failed: 1,
  /** Wrong command line or invalid pipeline. */
  Usage: 2,
  /** The environment is wrong: state directory, store, Temporal server or binary, port, credentials. */
  Environment: 3,
  /** ablate itself failed (a bug): rerun with --debug and report the stack. */
  Internal: 70,
  /** Interrupted by Ctrl-C; a run goes on (or resumes) and `ablate status RUN --watch` reattaches. */
  Interrupted: 130,
  /** The output was closed (SIGPIPE / EPIPE, e.g. `ablate runs | head`). */
  OutputClosed: 141,
  /** Terminated by SIGTERM. */
  Terminated: 143,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0    success
  1    the run failed (a step failed or was cancelled), or a check failed
  2    usage error or invalid pipeline
  3    bad environment (state directory, store, Temporal server or binary, port, credentials)
  70   internal error (rerun with --debug and report the stack)
  130  interrupted by Ctrl-C: detached from the run (\`ablate status RUN_ID --watch\` reattaches)
  141  output closed (e.g. piped into \`head\`)
  143  terminated by SIGTERM`;

const OURS = Symbol('ablate.processHandler');
const interrupt = new AbortController();
const urgent = new AbortController();
const cleanups = new Set<() => Promise<void>>();
let claims = 0;
let interrupts = 0;
let exitOverride: number | undefined;
let shuttingDown: Promise<never> | undefined;
let installed = false;
let debug = false;

/** The first Ctrl-C (or SIGTERM, EPIPE): a command that claimed the interrupt winds itself down. */
export const interrupted: AbortSignal = interrupt.signal;
/** The second Ctrl-C: stop waiting for running steps. */
export const hurried: AbortSignal = urgent.signal;

/** The exit code a signal imposed (e.g. 143 after SIGTERM), if any. */
export function imposedExitCode(): number | undefined {
  return exitOverride;
}

/** Whether the process is winding down after a signal or a fatal error. */
export function isShuttingDown(): boolean {
  return shuttingDown !== undefined || interrupt.signal.aborted;
}

/** Register what must run before the process exits (e.g. `session.close`); returns the unregister. */
export function onShutdown(fn: () => Promise<void>): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/**
 * Handle the first interrupt in the command itself (it watches {@link interrupted} and returns its
 * own exit code) instead of the generic wind-down. Returns the release.
 */
export function claimInterrupt(): () => void {
  claims++;
  let released = false;
  return () => {
    if (!released) claims--;
    released = true;
  };
}

/**
 * Run the registered clean-ups, then exit with `code`. Bounded: 20 s (workers give running steps 5 s,
 * the server up to 10 s to stop), 3 s when hurried by a second Ctrl-C.
 */
export function shutdown(code: number): Promise<never> {
  exitOverride ??= code;
  if (!interrupt.signal.aborted) interrupt.abort();
  const boundMs = urgent.signal.aborted ? 3_000 : 20_000;
  const bounded = (async () => {
    const all = Promise.allSettled([...cleanups].map((fn) => fn()));
    // A ref'd timer: it keeps the process alive until the clean-ups are done (or the bound passes).
    await Promise.race([all, new Promise((r) => setTimeout(r, boundMs))]);
    process.exit(exitOverride ?? code);
  })();
  shuttingDown ??= bounded;
  return bounded;
}

/**
 * End the process with `code`: a command that claimed the interrupt winds itself down (and `main`
 * returns the imposed code); otherwise the generic wind-down runs.
 */
function terminate(code: number): void {
  exitOverride ??= code;
  if (claims > 0) {
    if (!interrupt.signal.aborted) interrupt.abort();
  } else void shutdown(code);
}

/** How often a child checks that its parent is still there. */
const PARENT_POLL_MS = 1_000;
/** A child whose parent is gone winds down like on SIGTERM, but never takes longer than this. */
export const ORPHAN_EXIT_BOUND_MS = 45_000;

/**
 * End this process when `parentPid` ends, however it ends (a SIGKILLed parent runs no clean-up): the
 * IPC channel closing (when there is one) tells at once, and a poll of our parent pid every second is
 * the backstop (an orphan is re-parented, so `process.ppid` changes; a reused pid cannot fool it).
 * The wind-down is the SIGTERM one; a hard bound makes sure it ends. Returns the stop.
 */
export function exitWithParent(parentPid: number, log: (message: string) => void): () => void {
  let lost = false;
  const onLost = (how: string) => {
    if (lost) return;
    lost = true;
    stop();
    log(`the parent process (pid ${parentPid}) is gone (${how}): stopping`);
    // Unref'd: a wind-down that ends sooner exits sooner.
    setTimeout(() => process.exit(exitOverride ?? ExitCode.Terminated), ORPHAN_EXIT_BOUND_MS).unref();
    terminate(ExitCode.Terminated);
  };
  const timer = setInterval(() => {
    if (process.ppid !== parentPid) onLost('re-parented');
  }, PARENT_POLL_MS);
  timer.unref();
  const onDisconnect = () => onLost('channel closed');
  if (process.channel) process.once('disconnect', onDisconnect);
  const stop = () => {
    clearInterval(timer);
    process.off('disconnect', onDisconnect);
  };
  if (process.ppid !== parentPid) onLost('re-parented');
  return stop;
}

function onInterrupt(): void {
  interrupts++;
  if (interrupts === 1) terminate(ExitCode.Interrupted);
  else if (interrupts === 2) {
    urgent.abort();
    process.stderr.write('\nstopping now: running steps are cancelled and resume from their checkpoint\n');
    void shutdown(ExitCode.Interrupted);
  } else {
    process.exit(ExitCode.Interrupted);
  }
}

function onFatal(err: unknown): void {
  // While winding down, a call cut short by the closed connection may still reject: expected.
  if (isShuttingDown()) return;
  process.stderr.write(
    `ablate: internal error: ${errorMessage(err).split('\n')[0]}${debug && err instanceof Error && err.stack ? `\n${err.stack}` : ' (run again with --debug for the stack trace)'}\n`,
  );
  void shutdown(ExitCode.Internal);
}

function onOutputError(err: NodeJS.ErrnoException): void {
  if (err.code === 'EPIPE') terminate(ExitCode.OutputClosed);
}

/**
 * Install the process-level handlers, once. Also keeps libraries from installing their own
 * `uncaughtException` / `unhandledRejection` handlers: tfjs-backend-wasm's Emscripten runtime
 * rethrows from one, which makes Node print its 54 KB minified source and exit with code 7.
 */
export function installProcessHandlers(options: { debug: boolean }): void {
  debug = options.debug;
  if (installed) return;
  installed = true;
  const guarded = new Set<string | symbol>(['uncaughtException', 'unhandledRejection']);
  for (const method of ['on', 'addListener', 'prependListener', 'once', 'prependOnceListener'] as const) {
    const original = process[method].bind(process) as (e: string | symbol, l: unknown) => NodeJS.Process;
    (process as unknown as Record<string, unknown>)[method] = (event: string | symbol, listener: unknown) => {
      if (guarded.has(event) && !(listener as Record<symbol, unknown>)[OURS]) return process;
      return original(event, listener);
    };
  }
  const fatal = Object.assign(onFatal, { [OURS]: true });
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', () => terminate(ExitCode.Terminated));
  // Node ignores SIGPIPE and reports EPIPE on the stream instead; handle both.
  process.on('SIGPIPE', () => terminate(ExitCode.OutputClosed));
  process.stdout.on('error', onOutputError);
  process.stderr.on('error', onOutputError);
}
