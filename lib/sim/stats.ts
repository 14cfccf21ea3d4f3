/**
 * Statistics: named counters and a log-bucketed latency histogram that gives
 * mean, p50, p99 and max without keeping every sample.
 *
 * @module
 */
import { IopfLabError } from "./errors.ts";

/** Bucket growth factor: midpoints are within 1 % of any value in the bucket. */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
/** Values below this (ns) share bucket 0; they are reported exactly via min. */
const FLOOR = 1;

/** The bucket of `v` by definition: 0 below FLOOR, else 1 + floor(log_GROWTH(v / FLOOR)). */
function bucketByLog(v: number): number {
  return v < FLOOR ? 0 : 1 + Math.floor(Math.log(v / FLOOR) / LOG_GROWTH);
}

// A bucket lookup without Math.log for samples in [1, 2^TABLE_OCTAVES):
// the exponent and the top SUB_BITS mantissa bits of the sample (read from
// its IEEE-754 bits) index TABLE, the bucket at the start of that slice of
// an octave; a slice (2^-SUB_BITS of an octave) is narrower than a bucket,
// so the sample is in that bucket or the next. Samples within GUARD
// (relative) of a bucket boundary take bucketByLog, so the result is
// always the one bucketByLog gives (whose own rounding error is ~1e-15).
const TABLE_OCTAVES = 48;
const SUB_BITS = 8;
const GUARD = 1e-9;
const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);
const HI_WORD = (() => {
  F64[0] = 1;
  return U32[1] === 0x3ff00000 ? 1 : 0;
})();
/** Buckets 1..n: bucket k holds [GROWTH^(k-1), GROWTH^k) (FLOOR = 1). */
const N_TABLE_BUCKETS = Math.ceil(TABLE_OCTAVES / Math.log2(GROWTH)) + 2;
/** SAFE_LO[k]..SAFE_HI[k]: the part of bucket k farther than GUARD from its ends. */
const SAFE_LO = new Float64Array(N_TABLE_BUCKETS + 1);
const SAFE_HI = new Float64Array(N_TABLE_BUCKETS + 1);
const TABLE = new Int32Array(TABLE_OCTAVES << SUB_BITS);
{
  const lower = (k: number) => Math.exp((k - 1) * LOG_GROWTH);
  for (let k = 1; k <= N_TABLE_BUCKETS; k++) {
    SAFE_LO[k] = lower(k) * (1 + GUARD);
    SAFE_HI[k] = lower(k + 1) * (1 - GUARD);
  }
  let k = 1;
  for (let e = 0; e < TABLE_OCTAVES; e++) {
    for (let m = 0; m < 1 << SUB_BITS; m++) {
      const start = 2 ** e * (1 + m / (1 << SUB_BITS));
      while (lower(k + 1) <= start) k++;
      TABLE[(e << SUB_BITS) | m] = k;
    }
  }
}

/** The bucket of `v` (a finite sample >= 0): {@linkcode bucketByLog}, mostly without a logarithm. */
function bucketOf(v: number): number {
  if (v < FLOOR) return 0;
  let e: number, m: number;
  if (v < 4294967296) {
    // The exponent from the integer part; the top SUB_BITS mantissa bits
    // are bits of the integer part from 2^SUB_BITS up, below that an exact
    // power-of-two scaling gives them (no round trip through memory).
    e = 31 - Math.clz32(v);
    m = e >= SUB_BITS
      ? ((v >>> 0) >>> (e - SUB_BITS)) & ((1 << SUB_BITS) - 1)
      : (v * (1 << (SUB_BITS - e)) - (1 << SUB_BITS)) | 0;
  } else {
    F64[0] = v;
    const hi = U32[HI_WORD]!;
    e = (hi >>> 20) - 1023;
    if (e >= TABLE_OCTAVES) return bucketByLog(v);
    m = (hi >>> (20 - SUB_BITS)) & ((1 << SUB_BITS) - 1);
  }
  let b = TABLE[(e << SUB_BITS) | m]!;
  if (v >= SAFE_HI[b]!) b++;
  return v >= SAFE_LO[b]! && v < SAFE_HI[b]! ? b : bucketByLog(v);
}

/** The summary a {@linkcode Histogram} gives, in the unit it was fed. */
export interface HistogramSummary {
  /** Number of samples. */
  count: number;
  /** Arithmetic mean (exact). */
  mean: number;
  /** Median, within 1 % relative error. */
  p50: number;
  /** 99th percentile, within 1 % relative error. */
  p99: number;
  /** Largest sample (exact). */
  max: number;
}

