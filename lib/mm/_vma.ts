/**
 * Per-VMA page state, private to lib/mm.
 *
 * The state is kept per 2 MiB "chunk" of the VMA (512 pages of 4 KiB) in
 * typed arrays, with per-page arrays only where a chunk needs them:
 *
 * - `chunkFrame[c]`: host 2 MiB block number + 1 when chunk c is mapped by a
 *   huge folio (a THP or hugetlb 2 MiB page, or one 2 MiB part of a 1 GiB
 *   page); 0 otherwise;
 * - the PFN store ({@linkcode PfnStore}): PFN + 1 of each 4 KiB page (0 =
 *   not populated), only for chunks that hold 4 KiB pages (4k backing, THP
 *   fallback or split THP): (page, PFN) pairs while the chunk holds at most
 *   8 pages, then 16-bit offsets from a per-chunk base frame (2 bytes a
 *   page) while the chunk's frames lie within 256 MiB of each other, which
 *   they do when the chunk was populated in one go; 32-bit PFNs otherwise;
 * - `chunkPop[c]`: populated pages; `chunkPinned[c]`: pages with a pin count
 *   above 0; `chunkRef[c]`: referenced bit for the reclaim clock;
 * - pin counts: `chunkPin[c]` is the count of every page of the chunk while
 *   they are all equal (the common case: VFIO pins whole ranges); a 512-bit
 *   bitmap of the pages pinned once while the counts are 0 and 1 (IOPF
 *   pinning page by page); `pinDetail.get(c)` holds per-page counts
 *   otherwise;
 * - `swapBits.get(c)`: a 512-bit bitmap of pages that are in swap.
 *
 * A 1 TiB VMA costs about 5.5 MiB of chunk arrays; 64 GiB of populated
 * 4 KiB pages add about 1 KiB per chunk (32 MiB).
 *
 * @module
 */
import { hex, IopfLabError } from "../sim/errors.ts";
import { SZ_1G, SZ_2M, SZ_4K } from "../sim/units.ts";
import type { Backing, VmArea } from "./types.ts";
import { SwapSpace } from "./host_memory.ts";
import { grown } from "../sim/typed.ts";

// The public types VmaState refers to, so that this file documents (and
// `deno doc --lint`s) on its own.
export type { Backing, VmArea };

/** Pages per chunk. */
export const CHUNK_PAGES = 512;
/** Highest pin count of a page. */
export const PIN_MAX = 0xffff;

const PAGES_PER_1G = SZ_1G / SZ_4K;

/** Words of a chunk's pinned-page bitmap (512 bits). */
const BITS_WORDS = CHUNK_PAGES / 32;

/** Chunks per slab of per-page pin counts. */
const DETAIL_SLAB = 64;

/** log2 of the chunks per slab of {@linkcode PfnStore}. */
const SLAB_SHIFT = 6;
const SLAB_SLOTS = 1 << SLAB_SHIFT;
const SLAB_MASK = SLAB_SLOTS - 1;
/** Largest offset a narrow slot holds (PFN + 1 - base). */
const NARROW_MAX = 0xffff;
/** How far below its first frame a narrow slot's base goes (half the window). */
const NARROW_BELOW = 0x8000;

/** Kinds of a {@linkcode PfnStore} slot. */
const NARROW = 0, WIDE = 1, SPARSE = 2;
/** Pages a sparse slot holds at most. */
const SPARSE_MAX = 8;

/**
 * PFN + 1 of each 4 KiB page (0: not populated) of the chunks that hold
 * 4 KiB pages, one slot per such chunk, in one of three forms:
 *
 * - sparse, while it holds at most {@linkcode SPARSE_MAX} pages: (page,
 *   value) pairs, 48 bytes, so that scattered first touches of a large
 *   guest (one page per 2 MiB chunk) do not each cost a 1 KiB array;
 * - narrow, while every value is within 1..65535 of its base (set from its
 *   first value, half a window below it): a 16-bit offset per page, in
 *   slabs of 64 such arrays;
 * - wide: 32-bit PFNs, for good (frames a chunk got at different times
 *   from far-apart blocks).
 *
 * Whatever the form, {@linkcode get} returns exactly the value
 * {@linkcode set} stored. A chunk's slot is found through a typed index by
 * chunk (4 bytes per chunk up to the highest one with a slot), and the
 * chunks are listed in the order their slots were made (the order
 * {@linkcode chunks} reports, which is the order teardown frees frames
 * in), as a Map would keep them.
 */
