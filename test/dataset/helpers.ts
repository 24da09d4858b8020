/** Shared helpers of the dataset tests. */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

/** Every file under `dir`, as relative path -> sha256 hex, sorted by path. */
export async function hashTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort();
  for (const f of files)
    out.set(
      f,
      createHash('sha256')
        .update(await readFile(join(dir, f)))
        .digest('hex'),
    );
  return out;
}

/** A small, valid COCO instances document; category 5 ("rare") appears in exactly one image. */
export function makeCoco(images = 60): {
  info: unknown;
  images: Array<Record<string, unknown>>;
  annotations: Array<Record<string, unknown>>;
  categories: Array<Record<string, unknown>>;
} {
  const doc = {
    info: { description: 'fixture', year: 2024 },
    images: [] as Array<Record<string, unknown>>,
    annotations: [] as Array<Record<string, unknown>>,
    categories: [1, 2, 3, 4, 5].map((id) => ({ supercategory: 'x', id, name: id === 5 ? 'rare' : `c${id}` })),
  };
  let annId = 1000;
  for (let i = 0; i < images; i++) {
    const id = 100 + i * 3;
    doc.images.push({
      license: 1,
      file_name: `${String(id).padStart(12, '0')}.jpg`,
      height: 48,
      width: 64,
      id,
    });
    const n = i % 4; // some images have no annotation
    for (let k = 0; k < n; k++) {
      const cat = i === 37 && k === 0 ? 5 : 1 + ((i + k) % 4);
      doc.annotations.push({
        segmentation: [[1, 1, 10, 1, 10, 10]],
        area: 40.5,
        iscrowd: 0,
        image_id: id,
        bbox: [1, 1, 9, 9],
        category_id: cat,
        id: annId++,
      });
    }
  }
  return doc;
}
