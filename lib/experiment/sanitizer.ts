/**
 * The DMA isolation sanitizer: every page access a device completes is
 * checked against the truth of that moment. The host page reached must be
 * the one the device's domain maps for that IOVA now (through the guest's
 * stage 1 in nested mode) and must back that VM's guest RAM at that
 * guest-physical address. Anything else is an isolation violation.
 *
 * What "now" means follows the invalidation mode. In strict mode an unmap is
 * complete only when its IOTLB sync completes, so an access through a stale
 * IOTLB entry while the sync is in flight, to a page that still backs the
 * guest, is not a violation (the kernel has not released the page yet). In
 * lazy mode iommu_unmap returns before the flush, the caller may release the
 * page, and an access through a stale entry is a violation: the exposure
 * that lazy mode trades for throughput, counted here and timed by the flush
 * queue. In nested mode, the guest's own stage-1 staleness within its
 * pending TLBI is the guest's business; the host checks stage 2 and page
 * ownership.
 *
 * Per mode, the address the domain translates and the GPA the page must
 * back: the IOVA is the GPA in static-pin, iopf and coiommu; nested mode
 * translates the IOVA through the guest's stage 1 to the GPA, which stage 2
 * maps; in viommu-pin the domain maps the guest's IOVA straight to the
 * buffer's host pages, and the GPA comes from the vIOMMU's records of what
 * the guest mapped (kept until the VMM's UNMAP_DMA completed).
 *
 * A page that passed the full check is remembered (per VM, a direct-mapped
 * cache of IOVA page -> host page) and a later access to the same page with
 * the same host page passes without the walk and the VMA lookup, as long as
 * nothing that could change the answer has happened since: the VM's domain
 * is the same object, no I/O page table of the process unmapped anything
 * (`IoPgtable.unmapGeneration`: the domains' stage 2 and the guests' stage
 * 1 alike; map never replaces a translation) and the VM's mm invalidated
 * nothing (`MmStruct.unmapGeneration`). Any of those moving empties the
 * cache, so the check stays exact. Only the plain success path is
 * remembered (not an access allowed by a pending sync, nor one whose guest
 * mapping is gone, nor the vIOMMU's shadow mode, whose records the VMM
 * keeps outside any page table).
 *
 * @module
 */
import type { IommuDomain } from "../iommu/mod.ts";
import { IoPgtable } from "../pgtable/mod.ts";
import { hex } from "../sim/errors.ts";
import { PAGE_SHIFT } from "../sim/units.ts";
import {
  GUEST_RAM_BASE,
  type Machine,
  vmDomain,
  type VmInstance,
} from "./machine.ts";

/** How many violations are described in detail. */
const EXAMPLES = 5;
/** Entries of each VM's cache of checked pages (a power of two). */
const CACHE_ENTRIES = 4096;

/** Options of {@linkcode IsolationSanitizer}. */
export interface IsolationSanitizerOptions {
  /**
   * Remember checked pages until a generation moves (see the module
   * documentation). Off, every access takes the full check: the same
   * verdicts, slower. [true]
   */
  readonly cache?: boolean;
}

/**
 * One VM's cache of pages that passed the full check. An entry is valid
 * while its epoch is the cache's; a new epoch (when a generation moved)
 * empties the cache in O(1).
 */
class CheckedPages {
  /** IOVA page number of each entry. */
  readonly tag = new Float64Array(CACHE_ENTRIES);
  /** Host address of the page's start, per entry. */
  readonly page = new Float64Array(CACHE_ENTRIES);
  /** The epoch each entry was filled in (0: never). */
  readonly filled = new Uint32Array(CACHE_ENTRIES);
  epoch = 1;
  domain: IommuDomain | undefined = undefined;
  pgtableGen = -1;
  mmGen = -1;

  /** Starts a new epoch unless the generations are those of the current one. */
  revalidate(domain: IommuDomain, vm: VmInstance): void {
    const pg = IoPgtable.unmapGeneration, mg = vm.mm.unmapGeneration;
    if (domain === this.domain && pg === this.pgtableGen && mg === this.mmGen) {
      return;
    }
    if (++this.epoch === 2 ** 32) {
      this.filled.fill(0);
      this.epoch = 1;
    }
    this.domain = domain;
    this.pgtableGen = pg;
    this.mmGen = mg;
  }
}

/** Observes every device's page accesses and counts isolation violations. */
export class IsolationSanitizer {
  /** Accesses checked. */
  checked = 0;
  /** Of the accesses checked, those answered from the cache of checked pages. */
  cached = 0;
  /** Accesses that reached a page not mapped for that device at that moment. */
  violations = 0;
  /** Of the violations, those through entries waiting on the lazy flush queue. */
  lazyExposures = 0;
  /** The first few violations, described. */
  readonly examples: string[] = [];
  readonly #m: Machine;

