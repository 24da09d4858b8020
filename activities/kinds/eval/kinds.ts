/**
 * Step kinds `eval.coco` and `eval.voc`: detection metrics that equal pycocotools' and the VOC devkit's.
 * The evaluators are imported inside `run`, so listing kinds stays cheap.
 */
import { ErrorType, permanent } from '../../../infra/errors';
import { TREE_MEDIA_TYPE, type ArtifactRef } from '../../../workflows/plan-types';
import { evalCocoKind, evalVocKind } from '../../../infra/kinds/eval';
import { implementKind, type StepContext } from '../../runtime/step-kind';

async function materialise(ref: ArtifactRef, ctx: StepContext): Promise<string> {
  // A file artifact is fetched to a local path too, so the readers name real files in their messages.
  return ctx.fetch(ref);
}

/** `evalCoco`'s implementation (its descriptor: infra/kinds). */
export const evalCoco = implementKind(evalCocoKind, import.meta.url, async (params, ctx) => {
  const { evaluateCocoFiles, cocoMetrics, cocoReport } = await import('./report');
  ctx.heartbeat({ message: 'evaluating (COCO)' });
  const gtPath = await materialise(params.gt, ctx);
  const dtPath = await materialise(params.detections, ctx);
  const opts: Parameters<typeof evaluateCocoFiles>[2] = { iouType: params.iouType ?? 'bbox' };
  if (params.unknownCategories) opts.unknownCategories = params.unknownCategories;
  const result = await evaluateCocoFiles(gtPath, dtPath, opts);
  for (const w of result.warnings) ctx.log.warn(w);
  const report = await ctx.publishBytes(JSON.stringify(cocoReport(result)), {
    mediaType: 'application/json',
  });
  return { metrics: cocoMetrics(result), report };
});

/** `evalVoc`'s implementation (its descriptor: infra/kinds). */
export const evalVoc = implementKind(evalVocKind, import.meta.url, async (params, ctx) => {
  const { evaluateVocFiles, vocSummaryJson, vocReport } = await import('./report');
  if (params.gt.mediaType === TREE_MEDIA_TYPE && !params.imageSet)
    throw permanent(
      ErrorType.InvalidInput,
      'eval.voc: `imageSet` is required when `gt` is a VOC devkit tree',
    );
  ctx.heartbeat({ message: 'evaluating (VOC)' });
  const inputs: Parameters<typeof evaluateVocFiles>[0] = {
    gt: await materialise(params.gt, ctx),
    detections: await materialise(params.detections, ctx),
  };
  if (params.imageSet) inputs.imageSet = params.imageSet;
  if (params.classes) inputs.classes = params.classes;
  const result = await evaluateVocFiles(inputs, {
    iouThreshold: params.iouThreshold ?? 0.5,
    metric: params.metric ?? 'both',
  });
  const report = await ctx.publishBytes(JSON.stringify(vocReport(result)), {
    mediaType: 'application/json',
  });
  return { metrics: vocSummaryJson(result), report };
});
