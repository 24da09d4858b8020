/**
 * Deterministic subsets (`dataset.split`, `ablate data split`).
 *
 * Selection. Every image gets a 53-bit priority hashed from (seed, image id), so the choice depends on
 * the seed and the set of images, not on their order in the file. Then:
 *   1. coverage: categories in order of rarity (fewest images first, then id); for each category not yet
 *      covered, take its highest-priority image, while the subset has room. Every category with an image
 *      is represented whenever the count allows it;
 *   2. fill: the remaining images in priority order.
 * Consequence: for one seed, a subset of n images lies inside the subset of m > n images whenever n is at
 * least the number of coverage picks (at most the number of categories). `nestedIn` restricts the
 * candidates to a parent subset's images, which makes 1k-in-3.5k-in-10k explicit and checked.
 *
 * Output. A COCO file is written by copying the source's raw bytes: its top-level members in their
 * order, the selected images (in source order), their annotations (in source order) and all
 * categories. Same inputs and seed give byte-identical output. The source is streamed twice, so
 * memory stays bounded by the box-only records (about 0.5 GB for train2017).
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';

import { ErrorType, permanent } from '../../../infra/errors';
import { loadCocoInstances, scanCocoRaw } from './coco';
import { hash32 } from '../../../infra/prng';
import { loadVocDevkit, readImageSet } from './voc';

/** How many images to take. */
export interface SubsetSize {
  count?: number;
  /** 0 < fraction <= 1, rounded to the nearest image. */
  fraction?: number;
}

/** One candidate image and the categories it contains. */
export interface SplitCandidate {
  id: number | string;
  categories: ReadonlyArray<number | string>;
}

/** A 53-bit priority of `id` under `seed` (lower goes first). */
export function splitPriority(seed: number | string, id: number | string): number {
  const key = `${String(seed)}\u0000${String(id)}`;
  return hash32(key, 0x5eed) * 2097152 + (hash32(key, 0xc0ffee) >>> 11);
}

/** The number of images a request asks for, out of `pool`. Throws on an empty or impossible split. */
export function resolveCount(size: SubsetSize, pool: number, source: string): number {
  if ((size.count === undefined) === (size.fraction === undefined))
    throw permanent(ErrorType.InvalidInput, 'give exactly one of count and fraction');
  let n: number;
  if (size.count !== undefined) {
    if (!Number.isInteger(size.count) || size.count < 0)
      throw permanent(ErrorType.InvalidInput, `count must be a non-negative integer, got ${size.count}`);
    n = size.count;
  } else {
    const f = size.fraction!;
    if (!(f > 0 && f <= 1)) throw permanent(ErrorType.InvalidInput, `fraction must be in (0, 1], got ${f}`);
    n = Math.round(f * pool);
  }
  if (n === 0)
    throw permanent(
      ErrorType.EmptyDataset,
      `${source}: the split is empty (${size.count !== undefined ? 'count 0' : `fraction ${size.fraction} of ${pool} images rounds to 0`})`,
    );
  if (n > pool)
    throw permanent(
      ErrorType.InvalidInput,
      `${source}: asked for ${n} images but only ${pool} are available`,
    );
  return n;
}

/**
 * Choose `n` of `candidates` (see the module doc). Returns the chosen ids as a set; `categories` lists
 * the categories to cover in a stable order (ids or names).
 */
export function selectSubset(
  candidates: readonly SplitCandidate[],
  n: number,
  seed: number | string,
): Set<number | string> {
  const ranked = candidates
    .map((c) => ({ c, p: splitPriority(seed, c.id) }))
    .sort((a, b) => a.p - b.p || (String(a.c.id) < String(b.c.id) ? -1 : 1));
  // Best (first-ranked) image and image count per category.
  const best = new Map<number | string, number>();
  const frequency = new Map<number | string, number>();
  for (const [rank, { c }] of ranked.entries()) {
    for (const cat of new Set(c.categories)) {
      frequency.set(cat, (frequency.get(cat) ?? 0) + 1);
      if (!best.has(cat)) best.set(cat, rank);
    }
  }
  const order = [...frequency.keys()].sort(
    (a, b) =>
      frequency.get(a)! - frequency.get(b)! || (String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0),
  );
  const chosen = new Set<number | string>();
  const covered = new Set<number | string>();
  for (const cat of order) {
    if (chosen.size >= n) break;
    if (covered.has(cat)) continue;
    const pick = ranked[best.get(cat)!]!.c;
    chosen.add(pick.id);
    for (const k of pick.categories) covered.add(k);
  }
  for (const { c } of ranked) {
    if (chosen.size >= n) break;
    chosen.add(c.id);
  }
  return chosen;
}

/** What a COCO subset holds. */
export interface SubsetSummary {
  images: number;
  annotations: number;
  /** Per category name: images containing it and its instances (crowd regions included). */
  perCategory: Record<string, { images: number; instances: number }>;
  /** Category names with no image in the subset although the source has some. */
  missingCategories: string[];
}

/**
 * Write a COCO subset of `source` to `dest` (atomically). `nestedIn`, a COCO file whose images all
 * belong to `source`, restricts the candidates to its images.
 */
