/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The HTML report as a reader sees it: a tiny study (pre-trained vs scratch at two training-set sizes)
 * runs to the end on the test server, `writeReport` writes its report, and headless Chromium (Debian's
 * /usr/bin/chromium, driven by playwright-core) opens the file offline. Checked: every chart rendered
 * marks, the table holds the numbers exactly as the eval steps' metrics hold them, every lineage link
 * resolves, the page logs no errors and fetches nothing. A synthetic 86-cell run written straight into a
 * store renders to a bounded file that the browser opens. Screenshots go to test-artifacts/report/.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

import { chromium, type Browser, type Page } from 'playwright-core';

import { recordKeys, type RunSummary, type StepRecord } from '../../activities/runtime/run-records';
import { writeReport } from '../../infra/report/index';
import { startRun, waitForRun } from '../../infra/runs';
import { openStore } from '../../infra/store/index';
import { isArtifactRef } from '../../workflows/plan-types';
import { plan, testSession, type TestSession } from '../helpers/temporal';
import { writeSyntheticRun } from './fixture';

// Two test files run at once on two cores: one wasm thread each avoids oversubscription.
process.env.ABLATE_WASM_THREADS ??= '1';

const ARTIFACTS = join('test-artifacts', 'report');

const tiny = {
  name: 'tiny-rethinking',
  description: 'report test: pre-trained vs scratch at two training-set sizes, seconds on CPU',
  grid: {
    init: ['imagenet', 'scratch'],
    subset: [
      { name: '16', images: 16 },
      { name: '32', images: 32 },
    ],
  },
  params: { size: 32 },
  steps: {
    shapes: {
      uses: 'dataset.synth',
      when: { init: 'imagenet' },
      with: {
        task: 'classification',
        format: 'imagenet',
        images: 32,
        classes: 4,
        valPerClass: 2,
        seed: 1,
        size: '${params.size}',
      },
    },
    scenes: {
      uses: 'dataset.synth',
      with: {
        task: 'detection',
        format: 'coco',
        images: 32,
        valImages: 8,
        classes: 2,
        seed: 1,
        size: '${params.size}',
      },
    },
    pretrain: {
      uses: 'train.pretrain',
      when: { init: 'imagenet' },
      with: {
        dataset: '${steps.shapes.outputs.dataset}',
        norm: 'gn',
        width: 4,
        baseIterations: 3,
        batchSize: 8,
        imageSize: '${params.size}',
        seed: 1,
      },
    },
    split: {
      uses: 'dataset.split',
      with: { annotations: '${steps.scenes.outputs.train}', count: '${grid.subset.images}', seed: 1 },
    },
    train: {
      uses: 'train.detector',
      with: {
        images: '${steps.scenes.outputs.images}',
        train: '${steps.split.outputs.annotations}',
        val: '${steps.scenes.outputs.val}',
        init: '${grid.init}',
        pretrained: '${steps.pretrain.outputs.weights}',
        norm: 'gn',
        schedule: '1x',
        width: 4,
        batchSize: 4,
        baseIterations: 6,
        imageSize: '${params.size}',
        seed: 1,
        evalEvery: 3,
      },
    },
    evaluate: {
      uses: 'eval.coco',
      with: { gt: '${steps.scenes.outputs.val}', detections: '${steps.train.outputs.detections}' },
    },
    report: {
      uses: 'report.html',
      groupBy: [],
      with: {
        title: 'tiny study',
        rows: '${steps.evaluate.outputs.metrics}',
        apCurves: '${steps.train.outputs.apCurve}',
        lossCurves: '${steps.train.outputs.lossCurve}',
      },
    },
  },
};

interface PageFacts {
  charts: Array<{ id: string; marks: number; width: number }>;
  metrics: Array<{ href: string; value: string; output: string; text: string; row: string }>;
  brokenLinks: string[];
}

