/**
 * A shared bandwidth: the host's memory bandwidth that every core zeroing or
 * copying pages draws on. Concurrent streams share it fairly (processor
 * sharing), and each stream is also bounded by what one core can move
 * alone, so N streams go N times as fast as one only until the host's
 * ceiling is reached.
 *
 * @module
 */
import { IopfLabError } from "./errors.ts";
import type { EventId, Simulator } from "./simulator.ts";

/** Options of a {@linkcode SharedBandwidth}. */
export interface SharedBandwidthOptions {
  /** A name for reports and errors ("host memory bandwidth"). */
  name: string;
  /**
   * The ns one stream (one core) takes per unit moved alone (the caller
   * picks the unit: bytes, 4 KiB pages); positive and finite.
   */
  streamNsPerUnit: number;
  /**
   * The ns per unit of all streams together: the ceiling is
   * `1 / totalNsPerUnit` units per ns. Not negative; 0 for no ceiling (then
   * every stream runs at the rate of one core).
   */
  totalNsPerUnit: number;
}

/** An elastic stream in flight. */
interface Stream {
  remaining: number;
  done: () => void;
}

/** Bytes left below which a stream counts as finished (float rounding). */
const EPSILON_BYTES = 1e-6;

/**
 * Processor sharing of a bandwidth among streams, each capped at the rate of
 * one core. Two kinds of stream:
 *
 * - {@linkcode transfer} is elastic: its rate follows the number of streams
 *   in flight, `min(streamRate, free / elastic streams)` (rates are
 *   `1 / nsPerUnit`), recomputed whenever
 *   a stream starts or ends; `done` runs when its bytes are moved. QEMU's
 *   prealloc threads are such streams.
 * - {@linkcode reserve} is for a synchronous kernel path that must know its
 *   duration now (a fault or pin that zeroes pages inside one call): it gets
 *   its fair share against the elastic streams at the moment it starts,
 *   keeps that rate until it ends, and the elastic streams share what it
 *   leaves.
 *
 * With no other stream, either kind moves `n` units in `n * max(streamNsPerUnit,
 * totalNsPerUnit)` ns (exactly that product).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Simulator } from "./simulator.ts";
 * import { SharedBandwidth } from "./bandwidth.ts";
 * const sim = new Simulator();
 * // one core moves a page in 2 ns, the host one every 1 ns: two streams
 * // get one page per 2 ns each, three streams one per 3 ns
 * const bw = new SharedBandwidth(sim, {
 *   name: "dram",
 *   streamNsPerUnit: 2,
 *   totalNsPerUnit: 1,
 * });
 * const ends: number[] = [];
 * for (let i = 0; i < 3; i++) bw.transfer(100, () => ends.push(sim.now));
 * sim.run();
 * assert.deepEqual(ends, [300, 300, 300]);
 * ```
 */
export class SharedBandwidth {
  /** The name given at construction. */
  readonly name: string;
  /** ns per unit of one stream alone. */
  readonly streamNsPerUnit: number;
  /** ns per unit of all streams together (0: no ceiling). */
  readonly totalNsPerUnit: number;
  /** Units per ns one stream moves alone. */
  readonly streamRate: number;
  /** Units per ns all streams together may move (Infinity: no ceiling). */
  readonly totalRate: number;
  readonly #sim: Simulator;
  readonly #elastic: Stream[] = [];
  /** Reservations in flight: their rates and end times. */
  readonly #held: { rate: number; end: number }[] = [];
  /** Sum of the rates of the reservations in flight. */
  #reserved = 0;
  #rate = 0;
  #since = 0;
  #next: EventId | -1 = -1;
  /** Bytes moved so far (both kinds). */
  bytesMoved = 0;
  /** Most streams in flight at once. */
  maxStreams = 0;

