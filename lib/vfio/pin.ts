/**
 * Static pinning of type1 (vfio_pin_map_dma, vfio_unmap_unpin): MAP_DMA
 * pins every page of a range, charges locked_vm against RLIMIT_MEMLOCK and
 * maps physically contiguous runs with the largest page sizes; removing a
 * range unmaps it and releases its pins once the IOTLB sync completed. The
 * IOPF path (iopf.ts) maps its pinned runs and counts its pins here too.
 * Private to lib/vfio; every function takes the container's
 * {@linkcode VfioState} first.
 *
 * @module
 */
import type { IommuDomain } from "../iommu/core.ts";
import type { MapPagesResult } from "../iommu/types.ts";
import type { VmArea } from "../mm/types.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import { PAGE_SIZE } from "../sim/units.ts";
import { nextClear, nextSet } from "./_bitmap.ts";
import type { VfioState } from "./_state.ts";
import type { VfioDma } from "./dma.ts";

/**
 * Pages per pin_user_pages call in the kernel's pinning loop (a vfio_batch
 * holds one page of struct page pointers): `mm.pinCall` is charged per
 * batch even though the model pins larger ranges per call.
 */
export const VFIO_PIN_BATCH_PAGES = 512;

/** Pages per MmStruct.pinUserPages call of static MAP_DMA (1 GiB). */
const MM_CALL_PAGES = 1 << 18;

/** RLIMIT_MEMLOCK of the container's mm in 4 KiB pages (Infinity if none). */
export function limitPages(s: VfioState): number {
  const l = s.mm.memlockLimit;
  return l === Infinity ? Infinity : Math.floor(l / PAGE_SIZE);
}

/** The reused PFN buffer, at least `n` entries long. */
export function pfnBuf(s: VfioState, n: number): Float64Array {
  if (!s.pfnBuf || s.pfnBuf.length < n) {
    s.pfnBuf = new Float64Array(Math.max(n, s.premapPages));
  }
  return s.pfnBuf;
}

/**
 * Where a static pin of one vfio_dma is (vfio_pin_map_dma's loop): the
 * pages before `done` are pinned, charged and mapped; the window
 * [winStart, winStart + winLen) is the current pin_user_pages run (at most
 * 1 GiB, within one VMA), of which `winPinned` pages are pinned and
 * charged and none mapped yet: the run is mapped when it is complete, as
 * the kernel maps what vfio_pin_pages_remote returned.
 */
export class PinProgress {
  /** Pages pinned, charged and mapped. */
  done = 0;
  /** First page of the open run. */
  winStart = 0;
  /** Pages of the open run (0: none open). */
  winLen = 0;
  /** Pages of the open run pinned and charged so far. */
  winPinned = 0;
  /** The hugetlb VMA of the open run, if it is one. */
  hugeVma: VmArea | null = null;
  /** PFNs of the open run's pages (not for hugetlb). */
  out: Float64Array | null = null;
}

/** vfio_pin_map_dma(): pins, charges and maps the whole range, or nothing. */
export function pinAndMapAll(
  s: VfioState,
  dma: VfioDma,
  domain: IommuDomain,
): number {
  const p = new PinProgress();
  let ns = 0;
  try {
    while (p.done < dma.npages) {
      ns += pinAndMapPart(s, dma, domain, p, Infinity);
    }
  } catch (e) {
    unwindPin(s, dma, domain);
    throw e;
  }
  return ns;
}

/**
 * The next part of vfio_pin_map_dma()'s loop: pins and charges up to
 * `maxPages` pages of the open run (opening the next run first, with the
 * RLIMIT_MEMLOCK check over all of it), and maps the run once it is fully
 * pinned. Returns ns. On an error the range is left part pinned:
 * {@linkcode unwindPin} releases it. `maxPages` should be a multiple of
 * {@linkcode VFIO_PIN_BATCH_PAGES} (and of the hugetlb page), so that the
 * pin calls charged are those of one call over the whole run.
 */
