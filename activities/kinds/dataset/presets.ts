/**
 * Named standard splits with the image counts they must have, so that a run on real data can check
 * that it was handed the right files (`ablate data check --preset NAME`, `ablate data split --preset`).
 *
 * Counts are the published ones: COCO 2017 train/val (118,287 / 5,000); COCO 2014 train (82,783), val
 * (40,504), its minival (5,000, the same images as val2017) and valminusminival (35,504), whose union
 * with train2014 is trainval35k (118,287, the same images as train2017); PASCAL VOC 2007 trainval
 * (5,011) / test (4,952), VOC 2012 train (5,717) / val (5,823) / trainval (11,540); and the "Rethinking
 * ImageNet Pre-training" subsets of train2017 (35k, 10k, 3.5k, 1k images, nested).
 */
import { ErrorType, permanent } from '../../../infra/errors';

/** A named split. */
export interface DatasetPreset {
  name: string;
  description: string;
  format: 'coco' | 'voc';
  /** Images the split holds. */
  images: number;
  /**
   * Where the images come from: the file(s) a check expects (COCO annotation file names; VOC
   * `VOC<year>/<imageSet>`), each with its own count.
   */
  parts: Array<{ file: string; images: number }>;
  /** For a subset: the preset it is drawn from (`dataset.split` checks the source against it). */
  subsetOf?: string;
  /** For a nested subset: the subset it lies inside. */
  nestedIn?: string;
}

const coco = (name: string, description: string, file: string, images: number): DatasetPreset => ({
  name,
  description,
  format: 'coco',
  images,
  parts: [{ file, images }],
});

const voc = (name: string, description: string, parts: Array<[string, string, number]>): DatasetPreset => ({
  name,
  description,
  format: 'voc',
  images: parts.reduce((s, [, , n]) => s + n, 0),
  parts: parts.map(([year, set, images]) => ({ file: `VOC${year}/${set}`, images })),
});

const paperSubset = (count: number, label: string, nestedIn?: string): DatasetPreset => ({
  name: `coco-${label}`,
  description: `"Rethinking ImageNet Pre-training" subset: ${count.toLocaleString('en-US')} images of train2017${nestedIn ? `, inside ${nestedIn}` : ''}`,
  format: 'coco',
  images: count,
  parts: [{ file: 'instances_train2017.json', images: 118_287 }],
  subsetOf: 'coco2017-train',
  ...(nestedIn ? { nestedIn } : {}),
});

/** Every preset, by name. */
export const PRESETS: readonly DatasetPreset[] = [
  coco('coco2017-train', 'COCO train2017', 'instances_train2017.json', 118_287),
  coco('coco2017-val', 'COCO val2017', 'instances_val2017.json', 5_000),
  coco('coco2014-train', 'COCO train2014', 'instances_train2014.json', 82_783),
  coco('coco2014-val', 'COCO val2014', 'instances_val2014.json', 40_504),
  coco('coco2014-minival', 'COCO 2014 minival (= val2017 images)', 'instances_minival2014.json', 5_000),
  coco(
    'coco2014-valminusminival',
    'COCO val2014 minus minival',
    'instances_valminusminival2014.json',
    35_504,
  ),
  {
    name: 'coco2014-trainval35k',
    description: 'COCO 2014 trainval35k = train2014 + valminusminival (= train2017 images)',
    format: 'coco',
    images: 118_287,
    parts: [
      { file: 'instances_train2014.json', images: 82_783 },
      { file: 'instances_valminusminival2014.json', images: 35_504 },
    ],
  },
  paperSubset(35_000, '35k'),
  paperSubset(10_000, '10k', 'coco-35k'),
  paperSubset(3_500, '3.5k', 'coco-10k'),
  paperSubset(1_000, '1k', 'coco-3.5k'),
  voc('voc2007-trainval', 'PASCAL VOC 2007 trainval', [['2007', 'trainval', 5_011]]),
  voc('voc2007-test', 'PASCAL VOC 2007 test', [['2007', 'test', 4_952]]),
  voc('voc2012-train', 'PASCAL VOC 2012 train', [['2012', 'train', 5_717]]),
  voc('voc2012-val', 'PASCAL VOC 2012 val', [['2012', 'val', 5_823]]),
  voc('voc2012-trainval', 'PASCAL VOC 2012 trainval', [['2012', 'trainval', 11_540]]),
  voc('voc0712-trainval', 'PASCAL VOC 2007 trainval + 2012 trainval (the usual "07+12")', [
    ['2007', 'trainval', 5_011],
    ['2012', 'trainval', 11_540],
  ]),
  voc('voc07trainval-12train', "VOC 2007 trainval + 2012 train (the paper's VOC training set)", [
    ['2007', 'trainval', 5_011],
    ['2012', 'train', 5_717],
  ]),
];

/** The preset called `name`; throws InvalidInput listing the names otherwise. */
export function getPreset(name: string): DatasetPreset {
  const p = PRESETS.find((x) => x.name === name);
  if (!p)
    throw permanent(
      ErrorType.InvalidInput,
      `unknown preset ${JSON.stringify(name)}; known presets: ${PRESETS.map((x) => x.name).join(', ')}`,
    );
  return p;
}

/**
 * Check a supplied dataset against a preset's expected image count(s). `found` lists the counts of the
 * files supplied, in the preset's part order. Throws InvalidInput naming what differs.
 */
export function checkPresetCounts(
  preset: DatasetPreset,
  found: Array<{ file: string; images: number }>,
): void {
  if (found.length !== preset.parts.length)
    throw permanent(
      ErrorType.InvalidInput,
      `preset ${preset.name} expects ${preset.parts.length} file(s) (${preset.parts.map((p) => p.file).join(' + ')}), got ${found.length}`,
    );
  const problems: string[] = [];
  for (const [i, part] of preset.parts.entries()) {
    const f = found[i]!;
    if (f.images !== part.images)
      problems.push(
        `${f.file} has ${f.images.toLocaleString('en-US')} images; ${preset.name} expects ${part.file} with ${part.images.toLocaleString('en-US')}`,
      );
  }
  if (problems.length > 0)
    throw permanent(
      ErrorType.InvalidInput,
      `${problems.join('; ')} (for other data, use --count/--fraction instead of a preset)`,
    );
}

/**
 * COCO's area ranges (all, small, medium, large) scaled to images of side `size`, i.e. the thresholds
 * 32^2 and 96^2 multiplied by (size / 640)^2. Use them to evaluate synthetic sets of small images so
 * that small/medium/large mean the same fraction of the image as in COCO.
 */
export function scaledAreaRanges(size: number): Array<[number, number]> {
  const k = (size / 640) ** 2;
  return [
    [0, 1e10],
    [0, 32 * 32 * k],
    [32 * 32 * k, 96 * 96 * k],
    [96 * 96 * k, 1e10],
  ];
}
