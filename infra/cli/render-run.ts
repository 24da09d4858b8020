/**
 * How runs look in the terminal: a live table that redraws in place on a TTY, plain lines elsewhere
 * (CI logs), and the results table at the end.
 */
import cliTruncate from 'cli-truncate';

import type { RunSummary } from '../../activities/runtime/run-records';
import { isArtifactRef, type JsonValue, type StepStatus } from '../../workflows/plan-types';
import { formatDurationMs } from '../compiler/duration';
import type { RunView, StepView } from '../runs';
import { table } from './render-plan';

/** What to call a step's state on screen: a dispatched step no worker has taken yet is "queued". */
function shownStatus(s: StepView): StepStatus | 'queued' {
  return s.status === 'running' && s.queued ? 'queued' : s.status;
}

const ICON: Record<StepStatus | 'queued', string> = {
  queued: '…',
  pending: '·',
  running: '▶',
  done: '✔',
  cached: '↺',
  failed: '✖',
  skipped: '⊘',
  cancelled: '■',
};

/** `12/19 done (3 cached), 2 running, 1 failed, 4 skipped`. */
export function countsLine(view: Pick<RunView, 'counts'>, total: number): string {
  const c = view.counts;
  const parts = [`${c.done + c.cached}/${total} done${c.cached ? ` (${c.cached} cached)` : ''}`];
  if (c.running) parts.push(`${c.running} running`);
  if (c.failed) parts.push(`${c.failed} failed`);
  if (c.skipped) parts.push(`${c.skipped} skipped`);
  if (c.cancelled) parts.push(`${c.cancelled} cancelled`);
  return parts.join(', ');
}

function progressText(s: StepView): string {
  const p = s.progress;
  if (!p) return '';
  const parts: string[] = [];
  // A kind's message often repeats the structured fields ("iteration 5/100 loss 0.31"): show it only
  // when there is nothing structured, so no column appears twice.
  const structured =
    p.iteration !== undefined ||
    p.loss !== undefined ||
    p.imagesPerSec !== undefined ||
    p.etaSec !== undefined;
  if (p.iteration !== undefined)
    parts.push(p.totalIterations ? `it ${p.iteration}/${p.totalIterations}` : `it ${p.iteration}`);
  if (p.loss !== undefined) parts.push(`loss ${p.loss.toFixed(4)}`);
  if (p.imagesPerSec !== undefined) parts.push(`${p.imagesPerSec.toFixed(1)} img/s`);
  if (p.etaSec !== undefined) parts.push(`ETA ${formatDurationMs(p.etaSec * 1000)}`);
  if (p.message && !structured) parts.push(p.message);
  return parts.join(', ');
}

