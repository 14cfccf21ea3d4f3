/**
 * VFIO type1 (drivers/vfio/vfio_iommu_type1.c) with the 2021 RFC's IOPF
 * support: a container (struct vfio_iommu) holding the vfio_dma ranges of a
 * VMM, statically pinned and mapped, or recorded and mapped on I/O page
 * faults (with pre-map and the MMU notifier), and the nested mode where the
 * guest owns stage 1.
 *
 * @module
 */
import type { IommuCore, IommuDomain } from "../iommu/core.ts";
import type { IommuDevice, NestedConfig } from "../iommu/types.ts";
import type { MmStruct } from "../mm/mm_struct.ts";
import type { Costs } from "../sim/costs.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import type { Resource } from "../sim/resource.ts";
import type { Simulator } from "../sim/simulator.ts";
import type { Counters, Histogram } from "../sim/stats.ts";
import { PAGE_SIZE, PROT_READ, PROT_WRITE } from "../sim/units.ts";
import { testBit } from "./_bitmap.ts";
import {
  checkLive,
  type DeviceState,
  needDomain,
  VfioState,
} from "./_state.ts";
import { checkMapRange, findDma, takeUnmapRange, VfioDma } from "./dma.ts";
import type { VfioDmaFaultRegion } from "./fault_region.ts";
import {
  checkIopfCapable,
  enableDeviceIopf,
  lockForSyncCaller,
  registerNotifier,
} from "./iopf.ts";
import {
  cacheInvalidate,
  enableFaultRegion,
  registerL1,
  setPasidTable,
} from "./nested.ts";
import {
  pinAndMapAll,
  pinAndMapPart,
  PinProgress,
  unmapUnpin,
  unwindPin,
} from "./pin.ts";
import { runSteps, stepBytes } from "../sim/steps.ts";

export { VFIO_PIN_BATCH_PAGES } from "./pin.ts";

/** VFIO_DMA_MAP_FLAG_READ: the device may read the range. */
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
/** VFIO_DMA_MAP_FLAG_WRITE: the device may write the range. */
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;

/**
 * type1's default `dma_entry_limit` module parameter (U16_MAX): the most
 * vfio_dma ranges one container may hold; MAP_DMA beyond it is ENOSPC.
 */
export const VFIO_DMA_ENTRY_LIMIT = 65535;

/** The RFC v3's pre-map length (IOPF_PREMAP_LEN), in 4 KiB pages. */
export const IOPF_PREMAP_LEN = 512;

/**
 * The IOMMU model of a container: `"type1v2"` (VFIO_TYPE1v2_IOMMU, one
 * paging domain) or `"nesting"` (VFIO_TYPE1_NESTING_IOMMU: the container's
 * domain is stage 2; devices bound to a guest's stage 1 get a nested domain).
 */
export type VfioIommuType = "type1v2" | "nesting";

/** How a vfio_dma is backed in the IOMMU. */
export type VfioDmaMode = "pinned" | "iopf" | "pfnmap";

/** Options of {@linkcode VfioContainer}. */
export interface VfioContainerOptions {
  /** The cost profile. Default: the core's. */
  costs?: Costs;
  /**
   * Pages mapped per I/O page fault, starting at the faulting page, within
   * its vfio_dma, up to the first page already mapped (RFC v3 4/8). 1 = no
   * pre-map; the RFC v3 uses {@linkcode IOPF_PREMAP_LEN}. Default 1.
   */
  premapPages?: number;
  /**
   * A what-if: pre-map skips over pages already mapped and goes on until
   * `premapPages` are mapped or the vfio_dma ends, instead of stopping at
   * the first mapped page as the RFC's loop does. Default false.
   */
  premapSkipMapped?: boolean;
  /**
   * Use the MMU notifier (RFC v2+): IOPF pages are unpinned (and not
   * charged) right after mapping, and unmapped when the host mm invalidates
   * them. Fault-time mappings are then made one 4 KiB page at a time (never
   * blocks), so a 4 KiB invalidation can unmap exactly its page. Default
   * false: IOPF pages stay pinned until UNMAP_DMA.
   */
  mmuNotifier?: boolean;
  /**
   * The most vfio_dma ranges the container may hold (type1's
   * `dma_entry_limit` module parameter, iommu->dma_avail); MAP_DMA past it
   * fails with ENOSPC. Default {@linkcode VFIO_DMA_ENTRY_LIMIT}.
   */
  dmaEntryLimit?: number;
}

