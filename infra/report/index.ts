/**
 * Reports of finished runs: gather the facts from the store (gather.ts), render them as one
 * self-contained HTML file (html.ts, charts.ts) or a Markdown summary (markdown.ts).
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { ArtifactStore } from '../store/index';
import { gatherReport } from './gather';
import { renderHtml } from './html';
import { renderMarkdown } from './markdown';

export { gatherReport, type ReportData } from './gather';
export { renderHtml } from './html';
export { renderMarkdown } from './markdown';

/** Write `report.html` or `report.md` of `runId` into `outDir` (atomically); returns the file's path. */
export async function writeReport(
  store: ArtifactStore,
  runId: string,
  outDir: string,
  format: 'html' | 'md',
): Promise<string> {
  const data = await gatherReport(store, runId);
  const text = format === 'html' ? await renderHtml(data) : renderMarkdown(data);
  await mkdir(outDir, { recursive: true });
  const path = join(outDir, `report.${format}`);
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, text);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return path;
}
