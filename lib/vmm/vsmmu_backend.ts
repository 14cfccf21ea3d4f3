/**
 * The VMM's vSMMU backend (QEMU's side of nested IOPF): it waits on the
 * VFIO DMA fault region's eventfd, turns fault records into vSMMU events
 * injected into the guest, and turns the guest's CMD_RESUME / CMD_PRI_RESP
 * and TLB invalidations back into VFIO responses and cache invalidations.
 *
 * @module
 */
import type { IommuDevice } from "../iommu/types.ts";
import type { Costs } from "../sim/costs.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Counters } from "../sim/stats.ts";
import type { VfioContainer } from "../vfio/container.ts";
import {
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  type VfioDmaFaultRegion,
  type VfioFaultRecord,
} from "../vfio/fault_region.ts";
import type { VSmmu, VSmmuCommand, VSmmuFaultKind } from "./vsmmu.ts";

/** Options of {@linkcode VmmSmmuBackend}. */
export interface VmmSmmuBackendOptions {
  /** The cost profile (vmm.injectEvent, vfio.responseWrite). */
  costs: Costs;
  /** The VFIO container of the VM (a nesting container). */
  container: VfioContainer;
  /** Its DMA fault region. */
  region: VfioDmaFaultRegion;
  /** The vSMMU presented to the guest. */
  vsmmu: VSmmu;
  /**
   * How the guest sees a device's faults. Default: `"pri"` for a device
   * with PRI, else `"stall"`.
   */
  faultKind?: (dev: IommuDevice) => VSmmuFaultKind;
}

/**
 * The backend. One VMM thread serves the eventfd: it reads every record,
 * then injects them one by one (`vmm.injectEvent` each). A record the vSMMU
 * cannot take (its event queue is full) is answered INVALID at once: the
 * guest would never see it, and a host fault is never completed by a
 * timeout. Guest responses cost the trap (in the vSMMU) plus
 * `vfio.responseWrite` before the vCPU continues.
 */
export class VmmSmmuBackend {
  /** Counters (`vmm.*`). */
  readonly counters: Counters = new Counters();
  readonly #sim: Simulator;
  readonly #costs: Costs;
  readonly #container: VfioContainer;
  readonly #region: VfioDmaFaultRegion;
  readonly #vsmmu: VSmmu;
  readonly #kind: (dev: IommuDevice) => VSmmuFaultKind;
  /** Records to inject: [#head, #tail) (the storage is kept when it empties). */
  #queue: (VfioFaultRecord | undefined)[] = [];
  #head = 0;
  #tail = 0;
  #busy = false;
  /** The record being injected (one at a time). */
  #rec: VfioFaultRecord | undefined = undefined;
  /** Event: the record in `#rec` reaches the vSMMU, then the next one goes. */
  readonly #injectNext = (): void => {
    const rec = this.#rec!;
    this.#rec = undefined;
    this.#inject(rec);
    this.#next();
  };
  readonly #dropped = new Set<number>();

  /** Wires the backend to the region's eventfd and the vSMMU's command traps. */
  constructor(sim: Simulator, options: VmmSmmuBackendOptions) {
    this.#sim = sim;
    this.#costs = options.costs;
    this.#container = options.container;
    this.#region = options.region;
    this.#vsmmu = options.vsmmu;
    this.#kind = options.faultKind ?? ((dev) => dev.pri ? "pri" : "stall");
    this.#region.onEventfd(() => this.#wake());
    this.#vsmmu.onCommand((cmd, done) => this.#command(cmd, done));
  }

  #wake(): void {
    this.#region.readEventfd();
    const recs = this.#region.readRecords();
    this.counters.add("vmm.wakeups");
    this.counters.add("vmm.records", recs.length);
    for (let i = 0; i < recs.length; i++) this.#queue[this.#tail++] = recs[i]!;
    if (!this.#busy) this.#next();
  }

  #next(): void {
    // A FIFO with a head index (no shift per record); emptied when drained.
    const q = this.#queue;
    if (this.#head >= this.#tail) {
      this.#head = 0;
      this.#tail = 0;
      this.#busy = false;
      return;
    }
    this.#rec = q[this.#head]!;
    q[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#tail) {
      // Never empty for long: move the live part to the front.
      this.#queue = q.slice(this.#head, this.#tail);
      this.#tail -= this.#head;
      this.#head = 0;
    }
    this.#busy = true;
    this.#sim.after(this.#costs["vmm.injectEvent"], this.#injectNext);
  }

  #inject(rec: VfioFaultRecord): void {
    if (this.#dropped.has(rec.cookie)) {
      if (rec.flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE) {
        this.#dropped.delete(rec.cookie);
      }
      return;
    }
    const dev = this.#container.deviceById(rec.devId);
    const ok = this.#vsmmu.injectEvent({
      token: rec.cookie,
      devId: rec.devId,
      kind: dev ? this.#kind(dev) : "stall",
      addr: rec.addr,
      perm: rec.perm,
      pasid: rec.pasid,
      pasidValid: (rec.flags & IOMMU_PGFAULT_FLAGS_PASID_VALID) !== 0,
      grpid: rec.grpid,
      last: (rec.flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE) !== 0,
    });
    this.counters.add(ok ? "vmm.injected" : "vmm.injectFailures");
    if (!ok) {
      this.#region.writeResponse({
        cookie: rec.cookie,
        code: IOMMUFD_PAGE_RESP_INVALID,
      });
      if (!(rec.flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE)) {
        this.#dropped.add(rec.cookie);
      }
    }
  }

  #command(cmd: VSmmuCommand, done: () => void): void {
    if (cmd.op === "tlbi") {
      this.counters.add("vmm.cacheInvalidations");
      this.#container.cacheInvalidate({ iova: cmd.iova, size: cmd.size }, done);
      return;
    }
    const ok = cmd.op === "resume" ? cmd.retry : cmd.resp === "success";
    this.counters.add("vmm.responses");
    this.#region.writeResponse({
      cookie: cmd.token,
      code: ok ? IOMMUFD_PAGE_RESP_SUCCESS : IOMMUFD_PAGE_RESP_INVALID,
    });
    this.#sim.after(this.#costs["vfio.responseWrite"], done);
  }
}