/** Options of {@linkcode VfioContainer.setIommu}. */
export interface VfioSetIommuOptions {
  /** For `"type1v2"`: the stage of the container's paging domain. Default 2. */
  stage?: 1 | 2;
}

/** VFIO_IOMMU_MAP_DMA (struct vfio_iommu_type1_dma_map). */
export interface VfioDmaMapRequest {
  /** Process virtual address of the range (an HVA of the VMM). */
  vaddr: number;
  /** IOVA (a GPA for a VM). */
  iova: number;
  /** Bytes, a positive multiple of 4 KiB. */
  size: number;
  /** VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE. */
  flags: number;
  /**
   * For a VM_PFNMAP range (a device BAR mmapped from the VFIO device fd):
   * the physical address `vaddr` maps to. The model's mm has no PFNMAP
   * VMAs, so the caller names it; such a range is mapped at once without
   * pinning or charging, in IOPF mode too.
   */
  pfnmap?: number;
}

/** VFIO_IOMMU_UNMAP_DMA (struct vfio_iommu_type1_dma_unmap). */
export interface VfioDmaUnmapRequest {
  /** First IOVA. */
  iova: number;
  /** Bytes. */
  size: number;
}

/** The result of {@linkcode VfioContainer.unmapDma}. */
export interface VfioUnmapResult {
  /** Bytes of vfio_dma ranges removed (the ioctl's reported size). */
  bytes: number;
  /** CPU time of the ioctl in ns (unmap, unpin), without waiting for the IOTLB sync. */
  ns: number;
}

/** A vfio_dma as reported by {@linkcode VfioContainer.dmas}. */
export interface VfioDmaInfo {
  /** First IOVA. */
  readonly iova: number;
  /** Bytes. */
  readonly size: number;
  /** First HVA. */
  readonly vaddr: number;
  /** IOMMU_READ | IOMMU_WRITE. */
  readonly prot: number;
  /** How it is backed. */
  readonly mode: VfioDmaMode;
  /** 4 KiB pages mapped in the IOMMU by VFIO. */
  readonly mappedPages: number;
  /** 4 KiB pages this range holds pinned. */
  readonly pinnedPages: number;
  /** 4 KiB pages this range charged to locked_vm. */
  readonly lockedPages: number;
}

/** Statistics of a container. */
export interface VfioStats {
  /** 4 KiB pages pinned now (including pins waiting for an IOTLB sync to be released). */
  pinnedPages: number;
  /** Highest {@linkcode pinnedPages}. */
  pinnedPagesPeak: number;
  /** Bytes charged to locked_vm now. */
  lockedBytes: number;
  /** Highest {@linkcode lockedBytes}. */
  lockedBytesPeak: number;
  /** Faults handled by the type1 handler. */
  faults: number;
  /** Faults answered INVALID (no vfio_dma, wrong permission, pin failure). */
  faultsInvalid: number;
  /** Faults whose page was already mapped (raced with another fault). */
  faultsRaced: number;
  /** Pages mapped by faults (the faulting pages and the pre-mapped ones). */
  faultMappedPages: number;
  /** Of those, pages pre-mapped beyond the faulting page. */
  premappedPages: number;
  /**
   * Waits for the container lock: fault groups behind fault groups, fault
   * groups behind an ioctl or notifier invalidation, and ioctls or
   * invalidations behind a fault group.
   */
  lockWaits: number;
  /** Total time spent waiting for the container lock (ns), all of them. */
  lockWaitNs: number;
  /** Of {@linkcode lockWaits}: MAP_DMA, UNMAP_DMA or notifier invalidations that waited for a fault group. */
  lockWaitsSync: number;
  /** Their wait (ns). */
  lockWaitSyncNs: number;
  /** Of {@linkcode lockWaits}: fault groups that waited for an ioctl or invalidation. */
  lockWaitsBehindSync: number;
  /** Their wait (ns). */
  lockWaitBehindSyncNs: number;
  /**
   * Fault runs pinned again because an invalidation overlapped their
   * vfio_dma between the pin and the map (mmu_interval_read_retry).
   */
  faultRetries: number;
  /** CPU time of those retries: the unpin and the new pin (ns). */
  faultRetryNs: number;
  /** MMU notifier invalidations that unmapped something. */
  notifierInvalidations: number;
  /** Pages unmapped by the MMU notifier. */
  notifierUnmappedPages: number;
}