  /** Creates the bandwidth on `sim`. EINVAL on a rate that is not positive. */
  constructor(sim: Simulator, options: SharedBandwidthOptions) {
    const { name, streamNsPerUnit, totalNsPerUnit } = options;
    if (!(streamNsPerUnit > 0 && streamNsPerUnit < Infinity)) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create bandwidth ${name}: one stream's time per unit must be positive and finite, got ${streamNsPerUnit}`,
      );
    }
    if (!(totalNsPerUnit >= 0 && totalNsPerUnit < Infinity)) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create bandwidth ${name}: the total time per unit must be finite and not negative (0 for no ceiling), got ${totalNsPerUnit}`,
      );
    }
    this.#sim = sim;
    this.name = name;
    this.streamNsPerUnit = streamNsPerUnit;
    this.totalNsPerUnit = totalNsPerUnit;
    this.streamRate = 1 / streamNsPerUnit;
    this.totalRate = totalNsPerUnit > 0 ? 1 / totalNsPerUnit : Infinity;
  }

  /** Streams in flight now (elastic and reserved). */
  get streams(): number {
    this.#advance();
    return this.#elastic.length + this.#held.length;
  }

  /** The rate each elastic stream moves at now (bytes per ns; 0 when none). */
  get elasticRate(): number {
    this.#advance();
    return this.#elastic.length === 0 ? 0 : this.#rate;
  }

  /**
   * The ns per unit each of `n` streams takes when they share the bandwidth
   * alone: `max(streamNsPerUnit, n * totalNsPerUnit)`.
   */
  nsPerUnitOf(n: number): number {
    return Math.max(this.streamNsPerUnit, Math.max(1, n) * this.totalNsPerUnit);
  }

  /**
   * Moves `bytes` units as an elastic stream; `done` runs when they are moved (in
   * the same event when `bytes` is 0). EINVAL on a negative or non-finite
   * size.
   */
  transfer(bytes: number, done: () => void): void {
    checkBytes(bytes, this.name);
    if (bytes === 0) {
      done();
      return;
    }
    this.#advance();
    this.#elastic.push({ remaining: bytes, done });
    this.bytesMoved += bytes;
    this.#noteStreams();
    this.#reschedule();
  }

  /**
   * A synchronous path moving `bytes` units from now: returns the ns it takes
   * at its fair share against the elastic streams in flight (`nsPerUnitOf(
   * elastic + 1)`), and holds that rate until then, so the elastic streams
   * slow down meanwhile. Synchronous paths do not slow each other: one
   * kernel call prices its pieces one after another at the same simulated
   * instant, so they cannot be told apart from concurrent ones; with no
   * elastic stream in flight nothing is recorded. 0 bytes take 0 ns.
   */
  reserve(bytes: number): number {
    checkBytes(bytes, this.name);
    if (bytes === 0) return 0;
    this.#advance();
    const n = this.#elastic.length;
    let perUnit = this.nsPerUnitOf(n + 1);
    if (n === 0) return bytes * perUnit;
    // Never more than the reservations in flight leave free (unless they
    // already take it all: then the fair share, a brief oversubscription
    // rather than a stall).
    const free = this.totalRate - this.#reserved;
    if (free > 0 && free * perUnit < 1) perUnit = 1 / free;
    const rate = 1 / perUnit;
    const ns = bytes * perUnit;
    this.#held.push({ rate, end: this.#sim.now + ns });
    this.#reserved += rate;
    this.bytesMoved += bytes;
    this.#noteStreams();
    this.#reschedule();
    return ns;
  }

  #noteStreams(): void {
    if (this.streams > this.maxStreams) this.maxStreams = this.streams;
  }

  /**
   * Moves every elastic stream on to now, at the rates of each interval
   * between the ends of reservations, and drops the reservations that ended.
   */
  #advance(): void {
    const now = this.#sim.now;
    for (;;) {
      // The next reservation to end before now, if any.
      let first = -1;
      for (let i = 0; i < this.#held.length; i++) {
        const end = this.#held[i]!.end;
        if (end <= now && (first < 0 || end < this.#held[first]!.end)) {
          first = i;
        }
      }
      const until = first < 0 ? now : this.#held[first]!.end;
      const moved = this.#rate * (until - this.#since);
      if (moved > 0) {
        for (const s of this.#elastic) s.remaining -= moved;
      }
      this.#since = Math.max(this.#since, until);
      if (first < 0) return;
      this.#reserved -= this.#held[first]!.rate;
      this.#held.splice(first, 1);
      if (this.#held.length === 0) this.#reserved = 0; // rounding
      this.#rate = this.#elasticShare();
    }
  }

  /** 1 / #elasticShare(), exact when nothing is reserved. */
  #elasticNsPerUnit(): number {
    return this.#held.length === 0
      ? this.nsPerUnitOf(this.#elastic.length)
      : 1 / this.#rate;
  }

  /** What each elastic stream gets from what the reservations leave. */
  #elasticShare(): number {
    const n = this.#elastic.length;
    if (n === 0) return 0;
    const free = this.totalRate - this.#reserved;
    return Math.min(this.streamRate, Math.max(0, free) / n);
  }

  /**
   * Recomputes the elastic rate and schedules the next change: the first
   * elastic stream to finish, or the first reservation to end.
   */
  #reschedule(): void {
    if (this.#next !== -1) {
      this.#sim.cancel(this.#next);
      this.#next = -1;
    }
    this.#rate = this.#elasticShare();
    if (this.#elastic.length === 0) return;
    const now = this.#sim.now;
    let at = Infinity;
    if (this.#rate > 0) {
      let least = Infinity;
      for (const s of this.#elastic) {
        if (s.remaining < least) least = s.remaining;
      }
      at = now + Math.max(0, least) * this.#elasticNsPerUnit();
    }
    for (const h of this.#held) if (h.end < at) at = h.end;
    this.#next = this.#sim.at(Math.max(now, at), () => this.#complete());
  }

  /** Ends the streams that have moved all their bytes. */
  #complete(): void {
    this.#next = -1;
    this.#advance();
    const finished: Stream[] = [];
    for (let i = 0; i < this.#elastic.length;) {
      const s = this.#elastic[i]!;
      if (s.remaining <= EPSILON_BYTES) {
        finished.push(s);
        this.#elastic.splice(i, 1);
      } else i++;
    }
    this.#reschedule();
    for (const s of finished) s.done();
  }
}

function checkBytes(bytes: number, name: string): void {
  if (!(bytes >= 0 && bytes < Infinity)) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot move ${bytes} bytes through ${name}: the size must be finite and not negative`,
    );
  }
}
