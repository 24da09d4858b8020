/**
 * Follow a run until it ends (or the user presses Ctrl-C): live table on a TTY, plain lines otherwise;
 * then the results table, and with --json one JSON object as the last line.
 */
import type { RunSummary } from '../../activities/run-records';
import { getRunView, waitForRun, type RunView } from '../runs';
import type { Session } from '../session';
import { changeLines, liveText, resultsText } from './render-run';

export interface WatchOutcome {
  /** How the watch ended: the run closed, or the user detached. */
  ended: 'closed' | 'detached';
  status?: string;
  summary?: RunSummary;
  view?: RunView;
}

/** Follow `runId`. Resolves when the workflow closes or on Ctrl-C (detach). */
export async function watchRun(
  session: Session,
  runId: string,
  options: { live: boolean; quiet?: boolean },
): Promise<WatchOutcome> {
  const started = Date.now();
  let detach: (() => void) | undefined;
  const detached = new Promise<'detached'>((resolve) => (detach = () => resolve('detached')));
  const onSigint = () => {
    if (!detach) process.exit(130);
    detach();
    detach = undefined;
  };
  process.on('SIGINT', onSigint);
  const closed = waitForRun(session, runId).then((r) => ({ kind: 'closed' as const, ...r }));
  const seen = new Map<string, string>();
  let drawnLines = 0;
  let lastView: RunView | undefined;
  const draw = (view: RunView) => {
    lastView = view;
    if (options.quiet) return;
    if (options.live) {
      const text = liveText(view, Date.now() - started);
      if (drawnLines) process.stderr.write(`\x1b[${drawnLines}F\x1b[0J`);
      process.stderr.write(`${text}\n`);
      drawnLines = text.split('\n').length;
    } else {
      for (const line of changeLines(seen, view, Date.now() - started)) console.error(line);
    }
  };
  try {
    for (;;) {
      const tick = new Promise<'tick'>((r) =>
        setTimeout(() => r('tick'), options.live ? 1000 : 2000).unref(),
      );
      const next = await Promise.race([closed, detached, tick]);
      if (next === 'detached') return { ended: 'detached', view: lastView };
      if (next !== 'tick') {
        const view = await getRunView(session, runId).catch(() => undefined);
        if (view) draw(view);
        return { ended: 'closed', status: next.status, summary: next.summary, view };
      }
      const view = await getRunView(session, runId).catch(() => undefined);
      if (view) draw(view);
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** Print the end of a run: results table, and the JSON line when asked. Returns the exit code. */
export function reportOutcome(session: Session, runId: string, outcome: WatchOutcome, json: boolean): number {
  if (outcome.ended === 'detached') {
    console.error(
      `\ndetached from run ${runId}. ${session.embedded ? 'On the embedded server it pauses until ablate runs again; resume' : 'It goes on on the workers; follow it'} with:\n  ablate status ${runId} --watch`,
    );
    return 130;
  }
  const { summary, view } = outcome;
  if (summary && view) console.log(resultsText(summary, view.plan));
  else console.log(`run ${runId} ended ${String(outcome.status).toLowerCase()} without a summary`);
  if (json) {
    const steps: Record<string, unknown> = {};
    for (const s of summary?.steps ?? []) {
      steps[s.key] = {
        label: s.label,
        uses: s.uses,
        status: s.status,
        outputs: s.outputs ?? {},
        ...(s.error ? { error: s.error } : {}),
        ...(s.resumedFrom ? { resumedFrom: s.resumedFrom } : {}),
      };
    }
    console.log(
      JSON.stringify({
        runId,
        status: summary?.status ?? String(outcome.status).toLowerCase(),
        uiUrl: session.runUrl(runId) ?? null,
        counts: summary?.counts ?? null,
        cells: summary?.cells ?? [],
        steps,
      }),
    );
  }
  return summary?.status === 'completed' ? 0 : 1;
}
