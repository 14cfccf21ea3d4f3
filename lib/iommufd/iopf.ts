/**
 * What-if, not in any kernel: an in-kernel I/O page fault handler for a
 * paging HWPT of a fault-mapped IOAS, the 2021 RFC's type1 handler
 * (vfio_iommu_type1_dma_map_iopf) carried over to iommufd. Under the IOAS's
 * IOVA lock, each fault of a group finds its iopt_area, checks the
 * permission, pins the faulting page and up to `premapPages - 1` following
 * ones not pinned yet (pin_user_pages, locked_vm), maps them into the
 * domain and answers the group once. Mainline iommufd has nothing of this:
 * iommufd_hwpt_paging_alloc refuses IOMMU_HWPT_FAULT_ID_VALID (Linux 6.11,
 * hw_pagetable.c), and every IOAS mapping is pinned at IOMMU_IOAS_MAP.
 *
 * @module
 */
import type { IommuDomain } from "../iommu/core.ts";
import type { IopfGroup } from "../iommu/io_pgfault.ts";
import {
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
  IOMMU_PAGE_RESP_INVALID,
  IOMMU_PAGE_RESP_SUCCESS,
  type IommuFault,
  type PageResponseCode,
} from "../iommu/types.ts";
import { IopfLabError } from "../sim/errors.ts";
import { alignDown, PAGE_SIZE, PROT_READ, PROT_WRITE } from "../sim/units.ts";
import type { IommufdIoas } from "./ioas.ts";

/**
 * The what-if handler of `ioas` for faults translated by `domain` (the
 * paging HWPT, or a nested HWPT's stage-2 parent): takes the IOVA lock,
 * handles each fault, unlocks after their time and responds after
 * `iommufd.iopfRespond`; `done` (the IOPF work item) then.
 */
export function ioasIopfHandler(
  ioas: IommufdIoas,
  domain: IommuDomain,
  group: IopfGroup,
  done: () => void,
): void {
  const sim = ioas._sim;
  const t0 = sim.now;
  ioas.counters.add("iommufd.iopf.groups");
  ioas.lock.acquireSlot(() => {
    let ns = 0;
    let code: PageResponseCode = IOMMU_PAGE_RESP_SUCCESS;
    for (const f of group.faults) {
      const r = handleFault(ioas, domain, f);
      ns += r.ns;
      if (!r.ok) {
        code = IOMMU_PAGE_RESP_INVALID;
        break;
      }
    }
    sim.after(ns, () => {
      ioas.lock.releaseSlot();
      sim.after(ioas._costs["iommufd.iopfRespond"], () => {
        ioas.handlerNs.record(sim.now - t0);
        ioas._core.pageResponse(group.dev, group, code);
        done();
      });
    });
  });
}

function invalid(
  ioas: IommufdIoas,
  why: string,
  ns: number,
): { ok: boolean; ns: number } {
  ioas.counters.add("iommufd.iopf.invalid");
  ioas.counters.add(`iommufd.iopf.invalid.${why}`);
  return { ok: false, ns };
}

/** One fault: pins and maps its page and the pre-map window. */
function handleFault(
  ioas: IommufdIoas,
  domain: IommuDomain,
  f: IommuFault,
): { ok: boolean; ns: number } {
  const k = ioas._costs;
  const mm = ioas._mm;
  ioas.counters.add("iommufd.iopf.faults");
  let ns = k["iommufd.iopfLookup"];
  const addr = f.stage === 2 && f.ipa >= 0 ? f.ipa : f.addr;
  const iova = alignDown(addr, PAGE_SIZE);
  const area = ioas._findArea(iova);
  if (!area || !area.faulted) return invalid(ioas, "noArea", ns);
  if (
    ((f.perm & IOMMU_FAULT_PERM_WRITE) !== 0 &&
      (area.prot & PROT_WRITE) === 0) ||
    ((f.perm & IOMMU_FAULT_PERM_READ) !== 0 && (area.prot & PROT_READ) === 0)
  ) {
    return invalid(ioas, "perm", ns);
  }
  const faulted = area.faulted;
  const p = (iova - area.iova) / PAGE_SIZE;
  if (faulted[p]) {
    ioas.counters.add("iommufd.iopf.raced");
    return { ok: true, ns };
  }
  let end = Math.min(area.npages, p + ioas.premapPages);
  // The window stops at the first page already pinned.
  for (let q = p + 1; q < end; q++) {
    if (faulted[q]) {
      end = q;
      break;
    }
  }
  const n = Math.min(end - p, ioas._account.headroom);
  if (n <= 0) return invalid(ioas, "memlock", ns);
  let pinned = n;
  const out = ioas._pfnBuf(n);
  const va = area.userVa + p * PAGE_SIZE;
  try {
    ns += mm.pinUserPages(va, n, { longterm: true, out }).ns;
  } catch (e) {
    if (!(e instanceof IopfLabError)) throw e;
    if (n === 1) return invalid(ioas, e.code, ns);
    try {
      ns += mm.pinUserPages(va, 1, { longterm: true, out }).ns;
      pinned = 1;
    } catch (e1) {
      if (!(e1 instanceof IopfLabError)) throw e1;
      return invalid(ioas, e1.code, ns);
    }
  }
  try {
    ioas._account.update(pinned, true);
  } catch (e) {
    mm.unpinUserPages(va, pinned);
    if (!(e instanceof IopfLabError)) throw e;
    return invalid(ioas, e.code, ns);
  }
  ns += ioas._mapRuns(area, domain, p, pinned, out);
  faulted.fill(1, p, p + pinned);
  ioas._addPinned(area, pinned);
  ioas.counters.add("iommufd.iopf.mappedPages", pinned);
  ioas.counters.add("iommufd.iopf.premappedPages", pinned - 1);
  return { ok: true, ns };
}
