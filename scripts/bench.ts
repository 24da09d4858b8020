/**
 * `npm run bench -- NAME [--json] [...]`: runs bench/NAME.ts. With --json, a benchmark prints one JSON
 * object of its figures as its last line.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const [name, ...rest] = process.argv.slice(2);
const available = readdirSync(join(root, 'bench'))
  .filter((f) => f.endsWith('.ts') && !f.startsWith('_'))
  .map((f) => f.slice(0, -3));
if (!name || !existsSync(join(root, 'bench', `${name}.ts`))) {
  console.error(`usage: npm run bench -- NAME [--json]\navailable: ${available.join(', ') || '(none)'}`);
  process.exit(2);
}
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--expose-gc', join(root, 'bench', `${name}.ts`), ...rest],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
child.on('exit', (code) => process.exit(code ?? 1));