function bar(fraction: number, width = 30): string {
  const n = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${'#'.repeat(n)}${'-'.repeat(width - n)}]`;
}

/** The live view: header, progress bar, running steps (with their heartbeats), failures. */
export function liveText(view: RunView, elapsedMs: number, maxRows = 25): string {
  const total = view.steps.length;
  const finished =
    view.counts.done + view.counts.cached + view.counts.failed + view.counts.skipped + view.counts.cancelled;
  const lines = [
    `run ${view.runId}  ${view.workflowStatus.toLowerCase()}${view.phase && view.phase !== 'running' ? ` (${view.phase})` : ''}  ${formatDurationMs(elapsedMs)}`,
    `${bar(total ? finished / total : 1)} ${countsLine(view, total)}`,
  ];
  const interesting = view.steps.filter((s) => s.status === 'running' || s.status === 'failed');
  if (interesting.length) {
    const rows = interesting
      .slice(0, maxRows)
      .map((s) => [
        ICON[s.status],
        s.label,
        s.uses,
        s.attempt && s.attempt > 1 ? `attempt ${s.attempt}` : '',
        s.status === 'failed'
          ? (s.error ?? 'failed')
          : s.queued
            ? 'queued: waiting for a worker slot'
            : progressText(s),
      ]);
    lines.push(...table(['', 'step', 'kind', 'attempt', 'progress'], rows).map((l) => `  ${l}`));
    if (interesting.length > maxRows) lines.push(`  … and ${interesting.length - maxRows} more`);
  }
  if (view.note) lines.push(`  (${view.note})`);
  return lines.join('\n');
}

/** Cut every line of `text` to `width` terminal columns (a wrapped line would garble the live view). */
export function fitToWidth(text: string, width: number): string {
  return text
    .split('\n')
    .map((l) => cliTruncate(l, Math.max(width, 10)))
    .join('\n');
}

/**
 * A plain line per step that changed status (for logs). Failed and skipped steps are left to
 * {@link failureLine} and {@link cascadeLines}.
 */
export function changeLines(before: Map<string, string>, view: RunView, elapsedMs: number): string[] {
  const out: string[] = [];
  const stamp = formatDurationMs(elapsedMs).padStart(6);
  for (const s of view.steps) {
    const shown = shownStatus(s);
    const prev = before.get(s.key);
    if (prev === shown) continue;
    before.set(s.key, shown);
    if (shown === 'pending' || shown === 'failed' || shown === 'skipped') continue;
    out.push(`[${stamp}] ${shown.padEnd(9)} ${s.label} (${s.uses})`);
  }
  return out;
}

/**
 * One line for a failed step: `✖ train{init=imagenet} (train.detector, cell init=imagenet): Diverged:
 * loss is NaN; full log: PATH`. Only the error's first line: the stack stays in the log.
 */
export function failureLine(
  step: StepView,
  plan: { steps: Array<{ key: string; cells: string[] }> },
  logPath: string | undefined,
): string {
  const cells = plan.steps.find((p) => p.key === step.key)?.cells ?? [];
  const where = cells.length === 1 ? `cell ${cells[0]}` : `${cells.length} cells`;
  const error = (step.error ?? 'failed').split('\n')[0];
  return `${ICON.failed} ${step.label} failed (${step.uses}, ${where}): ${error}${logPath ? `; full log: ${logPath}` : ''}`;
}

const UPSTREAM = /^not run: upstream step (.+) failed$/;

/**
 * One line per failed step whose dependents were not run: `12 steps not run: they need
 * train{init=imagenet}, which failed`. `reported` holds what was already printed (keys, and
 * `cascade:LABEL:COUNT`), so a line is printed again only when the count grows.
 */
export function cascadeLines(view: RunView, reported: Set<string>): string[] {
  const byCause = new Map<string, number>();
  for (const s of view.steps) {
    const m = s.status === 'skipped' && s.error ? UPSTREAM.exec(s.error) : null;
    const cause = m ? m[1]! : s.status === 'skipped' ? undefined : null;
    if (cause === null) continue;
    const key = cause ?? '';
    byCause.set(key, (byCause.get(key) ?? 0) + 1);
  }
  const out: string[] = [];
  for (const [cause, n] of byCause) {
    const mark = `cascade:${cause}:${n}`;
    if (reported.has(mark)) continue;
    reported.add(mark);
    out.push(
      `${ICON.skipped} ${n} step${n === 1 ? '' : 's'} not run: ${cause ? `${n === 1 ? 'it needs' : 'they need'} ${cause}, which failed` : 'an upstream step failed'}`,
    );
  }
  return out;
}

/** Numeric results of a cell: the value outputs of its steps that nothing else in the cell consumes. */
function cellMetrics(
  summary: RunSummary,
  stepKeys: string[],
  needsOf: Map<string, string[]>,
): Record<string, number> {
  const inCell = new Set(stepKeys);
  const consumed = new Set(stepKeys.flatMap((k) => needsOf.get(k) ?? []).filter((k) => inCell.has(k)));
  const byKey = new Map(summary.steps.map((s) => [s.key, s]));
  const metrics: Record<string, number> = {};
  for (const key of stepKeys) {
    const step = byKey.get(key);
    if (!step?.outputs || consumed.has(key)) continue;
    for (const [name, value] of Object.entries(step.outputs)) {
      if (isArtifactRef(value)) continue;
      flattenNumbers(value, name, metrics);
    }
  }
  return metrics;
}

function flattenNumbers(value: JsonValue, prefix: string, out: Record<string, number>): void {
  if (typeof value === 'number') out[prefix] = value;
  else if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value))
      flattenNumbers(v, prefix === 'metrics' ? k : `${prefix}.${k}`, out);
  }
}

/** The results table: one row per cell with its status and its final numbers (at most `maxColumns`). */
export function resultsText(
  summary: RunSummary,
  plan: {
    cells: Array<{ id: string; steps: Record<string, string> }>;
    steps: Array<{ key: string; needs: string[]; cells: string[] }>;
  },
  maxColumns = 6,
): string {
  const needsOf = new Map(plan.steps.map((s) => [s.key, s.needs]));
  // Fan-in steps (shared by every cell) are not a cell's own result.
  const shared = new Set(
    plan.steps
      .filter((s) => s.cells.length === plan.cells.length && plan.cells.length > 1 && s.needs.length > 0)
      .map((s) => s.key),
  );
  const perCell = summary.cells.map((cell, i) => {
    const keys = Object.values(plan.cells[i]?.steps ?? {}).filter((k) => !shared.has(k));
    return { cell, metrics: cellMetrics(summary, keys, needsOf) };
  });
  const columns = [...new Set(perCell.flatMap((c) => Object.keys(c.metrics)))].slice(0, maxColumns);
  const rows = perCell.map(({ cell, metrics }) => [
    cell.id,
    cell.status,
    ...columns.map((c) => (metrics[c] === undefined ? '' : fmt(metrics[c]))),
    cell.failedStep ? `${cell.failedStep.label}: ${cell.failedStep.error}` : '',
  ]);
  const duration = new Date(summary.endedAt).getTime() - new Date(summary.startedAt).getTime();
  return [
    `run ${summary.runId}: ${summary.status} in ${formatDurationMs(duration)} — ${countsLine(summary, summary.steps.length)}`,
    '',
    ...table(['cell', 'status', ...columns, 'note'], rows),
  ].join('\n');
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(4);
}
