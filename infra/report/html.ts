/**
 * The HTML report: one self-contained file (inline CSS and SVG, no script, no external URL) that opens
 * offline. Every number links to the lineage section of the step that produced it (`#step-KEY`), whose
 * parents link on upstream; the link's title gives the step, kind, code commit and params inline.
 */
import type { FindingsResult } from './findings';
import { chartSpecs, renderSvg } from './charts';
import type { ReportData, ReportStep } from './gather';
import {
  formatAggregate,
  formatDelta,
  pairedTable,
  resultsTable,
  type Aggregate,
  type ResultsTable,
} from './tables';

/** Escape text for HTML element content and double-quoted attributes. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Anchor id of a step's lineage section. */
export function stepAnchor(key: string): string {
  return `step-${key}`;
}

function lineageTitle(step: ReportStep | undefined): string {
  const l = step?.lineage;
  if (step && !l)
    return `${step.label}; ${(step.sources ?? []).map((i) => `${i.path} ${i.digest.slice(0, 19)}`).join('; ')}`;
  if (!step || !l) return '';
  const params = Object.entries(l.params)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(' ');
  const inputs = l.inputs.map((i) => `${i.path} ${i.digest.slice(0, 19)}`).join('; ');
  return `${step.label} (${l.kind} v${l.kindVersion}), code ${l.code.commit.slice(0, 10)}${l.code.dirty ? ' dirty' : ''}; params: ${params}; inputs: ${inputs}`;
}

function numberCell(a: Aggregate | undefined, steps: Map<string, ReportStep>): string {
  if (!a) return '<td class="num"></td>';
  const first = a.sources[0]!;
  const title =
    a.n > 1
      ? `mean of ${a.n} seeds: ${a.sources.map((s) => `${s.cell} = ${s.value}`).join('; ')}. ${lineageTitle(steps.get(first.stepKey))}`
      : lineageTitle(steps.get(first.stepKey));
  const exact = a.sources.map((s) => String(s.value)).join(' ');
  return `<td class="num"><a class="metric" href="#${esc(stepAnchor(first.stepKey))}" title="${esc(title)}" data-value="${esc(exact)}" data-output="${esc(first.output)}">${esc(formatAggregate(a))}</a></td>`;
}

