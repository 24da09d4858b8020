/**
 * The process-level guard: an uncaught error after tfjs-backend-wasm loaded is one line and exit 70,
 * not Node's print of the 54 KB minified Emscripten source and exit 7.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'uncaught-after-wasm.ts');

describe('process handlers', () => {
  it('an uncaught error after the wasm backend loaded: one line, exit 70, no dump', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', FIXTURE], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 70, r.stderr.slice(0, 2000));
    assert.equal(
      r.stderr.trim(),
      'ablate: internal error: Channel has been shut down (run again with --debug for the stack trace)',
    );
  });

  it('with --debug the stack follows the line', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', FIXTURE, '--debug'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 70);
    assert.match(
      r.stderr,
      /^ablate: internal error: Channel has been shut down\nError: Channel has been shut down\n\s+at /,
    );
    assert.ok(r.stderr.length < 5_000, `stderr is ${r.stderr.length} chars`);
  });
});
