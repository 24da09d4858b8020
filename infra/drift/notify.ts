/**
 * Notifications on drift or failure: run a command with the payload on stdin, and/or POST the payload
 * as JSON to a URL. A notifier that fails, hangs or answers an error is logged and never fails the
 * run or the drift report that triggered it: the report is already written when we notify.
 */
import { spawn } from 'node:child_process';

import { errorMessage } from '../errors';

/** Where to send notifications. Both may be given; neither means no notification. */
export interface NotifyOptions {
  /** Shell command run with the payload JSON on stdin and `ABLATE_*` environment variables. */
  command?: string;
  /** URL that receives the payload as a JSON POST. */
  url?: string;
  /** Limit for each notifier; a command still running is killed (SIGTERM, then SIGKILL). @default 30000 */
  timeoutMs?: number;
  /** Where notifier output and failures go. @default console.error */
  log?: (line: string) => void;
}

/** What a notification says. */
export interface NotifyPayload {
  /** `drift`: a run drifted from its baseline; `failure`: a run failed; `no-drift`: checked, all within tolerance. */
  event: 'drift' | 'failure' | 'no-drift';
  pipeline: string;
  runId: string;
  /** One line, e.g. `drift in 3 of 86 cells: AP -0.012 on …; cause: …`, or why the run failed. */
  verdict: string;
  baselineRunId?: string;
  /** The drift report artifact, when one was written. */
  report?: { uri: string; digest: string };
  /** Extra facts a caller wants to pass on (e.g. the schedule id). */
  [key: string]: unknown;
}

/** What happened to one notifier. */
export interface NotifyResult {
  channel: 'command' | 'url';
  ok: boolean;
  /** Why it failed (exit status, HTTP status, timeout, network error). */
  error?: string;
}

/** Default limit for one notifier: long enough for a chat webhook, short enough not to stall a schedule. */
export const DEFAULT_NOTIFY_TIMEOUT_MS = 30_000;

/** Send `payload` to every notifier in `options`, in parallel. Never throws. */
export async function notify(options: NotifyOptions, payload: NotifyPayload): Promise<NotifyResult[]> {
  const log = options.log ?? ((line: string) => console.error(line));
  const timeoutMs = options.timeoutMs ?? DEFAULT_NOTIFY_TIMEOUT_MS;
  const jobs: Array<Promise<NotifyResult>> = [];
  if (options.command) jobs.push(notifyCommand(options.command, payload, timeoutMs, log));
  if (options.url) jobs.push(notifyUrl(options.url, payload, timeoutMs));
  const results = await Promise.all(jobs);
  for (const r of results)
    if (!r.ok)
      log(
        `notify: ${r.channel === 'command' ? `command ${JSON.stringify(options.command)}` : `POST ${options.url}`} failed: ${r.error}`,
      );
  return results;
}

/** Environment variables a notify command sees, besides the payload on stdin. */
export function notifyEnv(payload: NotifyPayload): Record<string, string> {
  return {
    ABLATE_EVENT: payload.event,
    ABLATE_PIPELINE: payload.pipeline,
    ABLATE_RUN_ID: payload.runId,
    ABLATE_VERDICT: payload.verdict,
    ABLATE_BASELINE_RUN_ID: payload.baselineRunId ?? '',
    ABLATE_REPORT_URI: payload.report?.uri ?? '',
    ABLATE_REPORT_DIGEST: payload.report?.digest ?? '',
  };
}

// Output kept from a notify command, per stream: enough for an error message, bounded so a chatty
// command cannot fill memory.
const MAX_OUTPUT_CHARS = 4000;

function notifyCommand(
  command: string,
  payload: NotifyPayload,
  timeoutMs: number,
  log: (line: string) => void,
): Promise<NotifyResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: NotifyResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      resolve(result);
    };
    let killTimer: NodeJS.Timeout | undefined;
    const child = spawn(command, {
      shell: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...notifyEnv(payload) },
      // Its own process group, so a timeout kills what the shell started too.
      detached: process.platform !== 'win32',
    });
    let out = '';
    const keep = (chunk: Buffer) => {
      if (out.length < MAX_OUTPUT_CHARS)
        out += chunk.toString('utf8').slice(0, MAX_OUTPUT_CHARS - out.length);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const kill = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined && process.platform !== 'win32') process.kill(-child.pid, signal);
        else child.kill(signal);
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      kill('SIGTERM');
      killTimer = setTimeout(() => kill('SIGKILL'), 2000);
      done({ channel: 'command', ok: false, error: `timed out after ${timeoutMs} ms` });
    }, timeoutMs);
    child.on('error', (err) => done({ channel: 'command', ok: false, error: errorMessage(err) }));
    child.on('close', (code, signal) => {
      const text = out.trim();
      if (text) log(`notify command output: ${text}`);
      if (code === 0) done({ channel: 'command', ok: true });
      else
        done({
          channel: 'command',
          ok: false,
          error: signal ? `killed by ${signal}` : `exit status ${code}`,
        });
    });
    // A command that does not read stdin closes the pipe early: that is not a failure.
    child.stdin.on('error', () => undefined);
    child.stdin.end(JSON.stringify(payload));
  });
}

async function notifyUrl(url: string, payload: NotifyPayload, timeoutMs: number): Promise<NotifyResult> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(timeoutMs),
    });
    // Drain the body so the connection is released.
    const text = await response.text().catch(() => '');
    if (!response.ok)
      return {
        channel: 'url',
        ok: false,
        error: `HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`,
      };
    return { channel: 'url', ok: true };
  } catch (err) {
    const e = err as Error & { cause?: unknown };
    const reason =
      e.name === 'TimeoutError'
        ? `timed out after ${timeoutMs} ms`
        : `${e.message}${e.cause ? ` (${errorMessage(e.cause)})` : ''}`;
    return { channel: 'url', ok: false, error: reason };
  }
}
