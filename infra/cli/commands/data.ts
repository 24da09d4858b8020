/**
 * `ablate data synth|split|check`: dataset commands that run directly on local files (no Temporal).
 * Heavy modules (the generator, sharp) load inside `run`.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

import { intOption, stringOption, UsageError, type Command, type CommandArgs } from '../command';

const USAGE = `Usage:
  ablate data synth --task classification|detection --format imagenet|coco|voc --images N --seed S --out DIR
                    [--size PX] [--classes K] [--val-images N] [--val-per-class N] [--year 2007|2012] [--force]
  ablate data split --annotations FILE (--count N | --fraction F | --preset NAME) --seed S --out FILE
                    [--nested-in FILE] [--devkit DIR --year Y]
  ablate data check (--annotations FILE | --devkit DIR --year Y --image-set SET) [--images DIR]
                    [--preset NAME] [--on-corrupt fail|skip]
  ablate data presets

synth   Write a seeded synthetic dataset in a real format: imagenet (train/<wnid>/*.JPEG, val/...),
        coco (images/, annotations/instances_{train,val}.json) or voc (VOCdevkit/VOC<year>/...), plus
        DIR/contact-sheet.png. Same options and seed give byte-identical files. DIR must not exist
        (or pass --force to replace it); it appears only when complete.
          --size PX          image side (default 64)
          --classes K        classification 2..100 (default 100), detection 1..20 (default 12)
          --val-images N     detection val images, a fixed set per seed (default 300)
          --val-per-class N  classification val images per class (default 10)
split   Select a deterministic subset of a COCO instances file (or of a VOC ImageSet .txt, with
        --devkit) by seed: same inputs, byte-identical output. Keeps every category represented when
        the count allows. --nested-in FILE picks only among that subset's images (1k in 3.5k in 10k).
          --count N | --fraction F (0 < F <= 1, rounded to the nearest image) | --preset NAME
check   Load and validate an annotation file or VOC image set (every problem listed), print counts,
        optionally decode every image (--images DIR) and compare with a preset's expected counts.
presets List the named standard splits and their expected image counts.

Examples:
  ablate data synth --task detection --format coco --images 4000 --seed 1 --out data/coco-synth
  ablate data split --annotations data/coco-synth/annotations/instances_train.json --count 400 --seed 7 --out sub.json`;

const SYNTH_TASKS = ['classification', 'detection'] as const;
const SYNTH_FORMATS = ['imagenet', 'coco', 'voc'] as const;

function required(args: CommandArgs, name: string): string {
  const v = stringOption(args, name);
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v;
}

function oneOf<T extends string>(args: CommandArgs, name: string, allowed: readonly T[], fallback?: T): T {
  const v = stringOption(args, name) ?? fallback;
  if (v === undefined) throw new UsageError(`--${name} is required (${allowed.join(' | ')})`);
  if (!(allowed as readonly string[]).includes(v))
    throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

/** A seed: an integer, or any other string. */
function seedOption(args: CommandArgs): number | string {
  const raw = required(args, 'seed');
  return /^-?\d+$/.test(raw) ? Number(raw) : raw;
}

