/**
 * Damage stored files the way a user's disk, a stray script or a careless `cp` would. Stored blobs are
 * read-only (0444), which stops a careless write but not a determined one: these helpers make the file
 * writable first, as `chmod u+w` would, so they work for any user (root ignores the mode anyway).
 */
import { chmod, writeFile } from 'node:fs/promises';

/** Overwrite a stored file (path or file:// URL) with other bytes. */
export async function tamper(file: string | URL, data: string | Uint8Array): Promise<void> {
  const path = typeof file === 'string' && file.startsWith('file:') ? new URL(file) : file;
  await chmod(path, 0o644);
  await writeFile(path, data);
}