export class PfnStore {
  /** Chunk -> slot + 1 (0: none), grown to the highest chunk seen. */
  #slotOf = new Int32Array(0);
  /** Chunks in the order their slots were made; -1 where one was dropped. */
  #order = new Int32Array(64);
  /** Entries of `#order` used, and how many of them are live. */
  #orderLen = 0;
  #live = 0;
  /** Slot -> its entry in `#order`. */
  #orderAt = new Int32Array(4);
  /** Slot -> its form (NARROW, WIDE, SPARSE). */
  #kind = new Uint8Array(4);
  /** Narrow arrays: narrow index n, page i at `#narrow[n >> 6][(n & 63) * 512 + i]`. */
  readonly #narrow: Uint16Array[] = [];
  /** Slot -> its narrow index (narrow slots). */
  #nar = new Int32Array(4);
  readonly #narFree: number[] = [];
  #narNext = 0;
  /** Base of each narrow slot (a value stored is base + offset). */
  #base = new Float64Array(4);
  /** Slot -> its 32-bit values, for wide slots. */
  readonly #wide = new Map<number, Uint32Array>();
  /** Per slot: no page below this index holds a value (a lower bound of the first). */
  #low = new Uint16Array(4);
  /** Sparse slots: pages held, and (page, value) pairs at `s * SPARSE_MAX + j`. */
  #spN = new Uint8Array(4);
  #spPage = new Uint16Array(4 * SPARSE_MAX);
  #spVal = new Uint32Array(4 * SPARSE_MAX);
  readonly #free: number[] = [];
  #next = 0;
  #lastC = -1;
  #lastS = -1;

  /** Chunks with a slot. */
  get size(): number {
    return this.#live;
  }

  /** The slot of chunk c, or -1 if it has none. */
  slotOf(c: number): number {
    if (c !== this.#lastC) {
      this.#lastS = c < this.#slotOf.length ? this.#slotOf[c]! - 1 : -1;
      this.#lastC = c;
    }
    return this.#lastS;
  }

