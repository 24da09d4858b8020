/** `--slots` / ABLATE_SLOTS: parsed and resolved in temporal.config.ts (explicit option > env > default). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { resolveConfig } from '../../temporal.config';

describe('per-queue slots', () => {
  it('default: no trainer processes, one gpu slot (as before --slots existed)', () => {
    const c = resolveConfig({}, {}, '/cwd');
    assert.equal(c.trainerProcesses, 0);
    assert.equal(c.workerSlots.gpu, 1);
    assert.ok(c.workerSlots.cpu >= 2);
  });

  it('gpu=N asks for N trainer processes of one slot each; cpu=N sets the cpu slots', () => {
    const c = resolveConfig({ slots: 'gpu=2,cpu=3' }, {}, '/cwd');
    assert.equal(c.trainerProcesses, 2);
    assert.deepEqual(c.workerSlots, { cpu: 3, gpu: 1 });
    assert.equal(resolveConfig({ slots: 'cpu=5' }, {}, '/cwd').trainerProcesses, 0);
  });

  it('flags win over variables; ABLATE_SLOTS wins over ABLATE_WORKER_SLOTS for its queues', () => {
    // `ablate worker --slots 3` beats a per-queue variable.
    assert.equal(resolveConfig({ workerSlots: 3 }, { ABLATE_SLOTS: 'cpu=6' }, '/cwd').workerSlots.cpu, 3);
    assert.equal(resolveConfig({}, { ABLATE_SLOTS: 'gpu=3' }, '/cwd').trainerProcesses, 3);
    assert.equal(resolveConfig({ slots: 'gpu=2' }, { ABLATE_SLOTS: 'gpu=3' }, '/cwd').trainerProcesses, 2);
    const c = resolveConfig({}, { ABLATE_SLOTS: 'cpu=6', ABLATE_WORKER_SLOTS: '4' }, '/cwd');
    assert.deepEqual(c.workerSlots, { cpu: 6, gpu: 4 });
  });

  it('rejects malformed values, naming where they came from', () => {
    assert.throws(() => resolveConfig({ slots: 'gpu=0' }, {}, '/cwd'), {
      message:
        '--slots=gpu=0: expected QUEUE=N[,QUEUE=N] with QUEUE cpu or gpu and N a positive integer, e.g. gpu=2 or gpu=2,cpu=4',
    });
    assert.throws(
      () => resolveConfig({}, { ABLATE_SLOTS: 'tpu=2' }, '/cwd'),
      /^AblateError: ABLATE_SLOTS=tpu=2: expected/,
    );
    assert.throws(() => resolveConfig({ slots: 'gpu=1,gpu=2' }, {}, '/cwd'), /gpu is given twice/);
  });
});