/**
 * A histogram with logarithmic buckets (each 2 % wider than the previous),
 * so any quantile is reported within 1 % relative error; count, mean, min
 * and max are exact.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Histogram } from "./stats.ts";
 * const h = new Histogram();
 * for (let i = 1; i <= 100; i++) h.record(i * 1000);
 * const s = h.summary();
 * assert(Math.abs(s.p50 - 50000) / 50000 <= 0.01);
 * ```
 */
export class Histogram {
  #buckets = new Float64Array(2048);
  /** The last sample and its bucket: runs of equal samples are common. */
  #lastV = -1;
  #lastB = 0;
  /** Number of samples. */
  count = 0;
  /** Sum of samples. */
  sum = 0;
  /** Smallest sample (Infinity when empty). */
  min: number = Infinity;
  /** Largest sample (0 when empty). */
  max = 0;

  /** Adds one sample (a finite, non-negative number). */
  record(v: number): void {
    if (!(v >= 0) || v === Infinity) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot record ${v} in a histogram: samples must be finite and >= 0`,
      );
    }
    let b = this.#lastB;
    if (v !== this.#lastV) {
      b = bucketOf(v);
      this.#lastV = v;
      this.#lastB = b;
    }
    if (b >= this.#buckets.length) {
      const nb = new Float64Array(Math.max(b + 1, this.#buckets.length * 2));
      nb.set(this.#buckets);
      this.#buckets = nb;
    }
    this.#buckets[b]!++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** Mean of the samples, 0 when empty. */
  get mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }

  /** The q-quantile (0 <= q <= 1), 0 when empty. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    const buckets = this.#buckets;
    for (let b = 0; b < buckets.length; b++) {
      seen += buckets[b]!;
      if (seen >= rank) {
        if (b === 0) return this.min;
        const lo = FLOOR * GROWTH ** (b - 1);
        const mid = lo * Math.sqrt(GROWTH);
        return Math.min(this.max, Math.max(this.min, mid));
      }
    }
    return this.max;
  }

  /** Adds every sample of another histogram to this one. */
  merge(other: Histogram): void {
    const ob = other.#buckets;
    if (ob.length > this.#buckets.length) {
      const nb = new Float64Array(ob.length);
      nb.set(this.#buckets);
      this.#buckets = nb;
    }
    for (let i = 0; i < ob.length; i++) this.#buckets[i]! += ob[i]!;
    this.count += other.count;
    this.sum += other.sum;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
  }

  /** Mean, p50, p99 and max as a plain record. */
  summary(): HistogramSummary {
    return {
      count: this.count,
      mean: this.mean,
      p50: this.quantile(0.5),
      p99: this.quantile(0.99),
      max: this.max,
    };
  }
}

/**
 * Named counters. Reading a name never set gives 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Counters } from "./stats.ts";
 * const c = new Counters();
 * c.add("faults");
 * c.add("faults", 2);
 * assert(c.get("faults") === 3);
 * ```
 */
export class Counters {
  /**
   * One mutable cell per name: `add` is one hash lookup and writes the value
   * in place (a Map of numbers would allocate a new number on every update
   * of a counter beyond the small-integer range, such as bytes).
   */
  #cells = new Map<string, { v: number }>();

  /** Adds `n` (default 1) to `name`. */
  add(name: string, n = 1): void {
    const c = this.#cells.get(name);
    if (c === undefined) this.#cells.set(name, { v: 0 + n });
    else c.v += n;
  }

  /**
   * The mutable cell of `name`, created at 0 when missing (it then exists,
   * as after `add(name, 0)`): a hot path that adds to one counter on every
   * call keeps the cell and adds to `cell.v` without a lookup. Get it at the
   * first add, not before, so that a counter never added stays absent.
   */
  cell(name: string): { v: number } {
    let c = this.#cells.get(name);
    if (c === undefined) {
      c = { v: 0 };
      this.#cells.set(name, c);
    }
    return c;
  }

  /** Sets `name` to the max of its value and `v` (for peaks). */
  max(name: string, v: number): void {
    const c = this.#cells.get(name);
    if (c === undefined) {
      if (v > 0) this.#cells.set(name, { v });
    } else if (v > c.v) {
      c.v = v;
    }
  }

  /** The value of `name` (0 if never set). */
  get(name: string): number {
    return this.#cells.get(name)?.v ?? 0;
  }

  /** All counters as a plain record, names sorted. */
  toJSON(): Record<string, number> {
    return Object.fromEntries(
      [...this.#cells.entries()]
        .map(([k, c]) => [k, c.v] as const)
        .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0),
    );
  }
}
