/**
 * A process address space (`struct mm_struct`): the VMM's mappings of guest
 * RAM, lazy population, pin_user_pages, locked_vm accounting, reclaim/swap,
 * MADV_DONTNEED, munmap and MMU notifiers.
 *
 * {@linkcode MmStruct} is the facade. It keeps the VMAs (mmap, munmap,
 * madvise, exit_mmap, as mm/mmap.c and mm/madvise.c) and locked_vm here and
 * hands the rest, with the shared state record of `_mm.ts`, to the files
 * named after mm/'s own: `gup.ts` (pins and population), `vmscan.ts`
 * (reclaim to swap) and `mmu_notifier.ts`.
 *
 * @module
 */
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
import { checkCount, MmState } from "./_mm.ts";
import {
  findVma,
  freeAllPages,
  pinnedPages,
  populatedPages,
  resolvePieces,
  VmaState,
  zapPages,
} from "./_vma.ts";
import { faultInRange, pinUserPages, unpinUserPages } from "./gup.ts";
import { invalidateRange, registerMmuNotifier } from "./mmu_notifier.ts";
import { reclaim } from "./vmscan.ts";
import type {
  Backing,
  MmapOptions,
  MmuNotifier,
  MmuNotifierOps,
  PinOptions,
  PinResult,
  PopulateCost,
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
 * costing one fault per page by backing (`mm.faultOverhead` per 4 KiB page,
 * `mm.faultThp` per THP, `mm.faultHugetlb2m` / `mm.faultHugetlb1g` per
 * hugetlb page) plus the zeroing of its 4 KiB pages by one core
 * ({@linkcode HostMemory.zeroNs}: `mm.zeroPer4k` each when alone, slower
 * when the host's memory bandwidth is shared), or `mm.swapInPer4k` for a
 * page coming back from swap. The model has no shared zero page: a read
 * fault allocates like a write fault.
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
  /** The state the parts (gup, vmscan, mmu_notifier) share. */
  readonly #s: MmState;
  #nextHva = MMAP_BASE;
  #lockedVm = 0;
  #peakLockedVm = 0;
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
    this.#s = new MmState(host);
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
    return this.#s.pinRefs;
  }
  /** 4 KiB pages with a pin count above 0. */
  get pinnedPages(): number {
    return pinnedPages(this.#s.vmas);
  }
  /** Highest {@linkcode pinnedPages} seen. */
  get peakPinnedPages(): number {
    return this.#s.peakPinned;
  }
  /** Bytes of host RAM backing this address space. */
  get populatedBytes(): number {
    return populatedPages(this.#s.vmas) * SZ_4K;
  }
  /** Highest {@linkcode populatedBytes} seen. */
  get peakPopulatedBytes(): number {
    return this.#s.peakPopulated * SZ_4K;
  }
  /**
   * Pinned 4 KiB pages MADV_DONTNEED took out of the CPU's view (cumulative):
   * the device keeps the old page through its pin while the CPU's next touch
   * gets a new one, so the two views of guest RAM diverge.
   */
  get discardedPinnedPages(): number {
    return this.#s.discardedPinned;
  }
  /** 4 KiB pages written to swap by reclaim (cumulative). */
  get swapOuts(): number {
    return this.#s.swapOuts;
  }
  /** 4 KiB pages read back from swap by faults and pins (cumulative). */
  get swapIns(): number {
    return this.#s.swapIns;
  }
  /** 4 KiB pages currently in swap. */
  get swappedPages(): number {
    let n = 0;
    for (const v of this.#s.vmas) n += v.swapped;
    return n;
  }
  /** Page faults served (one per populated 4 KiB, 2 MiB or 1 GiB page; cumulative). */
  get faults(): number {
    return this.#s.faults;
  }
  /** The mappings, sorted by address. */
  get vmas(): readonly VmArea[] {
    return this.#s.vmas.map((v) => v.view());
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
    const v = new VmaState(start, size, backing, pageSize, this.#s.host.swap);
    const vmas = this.#s.vmas;
    const i = vmas.findIndex((x) => x.start > start);
    if (i < 0) vmas.push(v);
    else vmas.splice(i, 0, v);
    return v.view();
  }

  /** The mapping containing `hva`, if any. */
  findVma(hva: number): VmArea | undefined {
    return findVma(this.#s.vmas, hva)?.view();
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
    const s = this.#s;
    const victims = s.vmas.filter((v) => v.start < end && hva < v.end);
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
      ns += invalidateRange(s, v.start, v.end, () => {
        freeAllPages(s.host, v);
        const i = s.vmas.indexOf(v);
        if (i >= 0) s.vmas.splice(i, 1);
        if (s.pinPiece?.[0]?.v === v) s.pinPiece = undefined;
        if (s.handVma >= s.vmas.length) s.handVma = 0;
      });
    }
    return ns;
  }

  /**
   * MADV_DONTNEED (what a balloon driver's host side does): MMU notifiers
   * first, then the unpinned pages of [hva, hva + size) are freed and their
   * swap entries dropped; the next touch gets a fresh zeroed page. A pinned
   * 4 KiB page leaves the CPU's view too (zap_pte_range), but its frame stays
   * allocated for the pin holder (a device through VFIO) until its last
   * unpin: the CPU and the device then see different pages
   * ({@linkcode discardedPinnedPages}). A pinned hugetlb page stays whole and
   * mapped (not modelled). A THP only partly
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
    const s = this.#s;
    const pieces = resolvePieces(s.vmas, hva, size, "madvise", "ENOMEM");
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
      ns += invalidateRange(
        s,
        v.start + p0 * SZ_4K,
        v.start + p1 * SZ_4K,
        () => {
          s.discardedPinned += zapPages(s.host, v, p0, p1);
        },
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
    for (const v of this.#s.vmas.slice()) ns += this.munmap(v.start, v.size);
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
    return faultInRange(this.#s, hva, size, "touch");
  }

  /**
   * Populates [hva, hva + size) up front (QEMU -mem-prealloc,
   * MADV_POPULATE_WRITE); returns the ns it took on one thread. With `out`,
   * the zeroing is left to the caller: the ns returned are the faults'
   * software time only and `out.zeroPages` says how many 4 KiB pages to zero
   * (QEMU's prealloc threads move them through
   * {@linkcode HostMemory.bandwidth} together). Errors as {@linkcode touch}.
   */
  prefault(hva: number, size: number, out?: PopulateCost): number {
    return faultInRange(this.#s, hva, size, "prefault", out);
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
   * folio the range touches + `mm.pinPerSmallFolio` per 4 KiB page that is
   * a folio of its own, plus the faults.
   */
  pinUserPages(hva: number, npages: number, options: PinOptions): PinResult {
    return pinUserPages(this.#s, hva, npages, options);
  }

  /**
   * unpin_user_pages of `npages` pages from `hva`: subtracts one from each
   * pin count. EINVAL (nothing changed) if any page is not pinned or not
   * mapped. Returns the ns (`mm.unpinPer4k` per page).
   */
  unpinUserPages(hva: number, npages: number): number {
    return unpinUserPages(this.#s, hva, npages);
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

  /**
   * A counter that moves whenever a populated page may stop backing its
   * address: every MMU-notifier invalidation (munmap, MADV_DONTNEED,
   * reclaim, exit) and the rollback of a failed fault-in. While it stands
   * still, every {@linkcode hvaToPfn} answer given stays true (populating
   * new pages does not move it).
   */
  get unmapGeneration(): number {
    return this.#s.unmapGen;
  }

  /** PFN of the page containing `hva`, or -1 when not mapped or not populated. */
  hvaToPfn(hva: number): number {
    const v = findVma(this.#s.vmas, hva);
    return v ? v.pfnOf(Math.floor((hva - v.start) / SZ_4K)) : -1;
  }

  /** Pin count of the page containing `hva` (0 when not mapped). */
  pinCount(hva: number): number {
    const v = findVma(this.#s.vmas, hva);
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
    return registerMmuNotifier(this.#s, start, size, ops);
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
    return reclaim(this.#s, npages);
  }

  // --- internals -------------------------------------------------------------

  #checkNotBusy(what: string): void {
    const s = this.#s;
    if (s.populating > 0 || s.zapping > 0) {
      throw new IopfLabError(
        "EBUSY",
        `Cannot ${what} from inside a fault or an MMU notifier callback of the same address space`,
      );
    }
  }

  #overlapping(start: number, end: number): VmaState | undefined {
    return this.#s.vmas.find((v) => v.start < end && start < v.end);
  }
}

function alignUp(x: number, align: number): number {
  return Math.ceil(x / align) * align;
}