export function pinAndMapPart(
  s: VfioState,
  dma: VfioDma,
  domain: IommuDomain,
  p: PinProgress,
  maxPages: number,
): number {
  const mm = s.mm;
  let ns = 0;
  if (p.winPinned === p.winLen) {
    const hva = dma.vaddr + p.done * PAGE_SIZE;
    const vma = mm.findVma(hva);
    if (!vma) {
      throw new IopfLabError(
        "EFAULT",
        `Cannot pin DMA vaddr ${hex(hva)} (IOVA ${
          hex(dma.iova + p.done * PAGE_SIZE)
        }): not mapped`,
      );
    }
    const n = Math.min(
      dma.npages - p.done,
      (vma.end - hva) / PAGE_SIZE,
      MM_CALL_PAGES,
    );
    const allow = limitPages(s) - mm.lockedVm;
    if (allow < n) {
      // The kernel pins a batch before it finds the limit: the pages up
      // to it get faulted in, then everything is released.
      if (allow > 0) {
        mm.pinUserPages(hva, allow, { longterm: true });
        mm.unpinUserPages(hva, allow);
      }
      throw new IopfLabError(
        "ENOMEM",
        `Cannot pin IOVA ${hex(dma.iova)}+${
          hex(dma.size)
        }: locked_vm ${mm.lockedVm} + ${
          dma.npages - p.done
        } pages exceeds RLIMIT_MEMLOCK of ${limitPages(s)} pages`,
      );
    }
    const huge = vma.backing === "hugetlb-2m" ||
      vma.backing === "hugetlb-1g";
    p.winStart = p.done;
    p.winLen = n;
    p.winPinned = 0;
    p.hugeVma = huge ? vma : null;
    p.out = huge
      ? null
      : maxPages >= n
      ? pfnBuf(s, n)
      : p.out && p.out.length >= n
      ? p.out
      : new Float64Array(n);
  }
  const k = Math.min(maxPages, p.winLen - p.winPinned);
  const off = p.winStart + p.winPinned;
  const hva = dma.vaddr + off * PAGE_SIZE;
  const out = p.out ? p.out.subarray(p.winPinned) : undefined;
  const r = mm.pinUserPages(
    hva,
    k,
    out ? { longterm: true, out } : { longterm: true },
  );
  ns += r.ns +
    s.costs["mm.pinCall"] * (Math.ceil(k / VFIO_PIN_BATCH_PAGES) - 1);
  try {
    mm.accountLockedVm(k, true);
  } catch (e) {
    mm.unpinUserPages(hva, k);
    throw e;
  }
  addPinned(s, dma, k, k);
  p.winPinned += k;
  if (p.winPinned === p.winLen) {
    ns += mapPinned(
      s,
      dma,
      domain,
      p.winStart,
      p.winLen,
      p.out,
      p.hugeVma,
    );
    p.done += p.winLen;
  }
  return ns;
}

/**
 * Releases a part-done static pin (vfio_remove_dma after a failed
 * vfio_pin_map_dma): runs are pinned and mapped in order, so [0,
 * mappedPages) is unmapped and [0, pinnedPages) unpinned and uncharged.
 */
export function unwindPin(
  s: VfioState,
  dma: VfioDma,
  domain: IommuDomain,
): void {
  if (dma.mappedPages > 0) {
    s.core.unmap(domain, dma.iova, dma.mappedPages * PAGE_SIZE);
    dma.mappedPages = 0;
  }
  if (dma.pinnedPages > 0) releasePinned(s, dma, 0, dma.pinnedPages);
}

/**
 * Maps pages [off, off + n) of `dma`, pinned just now, in physically
 * contiguous runs. PFNs come from `out` (page by page) or, for hugetlb,
 * from the head of each folio (a folio is contiguous). Returns ns.
 */
export function mapPinned(
  s: VfioState,
  dma: VfioDma,
  domain: IommuDomain,
  off: number,
  n: number,
  out: Float64Array | null,
  hugeVma: VmArea | null,
): number {
  if (out) return mapRuns(s, dma, domain, off, n, out);
  const folio = hugeVma ? hugeVma.pageSize / PAGE_SIZE : 1;
  const hvaPage0 = dma.vaddr / PAGE_SIZE + off;
  let ns = 0;
  let runStart = 0;
  let runPfn = pfnAt(s, dma, off);
  let i = 0;
  for (;;) {
    const next = i + folio - ((hvaPage0 + i) % folio);
    if (next >= n) break;
    const pfn = pfnAt(s, dma, off + next);
    if (pfn !== runPfn + (next - runStart)) {
      ns += mapRun(s, dma, domain, off + runStart, next - runStart, runPfn);
      runStart = next;
      runPfn = pfn;
    }
    i = next;
  }
  ns += mapRun(s, dma, domain, off + runStart, n - runStart, runPfn);
  return ns;
}

/**
 * {@linkcode mapPinned} of 4 KiB pages (PFNs in `out`): one iommu_map call
 * per physically contiguous run, in order. Returns ns.
 */
function mapRuns(
  s: VfioState,
  dma: VfioDma,
  domain: IommuDomain,
  off: number,
  n: number,
  out: Float64Array,
): number {
  // (No pages: the one empty call that refuses it, as before.)
  if (n <= 0) return mapRun(s, dma, domain, off, n, out[0]!);
  return mapFrames(s, dma, domain, off, n, out, true);
}

/**
 * Maps pages [off, off + n) of `dma`, pinned just now (PFNs in `out`), one
 * iommu_map call per 4 KiB page, so each page can later be unmapped alone:
 * what the MMU notifier needs, since "the IOMMU API does not guarantee
 * unmaps of ranges smaller than the original mapping" (Alex Williamson on
 * RFC v3 4/8, <20210518125826.7ba38b78.alex.williamson@redhat.com>).
 * Returns ns.
 */
