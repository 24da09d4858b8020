/**
 * `ablate schedule ...`: nightly reproductions on Temporal Schedules (infra/schedules.ts).
 */
import { isDebug, openCliSession } from '../cli-session';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';

import { compilePipeline, DEFAULT_MAX_CELLS } from '../../compiler/compile';
import { PipelineInvalidError } from '../../compiler/issues';
import { readScheduleBlock } from '../../compiler/schedule-block';
import type { PipelineSchedule, Plan } from '../../../workflows/plan-types';
import { intOption, stringOption, UsageError, type Command, type CommandArgs } from '../command';
import { configFlags, configFlagsHelp, configFrom } from '../config-flags';
import { table } from '../render-plan';

const OVERLAPS = ['skip', 'buffer-one', 'allow-all'] as const;
const SUBCOMMANDS = [
  'create',
  'apply',
  'list',
  'describe',
  'pause',
  'unpause',
  'trigger',
  'backfill',
  'delete',
] as const;

const USAGE = `Usage:
  ablate schedule create NAME FILE (--cron EXPR | --every DURATION) [--timezone TZ] [--no-cache]
                         [--overlap skip|buffer-one|allow-all] [--catchup-window DURATION]
  ablate schedule apply FILE
  ablate schedule list [--json]
  ablate schedule describe NAME [--json]
  ablate schedule pause NAME [--note TEXT]
  ablate schedule unpause NAME [--note TEXT]
  ablate schedule trigger NAME
  ablate schedule backfill NAME --from T --to T [--overlap skip|buffer-one|allow-all]
  ablate schedule delete NAME

Runs a pipeline again on a Temporal Schedule, e.g. a nightly reproduction. create and apply compile
FILE and pin its content: the file's bytes and its plan are stored in the artifact store by digest,
and every run of the schedule runs that content, however the file changes afterwards, until it is
applied again. Each run is an ordinary run (\`ablate status\`, \`cancel\`, \`lineage\` work on it); when
it ends, its drift against the pipeline's baseline is checked and the verdict recorded in its summary
and as a search attribute: \`ablate runs --schedule NAME\` and \`ablate runs --drifted\` find them.

Schedules fire only while a worker serves the task queue: on the embedded server, keep
\`ablate server start\` running (it keeps the server and workers up); against a remote server, run
\`ablate worker\`. create says so when no worker is polling.

create    A schedule named NAME for FILE. Fails if NAME exists (apply updates).
            --cron EXPR             5-field cron, read in --timezone: "0 2 * * *" is 02:00 daily;
                                    also @daily, @hourly, @weekly, @monthly, @yearly
            --every DURATION        a fixed interval instead, e.g. 6h, 30m, 2s
            --timezone TZ           IANA zone for --cron, e.g. Europe/Paris (default UTC)
            --no-cache              recompute every step on each run
            --overlap P             a run due while the previous one runs: skip it (default), run it
                                    after (buffer-one) or run both (allow-all)
            --catchup-window D      after downtime, start missed runs at most D late (default 1h)
            --notify-command CMD    run CMD (payload JSON on stdin, ABLATE_* variables) when a run
                                    drifts from the baseline or fails
            --notify-url URL        POST the same payload as JSON to URL
apply     Create or update the schedule declared in FILE's "schedule" block (same fields: name,
          cron or every, timezone, noCache, overlap, catchupWindow, notify: {command, url}; the name defaults to the
          pipeline's). Idempotent: prints "unchanged" when nothing differs.
list      ablate's schedules. --json: an array of {name, spec: {cron | every, timezone}, paused,
          pipeline, nextActionTimes}.
describe  Timing, pinned content (file, source and plan digests), counters, next times and recent
          firings with the run each started.
pause / unpause   Stop / resume firing (a paused schedule keeps its definition).
trigger   Start a run now (even while another run of it is running).
backfill  Start the runs the schedule would have started between --from and --to (ISO times, e.g.
          2026-12-01T00:00:00Z), one after another unless --overlap says otherwise.
delete    Remove the schedule; runs it started stay.

${configFlagsHelp}`;