function resultsHtml(table: ResultsTable, steps: Map<string, ReportStep>): string {
  const head = [...table.axes, ...table.metrics].map((h) => `<th>${esc(h)}</th>`).join('');
  const body = table.rows
    .map(
      (r) =>
        `<tr>${table.axes.map((a) => `<td>${esc(r.labels[a] ?? '')}</td>`).join('')}${table.metrics
          .map((m) => numberCell(r.metrics[m], steps))
          .join('')}</tr>`,
    )
    .join('\n');
  return `<table id="results"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function pairedHtml(data: ReportData, table: ResultsTable, steps: Map<string, ReportStep>): string {
  const paired = pairedTable(table, data);
  if (!paired) return '';
  const metrics = paired.metrics.filter((m) => ['AP', 'AP50', 'AP75', 'mAP07', 'mAP12'].includes(m));
  const top =
    paired.axes.map((a) => `<th rowspan="2">${esc(a)}</th>`).join('') +
    metrics.map((m) => `<th colspan="3">${esc(m)}</th>`).join('');
  const sub = metrics.map(() => `<th>${esc(paired.pretrainedLabel)}</th><th>scratch</th><th>Δ</th>`).join('');
  const body = paired.rows
    .map(
      (r) =>
        `<tr>${paired.axes.map((a) => `<td>${esc(r.labels[a] ?? '')}</td>`).join('')}${metrics
          .map((m) => {
            const p = r.pretrained?.metrics[m];
            const s = r.scratch?.metrics[m];
            return `${numberCell(p, steps)}${numberCell(s, steps)}<td class="num delta">${esc(formatDelta(s, p))}</td>`;
          })
          .join('')}</tr>`,
    )
    .join('\n');
  return `<h2>Pre-trained vs scratch</h2>
<p>Each setting with ${esc(paired.pretrainedLabel)} pre-training and from scratch side by side; Δ = scratch − ${esc(paired.pretrainedLabel)}.</p>
<table id="paired"><thead><tr>${top}</tr><tr>${sub}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function findingsHtml(result: FindingsResult): string {
  const signed = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(3)}`;
  const body = result.findings
    .map(
      (f) =>
        `<tr class="finding ${esc(f.verdict.replace(' ', '-'))}"><td>${esc(f.id)}</td><td>${esc(f.claim)}</td><td>${esc(f.quantity)} <small>(${esc(f.metric)}, expected ${f.expect === 'positive' ? '&gt; 0' : '&lt; 0'})</small></td><td class="num">${Object.entries(
          f.perSeed,
        )
          .map(([s, v]) => `${esc(s)}: ${signed(v)}`)
          .join(
            '<br>',
          )}</td><td class="num">${signed(f.mean)}</td><td class="num">${Number.isNaN(f.spread) ? 'n/a' : f.spread.toFixed(3)}</td><td><b>${esc(f.verdict)}</b></td></tr>`,
    )
    .join('\n');
  return `<h2>Findings</h2>
<p>Each verdict is computed from the metrics by the pipeline's rule: over ${result.seeds.length} seeds, a claim is <i>reproduced</i> when the mean of its quantity has the expected sign and exceeds ${result.noise} × the seed spread (max − min)${result.minEffect > 0 ? ` and ${result.minEffect}` : ''}, <i>contradicted</i> when it does with the opposite sign, <i>not shown</i> otherwise.</p>
<table id="findings"><thead><tr><th></th><th>claim</th><th>quantity</th><th>per seed</th><th>mean</th><th>spread</th><th>verdict</th></tr></thead><tbody>
${body}
</tbody></table>`;
}

function lineageHtml(steps: ReportStep[], known: Set<string>): string {
  const link = (key: string) =>
    known.has(key)
      ? `<a href="#${esc(stepAnchor(key))}">${esc(key.slice(0, 12))}</a>`
      : esc(key.slice(0, 12));
  return steps
    .map((s) => {
      const l = s.lineage;
      const rows: string[] = [
        `<tr><th>status</th><td>${esc(s.status)}${s.error ? `: ${esc(s.error)}` : ''}</td></tr>`,
      ];
      if (s.startedAt)
        rows.push(
          `<tr><th>time</th><td>${esc(s.startedAt)} → ${esc(s.endedAt ?? '')} (${s.durationMs ?? 0} ms)</td></tr>`,
        );
      if (s.sources)
        rows.push(
          `<tr><th>inputs</th><td>${s.sources.map((i) => `${esc(i.path)}: <code>${esc(i.digest)}</code>`).join('<br>') || 'values only'}</td></tr>`,
        );
      if (l) {
        rows.push(
          `<tr><th>kind</th><td>${esc(l.kind)} v${esc(l.kindVersion)}</td></tr>`,
          `<tr><th>code</th><td>${esc(l.code.version)} commit <code>${esc(l.code.commit)}</code>${l.code.dirty ? ' (dirty)' : ''}${l.code.kind ? `; kind code <code>${esc(l.code.kind)}</code>` : ''}</td></tr>`,
          `<tr><th>cache key</th><td><code>${esc(l.cacheKey)}</code>${l.computedIn !== '' ? `; computed in run ${esc(l.computedIn)}` : ''}</td></tr>`,
          `<tr><th>params</th><td><code>${esc(JSON.stringify(l.params))}</code></td></tr>`,
          `<tr><th>inputs</th><td>${l.inputs.map((i) => `${esc(i.path)}: <code>${esc(i.digest)}</code>${i.fromStep ? ` from ${link(i.fromStep)}` : ' (source)'}`).join('<br>') || 'none'}</td></tr>`,
          `<tr><th>outputs</th><td>${l.outputs.map((o) => `${esc(o.name)}: <code>${esc(o.digest ?? JSON.stringify(o.value))}</code>`).join('<br>')}</td></tr>`,
          `<tr><th>parents</th><td>${l.parents.map(link).join(', ') || 'none'}</td></tr>`,
          `<tr><th>provenance</th><td><code>${esc(l.provenance)}</code></td></tr>`,
        );
      }
      return `<section class="step" id="${esc(stepAnchor(s.key))}"><h3>${esc(s.label)} <small>${esc(s.uses)} · ${esc(s.key.slice(0, 12))}</small></h3><table class="kv">${rows.join('')}</table></section>`;
    })
    .join('\n');
}

const CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ddd;padding:3px 8px}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}td.delta{color:#555}
a.metric{color:inherit;text-decoration:none;border-bottom:1px dotted #888}
figure{margin:1em 0}figcaption{font-weight:600}section.step{border-top:1px solid #eee}
section.step:target{background:#fffbe6}table.kv th{text-align:left;width:8em;vertical-align:top}
code{font-size:12px;word-break:break-all}small{color:#777;font-weight:normal}`;

/** Render the report as one HTML document. */
export async function renderHtml(data: ReportData): Promise<string> {
  const steps = new Map(data.steps.map((s) => [s.key, s]));
  const table = resultsTable(data);
  const charts = chartSpecs(data);
  const svgs = await Promise.all(charts.map(renderSvg));
  const figures = charts
    .map(
      (c, i) =>
        `<figure id="${esc(c.id)}" class="chart"><figcaption>${esc(c.title)}</figcaption>${svgs[i]}</figure>`,
    )
    .join('\n');
  const seedNote = table.seeds
    ? '<p>Cells that differ only by seed are folded: mean ± sample standard deviation.</p>'
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${esc(`${data.pipeline.name}: run ${data.runId}`)}</title><style>${CSS}</style></head>
<body>
<h1>${esc(data.pipeline.name)} <small>run ${esc(data.runId)}</small></h1>
<p>${esc(data.pipeline.description)}</p>
<p>Status <b>${esc(data.status)}</b>, ${esc(data.startedAt)} → ${esc(data.endedAt)}; ${data.cells.length} cells, ${data.steps.length} steps; pipeline <code>${esc(data.pipeline.digest)}</code>.</p>
${data.findings ? findingsHtml(data.findings) : ''}
<h2>Results</h2>
${seedNote}
${resultsHtml(table, steps)}
${pairedHtml(data, table, steps)}
<h2>Charts</h2>
${figures}
<h2>Lineage</h2>
<p>Every step of the run with the provenance of its outputs; the numbers above link here.</p>
${lineageHtml(data.steps, new Set(steps.keys()))}
</body></html>
`;
}