/**
 * A VFIO type1 container over an {@linkcode IommuCore} and the VMM's
 * {@linkcode MmStruct}.
 *
 * Ioctls change state synchronously and return their CPU cost in ns; the
 * caller delays its next step by it. IOTLB syncs complete later: pins of an
 * unmapped range are released when its sync completes (strict mode), or at
 * once in lazy mode (the IOVA stays reachable through stale IOTLB entries
 * until the batched flush). The MMU notifier's invalidation is the
 * exception: in strict mode it waits for its IOTLB sync (the CPU spinning on
 * CMD_SYNC) before the mm frees the pages, and returns that time to the mm.
 *
 * Modes: static (the default: MAP_DMA pins, charges and maps everything);
 * IOPF after {@linkcode enableIopf} (MAP_DMA records the range and a bitmap;
 * the fault handler pins and maps on demand, with `premapPages`); IOPF with
 * `mmuNotifier` (no long-term pins). With the `"nesting"` IOMMU type, a
 * device bound to a guest stage 1 ({@linkcode setPasidTable}) has its
 * stage-2 faults handled here and its stage-1 faults forwarded through the
 * DMA fault region ({@linkcode enableFaultRegion}).
 */
export class VfioContainer {
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
  /** The container lock (iommu->lock) that serialises fault handling. */
  readonly lock: Resource;
  /** Counters (`vfio.*`). */
  readonly counters: Counters;
  /** Time from a fault group reaching the handler to its response (ns), lock wait included. */
  readonly handlerNs: Histogram;
  /** The state the units (dma, pin, iopf, nested) share. */
  readonly #s: VfioState;
  /** The dma_entry_limit of this container. */
  readonly #dmaEntryLimit: number;

