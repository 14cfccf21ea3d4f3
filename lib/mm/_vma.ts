/**
 * Per-VMA page state, private to lib/mm.
 *
 * The state is kept per 2 MiB "chunk" of the VMA (512 pages of 4 KiB) in
 * typed arrays, with per-page arrays only where a chunk needs them:
 *
 * - `chunkFrame[c]`: host 2 MiB block number + 1 when chunk c is mapped by a
 *   huge folio (a THP or hugetlb 2 MiB page, or one 2 MiB part of a 1 GiB
 *   page); 0 otherwise;
 * - `pagePfn.get(c)`: PFN + 1 of each 4 KiB page (0 = not populated), only
 *   for chunks that hold 4 KiB pages (4k backing, THP fallback or split THP);
 * - `chunkPop[c]`: populated pages; `chunkPinned[c]`: pages with a pin count
 *   above 0; `chunkRef[c]`: referenced bit for the reclaim clock;
 * - pin counts: `chunkPin[c]` is the count of every page of the chunk while
 *   they are all equal (the common case: VFIO pins whole ranges);
 *   `pinDetail.get(c)` holds per-page counts otherwise;
 * - `swapBits.get(c)`: a 512-bit bitmap of pages that are in swap.
 *
 * A 1 TiB VMA costs about 5.5 MiB of chunk arrays; 64 GiB of populated
 * 4 KiB pages add 2 KiB per chunk (64 MiB).
 *
 * @module
 */
import type { Backing, VmArea } from "./types.ts";

/** Pages per chunk. */
export const CHUNK_PAGES = 512;
/** Highest pin count of a page. */
export const PIN_MAX = 0xffff;

/** The page state of one VMA. */
export class VmaState implements VmArea {
  readonly start: number;
  readonly end: number;
  readonly size: number;
  readonly backing: Backing;
  readonly pageSize: number;
  /** Number of 4 KiB pages. */
  readonly npages: number;
  /** Number of 2 MiB chunks. */
  readonly nChunks: number;
  /** True when pages of this VMA may be swapped out (not hugetlb). */
  readonly swappable: boolean;
  readonly chunkFrame: Uint32Array;
  readonly chunkPop: Uint16Array;
  readonly chunkPinned: Uint16Array;
  readonly chunkPin: Uint16Array;
  readonly chunkRef: Uint8Array;
  /**
   * PFN + 1 of each 4 KiB page of a chunk. Read it through
   * {@linkcode pfnArray} and change it only through {@linkcode setPfnArray},
   * {@linkcode deletePfnArray} and {@linkcode clearPfnArrays}: a one-entry
   * cache of the last chunk looked up sits in front (faults and pins touch
   * the same chunk again and again).
   */
  readonly pagePfn = new Map<number, Uint32Array>();
  /** Per-page pin counts of a chunk; changed only in this class (also cached). */
  readonly pinDetail = new Map<number, Uint16Array>();
  #pfnC = -1;
  #pfnArr: Uint32Array | undefined = undefined;
  #detC = -1;
  #detArr: Uint16Array | undefined = undefined;
  readonly swapBits = new Map<number, Uint32Array>();
  /** Populated 4 KiB pages. */
  populated = 0;
  /** Pages with a pin count above 0. */
  pinned = 0;
  /** Pages in swap. */
  swapped = 0;

  constructor(start: number, size: number, backing: Backing, pageSize: number) {
    this.start = start;
    this.size = size;
    this.end = start + size;
    this.backing = backing;
    this.pageSize = pageSize;
    this.npages = size / 4096;
    this.nChunks = Math.ceil(this.npages / CHUNK_PAGES);
    this.swappable = backing === "4k" || backing === "thp";
    this.chunkFrame = new Uint32Array(this.nChunks);
    this.chunkPop = new Uint16Array(this.nChunks);
    this.chunkPinned = new Uint16Array(this.nChunks);
    this.chunkPin = new Uint16Array(this.nChunks);
    this.chunkRef = new Uint8Array(this.nChunks);
  }

  /** The public view. */
  view(): VmArea {
    return Object.freeze({
      start: this.start,
      end: this.end,
      size: this.size,
      backing: this.backing,
      pageSize: this.pageSize,
    });
  }

  /** Pages of chunk c that lie inside the VMA (512 except maybe the last). */
  validPages(c: number): number {
    const rest = this.npages - c * CHUNK_PAGES;
    return rest < CHUNK_PAGES ? rest : CHUNK_PAGES;
  }

  /** The PFN array of chunk c (`pagePfn.get(c)`, through the cache). */
  pfnArray(c: number): Uint32Array | undefined {
    if (c !== this.#pfnC) {
      this.#pfnArr = this.pagePfn.get(c);
      this.#pfnC = c;
    }
    return this.#pfnArr;
  }

