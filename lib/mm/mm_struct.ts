/**
 * A process address space (`struct mm_struct`): the VMM's mappings of guest
 * RAM, lazy population, pin_user_pages, locked_vm accounting, reclaim/swap,
 * MADV_DONTNEED, munmap and MMU notifiers.
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import {
  checkAddress,
  MAX_ADDRESS,
  PAGE_SIZE,
  SZ_1G,
  SZ_2M,
  SZ_4K,
} from "../sim/units.ts";
import type {
  HostMemory,
  ReclaimResult,
  Shrinker,
  ShrinkerHandle,
} from "./host_memory.ts";
import {
  CHUNK_PAGES,
  findVma,
  firstUnpinnedPage,
  freeAllPages,
  markReferenced,
  type Piece,
  pinnedPages,
  pinOverflowPage,
  pinPages,
  populatedPages,
  resolvePieces,
  unpinPages,
  VmaState,
  zapPages,
} from "./_vma.ts";
import type {
  Backing,
  MmapOptions,
  MmuNotifier,
  MmuNotifierOps,
  PinOptions,
  PinResult,
  VmArea,
} from "./types.ts";

/** Options of {@linkcode MmStruct}. */
export interface MmStructOptions {
  /**
   * RLIMIT_MEMLOCK in bytes, or `Infinity` for unlimited (CAP_IPC_LOCK).
   * {@linkcode MmStruct.accountLockedVm} fails with ENOMEM beyond it.
   */
  memlockLimit: number;
}

/** First HVA `mmap` hands out when no address is given. */
export const MMAP_BASE = 0x7f00_0000_0000;

const PAGES_PER_1G = SZ_1G / SZ_4K;

/** Populated pages an {@linkcode Undo} lists before it switches to a bitmap. */
const UNDO_LIST_MAX = 32;

/** Undo records kept for reuse once no populate call is in progress. */
const UNDO_POOL_MAX = 64;

/**
 * Undo record of one chunk (or 1 GiB folio) populated by a populate call in
 * progress. The records live on a stack in the address space and are
 * reused by later calls (no allocation per fault).
 */
class Undo {
  v: VmaState | null = null;
  c = 0;
  /** A huge folio at c (else 4 KiB pages of chunk c). */
  huge = false;
  /**
   * Pages of chunk c populated as 4 KiB pages, in increasing order: the
   * first `n` entries while there are at most {@linkcode UNDO_LIST_MAX}
   * (most calls populate one page). Allocated at the record's first 4 KiB
   * use and kept when the record is reused.
   */
  pages: Int32Array | null = null;
  n = 0;
  /** Beyond that, all of them as a bitmap (`pages` is then unused). */
  bits: Uint32Array | null = null;
  /** Of those, pages that were swapped in (bitmap), or null if none. */
  swapIn: Uint32Array | null = null;
}

interface NotifierEntry {
  start: number;
  end: number;
  ops: MmuNotifierOps;
}

const PAGE_SIZE_OF: Readonly<Record<Backing, number>> = {
  "4k": SZ_4K,
  "thp": SZ_2M,
  "hugetlb-2m": SZ_2M,
  "hugetlb-1g": SZ_1G,
};

/**
 * The address space of the VMM process on a {@linkcode HostMemory}.
 *
 * Guest RAM is populated lazily: the first touch or pin of a page allocates
 * and zeroes its backing (a whole huge page for hugetlb; for THP a 2 MiB page
 * when the 2 MiB-aligned range lies inside the VMA and is empty, else 4 KiB),
 * costing `mm.faultOverhead` per page fault plus `mm.zeroPer4k` per 4 KiB
 * (or `mm.swapInPer4k` for a page coming back from swap). The model has no
 * shared zero page: a read fault allocates like a write fault.
 *
 * Every operation that can fail is all or nothing: on ENOMEM, EFAULT, EINVAL
 * or EBUSY nothing changed (pages reclaimed by direct reclaim on the way stay
 * reclaimed, as in the kernel).
 *
 * Reclaim (see {@linkcode reclaim}) only takes unpinned pages of `"4k"` and
 * `"thp"` mappings; hugetlb pages are never swapped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HostMemory, MmStruct } from "./mod.ts";
 * import { loadCostProfile } from "../sim/costs.ts";
 * const host = new HostMemory({ size: 2 ** 30, costs: loadCostProfile() });
 * const mm = new MmStruct(host, { memlockLimit: Infinity });
 * const ram = mm.mmap({ size: 64 * 2 ** 20, backing: "hugetlb-2m" });
 * const pin = mm.pinUserPages(ram.start, 1, { longterm: true });
 * assert(pin.newlyPopulated === 512 && mm.pinnedPages === 1);
 * mm.unpinUserPages(ram.start, 1);
 * mm.munmap(ram.start, ram.size);
 * assert(host.usedBytes === 0);
 * ```
 */
