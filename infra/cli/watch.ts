/**
 * Follow a run until it ends (or the user presses Ctrl-C): a live view that fits the terminal on a
 * TTY (log-update, lines cut to the width with cli-truncate), plain lines otherwise; a failed step is
 * one line (step, cells, kind, error, where the full log is), steps not run because of it one summary
 * line; then the results table, and with --json one JSON object as the last line.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

import { createLogUpdate } from 'log-update';

import { recordKeys, type RunSummary } from '../../activities/runtime/run-records';
import type { FindingsResult } from '../report/findings';
import { isArtifactRef } from '../../workflows/plan-types';
import { breakdownText, loadRunBreakdown, type RunBreakdown, type RunUsage } from '../run-breakdown';
import { getRunView, waitForRun, type RunView } from '../runs';
import type { Session } from '../session';
import { claimInterrupt, ExitCode, imposedExitCode, interrupted } from './lifecycle';
import { cascadeLines, changeLines, failureLine, fitToWidth, liveText, resultsText } from './render-run';

export interface WatchOutcome {
  /** How the watch ended: the run closed, or the user detached (Ctrl-C, SIGTERM, closed output). */
  ended: 'closed' | 'detached';
  status?: string;
  summary?: RunSummary;
  view?: RunView;
}

/** Where a failed step's full log is, as far as this process knows. */
function logHint(session: Session): string | undefined {
  if (session.workers) return session.sdkLogPath;
  if (session.backgroundWorkersPid) return `${session.config.home}/logs/workers.log`;
  return undefined;
}

/** Follow `runId`. Resolves when the workflow closes, or on the first Ctrl-C (detach). */
export async function watchRun(
  session: Session,
  runId: string,
  options: { live: boolean; quiet?: boolean },
): Promise<WatchOutcome> {
  const release = claimInterrupt();
  const started = Date.now();
  const detached = new Promise<'detached'>((resolve) => {
    if (interrupted.aborted) resolve('detached');
    interrupted.addEventListener('abort', () => resolve('detached'), { once: true });
  });
  const closed = session
    .call(() => waitForRun(session, runId))
    .then(
      (r) => ({ kind: 'closed' as const, ...r }),
      (err: unknown) => ({ kind: 'error' as const, err }),
    );
  const seen = new Map<string, string>();
  const reported = new Set<string>();
  const hint = logHint(session);
  const live = options.live && !options.quiet ? createLogUpdate(process.stderr) : undefined;
  const fit = (text: string) => fitToWidth(text, process.stderr.columns || 80);
  let lastView: RunView | undefined;
  const persist = (lines: string[]) => {
    if (!lines.length) return;
    live?.clear();
    for (const line of lines) console.error(line);
  };
  const draw = (view: RunView) => {
    lastView = view;
    if (options.quiet) return;
    const failures: string[] = [];
    for (const s of view.steps) {
      if (s.status !== 'failed' || reported.has(s.key)) continue;
      reported.add(s.key);
      failures.push(failureLine(s, view.plan, hint));
    }
    const changes = live ? [] : changeLines(seen, view, Date.now() - started);
    persist([...changes, ...failures, ...cascadeLines(view, reported)]);
    if (live) live(fit(liveText(view, Date.now() - started)));
  };
  const view = () => session.call(() => getRunView(session, runId)).catch(() => undefined);
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const tick = new Promise<'tick'>(
        (r) => (timer = setTimeout(() => r('tick'), options.live ? 1000 : 2000)),
      );
      const next = await Promise.race([closed, detached, tick]);
      clearTimeout(timer);
      if (next === 'detached') return { ended: 'detached', view: lastView };
      if (next !== 'tick') {
        if (next.kind === 'error') throw next.err;
        const v = await view();
        if (v) draw(v);
        return { ended: 'closed', status: next.status, summary: next.summary, view: v };
      }
      const v = await view();
      if (interrupted.aborted) return { ended: 'detached', view: lastView };
      if (v) draw(v);
    }
  } finally {
    live?.done();
    release();
  }
}

/**
 * Print the end of a run: results table, where the time went (step kinds, cores; see
 * run-breakdown.ts), and the JSON line when asked. `usage` is what `ablate run` measured, stored with
 * the run first so later commands show it too. Returns the exit code.
 */
export async function reportOutcome(
  session: Session,
  runId: string,
  outcome: WatchOutcome,
  json: boolean,
  usage?: RunUsage,
): Promise<number> {
  if (outcome.ended === 'detached') {
    const code = imposedExitCode() ?? ExitCode.Interrupted;
    if (code !== ExitCode.Interrupted) return code;
    const goesOn = !session.embedded || session.backgroundWorkersPid !== undefined;
    console.error(
      `detached from ${runId}; ${goesOn ? 'it goes on on the workers' : 'it pauses until ablate runs again (`ablate server start --workers` keeps it going)'}. Reattach: ablate status ${runId} --watch`,
    );
    return code;
  }
  const { summary, view } = outcome;
  if (summary && view) console.log(resultsText(summary, view.plan));
  else console.log(`run ${runId} ended ${String(outcome.status).toLowerCase()} without a summary`);
  let breakdown: RunBreakdown | undefined;
  if (summary) {
    if (usage) await session.store.putRecord(recordKeys.usage(runId), usage).catch(() => undefined);
    // A report, not the outcome: a store that cannot list the records must not fail a finished run.
    breakdown = await loadRunBreakdown(session.store, summary, availableParallelism()).catch(() => undefined);
    if (breakdown) console.log(['', ...breakdownText(breakdown)].join('\n'));
    const reports = await reportLines(session, summary).catch(() => []);
    if (reports.length > 0) console.log(['', ...reports].join('\n'));
  }
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
        breakdown: breakdown ?? null,
      }),
    );
  }
  return summary?.status === 'completed' ? ExitCode.Ok : ExitCode.Failed;
}

/**
 * The study's findings (each `report.findings` step's verdicts) and where its reports are: the
 * `report.*` steps' files, as paths for the filesystem store (open them directly) or URIs.
 */
async function reportLines(session: Session, summary: RunSummary): Promise<string[]> {
  const lines: string[] = [];
  for (const s of summary.steps) {
    if (s.status !== 'done' && s.status !== 'cached') continue;
    if (s.uses === 'report.findings' && isArtifactRef(s.outputs?.json)) {
      const result = await session.store.getJson<FindingsResult>(s.outputs.json);
      lines.push(`findings (${s.label}; rule: |mean| > ${result.noise} x seed spread):`);
      for (const f of result.findings)
        lines.push(
          `  ${f.id.padEnd(3)} ${f.verdict.padEnd(12)} ${f.claim}: ${f.mean >= 0 ? '+' : ''}${f.mean.toFixed(3)} ${f.metric}, spread ${Number.isNaN(f.spread) ? 'n/a' : f.spread.toFixed(3)}`,
        );
    }
  }
  const before = lines.length;
  for (const s of summary.steps) {
    if ((s.status !== 'done' && s.status !== 'cached') || !s.uses.startsWith('report.')) continue;
    for (const [name, out] of Object.entries(s.outputs ?? {}))
      if (isArtifactRef(out) && (name === 'html' || name === 'markdown'))
        lines.push(`${s.label} ${name}: ${out.uri.startsWith('file:') ? fileURLToPath(out.uri) : out.uri}`);
  }
  if (lines.length > before)
    lines.push(
      `(stored by content digest; a named copy: ablate get ${summary.runId} STEP OUTPUT --out report.html, or ablate report ${summary.runId} --out DIR)`,
    );
  return lines;
}
