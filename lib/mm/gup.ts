/**
 * Pinning and population of an address space (mm/gup.c, with the fault
 * path of mm/memory.c): pin_user_pages, unpin_user_pages, faulting pages
 * in, and the undo stack that makes a failed population all or nothing.
 * Private to lib/mm; the public entry points are
 * {@linkcode MmStruct.pinUserPages}, {@linkcode MmStruct.unpinUserPages},
 * {@linkcode MmStruct.touch} and {@linkcode MmStruct.prefault}.
 *
 * @module
 */
import { hex, IopfLabError } from "../sim/errors.ts";
import { checkAddress, SZ_1G, SZ_2M, SZ_4K } from "../sim/units.ts";
import { checkCount, type MmState, Undo } from "./_mm.ts";
import {
  CHUNK_PAGES,
  findVma,
  firstUnpinnedPage,
  markReferenced,
  type Piece,
  pinnedPages,
  pinOverflowPage,
  pinPages,
  populatedPages,
  resolvePieces,
  unpinPages,
  type VmaState,
} from "./_vma.ts";
import type { PinOptions, PinResult, PopulateCost } from "./types.ts";

const PAGES_PER_1G = SZ_1G / SZ_4K;

/** Populated pages an {@linkcode Undo} lists before it switches to a bitmap. */
const UNDO_LIST_MAX = 32;

/** Undo records kept for reuse once no populate call is in progress. */
const UNDO_POOL_MAX = 64;

/**
 * pin_user_pages of `npages` pages from the page-aligned `hva` of `s`; see
 * {@linkcode MmStruct.pinUserPages} for the semantics and the costs.
 */
export function pinUserPages(
  s: MmState,
  hva: number,
  npages: number,
  options: PinOptions,
): PinResult {
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
  if (!s.pinPieceBusy) {
    const v = findVma(s.vmas, hva);
    if (v !== undefined && hva + npages * SZ_4K <= v.end) {
      const p0 = (hva - v.start) / SZ_4K;
      let one = s.pinPiece;
      if (one === undefined) {
        one = s.pinPiece = [{ v, p0, p1: p0 + npages }];
      } else {
        const piece = one[0]!;
        piece.v = v;
        piece.p0 = p0;
        piece.p1 = p0 + npages;
      }
      s.pinPieceBusy = true;
      try {
        return pinPieces(s, one, npages, out);
      } finally {
        s.pinPieceBusy = false;
      }
    }
  }
  const pieces = resolvePieces(s.vmas, hva, npages * SZ_4K, "pin", "EFAULT");
  return pinPieces(s, pieces, npages, out);
}

/** pinUserPages of the resolved `pieces` (the checked range). */
function pinPieces(
  s: MmState,
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
  const k = s.costs;
  let ns = populate(s, pieces, "pin");
  const newlyPopulated = s.popPages;
  ns += k["mm.pinCall"] + k["mm.pinPer4k"] * npages;
  let huge = 0;
  let small = 0;
  for (let q = 0; q < pieces.length; q++) {
    const { v, p0, p1 } = pieces[q]!;
    huge += pinPages(v, p0, p1);
    small += smallFolioPages(v, p0, p1);
  }
  ns += k["mm.pinPerHuge"] * huge + k["mm.pinPerSmallFolio"] * small;
  s.pinRefs += npages;
  const pinned = pinnedPages(s.vmas);
  if (pinned > s.peakPinned) s.peakPinned = pinned;
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
 * Pages of [p0, p1) of `v` that are 4 KiB folios of their own (not part of
 * a huge folio): GUP walks to each and grabs its folio one by one.
 */
function smallFolioPages(v: VmaState, p0: number, p1: number): number {
  if (v.backing === "hugetlb-2m" || v.backing === "hugetlb-1g") return 0;
  if (v.backing === "4k") return p1 - p0;
  let n = 0;
  const c1 = Math.floor((p1 - 1) / CHUNK_PAGES);
  for (let c = Math.floor(p0 / CHUNK_PAGES); c <= c1; c++) {
    if (v.chunkFrame[c] !== 0) continue;
    const base = c * CHUNK_PAGES;
    n += Math.min(p1, base + CHUNK_PAGES) - Math.max(p0, base);
  }
  return n;
}

/**
 * unpin_user_pages of `npages` pages from `hva` of `s`; see
 * {@linkcode MmStruct.unpinUserPages}. Returns the ns.
 */
export function unpinUserPages(
  s: MmState,
  hva: number,
  npages: number,
): number {
  checkAddress(hva, "unpin address", SZ_4K);
  checkCount(npages, "unpin");
  if (npages === 0) return 0;
  const pieces = resolvePieces(
    s.vmas,
    hva,
    npages * SZ_4K,
    "unpin",
    "EINVAL",
  );
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
    if (v.detached.size > 0) {
      // Frames MADV_DONTNEED took from the CPU while pinned go with their
      // page's last pin.
      for (const [p, pfns] of v.detached) {
        if (p < p0 || p >= p1 || v.pinOf(p) > 0) continue;
        for (const pfn of pfns) s.host.freePage(pfn, SZ_4K);
        v.detached.delete(p);
      }
    }
  }
  s.pinRefs -= npages;
  return s.costs["mm.unpinPer4k"] * npages;
}