export class MmStruct implements Shrinker {
  /** The host this address space allocates from. */
  readonly host: HostMemory;
  /** RLIMIT_MEMLOCK in bytes (`Infinity`: unlimited). */
  readonly memlockLimit: number;
  readonly #limitPages: number;
  readonly #costs: Costs;
  readonly #vmas: VmaState[] = [];
  #notifiers: NotifierEntry[] = [];
  #nextHva = MMAP_BASE;
  #lockedVm = 0;
  #peakLockedVm = 0;
  #peakPopulated = 0;
  #peakPinned = 0;
  #pinRefs = 0;
  #swapOuts = 0;
  #swapIns = 0;
  #faults = 0;
  /** Incremented before every direct reclaim (cached per-chunk state is then stale). */
  #reclaimEpoch = 0;
  #reclaimNs = 0;
  /** ns and pages of the populate call in progress. */
  #opNs = 0;
  #opPages = 0;
  /** Reclaim clock hand: VMA index and chunk. */
  #handVma = 0;
  #handChunk = 0;
  /** HVA range that reclaim must not touch (the range being populated). */
  #fenceLo = 0;
  #fenceHi = 0;
  #populating = 0;
  #zapping = 0;
  /** Undo records of the populate calls in progress: [0, #undoTop) in use. */
  readonly #undo: Undo[] = [];
  #undoTop = 0;
  /** Pages populated by the last {@linkcode #populate} call. */
  #popPages = 0;
  /**
   * The one-piece list pinUserPages reuses (made at the first pin; busy
   * while a pin uses it). It keeps a reference to the VMA pinned last
   * until munmap drops it.
   */
  #pinPiece: Piece[] | undefined = undefined;
  #pinPieceBusy = false;
  #shrinker: ShrinkerHandle | undefined;

  /** Creates an empty address space and registers it with the host for reclaim. */
  constructor(host: HostMemory, options: MmStructOptions) {
    const { memlockLimit } = options;
    if (
      memlockLimit !== Infinity &&
      (typeof memlockLimit !== "number" || !Number.isInteger(memlockLimit) ||
        memlockLimit < 0)
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create an address space: memlockLimit must be a whole number of bytes or Infinity, got ${
          String(memlockLimit)
        }`,
      );
    }
    this.host = host;
    this.memlockLimit = memlockLimit;
    this.#limitPages = memlockLimit === Infinity
      ? Infinity
      : Math.floor(memlockLimit / PAGE_SIZE);
    this.#costs = host.costs;
    this.#shrinker = host.registerShrinker(this);
  }

  // --- counters -------------------------------------------------------------

  /** Pages charged to locked_vm. */
  get lockedVm(): number {
    return this.#lockedVm;
  }
  /** Highest {@linkcode lockedVm} seen. */
  get peakLockedVm(): number {
    return this.#peakLockedVm;
  }
  /**
   * Pins held, summed over pages: a page pinned twice (mapped at two IOVAs,
   * or re-pinned before an earlier unpin) counts twice. What the pinning
   * callers together must hold.
   */
  get pinRefs(): number {
    return this.#pinRefs;
  }
  /** 4 KiB pages with a pin count above 0. */
  get pinnedPages(): number {
    return this.#pinnedSum();
  }
  /** Highest {@linkcode pinnedPages} seen. */
  get peakPinnedPages(): number {
    return this.#peakPinned;
  }
  /** Bytes of host RAM backing this address space. */
  get populatedBytes(): number {
    return this.#populatedSum() * SZ_4K;
  }
  /** Highest {@linkcode populatedBytes} seen. */
  get peakPopulatedBytes(): number {
    return this.#peakPopulated * SZ_4K;
  }
  /** 4 KiB pages written to swap by reclaim (cumulative). */
  get swapOuts(): number {
    return this.#swapOuts;
  }
  /** 4 KiB pages read back from swap by faults and pins (cumulative). */
  get swapIns(): number {
    return this.#swapIns;
  }
  /** 4 KiB pages currently in swap. */
  get swappedPages(): number {
    let n = 0;
    for (const v of this.#vmas) n += v.swapped;
    return n;
  }
  /** Page faults served (one per populated 4 KiB, 2 MiB or 1 GiB page; cumulative). */
  get faults(): number {
    return this.#faults;
  }
  /** The mappings, sorted by address. */
  get vmas(): readonly VmArea[] {
    return this.#vmas.map((v) => v.view());
  }

  // --- mappings -------------------------------------------------------------

  /**
   * Maps `size` bytes of anonymous (or hugetlbfs) memory; nothing is
   * populated. The start is aligned to 2 MiB (1 GiB for hugetlb-1g), as QEMU
   * aligns guest RAM. EINVAL for a bad size or address, EEXIST when a fixed
   * `hva` overlaps a mapping, ENOMEM when the address space is full.
   */
  mmap(options: MmapOptions): VmArea {
    const { size, backing, hva } = options;
    const pageSize = PAGE_SIZE_OF[backing];
    if (pageSize === undefined) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot mmap: unknown backing ${
          JSON.stringify(backing)
        } (4k, thp, hugetlb-2m, hugetlb-1g)`,
      );
    }
    const sizeAlign = backing.startsWith("hugetlb") ? pageSize : SZ_4K;
    checkAddress(size, `${backing} mmap size`, sizeAlign);
    if (size === 0) {
      throw new IopfLabError("EINVAL", "Cannot mmap 0 bytes: size is 0");
    }
    const align = Math.max(SZ_2M, pageSize);
    let start: number;
    if (hva !== undefined) {
      checkAddress(hva, `${backing} mmap address`, align);
      const other = this.#overlapping(hva, hva + size);
      if (other) {
        throw new IopfLabError(
          "EEXIST",
          `Cannot mmap ${hex(hva)}-${
            hex(hva + size)
          }: overlaps the mapping at ${hex(other.start)}`,
        );
      }
      start = hva;
    } else {
      start = alignUp(this.#nextHva, align);
      for (;;) {
        const other = this.#overlapping(start, start + size);
        if (!other) break;
        start = alignUp(other.end, align);
      }
      this.#nextHva = start + size;
    }
    if (start + size > MAX_ADDRESS) {
      throw new IopfLabError(
        "ENOMEM",
        `Cannot mmap ${hex(size)} bytes at ${
          hex(start)
        }: beyond the 2^52 address limit`,
      );
    }
    const v = new VmaState(start, size, backing, pageSize);
    const i = this.#vmas.findIndex((x) => x.start > start);
    if (i < 0) this.#vmas.push(v);
    else this.#vmas.splice(i, 0, v);
    return v.view();
  }

