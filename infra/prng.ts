/**
 * ablate's one seeded pseudo-random generator. Every synthetic image, split, shuffle, augmentation and
 * weight initialisation draws from it, so each output is a pure function of its seed: `Math.random` is
 * never used (its sequence differs between runs and V8 versions, which would break byte-identical
 * results).
 *
 * The generator is xoshiro128** (Blackman & Vigna): fast in plain JS integer arithmetic, good statistics
 * for shuffling, sampling and initialisation, and its whole state is four 32-bit words, so a training
 * checkpoint stores it and a resumed run draws exactly what the uninterrupted run would have drawn.
 *
 * Streams can be named (`createRng(7, 'train', 17)`): image 17 of the train set is then the same whatever
 * else was generated before it, so a train set of N images is a prefix of one of M > N.
 */

/** The serialisable state of an {@link Rng}: four unsigned 32-bit integers. */
export type RngState = [number, number, number, number];

/** A seeded generator of uniform numbers and the usual helpers. */
export interface Rng {
  /** A uniform unsigned 32-bit integer. */
  uint32(): number;
  /** Uniform in [0, 1), 32 bits of randomness. */
  float(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number;
  /** Log-uniform in [lo, hi) (both > 0). */
  logRange(lo: number, hi: number): number;
  /** Standard normal (Box-Muller with two fresh uniforms per call and no cached spare, so state is exact). */
  normal(): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
  /** Fisher-Yates shuffle, in place; returns the array. */
  shuffle<T>(items: T[]): T[];
  /** A copy of the current state. */
  state(): RngState;
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

/** splitmix32: spreads a seed over the four state words, so nearby seeds give unrelated streams. */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function initialState(seed: number | string | RngState, path: Array<string | number>): RngState {
  if (Array.isArray(seed)) {
    if (seed.length !== 4 || seed.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)) {
      throw new Error(`invalid RNG state ${JSON.stringify(seed)}: expected four uint32 words`);
    }
    return [...seed];
  }
  if (typeof seed === 'number' && path.length === 0) {
    const mix = splitmix32(seed);
    return [mix(), mix(), mix(), mix()];
  }
  const key = [String(seed), ...path.map(String)].join('\u0000');
  return [hash32(key, 1), hash32(key, 2), hash32(key, 3), hash32(key, 4)];
}

/**
 * A generator for the stream named by `seed` and `path` (`createRng(7)`, `createRng(7, 'val', 3)`), or
 * restored from a saved {@link RngState}.
 */
export function createRng(seed: number | string | RngState, ...path: Array<string | number>): Rng {
  const s = initialState(seed, path);
  // The all-zero state is a fixed point of xoshiro; seeding never produces it, a corrupt file might.
  if (s.every((w) => w === 0)) s[0] = 1;

  const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
  const uint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] = (s[2] ^ s[0]) >>> 0;
    s[3] = (s[3] ^ s[1]) >>> 0;
    s[1] = (s[1] ^ s[2]) >>> 0;
    s[0] = (s[0] ^ s[3]) >>> 0;
    s[2] = (s[2] ^ t) >>> 0;
    s[3] = rotl(s[3], 11);
    return result;
  };
  const float = () => uint32() / 4294967296;
  return {
    uint32,
    float,
    int: (n) => Math.floor(float() * n),
    range: (lo, hi) => lo + float() * (hi - lo),
    logRange: (lo, hi) => Math.exp(Math.log(lo) + float() * (Math.log(hi) - Math.log(lo))),
    normal() {
      // 1 - u keeps the log argument in (0, 1].
      const u = 1 - float();
      const v = float();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    chance: (p) => float() < p,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new RangeError('pick from an empty array');
      return items[Math.floor(float() * items.length)]!;
    },
    shuffle<T>(items: T[]): T[] {
      for (let i = items.length - 1; i > 0; i--) {
        const j = Math.floor(float() * (i + 1));
        const tmp = items[i]!;
        items[i] = items[j]!;
        items[j] = tmp;
      }
      return items;
    },
    state: () => [...s],
  };
}
