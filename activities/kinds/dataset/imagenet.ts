/**
 * ImageNet-style classification folders: `<split>/<class>/<image>` (torchvision's ImageFolder layout;
 * ILSVRC's val set after the usual "valprep" sorting into class folders). Labels are the indices of the
 * class folder names in sorted order, which is what every ImageNet training script assumes.
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import { ErrorType, permanent } from '../../../infra/errors';

const IMAGE_EXT = /\.(jpe?g|png|webp)$/i;

/** A listed split. */
export interface ImagenetFolder {
  /** Class folder names (wnids), sorted; label k is classes[k]. */
  classes: string[];
  /** Human names from `synsets.txt` / `LOC_synset_mapping.txt` next to the split folder, when present. */
  names?: string[];
  /** Every image, sorted by class then file name. */
  items: Array<{ path: string; label: number }>;
}

/**
 * List `dir` (e.g. `dataset/train`): one sub-folder per class holding image files. Throws
 * DatasetNotFound for a missing folder and EmptyDataset when it has no class folders or no images.
 */
export async function listImagenetFolder(dir: string): Promise<ImagenetFolder> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw permanent(ErrorType.DatasetNotFound, `${dir}: classification folder not found`);
    throw err;
  }
  const classes = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
  if (classes.length === 0)
    throw permanent(
      ErrorType.EmptyDataset,
      `${dir}: no class folders (expected ${dir}/<class>/<image>.JPEG)`,
    );
  const items: ImagenetFolder['items'] = [];
  for (const [label, cls] of classes.entries()) {
    const files = (await readdir(join(dir, cls))).filter((f) => IMAGE_EXT.test(f)).sort();
    for (const f of files) items.push({ path: join(dir, cls, f), label });
  }
  if (items.length === 0) throw permanent(ErrorType.EmptyDataset, `${dir}: the class folders hold no images`);
  const folder: ImagenetFolder = { classes, items };
  const names = await readSynsets(dirname(dir));
  if (names) folder.names = classes.map((c) => names.get(c) ?? c);
  return folder;
}

/** wnid -> name from `synsets.txt` or `LOC_synset_mapping.txt` in `root`, if either exists. */
async function readSynsets(root: string): Promise<Map<string, string> | undefined> {
  for (const f of ['synsets.txt', 'LOC_synset_mapping.txt']) {
    try {
      const text = await readFile(join(root, f), 'utf8');
      const map = new Map<string, string>();
      for (const line of text.split('\n')) {
        const m = /^(\S+)\s+(.*)$/.exec(line.trim());
        if (m) map.set(m[1]!, m[2]!);
      }
      return map;
    } catch {
      // not there: try the next name
    }
  }
  return undefined;
}
