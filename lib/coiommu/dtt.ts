/**
 * The DMA Tracking Table (DTT) of coIOMMU: guest memory shared with the
 * host, laid out like a page table indexed by guest frame number (GFN).
 * Leaf pages hold 1024 four-byte entries (a 10-bit stride); the upper
 * levels hold 512 eight-byte pointers (a 9-bit stride), as in the public
 * crosvm backend. A leaf entry is:
 *
 *     bit 31      PINNED    set by the host once the page is pinned and mapped
 *     bit 30      ACCESSED  set by the guest on every dma_map of the page
 *     bits 29..0  map count  dma_map minus dma_unmap calls covering the page
 *
 * The guest and the host update entries with atomic operations; in the
 * model every update is one indivisible step on the simulator, which is
 * what the atomics guarantee. Leaf pages are allocated when the guest first
 * marks a frame they cover, so a 1 TiB guest costs nothing until it maps.
 *
 * @module
 */
import { hex, IopfLabError } from "../sim/errors.ts";
import { PAGE_SIZE } from "../sim/units.ts";

/** Entry bit set by the host when the frame is pinned and mapped in the IOMMU. */
export const DTTE_PINNED = 0x8000_0000;
/** Entry bit set by the guest whenever it maps the frame for DMA. */
export const DTTE_ACCESSED = 0x4000_0000;
/** Mask of the map count in an entry. */
export const DTTE_MAP_COUNT_MASK = 0x3fff_ffff;
/** Entries per leaf page (4 KiB of 4-byte entries: a 10-bit stride). */
export const DTT_LEAF_ENTRIES = 1024;
/** Entries per upper-level page (4 KiB of 8-byte pointers: a 9-bit stride). */
export const DTT_UPPER_ENTRIES = 512;

/** Options of {@linkcode DmaTrackingTable}. */
export interface DmaTrackingTableOptions {
  /** Frames the table can index: GFNs 0..frames-1 (guest RAM top / 4 KiB). */
  readonly frames: number;
}

/**
 * The DTT of one VM. GFNs are guest-physical addresses divided by 4 KiB.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DmaTrackingTable, DTTE_ACCESSED, DTTE_PINNED } from "./dtt.ts";
 * const dtt = new DmaTrackingTable({ frames: 1 << 20 });
 * dtt.mark(0x40000); // the guest maps the frame at GPA 0x4000_0000
 * assert(dtt.entry(0x40000) === (DTTE_ACCESSED | 1));
 * dtt.setPinned(0x40000); // the host pinned it
 * dtt.unmark(0x40000); // the guest unmaps it
 * dtt.clearAccessed(0x40000); // an unpin pass gives it a second chance
 * // Exactly PINNED: the next pass may unpin it.
 * assert(dtt.compareExchange(0x40000, DTTE_PINNED, 0) === DTTE_PINNED);
 * ```
 */
export class DmaTrackingTable {
  /** Frames the table can index. */
  readonly frames: number;
  readonly #leaves: (Uint32Array | undefined)[];
  #leafPages = 0;

