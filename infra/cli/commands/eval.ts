import { UsageError, stringOption, type Command, type CommandArgs } from '../command';

const USAGE = `Usage:
  ablate eval coco --gt GT.json --dt DETS.json [--iou-type bbox|segm] [--json] [--report FILE]
                   [--ignore-unknown-categories]
  ablate eval voc  --gt (VOCDIR | GT.json) --dt (DETS.json | DETDIR) [--image-set test] [--year 2007]
                   [--iou 0.5] [--metric voc07|voc12|both] [--classes a,b,...] [--json] [--report FILE]

coco: COCO AP/AR exactly as pycocotools' COCOeval: the 12 summary lines, then AP per category.
  --gt FILE                    COCO instances JSON (ground truth)
  --dt FILE                    COCO results JSON [{image_id, category_id, bbox|segmentation, score}]
  --iou-type bbox|segm         boxes (default) or masks (polygons / RLE, pycocotools' mask API)
  --ignore-unknown-categories  drop results whose category is not in the GT (as pycocotools) instead of failing

voc: PASCAL VOC per-class AP and mAP with the devkit's rules (difficult objects ignored).
  --gt DIR|FILE    a devkit tree (Annotations/, ImageSets/Main/; or VOCdevkit/VOC2007/) or COCO instances JSON
  --dt FILE|DIR    COCO results JSON, or a directory of devkit files comp4_det_<set>_<class>.txt
  --image-set NAME image set of a devkit tree (ImageSets/Main/NAME.txt), default test
  --year YEAR      pick VOC<YEAR> when the tree holds several years
  --iou X          overlap threshold (strict >), default 0.5
  --metric M       voc07 (11-point), voc12 (2010+ area) or both (default)
  --classes LIST   comma-separated class names for a devkit tree (default: the 20 VOC classes)

Both:
  --json           print one JSON object instead of tables (fields in README "Evaluation")
  --report FILE    also write the full report (with precision/recall arrays or curves) to FILE`;

