/**
 * A test double of an IOMMU driver: paging domains over a real IoPgtable,
 * IOTLB syncs and attaches that complete after a fixed delay (a blocking
 * sync returns that delay), page responses
 * recorded, and a way to inject recoverable faults into the core.
 *
 * @module
 */
import type { Costs } from "../../lib/sim/costs.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import type { Simulator } from "../../lib/sim/simulator.ts";
import type { Prot } from "../../lib/sim/units.ts";
import { IoPgtable } from "../../lib/pgtable/mod.ts";
import {
  type DriverDomain,
  type FaultSource,
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  IOMMU_FAULT_PERM_READ,
  type IommuDevice,
  type IommuDriverOps,
  type IommuFault,
  type IommuFaultSink,
  type IommuVmaster,
  type IotlbGather,
  type NestedConfig,
  type PageResponseCode,
} from "../../lib/iommu/types.ts";

/** A response the fake hardware received. */
export interface FakeResponse {
  dev: IommuDevice;
  fault: IommuFault;
  code: PageResponseCode;
  at: number;
}

/** What to inject: the fields of an IommuFault, most with defaults. */
export interface InjectOptions {
  addr: number;
  perm?: number;
  grpid?: number;
  last?: boolean;
  pasid?: number;
  stage?: 1 | 2;
  ipa?: number;
  source?: FaultSource;
}

interface FakeDomain extends DriverDomain {
  pt: IoPgtable | null;
  config?: NestedConfig;
}

/** Makes a device. */
export function fakeDevice(
  name: string,
  sid: number,
  pri = false,
): IommuDevice {
  return { name, sid, ats: pri, pri, stall: !pri };
}

/** The fake driver. */
export class FakeIommuDriver implements IommuDriverOps {
  readonly name = "fake-iommu";
  readonly sim: Simulator;
  readonly costs: Costs;
  /** Delay of an IOTLB sync / flush (ns). */
  syncNs: number;
  /** Delay of an attach / detach (ns). */
  attachNs: number;
  sink: IommuFaultSink | undefined;
  readonly responses: FakeResponse[] = [];
  /** IOTLB syncs received; `blocking` for iotlbSyncBlocking. */
  readonly syncs: {
    domain: DriverDomain;
    gather: IotlbGather;
    at: number;
    blocking: boolean;
  }[] = [];
  readonly flushes: { domain: DriverDomain; at: number }[] = [];
  readonly attached = new Map<IommuDevice, DriverDomain>();
  readonly iopfEnabled = new Set<IommuDevice>();
  readonly domains = new Map<number, FakeDomain>();
  #nextDomain = 1;
  #nextGrp = 1;

  constructor(
    sim: Simulator,
    options: { costs?: Costs; syncNs?: number; attachNs?: number } = {},
  ) {
    this.sim = sim;
    this.costs = options.costs ?? loadCostProfile();
    this.syncNs = options.syncNs ?? 1500;
    this.attachNs = options.attachNs ?? 1000;
  }

  /** Connects the fault sink (the core). */
  bind(sink: IommuFaultSink): this {
    this.sink = sink;
    return this;
  }

  domainAllocPaging(stage: 1 | 2): DriverDomain {
    const d: FakeDomain = {
      id: this.#nextDomain++,
      kind: stage === 1 ? "paging-s1" : "paging-s2",
      pgsizeBitmap: 0x1000 | 0x200000 | 0x40000000,
      pt: new IoPgtable({ stage }),
    };
    this.domains.set(d.id, d);
    return d;
  }

  domainAllocNested(parent: DriverDomain, config: NestedConfig): DriverDomain {
    const d: FakeDomain = {
      id: this.#nextDomain++,
      kind: "nested",
      pgsizeBitmap: parent.pgsizeBitmap,
      parent,
      pt: null,
      config,
    };
    this.domains.set(d.id, d);
    return d;
  }

  domainFree(domain: DriverDomain): void {
    this.domains.delete(domain.id);
  }

  attachDev(dev: IommuDevice, domain: DriverDomain, done: () => void): void {
    this.attached.set(dev, domain);
    this.sim.after(this.attachNs, done);
  }

  detachDev(dev: IommuDevice, done: () => void): void {
    this.attached.delete(dev);
    this.sim.after(this.attachNs, done);
  }

  enableIopf(dev: IommuDevice): void {
    this.iopfEnabled.add(dev);
  }

