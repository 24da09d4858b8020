import { intOption, stringOption, UsageError, type Command } from '../command';
import { table } from '../render-plan';
import { storeFlags, storeFrom } from './baseline';

/** `ablate drift RUN_ID`: compare a run's metrics with its baseline's. */
export const driftCommand: Command = {
  name: 'drift',
  summary: "Compare every metric of a run with its baseline's; name the likely cause of each drift",
  usage: `Usage: ablate drift RUN_ID [--baseline RUN_ID] [--json] [--notify-command CMD] [--notify-url URL]

Compares every metric (value output) of every cell of RUN_ID with the baseline run: the pipeline's
pinned baseline (\`ablate baseline set\`) unless --baseline names one. Each metric is judged by its
tolerance band (the pipeline's "tolerance" block, else the default: exact, 1e-9 for non-integers,
timings ignored); each change is explained from lineage: the inputs that differ between the two runs
(params, data digests, code, runtime, host), nearest to the metric first, or nondeterminism when no
input differs. Writes the report as an artifact and prints the verdict. Exit status 0 for no drift,
1 for drift.

  --baseline RUN_ID       compare with this run
  --json                  the report: {"drifted", "verdict", "baselineRunId", "runId", "counts",
                          "cells": [{cell, metric, baseline, value, delta, withinTolerance, causes}], "report"}
  --limit N               drifted metrics listed in the text output (default 20)
  --notify-command CMD    on drift, run CMD (a shell command) with the payload JSON on stdin and
                          ABLATE_EVENT, ABLATE_VERDICT, ABLATE_RUN_ID, ABLATE_BASELINE_RUN_ID,
                          ABLATE_PIPELINE, ABLATE_REPORT_URI in its environment
  --notify-url URL        on drift, POST the payload JSON {event, pipeline, runId, baselineRunId,
                          verdict, report: {uri, digest}, counts} to URL
  --notify-timeout MS     limit for each notifier (default 30000); a notifier that fails is logged
  --store URL, --home DIR   the artifact store (as for \`ablate run\`)`,
  options: {
    ...storeFlags,
    baseline: { type: 'string' },
    json: { type: 'boolean' },
    limit: { type: 'string' },
    'notify-command': { type: 'string' },
    'notify-url': { type: 'string' },
    'notify-timeout': { type: 'string' },
  },
  async run(args) {
    const [runId, ...extra] = args.positionals;
    if (!runId) throw new UsageError('no run id given');
    if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
    const limit = intOption(args, 'limit', 20, 0);
    const notifyTimeoutMs = intOption(args, 'notify-timeout', 30_000, 1);
    const notifyUrl = stringOption(args, 'notify-url');
    if (notifyUrl !== undefined && !/^https?:\/\//.test(notifyUrl))
      throw new UsageError(
        `--notify-url must be an http:// or https:// URL, got ${JSON.stringify(notifyUrl)}`,
      );
    const { computeDrift, driftPayload, notify, writeDriftReport } = await import('../../drift/index');
    const store = await storeFrom(args);
    const baselineRunId = stringOption(args, 'baseline');
    const report = await computeDrift(store, { runId, ...(baselineRunId ? { baselineRunId } : {}) });
    const ref = await writeDriftReport(store, report);
    if (args.values.json) console.log(JSON.stringify({ ...report, report: ref }));
    else {
      console.log(`${report.runId} vs baseline ${report.baselineRunId}: ${report.verdict}`);
      const c = report.counts;
      console.log(
        `${c.metrics} metrics in ${c.cells} cells: ${c.changed} changed, ${c.outsideTolerance} outside tolerance`,
      );
      const outside = report.cells.filter((r) => !r.withinTolerance);
      if (outside.length > 0 && limit > 0) {
        const show = (v: unknown) => {
          const text = typeof v === 'number' ? String(Number(v.toPrecision(6))) : JSON.stringify(v);
          return text.length > 24 ? `${text.slice(0, 21)}...` : text;
        };
        const rows = outside
          .slice(0, limit)
          .map((r) => [
            r.cell,
            r.shortName,
            show(r.baseline),
            show(r.value),
            r.delta === null ? '' : show(r.delta),
            r.causes[0] ?? '',
          ]);
        console.log('');
        for (const line of table(['cell', 'metric', 'baseline', 'value', 'delta', 'likely cause'], rows))
          console.log(line);
        if (outside.length > limit) console.log(`... and ${outside.length - limit} more (--json for all)`);
      }
      console.log(`\nreport: ${ref.uri}`);
    }
    const command = stringOption(args, 'notify-command');
    if (report.drifted && (command || notifyUrl)) {
      await notify(
        {
          ...(command ? { command } : {}),
          ...(notifyUrl ? { url: notifyUrl } : {}),
          timeoutMs: notifyTimeoutMs,
        },
        driftPayload(report, ref),
      );
    }
    return report.drifted ? 1 : 0;
  },
};
