/**
 * Floating-point helpers that reproduce numpy and Python bit for bit, so that ablate's metrics equal the
 * reference implementations (pycocotools, the VOC devkit's Python port) exactly, not just approximately.
 */

/** numpy's `np.spacing(1)` = `np.finfo(np.float64).eps` = 2^-52. */
export const EPS = 2 ** -52;

/**
 * Sum of `values[start .. start+n)` in the order numpy's `np.add.reduce` adds a contiguous float64 array
 * (pairwise summation with 8 interleaved accumulators and blocks of 128). A naive left-to-right sum differs
 * from numpy in the last bits, which would make `np.mean` of the same numbers differ.
 */
export function numpySum(values: ArrayLike<number>, start = 0, n = values.length - start): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += values[start + i]!;
    return res;
  }
  if (n <= 128) {
    let r0 = values[start]!,
      r1 = values[start + 1]!,
      r2 = values[start + 2]!,
      r3 = values[start + 3]!,
      r4 = values[start + 4]!,
      r5 = values[start + 5]!,
      r6 = values[start + 6]!,
      r7 = values[start + 7]!;
    let i = 8;
    const end = n - (n % 8);
    for (; i < end; i += 8) {
      r0 += values[start + i]!;
      r1 += values[start + i + 1]!;
      r2 += values[start + i + 2]!;
      r3 += values[start + i + 3]!;
      r4 += values[start + i + 4]!;
      r5 += values[start + i + 5]!;
      r6 += values[start + i + 6]!;
      r7 += values[start + i + 7]!;
    }
    let res = r0 + r1 + (r2 + r3) + (r4 + r5 + (r6 + r7));
    for (; i < n; i++) res += values[start + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return numpySum(values, start, n2) + numpySum(values, start + n2, n - n2);
}

/** `np.mean` of a float64 array (pairwise sum, then one division); NaN for an empty array, as numpy. */
export function numpyMean(values: ArrayLike<number>): number {
  return numpySum(values) / values.length;
}

/**
 * Python's `'{:0.3f}'.format(x)` (correct rounding, exact ties to even). JavaScript's `toFixed` rounds
 * exact ties away from zero: `(0.0625).toFixed(3)` is "0.063" where Python prints "0.062".
 */
export function formatFixed(x: number, digits: number): string {
  const s = x.toFixed(digits);
  if (!Number.isFinite(x) || !isExactTie(x, digits)) return s;
  const scaled = Math.abs(x) * 10 ** digits;
  const lower = Math.floor(scaled);
  const even = lower % 2 === 0 ? lower : lower + 1;
  const sign = x < 0 ? '-' : '';
  const str = String(even).padStart(digits + 1, '0');
  return digits === 0 ? `${sign}${str}` : `${sign}${str.slice(0, -digits)}.${str.slice(-digits)}`;
}

/** True when the exact binary value of |x| lies exactly halfway between two multiples of 10^-digits. */
function isExactTie(x: number, digits: number): boolean {
  // toPrecision/toFixed with many digits give the exact decimal expansion of a double (up to 100 digits).
  const exact = Math.abs(x).toFixed(Math.min(100, digits + 60));
  const dot = exact.indexOf('.');
  const tail = exact.slice(dot + 1 + digits);
  return /^50*$/.test(tail);
}