  /** The mapping containing `hva`, if any. */
  findVma(hva: number): VmArea | undefined {
    return this.#find(hva)?.view();
  }

  /**
   * Unmaps every mapping inside [hva, hva + size): MMU notifiers are called
   * first (one range per mapping), then all its pages are freed and swap
   * entries dropped. Returns the ns spent (notifier callbacks).
   *
   * Model choices: only whole mappings can be unmapped (EINVAL if the range
   * cuts one); a mapping with pinned pages cannot be unmapped (EBUSY; the
   * kernel would keep the pinned pages alive until unpinned). Ranges with
   * no mapping are fine.
   */
  munmap(hva: number, size: number): number {
    this.#checkNotBusy("munmap");
    checkAddress(hva, "munmap address", SZ_4K);
    checkAddress(size, "munmap size", SZ_4K);
    if (size === 0) {
      throw new IopfLabError("EINVAL", `Cannot munmap ${hex(hva)}: size is 0`);
    }
    const end = hva + size;
    const victims = this.#vmas.filter((v) => v.start < end && hva < v.end);
    for (const v of victims) {
      if (v.start < hva || v.end > end) {
        throw new IopfLabError(
          "EINVAL",
          `Cannot munmap ${hex(hva)}-${hex(end)}: it cuts the mapping ${
            hex(v.start)
          }-${hex(v.end)} (partial unmap is not modelled)`,
        );
      }
      if (v.pinned > 0) {
        throw new IopfLabError(
          "EBUSY",
          `Cannot munmap ${hex(v.start)}-${
            hex(v.end)
          }: ${v.pinned} pages are pinned`,
        );
      }
    }
    let ns = 0;
    for (const v of victims) {
      ns += this.#invalidate(v.start, v.end, () => {
        freeAllPages(this.host, v);
        const i = this.#vmas.indexOf(v);
        if (i >= 0) this.#vmas.splice(i, 1);
        if (this.#pinPiece?.[0]?.v === v) this.#pinPiece = undefined;
        if (this.#handVma >= this.#vmas.length) this.#handVma = 0;
      });
    }
    return ns;
  }