/**
 * The CPU touching the bytes [hva, hva + size) of `s` (`what`: "touch" or
 * "prefault", for the messages): faults in every page not populated, marks
 * the chunks referenced and returns the ns. With `out`, the zeroing is not
 * charged: the ns are the faults' software time and `out.zeroPages` the
 * 4 KiB pages to zero.
 */
export function faultInRange(
  s: MmState,
  hva: number,
  size: number,
  what: string,
  out?: PopulateCost,
): number {
  checkAddress(hva, `${what} address`);
  checkAddress(size, `${what} size`);
  if (out) out.zeroPages = 0;
  if (size === 0) return 0;
  const pieces = resolvePieces(s.vmas, hva, size, what, "EFAULT");
  s.deferZero = out ?? null;
  const ns = populate(s, pieces, what);
  for (let q = 0; q < pieces.length; q++) {
    const { v, p0, p1 } = pieces[q]!;
    markReferenced(v, p0, p1);
  }
  return ns;
}

/** Allocates a page, with one direct-reclaim retry when the host allows it; -1 on failure. */
function alloc(s: MmState, size: number, reclaim: boolean): number {
  const host = s.host;
  let pfn = host.tryAllocPage(size);
  if (pfn < 0 && reclaim && host.directReclaim) {
    s.reclaimEpoch++;
    s.opNs += host.reclaim(size / SZ_4K).ns;
    pfn = host.tryAllocPage(size);
  }
  return pfn;
}

/**
 * Faults in every unpopulated page of the pieces; returns the ns and leaves
 * the pages populated in `s.popPages`. On ENOMEM everything this call
 * populated is freed again and ENOMEM thrown.
 */
function populate(s: MmState, pieces: Piece[], what: string): number {
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  const saveLo = s.fenceLo, saveHi = s.fenceHi;
  s.fenceLo = first.v.start + first.p0 * SZ_4K;
  s.fenceHi = last.v.start + last.p1 * SZ_4K;
  const saveNs = s.opNs, savePages = s.opPages, saveZero = s.opZero;
  const defer = s.deferZero;
  s.deferZero = null; // a shrinker calling back in zeroes for itself
  s.opNs = 0;
  s.opPages = 0;
  s.opZero = 0;
  s.populating++;
  const undoBase = s.undoTop;
  try {
    for (let q = 0; q < pieces.length; q++) {
      const piece = pieces[q]!;
      const failedAt = populatePiece(s, piece);
      if (failedAt >= 0) {
        rollback(s, undoBase);
        const { v } = piece;
        throw new IopfLabError(
          "ENOMEM",
          `Cannot ${what} HVA ${
            hex(v.start + failedAt * SZ_4K)
          }: out of host memory (${
            hex(v.pageSize)
          }-byte ${v.backing} page, ${s.host.freeBytes} bytes free)`,
        );
      }
    }
    const populated = populatedPages(s.vmas);
    if (populated > s.peakPopulated) s.peakPopulated = populated;
    s.popPages = s.opPages;
    // The zeroing: one core, its share of the host's memory bandwidth
    // (clear_page per 4 KiB, clear_huge_page per huge page), or left to the
    // caller.
    if (defer) {
      defer.zeroPages = s.opZero;
      return s.opNs;
    }
    return s.opNs + s.host.zeroNs(s.opZero);
  } finally {
    // Release this call's undo records (dropping their VMA references).
    for (let u = undoBase; u < s.undoTop; u++) s.undo[u]!.v = null;
    s.undoTop = undoBase;
    // A huge populate (a prefaulted guest) leaves no big pool behind.
    if (undoBase === 0 && s.undo.length > UNDO_POOL_MAX) {
      s.undo.length = UNDO_POOL_MAX;
    }
    s.populating--;
    s.fenceLo = saveLo;
    s.fenceHi = saveHi;
    s.opNs = saveNs;
    s.opPages = savePages;
    s.opZero = saveZero;
  }
}

/** Pushes an undo record for chunk (or 1 GiB folio) c of v. */
function undoPush(
  s: MmState,
  v: VmaState,
  c: number,
  huge: boolean,
): Undo {
  let u = s.undo[s.undoTop];
  if (u === undefined) {
    u = new Undo();
    s.undo.push(u);
  }
  s.undoTop++;
  u.v = v;
  u.c = c;
  u.huge = huge;
  u.n = 0;
  u.bits = null;
  u.swapIn = null;
  return u;
}

