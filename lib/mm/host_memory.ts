/**
 * Physical memory of a host: page frames in 4 KiB units, handed out as 4 KiB
 * pages, 2 MiB and 1 GiB huge pages (naturally aligned), like the buddy
 * allocator restricted to the three orders the model needs (0, 9, 18).
 *
 * @module
 */
import { SharedBandwidth } from "../sim/bandwidth.ts";
import type { Costs } from "../sim/costs.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import type { Simulator } from "../sim/simulator.ts";
import { checkAddress, SZ_1G, SZ_2M, SZ_4K } from "../sim/units.ts";

/** Options of {@linkcode HostMemory}. */
export interface HostMemoryOptions {
  /** RAM size in bytes; a positive multiple of 2 MiB; `base + size` at most 2^44. */
  size: number;
  /** The cost profile (the `mm.*` parameters are read by the address spaces on this host). */
  costs: Costs;
  /**
   * Physical address of the first byte of RAM, a multiple of 1 GiB
   * (default 0). Arm servers usually start DRAM higher, e.g. 0x80000000.
   */
  base?: number;
  /**
   * Direct reclaim (default false): when an allocation for a fault or pin
   * fails, the faulting address space asks {@linkcode HostMemory.reclaim} for
   * the missing pages (swapping out unpinned pages of every address space on
   * the host) and retries once before failing with ENOMEM.
   */
  directReclaim?: boolean;
  /**
   * The simulator the host runs on. With it, page zeroing draws on the
   * host's memory bandwidth ({@linkcode HostMemory.bandwidth}): one core
   * zeroes a 4 KiB page in `mm.zeroPer4k` ns, all cores together at most
   * one every `mm.memBandwidthPer4k` ns. Without it, every zeroing runs at
   * the rate of one core, as if alone.
   */
  sim?: Simulator;
  /**
   * Swap space in bytes (default Infinity: reclaim can always swap out an
   * unpinned page). Once it is full, reclaim frees nothing more and an
   * allocation that needs memory fails with ENOMEM (a host without swap
   * cannot overcommit anonymous guest memory).
   */
  swap?: number;
  /**
   * The order in which 4 KiB frames are handed out within a 2 MiB block
   * (default "scattered"). "scattered": a host whose free lists uptime has
   * churned, so consecutive 4 KiB allocations are never physically adjacent
   * (VFIO then finds no contiguous run in 4 KiB-backed guest RAM and maps
   * it page by page). "ascending": a freshly booted host, whose buddy
   * allocator splits free blocks in address order (expand() keeps the low
   * half, rmqueue_bulk() fills the per-CPU list in that order), so
   * consecutive allocations are adjacent and a populated 4 KiB-backed
   * range is physically contiguous in long runs.
   */
  frameOrder?: FrameOrder;
}

/** See {@linkcode HostMemoryOptions.frameOrder}. */
export type FrameOrder = "scattered" | "ascending";

/**
 * The host's swap space, shared by its address spaces: 4 KiB slots in use
 * and the limit. Pages enter it when reclaim swaps them out and leave it
 * when they are swapped in or their mapping goes away.
 */
export class SwapSpace {
  /** Slots (4 KiB pages); Infinity for unlimited swap. */
  readonly pages: number;
  /** Slots in use. */
  used = 0;
  /** Most slots in use at once. */
  peak = 0;

  /** Swap of `pages` 4 KiB slots. */
  constructor(pages: number) {
    this.pages = pages;
  }

  /** Slots free. */
  get free(): number {
    return this.pages - this.used;
  }

  /** Takes `n` slots (the caller checked {@linkcode free}). */
  take(n: number): void {
    this.used += n;
    if (this.used > this.peak) this.peak = this.used;
  }

  /** Returns `n` slots. */
  give(n: number): void {
    this.used -= n;
  }
}

/** What a reclaim pass achieved: 4 KiB pages freed and the time it took. */
export interface ReclaimResult {
  /** 4 KiB pages reclaimed (may exceed the request when a huge folio goes whole). */
  reclaimed: number;
  /** Simulated time of the pass in ns, notifier callbacks included. */
  ns: number;
}

/**
 * Something on the host that can give memory back under pressure (the
 * kernel's shrinker / LRU lists of a process); {@linkcode MmStruct}s register
 * themselves.
 */
export interface Shrinker {
  /** Reclaims about `npages` 4 KiB pages; see {@linkcode ReclaimResult}. */
  reclaim(npages: number): ReclaimResult;
}

