/**
 * Read-only local copies of artifacts (a worker cache's entries): what a digest names must not change
 * under the steps that read it, so files are 0444 and folders 0555. Removing such a tree needs its
 * folders made writable first (unlinking a name needs write permission on its folder, except for root).
 */
import { chmod, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Mode of a file in a read-only copy. */
export const READ_ONLY_FILE_MODE = 0o444;
/** Mode of a folder in a read-only copy. */
export const READ_ONLY_DIR_MODE = 0o555;

/**
 * The folders to make read-only for files at these relative (`/`-separated) folder paths: each with
 * all its ancestors, deepest first (a folder must stay writable until its children are done). `''` is
 * the root.
 */
export function foldersDeepestFirst(fileFolders: Iterable<string>): string[] {
  const all = new Set<string>(['']);
  for (const rel of fileFolders) {
    for (let p = rel; p !== '' && !all.has(p); p = p.slice(0, Math.max(0, p.lastIndexOf('/')))) all.add(p);
  }
  return [...all].sort((a, b) => b.split('/').length - a.split('/').length || (a < b ? -1 : 1));
}

/** Remove a file or folder tree, read-only or not; no error if it is absent. */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw err;
  }
  await chmod(path, 0o755).catch(() => undefined);
  const entries = await readdir(path, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const e of entries)
    if (e.isDirectory()) await chmod(join(e.parentPath, e.name), 0o755).catch(() => undefined);
  await rm(path, { recursive: true, force: true });
}
