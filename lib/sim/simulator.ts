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

/** Lanes at most (delays with a FIFO of their own). */
const MAX_LANES = 48;
/** Uses of a delay before it gets a lane. */
const LANE_AFTER = 32;
/** Slots of the delay table (a power of two), in pairs (two ways)... */
const HASH_SLOTS = 1024;
/** ... and the shift that maps a 32-bit hash onto them. */
const HASH_SHIFT = 22;

/**
 * Events scheduled with one delay, in a ring buffer. `now` never goes
 * back and sequence numbers grow, so a lane is always in (time, sequence)
 * order: a FIFO.
 */
class Lane {
  times = new Float64Array(64);
  seqs = new Float64Array(64);
  fns: EventFn[] = packed(64);
  head = 0;
  size = 0;
  mask = 63;

  push(time: number, seq: number, fn: EventFn): void {
    if (this.size > this.mask) this.#grow();
    const i = (this.head + this.size) & this.mask;
    this.times[i] = time;
    this.seqs[i] = seq;
    this.fns[i] = fn;
    this.size++;
  }

  #grow(): void {
    const n = (this.mask + 1) * 2;
    const times = new Float64Array(n), seqs = new Float64Array(n);
    const fns = packed(n);
    for (let k = 0; k < this.size; k++) {
      const j = (this.head + k) & this.mask;
      times[k] = this.times[j]!;
      seqs[k] = this.seqs[j]!;
      fns[k] = this.fns[j]!;
    }
    this.times = times;
    this.seqs = seqs;
    this.fns = fns;
    this.head = 0;
    this.mask = n - 1;
  }
}

