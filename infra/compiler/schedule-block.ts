/**
 * The pipeline's `schedule` block: what the JSON Schema cannot check (a cron expression's shape, a
 * time zone's existence, an interval of at least a second), and its normalised form for the plan.
 */
import type { PipelineSchedule } from '../../workflows/plan-types';
import { suggest } from '../did-you-mean';
import { parseDurationMs } from './duration';

const CRON_MACROS = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'];
// One cron field: *, numbers, names (JAN, MON), ranges, lists and steps.
const CRON_ITEM = String.raw`(\*|(\d+|[A-Za-z]{3})(-(\d+|[A-Za-z]{3}))?)(\/\d+)?`;
const CRON_FIELD = new RegExp(`^${CRON_ITEM}(,${CRON_ITEM})*$`);

/** Why `cron` is not a cron expression Temporal accepts, or undefined when it looks like one. */
export function cronProblem(cron: string): string | undefined {
  const text = cron.trim();
  if (text.startsWith('@')) {
    if (CRON_MACROS.includes(text)) return undefined;
    if (/^@every\s/.test(text)) return 'use `every` (or `--every`) for an interval instead of "@every"';
    const hint = suggest(text, CRON_MACROS);
    return `unknown cron macro ${JSON.stringify(text)}${hint ? ` (did you mean "${hint}"?)` : ''}; expected one of ${CRON_MACROS.join(', ')}`;
  }
  if (/^CRON_TZ=/.test(text)) return 'give the time zone as `timezone` (or `--timezone`), not CRON_TZ=';
  const fields = text.split(/\s+/);
  if (fields.length !== 5)
    return `a cron expression has 5 fields (minute hour day-of-month month day-of-week), found ${fields.length} in ${JSON.stringify(cron)}`;
  const bad = fields.findIndex((f) => !CRON_FIELD.test(f));
  if (bad >= 0)
    return `cron field ${bad + 1} (${['minute', 'hour', 'day-of-month', 'month', 'day-of-week'][bad]}) is not valid: ${JSON.stringify(fields[bad])}`;
  return undefined;
}

/** Why `zone` is not an IANA time zone, or undefined when it is one. */
export function timezoneProblem(zone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return undefined;
  } catch {
    const hint = suggest(zone, Intl.supportedValuesOf('timeZone'));
    return `unknown time zone ${JSON.stringify(zone)}${hint ? ` (did you mean "${hint}"?)` : ''}; expected an IANA name such as "Europe/Paris" or "UTC"`;
  }
}

/** Smallest interval a schedule may have: Temporal's schedules work in whole seconds. */
export const MIN_SCHEDULE_INTERVAL_MS = 1000;

/**
 * Check a `schedule` block the schema already accepted; report each problem at its JSON pointer and
 * return the normalised block (undefined when there were problems).
 */
export function readScheduleBlock(
  block: Record<string, unknown>,
  pipelineName: string,
  report: (pointer: string, message: string) => void,
  /** Pointers the schema already reported: not checked again. */
  reported: ReadonlySet<string> = new Set(),
): PipelineSchedule | undefined {
  let ok = reported.size === 0;
  const problem = (field: string, message: string) => {
    ok = false;
    const pointer = field ? `/schedule/${field}` : '/schedule';
    if (!reported.has(pointer)) report(pointer, message);
  };
  if ((block.cron === undefined) === (block.every === undefined))
    problem(
      '',
      block.cron === undefined
        ? 'needs `cron` (e.g. "0 2 * * *") or `every` (e.g. "6h")'
        : 'has both `cron` and `every`; give one of them',
    );
  const out: PipelineSchedule = { name: typeof block.name === 'string' ? block.name : pipelineName };
  if (typeof block.cron === 'string' && !reported.has('/schedule/cron')) {
    const why = cronProblem(block.cron);
    if (why) problem('cron', why);
    out.cron = block.cron.trim();
  }
  if (block.every !== undefined && !reported.has('/schedule/every')) {
    const ms = parseDurationMs(block.every);
    if (ms === undefined || ms < MIN_SCHEDULE_INTERVAL_MS || ms % 1000 !== 0)
      problem(
        'every',
        `expected whole seconds, at least 1s (e.g. "30s", "6h"), found ${JSON.stringify(block.every)}`,
      );
    else out.everyMs = ms;
  }
  if (typeof block.timezone === 'string' && !reported.has('/schedule/timezone')) {
    const why = timezoneProblem(block.timezone);
    if (why) problem('timezone', why);
    out.timezone = block.timezone;
  }
  if (typeof block.noCache === 'boolean') out.noCache = block.noCache;
  if (block.notify !== null && typeof block.notify === 'object') {
    const n = block.notify as { command?: unknown; url?: unknown };
    if (typeof n.url === 'string' && !/^https?:\/\//.test(n.url))
      problem('notify/url', `expected an http:// or https:// URL, found ${JSON.stringify(n.url)}`);
    out.notify = {
      ...(typeof n.command === 'string' ? { command: n.command } : {}),
      ...(typeof n.url === 'string' ? { url: n.url } : {}),
    };
  }
  if (typeof block.overlap === 'string') out.overlap = block.overlap as PipelineSchedule['overlap'];
  if (block.catchupWindow !== undefined && !reported.has('/schedule/catchupWindow')) {
    const ms = parseDurationMs(block.catchupWindow);
    if (ms === undefined || ms < 1000)
      problem(
        'catchupWindow',
        `expected at least 1s (e.g. "1h"), found ${JSON.stringify(block.catchupWindow)}`,
      );
    else out.catchupWindowMs = ms;
  }
  return ok ? out : undefined;
}
