/**
 * Folder transfers as step heartbeats: a fetch or publish of a large folder can take minutes, so its
 * progress goes out as the heartbeat's message, e.g. `fetching images: 1,234/10,000 files, 56 MB/s,
 * ETA 12 s`, on top of the kind's own last progress (its iteration and checkpoint must survive: a
 * retried attempt resumes from the checkpoint in the last heartbeat).
 */
import type { TransferProgress } from '../../infra/store/index';
import type { StepProgress } from './step-kind';

/** How often a transfer may heartbeat (Temporal throttles too; this spares the formatting). */
const TRANSFER_BEAT_MS = 1_000;

/** One line for humans about a transfer. */
export function formatTransfer(verb: string, name: string, p: TransferProgress): string {
  const rate = `${(p.bytesPerSec / 1e6).toFixed(p.bytesPerSec >= 1e7 ? 0 : 1)} MB/s`;
  const eta = p.etaSec === undefined ? '' : `, ETA ${Math.ceil(p.etaSec).toLocaleString('en-US')} s`;
  return `${verb} ${name}: ${p.filesDone.toLocaleString('en-US')}/${p.filesTotal.toLocaleString('en-US')} files, ${rate}${eta}`;
}

/**
 * Heartbeats for one transfer: `onProgress` to hand to the store (throttled), and `done` to put the
 * kind's own progress back once the transfer is over (if a transfer message went out).
 */
export function transferHeartbeat(
  heartbeat: (progress: StepProgress) => void,
  kindProgress: () => StepProgress,
  verb: string,
  name: string,
): { onProgress: (p: TransferProgress) => void; done: () => void } {
  // A transfer shorter than one interval never touches the heartbeat.
  let lastMs = Date.now();
  let beaten = false;
  return {
    onProgress(p) {
      const now = Date.now();
      if (now - lastMs < TRANSFER_BEAT_MS) return;
      lastMs = now;
      beaten = true;
      heartbeat({ ...kindProgress(), message: formatTransfer(verb, name, p) });
    },
    done() {
      if (beaten) heartbeat(kindProgress());
    },
  };
}