async function writeAtomic(path: string, data: string): Promise<void> {
  const { rename, writeFile } = await import('node:fs/promises');
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

function required(args: CommandArgs, name: string): string {
  const v = stringOption(args, name);
  if (v === undefined || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

async function runCoco(args: CommandArgs): Promise<number> {
  const { evaluateCocoFiles, cocoSummaryJson, cocoReport } =
    await import('../../../activities/kinds/eval/report');
  const { formatCocoSummary } = await import('../../../activities/kinds/eval/coco');
  const { formatFixed } = await import('../../../activities/kinds/eval/numeric');
  const iouType = stringOption(args, 'iou-type') ?? 'bbox';
  if (iouType !== 'bbox' && iouType !== 'segm')
    throw new UsageError(`--iou-type must be bbox or segm, got ${JSON.stringify(iouType)}`);
  const result = await evaluateCocoFiles(required(args, 'gt'), required(args, 'dt'), {
    iouType,
    unknownCategories: args.values['ignore-unknown-categories'] === true ? 'ignore' : 'error',
  });
  const report = stringOption(args, 'report');
  if (report) await writeAtomic(report, JSON.stringify(cocoReport(result)));
  if (args.values.json === true) {
    console.log(JSON.stringify(cocoSummaryJson(result)));
    return 0;
  }
  for (const w of result.warnings) console.error(`warning: ${w}`);
  console.log(
    `Evaluate annotation type *${iouType}*: ${result.numImages} images, ${result.numGt} GT objects, ${result.numDetections} detections`,
  );
  console.log(formatCocoSummary(result.stats));
  const width = Math.max(8, ...result.perCategory.map((c) => c.name.length));
  console.log(`\n${'category'.padEnd(width)}  ${'id'.padStart(6)}  AP     AP50   AP75   #gt     #det`);
  const f = (x: number) => formatFixed(x, 3).padStart(6);
  for (const c of result.perCategory)
    console.log(
      `${c.name.padEnd(width)}  ${String(c.id).padStart(6)}  ${f(c.AP)} ${f(c.AP50)} ${f(c.AP75)} ${String(c.numGt).padStart(6)} ${String(c.numDetections).padStart(8)}`,
    );
  return 0;
}

async function runVoc(args: CommandArgs): Promise<number> {
  const { evaluateVocFiles, vocSummaryJson, vocReport } =
    await import('../../../activities/kinds/eval/report');
  const { formatFixed } = await import('../../../activities/kinds/eval/numeric');
  const metric = stringOption(args, 'metric') ?? 'both';
  if (metric !== 'voc07' && metric !== 'voc12' && metric !== 'both')
    throw new UsageError(`--metric must be voc07, voc12 or both, got ${JSON.stringify(metric)}`);
  const iouRaw = stringOption(args, 'iou') ?? '0.5';
  const iou = Number(iouRaw);
  if (!(iou > 0 && iou <= 1))
    throw new UsageError(`--iou must be a number in (0, 1], got ${JSON.stringify(iouRaw)}`);
  const classes = stringOption(args, 'classes')
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const inputs: Parameters<typeof evaluateVocFiles>[0] = {
    gt: required(args, 'gt'),
    detections: required(args, 'dt'),
    imageSet: stringOption(args, 'image-set') ?? 'test',
  };
  if (classes && classes.length > 0) inputs.classes = classes;
  const year = stringOption(args, 'year');
  if (year) inputs.year = year;
  const result = await evaluateVocFiles(inputs, { iouThreshold: iou, metric });
  const report = stringOption(args, 'report');
  if (report) await writeAtomic(report, JSON.stringify(vocReport(result)));
  if (args.values.json === true) {
    console.log(JSON.stringify(vocSummaryJson(result)));
    return 0;
  }
  const f = (x: number | null) => (x === null ? '   n/a' : formatFixed(x, 4).padStart(6));
  const width = Math.max(5, ...result.perClass.map((c) => c.name.length));
  console.log(`PASCAL VOC, IoU > ${iou}`);
  console.log(`${'class'.padEnd(width)}  ${'#gt'.padStart(6)} ${'#det'.padStart(7)}   AP07    AP12`);
  for (const c of result.perClass)
    console.log(
      `${c.name.padEnd(width)}  ${String(c.npos).padStart(6)} ${String(c.numDetections).padStart(7)}  ${metric === 'voc12' ? '     -' : f(c.AP07)}  ${metric === 'voc07' ? '     -' : f(c.AP12)}`,
    );
  if (metric !== 'voc12') console.log(`mAP (VOC07 11-point): ${f(result.mAP07).trim()}`);
  if (metric !== 'voc07') console.log(`mAP (VOC2010+ area):  ${f(result.mAP12).trim()}`);
  return 0;
}

/** `ablate eval coco|voc`: evaluate detections against ground truth from files. */
export const evalCommand: Command = {
  name: 'eval',
  summary: 'Evaluate detections: COCO AP (pycocotools-exact) or PASCAL VOC mAP',
  usage: USAGE,
  options: {
    gt: { type: 'string' },
    dt: { type: 'string' },
    'iou-type': { type: 'string' },
    json: { type: 'boolean' },
    report: { type: 'string' },
    'ignore-unknown-categories': { type: 'boolean' },
    'image-set': { type: 'string' },
    year: { type: 'string' },
    iou: { type: 'string' },
    metric: { type: 'string' },
    classes: { type: 'string' },
  },
  async run(args) {
    const [sub, ...extra] = args.positionals;
    if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
    if (sub === 'coco') return runCoco(args);
    if (sub === 'voc') return runVoc(args);
    throw new UsageError(
      sub === undefined
        ? 'name what to evaluate: coco or voc'
        : `unknown evaluation ${JSON.stringify(sub)}: use coco or voc`,
    );
  },
};