  disableIopf(dev: IommuDevice): void {
    this.iopfEnabled.delete(dev);
  }

  /** The vIOMMU binding of each device (set by iommufd on a nested attach). */
  readonly vmasters: Map<IommuDevice, IommuVmaster> = new Map();

  setVmaster(dev: IommuDevice, vmaster: IommuVmaster | undefined): void {
    if (vmaster) this.vmasters.set(dev, vmaster);
    else this.vmasters.delete(dev);
  }

  #pt(domain: DriverDomain): IoPgtable {
    const pt = this.domains.get(domain.id)?.pt;
    if (!pt) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot use domain ${domain.id}: no page table`,
      );
    }
    return pt;
  }

  map(
    domain: DriverDomain,
    iova: number,
    paddr: number,
    size: number,
    prot: Prot,
  ): number {
    const pt = this.#pt(domain);
    const s = pt.stats;
    const leaves = s.leavesWritten, tables = s.tablesAllocated;
    pt.map(iova, paddr, size, prot);
    return (s.leavesWritten - leaves) * this.costs["iommu.mapPerPte"] +
      (s.tablesAllocated - tables) * this.costs["iommu.tableAlloc"];
  }

  unmap(
    domain: DriverDomain,
    iova: number,
    size: number,
    gather: IotlbGather,
  ): { bytes: number; ns: number } {
    const pt = this.#pt(domain);
    const s = pt.stats;
    const cleared = s.leavesCleared;
    const bytes = pt.unmap(iova, size);
    const n = s.leavesCleared - cleared;
    if (bytes > 0) {
      gather.start = Math.min(gather.start, iova);
      gather.end = Math.max(gather.end, iova + size);
      gather.pgsize = gather.pgsize === 0
        ? 0x1000
        : Math.min(gather.pgsize, 0x1000);
      gather.entries += n;
    }
    return { bytes, ns: n * this.costs["iommu.unmapPerPte"] };
  }

  iovaToPhys(domain: DriverDomain, iova: number): number {
    return this.#pt(domain).iovaToPhys(iova);
  }

  iotlbSync(domain: DriverDomain, gather: IotlbGather, done: () => void): void {
    this.syncs.push({
      domain,
      gather: { ...gather },
      at: this.sim.now,
      blocking: false,
    });
    this.sim.after(this.syncNs, done);
  }

  /** Records the sync, resets the gather and returns `syncNs` (0 when empty). */
  iotlbSyncBlocking(domain: DriverDomain, gather: IotlbGather): number {
    if (!(gather.end > gather.start)) return 0;
    this.syncs.push({
      domain,
      gather: { ...gather },
      at: this.sim.now,
      blocking: true,
    });
    Object.assign(gather, { start: Infinity, end: 0, pgsize: 0, entries: 0 });
    return this.syncNs;
  }

  flushIotlbAll(domain: DriverDomain, done: () => void): void {
    this.flushes.push({ domain, at: this.sim.now });
    this.sim.after(this.syncNs, done);
  }

  pageResponse(
    dev: IommuDevice,
    fault: IommuFault,
    code: PageResponseCode,
  ): void {
    this.responses.push({ dev, fault, code, at: this.sim.now });
  }

  /** Responses sent for the group whose LAST fault is `fault`. */
  responsesFor(fault: IommuFault): FakeResponse[] {
    return this.responses.filter((r) => r.fault === fault);
  }

  /** Builds a fault (LAST by default, a fresh grpid unless given). */
  fault(options: InjectOptions): IommuFault {
    const last = options.last ?? true;
    let flags = last ? IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE : 0;
    if (options.pasid !== undefined) {
      flags |= IOMMU_FAULT_PAGE_REQUEST_PASID_VALID;
    }
    return {
      type: "page-req",
      flags,
      pasid: options.pasid ?? 0,
      grpid: options.grpid ?? this.#nextGrp++,
      perm: options.perm ?? IOMMU_FAULT_PERM_READ,
      addr: options.addr,
      stage: options.stage ?? 2,
      ipa: options.ipa ?? -1,
      source: options.source ?? "stall",
      detectedAt: this.sim.now,
    };
  }

  /** Reports a fault to the bound core; returns it. */
  inject(dev: IommuDevice, options: InjectOptions): IommuFault {
    if (!this.sink) throw new Error("FakeIommuDriver: bind(core) first");
    const f = this.fault(options);
    this.sink.reportDeviceFault(dev, f);
    return f;
  }
}
