/**
 * One chart of a run as a standalone SVG: AP or training loss against iterations, for every training
 * step of the run or one of them.
 */
import { AblateError, ErrorType } from '../errors';
import { chartSpecs, renderSvg } from './charts';
import type { ReportData } from './gather';

/** What `ablate plot` draws. */
export type PlotMetric = 'loss' | 'AP';

/** Render `metric` vs iterations for the run's train steps (or only `step`, by key or label). */
export async function plotSvg(data: ReportData, metric: PlotMetric, step?: string): Promise<string> {
  let subset = data;
  if (step !== undefined) {
    const match = data.steps.find((s) => s.key === step || s.label === step);
    if (!match)
      throw new AblateError(
        ErrorType.InvalidInput,
        `run ${data.runId} has no step ${JSON.stringify(step)} (give its key or its label)`,
      );
    const cells = new Set(data.cells.filter((c) => c.trainStep === match.key).map((c) => c.id));
    if (cells.size === 0)
      throw new AblateError(
        ErrorType.InvalidInput,
        `step ${match.label} is a ${match.uses} step; plot takes a train.detector step`,
      );
    subset = {
      ...data,
      apCurves: data.apCurves.filter((p) => cells.has(p.cell)),
      lossCurves: data.lossCurves.filter((p) => cells.has(p.cell)),
    };
  }
  const id = metric === 'loss' ? 'chart-loss' : 'chart-ap-iterations';
  const chart = chartSpecs(subset).find((c) => c.id === id);
  if (!chart)
    throw new AblateError(
      ErrorType.InvalidInput,
      `run ${data.runId} has no ${metric === 'loss' ? 'lossCurve' : 'apCurve'} outputs of train.detector steps${step ? ` for ${step}` : ''}`,
    );
  return renderSvg(chart);
}
