/**
 * The SMMUv3 circular queues (command, event and PRI queues): entries in a
 * typed array, producer and consumer indexes with a wrap bit, and the
 * overflow flag handshake (PROD.OVFLG / CONS.OVACKFLG).
 *
 * @module
 */
import { IopfLabError } from "../sim/errors.ts";

/** Options of a {@linkcode SmmuQueue}. */
export interface SmmuQueueOptions {
  /** log2 of the number of entries, 0..19 (LOG2SIZE). */
  log2Size: number;
  /** 32-bit words per entry: 4 for commands and PRI entries, 8 for events. */
  entryWords: number;
  /** A name for error messages ("evtq"). Default "queue". */
  name?: string;
}

/** The largest LOG2SIZE the architecture allows. */
export const QUEUE_MAX_LOG2 = 19;

/**
 * A circular queue of fixed-size entries in a `Uint32Array`.
 *
 * PROD and CONS hold an index of `log2Size` bits and a wrap bit above it: the
 * queue is empty when they are equal and full when the indexes are equal and
 * the wrap bits differ. When a producer finds the queue full it reports an
 * overflow with {@linkcode SmmuQueue.noteOverflow}: OVFLG toggles if no
 * overflow condition is already present (OVFLG == OVACKFLG); the consumer
 * acknowledges by copying OVFLG into OVACKFLG ({@linkcode SmmuQueue.ackOverflow}).
 * What an overflow means for new entries (the event queue keeps accepting
 * them, the PRI queue inhibits them until acknowledged) is the producer's
 * business.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SmmuQueue } from "./queue.ts";
 * const q = new SmmuQueue({ log2Size: 1, entryWords: 4 });
 * const e = new Uint32Array([1, 2, 3, 4]);
 * assert(q.push(e) && q.push(e) && !q.push(e)); // 2 entries, then full
 * q.noteOverflow();
 * assert(q.overflowPending);
 * const out = new Uint32Array(4);
 * assert(q.pop(out) && out[3] === 4 && q.length === 1);
 * q.ackOverflow();
 * assert(!q.overflowPending);
 * ```
 */
export class SmmuQueue {
  /** log2 of the number of entries. */
  readonly log2Size: number;
  /** Number of entries. */
  readonly entries: number;
  /** 32-bit words per entry. */
  readonly entryWords: number;
  /** The queue memory: `entries * entryWords` words. */
  readonly words: Uint32Array;
  /** Per-slot time stamp set by the producer (simulated ns), for latency metrics. */
  readonly stamps: Float64Array;
  readonly #mask: number;
  readonly #wrapMask: number;
  #prod = 0;
  #cons = 0;
  #ovflg = 0;
  #ovack = 0;
  /** Entries written so far. */
  written = 0;
  /** Entries a producer could not write (reported through {@linkcode noteOverflow}). */
  lost = 0;
  /** Overflow conditions entered (OVFLG toggles). */
  overflows = 0;

  /** Creates an empty queue. */
  constructor(options: SmmuQueueOptions) {
    const { log2Size, entryWords } = options;
    const name = options.name ?? "queue";
    if (
      !Number.isInteger(log2Size) || log2Size < 0 || log2Size > QUEUE_MAX_LOG2
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create ${name}: log2Size must be a whole number in 0..${QUEUE_MAX_LOG2}, got ${log2Size}`,
      );
    }
    if (!Number.isInteger(entryWords) || entryWords < 1) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create ${name}: entryWords must be a whole number >= 1, got ${entryWords}`,
      );
    }
    this.log2Size = log2Size;
    this.entries = 2 ** log2Size;
    this.entryWords = entryWords;
    this.words = new Uint32Array(this.entries * entryWords);
    this.stamps = new Float64Array(this.entries);
    this.#mask = this.entries - 1;
    this.#wrapMask = this.entries * 2 - 1;
  }

  /** The PROD register: WR index | WR_WRAP << log2Size | OVFLG << 31. */
  get prod(): number {
    return (this.#prod | (this.#ovflg << 31)) >>> 0;
  }

  /** The CONS register: RD index | RD_WRAP << log2Size | OVACKFLG << 31. */
  get cons(): number {
    return (this.#cons | (this.#ovack << 31)) >>> 0;
  }

  /** Entries waiting for the consumer. */
  get length(): number {
    return (this.#prod - this.#cons) & this.#wrapMask;
  }

  /** True when the consumer has nothing to read. */
  get isEmpty(): boolean {
    return this.#prod === this.#cons;
  }

  /** True when the producer cannot write: indexes equal, wrap bits differ. */
  get isFull(): boolean {
    return ((this.#prod ^ this.#cons) & this.#wrapMask) === this.entries;
  }

  /** True while an overflow condition is present (OVFLG != OVACKFLG). */
  get overflowPending(): boolean {
    return this.#ovflg !== this.#ovack;
  }

  /** Word offset of the next slot the producer writes (valid when not full). */
  get writeOffset(): number {
    return (this.#prod & this.#mask) * this.entryWords;
  }

  /** Word offset of the entry the consumer reads next (valid when not empty). */
  get readOffset(): number {
    return (this.#cons & this.#mask) * this.entryWords;
  }

  /** Slot index of the entry the consumer reads next. */
  get readSlot(): number {
    return this.#cons & this.#mask;
  }

  /**
   * Producer: copies one entry from `src[srcOffset ..]` and advances PROD.
   * Returns false (and writes nothing) when the queue is full.
   */
  push(src: Uint32Array, srcOffset = 0, stamp = 0): boolean {
    if (this.isFull) return false;
    const slot = this.#prod & this.#mask;
    const n = this.entryWords;
    this.words.set(src.subarray(srcOffset, srcOffset + n), slot * n);
    this.stamps[slot] = stamp;
    this.#prod = (this.#prod + 1) & this.#wrapMask;
    this.written++;
    return true;
  }

  /**
   * Producer: publishes an entry already written in place at
   * {@linkcode writeOffset}. Returns false when the queue is full.
   */
  commit(stamp = 0): boolean {
    if (this.isFull) return false;
    this.stamps[this.#prod & this.#mask] = stamp;
    this.#prod = (this.#prod + 1) & this.#wrapMask;
    this.written++;
    return true;
  }

  /**
   * Producer: an entry was discarded because the queue was full. Toggles
   * OVFLG unless an overflow condition is already present; returns true when
   * this call entered a new overflow condition.
   */
  noteOverflow(): boolean {
    this.lost++;
    if (this.#ovflg !== this.#ovack) return false;
    this.#ovflg ^= 1;
    this.overflows++;
    return true;
  }

  /** Consumer: copies the next entry into `out[outOffset ..]` and advances CONS. */
  pop(out: Uint32Array, outOffset = 0): boolean {
    if (this.isEmpty) return false;
    const n = this.entryWords;
    const o = (this.#cons & this.#mask) * n;
    out.set(this.words.subarray(o, o + n), outOffset);
    this.#cons = (this.#cons + 1) & this.#wrapMask;
    return true;
  }

  /** Consumer: advances CONS past the entry at {@linkcode readOffset}. */
  advance(): boolean {
    if (this.isEmpty) return false;
    this.#cons = (this.#cons + 1) & this.#wrapMask;
    return true;
  }

  /** Consumer: acknowledges the overflow condition (OVACKFLG = OVFLG). */
  ackOverflow(): void {
    this.#ovack = this.#ovflg;
  }
}