/** `ablate schedule`. */
export const scheduleCommand: Command = {
  name: 'schedule',
  summary: 'Run pipelines on Temporal Schedules (nightly reproductions): create, apply, list, ...',
  usage: USAGE,
  options: {
    ...configFlags,
    cron: { type: 'string' },
    every: { type: 'string' },
    timezone: { type: 'string' },
    'no-cache': { type: 'boolean' },
    overlap: { type: 'string' },
    'catchup-window': { type: 'string' },
    'notify-command': { type: 'string' },
    'notify-url': { type: 'string' },
    'max-cells': { type: 'string' },
    json: { type: 'boolean' },
    note: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
  },
  async run(args) {
    const [sub, ...rest] = args.positionals;
    if (sub === undefined) throw new UsageError(`a sub-command is needed: ${SUBCOMMANDS.join(', ')}`);
    if (!(SUBCOMMANDS as readonly string[]).includes(sub))
      throw new UsageError(`unknown sub-command ${JSON.stringify(sub)}; expected ${SUBCOMMANDS.join(', ')}`);
    const arity: Record<string, string[]> = {
      create: ['NAME', 'FILE'],
      apply: ['FILE'],
      list: [],
    };
    const expected = arity[sub] ?? ['NAME'];
    if (rest.length !== expected.length)
      throw new UsageError(
        `\`ablate schedule ${sub}\` takes ${expected.length ? expected.join(' ') : 'no arguments'}, got ${rest.length ? rest.map((r) => JSON.stringify(r)).join(' ') : 'none'}`,
      );
    // Check every flag before connecting: bad input fails fast, with nothing written.
    const prepared =
      sub === 'create'
        ? await prepareCreate(args, rest[0]!, rest[1]!)
        : sub === 'apply'
          ? await prepareApply(args, rest[0]!)
          : undefined;
    if (prepared === null) return 1;
    const backfill = sub === 'backfill' ? backfillRange(args) : undefined;

    // Loaded here, not at the top: Temporal's native bridge takes a while to load.
    const schedules = await import('../../schedules');
    const { hasLiveWorkflowWorker } = await import('../../runs');
    const { workflowTaskQueue } = await import('../../task-queues');
    const config = configFrom(args);
    const session = await openCliSession(config, { debug: isDebug(args.values) });
    try {
      if (prepared) {
        const { name, action } = await schedules.upsertSchedule(session, {
          ...prepared,
          mode: sub === 'create' ? 'create' : 'apply',
          log: (m) => console.error(m),
        });
        console.log(`schedule ${name} ${action} (pipeline ${prepared.plan.pipeline.name})`);
        const queue = workflowTaskQueue(config.taskQueuePrefix);
        if (!(await hasLiveWorkflowWorker(session, queue)))
          console.error(
            session.embedded
              ? `note: no worker is serving the embedded server now, so the schedule will not fire until \`ablate server start\` keeps the server and workers running (runs missed by at most the catch-up window start then)`
              : `note: no worker polls task queue ${queue} now; runs will wait until \`ablate worker\` serves it`,
          );
        return 0;
      }
      const name = rest[0]!;
      switch (sub) {
        case 'list': {
          const list = await schedules.listSchedules(session);
          if (args.values.json) {
            console.log(JSON.stringify(list));
            return 0;
          }
          if (list.length === 0) {
            console.log('no schedules (create one with `ablate schedule create` or `apply`)');
            return 0;
          }
          const rows = list.map((s) => [
            s.name,
            s.pipeline,
            specLine(s.spec),
            s.paused ? 'paused' : 'active',
            s.nextActionTimes[0] && !s.paused ? utc(s.nextActionTimes[0]) : '',
          ]);
          for (const line of table(['schedule', 'pipeline', 'when', 'state', 'next (UTC)'], rows))
            console.log(line);
          return 0;
        }
        case 'describe': {
          const view = await schedules.describeSchedule(session, name);
          if (args.values.json) {
            console.log(JSON.stringify(view));
            return 0;
          }
          console.log(
            `schedule ${view.name}: ${view.paused ? 'paused' : 'active'}${view.note ? ` (${view.note})` : ''}`,
          );
          console.log(`  pipeline    ${view.pipeline} (from ${view.file})`);
          console.log(`  when        ${specLine(view.spec)}`);
          console.log(
            `  policies    overlap ${view.overlap}, catch-up window ${view.catchupWindow}${view.noCache ? ', no cache' : ''}`,
          );
          console.log(`  pinned      source ${view.source.digest}`);
          console.log(`              plan   ${view.plan.digest}`);
          console.log(
            `  actions     ${view.numActionsTaken} taken, ${view.numActionsSkippedOverlap} skipped (overlap), ${view.numActionsMissedCatchupWindow} missed (catch-up window)`,
          );
          if (!view.paused)
            console.log(`  next (UTC)  ${view.nextActionTimes.slice(0, 3).map(utc).join(', ') || 'none'}`);
          for (const a of view.recentActions)
            console.log(
              `  fired       due ${utc(a.scheduledAt)}, started ${utc(a.takenAt)}: ${a.runId ? `run ${a.runId}` : a.workflowId}`,
            );
          for (const w of view.running) console.log(`  running     ${w}`);
          return 0;
        }
        case 'pause':
        case 'unpause':
          await schedules.controlSchedule(session, name, { type: sub, note: stringOption(args, 'note') });
          console.log(`schedule ${name} ${sub}d`);
          return 0;
        case 'trigger':
          await schedules.controlSchedule(session, name, { type: 'trigger' });
          console.log(`schedule ${name} triggered: \`ablate runs --schedule ${name}\` lists its runs`);
          return 0;
        case 'backfill':
          await schedules.controlSchedule(session, name, { type: 'backfill', ...backfill! });
          console.log(
            `schedule ${name}: backfill from ${backfill!.from.toISOString()} to ${backfill!.to.toISOString()} requested`,
          );
          return 0;
        case 'delete':
          await schedules.controlSchedule(session, name, { type: 'delete' });
          console.log(`schedule ${name} deleted (runs it started stay)`);
          return 0;
      }
      return 2;
    } finally {
      await session.close();
    }
  },
};

