/**
 * Where a run's time went: per step kind, how many steps ran (and how many the cache served) and how
 * long they took, from the run summary (which carries each step record's duration and worker); and
 * how busy the cores were. Two kinds of figure, labelled as such wherever they are shown:
 *   - derived: busy step-seconds / (wall seconds x cores), from the records' start and end times (a
 *     step waiting on I/O counts as busy; orchestration between steps does not count);
 *   - measured: CPU time the run's ablate processes used (`ablate run` itself and its trainer
 *     processes, each measured by `process.cpuUsage()`) over the same wall time, and the whole
 *     machine's busy share (`/proc/stat`, every process: the Temporal server, and anything else
 *     running). Only `ablate run` can measure these; it stores them with the run (`runs/<id>/usage`).
 */
import { readFileSync } from 'node:fs';

import { recordKeys, type RunSummary, type StepRecord } from '../activities/runtime/run-records';
import { formatDurationMs } from './compiler/duration';
import type { ArtifactStore } from './store/index';

/** What `ablate run` measured over a run, stored as the record `runs/<id>/usage`. */
export interface RunUsage {
  /** Wall time it measured over, from just before the run started to its end, ms. */
  wallMs: number;
  /** Cores of the machine (`os.availableParallelism()`). */
  cores: number;
  /** CPU time (user + system) of `ablate run` and its trainer processes over that time, ms. */
  cpuMs: number;
  /** How many processes `cpuMs` sums. */
  processes: number;
  /** Share of the machine's CPU time that was busy over that time (every process), 0..1; Linux only. */
  machineBusy?: number;
}

/** One row of the per-kind table. */
export interface KindBreakdown {
  uses: string;
  /** Steps that ran. */
  ran: number;
  /** Steps served from the cache. */
  cached: number;
  /** Summed duration of the steps that ran, ms. */
  totalMs: number;
  /** Median duration of the steps that ran, ms (0 when none ran). */
  medianMs: number;
}

export interface RunBreakdown {
  wallMs: number;
  cores: number;
  kinds: KindBreakdown[];
  /** Summed duration of the steps that ran, ms. */
  busyStepMs: number;
  /** Distinct worker processes (host and pid) that ran steps. */
  workerProcesses: number;
  /** Derived: busyStepMs / (wallMs x cores). */
  stepUtilization: number;
  /** Measured, when `ablate run` measured it. */
  measured?: RunUsage & { cpuUtilization: number };
}

/** The step-record fields the breakdown reads. */
export type StepTiming = Pick<StepRecord, 'uses' | 'status' | 'durationMs' | 'worker'>;

function median(values: number[]): number {
  if (!values.length) return 0;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Compute the breakdown of a run from its step records, its wall time and (if any) what was measured. */
export function computeBreakdown(
  steps: readonly StepTiming[],
  options: { wallMs: number; cores: number; usage?: RunUsage },
): RunBreakdown {
  const byKind = new Map<string, { ran: number[]; cached: number }>();
  const workers = new Set<string>();
  for (const s of steps) {
    const k = byKind.get(s.uses) ?? { ran: [], cached: 0 };
    byKind.set(s.uses, k);
    if (s.status === 'cached') k.cached++;
    else {
      k.ran.push(s.durationMs);
      if (s.worker) workers.add(`${s.worker.host}:${s.worker.pid}`);
    }
  }
  const kinds = [...byKind.entries()]
    .map(([uses, k]) => ({
      uses,
      ran: k.ran.length,
      cached: k.cached,
      totalMs: k.ran.reduce((a, b) => a + b, 0),
      medianMs: median(k.ran),
    }))
    .sort((a, b) => b.totalMs - a.totalMs || a.uses.localeCompare(b.uses));
  const busyStepMs = kinds.reduce((a, k) => a + k.totalMs, 0);
  const { wallMs, cores, usage } = options;
  const ratio = (num: number, den: number) => (den > 0 ? num / den : 0);
  return {
    wallMs,
    cores,
    kinds,
    busyStepMs,
    workerProcesses: workers.size,
    stepUtilization: ratio(busyStepMs, wallMs * cores),
    ...(usage
      ? { measured: { ...usage, cpuUtilization: ratio(usage.cpuMs, usage.wallMs * usage.cores) } }
      : {}),
  };
}

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const secs = (ms: number) => (ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : formatDurationMs(ms));

/** The breakdown as a compact table and a few labelled lines. */
export function breakdownText(b: RunBreakdown): string[] {
  const rows = b.kinds.map((k) => [
    k.uses,
    String(k.ran),
    k.cached ? String(k.cached) : '',
    k.ran ? secs(k.totalMs) : '',
    k.ran ? secs(k.medianMs) : '',
  ]);
  const header = ['kind', 'ran', 'cached', 'total', 'median'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [
    `step time by kind (from the step records; wall ${secs(b.wallMs)}, ${b.cores} core${b.cores === 1 ? '' : 's'}, ${b.workerProcesses} worker process${b.workerProcesses === 1 ? '' : 'es'} ran steps):`,
    line(header),
    ...rows.map(line),
    `cores busy, derived: ${pct(b.stepUtilization)} (step time ${secs(b.busyStepMs)} / (wall x ${b.cores} cores))`,
  ];
  const m = b.measured;
  if (m) {
    out.push(
      `cores busy, measured: ${pct(m.cpuUtilization)} (CPU time of ${m.processes} ablate process${m.processes === 1 ? '' : 'es'}: ${secs(m.cpuMs)} over ${secs(m.wallMs)} x ${m.cores} cores)${m.machineBusy !== undefined ? `; whole machine, every process: ${pct(m.machineBusy)}` : ''}`,
    );
  }
  return out;
}

/** Busy and total CPU time of the whole machine so far (`/proc/stat` jiffies), or undefined off Linux. */
export function machineCpuTimes(): { busy: number; total: number } | undefined {
  try {
    const first = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user).
    const v = first.trim().split(/\s+/).slice(1, 9).map(Number);
    if (v.length < 4 || v.some((n) => !Number.isFinite(n))) return undefined;
    const total = v.reduce((a, b) => a + b, 0);
    const idle = v[3]! + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/**
 * The breakdown of a finished run: its summary's steps (each with its record's duration and worker) and,
 * when `ablate run` measured it, its usage record. Wall time is the summary's (the workflow's start to
 * its end).
 */
export async function loadRunBreakdown(
  store: ArtifactStore,
  summary: Pick<RunSummary, 'runId' | 'startedAt' | 'endedAt' | 'steps'>,
  cores: number,
): Promise<RunBreakdown> {
  const steps = summary.steps.flatMap((s): StepTiming[] =>
    (s.status === 'done' || s.status === 'cached') && s.durationMs !== undefined
      ? [
          {
            uses: s.uses,
            status: s.status,
            durationMs: s.durationMs,
            ...(s.worker ? { worker: s.worker } : {}),
          },
        ]
      : [],
  );
  const usage = await store.getRecord<RunUsage>(recordKeys.usage(summary.runId));
  return computeBreakdown(steps, {
    wallMs: Date.parse(summary.endedAt) - Date.parse(summary.startedAt),
    cores: usage?.cores ?? cores,
    usage,
  });
}
