/**
 * How `ablate plan` shows a plan: a text summary and step table, Graphviz DOT, or JSON.
 */
import type { Plan } from '../../workflows/plan-types';
import { formatDurationMs } from '../compiler/duration';

/** The JSON form of a plan for other tools: the plan plus an explicit edge list. */
export function planToJson(plan: Plan): Plan & { edges: Array<[string, string]> } {
  const edges: Array<[string, string]> = [];
  for (const step of plan.steps) for (const need of step.needs) edges.push([need, step.key]);
  return { ...plan, edges };
}

/** A human-readable plan. `statuses` (step key -> word), when given, adds a status column. */
export function planToText(
  plan: Plan,
  options: { cells?: boolean; statuses?: Map<string, string> } = {},
): string {
  const { stats } = plan;
  const lines: string[] = [];
  lines.push(
    `pipeline ${plan.pipeline.name}${plan.pipeline.description ? ` — ${plan.pipeline.description}` : ''}`,
  );
  const axes = Object.entries(plan.axes);
  if (axes.length) {
    lines.push(`grid: ${axes.map(([a, v]) => `${a} (${v.length})`).join(' x ')}`);
  }
  lines.push(
    `${stats.cells} cell${stats.cells === 1 ? '' : 's'}, ${stats.stepInstances} step instances -> ${stats.uniqueSteps} unique steps ` +
      `(merging saved ${stats.saved} step run${stats.saved === 1 ? '' : 's'})`,
  );
  lines.push('');
  const index = new Map(plan.steps.map((s, i) => [s.key, i + 1]));
  const header = [
    '#',
    'key',
    'step',
    'kind',
    'queue',
    'cells',
    'needs',
    ...(options.statuses ? ['status'] : []),
  ];
  const rows = plan.steps.map((s, i) => [
    String(i + 1),
    s.key,
    s.label,
    s.uses,
    s.queue,
    String(s.cells.length),
    s.needs.length
      ? s.needs
          .map((n) => index.get(n)!)
          .sort((a, b) => a - b)
          .map((n) => `#${n}`)
          .join(',')
      : '-',
    ...(options.statuses ? [options.statuses.get(s.key) ?? 'pending'] : []),
  ]);
  lines.push(...table(header, rows));
  if (options.cells) {
    lines.push('', 'cells:');
    for (const cell of plan.cells) {
      const chain = Object.entries(cell.steps).map(([id, key]) => `${id}#${index.get(key)}`);
      lines.push(`  ${cell.id}: ${chain.join(' ')}`);
    }
  }
  const limits = new Set(plan.steps.map((s) => `${formatDurationMs(s.timeoutMs)}/${s.retry.maxAttempts}`));
  if (limits.size === 1) {
    const [s] = plan.steps;
    if (s)
      lines.push(
        '',
        `every step: timeout ${formatDurationMs(s.timeoutMs)}, up to ${s.retry.maxAttempts} attempts`,
      );
  }
  return lines.join('\n');
}

/** Graphviz DOT of the step DAG (`ablate plan FILE --dot | dot -Tsvg > plan.svg`). */
export function planToDot(plan: Plan): string {
  const q = (s: string) => JSON.stringify(s);
  const lines = [
    `digraph ${q(plan.pipeline.name)} {`,
    '  rankdir=LR;',
    '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
  ];
  for (const s of plan.steps) {
    const fill = s.queue === 'gpu' ? '#fde2c8' : '#dbe8f7';
    lines.push(
      `  ${q(s.key)} [label=${q(`${s.label}\n${s.uses}`)}, fillcolor=${q(fill)}, tooltip=${q(`${s.cells.length} cells`)}];`,
    );
  }
  for (const s of plan.steps) for (const n of s.needs) lines.push(`  ${q(n)} -> ${q(s.key)};`);
  lines.push('}');
  return lines.join('\n');
}

/** Left-aligned columns. */
export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join('  ')
      .trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}