export function mapPages4k(
  s: VfioState,
  dma: VfioDma,
  domain: IommuDomain,
  off: number,
  n: number,
  out: Float64Array,
): number {
  return n > 0 ? mapFrames(s, dma, domain, off, n, out, false) : 0;
}

/** The reused result of {@linkcode mapFrames}. */
const mapped: MapPagesResult = { ns: 0, pages: 0 };

/**
 * Maps pages [off, off + n) of `dma` to the frames `out[0 .. n)`: with
 * `runs`, one iommu_map call per physically contiguous run
 * (`IommuCore.mapFrames`), else one per page (`IommuCore.mapPages`); both
 * batch single-page calls. Counts the pages mapped in `dma.mappedPages`,
 * also those mapped before a call that fails (its error is rethrown), as
 * the calls one by one would. Returns ns.
 */
function mapFrames(
  s: VfioState,
  dma: VfioDma,
  domain: IommuDomain,
  off: number,
  n: number,
  out: Float64Array,
  runs: boolean,
): number {
  const r = mapped;
  r.ns = 0;
  r.pages = 0;
  const iova = dma.iova + off * PAGE_SIZE;
  try {
    if (runs) s.core.mapFrames(domain, iova, out, 0, n, dma.prot, r);
    else s.core.mapPages(domain, iova, out, 0, n, dma.prot, r);
  } finally {
    dma.mappedPages += r.pages;
  }
  return r.ns;
}

/** PFN of page `page` of `dma` (from the mm: a hugetlb folio's pages). */
function pfnAt(s: VfioState, dma: VfioDma, page: number): number {
  return s.mm.hvaToPfn(dma.vaddr + page * PAGE_SIZE);
}

/** Maps the contiguous run of `n` pages at page `page` of `dma` to `pfn`. */
function mapRun(
  s: VfioState,
  dma: VfioDma,
  domain: IommuDomain,
  page: number,
  n: number,
  pfn: number,
): number {
  const ns = s.core.map(
    domain,
    dma.iova + page * PAGE_SIZE,
    pfn * PAGE_SIZE,
    n * PAGE_SIZE,
    dma.prot,
  );
  dma.mappedPages += n;
  return ns;
}

/** Counts `pinned` pages pinned and `locked` charged by `dma` (peaks too). */
export function addPinned(
  s: VfioState,
  dma: VfioDma,
  pinned: number,
  locked: number,
): void {
  dma.pinnedPages += pinned;
  dma.lockedPages += locked;
  s.pinned += pinned;
  s.locked += locked;
  if (s.pinned > s.pinnedPeak) s.pinnedPeak = s.pinned;
  if (s.locked > s.lockedPeak) s.lockedPeak = s.locked;
}

/** Unpins and uncharges pages [off, off + n) of a pinned dma. Returns ns. */
export function releasePinned(
  s: VfioState,
  dma: VfioDma,
  off: number,
  n: number,
): number {
  const ns = s.mm.unpinUserPages(dma.vaddr + off * PAGE_SIZE, n);
  s.mm.accountLockedVm(n, false);
  dma.pinnedPages -= n;
  dma.lockedPages -= n;
  s.pinned -= n;
  s.locked -= n;
  return ns;
}

/**
 * vfio_remove_dma() with vfio_unmap_unpin(): unmaps the whole range (one
 * unmap, one sync), then releases the pins it held (all pages of a pinned
 * range, the bitmap's runs of an IOPF one) when the sync completed; `done`
 * then. Returns the CPU cost.
 */
export function unmapUnpin(
  s: VfioState,
  dma: VfioDma,
  done: () => void,
): number {
  dma.removed = true;
  dma.notifier?.unregister();
  dma.notifier = undefined;
  const domain = s.domain!;
  const release = (): number => {
    let ns = 0;
    if (dma.mode === "pinned") {
      // [0, pinnedPages): all of it, or the part a stepped pin reached.
      if (dma.pinnedPages > 0) {
        ns += releasePinned(s, dma, 0, dma.pinnedPages);
      }
    } else if (dma.mode === "iopf" && dma.pinnedPages > 0) {
      const bits = dma.bitmap!;
      let a = nextSet(bits, 0, dma.npages);
      while (a < dma.npages) {
        const b = nextClear(bits, a, dma.npages);
        ns += releasePinned(s, dma, a, b - a);
        a = nextSet(bits, b, dma.npages);
      }
    }
    return ns;
  };
  let ns = 0;
  if (dma.mappedPages > 0) {
    const r = s.core.unmap(domain, dma.iova, dma.size, () => {
      release();
      done();
    });
    ns += r.ns;
    // The unpin work happens when the sync completes; count its CPU time here.
    ns += s.costs["mm.unpinPer4k"] * dma.pinnedPages;
  } else {
    ns += release();
    s.sim.after(0, done);
  }
  dma.mappedPages = 0;
  return ns;
}