interface Prepared {
  file: string;
  sourceText: string;
  plan: Plan;
  def: PipelineSchedule;
}

async function readAndCompile(args: CommandArgs, file: string): Promise<Omit<Prepared, 'def'> | null> {
  let sourceText: string;
  try {
    sourceText = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  // The bytes pinned are exactly the bytes compiled.
  try {
    const plan = compilePipeline(sourceText, {
      file,
      maxCells: intOption(args, 'max-cells', DEFAULT_MAX_CELLS, 1),
    });
    return { file: resolve(file), sourceText, plan };
  } catch (err) {
    if (!(err instanceof PipelineInvalidError)) throw err;
    for (const line of err.lines()) console.error(line);
    return null;
  }
}

async function prepareCreate(args: CommandArgs, name: string, file: string): Promise<Prepared | null> {
  const overlap = stringOption(args, 'overlap');
  if (overlap !== undefined && !(OVERLAPS as readonly string[]).includes(overlap))
    throw new UsageError(`--overlap must be one of ${OVERLAPS.join(', ')}, got ${JSON.stringify(overlap)}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name.length > 100)
    throw new UsageError(
      `bad schedule name ${JSON.stringify(name)}: letters, digits, '.', '_', '-' (at most 100)`,
    );
  const block: Record<string, unknown> = { name };
  for (const [flag, field] of [
    ['cron', 'cron'],
    ['every', 'every'],
    ['timezone', 'timezone'],
    ['catchup-window', 'catchupWindow'],
  ] as const) {
    const v = stringOption(args, flag);
    if (v !== undefined) block[field] = v;
  }
  if (args.values['no-cache'] === true) block.noCache = true;
  const notifyCommand = stringOption(args, 'notify-command');
  const notifyUrl = stringOption(args, 'notify-url');
  if (notifyCommand !== undefined || notifyUrl !== undefined)
    block.notify = {
      ...(notifyCommand !== undefined ? { command: notifyCommand } : {}),
      ...(notifyUrl !== undefined ? { url: notifyUrl } : {}),
    };
  if (overlap) block.overlap = overlap;
  const problems: string[] = [];
  const def = readScheduleBlock(block, name, (pointer, message) => {
    const field = pointer.replace(/^\/schedule\/?/, '');
    const flag = {
      cron: '--cron',
      every: '--every',
      timezone: '--timezone',
      catchupWindow: '--catchup-window',
      'notify/url': '--notify-url',
    }[field];
    problems.push(
      flag ? `${flag}: ${message}` : message.replace(/`cron`/g, '--cron').replace(/`every`/g, '--every'),
    );
  });
  if (!def) throw new UsageError(problems.join('\n'));
  const compiled = await readAndCompile(args, file);
  return compiled && { ...compiled, def };
}

async function prepareApply(args: CommandArgs, file: string): Promise<Prepared | null> {
  for (const flag of [
    'cron',
    'every',
    'timezone',
    'no-cache',
    'overlap',
    'catchup-window',
    'notify-command',
    'notify-url',
  ])
    if (args.values[flag] !== undefined)
      throw new UsageError(`--${flag} is for \`create\`; apply reads the "schedule" block of ${file}`);
  const compiled = await readAndCompile(args, file);
  if (!compiled) return null;
  const def = compiled.plan.pipeline.schedule;
  if (!def)
    throw new UsageError(
      `${file} has no "schedule" block; add one (e.g. "schedule": {"cron": "0 2 * * *"}) or use \`ablate schedule create NAME ${file} --cron ...\``,
    );
  return { ...compiled, def };
}

function backfillRange(args: CommandArgs): { from: Date; to: Date; overlap?: (typeof OVERLAPS)[number] } {
  const time = (flag: 'from' | 'to'): Date => {
    const raw = stringOption(args, flag);
    if (raw === undefined)
      throw new UsageError(`--${flag} is required (an ISO time, e.g. 2026-12-01T00:00:00Z)`);
    const at = /^\d{4}-\d{2}-\d{2}/.test(raw) ? new Date(raw) : undefined;
    if (!at || Number.isNaN(at.getTime()))
      throw new UsageError(
        `--${flag} must be an ISO time such as 2026-12-01T00:00:00Z, got ${JSON.stringify(raw)}`,
      );
    return at;
  };
  const from = time('from');
  const to = time('to');
  if (to <= from)
    throw new UsageError(`--to (${to.toISOString()}) must be after --from (${from.toISOString()})`);
  const overlap = stringOption(args, 'overlap');
  if (overlap !== undefined && !(OVERLAPS as readonly string[]).includes(overlap))
    throw new UsageError(`--overlap must be one of ${OVERLAPS.join(', ')}, got ${JSON.stringify(overlap)}`);
  return { from, to, ...(overlap ? { overlap: overlap as (typeof OVERLAPS)[number] } : {}) };
}

function specLine(spec: { cron?: string; every?: string; timezone: string }): string {
  return spec.cron ? `cron "${spec.cron}" (${spec.timezone})` : `every ${spec.every}`;
}

function utc(d: Date): string {
  return d.toISOString().replace('T', ' ').slice(0, 19);
}