  /**
   * MADV_DONTNEED (what a balloon driver's host side does): MMU notifiers
   * first, then the unpinned pages of [hva, hva + size) are freed and their
   * swap entries dropped; the next touch gets a fresh zeroed page. Pinned
   * pages stay populated (the pin keeps them alive). A THP only partly
   * covered, or with pinned pages, is split into 4 KiB pages first. For
   * hugetlb the range must be aligned to the huge page size (EINVAL), and a
   * huge page with any pinned part stays whole. ENOMEM if part of the range
   * is not mapped (as madvise). Returns the ns spent (notifier callbacks).
   */
  madviseDontneed(hva: number, size: number): number {
    this.#checkNotBusy("madvise");
    checkAddress(hva, "madvise address", SZ_4K);
    checkAddress(size, "madvise size", SZ_4K);
    if (size === 0) return 0;
    const pieces = this.#resolve(hva, size, "madvise", "ENOMEM");
    for (const { v, p0, p1 } of pieces) {
      const per = v.pageSize / SZ_4K;
      if (
        v.backing.startsWith("hugetlb") && (p0 % per !== 0 || p1 % per !== 0)
      ) {
        throw new IopfLabError(
          "EINVAL",
          `Cannot madvise ${hex(hva)}-${hex(hva + size)}: not aligned to the ${
            hex(v.pageSize)
          }-byte hugetlb pages of ${hex(v.start)}`,
        );
      }
    }
    let ns = 0;
    for (const { v, p0, p1 } of pieces) {
      ns += this.#invalidate(
        v.start + p0 * SZ_4K,
        v.start + p1 * SZ_4K,
        () => zapPages(this.host, v, p0, p1),
      );
    }
    return ns;
  }

  /**
   * Tears the address space down at process exit: unmaps every mapping
   * (EBUSY, nothing changed, if pages are still pinned) and unregisters from
   * host reclaim. Returns the ns spent.
   */
  exitMmap(): number {
    this.#checkNotBusy("exit_mmap");
    const pinned = this.pinnedPages;
    if (pinned > 0) {
      throw new IopfLabError(
        "EBUSY",
        `Cannot tear down the address space: ${pinned} pages are pinned`,
      );
    }
    let ns = 0;
    for (const v of this.#vmas.slice()) ns += this.munmap(v.start, v.size);
    this.#shrinker?.unregister();
    this.#shrinker = undefined;
    return ns;
  }

  // --- faults and pins ---------------------------------------------------------

  /**
   * The CPU (guest) touching the bytes [hva, hva + size): faults in every
   * page not populated and returns the ns the faults took (0 when all were
   * populated). EFAULT if part of the range is not mapped, ENOMEM if host
   * memory runs out (nothing populated then). `write` is accepted for the
   * interface; the model has no zero page, so reads allocate too.
   */
  touch(hva: number, size: number, write = true): number {
    void write;
    return this.#fault(hva, size, "touch");
  }

  /**
   * Populates [hva, hva + size) up front (QEMU -mem-prealloc,
   * MADV_POPULATE_WRITE); returns the ns it took. Errors as {@linkcode touch}.
   */
  prefault(hva: number, size: number): number {
    return this.#fault(hva, size, "prefault");
  }

  /**
   * pin_user_pages(FOLL_WRITE | FOLL_PIN [| FOLL_LONGTERM]) of `npages` pages
   * from the page-aligned `hva`: faults in what is not populated, then adds
   * one to each page's pin count. Charges nothing to locked_vm (that is
   * {@linkcode accountLockedVm}). All or nothing: EFAULT if part of the range
   * is not mapped, ENOMEM if host memory runs out or a pin count would
   * overflow; nothing is pinned or newly populated then.
   *
   * Cost: `mm.pinCall` + `mm.pinPer4k` per page + `mm.pinPerHuge` per huge
   * folio the range touches, plus the faults.
   */
  pinUserPages(hva: number, npages: number, options: PinOptions): PinResult {
    checkAddress(hva, "pin address", SZ_4K);
    checkCount(npages, "pin");
    const out = options.out;
    if (out && out.length < npages) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot pin ${npages} pages: the out array holds only ${out.length}`,
      );
    }
    if (npages === 0) return { ns: 0, newlyPopulated: 0, firstPfn: -1 };
    // One VMA (the usual pin): the reusable one-piece list, unless a pin
    // further up the stack holds it (a shrinker calling back in).
    if (!this.#pinPieceBusy) {
      const v = this.#find(hva);
      if (v !== undefined && hva + npages * SZ_4K <= v.end) {
        const p0 = (hva - v.start) / SZ_4K;
        let one = this.#pinPiece;
        if (one === undefined) {
          one = this.#pinPiece = [{ v, p0, p1: p0 + npages }];
        } else {
          const piece = one[0]!;
          piece.v = v;
          piece.p0 = p0;
          piece.p1 = p0 + npages;
        }
        this.#pinPieceBusy = true;
        try {
          return this.#pinPieces(one, npages, out);
        } finally {
          this.#pinPieceBusy = false;
        }
      }
    }
    const pieces = this.#resolve(hva, npages * SZ_4K, "pin", "EFAULT");
    return this.#pinPieces(pieces, npages, out);
  }

  /** pinUserPages of the resolved `pieces` (the checked range). */
  #pinPieces(
    pieces: Piece[],
    npages: number,
    out: Float64Array | undefined,
  ): PinResult {
    for (let q = 0; q < pieces.length; q++) {
      const { v, p0, p1 } = pieces[q]!;
      const p = pinOverflowPage(v, p0, p1);
      if (p >= 0) {
        throw new IopfLabError(
          "ENOMEM",
          `Cannot pin HVA ${
            hex(v.start + p * SZ_4K)
          }: the pin count would overflow`,
        );
      }
    }
    const k = this.#costs;
    let ns = this.#populate(pieces, "pin");
    const newlyPopulated = this.#popPages;
    ns += k["mm.pinCall"] + k["mm.pinPer4k"] * npages;
    let huge = 0;
    for (let q = 0; q < pieces.length; q++) {
      const { v, p0, p1 } = pieces[q]!;
      huge += pinPages(v, p0, p1);
    }
    ns += k["mm.pinPerHuge"] * huge;
    this.#pinRefs += npages;
    const pinned = this.#pinnedSum();
    if (pinned > this.#peakPinned) this.#peakPinned = pinned;
    let firstPfn: number;
    if (out) {
      let j = 0;
      for (let q = 0; q < pieces.length; q++) {
        const { v, p0, p1 } = pieces[q]!;
        for (let p = p0; p < p1; p++) out[j++] = v.pfnOf(p);
      }
      firstPfn = out[0]!; // the page at hva
    } else {
      firstPfn = pieces[0]!.v.pfnOf(pieces[0]!.p0);
    }
    return { ns, newlyPopulated, firstPfn };
  }

  /**
   * unpin_user_pages of `npages` pages from `hva`: subtracts one from each
   * pin count. EINVAL (nothing changed) if any page is not pinned or not
   * mapped. Returns the ns (`mm.unpinPer4k` per page).
   */
  unpinUserPages(hva: number, npages: number): number {
    checkAddress(hva, "unpin address", SZ_4K);
    checkCount(npages, "unpin");
    if (npages === 0) return 0;
    const pieces = this.#resolve(hva, npages * SZ_4K, "unpin", "EINVAL");
    for (let q = 0; q < pieces.length; q++) {
      const { v, p0, p1 } = pieces[q]!;
      const p = firstUnpinnedPage(v, p0, p1);
      if (p >= 0) {
        throw new IopfLabError(
          "EINVAL",
          `Cannot unpin ${npages} pages at ${hex(hva)}: the page at ${
            hex(v.start + p * SZ_4K)
          } is not pinned`,
        );
      }
    }
    for (let q = 0; q < pieces.length; q++) {
      const { v, p0, p1 } = pieces[q]!;
      unpinPages(v, p0, p1);
    }
    this.#pinRefs -= npages;
    return this.#costs["mm.unpinPer4k"] * npages;
  }

  /**
   * Charges (`charge` true) or uncharges `npages` pages to locked_vm, as
   * vfio_lock_acct does. Charging beyond RLIMIT_MEMLOCK fails with ENOMEM,
   * uncharging more than is charged with EINVAL; nothing changes then.
   */
  accountLockedVm(npages: number, charge: boolean): void {
    checkCount(npages, "account");
    if (charge) {
      if (this.#lockedVm + npages > this.#limitPages) {
        throw new IopfLabError(
          "ENOMEM",
          `Cannot lock ${npages} more pages: locked_vm ${this.#lockedVm} + ${npages} exceeds RLIMIT_MEMLOCK of ${this.#limitPages} pages`,
        );
      }
      this.#lockedVm += npages;
      if (this.#lockedVm > this.#peakLockedVm) {
        this.#peakLockedVm = this.#lockedVm;
      }
    } else {
      if (npages > this.#lockedVm) {
        throw new IopfLabError(
          "EINVAL",
          `Cannot unlock ${npages} pages: only ${this.#lockedVm} are charged to locked_vm`,
        );
      }
      this.#lockedVm -= npages;
    }
  }

  /** PFN of the page containing `hva`, or -1 when not mapped or not populated. */
  hvaToPfn(hva: number): number {
    const v = this.#find(hva);
    return v ? v.pfnOf(Math.floor((hva - v.start) / SZ_4K)) : -1;
  }

  /** Pin count of the page containing `hva` (0 when not mapped). */
  pinCount(hva: number): number {
    const v = this.#find(hva);
    return v ? v.pinOf(Math.floor((hva - v.start) / SZ_4K)) : 0;
  }

  // --- notifiers and reclaim -------------------------------------------------

  /**
   * Registers an MMU interval notifier on [start, start + size): its ops are
   * called for every invalidation overlapping the interval (several
   * notifiers may watch overlapping intervals; each costs `mm.notifierCall`
   * per callback).
   */
  registerMmuNotifier(
    start: number,
    size: number,
    ops: MmuNotifierOps,
  ): MmuNotifier {
    checkAddress(start, "notifier start");
    checkAddress(size, "notifier size");
    if (size === 0) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot register an MMU notifier at ${hex(start)}: size is 0`,
      );
    }
    const entry: NotifierEntry = { start, end: start + size, ops };
    this.#notifiers = [...this.#notifiers, entry];
    return {
      start,
      size,
      unregister: () => {
        this.#notifiers = this.#notifiers.filter((e) => e !== entry);
      },
    };
  }

  /**
   * Reclaims about `npages` unpinned 4 KiB pages to swap (kswapd / direct
   * reclaim for this address space). Returns the pages freed (a THP goes
   * whole, so this may exceed the request) and the ns, `mm.reclaimPer4k` per
   * page plus notifier callbacks.
   *
   * Order: a clock over the 2 MiB chunks of the swappable mappings (4k and
   * THP; hugetlb is never swapped) in address order, continuing where the
   * last pass stopped. Touching or pinning a chunk sets its referenced bit; the
   * hand clears a set bit and skips the chunk once (second chance at 2 MiB
   * granularity), at most two revolutions per call. Each folio (a THP, or a
   * 4 KiB page) is reclaimed on its own, as shrink_folio_list does: MMU
   * notifiers for its range first, then the frame is freed and the page
   * marked swapped; its next touch swaps it in (`mm.swapInPer4k`, 4 KiB at
   * a time). Pinned pages are never reclaimed. Called from a notifier
   * callback, it reclaims nothing.
   */
  reclaim(npages: number): ReclaimResult {
    if (this.#zapping > 0 || !(npages > 0)) return { reclaimed: 0, ns: 0 };
    let candidates = 0;
    let chunks = 0;
    for (const v of this.#vmas) {
      if (!v.swappable) continue;
      candidates += v.populated - v.pinned;
      chunks += v.nChunks;
    }
    if (candidates === 0) return { reclaimed: 0, ns: 0 };
    this.#reclaimNs = 0;
    let reclaimed = 0;
    let budget = 2 * (chunks + this.#vmas.length) + 2;
    while (reclaimed < npages && budget-- > 0) {
      if (this.#handVma >= this.#vmas.length) {
        this.#handVma = 0;
        this.#handChunk = 0;
      }
      const v = this.#vmas[this.#handVma]!;
      const c = this.#handChunk;
      if (v.swappable && c < v.nChunks && v.chunkPop[c]! > 0) {
        if (v.chunkRef[c] === 1) v.chunkRef[c] = 0;
        else reclaimed += this.#reclaimChunk(v, c, npages - reclaimed);
      }
      if (reclaimed >= npages) break;
      if (!v.swappable || c + 1 >= v.nChunks) {
        this.#handVma++;
        this.#handChunk = 0;
      } else {
        this.#handChunk = c + 1;
      }
    }
    return { reclaimed, ns: this.#reclaimNs };
  }

  // --- internals -------------------------------------------------------------

  #checkNotBusy(what: string): void {
    if (this.#populating > 0 || this.#zapping > 0) {
      throw new IopfLabError(
        "EBUSY",
        `Cannot ${what} from inside a fault or an MMU notifier callback of the same address space`,
      );
    }
  }

  #find(hva: number): VmaState | undefined {
    return findVma(this.#vmas, hva);
  }

  #overlapping(start: number, end: number): VmaState | undefined {
    return this.#vmas.find((v) => v.start < end && start < v.end);
  }

  /** Splits the pages of the bytes [hva, hva + size) into per-VMA pieces; `code` if any byte is unmapped. */
  #resolve(
    hva: number,
    size: number,
    what: string,
    code: "EFAULT" | "EINVAL" | "ENOMEM",
  ): Piece[] {
    return resolvePieces(this.#vmas, hva, size, what, code);
  }

  #fault(hva: number, size: number, what: string): number {
    checkAddress(hva, `${what} address`);
    checkAddress(size, `${what} size`);
    if (size === 0) return 0;
    const pieces = this.#resolve(hva, size, what, "EFAULT");
    const ns = this.#populate(pieces, what);
    for (let q = 0; q < pieces.length; q++) {
      const { v, p0, p1 } = pieces[q]!;
      markReferenced(v, p0, p1);
    }
    return ns;
  }

  /** Allocates a page, with one direct-reclaim retry when the host allows it; -1 on failure. */
  #alloc(size: number, reclaim: boolean): number {
    const host = this.host;
    let pfn = host.tryAllocPage(size);
    if (pfn < 0 && reclaim && host.directReclaim) {
      this.#reclaimEpoch++;
      this.#opNs += host.reclaim(size / SZ_4K).ns;
      pfn = host.tryAllocPage(size);
    }
    return pfn;
  }

  /**
   * Faults in every unpopulated page of the pieces; returns the ns (and
   * leaves the pages populated in `#popPages`). On ENOMEM everything this
   * call populated is freed again and ENOMEM thrown.
   */
  #populate(pieces: Piece[], what: string): number {
    const first = pieces[0]!;
    const last = pieces[pieces.length - 1]!;
    const saveLo = this.#fenceLo, saveHi = this.#fenceHi;
    this.#fenceLo = first.v.start + first.p0 * SZ_4K;
    this.#fenceHi = last.v.start + last.p1 * SZ_4K;
    const saveNs = this.#opNs, savePages = this.#opPages;
    this.#opNs = 0;
    this.#opPages = 0;
    this.#populating++;
    const undoBase = this.#undoTop;
    try {
      for (let q = 0; q < pieces.length; q++) {
        const piece = pieces[q]!;
        const failedAt = this.#populatePiece(piece);
        if (failedAt >= 0) {
          this.#rollback(undoBase);
          const { v } = piece;
          throw new IopfLabError(
            "ENOMEM",
            `Cannot ${what} HVA ${
              hex(v.start + failedAt * SZ_4K)
            }: out of host memory (${
              hex(v.pageSize)
            }-byte ${v.backing} page, ${this.host.freeBytes} bytes free)`,
          );
        }
      }
      const populated = this.#populatedSum();
      if (populated > this.#peakPopulated) this.#peakPopulated = populated;
      this.#popPages = this.#opPages;
      return this.#opNs;
    } finally {
      // Release this call's undo records (dropping their VMA references).
      for (let u = undoBase; u < this.#undoTop; u++) this.#undo[u]!.v = null;
      this.#undoTop = undoBase;
      // A huge populate (a prefaulted guest) leaves no big pool behind.
      if (undoBase === 0 && this.#undo.length > UNDO_POOL_MAX) {
        this.#undo.length = UNDO_POOL_MAX;
      }
      this.#populating--;
      this.#fenceLo = saveLo;
      this.#fenceHi = saveHi;
      this.#opNs = saveNs;
      this.#opPages = savePages;
    }
  }

  /** Pushes an undo record for chunk (or 1 GiB folio) c of v. */
  #undoPush(v: VmaState, c: number, huge: boolean): Undo {
    let u = this.#undo[this.#undoTop];
    if (u === undefined) {
      u = new Undo();
      this.#undo.push(u);
    }
    this.#undoTop++;
    u.v = v;
    u.c = c;
    u.huge = huge;
    u.n = 0;
    u.bits = null;
    u.swapIn = null;
    return u;
  }

  /** Sum of the VMAs' populated 4 KiB pages. */
  #populatedSum(): number {
    return populatedPages(this.#vmas);
  }

  /** Sum of the VMAs' pinned 4 KiB pages. */
  #pinnedSum(): number {
    return pinnedPages(this.#vmas);
  }

  /** Populates one piece; returns -1, or the page index where memory ran out. */
  #populatePiece(piece: Piece): number {
    const { v, p0, p1 } = piece;
    const k = this.#costs;
    const zero = k["mm.zeroPer4k"], fault = k["mm.faultOverhead"];
    const c0 = Math.floor(p0 / CHUNK_PAGES);
    const c1 = Math.floor((p1 - 1) / CHUNK_PAGES);
    if (v.backing === "hugetlb-1g") {
      for (
        let f = Math.floor(c0 / CHUNK_PAGES);
        f <= Math.floor(c1 / CHUNK_PAGES);
        f++
      ) {
        const cf = f * CHUNK_PAGES;
        if (v.chunkFrame[cf] !== 0) continue;
        const pfn = this.#alloc(SZ_1G, true);
        if (pfn < 0) return Math.max(p0, cf * CHUNK_PAGES);
        const block = pfn / CHUNK_PAGES;
        for (let j = 0; j < CHUNK_PAGES; j++) {
          v.chunkFrame[cf + j] = block + j + 1;
          v.chunkPop[cf + j] = CHUNK_PAGES;
        }
        v.populated += PAGES_PER_1G;
        this.#opPages += PAGES_PER_1G;
        this.#faults++;
        this.#undoPush(v, cf, true);
        this.#opNs += fault + zero * PAGES_PER_1G;
      }
      return -1;
    }
    const swapIn = k["mm.swapInPer4k"];
    for (let c = c0; c <= c1; c++) {
      if (v.chunkFrame[c] !== 0) continue;
      const base = c * CHUNK_PAGES;
      const a = Math.max(p0, base) - base;
      const b = Math.min(p1, base + CHUNK_PAGES) - base;
      if (
        v.backing === "hugetlb-2m" || (
          v.backing === "thp" && v.chunkPop[c] === 0 &&
          v.validPages(c) === CHUNK_PAGES &&
          !v.swapBits.has(c)
        )
      ) {
        const hugetlb = v.backing === "hugetlb-2m";
        // A THP fault does not reclaim for a huge page: it falls back to 4 KiB.
        const pfn = this.#alloc(SZ_2M, hugetlb);
        if (pfn >= 0) {
          v.chunkFrame[c] = pfn / CHUNK_PAGES + 1;
          v.chunkPop[c] = CHUNK_PAGES;
          v.populated += CHUNK_PAGES;
          this.#opPages += CHUNK_PAGES;
          this.#faults++;
          this.#undoPush(v, c, true);
          this.#opNs += fault + zero * CHUNK_PAGES;
          continue;
        }
        if (hugetlb) return base + a;
      }
      // 4 KiB pages. The chunk's PFN array and swap bitmap are looked up
      // once, and again only after a direct reclaim (which may drop or
      // create them) or a swap-in (which may drop the bitmap).
      let entry: Undo | undefined;
      let epoch = this.#reclaimEpoch;
      let arr = v.pfnArray(c);
      // No page of the VMA in swap: no bitmap to look up.
      let swapped = v.swapped === 0 ? undefined : v.swapBits.get(c);
      for (let i = a; i < b; i++) {
        if (arr && arr[i] !== 0) continue;
        const pfn = this.#alloc(SZ_4K, true);
        if (pfn < 0) return base + i;
        if (epoch !== this.#reclaimEpoch) {
          epoch = this.#reclaimEpoch;
          arr = v.pfnArray(c); // direct reclaim may have dropped it
          swapped = v.swapBits.get(c);
        }
        if (!arr) {
          arr = new Uint32Array(CHUNK_PAGES);
          v.setPfnArray(c, arr);
        }
        arr[i] = pfn + 1;
        v.chunkPop[c] = v.chunkPop[c]! + 1;
        v.populated++;
        this.#opPages++;
        this.#faults++;
        if (!entry) {
          entry = this.#undoPush(v, c, false);
          entry.pages ??= new Int32Array(UNDO_LIST_MAX);
        }
        if (entry.bits) {
          entry.bits[i >>> 5] = entry.bits[i >>> 5]! | (1 << (i & 31));
        } else if (entry.n < UNDO_LIST_MAX) {
          entry.pages![entry.n++] = i;
        } else {
          const bits = new Uint32Array(CHUNK_PAGES / 32);
          for (let k = 0; k < entry.n; k++) {
            const j = entry.pages![k]!;
            bits[j >>> 5] = bits[j >>> 5]! | (1 << (j & 31));
          }
          bits[i >>> 5] = bits[i >>> 5]! | (1 << (i & 31));
          entry.bits = bits;
        }
        if (swapped !== undefined && v.clearSwapped(c, i)) {
          swapped = v.swapBits.get(c);
          this.#swapIns++;
          entry.swapIn ??= new Uint32Array(CHUNK_PAGES / 32);
          entry.swapIn[i >>> 5] = entry.swapIn[i >>> 5]! | (1 << (i & 31));
          this.#opNs += fault + swapIn;
        } else {
          this.#opNs += fault + zero;
        }
      }
    }
    return -1;
  }

  /** Frees what the undo records from `base` up populated, newest first. */
  #rollback(base: number): void {
    const host = this.host;
    for (let u = this.#undoTop - 1; u >= base; u--) {
      const { c, huge, pages, n: listed, bits, swapIn } = this.#undo[u]!;
      const v = this.#undo[u]!.v!;
      if (huge) {
        const n = v.backing === "hugetlb-1g" ? CHUNK_PAGES : 1;
        host.freePage(
          (v.chunkFrame[c]! - 1) * CHUNK_PAGES,
          n === 1 ? SZ_2M : SZ_1G,
        );
        v.chunkFrame.fill(0, c, c + n);
        v.chunkPop.fill(0, c, c + n);
        v.populated -= n * CHUNK_PAGES;
        this.#faults--;
        continue;
      }
      const arr = v.pfnArray(c)!;
      const free = (i: number) => {
        host.freePage(arr[i]! - 1, SZ_4K);
        arr[i] = 0;
        v.chunkPop[c] = v.chunkPop[c]! - 1;
        v.populated--;
        this.#faults--;
        if (swapIn && (swapIn[i >>> 5]! & (1 << (i & 31))) !== 0) {
          v.setSwapped(c, i);
          this.#swapIns--;
        }
      };
      // In increasing page order either way.
      if (bits) {
        for (let i = 0; i < CHUNK_PAGES; i++) {
          if ((bits[i >>> 5]! & (1 << (i & 31))) !== 0) free(i);
        }
      } else {
        for (let k = 0; k < listed; k++) free(pages![k]!);
      }
      if (v.chunkPop[c] === 0) v.deletePfnArray(c);
    }
  }

  /** Calls the overlapping notifiers' start, runs `body`, then their end; returns the ns. */
  #invalidate(start: number, end: number, body: () => void): number {
    const call = this.#costs["mm.notifierCall"];
    const list = this.#notifiers.filter((n) => n.start < end && start < n.end);
    let ns = 0;
    this.#zapping++;
    try {
      for (const n of list) {
        ns += call + (n.ops.invalidateRangeStart(start, end) ?? 0);
      }
      body();
      for (const n of list) {
        ns += call + (n.ops.invalidateRangeEnd(start, end) ?? 0);
      }
    } finally {
      this.#zapping--;
    }
    return ns;
  }

  #fenced(lo: number, hi: number): boolean {
    return this.#fenceHi > lo && hi > this.#fenceLo;
  }

  /** Reclaims up to `need` pages of chunk c (a whole THP counts 512); returns pages freed. */
  #reclaimChunk(v: VmaState, c: number, need: number): number {
    const per = this.#costs["mm.reclaimPer4k"];
    const base = v.start + c * SZ_2M;
    let got = 0;
    if (v.chunkFrame[c] !== 0) {
      if (v.chunkPinned[c]! > 0 || this.#fenced(base, base + SZ_2M)) return 0;
      this.#reclaimNs += this.#invalidate(base, base + SZ_2M, () => {
        const f = v.chunkFrame[c]!;
        if (f === 0 || v.chunkPinned[c]! > 0) return;
        this.host.freePage((f - 1) * CHUNK_PAGES, SZ_2M);
        v.chunkFrame[c] = 0;
        v.chunkPop[c] = 0;
        v.populated -= CHUNK_PAGES;
        for (let i = 0; i < CHUNK_PAGES; i++) v.setSwapped(c, i);
        got = CHUNK_PAGES;
      });
    } else {
      const valid = v.validPages(c);
      for (let i = 0; i < valid && got < need; i++) {
        const arr = v.pfnArray(c);
        if (!arr) break;
        if (arr[i] === 0) continue;
        const p = c * CHUNK_PAGES + i;
        if (v.chunkPinned[c] !== 0 && v.pinOf(p) > 0) continue;
        const hva = base + i * SZ_4K;
        if (this.#fenced(hva, hva + SZ_4K)) continue;
        this.#reclaimNs += this.#invalidate(hva, hva + SZ_4K, () => {
          const now = v.pfnArray(c);
          if (!now || now[i] === 0 || v.pinOf(p) > 0) return;
          this.host.freePage(now[i]! - 1, SZ_4K);
          now[i] = 0;
          v.populated--;
          v.chunkPop[c] = v.chunkPop[c]! - 1;
          if (v.chunkPop[c] === 0) v.deletePfnArray(c);
          v.setSwapped(c, i);
          got++;
        });
      }
    }
    this.#swapOuts += got;
    this.#reclaimNs += per * got;
    return got;
  }
}

function checkCount(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > MAX_ADDRESS / SZ_4K) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot ${what} ${String(n)} pages: not a whole number of pages`,
    );
  }
}

function alignUp(x: number, align: number): number {
  return Math.ceil(x / align) * align;
}
