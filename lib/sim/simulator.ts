/**
 * The discrete-event engine: a virtual clock in nanoseconds and an event heap.
 *
 * @module
 */
import { IopfLabError } from "./errors.ts";

/** Identifies a scheduled event, for {@linkcode Simulator.cancel}. */
export type EventId = number;

/** A callback run by the simulator at its scheduled time. */
export type EventFn = () => void;

/** Options of {@linkcode Simulator.run}. */
export interface RunOptions {
  /** Stop before the first event later than this time (ns). Default: run until idle. */
  until?: number;
  /** Stop after this many events (a guard against runaway models). Default: unlimited. */
  maxEvents?: number;
}

/** Marks a cancelled event in the heap (it is skipped when it comes up). */
function cancelled(): void {}

/** Runs nothing: fills unused heap slots so the callback array stays packed. */
function unused(): void {}

/** Options of {@linkcode Simulator.run} when none are given (no allocation per call). */
const RUN_ALL: RunOptions = {};

/**
 * A discrete-event simulator on a virtual clock in nanoseconds.
 *
 * Events live in a binary heap kept in parallel arrays (time and sequence
 * number in typed arrays, the callback beside them), so scheduling does not
 * allocate per event beyond the callback itself. Events at equal times run
 * in the order they were scheduled. An event's id is its sequence number;
 * cancelling one (rare: timers) finds it in the heap and leaves a marker
 * that is skipped when it comes up.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Simulator } from "./simulator.ts";
 * const sim = new Simulator();
 * const seen: number[] = [];
 * sim.after(20, () => seen.push(sim.now));
 * sim.after(10, () => seen.push(sim.now));
 * sim.run();
 * assert(seen.join() === "10,20");
 * ```
 */
export class Simulator {
  #now = 0;
  #seq = 0;
  #size = 0;
  #times = new Float64Array(1024);
  #seqs = new Float64Array(1024);
  #fns: EventFn[] = packed(1024);
  #live = 0;
  #executed = 0;

  /** The current simulated time in ns. */
  get now(): number {
    return this.#now;
  }

  /** Number of events scheduled and not yet run or cancelled. */
  get pending(): number {
    return this.#live;
  }

  /** Number of events run so far. */
  get executed(): number {
    return this.#executed;
  }

  /** Schedules `fn` at absolute time `time`: finite and not before now, else EINVAL. */
  at(time: number, fn: EventFn): EventId {
    if (!(time >= this.#now && time < Infinity)) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot schedule an event at ${time} ns: ${
          time >= this.#now
            ? "the time must be finite"
            : `the clock is at ${this.#now} ns`
        }`,
        "time",
      );
    }
    const seq = this.#seq++;
    this.#push(time, seq, fn);
    this.#live++;
    return seq;
  }

  /** Schedules `fn` after `delay` ns from now: finite and not negative, else EINVAL. */
  after(delay: number, fn: EventFn): EventId {
    if (!(delay >= 0 && delay < Infinity)) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot schedule an event after ${delay} ns: a delay must be finite and not negative`,
        "delay",
      );
    }
    return this.at(this.#now + delay, fn);
  }

  /** Cancels a scheduled event; returns false if it already ran or was cancelled. */
  cancel(id: EventId): boolean {
    const seqs = this.#seqs, fns = this.#fns;
    for (let i = 0; i < this.#size; i++) {
      if (seqs[i] !== id) continue;
      if (fns[i] === cancelled) return false;
      fns[i] = cancelled;
      this.#live--;
      return true;
    }
    return false;
  }

  /**
   * Runs events in time order until none is left, or until the next event is
   * later than `until` (the clock then advances to `until`). Returns the
   * number of events run.
   */
  run(options: RunOptions = RUN_ALL): number {
    const until = options.until ?? Infinity;
    const max = options.maxEvents ?? Infinity;
    let n = 0;
    while (this.#size > 0 && n < max) {
      const t = this.#times[0]!;
      if (t > until) break;
      const fn = this.#fns[0]!;
      this.#pop();
      if (fn === cancelled) continue;
      this.#live--;
      this.#now = t;
      n++;
      this.#executed++;
      fn();
    }
    if (until !== Infinity && until > this.#now && n < max) this.#now = until;
    return n;
  }

  /** Runs until no event is left. */
  runUntilIdle(): number {
    return this.run();
  }

  /** Adds an event; `seq` is newer than every event in the heap. */
  #push(time: number, seq: number, fn: EventFn): void {
    if (this.#size === this.#times.length) this.#grow();
    const times = this.#times, seqs = this.#seqs, fns = this.#fns;
    let i = this.#size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = times[p]!;
      // Equal times: the parent is older (smaller seq), so it stays above.
      if (pt <= time) break;
      times[i] = pt;
      seqs[i] = seqs[p]!;
      fns[i] = fns[p]!;
      i = p;
    }
    times[i] = time;
    seqs[i] = seq;
    fns[i] = fn;
  }

  #pop(): void {
    const times = this.#times, seqs = this.#seqs, fns = this.#fns;
    const n = --this.#size;
    if (n === 0) {
      fns[0] = unused;
      return;
    }
    const t = times[n]!, s = seqs[n]!, f = fns[n]!;
    fns[n] = unused;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (
        r < n &&
        (times[r]! < times[l]! ||
          (times[r] === times[l] && seqs[r]! < seqs[l]!))
      ) c = r;
      const ct = times[c]!;
      if (t < ct || (t === ct && s < seqs[c]!)) break;
      times[i] = ct;
      seqs[i] = seqs[c]!;
      fns[i] = fns[c]!;
      i = c;
    }
    times[i] = t;
    seqs[i] = s;
    fns[i] = f;
  }

  #grow(): void {
    const n = this.#times.length * 2;
    const times = new Float64Array(n);
    times.set(this.#times);
    this.#times = times;
    const seqs = new Float64Array(n);
    seqs.set(this.#seqs);
    this.#seqs = seqs;
    const fns = packed(n);
    for (let i = 0; i < this.#size; i++) fns[i] = this.#fns[i]!;
    this.#fns = fns;
  }
}

/** `n` unused callbacks in a packed array (no holes: faster element access). */
function packed(n: number): EventFn[] {
  const a: EventFn[] = [];
  for (let i = 0; i < n; i++) a.push(unused);
  return a;
}
