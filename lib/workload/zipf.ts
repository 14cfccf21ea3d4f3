/**
 * A Zipf-distributed sampler over ranks 1..n by rejection-inversion
 * (W. Hörmann and G. Derflinger, "Rejection-inversion to generate variates
 * from monotone discrete distributions", ACM TOMACS 6(3), 1996): constant
 * memory and expected O(1) time for any n, so a 1 TiB working set of 4 KiB
 * pages costs nothing to set up.
 *
 * @module
 */
import { IopfLabError } from "../sim/errors.ts";
import type { Rng } from "../sim/rng.ts";

/**
 * Samples k in [0, n) with P(k) proportional to 1 / (k + 1)^s.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Rng } from "../sim/rng.ts";
 * import { ZipfSampler } from "./zipf.ts";
 * const z = new ZipfSampler(1000, 1.1);
 * const k = z.sample(new Rng(1));
 * assert(k >= 0 && k < 1000);
 * ```
 */
export class ZipfSampler {
  readonly #n: number;
  readonly #s: number;
  readonly #hx0: number;
  readonly #hn: number;
  readonly #threshold: number;

  /** A sampler over `n` ranks with exponent `s` (> 0). */
  constructor(n: number, s = 1) {
    if (!Number.isInteger(n) || n < 1 || !(s > 0)) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot build a Zipf sampler over ${n} items with exponent ${s}: need a whole n >= 1 and s > 0`,
      );
    }
    this.#n = n;
    this.#s = s;
    this.#hx0 = this.#h(1.5) - 1;
    this.#hn = this.#h(n + 0.5);
    this.#threshold = 2 - this.#hInv(this.#h(2.5) - Math.pow(2, -s));
  }

  /** H(x) = integral of x^-s, with the s = 1 limit handled. */
  #h(x: number): number {
    const e = 1 - this.#s;
    return Math.abs(e) < 1e-12 ? Math.log(x) : (Math.pow(x, e) - 1) / e;
  }

  #hInv(y: number): number {
    const e = 1 - this.#s;
    return Math.abs(e) < 1e-12 ? Math.exp(y) : Math.pow(1 + y * e, 1 / e);
  }

  /** One sample in [0, n). */
  sample(rng: Rng): number {
    for (;;) {
      const u = this.#hn + rng.float() * (this.#hx0 - this.#hn);
      const x = this.#hInv(u);
      let k = Math.floor(x + 0.5);
      if (k < 1) k = 1;
      else if (k > this.#n) k = this.#n;
      if (
        k - x <= this.#threshold ||
        u >= this.#h(k + 0.5) - Math.pow(k, -this.#s)
      ) {
        return k - 1;
      }
    }
  }
}
