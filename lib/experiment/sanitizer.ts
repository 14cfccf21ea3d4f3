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
 * @module
 */
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

/** Observes every device's page accesses and counts isolation violations. */
export class IsolationSanitizer {
  /** Accesses checked. */
  checked = 0;
  /** Accesses that reached a page not mapped for that device at that moment. */
  violations = 0;
  /** Of the violations, those through entries waiting on the lazy flush queue. */
  lazyExposures = 0;
  /** The first few violations, described. */
  readonly examples: string[] = [];
  readonly #m: Machine;

  /** Hooks into every VM's device of `m`. */
  constructor(m: Machine) {
    this.#m = m;
    for (const vm of m.vms) {
      vm.device.onAccess = (iova, pa, write) =>
        this.#check(vm, iova, pa, write);
    }
  }

  /** Longest time an unmapped range stayed reachable before its lazy flush (ns). */
  get lazyExposureNsMax(): number {
    return this.#m.core.flushQueue.exposureNs.max;
  }

  #check(vm: VmInstance, iova: number, pa: number, write: boolean): void {
    this.checked++;
    const m = this.#m;
    const domain = vmDomain(vm);
    if (!domain) {
      return this.#violate(vm, iova, pa, write, "the device has no domain");
    }
    let gpa = iova;
    // The address the container's domain translates.
    let addr = iova;
    const ops = vm.dmaOps;
    if (ops.translation === "stage1") {
      const g = ops.iovaToGpa(iova);
      if (g < 0) {
        // Unmapped by the guest; its TLBI may be in flight. Check ownership only.
        return this.#checkOwned(vm, iova, pa, write);
      }
      gpa = g;
      addr = g;
    } else if (ops.translation === "shadow") {
      gpa = ops.iovaToGpa(iova);
      if (gpa < 0) {
        return this.#violate(
          vm,
          iova,
          pa,
          write,
          "the guest has no buffer mapped at this IOVA",
        );
      }
    }
    const expected = m.core.iovaToPhys(domain, addr);
    if (expected === pa) return this.#checkOwned(vm, iova, pa, write, gpa);
    const dd = domain.driverDomain;
    if (m.core.flushQueue.isExposed(dd, addr)) {
      this.lazyExposures++;
      return this.#violate(
        vm,
        iova,
        pa,
        write,
        "reached through a stale IOTLB entry awaiting the lazy flush",
      );
    }
    for (const p of m.core.pendingSyncs) {
      if (p.domain === domain && addr >= p.start && addr < p.end) {
        return this.#checkOwned(vm, iova, pa, write, gpa);
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
  }

  /** The page must back this VM's guest RAM (at `gpa` when known). */
  #checkOwned(
    vm: VmInstance,
    iova: number,
    pa: number,
    write: boolean,
    gpa = -1,
  ): void {
    const pfn = Math.floor(pa / 2 ** PAGE_SHIFT);
    if (gpa >= 0) {
      const off = gpa - GUEST_RAM_BASE;
      if (off < 0 || off >= vm.ramSize) {
        return this.#violate(
          vm,
          iova,
          pa,
          write,
          `GPA ${hex(gpa)} is outside guest RAM`,
        );
      }
      if (vm.mm.hvaToPfn(vm.hva + off) !== pfn) {
        return this.#violate(
          vm,
          iova,
          pa,
          write,
          `the page no longer backs GPA ${hex(gpa)} (freed or reused)`,
        );
      }
      return;
    }
    // No GPA: the guest unmapped its IOVA and its TLBI is in flight. Which
    // guest page the stale entry points to is the guest's concern (see above).
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
