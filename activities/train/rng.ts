/**
 * A small seeded PRNG whose whole state is four 32-bit words, so a checkpoint can store it and a resumed
 * run draws exactly the numbers the uninterrupted run would have drawn (data order, flips, He init).
 *
 * The generator is xoshiro128** (Blackman & Vigna): fast in plain JS integer arithmetic, good enough
 * statistics for shuffling and initialisation, and trivially serialisable. `Math.random` is never used.
 */

/** The serialisable state of an {@link Rng}: four unsigned 32-bit integers. */
export type RngState = [number, number, number, number];

/** A seeded pseudo-random number generator with a state that survives a JSON round trip. */
export interface Rng {
  /** A uniform unsigned 32-bit integer. */
  nextUint32(): number;
  /** A uniform float in [0, 1) with 32 bits of randomness. */
  next(): number;
  /** A uniform integer in [0, n). */
  int(n: number): number;
  /** A standard normal draw (Box-Muller; uses two uniforms per call, no cached spare, so state is exact). */
  normal(): number;
  /** Fisher-Yates shuffle of `items` in place; returns it. */
  shuffle<T>(items: T[]): T[];
  /** A copy of the current state. */
  state(): RngState;
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

/** A generator seeded from an integer, or restored from a saved {@link RngState}. */
export function createRng(seedOrState: number | RngState): Rng {
  let s: RngState;
  if (typeof seedOrState === 'number') {
    const mix = splitmix32(seedOrState);
    s = [mix(), mix(), mix(), mix()];
  } else {
    if (
      seedOrState.length !== 4 ||
      seedOrState.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)
    ) {
      throw new Error(`invalid RNG state ${JSON.stringify(seedOrState)}: expected four uint32 words`);
    }
    s = [...seedOrState];
  }
  // The all-zero state is a fixed point of xoshiro; splitmix never produces it, a corrupt file might.
  if (s.every((w) => w === 0)) s[0] = 1;

  const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
  const nextUint32 = (): number => {
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
  const next = () => nextUint32() / 4294967296;
  const rng: Rng = {
    nextUint32,
    next,
    int: (n) => Math.floor(next() * n),
    normal() {
      // 1 - u keeps the log argument in (0, 1].
      const u = 1 - next();
      const v = next();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    shuffle(items) {
      for (let i = items.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        const tmp = items[i] as (typeof items)[number];
        items[i] = items[j] as (typeof items)[number];
        items[j] = tmp;
      }
      return items;
    },
    state: () => [...s],
  };
  return rng;
}