/**
 * A discrete-event simulator on a virtual clock in nanoseconds.
 *
 * Events live in a binary heap kept in parallel arrays (time and sequence
 * number in typed arrays, the callback beside them), so scheduling does not
 * allocate per event beyond the callback itself. Events at equal times run
 * in the order they were scheduled. An event's id is its sequence number;
 * cancelling one (rare: timers) finds it and leaves a marker that is
 * skipped when it comes up.
 *
 * A model schedules most events with a few fixed delays (its costs), so a
 * delay used often gets a lane of its own: a FIFO, since the clock never
 * goes back, where scheduling is an append. The next event is the earliest
 * (time, then sequence number) of the heap's root and the lanes' heads,
 * which a small heap over the lanes keeps in order: the same order as one
 * heap of every event, at a fraction of the cost.
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
  /**
   * The delays seen lately, by a hash of the delay (two ways: slots h and
   * h ^ 1): a table, not a Map, since most delays of a model with spread
   * costs are used once and would only churn one.
   */
  readonly #hDelay = new Float64Array(HASH_SLOTS).fill(NaN);
  /** Of the delay in the same slot: its lane + 1 (> 0), or minus its uses (< 0); 0 for an empty slot. */
  readonly #hLane = new Int32Array(HASH_SLOTS);
  readonly #lanes: Lane[] = [];
  /** The non-empty lanes, a min-heap by their head's (time, seq). */
  readonly #lheap = new Int32Array(MAX_LANES);
  #lsize = 0;
  /** Each lane's head time (valid while the lane is not empty). */
  readonly #headT = new Float64Array(MAX_LANES);
  /** Each lane's head sequence number. */
  readonly #headS = new Float64Array(MAX_LANES);

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
    const hd = this.#hDelay;
    let h = (delay * 2654435761) >>> HASH_SHIFT;
    if (hd[h] !== delay) h ^= 1;
    const l = hd[h] === delay ? this.#hLane[h]! : 0;
    if (l > 0) {
      const k = l - 1;
      const lane = this.#lanes[k]!;
      const seq = this.#seq++;
      lane.push(this.#now + delay, seq, fn);
      if (lane.size === 1) {
        this.#headT[k] = this.#now + delay;
        this.#headS[k] = seq;
        this.#laneUp(k);
      }
      this.#live++;
      return seq;
    }
    this.#count(delay, h);
    return this.at(this.#now + delay, fn);
  }

  /**
   * Counts a use of `delay`, which is in slot `h` or in neither way. A delay
   * used more than {@linkcode LANE_AFTER} times while it stays in the table
   * gets a lane (this use still goes to the heap, the next ones to the
   * lane) and keeps its slot; a new delay takes the way, of the two, that
   * holds no lane and was used less, or none when both hold lanes.
   */
  #count(delay: number, h: number): void {
    const hd = this.#hDelay, hl = this.#hLane;
    if (hd[h] === delay) {
      const k = hl[h]!;
      if (k > -LANE_AFTER) hl[h] = k - 1;
      else if (this.#lanes.length < MAX_LANES) {
        hl[h] = this.#lanes.length + 1;
        this.#lanes.push(new Lane());
      }
      return;
    }
    const o = h ^ 1;
    const kh = hl[h]!, ko = hl[o]!;
    const w = kh > 0 ? (ko > 0 ? -1 : o) : ko > 0 || kh >= ko ? h : o;
    if (w >= 0) {
      hd[w] = delay;
      hl[w] = -1;
    }
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
    for (const lane of this.#lanes) {
      for (let k = 0; k < lane.size; k++) {
        const j = (lane.head + k) & lane.mask;
        if (lane.seqs[j] !== id) continue;
        if (lane.fns[j] === cancelled) return false;
        lane.fns[j] = cancelled;
        this.#live--;
        return true;
      }
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
    const lanes = this.#lanes, lheap = this.#lheap;
    const headT = this.#headT, headS = this.#headS;
    let n = 0;
    while (n < max) {
      let fn: EventFn, t: number;
      if (this.#lsize > 0) {
        const k = lheap[0]!;
        const lt = headT[k]!;
        if (
          this.#size > 0 &&
          (this.#times[0]! < lt ||
            (this.#times[0] === lt && this.#seqs[0]! < headS[k]!))
        ) {
          t = this.#times[0]!;
          if (t > until) break;
          fn = this.#fns[0]!;
          this.#pop();
        } else {
          t = lt;
          if (t > until) break;
          const lane = lanes[k]!;
          const h = lane.head;
          fn = lane.fns[h]!;
          lane.fns[h] = unused;
          const next = (h + 1) & lane.mask;
          lane.head = next;
          if (--lane.size > 0) {
            headT[k] = lane.times[next]!;
            headS[k] = lane.seqs[next]!;
            this.#laneDown(k);
          } else this.#laneDown(-1);
        }
      } else if (this.#size > 0) {
        t = this.#times[0]!;
        if (t > until) break;
        fn = this.#fns[0]!;
        this.#pop();
      } else break;
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

  /** Lane `k` became non-empty: adds it to the lane heap. */
  #laneUp(k: number): void {
    const h = this.#lheap, headT = this.#headT, headS = this.#headS;
    const kt = headT[k]!, ks = headS[k]!;
    let i = this.#lsize++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const q = h[p]!;
      const qt = headT[q]!;
      // Lane k goes above its parent only if its head comes first.
      if (!(kt < qt || (kt === qt && ks < headS[q]!))) break;
      h[i] = q;
      i = p;
    }
    h[i] = k;
  }

  /**
   * The root lane's head moved on (`k`, the root lane) or the lane emptied
   * (`k` = -1): restores the lane heap.
   */
  #laneDown(k: number): void {
    const h = this.#lheap;
    if (k < 0) {
      const n = --this.#lsize;
      if (n === 0) return;
      k = h[n]!;
    }
    const n = this.#lsize;
    const headT = this.#headT, headS = this.#headS;
    const kt = headT[k]!, ks = headS[k]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      let lc = h[c]!;
      let ct = headT[lc]!;
      if (c + 1 < n) {
        const rl = h[c + 1]!;
        const rt = headT[rl]!;
        if (rt < ct || (rt === ct && headS[rl]! < headS[lc]!)) {
          c++;
          lc = rl;
          ct = rt;
        }
      }
      // The earlier child goes up only if its head comes before lane k's.
      if (!(ct < kt || (ct === kt && headS[lc]! < ks))) break;
      h[i] = lc;
      i = c;
    }
    h[i] = k;
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
