/** Small helpers shared by the benchmarks. */

/** Median of numbers. */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Whether `--json` was passed. */
export const wantsJson = process.argv.includes('--json');

/** The value of `--name VALUE`, if given. */
export function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/**
 * The value of `--name N` as a positive number (an integer when `integer`), or `fallback` when absent.
 * A bad value ends the benchmark with exit code 2.
 */
export function numberFlag(name: string, fallback: number, options: { integer?: boolean } = {}): number {
  const raw = argValue(name.replace(/^--/, ''));
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!(options.integer ? Number.isInteger(n) : Number.isFinite(n)) || n <= 0) {
    console.error(`${name} needs a positive ${options.integer ? 'integer' : 'number'}, got ${raw}`);
    process.exit(2);
  }
  return n;
}

/** Peak resident set size of this process so far, in MiB. */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** Print the figures: a readable block, then (with --json) one JSON object as the last line. */
export function report(title: string, figures: Record<string, unknown>): void {
  console.log(`\n${title}`);
  for (const [k, v] of Object.entries(figures))
    console.log(`  ${k}: ${typeof v === 'number' ? +v.toFixed(3) : JSON.stringify(v)}`);
  if (wantsJson) console.log(JSON.stringify(figures));
}
