/**
 * The Linux IOMMU core model (drivers/iommu/iommu.c): domains, device
 * attach/detach, map/unmap with an IOTLB gather and strict or lazy
 * invalidation, and the recoverable fault path (the IOPF queue) between the
 * IOMMU driver and the fault handlers registered per device.
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Counters, Histogram } from "../sim/stats.ts";
import {
  MAX_ADDRESS,
  type Prot,
  PROT_READ,
  PROT_WRITE,
  SZ_4K,
} from "../sim/units.ts";
import { FlushQueue } from "./flush_queue.ts";
import {
  type IommuFaultHandler,
  type IopfGroup,
  IopfQueue,
} from "./io_pgfault.ts";
import {
  type DomainKind,
  type DriverDomain,
  FAULT_PATHS,
  FAULT_REPORT_FLAT,
  FAULT_REPORT_NESTED_L1,
  FAULT_REPORT_NESTED_L2,
  type FaultPath,
  type IommuDevice,
  type IommuDriverOps,
  type IommuFault,
  type IommuFaultSink,
  type IommuVmaster,
  type IotlbGather,
  type MapPagesResult,
  type NestedConfig,
  newIotlbGather,
  type PageResponseCode,
} from "./types.ts";

/**
 * How unmapped IOVAs are invalidated: `"strict"` syncs the IOTLB on every
 * unmap (iommu.strict=1); `"lazy"` queues them on a deferred flush queue
 * flushed in batches (iommu.strict=0).
 */
export type InvalidationMode = "strict" | "lazy";

/** An IOTLB sync in flight (see {@linkcode IommuCore.pendingSyncs}). */
export interface PendingSync {
  /** The domain synced. */
  readonly domain: IommuDomain;
  /** First IOVA of the invalidated range. */
  readonly start: number;
  /** One past the last IOVA. */
  readonly end: number;
  /** Simulated time the sync was issued (ns). */
  readonly issuedAt: number;
}

/** Options of {@linkcode IommuCore}. */
export interface IommuCoreOptions {
  /** The cost profile (iommu.*, iopf.*). */
  costs: Costs;
  /** The IOMMU driver (the arm-smmu-v3 model, or a test double). */
  driver: IommuDriverOps;
  /** Invalidation mode of {@linkcode IommuCore.unmap}. Default `"strict"`. */
  invalidation?: InvalidationMode;
  /** Workers of the IOPF workqueue (fault path `"workqueue"` only). Default 1. */
  faultWorkers?: number;
  /** Where fault handlers run (see {@linkcode FaultPath}). Default `"workqueue"`. */
  faultPath?: FaultPath;
}

/**
 * A domain of the core (struct iommu_domain): a paging domain for stage 1 or
 * stage 2 whose table the host maps, or a nested domain whose stage 1 is a
 * guest's table (never mapped through the core) on a stage-2 parent.
 */
export class IommuDomain {
  /** Domain id (the driver's). */
  readonly id: number;
  /** What it translates. */
  readonly kind: DomainKind;
  /** The driver's domain. */
  readonly driverDomain: DriverDomain;
  /** Page sizes the domain can map. */
  readonly pgsizeBitmap: number;
  /** The stage-2 parent of a nested domain. */
  readonly parent: IommuDomain | undefined;
  /** The guest's stage-1 configuration of a nested domain. */
  readonly nestedConfig: NestedConfig | undefined;
  /** @internal Devices attached (managed by the core). */
  readonly _devices: Set<IommuDevice> = new Set();
  /** @internal Children nested on this domain (managed by the core). */
  _children = 0;
  /** @internal Set by domainFree. */
  _freed = false;
  /** Bytes mapped through the core. */
  mappedBytes = 0;

