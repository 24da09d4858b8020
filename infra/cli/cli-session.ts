/**
 * Sessions for CLI commands: opened with ablate's console logging, wound down by the process
 * handlers (lifecycle.ts) on every exit path, and never left half-open by a Ctrl-C that arrives while
 * the embedded server starts.
 */
import type { AblateConfig } from '../../temporal.config';
import type { Session, SessionOptions } from '../session';
import { claimInterrupt, imposedExitCode, interrupted, onShutdown } from './lifecycle';

/** The command was interrupted (Ctrl-C, SIGTERM, closed output) before it could do its work. */
export class InterruptedError extends Error {
  override readonly name = 'InterruptedError';
  constructor(readonly exitCode: number) {
    super('interrupted');
  }
}

/** Open a session for a command; `close()` it in a `finally` (signals close it too). */
export async function openCliSession(
  config: AblateConfig,
  options: Omit<SessionOptions, 'log'> & { debug: boolean },
): Promise<Session> {
  const { openSession } = await import('../session');
  // Hold the interrupt while opening: a signal now must not exit between spawning a server and
  // recording it. It is honoured right after.
  const release = claimInterrupt();
  let session: Session;
  try {
    session = await openSession(config, { ...options, log: (m) => console.error(m) });
  } finally {
    release();
  }
  const unregister = onShutdown(() => session.close());
  const close = () => session.close();
  const wrapped: Session = {
    ...session,
    // Unregistered only once closed: a signal during the close must wait for it, not exit midway.
    close: async () => {
      await close();
      unregister();
    },
  };
  if (interrupted.aborted) {
    await wrapped.close();
    throw new InterruptedError(imposedExitCode() ?? 130);
  }
  return wrapped;
}

/** Whether --debug was given. */
export function isDebug(values: Record<string, unknown>): boolean {
  return values.debug === true;
}
