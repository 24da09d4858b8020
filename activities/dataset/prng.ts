/**
 * A small seeded pseudo-random generator (sfc32, seeded through a string hash) so that every synthetic
 * image, split and shuffle is a pure function of its seed. `Math.random` is never used: its sequence
 * differs between runs and V8 versions, which would break byte-identical outputs.
 *
 * Streams are derived by name (`createRng(seed, 'train', 17)`), so image 17 of the train set is the
 * same whatever else was generated before it: a train set of N images is a prefix of one of M > N.
 */

/** A seeded generator of uniform numbers and the usual helpers. */
export interface Rng {
  /** Uniform in [0, 1), 32 bits of randomness. */
  float(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number;
  /** Log-uniform in [lo, hi) (both > 0). */
  logRange(lo: number, hi: number): number;
  /** Standard normal (Box-Muller). */
  normal(): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
  /** Fisher-Yates shuffle, in place; returns the array. */
  shuffle<T>(items: T[]): T[];
  /** Raw 32-bit unsigned output. */
  uint32(): number;
}

/** 32-bit FNV-1a of a string, then a murmur3 finaliser so nearby strings spread apart. */
export function hash32(text: string, salt = 0): number {
  let h = (0x811c9dc5 ^ salt) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** A generator for the stream named by `seed` and `path` (e.g. `createRng(7, 'val', 3)`). */
export function createRng(seed: number | string, ...path: Array<string | number>): Rng {
  const key = [String(seed), ...path.map(String)].join('\u0000');
  let a = hash32(key, 1);
  let b = hash32(key, 2);
  let c = hash32(key, 3);
  let d = hash32(key, 4) | 1;
  const next = (): number => {
    // sfc32 (Chris Doty-Humphrey's Small Fast Counting generator): passes PractRand, 32-bit only.
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  // Discard the first outputs: sfc32 needs a few rounds to mix a hashed state.
  for (let i = 0; i < 12; i++) next();
  let spareNormal: number | undefined;
  const rng: Rng = {
    uint32: next,
    float: () => next() / 4294967296,
    int: (n) => Math.floor((next() / 4294967296) * n),
    range: (lo, hi) => lo + (next() / 4294967296) * (hi - lo),
    logRange: (lo, hi) => Math.exp(Math.log(lo) + (next() / 4294967296) * (Math.log(hi) - Math.log(lo))),
    normal() {
      if (spareNormal !== undefined) {
        const s = spareNormal;
        spareNormal = undefined;
        return s;
      }
      const u = (next() + 1) / 4294967297;
      const v = next() / 4294967296;
      const r = Math.sqrt(-2 * Math.log(u));
      spareNormal = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
    chance: (p) => next() / 4294967296 < p,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new RangeError('pick from an empty array');
      return items[Math.floor((next() / 4294967296) * items.length)]!;
    },
    shuffle<T>(items: T[]): T[] {
      for (let i = items.length - 1; i > 0; i--) {
        const j = Math.floor((next() / 4294967296) * (i + 1));
        const tmp = items[i]!;
        items[i] = items[j]!;
        items[j] = tmp;
      }
      return items;
    },
  };
  return rng;
}