  /** Hooks into every VM's device of `m`. */
  constructor(m: Machine, options: IsolationSanitizerOptions = {}) {
    this.#m = m;
    const cache = options.cache ?? true;
    for (const vm of m.vms) {
      const pages = cache && vm.dmaOps.translation !== "shadow"
        ? new CheckedPages()
        : undefined;
      vm.device.onAccess = pages
        ? (iova, pa, write) => this.#cached(vm, pages, iova, pa, write)
        : (iova, pa, write) => this.#check(vm, iova, pa, write);
    }
  }

  #cached(
    vm: VmInstance,
    pages: CheckedPages,
    iova: number,
    pa: number,
    write: boolean,
  ): void {
    const domain = vm.container.domain;
    if (domain) {
      pages.revalidate(domain, vm);
      const off = iova % 4096;
      const pn = (iova - off) / 4096;
      const k = pn & (CACHE_ENTRIES - 1);
      if (
        pages.filled[k] === pages.epoch && pages.tag[k] === pn &&
        pages.page[k] === pa - off
      ) {
        this.checked++;
        this.cached++;
        return;
      }
      if (this.#check(vm, iova, pa, write)) {
        pages.tag[k] = pn;
        pages.page[k] = pa - off;
        pages.filled[k] = pages.epoch;
      }
      return;
    }
    this.#check(vm, iova, pa, write);
  }

  /** Longest time an unmapped range stayed reachable before its lazy flush (ns). */
  get lazyExposureNsMax(): number {
    return this.#m.core.flushQueue.exposureNs.max;
  }

  /**
   * The full check of one access; true when it passed on the plain path
   * (the domain maps the page there now and it backs the guest's GPA), the
   * only verdict the cache may remember.
   */
  #check(vm: VmInstance, iova: number, pa: number, write: boolean): boolean {
    this.checked++;
    const m = this.#m;
    const domain = vmDomain(vm);
    if (!domain) {
      this.#violate(vm, iova, pa, write, "the device has no domain");
      return false;
    }
    let gpa = iova;
    // The address the container's domain translates.
    let addr = iova;
    const ops = vm.dmaOps;
    if (ops.translation === "stage1") {
      const g = ops.iovaToGpa(iova);
      if (g < 0) {
        // Unmapped by the guest; its TLBI may be in flight. Check ownership only.
        this.#checkOwned(vm, iova, pa, write);
        return false;
      }
      gpa = g;
      addr = g;
    } else if (ops.translation === "shadow") {
      gpa = ops.iovaToGpa(iova);
      if (gpa < 0) {
        this.#violate(
          vm,
          iova,
          pa,
          write,
          "the guest has no buffer mapped at this IOVA",
        );
        return false;
      }
    }
    const expected = m.core.iovaToPhys(domain, addr);
    if (expected === pa) return this.#checkOwned(vm, iova, pa, write, gpa);
    const dd = domain.driverDomain;
    if (m.core.flushQueue.isExposed(dd, addr)) {
      this.lazyExposures++;
      this.#violate(
        vm,
        iova,
        pa,
        write,
        "reached through a stale IOTLB entry awaiting the lazy flush",
      );
      return false;
    }
    for (const p of m.core.pendingSyncs) {
      if (p.domain === domain && addr >= p.start && addr < p.end) {
        this.#checkOwned(vm, iova, pa, write, gpa);
        return false;
      }
    }
    this.#violate(
      vm,
      iova,
      pa,
      write,
      expected < 0
        ? "the domain maps nothing at this address"
        : `the domain maps it to ${hex(expected)}`,
    );
    return false;
  }

  /**
   * The page must back this VM's guest RAM (at `gpa` when known); true when
   * it was known and does.
   */
  #checkOwned(
    vm: VmInstance,
    iova: number,
    pa: number,
    write: boolean,
    gpa = -1,
  ): boolean {
    const pfn = Math.floor(pa / 2 ** PAGE_SHIFT);
    if (gpa >= 0) {
      const off = gpa - GUEST_RAM_BASE;
      if (off < 0 || off >= vm.ramSize) {
        this.#violate(
          vm,
          iova,
          pa,
          write,
          `GPA ${hex(gpa)} is outside guest RAM`,
        );
        return false;
      }
      if (vm.mm.hvaToPfn(vm.hva + off) !== pfn) {
        this.#violate(
          vm,
          iova,
          pa,
          write,
          `the page no longer backs GPA ${hex(gpa)} (freed or reused)`,
        );
        return false;
      }
      return true;
    }
    // No GPA: the guest unmapped its IOVA and its TLBI is in flight. Which
    // guest page the stale entry points to is the guest's concern (see above).
    return false;
  }

  #violate(
    vm: VmInstance,
    iova: number,
    pa: number,
    write: boolean,
    why: string,
  ): void {
    this.violations++;
    if (this.examples.length < EXAMPLES) {
      this.examples.push(
        `${vm.device.name} ${write ? "write" : "read"} IOVA ${
          hex(iova)
        } reached page ${hex(pa)} at ${this.#m.sim.now} ns: ${why}`,
      );
    }
  }
}
