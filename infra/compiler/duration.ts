/** Durations in pipelines: a number of seconds, or "90s", "15m", "2h", "1h30m", "500ms", "1d". */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration; undefined if it is not one. */
export function parseDurationMs(value: unknown): number | undefined {
  if (typeof value === 'number')
    return value > 0 && Number.isFinite(value) ? Math.round(value * 1000) : undefined;
  if (typeof value !== 'string' || !/^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$/.test(value)) return undefined;
  let total = 0;
  for (const m of value.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)/g))
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return total > 0 ? Math.round(total) : undefined;
}

/** A short human form: 1h30m, 45s, 250ms. */
export function formatDurationMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let s = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  if (s > 0 || parts.length === 0) parts.push(`${s}s`);
  return parts.join('');
}
