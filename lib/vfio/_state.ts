/**
 * The shared state of one VFIO type1 container (the fields of
 * `struct vfio_iommu` its parts share), private to lib/vfio. The facade
 * ({@linkcode VfioContainer}: ioctls and device attach) builds one record
 * and hands it to its units as their first argument, as QEMU's SMMUv3
 * helpers take the `SMMUState`: dma.ts (the vfio_dma ranges), pin.ts
 * (static pinning), iopf.ts (the fault handler, pre-map and the MMU
 * notifier) and nested.ts (nested forwarding). No unit reads another's
 * fields through getters.
 *
 * @module
 */
import type { IommuCore, IommuDomain } from "../iommu/core.ts";
import type { IommuFaultHandler } from "../iommu/io_pgfault.ts";
import type { IommuDevice } from "../iommu/types.ts";
import type { MmStruct } from "../mm/mm_struct.ts";
import type { Costs } from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import { Resource } from "../sim/resource.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Counters, Histogram } from "../sim/stats.ts";
import type { VfioIommuType } from "./container.ts";
import type { VfioDma } from "./dma.ts";
import type { VfioDmaFaultRegion } from "./fault_region.ts";
import {
  type FaultOutcome,
  type FaultWork,
  iopfHandler,
  type PendingRun,
} from "./iopf.ts";

/** What the container keeps per attached device. */
export interface DeviceState {
  /** The device id (IOMMUFD dev_id analogue). */
  devId: number;
  /** The nested domain, when bound to a guest stage 1. */
  nested: IommuDomain | undefined;
  /** Whether the container enabled the device's recoverable faults. */
  iopfEnabled: boolean;
}

/**
 * The shared state of one container. Every field is set in the constructor
 * (one shape); the units read and write the fields directly.
 */
export class VfioState {
  /** The simulator (the core's). */
  readonly sim: Simulator;
  /** The IOMMU core. */
  readonly core: IommuCore;
  /** The VMM's address space. */
  readonly mm: MmStruct;
  /** The cost profile. */
  readonly costs: Costs;
  /** Pages mapped per fault (1 = no pre-map). */
  readonly premapPages: number;
  /** Whether IOPF mappings are kept without pins under an MMU notifier. */
  readonly mmuNotifier: boolean;
  /** Whether pre-map skips mapped pages (a what-if) instead of stopping at the first (RFC v3). */
  readonly premapSkipMapped: boolean;
  /** The container lock (iommu->lock) that serialises fault handling. */
  readonly lock: Resource;
  /** Counters (`vfio.*`). */
  readonly counters: Counters = new Counters();
  /** Time from a fault group reaching the handler to its response (ns). */
  readonly handlerNs: Histogram = new Histogram();

  /** The IOMMU type set, if any. */
  type: VfioIommuType | undefined = undefined;
  /** The container's paging domain (stage 2 when nesting). */
  domain: IommuDomain | undefined = undefined;
  /** True after VFIO_IOMMU_ENABLE_IOPF. */
  iopf = false;
  /** The nested DMA fault region, once enabled. */
  region: VfioDmaFaultRegion | undefined = undefined;
  /** True once the container was released. */
  released = false;
  /** The vfio_dma ranges, sorted by IOVA, not overlapping. */
  readonly dmas: VfioDma[] = [];
  /** The attached devices. */
  readonly devices: Map<IommuDevice, DeviceState> = new Map();
  /** The id the next attached device gets. */
  nextDevId = 1;
  /** The device {@linkcode VfioContainer.deviceById} found last. */
  lastById: IommuDevice | undefined = undefined;

  // --- pin.ts ---------------------------------------------------------------
  /** 4 KiB pages pinned now (pins awaiting an IOTLB sync included). */
  pinned = 0;
  /** 4 KiB pages charged to locked_vm now. */
  locked = 0;
  /** Highest {@linkcode pinned}. */
  pinnedPeak = 0;
  /** Highest {@linkcode locked}. */
  lockedPeak = 0;
  /** PFNs of the last pin call (grown on demand, reused). */
  pfnBuf: Float64Array | undefined = undefined;

  // --- iopf.ts --------------------------------------------------------------
  /** The type1 IOPF handler, bound once to this state. */
  readonly iopfHandler: IommuFaultHandler;
  /** Fault-group work records free for reuse. */
  readonly freeWork: FaultWork[] = [];
  /** What the last handled fault came to (a reused scratch record). */
  readonly outcome: FaultOutcome = { ok: true };
  // Cells of the counters every fault bumps (Counters.cell), taken at their
  // first use: no name lookup per fault.
  /** Cell of `vfio.faultGroups`. */
  cGroups: { v: number } | undefined = undefined;
  /** Cell of `vfio.faults`. */
  cFaults: { v: number } | undefined = undefined;
  /** Cell of `vfio.faults.mappedPages`. */
  cMapped: { v: number } | undefined = undefined;
  /** Cell of `vfio.faults.premappedPages`. */
  cPremapped: { v: number } | undefined = undefined;
  /** Runs pinned by the fault group under the lock, not mapped yet (MMU notifier). */
  readonly pendingRuns: PendingRun[] = [];
  /** When the fault group holding the container lock releases it (ns). */
  lockFreeAt = 0;
  /** Until when an ioctl or a notifier invalidation holds the container lock (ns). */
  syncHeldUntil = 0;
  /** True while a fault group's work runs under the lock (same thread: no self-wait). */
  inFault = false;
  /** Times an ioctl or invalidation waited for a fault group's lock hold. */
  syncLockWaits = 0;
  /** Their total wait (ns). */
  syncLockWaitNs = 0;
  /** Times a fault group waited for an ioctl's or invalidation's hold. */
  faultWaitsBehindSync = 0;
  /** Their total wait (ns). */
  faultWaitBehindSyncNs = 0;
  /** The options of the fault path's pins (read by the call, so reusable). */
  readonly faultPinOpts: { longterm: boolean; out: Float64Array } = {
    longterm: false,
    out: new Float64Array(0),
  };

  /** The state of a container over `core` and `mm`. */
  constructor(
    core: IommuCore,
    mm: MmStruct,
    options: {
      costs: Costs;
      premapPages: number;
      mmuNotifier: boolean;
      premapSkipMapped: boolean;
    },
  ) {
    this.sim = core.sim;
    this.core = core;
    this.mm = mm;
    this.costs = options.costs;
    this.premapPages = options.premapPages;
    this.mmuNotifier = options.mmuNotifier;
    this.premapSkipMapped = options.premapSkipMapped;
    this.lock = new Resource(core.sim, {
      name: "vfio container lock",
      servers: 1,
    });
    this.iopfHandler = (group, done) => iopfHandler(this, group, done);
  }
}

/** ENODEV once the container was released. */
export function checkLive(s: VfioState, what: string): void {
  if (s.released) {
    throw new IopfLabError(
      "ENODEV",
      `Cannot ${what}: the container was released`,
    );
  }
}

/** The container's domain; ENODEV when released, EINVAL before VFIO_SET_IOMMU. */
export function needDomain(s: VfioState, what: string): IommuDomain {
  checkLive(s, what);
  if (!s.domain) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot ${what}: no IOMMU set (VFIO_SET_IOMMU first)`,
    );
  }
  return s.domain;
}