  /** Creates an empty container; call {@linkcode setIommu} next. */
  constructor(
    core: IommuCore,
    mm: MmStruct,
    options: VfioContainerOptions = {},
  ) {
    const premap = options.premapPages ?? 1;
    if (!Number.isInteger(premap) || premap < 1 || premap > 1 << 18) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create a VFIO container: premapPages must be a whole number in [1, 2^18], got ${premap}`,
      );
    }
    const limit = options.dmaEntryLimit ?? VFIO_DMA_ENTRY_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > 2 ** 32 - 1) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create a VFIO container: dmaEntryLimit must be a whole number in [1, 2^32 - 1], got ${limit}`,
      );
    }
    const s = new VfioState(core, mm, {
      costs: options.costs ?? core.costs,
      premapPages: premap,
      mmuNotifier: options.mmuNotifier ?? false,
      premapSkipMapped: options.premapSkipMapped ?? false,
    });
    this.#dmaEntryLimit = limit;
    this.#s = s;
    this.sim = s.sim;
    this.core = core;
    this.mm = mm;
    this.costs = s.costs;
    this.premapPages = s.premapPages;
    this.mmuNotifier = s.mmuNotifier;
    this.lock = s.lock;
    this.counters = s.counters;
    this.handlerNs = s.handlerNs;
  }

  // -------------------------------------------------------------------------
  // State

  /** The IOMMU type set, if any. */
  get type(): VfioIommuType | undefined {
    return this.#s.type;
  }

  /** The container's paging domain (stage 2 when nesting). */
  get domain(): IommuDomain | undefined {
    return this.#s.domain;
  }

  /** True after {@linkcode enableIopf}. */
  get iopfEnabled(): boolean {
    return this.#s.iopf;
  }

  /** The nested DMA fault region, after {@linkcode enableFaultRegion}. */
  get faultRegion(): VfioDmaFaultRegion | undefined {
    return this.#s.region;
  }

  /** 4 KiB pages the container holds pinned (pins awaiting an IOTLB sync included). */
  get pinnedPages(): number {
    return this.#s.pinned;
  }

  /** 4 KiB pages the container charged to locked_vm. */
  get lockedPages(): number {
    return this.#s.locked;
  }

  /** The vfio_dma ranges, by IOVA. */
  dmas(): VfioDmaInfo[] {
    return this.#s.dmas.map((d) => d.info());
  }

  /** The container's statistics. */
  stats(): VfioStats {
    const s = this.#s;
    const c = s.counters;
    return {
      pinnedPages: s.pinned,
      pinnedPagesPeak: s.pinnedPeak,
      lockedBytes: s.locked * PAGE_SIZE,
      lockedBytesPeak: s.lockedPeak * PAGE_SIZE,
      faults: c.get("vfio.faults"),
      faultsInvalid: c.get("vfio.faults.invalid"),
      faultsRaced: c.get("vfio.faults.raced"),
      faultMappedPages: c.get("vfio.faults.mappedPages"),
      premappedPages: c.get("vfio.faults.premappedPages"),
      lockWaits: s.lock.waits + s.syncLockWaits + s.faultWaitsBehindSync,
      lockWaitNs: s.lock.totalWaitNs + s.syncLockWaitNs +
        s.faultWaitBehindSyncNs,
      lockWaitsSync: s.syncLockWaits,
      lockWaitSyncNs: s.syncLockWaitNs,
      lockWaitsBehindSync: s.faultWaitsBehindSync,
      lockWaitBehindSyncNs: s.faultWaitBehindSyncNs,
      faultRetries: c.get("vfio.faults.retries"),
      faultRetryNs: c.get("vfio.faults.retryNs"),
      notifierInvalidations: c.get("vfio.notifier.invalidations"),
      notifierUnmappedPages: c.get("vfio.notifier.unmappedPages"),
    };
  }

  /**
   * Whether the 4 KiB page at `iova` is marked mapped in its vfio_dma: the
   * IOPF bitmap bit, or true for a pinned or PFNMAP range; false outside
   * every vfio_dma.
   */
  isMapped(iova: number): boolean {
    const d = findDma(this.#s.dmas, iova);
    if (!d) return false;
    if (!d.bitmap) return true;
    return testBit(d.bitmap, Math.floor((iova - d.iova) / PAGE_SIZE));
  }

  /** The device id (IOMMUFD dev_id analogue) of an attached device, or -1. */
  devId(dev: IommuDevice): number {
    return this.#s.devices.get(dev)?.devId ?? -1;
  }

  /** The attached device with id `devId`, if any. */
  deviceById(devId: number): IommuDevice | undefined {
    // Ids are unique: the device found last is checked first (one lookup
    // per fault the VMM forwards instead of a walk over the devices).
    const s = this.#s;
    const last = s.lastById;
    if (last !== undefined && s.devices.get(last)?.devId === devId) {
      return last;
    }
    for (const [dev, ds] of s.devices) {
      if (ds.devId === devId) {
        s.lastById = dev;
        return dev;
      }
    }
    return undefined;
  }

  // -------------------------------------------------------------------------
  // Setup

  /**
   * VFIO_SET_IOMMU: chooses the IOMMU model and allocates the container's
   * paging domain (stage 2 for `"nesting"`). EBUSY if already set.
   */
  setIommu(type: VfioIommuType, options: VfioSetIommuOptions = {}): void {
    const s = this.#s;
    checkLive(s, "set the IOMMU");
    if (s.type) {
      throw new IopfLabError(
        "EBUSY",
        `Cannot set the IOMMU to ${type}: it is already ${s.type}`,
      );
    }
    if (type !== "type1v2" && type !== "nesting") {
      throw new IopfLabError(
        "EINVAL",
        `Cannot set the IOMMU: unknown type ${String(type)}`,
      );
    }
    const stage = type === "nesting" ? 2 : options.stage ?? 2;
    s.domain = this.core.domainAllocPaging(stage);
    s.type = type;
  }

  /**
   * Attaches `dev` (its group) to the container's domain; `done` when the
   * hardware uses it. With IOPF or the fault region enabled, the device's
   * recoverable faults are enabled and its handlers registered.
   */
  attachDevice(dev: IommuDevice, done?: () => void): void {
    const s = this.#s;
    const domain = needDomain(s, "attach a device");
    if (s.devices.has(dev)) {
      throw new IopfLabError(
        "EBUSY",
        `Cannot attach ${dev.name}: already in this container`,
      );
    }
    if ((s.iopf || s.region) && !dev.stall && !dev.pri) {
      throw new IopfLabError(
        "ENODEV",
        `Cannot attach ${dev.name}: IOPF is enabled and the device can neither stall nor use PRI`,
      );
    }
    this.core.attachDevice(domain, dev, done);
    const ds: DeviceState = {
      devId: s.nextDevId++,
      nested: undefined,
      iopfEnabled: false,
    };
    s.devices.set(dev, ds);
    if (s.iopf) enableDeviceIopf(s, dev, ds);
    if (s.region) registerL1(s, dev, ds);
  }

  /**
   * Detaches `dev`: every fault group of it still pending is answered
   * INVALID (forwarded stage-1 groups included), its handlers are removed,
   * a nested domain is freed; `done` when the STE is back to abort.
   */
  detachDevice(dev: IommuDevice, done?: () => void): void {
    const s = this.#s;
    const ds = s.devices.get(dev);
    if (!ds) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot detach ${dev.name}: not in this container`,
      );
    }
    const domain = this.core.getDomainForDev(dev);
    s.devices.delete(dev);
    s.region?.revokeDevice(dev);
    const nested = ds.nested;
    if (domain) {
      this.core.detachDevice(domain, dev, () => {
        if (nested) this.core.domainFree(nested);
        done?.();
      });
    } else {
      this.sim.after(0, () => done?.());
    }
    this.core.unregisterDeviceFaultHandler(dev);
    if (ds.iopfEnabled) this.core.devDisableIopf(dev);
  }

  /**
   * VFIO_IOMMU_ENABLE_IOPF: from now on MAP_DMA only records ranges and the
   * type1 fault handler maps on demand. Enables recoverable faults for the
   * attached devices and registers the handler (FAULT_REPORT_FLAT, and
   * NESTED_L2 for stage-2 faults when nesting). EBUSY when ranges other
   * than PFNMAP are already mapped (enable IOPF before mapping guest RAM);
   * ENODEV when a device supports neither stall nor PRI.
   */
  enableIopf(): void {
    const s = this.#s;
    needDomain(s, "enable IOPF");
    if (s.iopf) return;
    if (s.dmas.some((d) => d.mode === "pinned")) {
      throw new IopfLabError(
        "EBUSY",
        "Cannot enable IOPF: guest memory is already pinned and mapped (enable it before VFIO_IOMMU_MAP_DMA)",
      );
    }
    checkIopfCapable(s, "enable IOPF");
    s.iopf = true;
    for (const [dev, ds] of s.devices) enableDeviceIopf(s, dev, ds);
  }

  /**
   * Sets up the nested DMA fault region (a ring of `entries` records plus an
   * eventfd) and registers the NESTED_L1 handler that forwards stage-1
   * faults to it. Only with the `"nesting"` type. Returns the region for
   * the VMM.
   */
  enableFaultRegion(options: { entries?: number } = {}): VfioDmaFaultRegion {
    return enableFaultRegion(this.#s, options);
  }

  /**
   * VFIO_IOMMU_SET_PASID_TABLE (the RFC's bind of a guest stage 1): `dev`
   * moves to a nested domain with the guest's stage-1 `config` on the
   * container's stage 2. Calling it again replaces the configuration.
   */
  setPasidTable(
    dev: IommuDevice,
    config: NestedConfig,
    done?: () => void,
  ): void {
    setPasidTable(this.#s, dev, config, done);
  }

  /** The nested domain of `dev`, if bound to a guest stage 1. */
  nestedDomain(dev: IommuDevice): IommuDomain | undefined {
    return this.#s.devices.get(dev)?.nested;
  }

  /**
   * VFIO_IOMMU_CACHE_INVALIDATE: the guest invalidated stage-1 entries for
   * [iova, iova + size) (a vSMMU TLBI the VMM passes on); invalidates the
   * nested domains of the container (all, or `dev`'s), `done` on completion.
   */
  cacheInvalidate(
    range: { iova: number; size: number; dev?: IommuDevice },
    done?: () => void,
  ): void {
    cacheInvalidate(this.#s, range, done);
  }

  // -------------------------------------------------------------------------
  // MAP_DMA / UNMAP_DMA

  /**
   * VFIO_IOMMU_MAP_DMA. Static mode pins every page (faulting in and zeroing
   * what is not populated), charges locked_vm and maps physically
   * contiguous runs with the largest page sizes; IOPF mode records the range
   * and allocates its bitmap; a PFNMAP range is mapped without pinning.
   * Returns the ioctl's CPU cost in ns.
   *
   * @throws {IopfLabError} EINVAL (no permission, zero size, misaligned,
   *   overflow, no IOMMU set); EEXIST (overlaps a vfio_dma); ENOSPC (the
   *   container already holds `dmaEntryLimit` ranges: vfio_dma_do_map's
   *   `!iommu->dma_avail`); ENOMEM (over
   *   RLIMIT_MEMLOCK or out of host memory: nothing stays pinned, charged
   *   or mapped; pages faulted in before the limit was hit stay populated,
   *   as in the kernel); EFAULT (vaddr not mapped)
   */
  mapDma(req: VfioDmaMapRequest): number {
    const s = this.#s;
    const { iova, size, flags } = req;
    const what = `Cannot map DMA IOVA ${hex(iova)}+${hex(size)}`;
    const domain = needDomain(s, "map DMA");
    const prot = (flags & VFIO_DMA_MAP_FLAG_READ ? PROT_READ : 0) |
      (flags & VFIO_DMA_MAP_FLAG_WRITE ? PROT_WRITE : 0);
    const i = checkMapRange(s.dmas, req, prot, what);
    if (s.dmas.length >= this.#dmaEntryLimit) {
      throw new IopfLabError(
        "ENOSPC",
        `${what}: the container already holds ${s.dmas.length} vfio_dma ranges (dma_entry_limit ${this.#dmaEntryLimit})`,
      );
    }
    const mode: VfioDmaMode = req.pfnmap !== undefined
      ? "pfnmap"
      : s.iopf
      ? "iopf"
      : "pinned";
    const dma = new VfioDma(req, prot, mode);
    let ns = s.costs["vfio.mapDmaCall"];
    if (mode === "pfnmap") {
      ns += s.costs["vfio.pfnmapBatch"] +
        this.core.map(domain, iova, dma.pfnmap, size, prot);
      dma.mappedPages = dma.npages;
    } else if (mode === "iopf") {
      ns += s.costs["vfio.bitmapAllocPer4kPages"] * dma.npages;
      if (s.mmuNotifier) registerNotifier(s, dma);
    } else {
      ns += pinAndMapAll(s, dma, domain);
    }
    s.dmas.splice(i, 0, dma);
    s.counters.add("vfio.mapDma");
    return ns + lockForSyncCaller(s, ns);
  }

  /**
   * VFIO_IOMMU_MAP_DMA as it runs on the machine: the same ioctl as
   * {@linkcode mapDma}, but a static pin advances the simulated clock as it
   * goes (vfio_pin_map_dma's loop, in steps of whole 2 MiB blocks; see
   * lib/sim/steps.ts), so pinned and locked pages grow through the ioctl's
   * duration and each run is mapped when it is pinned. The vfio_dma is
   * linked first (as vfio_dma_do_map does), so overlapping requests fail
   * with EEXIST meanwhile. `done(error, ns)` runs when the ioctl returns:
   * after its whole cost, or at the error, with the range released again
   * (errors as {@linkcode mapDma}). IOPF and PFNMAP ranges pin nothing:
   * they complete after their {@linkcode mapDma} cost. Checks of the
   * request throw at once, as {@linkcode mapDma}'s do.
   */
  mapDmaTimed(
    req: VfioDmaMapRequest,
    done: (error: IopfLabError | undefined, ns: number) => void,
  ): void {
    const s = this.#s;
    if (req.pfnmap !== undefined || s.iopf) {
      const ns = this.mapDma(req);
      this.sim.after(ns, () => done(undefined, ns));
      return;
    }
    const { iova, size, flags } = req;
    const what = `Cannot map DMA IOVA ${hex(iova)}+${hex(size)}`;
    const domain = needDomain(s, "map DMA");
    const prot = (flags & VFIO_DMA_MAP_FLAG_READ ? PROT_READ : 0) |
      (flags & VFIO_DMA_MAP_FLAG_WRITE ? PROT_WRITE : 0);
    const i = checkMapRange(s.dmas, req, prot, what);
    const dma = new VfioDma(req, prot, "pinned");
    s.dmas.splice(i, 0, dma);
    const p = new PinProgress();
    const vma = this.mm.findVma(req.vaddr);
    const step = stepBytes(size, vma?.pageSize);
    const call = s.costs["vfio.mapDmaCall"];
    let first = true;
    runSteps(this.sim, {
      total: size,
      step,
      run: (_off, bytes) => {
        if (dma.removed) {
          throw new IopfLabError(
            "ENODEV",
            `${what}: the container was released during the pin`,
          );
        }
        let ns = first ? call : 0;
        first = false;
        // One step pins `bytes`; a run may open or be mapped within it.
        let left = bytes / PAGE_SIZE;
        while (left > 0) {
          const before = dma.pinnedPages;
          ns += pinAndMapPart(s, dma, domain, p, left);
          left -= dma.pinnedPages - before;
        }
        return ns;
      },
      done: (e, ns) => {
        if (e) {
          if (!dma.removed) {
            unwindPin(s, dma, domain);
            const at = s.dmas.indexOf(dma);
            if (at >= 0) s.dmas.splice(at, 1);
          }
          done(e, ns);
          return;
        }
        s.counters.add("vfio.mapDma");
        done(undefined, ns);
      },
    });
  }

  /**
   * VFIO_IOMMU_UNMAP_DMA: removes every vfio_dma inside [iova, iova + size)
   * (EINVAL if the range would split one), unmaps it, syncs the IOTLB, then
   * unpins and uncharges what it held (when the sync completes; `done`
   * then). Returns the bytes removed (0 when none) and the CPU cost.
   */
  unmapDma(req: VfioDmaUnmapRequest, done?: () => void): VfioUnmapResult {
    const s = this.#s;
    const what = `Cannot unmap DMA IOVA ${hex(req.iova)}+${hex(req.size)}`;
    needDomain(s, "unmap DMA");
    const victims = takeUnmapRange(s.dmas, req, what);
    let ns = s.costs["vfio.unmapDmaCall"];
    let bytes = 0;
    let left = victims.length + 1;
    const one = () => {
      if (--left === 0) done?.();
    };
    for (const d of victims) {
      bytes += d.size;
      ns += unmapUnpin(s, d, one);
    }
    s.counters.add("vfio.unmapDma");
    this.sim.after(0, one);
    return { bytes, ns: ns + lockForSyncCaller(s, ns) };
  }

  /**
   * Container teardown (closing the container fd: vfio_iommu_type1_release):
   * unmaps and unpins every vfio_dma, detaches every device (answering its
   * pending faults INVALID) and frees the domain; `done` once everything
   * completed. The container is unusable afterwards.
   */
  release(done?: () => void): void {
    const s = this.#s;
    if (s.released) {
      if (done) this.sim.after(0, done);
      return;
    }
    s.released = true;
    let left = 1;
    const one = () => {
      if (--left > 0) return;
      if (s.domain) {
        this.core.domainFree(s.domain);
        s.domain = undefined;
      }
      done?.();
    };
    const victims = s.dmas.splice(0, s.dmas.length);
    for (const d of victims) {
      left++;
      unmapUnpin(s, d, one);
    }
    for (const dev of [...s.devices.keys()]) {
      left++;
      this.detachDevice(dev, one);
    }
    this.sim.after(0, one);
  }
}
