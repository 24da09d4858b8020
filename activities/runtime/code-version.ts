/**
 * The version of the code that computes a step kind, for the cache key and lineage: the sha256 of the
 * kind's implementation module and every local module it imports (statically or dynamically,
 * transitively: the descriptor, the training loop, the evaluator, ...), plus package-lock.json (every
 * dependency's exact version). A change to any of them changes the kind's cache keys, so a nightly
 * reproduction recomputes what the change could affect, and nothing the change cannot.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LOCKFILE = join(REPO_ROOT, 'package-lock.json');

// Relative specifiers of `import ... from`, `export ... from` and `import(...)`.
const SPECIFIERS = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm;

async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch {
    return undefined;
  }
}

/** The file a relative specifier names (`./x` may be `./x.ts` or `./x/index.ts`). */
async function resolveLocal(
  fromFile: string,
  specifier: string,
): Promise<{ path: string; bytes: Buffer } | undefined> {
  const base = resolve(dirname(fromFile), specifier);
  for (const candidate of [base, `${base}.ts`, join(base, 'index.ts')]) {
    const bytes = await readIfExists(candidate);
    if (bytes) return { path: candidate, bytes };
  }
  return undefined;
}

/** The local source files `entry` depends on (itself included), sorted, with their bytes. */
export async function moduleClosure(entry: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const first = await readIfExists(entry);
  if (!first) throw new Error(`cannot read ${entry} to compute its code version`);
  const queue: Array<[string, Buffer]> = [[entry, first]];
  while (queue.length > 0) {
    const [path, bytes] = queue.pop()!;
    if (files.has(path)) continue;
    files.set(path, bytes);
    if (!path.endsWith('.ts')) continue;
    for (const m of bytes.toString('utf8').matchAll(SPECIFIERS)) {
      const found = await resolveLocal(path, m[1]!);
      if (found && !files.has(found.path)) queue.push([found.path, found.bytes]);
    }
  }
  return new Map([...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

const digests = new Map<string, Promise<string>>();

/**
 * `sha256:` digest of a kind implementation's module closure and the lockfile. Computed once per
 * process and module (a worker serves one checkout).
 */
export function codeDigest(moduleUrl: string): Promise<string> {
  let d = digests.get(moduleUrl);
  if (!d) {
    d = (async () => {
      const hash = createHash('sha256');
      for (const [path, bytes] of await moduleClosure(fileURLToPath(moduleUrl))) {
        // Paths relative to the checkout, so two clones of the same commit agree.
        hash.update(relative(REPO_ROOT, path)).update('\0').update(bytes).update('\0');
      }
      hash.update('package-lock.json\0').update((await readIfExists(LOCKFILE)) ?? '');
      return `sha256:${hash.digest('hex')}`;
    })();
    digests.set(moduleUrl, d);
  }
  return d;
}
