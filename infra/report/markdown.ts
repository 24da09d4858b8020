/**
 * The Markdown summary of a run: its status and the results table (and the pre-trained vs scratch
 * layout where the grid has one).
 */
import { findingsMarkdown } from './findings';
import type { ReportData } from './gather';
import { formatAggregate, formatDelta, pairedTable, resultsTable } from './tables';

const cellText = (s: string) => s.replace(/\|/g, '\\|');
const row = (cells: string[]) => `| ${cells.map(cellText).join(' | ')} |`;
const rule = (n: number) => `|${' --- |'.repeat(n)}`;

/** Render the Markdown summary. */
export function renderMarkdown(data: ReportData): string {
  const table = resultsTable(data);
  const lines = [
    `# ${data.pipeline.name}: run ${data.runId}`,
    '',
    `Status **${data.status}**, ${data.startedAt} → ${data.endedAt}; ${data.cells.length} cells, ${data.steps.length} steps.`,
    '',
  ];
  if (data.findings) lines.push(findingsMarkdown(data.findings));
  lines.push('## Results', '');
  if (table.seeds)
    lines.push('Cells that differ only by seed are folded: mean ± sample standard deviation.', '');
  const header = [...table.axes, ...table.metrics];
  lines.push(row(header), rule(header.length));
  for (const r of table.rows)
    lines.push(
      row([
        ...table.axes.map((a) => r.labels[a] ?? ''),
        ...table.metrics.map((m) => (r.metrics[m] ? formatAggregate(r.metrics[m]) : '')),
      ]),
    );
  const paired = pairedTable(table, data);
  if (paired) {
    const metrics = paired.metrics.filter((m) => ['AP', 'AP50', 'AP75', 'mAP07', 'mAP12'].includes(m));
    const h = [
      ...paired.axes,
      ...metrics.flatMap((m) => [`${m} ${paired.pretrainedLabel}`, `${m} scratch`, `${m} Δ`]),
    ];
    lines.push('', '## Pre-trained vs scratch', '', row(h), rule(h.length));
    for (const r of paired.rows) {
      lines.push(
        row([
          ...paired.axes.map((a) => r.labels[a] ?? ''),
          ...metrics.flatMap((m) => {
            const p = r.pretrained?.metrics[m];
            const s = r.scratch?.metrics[m];
            return [p ? formatAggregate(p) : '', s ? formatAggregate(s) : '', formatDelta(s, p)];
          }),
        ]),
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
