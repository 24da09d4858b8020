/**
 * `report.findings`: evaluates the pipeline's findings rules over the cells' metrics (descriptor:
 * infra/kinds/report-findings.ts; the rule: infra/report/findings.ts) and publishes the verdicts.
 */
import { ErrorType, permanent } from '../../../infra/errors';
import { reportFindingsKind } from '../../../infra/kinds/report-findings';
import {
  evaluateFindings,
  findingsMarkdown,
  FindingsError,
  type MetricRow,
} from '../../../infra/report/findings';
import { isArtifactRef, type JsonValue } from '../../../workflows/plan-types';
import { implementKind } from '../../runtime/step-kind';

/** `reportFindings`'s implementation (its descriptor: infra/kinds). */
export const reportFindings = implementKind(reportFindingsKind, import.meta.url, async (params, ctx) => {
  const rows: MetricRow[] = [];
  for (const [i, row] of [...params.rows, ...(params.moreRows ?? [])].entries()) {
    const ref = row.value;
    let value = ref;
    if (isArtifactRef(ref)) {
      try {
        value = JSON.parse((await ctx.readBytes(ref)).toString('utf8')) as JsonValue;
      } catch {
        throw permanent(ErrorType.InvalidInput, `report.findings: row ${i}: ${ref.uri} is not JSON`);
      }
    }
    rows.push({ cell: row.cell, value });
  }
  let result;
  try {
    result = evaluateFindings(params, rows);
  } catch (err) {
    if (err instanceof FindingsError)
      throw permanent(ErrorType.InvalidInput, `report.findings: ${err.message}`);
    throw err;
  }
  const markdown = `${params.title ? `# ${params.title}\n\n` : ''}${findingsMarkdown(result)}`;
  return {
    markdown: await ctx.publishBytes(markdown, { mediaType: 'text/markdown' }),
    json: await ctx.publishBytes(JSON.stringify(result, null, 2), { mediaType: 'application/json' }),
    verdicts: Object.fromEntries(result.findings.map((f) => [f.id, f.verdict])),
  };
});
