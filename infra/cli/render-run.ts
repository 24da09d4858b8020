/**
 * How runs look in the terminal: a live table that redraws in place on a TTY, plain lines elsewhere
 * (CI logs), and the results table at the end.
 */
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
  if (p.iteration !== undefined)
    parts.push(p.totalIterations ? `it ${p.iteration}/${p.totalIterations}` : `it ${p.iteration}`);
  if (p.loss !== undefined) parts.push(`loss ${p.loss.toFixed(4)}`);
  if (p.imagesPerSec !== undefined) parts.push(`${p.imagesPerSec.toFixed(1)} img/s`);
  if (p.etaSec !== undefined) parts.push(`ETA ${formatDurationMs(p.etaSec * 1000)}`);
  if (p.message) parts.push(p.message);
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

/** A plain line per step that changed status (for logs). */
export function changeLines(before: Map<string, string>, view: RunView, elapsedMs: number): string[] {
  const out: string[] = [];
  const stamp = formatDurationMs(elapsedMs).padStart(6);
  for (const s of view.steps) {
    const shown = shownStatus(s);
    const prev = before.get(s.key);
    if (prev === shown) continue;
    before.set(s.key, shown);
    if (shown === 'pending') continue;
    out.push(
      `[${stamp}] ${shown.padEnd(9)} ${s.label} (${s.uses})${s.error && (s.status === 'failed' || s.status === 'skipped') ? `: ${s.error}` : ''}`,
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