/** Open a report file, collecting console errors and any request that is not the file itself. */
async function openReport(browser: Browser, file: string) {
  const page: Page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => {
    if (r.url() !== pathToFileURL(file).href) requests.push(r.url());
  });
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  const facts = await page.evaluate((): PageFacts => {
    const charts = [...document.querySelectorAll('figure.chart')].map((f) => {
      const svg = f.querySelector('svg');
      // A mark is a drawn path/rect inside a Vega mark group (not an axis or legend).
      const marks = svg
        ? [
            ...svg.querySelectorAll(
              '.role-mark path[d], .role-mark line, .mark-line path[d], .mark-rect path[d], .mark-symbol path[d]',
            ),
          ].filter((e) => (e.getAttribute('d') ?? 'x') !== '').length
        : 0;
      return { id: f.id, marks, width: svg?.getBoundingClientRect().width ?? 0 };
    });
    const metrics = [...document.querySelectorAll<HTMLAnchorElement>('#results a.metric')].map((a) => ({
      href: a.getAttribute('href') ?? '',
      value: a.dataset.value ?? '',
      output: a.dataset.output ?? '',
      text: a.textContent ?? '',
      row: [...(a.closest('tr')?.querySelectorAll('td') ?? [])]
        .slice(0, 2)
        .map((td) => td.textContent)
        .join(','),
    }));
    const brokenLinks = [...document.querySelectorAll<HTMLAnchorElement>('a[href^="#"]')]
      .map((a) => a.getAttribute('href')!.slice(1))
      .filter((id) => !document.getElementById(id));
    return { charts, metrics, brokenLinks };
  });
  return { page, facts, errors, requests };
}

