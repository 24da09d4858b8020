/**
 * Records workflow histories (binary protobuf) for the replay tests (test/run/replay.test.ts). Run it after a deliberate
 * change to workflows/ that is meant to be compatible, and commit the files:
 *
 *   npx tsx scripts/record-histories.ts
 *
 * It runs a few pipelines that exercise every path of `pipelineRun` (success, failure with downstream
 * skips and a retried step, cancellation, continue-as-new with a step running across generations) and
 * of `stepBatch` (failed and retried steps, cancellation) on a real dev server, and one firing of a
 * schedule: the `scheduledRun` workflow and its `pipelineRun` child with ablate's search attributes.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import proto from '@temporalio/proto';

import { compilePipeline } from '../infra/compiler/compile';
import { getRunView, startRun, waitForRun } from '../infra/runs';
import { controlSchedule, describeSchedule, upsertSchedule } from '../infra/schedules';
import { plan, stopTestTemporal, testSession } from '../test/helpers/temporal';

const OUT = join(import.meta.dirname, '..', 'test', 'histories');

const session = await testSession();
try {
  const save = async (name: string, runId: string, temporalRunId?: string) => {
    const history = await session.client.workflow.getHandle(runId, temporalRunId).fetchHistory();
    // Binary protobuf: exact, and independent of JSON-mapping details of the SDK's protobuf build.
    await writeFile(
      join(OUT, `${name}.binpb`),
      proto.temporal.api.history.v1.History.encode(history).finish(),
    );
    console.log(`recorded ${name} (${history.events?.length} events)`);
  };
  /** The run's step batch with the longest history (the one with the most to replay). */
  const saveBatch = async (name: string, runId: string) => {
    let longest: { id: string; events: number } | undefined;
    for await (const wf of session.client.workflow.list({ query: 'WorkflowType = "stepBatch"' })) {
      if (!wf.workflowId.startsWith(`${runId}/`)) continue;
      if (!longest || wf.historyLength > longest.events)
        longest = { id: wf.workflowId, events: wf.historyLength };
    }
    if (!longest) throw new Error(`run ${runId} has no step batch`);
    await save(name, longest.id);
  };

  // One firing of a schedule: the `scheduledRun` workflow and its `pipelineRun` child.
  const text = JSON.stringify({
    name: 'scheduled',
    steps: {
      w: { uses: 'util.write', with: { text: 'nightly\n' } },
      h: { uses: 'util.hash', with: { inputs: ['${steps.w.outputs.file}'], algorithm: 'sha256' } },
    },
  });
  const name = `record-${Date.now()}`;
  await upsertSchedule(session, {
    file: 'scheduled.json',
    sourceText: text,
    plan: compilePipeline(text),
    def: { name, everyMs: 3_600_000 },
    mode: 'create',
  });
  await controlSchedule(session, name, { type: 'trigger' });
  let action;
  while (!(action = (await describeSchedule(session, name)).recentActions[0])?.runId)
    await new Promise((r) => setTimeout(r, 200));
  await session.client.workflow.getHandle(action.workflowId).result();
  await controlSchedule(session, name, { type: 'delete' });
  await save('scheduled-run', action.workflowId);
  await save('scheduled-pipeline-run', action.runId);

  const smoke = await startRun(
    session,
    plan(
      JSON.parse(
        await import('node:fs').then((fs) => fs.readFileSync('pipelines/examples/smoke.json', 'utf8')),
      ),
    ),
  );
  await waitForRun(session, smoke.runId);
  await save('smoke-completed', smoke.runId);

  const failing = await startRun(
    session,
    plan({
      name: 'failing',
      grid: { x: [1, 2] },
      steps: {
        make: { uses: 'util.write', with: { text: 'x=${grid.x}' } },
        boom: { uses: 'util.fail', when: { x: 2 }, needs: ['make'], with: { message: 'deliberate' } },
        flaky: {
          uses: 'util.fail',
          needs: ['make'],
          with: { message: 'transient', retryable: true, succeedOnAttempt: 2 },
          retry: { maxAttempts: 3, initialInterval: '100ms' },
        },
        after: { uses: 'util.noop', needs: ['boom', 'flaky'] },
      },
    }),
  );
  await waitForRun(session, failing.runId);
  await save('failing-with-skips', failing.runId);
  await saveBatch('batch-failing', failing.runId);

  const cancel = await startRun(
    session,
    plan({
      name: 'cancelled',
      grid: { n: [1, 2] },
      steps: {
        slow: { uses: 'util.noop', with: { tag: '${grid.n}', sleepMs: 60000 } },
        next: { uses: 'util.noop', needs: ['slow'] },
      },
    }),
  );
  while ((await getRunView(session, cancel.runId)).counts.running < 2)
    await new Promise((r) => setTimeout(r, 200));
  await session.client.workflow.getHandle(cancel.runId).cancel();
  await waitForRun(session, cancel.runId);
  await save('cancelled', cancel.runId);
  await saveBatch('batch-cancelled', cancel.runId);

  // A slow step that runs across generations while the chain goes on.
  const steps: Record<string, unknown> = {
    slow: { uses: 'util.noop', with: { tag: 'slow', sleepMs: 8000 } },
  };
  for (let i = 0; i < 12; i++)
    steps[`s${i}`] = { uses: 'util.noop', with: { tag: i }, ...(i > 0 ? { needs: [`s${i - 1}`] } : {}) };
  const long = await startRun(session, plan({ name: 'long', steps }), { maxHistoryEvents: 30 });
  await waitForRun(session, long.runId);
  const first = await session.client.workflow.getHandle(long.runId).describe();
  await save('continued-as-new-last', long.runId);
  await save('continued-as-new-first', long.runId, first.raw.workflowExecutionInfo?.firstRunId ?? undefined);
} finally {
  await session.dispose();
  await stopTestTemporal();
}
