/**
 * The state of one address space, private to lib/mm: the fields of
 * `struct mm_struct` that its parts share. {@linkcode MmStruct} (VMAs,
 * mmap/munmap/madvise, locked_vm), gup.ts (pins and population), vmscan.ts
 * (reclaim to swap) and mmu_notifier.ts (notifiers and invalidation) take
 * this record as their first argument, as QEMU's SMMUv3 helpers take the
 * `SMMUState`; no part reads another's fields through getters.
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import { MAX_ADDRESS, SZ_4K } from "../sim/units.ts";
import type { HostMemory } from "./host_memory.ts";
import type { MmuNotifierOps } from "./types.ts";
import type { Piece, VmaState } from "./_vma.ts";

/** A registered MMU interval notifier: [start, end) and its callbacks. */
export interface NotifierEntry {
  /** First HVA of the interval. */
  start: number;
  /** One past the last HVA. */
  end: number;
  /** The callbacks. */
  ops: MmuNotifierOps;
  /** Invalidation sequence count (mmu_interval_notifier.invalidate_seq): bumped by every overlapping invalidation. */
  seq: number;
}

/**
 * Undo record of one chunk (or 1 GiB folio) populated by a populate call in
 * progress (gup.ts). The records live on a stack in {@linkcode MmState} and
 * are reused by later calls (no allocation per fault).
 */
export class Undo {
  /** The VMA (null while the record is free). */
  v: VmaState | null = null;
  /** The chunk (for a 1 GiB folio, its first chunk). */
  c = 0;
  /** A huge folio at c (else 4 KiB pages of chunk c). */
  huge = false;
  /**
   * Pages of chunk c populated as 4 KiB pages, in increasing order: the
   * first `n` entries while there are at most gup.ts's `UNDO_LIST_MAX`
   * (most calls populate one page). Allocated at the record's first 4 KiB
   * use and kept when the record is reused.
   */
  pages: Int32Array | null = null;
  /** Entries of `pages` in use. */
  n = 0;
  /** Beyond that, all of them as a bitmap (`pages` is then unused). */
  bits: Uint32Array | null = null;
  /** Of those, pages that were swapped in (bitmap), or null if none. */
  swapIn: Uint32Array | null = null;
}

/**
 * The shared state of one address space. Every field is set in the
 * constructor (one shape); the counters are cumulative unless said
 * otherwise.
 */
export class MmState {
  /** The host the address space allocates from. */
  readonly host: HostMemory;
  /** The host's cost profile. */
  readonly costs: Costs;
  /** The mappings, sorted by address. */
  readonly vmas: VmaState[] = [];
  /** Registered notifiers; replaced (never changed in place) on (un)registration. */
  notifiers: NotifierEntry[] = [];

  // --- gup.ts ---------------------------------------------------------------
  /** Highest populated 4 KiB page count seen. */
  peakPopulated = 0;
  /** Highest pinned 4 KiB page count seen. */
  peakPinned = 0;
  /** Pins held, summed over pages. */
  pinRefs = 0;
  /** 4 KiB pages read back from swap. */
  swapIns = 0;
  /** Page faults served. */
  faults = 0;
  /** ns of the populate call in progress. */
  opNs = 0;
  /** Pages populated by the populate call in progress. */
  opPages = 0;
  /** 4 KiB pages the populate call in progress zeroes. */
  opZero = 0;
  /**
   * When set, the next populate call does not charge its zeroing: it leaves
   * the pages to zero here for the caller (MmStruct.prefault with `out`).
   */
  deferZero: { zeroPages: number } | null = null;
  /** Populate calls in progress (a shrinker may call back in). */
  populating = 0;
  /** Undo records of the populate calls in progress: [0, undoTop) in use. */
  readonly undo: Undo[] = [];
  /** First free undo record. */
  undoTop = 0;
  /** Pages populated by the last populate call (its second result). */
  popPages = 0;
  /**
   * The one-piece list pinUserPages reuses (made at the first pin; busy
   * while a pin uses it). It keeps a reference to the VMA pinned last
   * until munmap drops it.
   */
  pinPiece: Piece[] | undefined = undefined;
  /** True while a pin uses {@linkcode pinPiece}. */
  pinPieceBusy = false;
  /** HVA range that reclaim must not touch (the range being populated): low end. */
  fenceLo = 0;
  /** High end (exclusive) of the fenced range. */
  fenceHi = 0;

  // --- vmscan.ts ------------------------------------------------------------
  /** Incremented before every direct reclaim (cached per-chunk state is then stale). */
  reclaimEpoch = 0;
  /** ns of the reclaim call in progress. */
  reclaimNs = 0;
  /** 4 KiB pages written to swap. */
  swapOuts = 0;
  /** Pinned 4 KiB pages MADV_DONTNEED took out of the CPU's view (cumulative). */
  discardedPinned = 0;
  /** Reclaim clock hand: VMA index. */
  handVma = 0;
  /** Reclaim clock hand: chunk. */
  handChunk = 0;

  // --- mmu_notifier.ts --------------------------------------------------------
  /** Invalidations in progress (notifier callbacks may call back in). */
  zapping = 0;
  /**
   * Moves whenever a page of the address space may stop backing its
   * address (every invalidateRange, every rollback of a failed fault-in):
   * a cache of hvaToPfn answers is valid while it stands still.
   */
  unmapGen = 0;

  /** An empty address space on `host`. */
  constructor(host: HostMemory) {
    this.host = host;
    this.costs = host.costs;
  }
}

/** EINVAL unless `n` is a whole number of pages an address space can hold. */
export function checkCount(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > MAX_ADDRESS / SZ_4K) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot ${what} ${String(n)} pages: not a whole number of pages`,
    );
  }
}