/** A registration of a {@linkcode Shrinker}; `unregister()` removes it. */
export interface ShrinkerHandle {
  /** Removes the shrinker from the host (idempotent). */
  unregister(): void;
}

/** Highest physical address + 1 the model supports: PFNs fit in 32 bits. */
export const MAX_PHYS = 2 ** 44;

const FRAMES_PER_2M = 512;
const BLOCKS_PER_1G = 512;
const WORDS_PER_BLOCK = FRAMES_PER_2M / 32;

// State of a 2 MiB block.
const B_FREE = 0;
const B_HUGE = 1; // allocated as one 2 MiB page
const B_SPLIT = 2; // split into 4 KiB frames (bitmap in use)
const B_GIGA = 3; // part of an allocated 1 GiB page

/**
 * The host's RAM. Bookkeeping is compact: per 1 GiB region a count of free
 * 2 MiB blocks and a flag; per 2 MiB block a state byte and a count of free
 * 4 KiB frames; a 512-bit bitmap per 2 MiB block only for GiB regions where
 * a block was ever split into 4 KiB frames. A 512 GiB host costs about 1 MiB
 * to create.
 *
 * Placement policy (anti-fragmentation, like the buddy allocator's
 * preference for splitting the smallest free block): 4 KiB frames come from
 * partly used 2 MiB blocks first, new 2 MiB blocks from partly used 1 GiB
 * regions first, so whole 1 GiB regions stay available for 1 GiB pages.
 * Freed blocks coalesce back (a 2 MiB block whose 512 frames are free is
 * free; a region whose 512 blocks are free is a whole free 1 GiB region).
 *
 * Out of memory is reported as -1 by {@linkcode tryAllocPage} (and ENOMEM by
 * {@linkcode allocPage}); the caller may then call {@linkcode reclaim}, which
 * asks the registered {@linkcode Shrinker}s (address spaces) to swap out
 * unpinned pages.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HostMemory } from "./host_memory.ts";
 * import { loadCostProfile } from "../sim/costs.ts";
 * const host = new HostMemory({ size: 512 * 2 ** 30, costs: loadCostProfile() });
 * const pfn = host.allocPage(2 ** 21);
 * assert(pfn % 512 === 0 && host.usedBytes === 2 ** 21);
 * host.freePage(pfn, 2 ** 21);
 * assert(host.usedBytes === 0);
 * ```
 */
export class HostMemory {
  /** RAM size in bytes. */
  readonly size: number;
  /** The cost profile of the host. */
  readonly costs: Costs;
  /** Physical address of the first byte of RAM. */
  readonly base: number;
  /** Whether faults and pins reclaim and retry when an allocation fails. */
  readonly directReclaim: boolean;
  /** Number of 4 KiB frames. */
  readonly totalPages: number;
  /** PFN of the first frame (`base >> 12`). */
  readonly basePfn: number;
  /**
   * The host's memory bandwidth for page zeroing, in 4 KiB pages (created
   * when the host is given a simulator and `mm.zeroPer4k` is not 0).
   */
  readonly bandwidth: SharedBandwidth | undefined;
  /** The swap space. */
  readonly swap: SwapSpace;
  /** The order of 4 KiB frames within a block ({@linkcode HostMemoryOptions.frameOrder}). */
  readonly frameOrder: FrameOrder;

  readonly #nGiB: number;
  readonly #nBlocks: number;
  /** Free 2 MiB blocks per 1 GiB region. */
  readonly #free2m: Uint16Array;
  /** 1 when the region is allocated as a 1 GiB page. */
  readonly #giga: Uint8Array;
  /** Next-fit cursor per region for finding free blocks. */
  readonly #cursor: Uint16Array;
  /** Per 2 MiB block: B_FREE / B_HUGE / B_SPLIT / B_GIGA. */
  readonly #bstate: Uint8Array;
  /** Per split 2 MiB block: free 4 KiB frames. */
  readonly #free4k: Uint16Array;
  /** Per split block: 1 while on the partial list. */
  readonly #onPartial: Uint8Array;
  /** Per region, lazily: used-frame bitmap (16 words per block). */
  readonly #bitmaps: (Uint32Array | undefined)[];
  /** Split blocks with free frames other than the current one. */
  readonly #partial: number[] = [];
  #curBlock = -1;
  #curWord = 0;
  #curRegion = -1;
  #usedPages = 0;
  #peakUsedPages = 0;
  readonly #shrinkers: Shrinker[] = [];
  #shrinkerCursor = 0;
  /**
   * Lower bounds on the first region that is partly used (#hintPartial),
   * has any free block (#hintFree) and is a whole free 1 GiB (#hintWhole):
   * every change of a region's free count lowers them to it, every search
   * starts at them and raises them to what it found, so searches return the
   * same lowest region a scan from 0 would, without rescanning the regions
   * before it (which made filling a large host quadratic).
   */
  #hintPartial = 0;
  #hintFree = 0;
  #hintWhole = 0;
  /** Stride of the scan of a block's 4 KiB frames (odd: a bijection mod 512). */
  readonly #stride: number;

