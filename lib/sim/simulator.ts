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

/**
 * A discrete-event simulator on a virtual clock in nanoseconds.
 *
 * Events live in a binary heap kept in typed arrays (time, sequence number,
 * slot), so scheduling does not allocate per event beyond the callback
 * itself. Events at equal times run in the order they were scheduled.
 *
 * @example
 * ```ts
 * import { Simulator } from "./simulator.ts";
 * const sim = new Simulator();
 * const seen: number[] = [];
 * sim.after(20, () => seen.push(sim.now));
 * sim.after(10, () => seen.push(sim.now));
 * sim.run();
 * console.assert(seen.join() === "10,20");
 * ```
 */
export class Simulator {
  #now = 0;
  #seq = 0;
  #size = 0;
  #times = new Float64Array(1024);
  #seqs = new Float64Array(1024);
  #slots = new Int32Array(1024);
  #fns: (EventFn | undefined)[] = [];
  #ids = new Float64Array(1024);
  #freeSlots: number[] = [];
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

  /** Schedules `fn` at absolute time `time` (not before now). */
  at(time: number, fn: EventFn): EventId {
    if (!(time >= this.#now)) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot schedule an event at ${time} ns: the clock is at ${this.#now} ns`,
      );
    }
    const slot = this.#freeSlots.length > 0
      ? this.#freeSlots.pop()!
      : this.#fns.length;
    const id = this.#seq++;
    this.#fns[slot] = fn;
    if (slot >= this.#ids.length) this.#ids = grow(this.#ids);
    this.#ids[slot] = id;
    this.#push(time, id, slot);
    this.#live++;
    return id * 0x100000 + slot;
  }

  /** Schedules `fn` after `delay` ns from now. */
  after(delay: number, fn: EventFn): EventId {
    return this.at(this.#now + delay, fn);
  }

  /** Cancels a scheduled event; returns false if it already ran or was cancelled. */
  cancel(id: EventId): boolean {
    const slot = id % 0x100000;
    const seq = Math.floor(id / 0x100000);
    if (this.#fns[slot] === undefined || this.#ids[slot] !== seq) return false;
    this.#fns[slot] = undefined;
    this.#ids[slot] = -1;
    this.#live--;
    return true;
  }

  /**
   * Runs events in time order until none is left, or until the next event is
   * later than `until` (the clock then advances to `until`). Returns the
   * number of events run.
   */
  run(options: RunOptions = {}): number {
    const until = options.until ?? Infinity;
    const max = options.maxEvents ?? Infinity;
    let n = 0;
    while (this.#size > 0 && n < max) {
      const t = this.#times[0]!;
      if (t > until) break;
      const slot = this.#slots[0]!;
      this.#pop();
      const fn = this.#fns[slot];
      if (fn === undefined) continue; // cancelled
      this.#fns[slot] = undefined;
      this.#ids[slot] = -1;
      this.#freeSlots.push(slot);
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

  #push(time: number, seq: number, slot: number): void {
    if (this.#size === this.#times.length) {
      this.#times = grow(this.#times);
      this.#seqs = grow(this.#seqs);
      const s = new Int32Array(this.#slots.length * 2);
      s.set(this.#slots);
      this.#slots = s;
    }
    const times = this.#times, seqs = this.#seqs, slots = this.#slots;
    let i = this.#size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = times[p]!;
      if (pt < time || (pt === time && seqs[p]! < seq)) break;
      times[i] = pt;
      seqs[i] = seqs[p]!;
      slots[i] = slots[p]!;
      i = p;
    }
    times[i] = time;
    seqs[i] = seq;
    slots[i] = slot;
  }

  #pop(): void {
    const times = this.#times, seqs = this.#seqs, slots = this.#slots;
    const n = --this.#size;
    if (n === 0) return;
    const t = times[n]!, s = seqs[n]!, sl = slots[n]!;
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
      slots[i] = slots[c]!;
      i = c;
    }
    times[i] = t;
    seqs[i] = s;
    slots[i] = sl;
  }
}

function grow(a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> {
  const b = new Float64Array(a.length * 2);
  b.set(a);
  return b;
}