  /** Sets the PFN array of chunk c. */
  setPfnArray(c: number, arr: Uint32Array): void {
    this.pagePfn.set(c, arr);
    if (c === this.#pfnC) this.#pfnArr = arr;
  }

  /** Drops the PFN array of chunk c. */
  deletePfnArray(c: number): void {
    this.pagePfn.delete(c);
    if (c === this.#pfnC) this.#pfnArr = undefined;
  }

  /** Drops every PFN array. */
  clearPfnArrays(): void {
    this.pagePfn.clear();
    this.#pfnC = -1;
    this.#pfnArr = undefined;
  }

  /** The per-page pin counts of chunk c (`pinDetail.get(c)`, through the cache). */
  #detail(c: number): Uint16Array | undefined {
    if (c !== this.#detC) {
      this.#detArr = this.pinDetail.get(c);
      this.#detC = c;
    }
    return this.#detArr;
  }

  /** PFN of page p (index from the VMA start), or -1 if not populated. */
  pfnOf(p: number): number {
    const c = Math.floor(p / CHUNK_PAGES);
    const i = p - c * CHUNK_PAGES;
    const f = this.chunkFrame[c]!;
    if (f !== 0) return (f - 1) * CHUNK_PAGES + i;
    const arr = this.pfnArray(c);
    return arr ? arr[i]! - 1 : -1;
  }

  /** Pin count of page p. */
  pinOf(p: number): number {
    const c = Math.floor(p / CHUNK_PAGES);
    const det = this.#detail(c);
    return det ? det[p - c * CHUNK_PAGES]! : this.chunkPin[c]!;
  }

  /** Minimum pin count over pages [a, b) of chunk c. */
  pinMin(c: number, a: number, b: number): number {
    const det = this.#detail(c);
    if (!det) return this.chunkPin[c]!;
    let lo = PIN_MAX;
    for (let i = a; i < b; i++) if (det[i]! < lo) lo = det[i]!;
    return lo;
  }

  /** Maximum pin count over pages [a, b) of chunk c. */
  pinMax(c: number, a: number, b: number): number {
    const det = this.#detail(c);
    if (!det) return this.chunkPin[c]!;
    let hi = 0;
    for (let i = a; i < b; i++) if (det[i]! > hi) hi = det[i]!;
    return hi;
  }

  /**
   * Adds `delta` (+1 or -1) to the pin counts of pages [a, b) of chunk c;
   * the caller has checked the bounds. Returns the change in pages pinned.
   */
  addPins(c: number, a: number, b: number, delta: number): number {
    const valid = this.validPages(c);
    let det = this.#detail(c);
    if (!det) {
      const u = this.chunkPin[c]!;
      if (a === 0 && b === valid) {
        const nu = u + delta;
        this.chunkPin[c] = nu;
        const before = this.chunkPinned[c]!;
        const after = nu > 0 ? valid : 0;
        this.chunkPinned[c] = after;
        this.pinned += after - before;
        return after - before;
      }
      det = new Uint16Array(CHUNK_PAGES);
      det.fill(u, 0, valid);
      this.pinDetail.set(c, det);
      this.#detC = c;
      this.#detArr = det;
    }
    let d = 0;
    for (let i = a; i < b; i++) {
      const old = det[i]!;
      const nw = old + delta;
      det[i] = nw;
      if (old === 0) d++;
      else if (nw === 0) d--;
    }
    const pinnedNow = this.chunkPinned[c]! + d;
    this.chunkPinned[c] = pinnedNow;
    this.pinned += d;
    // Some pages pinned and some not: certainly not uniform (skips the scan
    // while a chunk fills page by page).
    if (pinnedNow > 0 && pinnedNow < valid) return d;
    // Back to the compact form when the chunk is uniform again.
    const first = det[0]!;
    let uniform = true;
    for (let i = 1; i < valid; i++) {
      if (det[i] !== first) {
        uniform = false;
        break;
      }
    }
    if (uniform) {
      this.chunkPin[c] = first;
      this.pinDetail.delete(c);
      if (c === this.#detC) this.#detArr = undefined;
    }
    return d;
  }

  /** True when page i of chunk c is in swap. */
  isSwapped(c: number, i: number): boolean {
    const bits = this.swapBits.get(c);
    return bits !== undefined && (bits[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  /** Marks page i of chunk c as in swap (it must not be). */
  setSwapped(c: number, i: number): void {
    let bits = this.swapBits.get(c);
    if (!bits) {
      bits = new Uint32Array(CHUNK_PAGES / 32);
      this.swapBits.set(c, bits);
    }
    bits[i >>> 5] = bits[i >>> 5]! | (1 << (i & 31));
    this.swapped++;
  }

  /** Clears the swap bit of page i of chunk c if set; returns whether it was. */
  clearSwapped(c: number, i: number): boolean {
    const bits = this.swapBits.get(c);
    if (!bits) return false;
    const m = 1 << (i & 31);
    const w = bits[i >>> 5]!;
    if ((w & m) === 0) return false;
    bits[i >>> 5] = w & ~m;
    this.swapped--;
    if (bits.every((x) => x === 0)) this.swapBits.delete(c);
    return true;
  }
}