  /** Built by {@linkcode IommuCore}; not for callers. */
  constructor(
    driverDomain: DriverDomain,
    options: { parent?: IommuDomain; nestedConfig?: NestedConfig } = {},
  ) {
    this.id = driverDomain.id;
    this.kind = driverDomain.kind;
    this.driverDomain = driverDomain;
    this.pgsizeBitmap = driverDomain.pgsizeBitmap;
    this.parent = options.parent;
    this.nestedConfig = options.nestedConfig;
  }

  /** The devices attached now. */
  get devices(): IommuDevice[] {
    return [...this._devices];
  }

  /** The smallest page size the domain maps (the alignment of map/unmap). */
  get minPageSize(): number {
    return this.pgsizeBitmap & -this.pgsizeBitmap;
  }
}

/**
 * `x % a === 0` for a power-of-two `a` (a domain's page size), without the
 * floating-point modulo (a library call in V8) on every map and unmap:
 * `x / a` is then exact, so it is an integer exactly when `a` divides `x`.
 */
function aligned(x: number, a: number): boolean {
  return Number.isInteger(x / a);
}

/** The start of a map/unmap error message (formatted only when one is thrown). */
function rangeWhat(
  op: "map" | "unmap",
  domain: IommuDomain,
  iova: number,
  size: number,
): string {
  return `Cannot ${op} IOVA ${hex(iova)}-${
    hex(iova + size)
  } in domain ${domain.id}`;
}

/**
 * The IOMMU core of one IOMMU instance. It implements
 * {@linkcode IommuFaultSink}, so the driver's event/PRI queue handlers call
 * {@linkcode reportDeviceFault} and {@linkcode iopfQueueDiscardPartial} on it.
 *
 * Map and unmap change the page table at once and return their cost in ns
 * (`iommu.mapCall`/`iommu.unmapCall` plus what the driver reports); IOTLB
 * syncs, attach and detach go through the driver's command queue and call
 * `done` when complete.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { IommuCore } from "./core.ts";
 * import { loadCostProfile, Simulator } from "../sim/mod.ts";
 * import { ArmSmmuV3Driver, Smmu, TableMemory } from "../smmu/mod.ts";
 * const sim = new Simulator();
 * const costs = loadCostProfile();
 * const memory = new TableMemory();
 * const driver = new ArmSmmuV3Driver(sim, new Smmu(sim, { costs, memory }), { costs, memory });
 * const core = new IommuCore(sim, { costs, driver, invalidation: "lazy" });
 * const domain = core.domainAllocPaging(2);
 * core.map(domain, 0x4000_0000, 0x8000_0000, 0x20_0000, 3); // one 2 MiB block
 * core.unmap(domain, 0x4000_0000, 0x20_0000);
 * const queued = core.flushQueue.size;
 * assert.equal(queued, 1); // stale until the batched flush
 * sim.run();
 * assert(core.flushQueue.size === 0 && core.flushQueue.exposureNs.count === 1);
 * ```
 */
export class IommuCore implements IommuFaultSink {
  /** The simulator. */
  readonly sim: Simulator;
  /** The cost profile. */
  readonly costs: Costs;
  /** The driver. */
  readonly driver: IommuDriverOps;
  /** Strict or lazy invalidation. */
  readonly invalidation: InvalidationMode;
  /** Counters (`iommu.*` and `iopf.*`). */
  readonly counters: Counters = new Counters();
  // Cells of the counters every map/unmap bumps, taken at their first use.
  #cMaps: { v: number } | undefined;
  #cMapBytes: { v: number } | undefined;
  #cUnmaps: { v: number } | undefined;
  #cUnmapBytes: { v: number } | undefined;
  /** The IOPF queue. */
  readonly iopf: IopfQueue;
  /** The deferred flush queue (used in lazy mode). */
  readonly flushQueue: FlushQueue;
  /** Time from an IOTLB sync request to its completion (ns). */
  readonly syncLatency: Histogram = new Histogram();
  readonly #devDomain = new Map<IommuDevice, IommuDomain>();
  /** The device whose domain {@linkcode #route} looked up last (cleared on attach/detach). */
  #routeDev: IommuDevice | undefined = undefined;
  #routeDomain: IommuDomain | undefined = undefined;
  readonly #syncs = new Set<PendingSync>();
  readonly #domains = new Set<IommuDomain>();