/** Write a directory atomically: build it next to `dest`, then rename. */
async function writeDirAtomically<T>(
  dest: string,
  force: boolean,
  build: (dir: string) => Promise<T>,
): Promise<T> {
  const exists = await stat(dest).then(
    () => true,
    () => false,
  );
  if (exists && !force) throw new UsageError(`${dest} already exists (pass --force to replace it)`);
  await mkdir(dirname(dest), { recursive: true });
  const tmp = `${dest}.part-${randomBytes(4).toString('hex')}`;
  try {
    const result = await build(tmp);
    if (exists) await rm(dest, { recursive: true, force: true });
    await rename(tmp, dest);
    return result;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

function progressPrinter(label: string): (done: number, total: number) => void {
  let last = 0;
  const tty = process.stderr.isTTY;
  return (done, total) => {
    const now = Date.now();
    if (done !== total && now - last < 1000) return;
    last = now;
    if (tty) process.stderr.write(`\r${label}: ${done}/${total} images${done === total ? '\n' : ''}`);
    else if (done === total) process.stderr.write(`${label}: ${done}/${total} images\n`);
  };
}

async function runSynth(args: CommandArgs): Promise<number> {
  const format = oneOf(args, 'format', SYNTH_FORMATS);
  const task = oneOf(args, 'task', SYNTH_TASKS, format === 'imagenet' ? 'classification' : 'detection');
  const { taskFormatMismatch } = await import('../../kinds/dataset-synth');
  const mismatch = taskFormatMismatch(task, format);
  if (mismatch) throw new UsageError(mismatch);
  const images = intOption(args, 'images', -1, 1);
  if (images < 0) throw new UsageError('--images is required');
  const seed = seedOption(args);
  const out = resolve(required(args, 'out'));
  const size = intOption(args, 'size', 64, 16);
  const classesRaw = stringOption(args, 'classes');
  const classes = classesRaw === undefined ? undefined : intOption(args, 'classes', 0, 1);
  const gen = await import('../../../activities/kinds/dataset/synth/generate');
  const t0 = Date.now();
  const progress = progressPrinter(`synth ${format}`);
  const summary = await writeDirAtomically(out, args.values.force === true, async (dir) => {
    await mkdir(dir, { recursive: true });
    const hooks = { onProgress: progress, contactSheet: `${dir}/contact-sheet.png` };
    if (format === 'imagenet')
      return gen.generateImagenetClassification(
        dir,
        { seed, images, classes, size, valPerClass: intOption(args, 'val-per-class', 10, 0) },
        hooks,
      );
    const options = { seed, images, classes, size, valImages: intOption(args, 'val-images', 300, 0) };
    if (format === 'coco') return gen.generateCocoDetection(dir, options, hooks);
    return gen.generateVocDetection(
      dir,
      { ...options, year: oneOf(args, 'year', ['2007', '2012'] as const, '2012') },
      hooks,
    );
  });
  console.log(JSON.stringify(summary, null, 2));
  console.error(
    `wrote ${out} in ${((Date.now() - t0) / 1000).toFixed(1)} s (preview: ${out}/contact-sheet.png)`,
  );
  return 0;
}

function sizeOptions(args: CommandArgs): { count?: number; fraction?: number } {
  const count = stringOption(args, 'count');
  const fraction = stringOption(args, 'fraction');
  if (count !== undefined && fraction !== undefined)
    throw new UsageError('give --count or --fraction, not both');
  if (count !== undefined) return { count: intOption(args, 'count', 0, 1) };
  if (fraction !== undefined) {
    const f = Number(fraction);
    if (!(f > 0 && f <= 1))
      throw new UsageError(`--fraction must be a number in (0, 1], got ${JSON.stringify(fraction)}`);
    return { fraction: f };
  }
  return {};
}

async function runSplit(args: CommandArgs): Promise<number> {
  const { writeCocoSubset, writeVocSubset } = await import('../../../activities/kinds/dataset/split');
  const { checkPresetCounts, getPreset } = await import('../../../activities/kinds/dataset/presets');
  const annotationList = (args.values.annotations as string[] | undefined) ?? [];
  if (annotationList.length > 1) throw new UsageError('split takes one --annotations file');
  const annotations = annotationList[0];
  const devkit = stringOption(args, 'devkit');
  if ((annotations === undefined) === (devkit === undefined))
    throw new UsageError('give --annotations FILE (COCO) or --devkit DIR --year Y --image-set SET (VOC)');
  const seed = seedOption(args);
  const out = resolve(required(args, 'out'));
  const size = sizeOptions(args);
  const presetName = stringOption(args, 'preset');
  let checkSource: ((images: number) => void) | undefined;
  if (presetName !== undefined) {
    if (size.count !== undefined || size.fraction !== undefined)
      throw new UsageError('give --preset or --count/--fraction, not both');
    const preset = getPreset(presetName);
    if (!preset.subsetOf)
      throw new UsageError(
        `preset ${preset.name} is a full split, not a subset; use \`ablate data check --preset\``,
      );
    size.count = preset.images;
    const source = getPreset(preset.subsetOf);
    checkSource = (images) => checkPresetCounts(source, [{ file: annotations ?? devkit!, images }]);
  }
  if (size.count === undefined && size.fraction === undefined)
    throw new UsageError('give --count N, --fraction F or --preset NAME');
  const nestedIn = stringOption(args, 'nested-in');
  await mkdir(dirname(out), { recursive: true });
  const summary = annotations
    ? await writeCocoSubset(resolve(annotations), out, { ...size, seed, nestedIn, checkSource })
    : await writeVocSubset(resolve(devkit!), required(args, 'year'), required(args, 'image-set'), out, {
        ...size,
        seed,
        nestedIn,
      });
  console.log(JSON.stringify(summary, null, 2));
  if (summary.missingCategories.length > 0)
    console.error(
      `warning: ${summary.missingCategories.length} categories have no image in the subset (count too small)`,
    );
  console.error(`wrote ${out}: ${summary.images} images, ${summary.annotations} annotations`);
  return 0;
}

async function runCheck(args: CommandArgs): Promise<number> {
  const ds = await import('../../../activities/kinds/dataset/index');
  const { checkPresetCounts, getPreset } = await import('../../../activities/kinds/dataset/presets');
  const policy = oneOf(args, 'on-corrupt', ['fail', 'skip'] as const, 'fail');
  const presetName = stringOption(args, 'preset');
  const preset = presetName === undefined ? undefined : getPreset(presetName);
  const files = (args.values.annotations as string[] | undefined) ?? [];
  const devkit = stringOption(args, 'devkit');
  if ((files.length === 0) === (devkit === undefined))
    throw new UsageError('give --annotations FILE (repeatable) or --devkit DIR');
  const found: Array<{ file: string; images: number }> = [];
  const imagesDir = stringOption(args, 'images');
  const toDecode: Array<{ path: string; width: number; height: number }> = [];
  const report: Record<string, unknown>[] = [];
  if (devkit !== undefined) {
    const parts =
      preset?.format === 'voc'
        ? preset.parts.map((p) => p.file.split('/') as [string, string])
        : [[`VOC${required(args, 'year')}`, required(args, 'image-set')] as [string, string]];
    for (const [vocYear, set] of parts) {
      const voc = await ds.loadVocDevkit(resolve(devkit), vocYear.replace(/^VOC/, ''), set);
      found.push({ file: `${voc.root}/ImageSets/Main/${set}.txt`, images: voc.images.length });
      const objects = voc.images.reduce((s, im) => s + im.objects.length, 0);
      const difficult = voc.images.reduce((s, im) => s + im.objects.filter((o) => o.difficult).length, 0);
      report.push({
        file: found.at(-1)!.file,
        images: voc.images.length,
        objects,
        difficult,
        classes: voc.classes,
      });
      for (const im of voc.images) toDecode.push({ path: im.path, width: im.width, height: im.height });
    }
  } else {
    for (const file of files) {
      const data = await ds.loadCocoInstances(resolve(file), { segmentation: false });
      found.push({ file, images: data.images.length });
      const crowd = data.annotations.filter((a) => a.iscrowd === 1).length;
      report.push({
        file,
        images: data.images.length,
        annotations: data.annotations.length,
        crowd,
        categories: data.categories.length,
        imagesWithoutAnnotations: data.images.length - new Set(data.annotations.map((a) => a.image_id)).size,
      });
      if (imagesDir !== undefined)
        for (const im of data.images)
          toDecode.push({ path: resolve(imagesDir, im.file_name), width: im.width, height: im.height });
    }
  }
  console.log(JSON.stringify(report.length === 1 ? report[0] : report, null, 2));
  if (preset) {
    checkPresetCounts(preset, found);
    console.error(`matches preset ${preset.name} (${preset.images.toLocaleString('en-US')} images)`);
  }
  if (imagesDir !== undefined || devkit !== undefined) {
    const result = await ds.checkImageFiles(toDecode, {
      onCorrupt: policy,
      onProgress: progressPrinter('decode'),
    });
    console.error(
      `decoded ${result.checked - result.skipped.length}/${result.checked} images` +
        (result.skipped.length > 0
          ? `; ${result.skipped.length} corrupt (skipped under --on-corrupt skip)`
          : ''),
    );
  }
  return 0;
}

async function runPresets(): Promise<number> {
  const { PRESETS } = await import('../../../activities/kinds/dataset/presets');
  for (const p of PRESETS)
    console.log(`${p.name.padEnd(24)} ${p.images.toLocaleString('en-US').padStart(8)}  ${p.description}`);
  return 0;
}

/** `ablate data ...`. */
export const dataCommand: Command = {
  name: 'data',
  summary: 'Synthetic datasets, deterministic splits, dataset checks (synth | split | check | presets)',
  usage: USAGE,
  options: {
    task: { type: 'string' },
    format: { type: 'string' },
    images: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    size: { type: 'string' },
    classes: { type: 'string' },
    'val-images': { type: 'string' },
    'val-per-class': { type: 'string' },
    year: { type: 'string' },
    force: { type: 'boolean' },
    annotations: { type: 'string', multiple: true },
    count: { type: 'string' },
    fraction: { type: 'string' },
    preset: { type: 'string' },
    'nested-in': { type: 'string' },
    devkit: { type: 'string' },
    'image-set': { type: 'string' },
    'on-corrupt': { type: 'string' },
  },
  async run(args) {
    const [sub, ...extra] = args.positionals;
    if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
    switch (sub) {
      case 'synth':
        return runSynth(args);
      case 'split':
        return runSplit(args);
      case 'check':
        return runCheck(args);
      case 'presets':
        return runPresets();
      case undefined:
        throw new UsageError('missing sub-command: synth, split, check or presets');
      default:
        throw new UsageError(
          `unknown sub-command ${JSON.stringify(sub)}: expected synth, split, check or presets`,
        );
    }
  },
};