describe('HTML report in a browser', () => {
  let session: TestSession;
  let browser: Browser;
  let out: string;
  before(async () => {
    out = await mkdtemp(join(tmpdir(), 'ablate-report-'));
    await mkdir(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
    session = await testSession();
  });
  after(async () => {
    await browser?.close();
    await session?.dispose();
    await rm(out, { recursive: true, force: true });
  });

  it('shows a finished tiny study: charts, exact numbers, resolving lineage, no errors', async () => {
    const { runId } = await startRun(session, plan(tiny));
    const { status, summary } = await waitForRun(session, runId);
    assert.equal(status, 'COMPLETED');
    const file = await writeReport(session.store, runId, join(out, 'tiny'), 'html');
    const html = await readFile(file, 'utf8');
    assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'no script, no external URL');

    const { page, facts, errors, requests } = await openReport(browser, file);
    await page.screenshot({ path: join(ARTIFACTS, 'tiny.png'), fullPage: true });
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, []);
    assert.deepEqual(
      facts.charts.map((c) => c.id),
      ['chart-ap-iterations', 'chart-ap-size', 'chart-loss', 'chart-timeline'],
    );
    for (const c of facts.charts) {
      assert.ok(c.marks > 0, `${c.id} has marks`);
      assert.ok(c.width > 100, `${c.id} is drawn`);
    }
    assert.deepEqual(facts.brokenLinks, []);

    // Every cell's AP, AP50, AP75 in the table equals the eval step's metrics output, digit for digit.
    const s = summary as RunSummary;
    const planCells = (
      await session.store.getJson<{ cells: Array<{ id: string; steps: Record<string, string> }> }>(s.plan)
    ).cells;
    let checked = 0;
    for (const cell of planCells) {
      const record = await session.store.getRecord<StepRecord>(recordKeys.step(runId, cell.steps.evaluate!));
      const metrics = record!.outputs.metrics as Record<string, number>;
      for (const m of ['AP', 'AP50', 'AP75']) {
        const shown = facts.metrics.find(
          (x) => x.href === `#step-${cell.steps.evaluate}` && x.output === `metrics.${m}`,
        );
        assert.ok(shown, `${cell.id} ${m} is in the table`);
        assert.equal(shown.value, String(metrics[m]));
        assert.equal(shown.text, metrics[m]!.toFixed(4));
        checked++;
      }
    }
    assert.equal(checked, 12);
    // The paired table: one row per subset with both inits and the difference.
    const paired = await page.$$eval('#paired tbody tr', (rows) => rows.map((r) => r.children.length));
    assert.deepEqual(paired, [1 + 3 * 3, 1 + 3 * 3]);
    // A lineage section names the data digests and the code commit.
    const lineage = await page.textContent(`#step-${planCells[0]!.steps.evaluate}`);
    assert.match(lineage ?? '', /eval\.coco v\d+/);
    assert.match(lineage ?? '', /sha256:[0-9a-f]{64}/);
    assert.match(lineage ?? '', /commit [0-9a-f]{40}|commit unknown/);
    await page.close();

    // The report.html step's own file: the same tables and charts (no timeline: it runs inside the run).
    const reportStep = s.steps.find((x) => x.label === 'report')!;
    const stepHtml = reportStep.outputs!.html;
    assert.ok(isArtifactRef(stepHtml));
    const stepFile = join(out, 'tiny', 'step-report.html');
    await writeFile(stepFile, await session.store.getBytes(stepHtml));
    const fromStep = await openReport(browser, stepFile);
    await fromStep.page.screenshot({ path: join(ARTIFACTS, 'tiny-step.png'), fullPage: true });
    assert.deepEqual(fromStep.errors, []);
    assert.deepEqual(fromStep.requests, []);
    assert.deepEqual(
      fromStep.facts.charts.map((c) => [c.id, c.marks > 0]),
      [
        ['chart-ap-iterations', true],
        ['chart-ap-size', true],
        ['chart-loss', true],
      ],
    );
    assert.deepEqual(fromStep.facts.brokenLinks, []);
    assert.deepEqual(
      fromStep.facts.metrics.map((m) => [m.row, m.output, m.value]).sort(),
      facts.metrics.map((m) => [m.row, m.output, m.value]).sort(),
    );
    await fromStep.page.close();
  });

  it('stays usable for an 86-cell run with seeds', async () => {
    const dir = join(out, 'synthetic');
    const store = await openStore(pathToFileURL(join(dir, 'store')).href);
    const { metrics } = await writeSyntheticRun(store, {
      runId: 'synthetic-86',
      schedules: ['1x', '2x', '3x'],
      subsets: [
        { name: '1k', images: 1000 },
        { name: '3k', images: 3000 },
        { name: '10k', images: 10000 },
      ],
      seeds: [1, 2, 3, 4, 5],
      cells: 86,
      lossPoints: 2000,
    });
    assert.equal(metrics.size, 86);
    const started = Date.now();
    const file = await writeReport(store, 'synthetic-86', dir, 'html');
    const renderMs = Date.now() - started;
    const sizeBytes = (await stat(file)).size;
    console.log(`86-cell report: ${sizeBytes} bytes, rendered in ${renderMs} ms`);
    // Loss curves are thinned to 150 points each; without that this file is several MB.
    assert.ok(sizeBytes < 2_000_000, `report is ${sizeBytes} bytes`);
    const { page, facts, errors } = await openReport(browser, file);
    await page.screenshot({ path: join(ARTIFACTS, 'synthetic-86.png') });
    assert.deepEqual(errors, []);
    assert.equal(facts.charts.length, 4);
    for (const c of facts.charts) assert.ok(c.marks > 0, `${c.id} has marks`);
    assert.deepEqual(facts.brokenLinks, []);
    // 2 inits x 3 schedules x 3 subsets, seeds folded; the first row's AP is the mean over 5 seeds.
    const rows = await page.$$eval('#results tbody tr', (r) => r.length);
    assert.equal(rows, 18);
    const first = facts.metrics.find((m) => m.output === 'metrics.AP')!;
    const seeds = first.value.split(' ').map(Number);
    assert.equal(seeds.length, 5);
    const mean = seeds.reduce((a, b) => a + b, 0) / 5;
    assert.equal(first.text.split(' ± ')[0], mean.toFixed(4));
    await page.close();
  });
});
