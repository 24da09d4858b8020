/**
 * Bounded-concurrency transfers for folder artifacts: many files in flight at once, results handed
 * back in input order (a tree manifest lists its files sorted, and its bytes are its identity), progress
 * counted as files finish, and cancellation by AbortSignal that lets in-flight work stop before the
 * caller cleans up.
 */

import { setMaxListeners } from 'node:events';

/** How many files of a folder move at once when nothing else says. */
export const DEFAULT_TRANSFER_CONCURRENCY = 16;

/** Progress of a folder (or file) transfer, reported as files finish. Counts never decrease. */
export interface TransferProgress {
  /** `put` or `get`. */
  direction: 'put' | 'get';
  filesDone: number;
  /** Known up front for both directions (the listing, or the manifest). */
  filesTotal: number;
  bytesDone: number;
  /** Known for gets (the manifest lists sizes); undefined for puts, whose sizes are learnt as they go. */
  bytesTotal?: number;
  /** Bytes per second since the transfer started. */
  bytesPerSec: number;
  /** Seconds left at the current rate (by bytes when the total is known, else by files). */
  etaSec?: number;
}

/** Options every store transfer takes. */
export interface TransferOptions {
  /**
   * Stops the transfer: no new file starts, files in flight are aborted, and the call rejects with the
   * signal's reason once they have stopped (a get leaves nothing behind).
   */
  signal?: AbortSignal;
  /** Called after every finished file (and once at the start, with zero done). */
  onProgress?: (progress: TransferProgress) => void;
}

/** Counts files and bytes of one transfer and reports them with a rate and an ETA. */
export class ProgressCounter {
  private filesDone = 0;
  private bytesDone = 0;
  private readonly startMs = Date.now();

  constructor(
    private readonly direction: TransferProgress['direction'],
    private readonly filesTotal: number,
    private readonly bytesTotal: number | undefined,
    private readonly onProgress: TransferOptions['onProgress'],
  ) {
    this.report();
  }

  /** One more file of `sizeBytes` done. */
  add(sizeBytes: number): void {
    this.filesDone += 1;
    this.bytesDone += sizeBytes;
    this.report();
  }

  private report(): void {
    if (!this.onProgress) return;
    const elapsedSec = Math.max(1e-3, (Date.now() - this.startMs) / 1000);
    const bytesPerSec = this.bytesDone / elapsedSec;
    let etaSec: number | undefined;
    if (this.bytesTotal !== undefined && bytesPerSec > 0)
      etaSec = (this.bytesTotal - this.bytesDone) / bytesPerSec;
    else if (this.filesDone > 0) etaSec = ((this.filesTotal - this.filesDone) * elapsedSec) / this.filesDone;
    this.onProgress({
      direction: this.direction,
      filesDone: this.filesDone,
      filesTotal: this.filesTotal,
      bytesDone: this.bytesDone,
      ...(this.bytesTotal !== undefined ? { bytesTotal: this.bytesTotal } : {}),
      bytesPerSec,
      ...(etaSec !== undefined ? { etaSec } : {}),
    });
  }
}

/**
 * Run `fn` over the items of an (async) iterable with at most `limit` calls in flight, handing each
 * result to `onResult` in input order. Memory stays bounded for any number of items: at most
 * `4 * limit` items are between being started and being handed on (a slow item holds back new
 * starts rather than growing a reorder buffer). On the first error (or an abort of `signal`) no new
 * item starts; the call rejects only after every call in flight has settled, so the caller may clean
 * up what they wrote.
 */
export async function mapOrderedLimit<T, R>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  onResult: (result: R, item: T, index: number) => void | Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`concurrency must be >= 1, got ${limit}`);
  const window = 4 * limit;
  const iterator = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
  const settled = new Map<number, { ok: true; value: R; item: T } | { ok: false; error: unknown }>();
  const inFlight = new Set<Promise<void>>();
  let started = 0;
  let emitted = 0;
  let exhausted = false;
  let failure: { error: unknown } | undefined;

  const flush = async () => {
    for (let s = settled.get(emitted); s; s = settled.get(emitted)) {
      settled.delete(emitted);
      if (!s.ok) throw s.error;
      await onResult(s.value, s.item, emitted);
      emitted += 1;
    }
  };

  try {
    for (;;) {
      while (!failure && !exhausted && inFlight.size < limit && started - emitted < window) {
        signal?.throwIfAborted();
        const next = await iterator.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        const index = started++;
        const item = next.value;
        const p: Promise<void> = fn(item, index).then(
          (value) => void settled.set(index, { ok: true, value, item }),
          (error: unknown) => void settled.set(index, { ok: false, error }),
        );
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
      if (inFlight.size === 0) break;
      await Promise.race(inFlight);
      // Let the `finally` above drop the settled promise from the set.
      await Promise.resolve();
      await flush();
      signal?.throwIfAborted();
    }
    await flush();
  } catch (error) {
    failure = { error };
    await Promise.allSettled([...inFlight]);
    throw error;
  } finally {
    if (!exhausted) await (iterator as AsyncIterator<T>).return?.();
  }
}

/**
 * A signal that follows `signal`, for handing to many concurrent operations: each stream pipeline adds
 * an abort listener, and more than 10 on one signal draws Node's leak warning. `dispose` detaches it.
 */
export function fanOutSignal(
  signal: AbortSignal | undefined,
  listeners: number,
): { signal: AbortSignal | undefined; dispose: () => void } {
  if (!signal) return { signal: undefined, dispose: () => undefined };
  const local = new AbortController();
  setMaxListeners(listeners + 10, local.signal);
  const follow = () => local.abort(signal.reason);
  if (signal.aborted) follow();
  else signal.addEventListener('abort', follow, { once: true });
  return { signal: local.signal, dispose: () => signal.removeEventListener('abort', follow) };
}