  /** An empty table for `frames` guest frames. */
  constructor(options: DmaTrackingTableOptions) {
    const { frames } = options;
    if (!Number.isInteger(frames) || frames <= 0 || frames > 2 ** 40) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create a DMA tracking table for ${frames} frames: expected a whole number from 1 to 2^40`,
      );
    }
    this.frames = frames;
    this.#leaves = new Array(Math.ceil(frames / DTT_LEAF_ENTRIES));
  }

  /** Levels of the table: one leaf level plus enough 9-bit upper levels to reach `frames`. */
  get levels(): number {
    let levels = 1;
    let covered = DTT_LEAF_ENTRIES;
    while (covered < this.frames) {
      covered *= DTT_UPPER_ENTRIES;
      levels++;
    }
    return levels;
  }

  /** Leaf pages allocated so far. */
  get leafPages(): number {
    return this.#leafPages;
  }

  /**
   * Guest memory the table occupies in bytes: its leaf pages, plus the
   * upper-level pages that point to them (one per 512 pages below when
   * they are dense), plus the root, which always exists.
   */
  get bytes(): number {
    const levels = this.levels;
    let pages = this.#leafPages;
    let below = this.#leafPages;
    for (let l = 1; l < levels; l++) {
      below = Math.ceil(below / DTT_UPPER_ENTRIES);
      if (l === levels - 1) below = 1;
      pages += below;
    }
    return Math.max(1, pages) * PAGE_SIZE;
  }

  /** The entry of `gfn` (0 when its leaf page does not exist yet). */
  entry(gfn: number): number {
    this.#check(gfn);
    const leaf = this.#leaves[Math.floor(gfn / DTT_LEAF_ENTRIES)];
    return leaf ? leaf[gfn % DTT_LEAF_ENTRIES]! : 0;
  }

  /**
   * The guest's mark on dma_map: one more map of the frame, ACCESSED set.
   * Returns the new entry. ENOSPC (nothing changed) at 2^30 - 1 maps.
   */
  mark(gfn: number): number {
    const leaf = this.#leaf(gfn, true)!;
    const i = gfn % DTT_LEAF_ENTRIES;
    const e = leaf[i]!;
    if ((e & DTTE_MAP_COUNT_MASK) === DTTE_MAP_COUNT_MASK) {
      throw new IopfLabError(
        "ENOSPC",
        `Cannot mark frame ${
          hex(gfn)
        } in the DMA tracking table: its map count is at the maximum`,
      );
    }
    const v = ((e + 1) | DTTE_ACCESSED) >>> 0;
    leaf[i] = v;
    return v;
  }

  /**
   * The guest's mark on dma_unmap: one map fewer (ACCESSED is left for the
   * host to clear). Returns the new entry. EINVAL (nothing changed) when
   * the frame has no map outstanding.
   */
  unmark(gfn: number): number {
    const leaf = this.#leaf(gfn, false);
    const i = gfn % DTT_LEAF_ENTRIES;
    const e = leaf ? leaf[i]! : 0;
    if ((e & DTTE_MAP_COUNT_MASK) === 0) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot unmark frame ${
          hex(gfn)
        } in the DMA tracking table: it has no map outstanding`,
      );
    }
    const v = (e - 1) >>> 0;
    leaf![i] = v;
    return v;
  }

  /** The host sets PINNED (an atomic OR) after pinning and mapping the frame. */
  setPinned(gfn: number): void {
    const leaf = this.#leaf(gfn, true)!;
    const i = gfn % DTT_LEAF_ENTRIES;
    leaf[i] = (leaf[i]! | DTTE_PINNED) >>> 0;
  }

  /** The host clears ACCESSED (an atomic AND): the frame's second chance. */
  clearAccessed(gfn: number): void {
    const leaf = this.#leaf(gfn, false);
    if (!leaf) return;
    const i = gfn % DTT_LEAF_ENTRIES;
    leaf[i] = (leaf[i]! & ~DTTE_ACCESSED) >>> 0;
  }

  /**
   * Atomic compare-and-exchange: when the entry equals `expected` it becomes
   * `value`. Returns the entry as it was (equal to `expected` on success).
   */
  compareExchange(gfn: number, expected: number, value: number): number {
    const leaf = this.#leaf(gfn, false);
    const i = gfn % DTT_LEAF_ENTRIES;
    const e = leaf ? leaf[i]! : 0;
    if (e === expected >>> 0) {
      if (leaf) leaf[i] = value >>> 0;
      else if (value !== 0) this.#leaf(gfn, true)![i] = value >>> 0;
    }
    return e;
  }

  #check(gfn: number): void {
    if (!Number.isInteger(gfn) || gfn < 0 || gfn >= this.frames) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot use frame ${
          Number.isInteger(gfn) ? hex(gfn) : String(gfn)
        } in the DMA tracking table: it covers frames 0-${
          hex(this.frames - 1)
        }`,
      );
    }
  }

  #leaf(gfn: number, create: boolean): Uint32Array | undefined {
    this.#check(gfn);
    const k = Math.floor(gfn / DTT_LEAF_ENTRIES);
    let leaf = this.#leaves[k];
    if (!leaf && create) {
      leaf = this.#leaves[k] = new Uint32Array(DTT_LEAF_ENTRIES);
      this.#leafPages++;
    }
    return leaf;
  }
}
