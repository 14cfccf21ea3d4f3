/**
 * Seeded pseudo-random numbers: xoshiro128** (Blackman and Vigna, 2018),
 * seeded through splitmix32 so that any 32-bit seed gives a good state.
 *
 * @module
 */

/**
 * A small, fast, seeded generator. The same seed gives the same sequence on
 * every platform (all arithmetic is 32-bit integer math).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Rng } from "./rng.ts";
 * const a = new Rng(42), b = new Rng(42);
 * assert(a.nextU32() === b.nextU32());
 * ```
 */
export class Rng {
  #s = new Uint32Array(4);

  /** Creates a generator from a seed (any finite number; its low 32 bits and high part are mixed). */
  constructor(seed: number) {
    let x = (seed >>> 0) ^ Math.floor(seed / 2 ** 32);
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if ((this.#s[0]! | this.#s[1]! | this.#s[2]! | this.#s[3]!) === 0) {
      this.#s[0] = 1;
    }
  }

  /**
   * A generator with the raw xoshiro128** state `s` (four 32-bit words, not
   * all zero), for checking against the reference implementation.
   */
  static fromState(s: readonly [number, number, number, number]): Rng {
    const r = new Rng(0);
    for (let i = 0; i < 4; i++) r.#s[i] = s[i]! >>> 0;
    return r;
  }

  /** The next 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.#s;
    const s0 = s[0]!, s1 = s[1]!, s2 = s[2]!, s3 = s[3]!;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    let n2 = (s2 ^ s0) >>> 0;
    let n3 = (s3 ^ s1) >>> 0;
    const n1 = (s1 ^ n2) >>> 0;
    const n0 = (s0 ^ n3) >>> 0;
    n2 = (n2 ^ t) >>> 0;
    n3 = rotl(n3, 11);
    s[0] = n0;
    s[1] = n1;
    s[2] = n2;
    s[3] = n3;
    return r;
  }

  /** A float in [0, 1) with 32 bits of randomness. */
  float(): number {
    return this.nextU32() / 4294967296;
  }

  /** An integer in [0, n) for n up to 2^53 (two draws above 2^32). */
  int(n: number): number {
    if (n <= 4294967296) return Math.floor(this.float() * n);
    const hi = this.nextU32() * 2097152 + (this.nextU32() >>> 11);
    return Math.floor((hi / 2 ** 53) * n);
  }

  /** An exponentially distributed value with the given mean. */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.float());
  }

  /** A new independent generator derived from this one's stream and `k`. */
  fork(k: number): Rng {
    return new Rng((this.nextU32() ^ Math.imul(k + 1, 0x9e3779b1)) >>> 0);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