  /** Creates the host's RAM, all free. */
  constructor(options: HostMemoryOptions) {
    const { size, costs, base = 0, directReclaim = false, sim } = options;
    const swap = options.swap ?? Infinity;
    const frameOrder = options.frameOrder ?? "scattered";
    if (frameOrder !== "scattered" && frameOrder !== "ascending") {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create host memory: frameOrder must be "scattered" or "ascending", got ${
          String(frameOrder)
        }`,
        "frameOrder",
      );
    }
    this.frameOrder = frameOrder;
    this.#stride = frameOrder === "scattered" ? SCATTER : 1;
    if (!(swap >= 0)) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create host memory: swap must be a size in bytes or Infinity, got ${swap}`,
        "swap",
      );
    }
    checkAddress(size, "host memory size", SZ_2M);
    checkAddress(base, "host memory base", SZ_1G);
    if (size === 0 || base + size > MAX_PHYS) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create host memory of ${hex(size)} bytes at ${hex(base)}: ` +
          "the size must be positive and RAM must end below 2^44 (16 TiB)",
      );
    }
    this.size = size;
    this.costs = costs;
    this.base = base;
    this.directReclaim = directReclaim;
    this.bandwidth = sim && costs["mm.zeroPer4k"] > 0
      ? new SharedBandwidth(sim, {
        name: "host memory bandwidth",
        streamNsPerUnit: costs["mm.zeroPer4k"],
        totalNsPerUnit: costs["mm.memBandwidthPer4k"],
      })
      : undefined;
    this.swap = new SwapSpace(
      swap === Infinity ? Infinity : Math.floor(swap / SZ_4K),
    );
    this.totalPages = size / SZ_4K;
    this.basePfn = base / SZ_4K;
    this.#nBlocks = size / SZ_2M;
    this.#nGiB = Math.ceil(this.#nBlocks / BLOCKS_PER_1G);
    this.#free2m = new Uint16Array(this.#nGiB);
    for (let g = 0; g < this.#nGiB; g++) this.#free2m[g] = this.#regionCap(g);
    this.#giga = new Uint8Array(this.#nGiB);
    this.#cursor = new Uint16Array(this.#nGiB);
    this.#bstate = new Uint8Array(this.#nBlocks);
    this.#free4k = new Uint16Array(this.#nBlocks);
    this.#onPartial = new Uint8Array(this.#nBlocks);
    this.#bitmaps = new Array<Uint32Array | undefined>(this.#nGiB).fill(
      undefined,
    );
  }

  /**
   * The ns one core takes to zero `pages` 4 KiB pages starting now, inside a
   * synchronous kernel path (a fault, a pin): its fair share of the host's
   * memory bandwidth with the zeroing already in flight
   * ({@linkcode SharedBandwidth.reserve}), or `pages * mm.zeroPer4k` on a
   * host without a simulator.
   */
  zeroNs(pages: number): number {
    if (pages === 0) return 0;
    return this.bandwidth
      ? this.bandwidth.reserve(pages)
      : pages * this.costs["mm.zeroPer4k"];
  }

  /** Bytes allocated. */
  get usedBytes(): number {
    return this.#usedPages * SZ_4K;
  }

  /** Bytes free (some may be unusable for huge pages because of fragmentation). */
  get freeBytes(): number {
    return this.size - this.#usedPages * SZ_4K;
  }

  /** Highest {@linkcode usedBytes} seen. */
  get peakUsedBytes(): number {
    return this.#peakUsedPages * SZ_4K;
  }

  /** Free 2 MiB blocks (each could be a 2 MiB page now). */
  get free2mPages(): number {
    let n = 0;
    for (let g = 0; g < this.#nGiB; g++) n += this.#free2m[g]!;
    return n;
  }

  /** Whole free 1 GiB regions (each could be a 1 GiB page now). */
  get free1gPages(): number {
    let n = 0;
    for (let g = 0; g < this.#nGiB; g++) {
      if (this.#free2m[g] === BLOCKS_PER_1G) n++;
    }
    return n;
  }

  /**
   * Allocates one page of `pageSize` bytes (4 KiB, 2 MiB or 1 GiB; EINVAL
   * otherwise), naturally aligned; returns its first PFN, or -1 when no free
   * block of that size exists.
   */
  tryAllocPage(pageSize: number): number {
    let frame: number;
    if (pageSize === SZ_4K) frame = this.#alloc4k();
    else if (pageSize === SZ_2M) frame = this.#alloc2m();
    else if (pageSize === SZ_1G) frame = this.#alloc1g();
    else throw badPageSize("allocate", pageSize);
    if (frame < 0) return -1;
    this.#usedPages += pageSize / SZ_4K;
    if (this.#usedPages > this.#peakUsedPages) {
      this.#peakUsedPages = this.#usedPages;
    }
    return this.basePfn + frame;
  }

  /** Like {@linkcode tryAllocPage} but throws ENOMEM when memory is exhausted. */
  allocPage(pageSize: number): number {
    const pfn = this.tryAllocPage(pageSize);
    if (pfn < 0) {
      throw new IopfLabError(
        "ENOMEM",
        `Cannot allocate a ${
          hex(pageSize)
        }-byte page: no free block (${this.freeBytes} bytes free)`,
      );
    }
    return pfn;
  }

  /**
   * Frees a page allocated with the same `pageSize` (a 4 KiB frame of a split
   * huge page may be freed alone). EINVAL if it is not allocated as such.
   */
  freePage(pfn: number, pageSize: number): void {
    const frame = this.#frameOf(pfn, pageSize, "free");
    if (pageSize === SZ_4K) {
      const b = frame >>> 9;
      const bits = this.#bitmaps[b >>> 9];
      const w = (b % BLOCKS_PER_1G) * WORDS_PER_BLOCK + ((frame & 511) >>> 5);
      const mask = 1 << (frame & 31);
      if (this.#bstate[b] !== B_SPLIT || !bits || (bits[w]! & mask) === 0) {
        throw notAllocated(pfn, pageSize);
      }
      bits[w] = bits[w]! & ~mask;
      const free = this.#free4k[b]! + 1;
      this.#free4k[b] = free;
      if (free === FRAMES_PER_2M) {
        // Coalesce: the whole block is free again.
        this.#bstate[b] = B_FREE;
        if (this.#curBlock === b) this.#curBlock = -1;
        this.#freeBlock(b);
      } else if (
        free === 1 && b !== this.#curBlock && this.#onPartial[b] === 0
      ) {
        this.#onPartial[b] = 1;
        this.#partial.push(b);
      }
    } else if (pageSize === SZ_2M) {
      const b = frame >>> 9;
      if (this.#bstate[b] !== B_HUGE) throw notAllocated(pfn, pageSize);
      this.#bstate[b] = B_FREE;
      this.#freeBlock(b);
    } else {
      const g = frame >>> 18;
      if (this.#giga[g] !== 1) throw notAllocated(pfn, pageSize);
      this.#giga[g] = 0;
      this.#bstate.fill(B_FREE, g * BLOCKS_PER_1G, (g + 1) * BLOCKS_PER_1G);
      this.#free2m[g] = BLOCKS_PER_1G;
      this.#regionChanged(g);
    }
    this.#usedPages -= pageSize / SZ_4K;
  }

  /**
   * Splits an allocated 2 MiB page into 512 allocated 4 KiB frames (as
   * split_huge_page does), so that parts of it can be freed alone. EINVAL if
   * `pfn` is not an allocated 2 MiB page.
   */
  splitHugePage(pfn: number): void {
    const frame = this.#frameOf(pfn, SZ_2M, "split");
    const b = frame >>> 9;
    if (this.#bstate[b] !== B_HUGE) throw notAllocated(pfn, SZ_2M);
    const bits = this.#bitmap(b >>> 9);
    const w0 = (b % BLOCKS_PER_1G) * WORDS_PER_BLOCK;
    bits.fill(0xffffffff, w0, w0 + WORDS_PER_BLOCK);
    this.#bstate[b] = B_SPLIT;
    this.#free4k[b] = 0;
  }

  /** True when the 4 KiB frame `pfn` is allocated (alone or as part of a huge page). */
  isAllocated(pfn: number): boolean {
    const frame = pfn - this.basePfn;
    if (!Number.isInteger(frame) || frame < 0 || frame >= this.totalPages) {
      return false;
    }
    const b = frame >>> 9;
    const s = this.#bstate[b]!;
    if (s === B_HUGE || s === B_GIGA) return true;
    if (s !== B_SPLIT) return false;
    const bits = this.#bitmaps[b >>> 9]!;
    const w = (b % BLOCKS_PER_1G) * WORDS_PER_BLOCK + ((frame & 511) >>> 5);
    return (bits[w]! & (1 << (frame & 31))) !== 0;
  }

  /**
   * Registers an address space (or anything else) that can give pages back
   * when {@linkcode reclaim} is called.
   */
  registerShrinker(shrinker: Shrinker): ShrinkerHandle {
    this.#shrinkers.push(shrinker);
    return {
      unregister: () => {
        const i = this.#shrinkers.indexOf(shrinker);
        if (i >= 0) this.#shrinkers.splice(i, 1);
      },
    };
  }

  /**
   * Host-wide reclaim (kswapd / direct reclaim): asks the registered
   * shrinkers in turn, starting after the one asked first last time, until
   * `npages` 4 KiB pages are freed or every shrinker has been asked.
   */
  reclaim(npages: number): ReclaimResult {
    let reclaimed = 0;
    let ns = 0;
    const list = this.#shrinkers.slice();
    const n = list.length;
    if (n === 0 || npages <= 0) return { reclaimed, ns };
    const start = this.#shrinkerCursor % n;
    this.#shrinkerCursor = (start + 1) % n;
    for (let i = 0; i < n && reclaimed < npages; i++) {
      const r = list[(start + i) % n]!.reclaim(npages - reclaimed);
      reclaimed += r.reclaimed;
      ns += r.ns;
    }
    return { reclaimed, ns };
  }

  // --- internals -----------------------------------------------------------

  #regionCap(g: number): number {
    return Math.min(BLOCKS_PER_1G, this.#nBlocks - g * BLOCKS_PER_1G);
  }

  #frameOf(pfn: number, pageSize: number, what: string): number {
    if (pageSize !== SZ_4K && pageSize !== SZ_2M && pageSize !== SZ_1G) {
      throw badPageSize(what, pageSize);
    }
    const frame = pfn - this.basePfn;
    const n = pageSize / SZ_4K;
    if (
      !Number.isInteger(frame) || frame < 0 || frame + n > this.totalPages ||
      frame % n !== 0
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot ${what} the ${hex(pageSize)}-byte page at PFN ${
          hex(pfn)
        }: not an aligned frame of this host`,
      );
    }
    return frame;
  }

  #bitmap(g: number): Uint32Array {
    let bits = this.#bitmaps[g];
    if (!bits) {
      bits = new Uint32Array(BLOCKS_PER_1G * WORDS_PER_BLOCK);
      this.#bitmaps[g] = bits;
    }
    return bits;
  }

  /** A free 2 MiB block marked used (state left to the caller), or -1. */
  #takeBlock(): number {
    let g = this.#curRegion;
    if (g < 0 || this.#free2m[g] === 0 || this.#giga[g] === 1) {
      g = -1;
      // Prefer the first partly used region; fall back to the first with a
      // free block (a whole free one then).
      let i = this.#hintPartial;
      for (; i < this.#nGiB; i++) {
        const f = this.#free2m[i]!;
        if (f > 0 && f < this.#regionCap(i)) {
          g = i;
          break;
        }
      }
      this.#hintPartial = i;
      if (g < 0) {
        for (i = this.#hintFree; i < this.#nGiB; i++) {
          if (this.#free2m[i]! > 0) {
            g = i;
            break;
          }
        }
        this.#hintFree = i;
      }
      if (g < 0) return -1;
      this.#curRegion = g;
    }
    const cap = this.#regionCap(g);
    const first = g * BLOCKS_PER_1G;
    let c = this.#cursor[g]!;
    for (let i = 0; i < cap; i++, c = c + 1 === cap ? 0 : c + 1) {
      if (this.#bstate[first + c] === B_FREE) {
        this.#cursor[g] = c + 1 === cap ? 0 : c + 1;
        this.#free2m[g] = this.#free2m[g]! - 1;
        this.#regionChanged(g);
        return first + c;
      }
    }
    throw new Error("HostMemory: free 2 MiB count out of sync"); // unreachable
  }

  #freeBlock(b: number): void {
    const g = b >>> 9;
    this.#free2m[g] = this.#free2m[g]! + 1;
    this.#regionChanged(g);
  }

  /** Region g's free count changed: it may now be what a search looks for. */
  #regionChanged(g: number): void {
    if (g < this.#hintPartial) this.#hintPartial = g;
    if (g < this.#hintFree) this.#hintFree = g;
    if (g < this.#hintWhole) this.#hintWhole = g;
  }

  #alloc2m(): number {
    const b = this.#takeBlock();
    if (b < 0) return -1;
    this.#bstate[b] = B_HUGE;
    return b * FRAMES_PER_2M;
  }

  #alloc1g(): number {
    let g = -1;
    let i = this.#hintWhole;
    for (; i < this.#nGiB; i++) {
      if (this.#free2m[i] === BLOCKS_PER_1G) {
        g = i;
        break;
      }
    }
    this.#hintWhole = i;
    if (g < 0) return -1;
    this.#giga[g] = 1;
    this.#free2m[g] = 0;
    this.#bstate.fill(B_GIGA, g * BLOCKS_PER_1G, (g + 1) * BLOCKS_PER_1G);
    return g * BLOCKS_PER_1G * FRAMES_PER_2M;
  }

  #alloc4k(): number {
    let b = this.#curBlock;
    if (b < 0 || this.#free4k[b] === 0) {
      b = -1;
      while (this.#partial.length > 0) {
        const p = this.#partial.pop()!;
        this.#onPartial[p] = 0;
        if (this.#bstate[p] === B_SPLIT && this.#free4k[p]! > 0) {
          b = p;
          break;
        }
      }
      if (b < 0) {
        b = this.#takeBlock();
        if (b < 0) return -1;
        this.#bstate[b] = B_SPLIT;
        this.#free4k[b] = FRAMES_PER_2M;
        const w0 = (b % BLOCKS_PER_1G) * WORDS_PER_BLOCK;
        this.#bitmap(b >>> 9).fill(0, w0, w0 + WORDS_PER_BLOCK);
      }
      this.#curBlock = b;
      this.#curWord = 0;
    }
    // Scan the block with the stride of the frame order (k * stride mod
    // 512, a bijection since the stride is odd). Scattered (SCATTER):
    // consecutive 4 KiB allocations are never physically adjacent, a host
    // whose free lists have been churned; VFIO then finds no contiguous runs
    // in 4 KiB-backed guest RAM and maps it with 4 KiB pages, which is why
    // huge-page backing matters for IOTLB reach. Ascending (1): a freshly
    // booted host's address order.
    const bits = this.#bitmaps[b >>> 9]!;
    const w0 = (b % BLOCKS_PER_1G) * WORDS_PER_BLOCK;
    const stride = this.#stride;
    let k = this.#curWord;
    // FRAMES_PER_2M is 512: `& 511` is `% 512` for these non-negative
    // integers (k * stride stays below 2^31).
    for (let i = 0; i < FRAMES_PER_2M; i++, k = (k + 1) & 511) {
      const pos = (k * stride) & 511;
      const wi = w0 + (pos >>> 5), bit = pos & 31;
      const word = bits[wi]!;
      if ((word & (1 << bit)) === 0) {
        bits[wi] = word | (1 << bit);
        this.#curWord = (k + 1) & 511;
        this.#free4k[b] = this.#free4k[b]! - 1;
        return b * FRAMES_PER_2M + pos;
      }
    }
    throw new Error("HostMemory: free 4 KiB count out of sync"); // unreachable
  }
}

/** Stride of the scattered scan of a 2 MiB block's 4 KiB frames (odd, so a bijection mod 512). */
const SCATTER = 167;

function badPageSize(what: string, pageSize: number): IopfLabError {
  return new IopfLabError(
    "EINVAL",
    `Cannot ${what} a page of ${pageSize} bytes: the host hands out 4 KiB, 2 MiB and 1 GiB pages`,
  );
}

function notAllocated(pfn: number, pageSize: number): IopfLabError {
  return new IopfLabError(
    "EINVAL",
    `Cannot free the ${hex(pageSize)}-byte page at PFN ${
      hex(pfn)
    }: not allocated as such a page`,
  );
}