export async function writeCocoSubset(
  source: string,
  dest: string,
  options: SubsetSize & {
    seed: number | string;
    nestedIn?: string;
    signal?: AbortSignal;
    /** Called with the source's image count before selecting (e.g. a preset's count check). */
    checkSource?: (images: number) => void;
  },
): Promise<SubsetSummary> {
  const data = await loadCocoInstances(source, { segmentation: false, signal: options.signal });
  options.checkSource?.(data.images.length);
  const catsOf = new Map<number, number[]>(data.images.map((im) => [im.id, []]));
  for (const a of data.annotations) catsOf.get(a.image_id)!.push(a.category_id);
  let pool = data.images.map((im) => im.id);
  if (options.nestedIn) {
    const parent = await loadCocoInstances(options.nestedIn, { segmentation: false, signal: options.signal });
    const strangers = parent.images.filter((im) => !catsOf.has(im.id));
    if (strangers.length > 0)
      throw permanent(
        ErrorType.InvalidInput,
        `${options.nestedIn}: not a subset of ${source}: ${strangers.length} of its images (e.g. id ${strangers[0]!.id}) are not in it`,
      );
    pool = parent.images.map((im) => im.id);
  }
  const n = resolveCount(options, pool.length, options.nestedIn ?? source);
  const chosen = selectSubset(
    pool.map((id) => ({ id, categories: catsOf.get(id)! })),
    n,
    options.seed,
  );

  const names = new Map(data.categories.map((c) => [c.id, c.name]));
  const summary: SubsetSummary = { images: 0, annotations: 0, perCategory: {}, missingCategories: [] };
  for (const c of data.categories) summary.perCategory[c.name] = { images: 0, instances: 0 };
  for (const id of chosen) {
    for (const cat of new Set(catsOf.get(id as number))) summary.perCategory[names.get(cat)!]!.images++;
  }

  const tmp = `${dest}.part-${randomBytes(4).toString('hex')}`;
  const out = createWriteStream(tmp);
  const put = async (s: string | Buffer): Promise<void> => {
    if (!out.write(s)) await once(out, 'drain');
  };
  let firstMember = true;
  let firstElement = true;
  const memberKey = async (key: string): Promise<void> => {
    await put(`${firstMember ? '{' : ','}${JSON.stringify(key)}:`);
    firstMember = false;
  };
  const element = async (raw: Buffer): Promise<void> => {
    if (!firstElement) await put(',');
    firstElement = false;
    await put(raw);
  };
  try {
    await scanCocoRaw(
      source,
      {
        async member(key, raw) {
          await memberKey(key);
          await put(raw);
        },
        async sectionStart(key) {
          await memberKey(key);
          await put('[');
          firstElement = true;
        },
        async sectionEnd() {
          await put(']');
        },
        async image(r, raw) {
          if (!chosen.has(r.id)) return;
          summary.images++;
          await element(raw);
        },
        async annotation(r, raw) {
          if (!chosen.has(r.image_id)) return;
          summary.annotations++;
          summary.perCategory[names.get(r.category_id)!]!.instances++;
          await element(raw);
        },
        async category(_r, raw) {
          await element(raw);
        },
      },
      { signal: options.signal, skipSegmentation: true },
    );
    await put(firstMember ? '{}' : '}');
    out.end();
    await once(out, 'finish');
    await rename(tmp, dest);
  } catch (err) {
    out.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
  const present = new Set(data.annotations.map((a) => a.category_id));
  summary.missingCategories = data.categories
    .filter((c) => present.has(c.id) && summary.perCategory[c.name]!.images === 0)
    .map((c) => c.name);
  return summary;
}

/**
 * Write a VOC ImageSet subset (one id per line, in source order) of `VOC<year>/ImageSets/Main/<imageSet>.txt`
 * under `root` to `dest` (atomically). `nestedIn` is another ImageSet file whose ids restrict the pool.
 */
export async function writeVocSubset(
  root: string,
  year: string,
  imageSet: string,
  dest: string,
  options: SubsetSize & { seed: number | string; nestedIn?: string },
): Promise<SubsetSummary> {
  const voc = await loadVocDevkit(root, year, imageSet);
  const source = `${voc.root}/ImageSets/Main/${imageSet}.txt`;
  const byId = new Map(voc.images.map((im) => [im.id, im]));
  let pool = voc.images.map((im) => im.id);
  if (options.nestedIn) {
    const parent = await readImageSet(options.nestedIn);
    const strangers = parent.filter((id) => !byId.has(id));
    if (strangers.length > 0)
      throw permanent(
        ErrorType.InvalidInput,
        `${options.nestedIn}: not a subset of ${source}: ${strangers.length} of its ids (e.g. ${strangers[0]!}) are not in it`,
      );
    pool = parent;
  }
  const n = resolveCount(options, pool.length, options.nestedIn ?? source);
  const chosen = selectSubset(
    pool.map((id) => ({ id, categories: byId.get(id)!.objects.map((o) => o.name) })),
    n,
    options.seed,
  );
  const summary: SubsetSummary = { images: 0, annotations: 0, perCategory: {}, missingCategories: [] };
  for (const c of voc.classes) summary.perCategory[c] = { images: 0, instances: 0 };
  const lines: string[] = [];
  for (const im of voc.images) {
    if (!chosen.has(im.id)) continue;
    lines.push(im.id);
    summary.images++;
    summary.annotations += im.objects.length;
    for (const o of im.objects) summary.perCategory[o.name]!.instances++;
    for (const name of new Set(im.objects.map((o) => o.name))) summary.perCategory[name]!.images++;
  }
  summary.missingCategories = voc.classes.filter((c) => summary.perCategory[c]!.images === 0);
  const tmp = `${dest}.part-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, `${lines.join('\n')}\n`);
  await rename(tmp, dest);
  return summary;
}