  /** Creates the core on `sim` over `options.driver`. */
  constructor(sim: Simulator, options: IommuCoreOptions) {
    const invalidation = options.invalidation ?? "strict";
    if (invalidation !== "strict" && invalidation !== "lazy") {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create the IOMMU core: invalidation must be "strict" or "lazy", got ${
          String(invalidation)
        }`,
      );
    }
    const faultPath = options.faultPath ?? "workqueue";
    if (!FAULT_PATHS.includes(faultPath)) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create the IOMMU core: faultPath must be one of ${
          FAULT_PATHS.map((p) => JSON.stringify(p)).join(", ")
        }, got ${String(faultPath)}`,
      );
    }
    this.sim = sim;
    this.costs = options.costs;
    this.driver = options.driver;
    this.invalidation = invalidation;
    this.iopf = new IopfQueue(sim, {
      costs: options.costs,
      driver: options.driver,
      workers: options.faultWorkers ?? 1,
      path: faultPath,
      counters: this.counters,
      route: (dev, fault) => this.#route(dev, fault),
    });
    this.flushQueue = new FlushQueue(sim, {
      costs: options.costs,
      driver: options.driver,
    });
  }

  // -------------------------------------------------------------------------
  // Domains

  /** iommu_paging_domain_alloc(): a paging domain for stage 1 or stage 2. */
  domainAllocPaging(stage: 1 | 2): IommuDomain {
    if (stage !== 1 && stage !== 2) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot allocate a paging domain: stage must be 1 or 2, got ${
          String(stage)
        }`,
      );
    }
    const d = new IommuDomain(this.driver.domainAllocPaging(stage));
    this.#domains.add(d);
    return d;
  }

  /**
   * A nested domain: the guest's stage 1 (`config`, from the vSMMU's context
   * descriptor) on the stage-2 paging domain `parent`.
   */
  domainAllocNested(parent: IommuDomain, config: NestedConfig): IommuDomain {
    if (parent.kind !== "paging-s2" || parent._freed) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot allocate a nested domain on domain ${parent.id}: the parent must be a live stage-2 paging domain`,
      );
    }
    const d = new IommuDomain(
      this.driver.domainAllocNested(parent.driverDomain, config),
      {
        parent,
        nestedConfig: config,
      },
    );
    parent._children++;
    this.#domains.add(d);
    return d;
  }

  /** iommu_domain_free(). EBUSY while devices are attached or nested domains use it. */
  domainFree(domain: IommuDomain): void {
    if (domain._freed) return;
    if (domain._devices.size > 0 || domain._children > 0) {
      throw new IopfLabError(
        "EBUSY",
        `Cannot free domain ${domain.id}: ${domain._devices.size} device(s) attached, ${domain._children} nested domain(s) on it`,
      );
    }
    this.flushQueue.dropDomain(domain.driverDomain);
    this.driver.domainFree(domain.driverDomain);
    domain._freed = true;
    if (domain.parent) domain.parent._children--;
    this.#domains.delete(domain);
  }

  /** The domain `dev` is attached to, if any. */
  getDomainForDev(dev: IommuDevice): IommuDomain | undefined {
    return this.#devDomain.get(dev);
  }

  /**
   * iommu_attach_device(): installs `domain` for `dev` (STE/CD through the
   * driver) and calls `done` when the hardware uses it. The core routes the
   * device's faults by this domain from now on.
   *
   * @throws {IopfLabError} EBUSY when the device is attached elsewhere
   *   (detach first, or use {@linkcode replaceDevice}); EINVAL for a
   *   freed domain
   */
  attachDevice(
    domain: IommuDomain,
    dev: IommuDevice,
    done?: () => void,
  ): void {
    const cur = this.#devDomain.get(dev);
    if (cur) {
      throw new IopfLabError(
        "EBUSY",
        `Cannot attach ${dev.name} to domain ${domain.id}: it is attached to domain ${cur.id}`,
      );
    }
    this.#attach(domain, dev, done);
  }

  /**
   * iommu_group_replace_domain(): moves `dev` to `domain` without going
   * through the blocked state (pending faults stay pending).
   */
  replaceDevice(
    domain: IommuDomain,
    dev: IommuDevice,
    done?: () => void,
  ): void {
    const cur = this.#devDomain.get(dev);
    if (cur === domain) {
      if (done) this.sim.after(0, done);
      return;
    }
    if (cur) cur._devices.delete(dev);
    this.#devDomain.delete(dev);
    this.#routeDev = undefined;
    this.#attach(domain, dev, done);
  }

  #attach(domain: IommuDomain, dev: IommuDevice, done?: () => void): void {
    if (domain._freed) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot attach ${dev.name} to domain ${domain.id}: the domain was freed`,
      );
    }
    this.#devDomain.set(dev, domain);
    this.#routeDev = undefined;
    domain._devices.add(dev);
    this.counters.add("iommu.attaches");
    this.driver.attachDev(dev, domain.driverDomain, () => done?.());
  }

  /**
   * iommu_detach_device(): answers INVALID to every fault group of `dev`
   * still pending and drops its partial faults (iopf_queue_remove_device),
   * puts its STE back to abort and calls `done` when that completed.
   */
  detachDevice(
    domain: IommuDomain,
    dev: IommuDevice,
    done?: () => void,
  ): void {
    if (this.#devDomain.get(dev) !== domain) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot detach ${dev.name} from domain ${domain.id}: it is not attached to it`,
      );
    }
    this.#devDomain.delete(dev);
    this.#routeDev = undefined;
    domain._devices.delete(dev);
    this.counters.add("iommu.detaches");
    this.driver.detachDev(dev, () => done?.());
    this.iopf.removeDevice(dev);
  }

  /** iommu_dev_enable_feature(IOMMU_DEV_FEAT_IOPF): the driver enables stall or PRI for `dev`. */
  devEnableIopf(dev: IommuDevice): void {
    this.driver.enableIopf(dev);
  }

  /** iommu_dev_disable_feature(IOMMU_DEV_FEAT_IOPF). */
  devDisableIopf(dev: IommuDevice): void {
    this.driver.disableIopf(dev);
  }

  /**
   * Binds `dev` to a vIOMMU in the driver (or unbinds it with `undefined`):
   * see {@linkcode IommuDriverOps.setVmaster}. ENODEV when the driver has
   * no vIOMMU support.
   */
  setVmaster(dev: IommuDevice, vmaster: IommuVmaster | undefined): void {
    if (!this.driver.setVmaster) {
      if (vmaster === undefined) return;
      throw new IopfLabError(
        "ENODEV",
        `Cannot bind ${dev.name} to a vIOMMU: driver ${this.driver.name} has no vIOMMU support`,
      );
    }
    this.driver.setVmaster(dev, vmaster);
  }

  // -------------------------------------------------------------------------
  // Map and unmap

  /** Checks a map/unmap range (error messages formatted only when thrown). */
  #checkRange(
    op: "map" | "unmap",
    domain: IommuDomain,
    iova: number,
    size: number,
  ): void {
    if (domain._freed) {
      throw new IopfLabError(
        "EINVAL",
        `${rangeWhat(op, domain, iova, size)}: domain ${domain.id} was freed`,
      );
    }
    if (domain.kind === "nested") {
      throw new IopfLabError(
        "EINVAL",
        `${
          rangeWhat(op, domain, iova, size)
        }: domain ${domain.id} is nested; its stage 1 belongs to the guest (map its stage-2 parent)`,
      );
    }
    const min = domain.minPageSize;
    if (
      !Number.isInteger(iova) || !Number.isInteger(size) || iova < 0 ||
      size <= 0 ||
      !aligned(iova, min) || !aligned(size, min) || iova + size > MAX_ADDRESS
    ) {
      throw new IopfLabError(
        "EINVAL",
        `${
          rangeWhat(op, domain, iova, size)
        }: IOVA and size must be positive multiples of ${hex(min)} below 2^52`,
      );
    }
  }

  /**
   * iommu_map(): maps `[iova, iova + size)` of a paging domain to `paddr`
   * with `prot` (the driver picks the largest page sizes the alignment
   * allows). Returns the cost in ns. All or nothing.
   *
   * @throws {IopfLabError} EINVAL (misaligned, empty, nested or freed
   *   domain, no permission); EEXIST when part of the range is mapped
   */
  map(
    domain: IommuDomain,
    iova: number,
    paddr: number,
    size: number,
    prot: Prot,
  ): number {
    this.#checkRange("map", domain, iova, size);
    if (
      !Number.isInteger(paddr) || paddr < 0 ||
      !aligned(paddr, domain.minPageSize)
    ) {
      throw new IopfLabError(
        "EINVAL",
        `${rangeWhat("map", domain, iova, size)}: physical address ${
          hex(paddr)
        } is misaligned`,
      );
    }
    if (
      (prot & (PROT_READ | PROT_WRITE)) === 0 ||
      (prot & ~(PROT_READ | PROT_WRITE)) !== 0
    ) {
      throw new IopfLabError(
        "EINVAL",
        `${
          rangeWhat("map", domain, iova, size)
        }: prot ${prot} must be READ and/or WRITE`,
      );
    }
    const ns = this.driver.map(domain.driverDomain, iova, paddr, size, prot);
    domain.mappedBytes += size;
    (this.#cMaps ??= this.counters.cell("iommu.maps")).v++;
    (this.#cMapBytes ??= this.counters.cell("iommu.mapBytes")).v += size;
    return this.costs["iommu.mapCall"] + ns;
  }

  /**
   * Maps `n` 4 KiB pages at `iova` to the frames `pfns[from ..]` as a
   * caller holding scattered pinned frames does (vfio_pin_map_dma,
   * iommufd's batch_to_domain): one {@linkcode map} call per physically
   * contiguous run, in order, consecutive runs of one page going to
   * {@linkcode mapPages} as a batch (the same calls). Adds each call's
   * cost to `r.ns` in order and the pages of each call that succeeded to
   * `r.pages`, also when a call throws (its error is rethrown).
   */
  mapFrames(
    domain: IommuDomain,
    iova: number,
    pfns: ArrayLike<number>,
    from: number,
    n: number,
    prot: Prot,
    r: MapPagesResult,
  ): void {
    let single = -1; // first page of the pending single-page runs (-1: none)
    for (let i = 0; i <= n;) {
      let j = i + 1;
      if (i < n) {
        while (j < n && pfns[from + j] === pfns[from + i]! + (j - i)) j++;
        if (j - i === 1) {
          if (single < 0) single = i;
          i = j;
          continue;
        }
      }
      // A run of several pages, or the end: the single pages before it first.
      if (single >= 0) {
        this.mapPages(
          domain,
          iova + single * SZ_4K,
          pfns,
          from + single,
          i - single,
          prot,
          r,
        );
        single = -1;
      }
      if (i === n) break;
      r.ns += this.map(
        domain,
        iova + i * SZ_4K,
        pfns[from + i]! * SZ_4K,
        (j - i) * SZ_4K,
        prot,
      );
      r.pages += j - i;
      i = j;
    }
  }

  /**
   * `n` iommu_map() calls of single 4 KiB pages in one go: page k at `iova +
   * k * 4 KiB` to frame `pfns[from + k]` (physical address `pfns[from + k]
   * * 4 KiB`), as the calls `map(domain, iova + k * 4 KiB, pfns[from + k] *
   * 4 KiB, 4 KiB, prot)` in order would do them (what static pinning of
   * scattered 4 KiB frames makes): the same table, counters and costs, each
   * call's cost added to `r.ns` one by one (so `r.ns` ends as a caller
   * starting from it and adding up the single calls would), and the pages
   * mapped added to `r.pages`. The checks that do not depend on the page
   * run once, and the driver walks to each leaf table once (when it has
   * `mapPages`; else, or when an invariant check fails, each page is a
   * {@linkcode map} call).
   *
   * Not all or nothing: on an error it throws what the first failing call
   * would, with the pages before it mapped, counted and in `r`, as the
   * single calls would have left them.
   *
   * @throws {IopfLabError} what the first failing {@linkcode map} call throws
   */
  mapPages(
    domain: IommuDomain,
    iova: number,
    pfns: ArrayLike<number>,
    from: number,
    n: number,
    prot: Prot,
    r: MapPagesResult,
  ): void {
    const driver = this.driver;
    // The checks that do not depend on the page: when one fails (or the
    // driver has no batch), every page is a map call of its own.
    const batch = driver.mapPages !== undefined && !domain._freed &&
      domain.kind !== "nested" && domain.minPageSize === SZ_4K &&
      Number.isInteger(iova) && iova >= 0 && aligned(iova, SZ_4K) &&
      iova + n * SZ_4K <= MAX_ADDRESS &&
      (prot & (PROT_READ | PROT_WRITE)) !== 0 &&
      (prot & ~(PROT_READ | PROT_WRITE)) === 0;
    const callNs = this.costs["iommu.mapCall"];
    let k = 0;
    while (k < n) {
      // The pages up to the next one whose physical address map refuses.
      let b = k;
      while (batch && b < n) {
        const pa = pfns[from + b]! * SZ_4K;
        if (!Number.isInteger(pa) || pa < 0 || !aligned(pa, SZ_4K)) break;
        b++;
      }
      if (b > k) {
        const before = r.pages;
        try {
          driver.mapPages!(
            domain.driverDomain,
            iova + k * SZ_4K,
            pfns,
            from + k,
            b - k,
            prot,
            callNs,
            r,
          );
        } finally {
          const done = r.pages - before;
          if (done > 0) {
            const bytes = done * SZ_4K;
            domain.mappedBytes += bytes;
            (this.#cMaps ??= this.counters.cell("iommu.maps")).v += done;
            (this.#cMapBytes ??= this.counters.cell("iommu.mapBytes")).v +=
              bytes;
          }
        }
      }
      if (b < n) {
        // A map call of its own (one that fails throws its error).
        r.ns += this.map(
          domain,
          iova + b * SZ_4K,
          pfns[from + b]! * SZ_4K,
          SZ_4K,
          prot,
        );
        r.pages++;
      }
      k = b + 1;
    }
  }

  /**
   * iommu_unmap_fast(): unmaps what is mapped in the range, adding it to
   * `gather`, without invalidating the IOTLB (stale entries stay until
   * {@linkcode iotlbSync}). Returns the bytes unmapped and the cost.
   */
  unmapFast(
    domain: IommuDomain,
    iova: number,
    size: number,
    gather: IotlbGather,
  ): { bytes: number; ns: number } {
    this.#checkRange("unmap", domain, iova, size);
    const r = this.driver.unmap(domain.driverDomain, iova, size, gather);
    domain.mappedBytes -= r.bytes;
    (this.#cUnmaps ??= this.counters.cell("iommu.unmaps")).v++;
    (this.#cUnmapBytes ??= this.counters.cell("iommu.unmapBytes")).v += r.bytes;
    return { bytes: r.bytes, ns: this.costs["iommu.unmapCall"] + r.ns };
  }

  /**
   * iommu_iotlb_sync(): invalidates what `gather` collected (TLBI, ATC_INV,
   * CMD_SYNC through the driver), resets `gather`, and calls `done` on
   * completion. An empty gather completes on the next event.
   */
  iotlbSync(
    domain: IommuDomain,
    gather: IotlbGather,
    done?: () => void,
  ): void {
    if (gather.entries === 0 && gather.end <= gather.start) {
      this.sim.after(0, () => done?.());
      return;
    }
    const g: IotlbGather = { ...gather };
    Object.assign(gather, newIotlbGather());
    const p: PendingSync = {
      domain,
      start: g.start,
      end: g.end,
      issuedAt: this.sim.now,
    };
    this.#syncs.add(p);
    this.counters.add("iommu.syncs");
    this.driver.iotlbSync(domain.driverDomain, g, () => {
      this.#syncs.delete(p);
      this.syncLatency.record(this.sim.now - p.issuedAt);
      done?.();
    });
  }

  /**
   * iommu_unmap() with the core's invalidation mode: strict unmaps and syncs
   * (`done` after the sync completed); lazy unmaps and queues the range on
   * the flush queue (`iommu.flushQueueAdd`; `done` on the next event, while
   * the IOVA stays reachable through stale IOTLB entries until the batched
   * flush). Returns the bytes unmapped and the CPU cost.
   */
  unmap(
    domain: IommuDomain,
    iova: number,
    size: number,
    done?: () => void,
  ): { bytes: number; ns: number } {
    const gather = newIotlbGather();
    const r = this.unmapFast(domain, iova, size, gather);
    if (this.invalidation === "strict" || r.bytes === 0) {
      this.iotlbSync(domain, gather, done);
      return r;
    }
    const lazy = this.#queueLazy(domain, iova, size, r);
    this.sim.after(0, () => done?.());
    return lazy;
  }

  /**
   * The blocking iommu_iotlb_sync() of a CPU that spins on CMD_SYNC:
   * invalidates what `gather` collected through the driver's
   * `iotlbSyncBlocking`, so no IOTLB or ATC entry still translates the range
   * when it returns, and resets `gather`. Returns the ns spent (also
   * recorded in {@linkcode syncLatency}); 0 for an empty gather.
   */
  iotlbSyncBlocking(domain: IommuDomain, gather: IotlbGather): number {
    if (gather.entries === 0 && gather.end <= gather.start) return 0;
    const g: IotlbGather = { ...gather };
    Object.assign(gather, newIotlbGather());
    this.counters.add("iommu.syncs");
    this.counters.add("iommu.blockingSyncs");
    const ns = this.driver.iotlbSyncBlocking(domain.driverDomain, g);
    this.syncLatency.record(ns);
    return ns;
  }

  /**
   * iommu_unmap() for a caller that must not return before the range is
   * unreachable, such as an MMU notifier's invalidate_range_start (the mm
   * frees the pages right after): unmaps and syncs synchronously
   * ({@linkcode iotlbSyncBlocking}); the ns include the CPU's wait for
   * CMD_SYNC. Strict in every invalidation mode: Linux defers invalidation
   * only for DMA-API domains (iommu_dma_unmap's flush queue, iommu.strict=0);
   * an invalidation that returned before the device is cut off would let the
   * device use pages the mm frees next. Returns the bytes unmapped and the
   * CPU cost.
   */
  unmapBlocking(
    domain: IommuDomain,
    iova: number,
    size: number,
  ): { bytes: number; ns: number } {
    const gather = newIotlbGather();
    const r = this.unmapFast(domain, iova, size, gather);
    return {
      bytes: r.bytes,
      ns: r.ns + this.iotlbSyncBlocking(domain, gather),
    };
  }

  #queueLazy(
    domain: IommuDomain,
    iova: number,
    size: number,
    r: { bytes: number; ns: number },
  ): { bytes: number; ns: number } {
    this.counters.add("iommu.lazyUnmaps");
    this.flushQueue.add(domain.driverDomain, iova, size);
    return { bytes: r.bytes, ns: r.ns + this.costs["iommu.flushQueueAdd"] };
  }

  /**
   * IOTLB syncs issued and not yet complete (strict mode's window: the range
   * is unmapped in the table but stale IOTLB entries may still translate it).
   */
  get pendingSyncs(): readonly PendingSync[] {
    return [...this.#syncs];
  }

  /** iommu_flush_iotlb_all(): invalidates everything cached for `domain`. */
  flushIotlbAll(domain: IommuDomain, done?: () => void): void {
    this.counters.add("iommu.flushAll");
    this.driver.flushIotlbAll(domain.driverDomain, () => done?.());
  }

  /** iommu_iova_to_phys(): the domain's own translation of `iova`, or -1. */
  iovaToPhys(domain: IommuDomain, iova: number): number {
    if (domain._freed || domain.kind === "nested") return -1;
    return this.driver.iovaToPhys(domain.driverDomain, iova);
  }

  // -------------------------------------------------------------------------
  // Faults

  /**
   * iommu_register_device_fault_handler() with the 2021 RFC's flags:
   * FAULT_REPORT_FLAT for a paging domain's faults, FAULT_REPORT_NESTED_L1
   * for stage-1 faults of a nested domain, FAULT_REPORT_NESTED_L2 for its
   * stage-2 faults (one handler may take both).
   */
  registerDeviceFaultHandler(
    dev: IommuDevice,
    handler: IommuFaultHandler,
    flags: number,
  ): void {
    this.iopf.registerHandler(dev, handler, flags);
  }

  /** iommu_update_device_fault_handler() (RFC v3 1/8): see {@linkcode IopfQueue.updateHandler}. */
  updateDeviceFaultHandler(
    dev: IommuDevice,
    handler: IommuFaultHandler,
    mask: number,
    set: number,
  ): void {
    this.iopf.updateHandler(dev, handler, mask, set);
  }

  /** iommu_unregister_device_fault_handler() for `flags` (default all). */
  unregisterDeviceFaultHandler(dev: IommuDevice, flags?: number): void {
    this.iopf.unregisterHandler(dev, flags);
  }

  /** iommu_report_device_fault(): see {@linkcode IopfQueue.reportDeviceFault}. */
  reportDeviceFault(
    dev: IommuDevice,
    fault: IommuFault,
    resume?: () => void,
  ): boolean {
    return this.iopf.reportDeviceFault(dev, fault, resume);
  }

  /** iommu_page_response(): the one response of `group`; see {@linkcode IopfQueue.pageResponse}. */
  pageResponse(
    dev: IommuDevice,
    group: IopfGroup,
    code: PageResponseCode,
  ): void {
    this.iopf.pageResponse(dev, group, code);
  }

  /**
   * iopf_queue_discard_partial(): drops the parked partial faults (of `dev`,
   * or all) without a response; the {@linkcode IommuFaultSink} entry the
   * driver calls after a PRI queue overflow. Returns the faults dropped.
   */
  iopfQueueDiscardPartial(dev?: IommuDevice): number {
    return this.iopf.discardPartial(dev);
  }

  /** iopf_queue_remove_device(): INVALID to every pending group of `dev`. */
  iopfQueueRemoveDevice(dev: IommuDevice): number {
    return this.iopf.removeDevice(dev);
  }

  #route(dev: IommuDevice, fault: IommuFault): number {
    let d: IommuDomain | undefined;
    if (dev === this.#routeDev) {
      d = this.#routeDomain;
    } else {
      d = this.#devDomain.get(dev);
      this.#routeDev = dev;
      this.#routeDomain = d;
    }
    if (!d) return 0;
    if (d.kind !== "nested") return FAULT_REPORT_FLAT;
    return fault.stage === 1 ? FAULT_REPORT_NESTED_L1 : FAULT_REPORT_NESTED_L2;
  }
}
