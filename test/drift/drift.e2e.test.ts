import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { computeDrift, type DriftReport } from '../../infra/drift/index';
import { startRun, waitForRun, type StartRunOptions } from '../../infra/runs';
import { ablate, lastJsonLine } from '../helpers/cli';
import { plan, testSession, type TestSession } from '../helpers/temporal';

/** A tiny real pipeline: source data imported from disk, a written text, and a hash of both per cell. */
function pipeline(dataDir: string, text: string) {
  return {
    name: 'drift-e2e',
    grid: { algorithm: ['sha256', 'md5'] },
    params: { text },
    steps: {
      data: { uses: 'dataset.import', with: { path: dataDir, expect: 'directory' } },
      dt: { uses: 'util.write', with: { text: '${params.text}' } },
      hash: {
        uses: 'util.hash',
        with: {
          inputs: ['${steps.dt.outputs.file}', '${steps.data.outputs.data}'],
          algorithm: '${grid.algorithm}',
        },
      },
    },
  };
}

describe('drift against real runs', () => {
  let session: TestSession;
  let dataDir: string;
  let baselineRunId: string;
  const run = async (text: string, options: StartRunOptions = {}) => {
    const { runId } = await startRun(session, plan(pipeline(dataDir, text)), options);
    const { summary } = await waitForRun(session, runId);
    assert.equal(summary?.status, 'completed');
    return runId;
  };
  const store = () => ['--store', session.store.url];
  const row = (report: DriftReport, metric: string, cell = 'algorithm=md5') =>
    report.cells.find((r) => r.metric === metric && r.cell === cell)!;

  before(async () => {
    session = await testSession();
    dataDir = join(session.dir, 'data');
    await mkdir(dataDir);
    await writeFile(join(dataDir, 'labels.txt'), 'cat\ndog\n');
    baselineRunId = await run('hello');
    const set = await ablate(['baseline', 'set', baselineRunId, ...store()]);
    assert.equal(set.stderr, '');
    assert.equal(set.stdout, `baseline of drift-e2e: ${baselineRunId}\n`);
  });
  after(() => session.dispose());

  it('an identical rerun, recomputed from scratch, reports no drift', async () => {
    const again = await run('hello', { noCache: true });
    const report = await computeDrift(session.store, { runId: again });
    assert.equal(report.baselineRunId, baselineRunId);
    assert.equal(report.verdict, 'no drift');
    // Per cell: hash.hex, hash.bytes; shared by both cells: data.files, data.bytes.
    assert.equal(report.counts.metrics, 2 * 2 + 2);
    assert.equal(report.counts.changed, 0);
    const show = await ablate(['baseline', 'show', 'drift-e2e', '--json', ...store()]);
    assert.equal(lastJsonLine(show.stdout).runId, baselineRunId);
  });

  it('a changed param: the drift names it; the notifiers receive the verdict', async () => {
    const changed = await run('hello, world');
    const posts: unknown[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        posts.push(JSON.parse(body));
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const got = join(session.dir, 'notified.json');
    try {
      const cli = await ablate([
        'drift',
        changed,
        '--json',
        '--notify-url',
        url,
        '--notify-command',
        `cat > ${got}`,
        ...store(),
      ]);
      assert.equal(cli.code, 1, cli.stderr);
      const report = lastJsonLine<DriftReport & { report: { uri: string } }>(cli.stdout);
      assert.equal(report.drifted, true);
      assert.equal(report.baselineRunId, baselineRunId);
      const cause = 'steps.dt.with.text changed ("hello" -> "hello, world")';
      const bytes = row(report, 'hash.bytes');
      // The hash reads the text and the data directory's manifest: the text grew by 7 bytes.
      assert.equal(typeof bytes.baseline, 'number');
      assert.equal(bytes.value, (bytes.baseline as number) + 7);
      assert.deepEqual(
        { ...bytes, baseline: 0, value: 0 },
        {
          cell: 'algorithm=md5',
          cellCount: 1,
          step: 'hash[algorithm=md5]',
          metric: 'hash.bytes',
          shortName: 'hash.bytes',
          baseline: 0,
          value: 0,
          delta: 7,
          withinTolerance: false,
          tolerance: { abs: 0, source: 'default:exact' },
          causes: [cause],
        },
      );
      assert.deepEqual(row(report, 'data.files', '*').causes, []);
      assert.match(report.verdict, new RegExp(`^drift in 2 of 2 cells: .*; cause: ${escape(cause)}$`));
      const expected = {
        event: 'drift',
        pipeline: 'drift-e2e',
        runId: changed,
        baselineRunId,
        verdict: report.verdict,
        report: { uri: report.report.uri, digest: (report.report as unknown as { digest: string }).digest },
      };
      assert.equal(posts.length, 1);
      assert.deepEqual({ ...(posts[0] as object), counts: undefined }, { ...expected, counts: undefined });
      assert.deepEqual(
        { ...JSON.parse(await readFile(got, 'utf8')), counts: undefined },
        {
          ...expected,
          counts: undefined,
        },
      );
      // The report is an artifact in the store, as the notification says.
      const stored = JSON.parse(await readFile(new URL(report.report.uri), 'utf8')) as DriftReport;
      assert.equal(stored.verdict, report.verdict);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('changed source data: the drift names the data digest; the text output says where the report is', async () => {
    await writeFile(join(dataDir, 'labels.txt'), 'cat\ncow\n'); // same size, different bytes
    const changed = await run('hello');
    const cli = await ablate(['drift', changed, ...store()]);
    assert.equal(cli.code, 1, cli.stderr);
    const report = await computeDrift(session.store, { runId: changed });
    const hex = row(report, 'hash.hex');
    assert.equal(hex.withinTolerance, false);
    assert.equal(row(report, 'hash.bytes').withinTolerance, true);
    assert.equal(hex.causes.length, 1);
    assert.match(
      hex.causes[0]!,
      /^steps\.data read changed data: outputs\.data data digest changed \(sha256:[0-9a-f]{8}\.\. -> sha256:[0-9a-f]{8}\.\.\)$/,
    );
    const lines = cli.stdout.split('\n');
    assert.equal(lines[0], `${changed} vs baseline ${baselineRunId}: ${report.verdict}`);
    assert.match(
      report.verdict,
      /^drift in 2 of 2 cells: hex .* on algorithm=(md5|sha256) \(\+1 more\); cause: steps\.data read changed data/,
    );
    assert.match(cli.stdout, /\nreport: file:\/\/\S+\n$/);
  });

  it('bad input: an unknown run, a run of another pipeline without a baseline', async () => {
    const unknown = await ablate(['drift', 'nope', ...store()]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no run nope in file:/);
    const none = await ablate(['baseline', 'show', 'other', ...store()]);
    assert.equal(none.code, 1);
    assert.match(
      none.stderr,
      /^pipeline other has no baseline in file:\S+; pin one with `ablate baseline set RUN_ID`\n$/,
    );
    const usage = await ablate(['baseline', 'pin', 'x', ...store()]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /unknown action "pin": use set or show/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
