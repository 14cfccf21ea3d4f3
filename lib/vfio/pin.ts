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

/** vfio_pin_map_dma(): pins, charges and maps the whole range, or nothing. */
export function pinAndMapAll(
  s: VfioState,
  dma: VfioDma,
  domain: IommuDomain,
): number {
  const mm = s.mm;
  let ns = 0;
  let done = 0; // pages pinned, charged and mapped
  try {
    while (done < dma.npages) {
      const hva = dma.vaddr + done * PAGE_SIZE;
      const vma = mm.findVma(hva);
      if (!vma) {
        throw new IopfLabError(
          "EFAULT",
          `Cannot pin DMA vaddr ${hex(hva)} (IOVA ${
            hex(dma.iova + done * PAGE_SIZE)
          }): not mapped`,
        );
      }
      const n = Math.min(
        dma.npages - done,
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
            dma.npages - done
          } pages exceeds RLIMIT_MEMLOCK of ${limitPages(s)} pages`,
        );
      }
      const huge = vma.backing === "hugetlb-2m" ||
        vma.backing === "hugetlb-1g";
      const out = huge ? undefined : pfnBuf(s, n);
      const r = mm.pinUserPages(
        hva,
        n,
        out ? { longterm: true, out } : { longterm: true },
      );
      ns += r.ns +
        s.costs["mm.pinCall"] * (Math.ceil(n / VFIO_PIN_BATCH_PAGES) - 1);
      try {
        mm.accountLockedVm(n, true);
      } catch (e) {
        mm.unpinUserPages(hva, n);
        throw e;
      }
      addPinned(s, dma, n, n);
      ns += mapPinned(
        s,
        dma,
        domain,
        done,
        n,
        out ?? null,
        huge ? vma : null,
      );
      done += n;
    }
  } catch (e) {
    // Runs are mapped in order: [0, mappedPages) is mapped, [0, pinnedPages) pinned.
    if (dma.mappedPages > 0) {
      s.core.unmap(domain, dma.iova, dma.mappedPages * PAGE_SIZE);
      dma.mappedPages = 0;
    }
    if (dma.pinnedPages > 0) releasePinned(s, dma, 0, dma.pinnedPages);
    throw e;
  }
  return ns;
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
  const folio = hugeVma ? hugeVma.pageSize / PAGE_SIZE : 1;
  const hvaPage0 = dma.vaddr / PAGE_SIZE + off;
  let ns = 0;
  let runStart = 0;
  let runPfn = out ? out[0]! : pfnAt(s, dma, off);
  let i = 0;
  for (;;) {
    const next = out ? i + 1 : i + folio - ((hvaPage0 + i) % folio);
    if (next >= n) break;
    const pfn = out ? out[next]! : pfnAt(s, dma, off + next);
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
  let ns = 0;
  for (let i = 0; i < n; i++) {
    ns += mapRun(s, dma, domain, off + i, 1, out[i]!);
  }
  return ns;
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
      if (dma.pinnedPages > 0) ns += releasePinned(s, dma, 0, dma.npages);
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