/** Populates one piece; returns -1, or the page index where memory ran out. */
function populatePiece(s: MmState, piece: Piece): number {
  const { v, p0, p1 } = piece;
  const k = s.costs;
  const fault4k = k["mm.faultOverhead"];
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
      const pfn = alloc(s, SZ_1G, true);
      if (pfn < 0) return Math.max(p0, cf * CHUNK_PAGES);
      const block = pfn / CHUNK_PAGES;
      for (let j = 0; j < CHUNK_PAGES; j++) {
        v.chunkFrame[cf + j] = block + j + 1;
        v.chunkPop[cf + j] = CHUNK_PAGES;
      }
      v.populated += PAGES_PER_1G;
      s.opPages += PAGES_PER_1G;
      s.faults++;
      undoPush(s, v, cf, true);
      s.opNs += k["mm.faultHugetlb1g"];
      s.opZero += PAGES_PER_1G;
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
      const pfn = alloc(s, SZ_2M, hugetlb);
      if (pfn >= 0) {
        v.chunkFrame[c] = pfn / CHUNK_PAGES + 1;
        v.chunkPop[c] = CHUNK_PAGES;
        v.populated += CHUNK_PAGES;
        s.opPages += CHUNK_PAGES;
        s.faults++;
        undoPush(s, v, c, true);
        s.opNs += hugetlb ? k["mm.faultHugetlb2m"] : k["mm.faultThp"];
        s.opZero += CHUNK_PAGES;
        continue;
      }
      if (hugetlb) return base + a;
    }
    // 4 KiB pages. The chunk's PFN array and swap bitmap are looked up
    // once, and again only after a direct reclaim (which may drop or
    // create them) or a swap-in (which may drop the bitmap).
    let entry: Undo | undefined;
    let epoch = s.reclaimEpoch;
    const pfns = v.pfns;
    let slot = pfns.slotOf(c);
    // No page of the VMA in swap: no bitmap to look up.
    let swapped = v.swapped === 0 ? undefined : v.swapBits.get(c);
    for (let i = a; i < b; i++) {
      if (slot >= 0 && pfns.get(slot, i) !== 0) continue;
      const pfn = alloc(s, SZ_4K, true);
      if (pfn < 0) return base + i;
      if (epoch !== s.reclaimEpoch) {
        epoch = s.reclaimEpoch;
        slot = pfns.slotOf(c); // direct reclaim may have dropped it
        swapped = v.swapBits.get(c);
      }
      if (slot < 0) slot = pfns.create(c, b - i);
      pfns.set(slot, i, pfn + 1);
      v.chunkPop[c] = v.chunkPop[c]! + 1;
      v.populated++;
      s.opPages++;
      s.faults++;
      if (!entry) {
        entry = undoPush(s, v, c, false);
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
        s.swapIns++;
        entry.swapIn ??= new Uint32Array(CHUNK_PAGES / 32);
        entry.swapIn[i >>> 5] = entry.swapIn[i >>> 5]! | (1 << (i & 31));
        s.opNs += fault4k + swapIn;
      } else {
        s.opNs += fault4k;
        s.opZero++;
      }
    }
  }
  return -1;
}

/** Frees what the undo records from `base` up populated, newest first. */
function rollback(s: MmState, base: number): void {
  const host = s.host;
  s.unmapGen++;
  for (let u = s.undoTop - 1; u >= base; u--) {
    const { c, huge, pages, n: listed, bits, swapIn } = s.undo[u]!;
    const v = s.undo[u]!.v!;
    if (huge) {
      const n = v.backing === "hugetlb-1g" ? CHUNK_PAGES : 1;
      host.freePage(
        (v.chunkFrame[c]! - 1) * CHUNK_PAGES,
        n === 1 ? SZ_2M : SZ_1G,
      );
      v.chunkFrame.fill(0, c, c + n);
      v.chunkPop.fill(0, c, c + n);
      v.populated -= n * CHUNK_PAGES;
      s.faults--;
      continue;
    }
    const slot = v.pfns.slotOf(c);
    const free = (i: number) => {
      host.freePage(v.pfns.get(slot, i) - 1, SZ_4K);
      v.pfns.set(slot, i, 0);
      v.chunkPop[c] = v.chunkPop[c]! - 1;
      v.populated--;
      s.faults--;
      if (swapIn && (swapIn[i >>> 5]! & (1 << (i & 31))) !== 0) {
        v.setSwapped(c, i);
        s.swapIns--;
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
    if (v.chunkPop[c] === 0) v.pfns.delete(c);
  }
}
