import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';

import { compilePipeline } from '../../infra/compiler/compile';
import { lineageOf, lineageText, verifyRun } from '../../infra/lineage';
import { startRun, waitForRun } from '../../infra/runs';
import { isArtifactRef } from '../../workflows/plan-types';
import { tamper } from '../helpers/tamper';
import { testSession, type TestSession } from '../helpers/temporal';

describe('lineage and verify', () => {
  let session: TestSession;
  let runId: string;
  before(async () => {
    session = await testSession();
    ({ runId } = await startRun(
      session,
      compilePipeline(await readFile('pipelines/examples/smoke.json', 'utf8')),
    ));
    await waitForRun(session, runId);
  });
  after(() => session.dispose());

  it('traces every result of a run down to its sources', async () => {
    const graph = await lineageOf(session.store, runId);
    assert.equal(Object.keys(graph.nodes).length, 19);
    assert.deepEqual(
      graph.roots.map((k) => graph.nodes[k]!.label),
      ['report'],
    );
    const seed = Object.values(graph.nodes).find((n) => n.label === 'seed')!;
    assert.deepEqual(seed.parents, []);
    assert.equal(seed.params && (seed.params as { text: string }).text, 'ablate smoke test\n');
    assert.match(seed.code.commit, /^([0-9a-f]{40}|unknown)$/);
    const join = Object.values(graph.nodes).find((n) => n.label === 'join[word=beta,algorithm=md5]')!;
    assert.deepEqual(
      join.inputs.map((i) => graph.nodes[i.fromStep!]!.label),
      ['left{word=beta}', 'right{algorithm=md5}'],
    );
    const text = lineageText(graph);
    assert.match(text, /^report \(report\.table v1\)/);
    assert.match(text, /seed \(util\.write v1\)\s+\[shown above\]/);
  });

  it('traces one number, and an artifact by its digest', async () => {
    const metric = await lineageOf(session.store, `${runId}/digest[word=gamma,algorithm=sha256]/bytes`);
    assert.equal(metric.target.kind, 'metric');
    assert.equal(typeof metric.target.value, 'number');
    assert.equal(Object.keys(metric.nodes).length, 5); // digest <- join <- left, right <- seed
    const left = Object.values(metric.nodes).find((n) => n.label === 'left{word=gamma}')!;
    const file = left.outputs.file;
    assert.ok(isArtifactRef(file));
    const byDigest = await lineageOf(session.store, file.digest);
    assert.deepEqual(byDigest.roots, [left.key]);
    await assert.rejects(lineageOf(session.store, `${runId}/nope`), /has no finished step "nope"/);
  });

  it('shows where a cached result was computed', async () => {
    const { runId: again } = await startRun(
      session,
      compilePipeline(await readFile('pipelines/examples/smoke.json', 'utf8')),
    );
    await waitForRun(session, again);
    const graph = await lineageOf(session.store, `${again}/seed`);
    const seed = graph.nodes[graph.roots[0]!]!;
    assert.equal(seed.status, 'cached');
    assert.equal(seed.computedIn, runId);
  });

  it('verify names each missing or corrupt artifact and fails', async () => {
    assert.deepEqual((await verifyRun(session.store, runId)).problems, []);
    const graph = await lineageOf(session.store, runId);
    const left = Object.values(graph.nodes).find((n) => n.label === 'left{word=alpha}')!;
    const right = Object.values(graph.nodes).find((n) => n.label === 'right{algorithm=sha256}')!;
    const corrupt = left.outputs.file;
    const missing = right.outputs.report;
    assert.ok(isArtifactRef(corrupt) && isArtifactRef(missing));
    await tamper(corrupt.uri, 'tampered');
    await rm(new URL(missing.uri));
    const { problems, checked } = await verifyRun(session.store, runId);
    assert.ok(checked > 30);
    assert.deepEqual(problems.map((p) => [p.status, p.step, p.role, p.digest]).sort(), [
      ['corrupt', 'left{word=alpha}', 'output file', corrupt.digest],
      ['missing', 'right{algorithm=sha256}', 'output report', missing.digest],
    ]);
  });
});