  /**
   * A new slot for chunk c (which has none), every value 0; `pages` says
   * how many pages the caller is about to set (more than a sparse slot
   * holds: a narrow one at once).
   */
  create(c: number, pages = 1): number {
    const s = this.#free.pop() ?? this.#next++;
    if (s >= this.#base.length) this.#growSlots();
    this.#low[s] = CHUNK_PAGES;
    if (pages > SPARSE_MAX) this.#makeNarrow(s);
    else {
      this.#kind[s] = SPARSE;
      this.#spN[s] = 0;
    }
    if (c >= this.#slotOf.length) {
      const n = Math.max(c + 1, this.#slotOf.length * 2, 64);
      const a = new Int32Array(n);
      a.set(this.#slotOf);
      this.#slotOf = a;
    }
    this.#slotOf[c] = s + 1;
    if (this.#orderLen === this.#order.length) this.#compactOrder();
    this.#orderAt[s] = this.#orderLen;
    this.#order[this.#orderLen++] = c;
    this.#live++;
    if (c === this.#lastC) this.#lastS = s;
    return s;
  }

  /** Doubles the per-slot arrays. */
  #growSlots(): void {
    const n = this.#base.length * 2;
    this.#base = grown(this.#base, n);
    this.#kind = grown(this.#kind, n);
    this.#low = grown(this.#low, n);
    this.#orderAt = grown(this.#orderAt, n);
    this.#nar = grown(this.#nar, n);
    this.#spN = grown(this.#spN, n);
    this.#spPage = grown(this.#spPage, n * SPARSE_MAX);
    this.#spVal = grown(this.#spVal, n * SPARSE_MAX);
  }

  /** Gives slot s a narrow array of zeros (its base unset). */
  #makeNarrow(s: number): void {
    const n = this.#narFree.pop() ?? this.#narNext++;
    const si = n >>> SLAB_SHIFT;
    const inSlab = (n & SLAB_MASK) + 1;
    const slab = this.#narrow[si];
    if (slab === undefined || slab.length < inSlab * CHUNK_PAGES) {
      // Slab 0 doubles up to a full slab; later slabs are full at once.
      const had = (slab?.length ?? 0) / CHUNK_PAGES;
      const k = si === 0
        ? Math.min(SLAB_SLOTS, Math.max(inSlab, had * 2))
        : SLAB_SLOTS;
      const d = new Uint16Array(k * CHUNK_PAGES);
      if (slab) d.set(slab);
      this.#narrow[si] = d;
    } else {
      const o = (n & SLAB_MASK) * CHUNK_PAGES;
      slab.fill(0, o, o + CHUNK_PAGES);
    }
    this.#kind[s] = NARROW;
    this.#nar[s] = n;
    this.#base[s] = -1;
  }

  /** Drops the holes of `#order` (or doubles it when it has few). */
  #compactOrder(): void {
    const old = this.#order;
    if (this.#live === this.#orderLen) {
      // No holes: positions stay, the array doubles.
      const order = new Int32Array(old.length * 2);
      order.set(old);
      this.#order = order;
      return;
    }
    const order = this.#live * 2 > old.length
      ? new Int32Array(old.length * 2)
      : old;
    let n = 0;
    for (let i = 0; i < this.#orderLen; i++) {
      const c = old[i]!;
      if (c < 0) continue;
      order[n] = c;
      this.#orderAt[this.#slotOf[c]! - 1] = n++;
    }
    this.#order = order;
    this.#orderLen = n;
  }

  /** The value of page i of slot s (PFN + 1, or 0). */
  get(s: number, i: number): number {
    const k = this.#kind[s]!;
    if (k === NARROW) {
      const n = this.#nar[s]!;
      const e = this.#narrow[n >>> SLAB_SHIFT]![((n & SLAB_MASK) << 9) | i]!;
      return e === 0 ? 0 : this.#base[s]! + e;
    }
    if (k === WIDE) return this.#wide.get(s)![i]!;
    const o = s * SPARSE_MAX, end = o + this.#spN[s]!, pg = this.#spPage;
    for (let j = o; j < end; j++) if (pg[j] === i) return this.#spVal[j]!;
    return 0;
  }

  /**
   * The first page at or after `from` of slot s that holds a value, or 512
   * when none does: what a scan for populated pages skips to.
   */
  nextSet(s: number, from: number): number {
    const k = this.#kind[s]!;
    if (k === SPARSE) {
      let best = CHUNK_PAGES;
      const o = s * SPARSE_MAX, end = o + this.#spN[s]!, pg = this.#spPage;
      for (let j = o; j < end; j++) {
        const p = pg[j]!;
        if (p >= from && p < best) best = p;
      }
      return best;
    }
    const low = this.#low[s]!;
    let i = from > low ? from : low;
    if (k === WIDE) {
      const w = this.#wide.get(s)!;
      while (i < CHUNK_PAGES && w[i] === 0) i++;
    } else {
      const n = this.#nar[s]!;
      const slab = this.#narrow[n >>> SLAB_SHIFT]!;
      const o = (n & SLAB_MASK) << 9;
      while (i < CHUNK_PAGES && slab[o + i] === 0) i++;
    }
    if (from <= low) this.#low[s] = i;
    return i;
  }

  /** Sets page i of slot s to `value` (PFN + 1 below 2^32, or 0). */
  set(s: number, i: number, value: number): void {
    if (value !== 0 && i < this.#low[s]!) this.#low[s] = i;
    const k = this.#kind[s]!;
    if (k === SPARSE) {
      if (this.#setSparse(s, i, value)) return;
      // Full: a narrow array with what it held, then this value.
      const o = s * SPARSE_MAX, n = this.#spN[s]!;
      const pages = this.#spPage.slice(o, o + n);
      const vals = this.#spVal.slice(o, o + n);
      this.#makeNarrow(s);
      for (let j = 0; j < n; j++) this.set(s, pages[j]!, vals[j]!);
      this.set(s, i, value);
      return;
    }
    if (k === WIDE) {
      this.#wide.get(s)![i] = value;
      return;
    }
    const n = this.#nar[s]!;
    const slab = this.#narrow[n >>> SLAB_SHIFT]!;
    const o0 = (n & SLAB_MASK) << 9;
    if (value === 0) {
      slab[o0 | i] = 0;
      return;
    }
    let base = this.#base[s]!;
    if (base < 0) {
      base = value > NARROW_BELOW ? value - NARROW_BELOW : 0;
      this.#base[s] = base;
    }
    const e = value - base;
    if (e >= 1 && e <= NARROW_MAX) {
      slab[o0 | i] = e;
      return;
    }
    // Widen: copy the slot's values into 32 bits.
    const w = new Uint32Array(CHUNK_PAGES);
    for (let k = 0; k < CHUNK_PAGES; k++) {
      const x = slab[o0 + k]!;
      w[k] = x === 0 ? 0 : base + x;
    }
    w[i] = value;
    this.#wide.set(s, w);
    this.#kind[s] = WIDE;
    this.#narFree.push(n);
  }

  /** Sets page i of sparse slot s; false when it is full and i is new. */
  #setSparse(s: number, i: number, value: number): boolean {
    const o = s * SPARSE_MAX, n = this.#spN[s]!, pg = this.#spPage;
    for (let j = o; j < o + n; j++) {
      if (pg[j] !== i) continue;
      if (value !== 0) this.#spVal[j] = value;
      else {
        // Removed: the last pair takes its place.
        pg[j] = pg[o + n - 1]!;
        this.#spVal[j] = this.#spVal[o + n - 1]!;
        this.#spN[s] = n - 1;
      }
      return true;
    }
    if (value === 0) return true;
    if (n === SPARSE_MAX) return false;
    pg[o + n] = i;
    this.#spVal[o + n] = value;
    this.#spN[s] = n + 1;
    return true;
  }

  /** Drops the slot of chunk c (if any). */
  delete(c: number): void {
    const s = c < this.#slotOf.length ? this.#slotOf[c]! - 1 : -1;
    if (s < 0) return;
    this.#slotOf[c] = 0;
    this.#order[this.#orderAt[s]!] = -1;
    this.#live--;
    const k = this.#kind[s]!;
    if (k === WIDE) this.#wide.delete(s);
    else if (k === NARROW) this.#narFree.push(this.#nar[s]!);
    this.#free.push(s);
    if (c === this.#lastC) this.#lastS = -1;
  }

  /** Drops every slot. */
  clear(): void {
    this.#slotOf = new Int32Array(0);
    this.#order = new Int32Array(64);
    this.#orderLen = 0;
    this.#live = 0;
    this.#orderAt = new Int32Array(4);
    this.#kind = new Uint8Array(4);
    this.#narrow.length = 0;
    this.#nar = new Int32Array(4);
    this.#narFree.length = 0;
    this.#narNext = 0;
    this.#wide.clear();
    this.#base = new Float64Array(4);
    this.#low = new Uint16Array(4);
    this.#spN = new Uint8Array(4);
    this.#spPage = new Uint16Array(4 * SPARSE_MAX);
    this.#spVal = new Uint32Array(4 * SPARSE_MAX);
    this.#free.length = 0;
    this.#next = 0;
    this.#lastC = -1;
    this.#lastS = -1;
  }

  /** The chunks with a slot and their slots, in the order the slots were made. */
  *chunks(): IterableIterator<[number, number]> {
    for (let i = 0; i < this.#orderLen; i++) {
      const c = this.#order[i]!;
      if (c >= 0) yield [c, this.#slotOf[c]! - 1];
    }
  }

  /** Bytes of typed memory the store holds (for tests and benches). */
  get bytes(): number {
    let n = this.#base.byteLength + this.#kind.byteLength +
      this.#low.byteLength + this.#nar.byteLength + this.#spN.byteLength +
      this.#spPage.byteLength + this.#spVal.byteLength +
      this.#slotOf.byteLength + this.#order.byteLength +
      this.#orderAt.byteLength;
    for (const a of this.#narrow) n += a.byteLength;
    for (const a of this.#wide.values()) n += a.byteLength;
    return n;
  }

  /** Slots widened to 32-bit PFNs. */
  get wideSlots(): number {
    return this.#wide.size;
  }
}

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
  /** Per chunk: host 2 MiB block number + 1 when mapped by a huge folio, else 0. */
  readonly chunkFrame: Uint32Array;
  /** Per chunk: populated 4 KiB pages. */
  readonly chunkPop: Uint16Array;
  /** Per chunk: pages with a pin count above 0. */
  readonly chunkPinned: Uint16Array;
  /** Per chunk: the pin count of every page while they are all equal. */
  readonly chunkPin: Uint16Array;
  /** Per chunk: the referenced bit of the reclaim clock. */
  readonly chunkRef: Uint8Array;
  /** PFN + 1 of each 4 KiB page of the chunks that hold 4 KiB pages. */
  readonly pfns = new PfnStore();
  /** Per-page pin counts of a chunk; changed only in this class (also cached). */
  readonly pinDetail = new Map<number, Uint16Array>();
  /**
   * Pages MADV_DONTNEED took out of the CPU's view while pinned: page index
   * -> the PFNs their pins still hold (the device's view); freed when the
   * page's last pin goes.
   */
  readonly detached = new Map<number, number[]>();
  #detC = -1;
  #detArr: Uint16Array | undefined = undefined;
  /** Per-page pin count arrays not in use (views into slabs). */
  readonly #freeDetail: Uint16Array[] = [];
  /** Chunk -> its pinned-page bitmap slot + 1 (0: none); made on first use. */
  #bitIdx = new Int32Array(0);
  /** The bitmaps, {@linkcode BITS_WORDS} words per slot. */
  #bits = new Uint32Array(0);
  #nBits = 0;
  readonly #freeBits: number[] = [];
  /** Per chunk with pages in swap: a 512-bit bitmap of them. */
  readonly swapBits = new Map<number, Uint32Array>();
  /** Populated 4 KiB pages. */
  populated = 0;
  /** Pages with a pin count above 0. */
  pinned = 0;
  /** Pages in swap. */
  swapped = 0;

  /** The host's swap space, which {@linkcode setSwapped} and {@linkcode clearSwapped} account in. */
  readonly swap: SwapSpace;

  /** An empty VMA of `size` bytes at `start` (checked by the caller), swapping to `swap`. */
  constructor(
    start: number,
    size: number,
    backing: Backing,
    pageSize: number,
    swap: SwapSpace = new SwapSpace(Infinity),
  ) {
    this.swap = swap;
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

  /**
   * A per-page pin count array of 512 zeros: a view into a slab of
   * {@linkcode DETAIL_SLAB} such arrays, reused once its chunk is uniform
   * again (a chunk that IOPF pins page by page needs one until it is full,
   * and a fresh typed array per chunk cost more than the pins).
   */
  #takeDetail(): Uint16Array {
    const d = this.#freeDetail.pop();
    if (d !== undefined) return d.fill(0);
    const slab = new Uint16Array(DETAIL_SLAB * CHUNK_PAGES);
    for (let k = DETAIL_SLAB - 1; k > 0; k--) {
      this.#freeDetail.push(
        slab.subarray(k * CHUNK_PAGES, (k + 1) * CHUNK_PAGES),
      );
    }
    return slab.subarray(0, CHUNK_PAGES);
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
    const s = this.pfns.slotOf(c);
    return s < 0 ? -1 : this.pfns.get(s, i) - 1;
  }

  /**
   * The slot of chunk c's pinned-page bitmap (its pages' counts are 1 where
   * a bit is set, 0 elsewhere), or -1: the form of a chunk IOPF pins page
   * by page, 64 bytes instead of 1 KiB of counts.
   */
  #bitsOf(c: number): number {
    const idx = this.#bitIdx;
    return c < idx.length ? idx[c]! - 1 : -1;
  }

  /** A bitmap slot (all bits clear) for chunk c, which has none. */
  #takeBits(c: number): number {
    if (this.#bitIdx.length === 0) this.#bitIdx = new Int32Array(this.nChunks);
    let slot = this.#freeBits.pop();
    if (slot === undefined) {
      slot = this.#nBits++;
      if (slot * BITS_WORDS >= this.#bits.length) {
        const n = new Uint32Array(Math.max(this.#bits.length * 2, 64));
        n.set(this.#bits);
        this.#bits = n;
      }
    } else this.#bits.fill(0, slot * BITS_WORDS, (slot + 1) * BITS_WORDS);
    this.#bitIdx[c] = slot + 1;
    return slot;
  }

  /** Pin count of page p. */
  pinOf(p: number): number {
    const c = Math.floor(p / CHUNK_PAGES);
    const i = p - c * CHUNK_PAGES;
    const bs = this.#bitsOf(c);
    if (bs >= 0) {
      return (this.#bits[bs * BITS_WORDS + (i >>> 5)]! >>> (i & 31)) & 1;
    }
    const det = this.#detail(c);
    return det ? det[i]! : this.chunkPin[c]!;
  }

  /** Minimum pin count over pages [a, b) of chunk c. */
  pinMin(c: number, a: number, b: number): number {
    const bs = this.#bitsOf(c);
    if (bs >= 0) return this.#allBits(bs, a, b) ? 1 : 0;
    const det = this.#detail(c);
    if (!det) return this.chunkPin[c]!;
    let lo = PIN_MAX;
    for (let i = a; i < b; i++) if (det[i]! < lo) lo = det[i]!;
    return lo;
  }

  /** Maximum pin count over pages [a, b) of chunk c. */
  pinMax(c: number, a: number, b: number): number {
    const bs = this.#bitsOf(c);
    if (bs >= 0) return this.#anyBits(bs, a, b) ? 1 : 0;
    const det = this.#detail(c);
    if (!det) return this.chunkPin[c]!;
    let hi = 0;
    for (let i = a; i < b; i++) if (det[i]! > hi) hi = det[i]!;
    return hi;
  }

  /** Whether every bit [a, b) of bitmap slot bs is set. */
  #allBits(bs: number, a: number, b: number): boolean {
    const bits = this.#bits, o = bs * BITS_WORDS;
    for (let i = a; i < b; i++) {
      if (((bits[o + (i >>> 5)]! >>> (i & 31)) & 1) === 0) return false;
    }
    return true;
  }

  /** Whether any bit [a, b) of bitmap slot bs is set. */
  #anyBits(bs: number, a: number, b: number): boolean {
    const bits = this.#bits, o = bs * BITS_WORDS;
    for (let i = a; i < b; i++) {
      if (((bits[o + (i >>> 5)]! >>> (i & 31)) & 1) !== 0) return true;
    }
    return false;
  }

  /** Drops chunk c's bitmap slot bs; the chunk is uniform at count `u`. */
  #dropBits(c: number, bs: number, u: number): void {
    this.#bitIdx[c] = 0;
    this.#freeBits.push(bs);
    this.chunkPin[c] = u;
  }

  /**
   * Adds `delta` (+1 or -1) to the pin counts of pages [a, b) of chunk c;
   * the caller has checked the bounds. Returns the change in pages pinned.
   */
  addPins(c: number, a: number, b: number, delta: number): number {
    const valid = this.validPages(c);
    let bs = this.#bitsOf(c);
    let det = bs >= 0 ? undefined : this.#detail(c);
    if (bs < 0 && !det) {
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
      if (u === 0 && delta === 1) bs = this.#takeBits(c);
      else {
        det = this.#takeDetail();
        det.fill(u, 0, valid);
        this.#setDetail(c, det);
      }
    }
    if (bs >= 0) {
      // Counts 0 and 1 only: a bitmap while that holds.
      const ok = delta === 1 ? !this.#anyBits(bs, a, b) : true;
      if (ok) {
        const bits = this.#bits, o = bs * BITS_WORDS;
        for (let i = a; i < b; i++) {
          const w = o + (i >>> 5), m = 1 << (i & 31);
          bits[w] = delta === 1 ? bits[w]! | m : bits[w]! & ~m;
        }
        const d = delta * (b - a);
        const pinnedNow = this.chunkPinned[c]! + d;
        this.chunkPinned[c] = pinnedNow;
        this.pinned += d;
        if (pinnedNow === 0) this.#dropBits(c, bs, 0);
        else if (pinnedNow === valid) this.#dropBits(c, bs, 1);
        return d;
      }
      // A page pinned twice: per-page counts from here on.
      det = this.#takeDetail();
      const bits = this.#bits, o = bs * BITS_WORDS;
      for (let i = 0; i < valid; i++) {
        det[i] = (bits[o + (i >>> 5)]! >>> (i & 31)) & 1;
      }
      this.#bitIdx[c] = 0;
      this.#freeBits.push(bs);
      this.#setDetail(c, det);
    }
    const dt = det!;
    let d = 0;
    for (let i = a; i < b; i++) {
      const old = dt[i]!;
      const nw = old + delta;
      dt[i] = nw;
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
    const first = dt[0]!;
    let uniform = true;
    for (let i = 1; i < valid; i++) {
      if (dt[i] !== first) {
        uniform = false;
        break;
      }
    }
    if (uniform) {
      this.chunkPin[c] = first;
      this.pinDetail.delete(c);
      this.#freeDetail.push(dt);
      if (c === this.#detC) this.#detArr = undefined;
    }
    return d;
  }

  /** Gives chunk c the per-page counts `det`. */
  #setDetail(c: number, det: Uint16Array): void {
    this.pinDetail.set(c, det);
    this.#detC = c;
    this.#detArr = det;
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
    this.swap.take(1);
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
    this.swap.give(1);
    if (bits.every((x) => x === 0)) this.swapBits.delete(c);
    return true;
  }
}

/**
 * What {@linkcode zapPages} (which returns the pinned pages it took out of
 * the CPU's view, see {@linkcode VmaState.detached}) and {@linkcode freeAllPages} need of the
 * `HostMemory` the pages came from.
 */
export interface PageFrames {
  /** Frees the page of `pageSize` bytes at `pfn`. */
  freePage(pfn: number, pageSize: number): void;
  /** Splits the 2 MiB page at `pfn` into 512 pages of 4 KiB. */
  splitHugePage(pfn: number): void;
}

// --- lookups (mm/mmap.c) -----------------------------------------------------

/** Pages [p0, p1) (indices from the VMA start) of one VMA. */
export interface Piece {
  /** The VMA. */
  v: VmaState;
  /** First page (index from the VMA start). */
  p0: number;
  /** One past the last page. */
  p1: number;
}

/** find_vma: the VMA of the sorted `vmas` containing `hva`, if any. */
export function findVma(
  vmas: readonly VmaState[],
  hva: number,
): VmaState | undefined {
  let lo = 0, hi = vmas.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = vmas[mid]!;
    if (hva < v.start) hi = mid - 1;
    else if (hva >= v.end) lo = mid + 1;
    else return v;
  }
  return undefined;
}

/**
 * Splits the pages of the bytes [hva, hva + size) into per-VMA pieces in
 * address order; throws `code` if any byte is unmapped (`what` names the
 * operation in the message).
 */
export function resolvePieces(
  vmas: readonly VmaState[],
  hva: number,
  size: number,
  what: string,
  code: "EFAULT" | "EINVAL" | "ENOMEM",
): Piece[] {
  const lo = Math.floor(hva / SZ_4K) * SZ_4K;
  const hi = Math.ceil((hva + size) / SZ_4K) * SZ_4K;
  const v0 = findVma(vmas, lo);
  if (v0 !== undefined && hi <= v0.end) {
    // One VMA (the common case): a one-element array, no growth.
    return [{
      v: v0,
      p0: (lo - v0.start) / SZ_4K,
      p1: (hi - v0.start) / SZ_4K,
    }];
  }
  const pieces: Piece[] = [];
  let addr = lo;
  while (addr < hi) {
    const v = findVma(vmas, addr);
    if (!v) {
      throw new IopfLabError(
        code,
        `Cannot ${what} HVA range ${hex(hva)}-${hex(hva + size)}: ${
          hex(addr)
        } is not mapped`,
      );
    }
    const end = Math.min(hi, v.end);
    pieces.push({
      v,
      p0: (addr - v.start) / SZ_4K,
      p1: (end - v.start) / SZ_4K,
    });
    addr = end;
  }
  return pieces;
}

/** Sum of the VMAs' populated 4 KiB pages. */
export function populatedPages(vmas: readonly VmaState[]): number {
  let n = 0;
  for (let i = 0; i < vmas.length; i++) n += vmas[i]!.populated;
  return n;
}

/** Sum of the VMAs' pinned 4 KiB pages. */
export function pinnedPages(vmas: readonly VmaState[]): number {
  let n = 0;
  for (let i = 0; i < vmas.length; i++) n += vmas[i]!.pinned;
  return n;
}

// --- per-chunk walks ---------------------------------------------------------
//
// Each walks the 2 MiB chunks of pages [p0, p1) of one VMA, with the page
// range [a, b) of each chunk: plain loops (they run on every pin and fault,
// so no callback and no closure).

/**
 * The first page (index from the VMA start) of the first chunk of [p0, p1)
 * in which pinning once more would overflow a pin count; -1 if none.
 */
export function pinOverflowPage(v: VmaState, p0: number, p1: number): number {
  const c1 = Math.floor((p1 - 1) / CHUNK_PAGES);
  for (let c = Math.floor(p0 / CHUNK_PAGES); c <= c1; c++) {
    const base = c * CHUNK_PAGES;
    const a = Math.max(p0, base) - base;
    if (v.pinMax(c, a, Math.min(p1, base + CHUNK_PAGES) - base) >= PIN_MAX) {
      return base + a;
    }
  }
  return -1;
}

/**
 * Adds one pin to each page of [p0, p1) (checked by
 * {@linkcode pinOverflowPage}) and marks the chunks referenced. Returns the
 * huge folios the range touches (each 2 MiB folio, each 1 GiB folio once).
 */
export function pinPages(v: VmaState, p0: number, p1: number): number {
  let huge = 0;
  let lastFolio = -1;
  const c1 = Math.floor((p1 - 1) / CHUNK_PAGES);
  for (let c = Math.floor(p0 / CHUNK_PAGES); c <= c1; c++) {
    const base = c * CHUNK_PAGES;
    v.addPins(
      c,
      Math.max(p0, base) - base,
      Math.min(p1, base + CHUNK_PAGES) - base,
      1,
    );
    v.chunkRef[c] = 1;
    if (v.chunkFrame[c] !== 0) {
      if (v.backing === "hugetlb-1g") {
        const f = Math.floor(c / CHUNK_PAGES);
        if (f !== lastFolio) huge++;
        lastFolio = f;
      } else {
        huge++;
      }
    }
  }
  return huge;
}

/** The first page of [p0, p1) that is not pinned; -1 if all are. */
export function firstUnpinnedPage(
  v: VmaState,
  p0: number,
  p1: number,
): number {
  const c1 = Math.floor((p1 - 1) / CHUNK_PAGES);
  for (let c = Math.floor(p0 / CHUNK_PAGES); c <= c1; c++) {
    const base = c * CHUNK_PAGES;
    const a = Math.max(p0, base) - base;
    if (v.pinMin(c, a, Math.min(p1, base + CHUNK_PAGES) - base) === 0) {
      let i = a;
      while (v.pinOf(base + i) > 0) i++;
      return base + i;
    }
  }
  return -1;
}

/** Takes one pin off each page of [p0, p1) (checked by {@linkcode firstUnpinnedPage}). */
export function unpinPages(v: VmaState, p0: number, p1: number): void {
  const c1 = Math.floor((p1 - 1) / CHUNK_PAGES);
  for (let c = Math.floor(p0 / CHUNK_PAGES); c <= c1; c++) {
    const base = c * CHUNK_PAGES;
    v.addPins(
      c,
      Math.max(p0, base) - base,
      Math.min(p1, base + CHUNK_PAGES) - base,
      -1,
    );
  }
}

/** Sets the referenced bit of the chunks of [p0, p1) (a touch). */
export function markReferenced(v: VmaState, p0: number, p1: number): void {
  const c1 = Math.floor((p1 - 1) / CHUNK_PAGES);
  for (let c = Math.floor(p0 / CHUNK_PAGES); c <= c1; c++) v.chunkRef[c] = 1;
}

/**
 * zap_page_range for MADV_DONTNEED: frees the unpinned pages of [p0, p1) of
 * v to `host` and drops their swap entries (alignment checked by the
 * caller). A THP partly covered or partly pinned is split into 4 KiB pages
 * first; a hugetlb page with a pinned part stays whole.
 */
export function zapPages(
  host: PageFrames,
  v: VmaState,
  p0: number,
  p1: number,
): number {
  let detached = 0;
  const c0 = Math.floor(p0 / CHUNK_PAGES);
  const c1 = Math.floor((p1 - 1) / CHUNK_PAGES);
  if (v.backing === "hugetlb-1g") {
    for (
      let f = Math.floor(c0 / CHUNK_PAGES);
      f <= Math.floor(c1 / CHUNK_PAGES);
      f++
    ) {
      const cf = f * CHUNK_PAGES;
      if (v.chunkFrame[cf] === 0) continue;
      if (v.chunkPinned.subarray(cf, cf + CHUNK_PAGES).some((x) => x > 0)) {
        continue;
      }
      host.freePage((v.chunkFrame[cf]! - 1) * CHUNK_PAGES, SZ_1G);
      v.chunkFrame.fill(0, cf, cf + CHUNK_PAGES);
      v.chunkPop.fill(0, cf, cf + CHUNK_PAGES);
      v.populated -= PAGES_PER_1G;
    }
    return 0;
  }
  for (let c = c0; c <= c1; c++) {
    const base = c * CHUNK_PAGES;
    const a = Math.max(p0, base) - base;
    const b = Math.min(p1, base + CHUNK_PAGES) - base;
    const f = v.chunkFrame[c]!;
    if (f !== 0) {
      const whole = a === 0 && b === CHUNK_PAGES;
      if (v.chunkPinned[c] === 0 && (whole || v.backing === "hugetlb-2m")) {
        host.freePage((f - 1) * CHUNK_PAGES, SZ_2M);
        v.chunkFrame[c] = 0;
        v.chunkPop[c] = 0;
        v.populated -= CHUNK_PAGES;
        continue;
      }
      if (v.backing === "hugetlb-2m") continue; // pinned: stays whole
      // THP partly covered or partly pinned: split into 4 KiB pages.
      const pfn0 = (f - 1) * CHUNK_PAGES;
      host.splitHugePage(pfn0);
      const s = v.pfns.create(c, CHUNK_PAGES);
      for (let i = 0; i < CHUNK_PAGES; i++) v.pfns.set(s, i, pfn0 + i + 1);
      v.chunkFrame[c] = 0;
    }
    const s = v.pfns.slotOf(c);
    if (s >= 0) {
      const anyPins = v.chunkPinned[c] !== 0;
      for (let i = a; i < b; i++) {
        const x = v.pfns.get(s, i);
        if (x === 0) continue;
        if (anyPins && v.pinOf(base + i) > 0) {
          // zap_pte_range() drops the CPU's PTE; the pin keeps the page, so
          // the device still reaches it while the CPU's next touch gets a
          // new zeroed page (why QEMU disables RAM discard with VFIO).
          const held = v.detached.get(base + i);
          if (held) held.push(x - 1);
          else v.detached.set(base + i, [x - 1]);
          v.pfns.set(s, i, 0);
          v.chunkPop[c] = v.chunkPop[c]! - 1;
          v.populated--;
          detached++;
          continue;
        }
        host.freePage(x - 1, SZ_4K);
        v.pfns.set(s, i, 0);
        v.chunkPop[c] = v.chunkPop[c]! - 1;
        v.populated--;
      }
      if (v.chunkPop[c] === 0) v.pfns.delete(c);
    }
    if (v.swapBits.has(c)) {
      for (let i = a; i < b; i++) v.clearSwapped(c, i);
    }
  }
  return detached;
}

/** Frees every page of v to `host` and drops its swap entries (munmap). */
export function freeAllPages(host: PageFrames, v: VmaState): void {
  for (let c = 0; c < v.nChunks; c++) {
    const f = v.chunkFrame[c]!;
    if (f !== 0) {
      if (v.backing === "hugetlb-1g") {
        if (c % CHUNK_PAGES === 0) {
          host.freePage((f - 1) * CHUNK_PAGES, SZ_1G);
        }
      } else {
        host.freePage((f - 1) * CHUNK_PAGES, SZ_2M);
      }
    }
  }
  for (const [, s] of v.pfns.chunks()) {
    for (let i = 0; i < CHUNK_PAGES; i++) {
      const x = v.pfns.get(s, i);
      if (x !== 0) host.freePage(x - 1, SZ_4K);
    }
  }
  v.chunkFrame.fill(0);
  v.chunkPop.fill(0);
  v.pfns.clear();
  v.swapBits.clear();
  v.populated = 0;
  v.swap.give(v.swapped);
  v.swapped = 0;
}
