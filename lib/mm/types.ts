/**
 * Public types of the host memory manager: backings, VMAs, pin results and
 * MMU notifiers.
 *
 * @module
 */

/**
 * How a VMA of guest RAM is backed:
 * - `"4k"`: anonymous memory in 4 KiB pages;
 * - `"thp"`: anonymous memory with transparent huge pages (a fault allocates
 *   a 2 MiB page when the 2 MiB-aligned range lies inside the VMA and is
 *   empty, else 4 KiB; a failed 2 MiB allocation falls back to 4 KiB);
 * - `"hugetlb-2m"` / `"hugetlb-1g"`: hugetlbfs pages, allocated whole and
 *   never swapped.
 */
export type Backing = "4k" | "thp" | "hugetlb-2m" | "hugetlb-1g";

/** A mapping of the address space (a `vm_area_struct`), as returned by `mmap`. */
export interface VmArea {
  /** First host virtual address (HVA). */
  readonly start: number;
  /** One past the last HVA. */
  readonly end: number;
  /** Length in bytes. */
  readonly size: number;
  /** The backing. */
  readonly backing: Backing;
  /** Size of the pages a fault allocates at best: 4 KiB, 2 MiB or 1 GiB. */
  readonly pageSize: number;
}

/** Options of {@linkcode MmStruct.mmap}. */
export interface MmapOptions {
  /** Length in bytes: a positive multiple of 4 KiB (of the huge page size for hugetlb). */
  size: number;
  /** The backing of the new mapping. */
  backing: Backing;
  /**
   * Fixed start address (MAP_FIXED_NOREPLACE): aligned to 2 MiB (1 GiB for
   * `"hugetlb-1g"`); EEXIST if it overlaps a mapping. Default: the next free
   * aligned address above 0x7f0000000000.
   */
  hva?: number;
}

/** Options of {@linkcode MmStruct.pinUserPages}. */
export interface PinOptions {
  /**
   * FOLL_LONGTERM: the pin may last indefinitely (VFIO). The model has no
   * movable zones or CMA to migrate out of, so it changes nothing but the
   * `longtermPins` counter.
   */
  longterm: boolean;
  /** Receives the PFN of each pinned page (`out[i]` for page i); length >= npages. */
  out?: Float64Array;
}

/** The result of {@linkcode MmStruct.pinUserPages}. */
export interface PinResult {
  /** Simulated time in ns: fault-in, zeroing or swap-in, and the pin work. */
  ns: number;
  /**
   * 4 KiB pages this call populated; may exceed the pinned range when it
   * faulted in a huge page that reaches beyond it.
   */
  newlyPopulated: number;
  /** PFN of the first pinned page (-1 when npages is 0). */
  firstPfn: number;
}

/**
 * The cost of a population split into its parts, for a caller that runs the
 * zeroing itself through the host's memory bandwidth
 * ({@linkcode MmStruct.prefault} with `out`: QEMU's prealloc threads).
 */
export interface PopulateCost {
  /** 4 KiB pages the population zeroed (fresh pages, not swap-ins). */
  zeroPages: number;
}

/** The callbacks of an MMU (interval) notifier. */
export interface MmuNotifierOps {
  /**
   * Called before the pages of [start, end) (HVAs, `end` exclusive, the
   * whole invalidated range, not clipped to the notifier's interval) are
   * unmapped and freed. May return the ns it spent (added to the cost of the
   * mm operation that caused it).
   */
  invalidateRangeStart(start: number, end: number): number | void;
  /** Called after the range was unmapped and freed; may return ns spent. */
  invalidateRangeEnd(start: number, end: number): number | void;
}

/** A registered MMU notifier. */
export interface MmuNotifier {
  /** First HVA of the watched interval. */
  readonly start: number;
  /** Length of the watched interval in bytes. */
  readonly size: number;
  /**
   * mmu_interval_read_begin(): the interval's invalidation sequence count
   * now, to take before looking pages up without the driver's lock.
   */
  readBegin(): number;
  /**
   * mmu_interval_read_retry(): true when an invalidation overlapping the
   * interval started since {@linkcode readBegin} returned `seq`, so pages
   * looked up since may be stale and the lookup must be redone.
   */
  readRetry(seq: number): boolean;
  /** Removes the notifier (idempotent). */
  unregister(): void;
}
