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
import type { IopfGroup } from "../iommu/io_pgfault.ts";
import {
  FAULT_REPORT_FLAT,
  FAULT_REPORT_NESTED_L1,
  FAULT_REPORT_NESTED_L2,
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
  IOMMU_PAGE_RESP_INVALID,
  IOMMU_PAGE_RESP_SUCCESS,
  type IommuDevice,
  type IommuFault,
  type NestedConfig,
  newIotlbGather,
  type PageResponseCode,
} from "../iommu/types.ts";
import type { MmStruct } from "../mm/mm_struct.ts";
import type { VmArea } from "../mm/types.ts";
import type { Costs } from "../sim/costs.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import { Resource } from "../sim/resource.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Counters, Histogram } from "../sim/stats.ts";
import { alignDown, PAGE_SIZE, PROT_READ, PROT_WRITE } from "../sim/units.ts";
import { countBits, fillBits, nextClear, nextSet, testBit } from "./_bitmap.ts";
import { checkMapRange, findDma, takeUnmapRange, VfioDma } from "./dma.ts";
import { VfioDmaFaultRegion } from "./fault_region.ts";

/** VFIO_DMA_MAP_FLAG_READ: the device may read the range. */
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
/** VFIO_DMA_MAP_FLAG_WRITE: the device may write the range. */
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;

/** The RFC v3's pre-map length (IOPF_PREMAP_LEN), in 4 KiB pages. */
export const IOPF_PREMAP_LEN = 512;

/**
 * Pages per pin_user_pages call in the kernel's pinning loop (a vfio_batch
 * holds one page of struct page pointers): `mm.pinCall` is charged per
 * batch even though the model pins larger ranges per call.
 */
export const VFIO_PIN_BATCH_PAGES = 512;

/** Pages per MmStruct.pinUserPages call of static MAP_DMA (1 GiB). */
const MM_CALL_PAGES = 1 << 18;

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
   * its vfio_dma, skipping pages already mapped. 1 = no pre-map; the RFC v3
   * uses {@linkcode IOPF_PREMAP_LEN}. Default 1.
   */
  premapPages?: number;
  /**
   * Use the MMU notifier (RFC v2+): IOPF pages are unpinned (and not
   * charged) right after mapping, and unmapped when the host mm invalidates
   * them. Default false: IOPF pages stay pinned until UNMAP_DMA.
   */
  mmuNotifier?: boolean;
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
  /** Fault groups that waited for the container lock. */
  lockWaits: number;
  /** Total time spent waiting for the container lock (ns). */
  lockWaitNs: number;
  /** MMU notifier invalidations that unmapped something. */
  notifierInvalidations: number;
  /** Pages unmapped by the MMU notifier. */
  notifierUnmappedPages: number;
}

/**
 * One fault group in the type1 IOPF handler, from the handler call to its
 * page response (pooled by the container; the callbacks are bound once).
 */
interface FaultWork {
  group: IopfGroup | undefined;
  done: () => void;
  /** When the handler was called (ns). */
  t0: number;
  /** The response decided under the lock. */
  code: PageResponseCode;
  /** Resource callback: the container lock is taken. */
  locked: () => void;
  /** Event: the faults' work is done; the lock is dropped. */
  unlock: () => void;
  /** Event: the response goes out. */
  respond: () => void;
}

function noop(): void {}

interface DeviceState {
  devId: number;
  nested: IommuDomain | undefined;
  iopfEnabled: boolean;
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
  readonly counters: Counters = new Counters();
  /** Time from a fault group reaching the handler to its response (ns), lock wait included. */
  readonly handlerNs: Histogram = new Histogram();
  #type: VfioIommuType | undefined;
  #domain: IommuDomain | undefined;
  #iopf = false;
  #region: VfioDmaFaultRegion | undefined;
  #released = false;
  readonly #dmas: VfioDma[] = [];
  readonly #devices = new Map<IommuDevice, DeviceState>();
  #nextDevId = 1;
  #pinned = 0;
  #locked = 0;
  #pinnedPeak = 0;
  #lockedPeak = 0;
  #pfnBuf: Float64Array | undefined;
  readonly #freeWork: FaultWork[] = [];
  /** The device {@linkcode deviceById} found last. */
  #lastById: IommuDevice | undefined = undefined;
  /** Whether the last {@linkcode #handleFault} resolved its fault. */
  #faultOk = true;
  // Cells of the counters every fault bumps (Counters.cell), taken at their
  // first use: no name lookup per fault.
  #cGroups: { v: number } | undefined;
  #cFaults: { v: number } | undefined;
  #cMapped: { v: number } | undefined;
  #cPremapped: { v: number } | undefined;
  /** The options of the fault path's pins (read by the call, so reusable). */
  readonly #faultPinOpts: { longterm: boolean; out: Float64Array } = {
    longterm: false,
    out: new Float64Array(0),
  };

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
    this.sim = core.sim;
    this.core = core;
    this.mm = mm;
    this.costs = options.costs ?? core.costs;
    this.premapPages = premap;
    this.mmuNotifier = options.mmuNotifier ?? false;
    this.lock = new Resource(core.sim, {
      name: "vfio container lock",
      servers: 1,
    });
  }

  // -------------------------------------------------------------------------
  // State

  /** The IOMMU type set, if any. */
  get type(): VfioIommuType | undefined {
    return this.#type;
  }

  /** The container's paging domain (stage 2 when nesting). */
  get domain(): IommuDomain | undefined {
    return this.#domain;
  }

  /** True after {@linkcode enableIopf}. */
  get iopfEnabled(): boolean {
    return this.#iopf;
  }

  /** The nested DMA fault region, after {@linkcode enableFaultRegion}. */
  get faultRegion(): VfioDmaFaultRegion | undefined {
    return this.#region;
  }

  /** 4 KiB pages the container holds pinned (pins awaiting an IOTLB sync included). */
  get pinnedPages(): number {
    return this.#pinned;
  }

  /** 4 KiB pages the container charged to locked_vm. */
  get lockedPages(): number {
    return this.#locked;
  }

  /** The vfio_dma ranges, by IOVA. */
  dmas(): VfioDmaInfo[] {
    return this.#dmas.map((d) => d.info());
  }

  /** The container's statistics. */
  stats(): VfioStats {
    const c = this.counters;
    return {
      pinnedPages: this.#pinned,
      pinnedPagesPeak: this.#pinnedPeak,
      lockedBytes: this.#locked * PAGE_SIZE,
      lockedBytesPeak: this.#lockedPeak * PAGE_SIZE,
      faults: c.get("vfio.faults"),
      faultsInvalid: c.get("vfio.faults.invalid"),
      faultsRaced: c.get("vfio.faults.raced"),
      faultMappedPages: c.get("vfio.faults.mappedPages"),
      premappedPages: c.get("vfio.faults.premappedPages"),
      lockWaits: this.lock.waits,
      lockWaitNs: this.lock.totalWaitNs,
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
    const d = findDma(this.#dmas, iova);
    if (!d) return false;
    if (!d.bitmap) return true;
    return testBit(d.bitmap, Math.floor((iova - d.iova) / PAGE_SIZE));
  }

  /** The device id (IOMMUFD dev_id analogue) of an attached device, or -1. */
  devId(dev: IommuDevice): number {
    return this.#devices.get(dev)?.devId ?? -1;
  }

  /** The attached device with id `devId`, if any. */
  deviceById(devId: number): IommuDevice | undefined {
    // Ids are unique: the device found last is checked first (one lookup
    // per fault the VMM forwards instead of a walk over the devices).
    const last = this.#lastById;
    if (last !== undefined && this.#devices.get(last)?.devId === devId) {
      return last;
    }
    for (const [dev, s] of this.#devices) {
      if (s.devId === devId) {
        this.#lastById = dev;
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
    this.#checkLive("set the IOMMU");
    if (this.#type) {
      throw new IopfLabError(
        "EBUSY",
        `Cannot set the IOMMU to ${type}: it is already ${this.#type}`,
      );
    }
    if (type !== "type1v2" && type !== "nesting") {
      throw new IopfLabError(
        "EINVAL",
        `Cannot set the IOMMU: unknown type ${String(type)}`,
      );
    }
    const stage = type === "nesting" ? 2 : options.stage ?? 2;
    this.#domain = this.core.domainAllocPaging(stage);
    this.#type = type;
  }

  /**
   * Attaches `dev` (its group) to the container's domain; `done` when the
   * hardware uses it. With IOPF or the fault region enabled, the device's
   * recoverable faults are enabled and its handlers registered.
   */
  attachDevice(dev: IommuDevice, done?: () => void): void {
    const domain = this.#needDomain("attach a device");
    if (this.#devices.has(dev)) {
      throw new IopfLabError(
        "EBUSY",
        `Cannot attach ${dev.name}: already in this container`,
      );
    }
    if ((this.#iopf || this.#region) && !dev.stall && !dev.pri) {
      throw new IopfLabError(
        "ENODEV",
        `Cannot attach ${dev.name}: IOPF is enabled and the device can neither stall nor use PRI`,
      );
    }
    this.core.attachDevice(domain, dev, done);
    const s: DeviceState = {
      devId: this.#nextDevId++,
      nested: undefined,
      iopfEnabled: false,
    };
    this.#devices.set(dev, s);
    if (this.#iopf) this.#enableDeviceIopf(dev, s);
    if (this.#region) this.#registerL1(dev, s);
  }

  /**
   * Detaches `dev`: every fault group of it still pending is answered
   * INVALID (forwarded stage-1 groups included), its handlers are removed,
   * a nested domain is freed; `done` when the STE is back to abort.
   */
  detachDevice(dev: IommuDevice, done?: () => void): void {
    const s = this.#devices.get(dev);
    if (!s) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot detach ${dev.name}: not in this container`,
      );
    }
    const domain = this.core.getDomainForDev(dev);
    this.#devices.delete(dev);
    this.#region?.revokeDevice(dev);
    const nested = s.nested;
    if (domain) {
      this.core.detachDevice(domain, dev, () => {
        if (nested) this.core.domainFree(nested);
        done?.();
      });
    } else {
      this.sim.after(0, () => done?.());
    }
    this.core.unregisterDeviceFaultHandler(dev);
    if (s.iopfEnabled) this.core.devDisableIopf(dev);
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
    this.#needDomain("enable IOPF");
    if (this.#iopf) return;
    if (this.#dmas.some((d) => d.mode === "pinned")) {
      throw new IopfLabError(
        "EBUSY",
        "Cannot enable IOPF: guest memory is already pinned and mapped (enable it before VFIO_IOMMU_MAP_DMA)",
      );
    }
    this.#checkIopfCapable("enable IOPF");
    this.#iopf = true;
    for (const [dev, s] of this.#devices) this.#enableDeviceIopf(dev, s);
  }

  /**
   * Sets up the nested DMA fault region (a ring of `entries` records plus an
   * eventfd) and registers the NESTED_L1 handler that forwards stage-1
   * faults to it. Only with the `"nesting"` type. Returns the region for
   * the VMM.
   */
  enableFaultRegion(options: { entries?: number } = {}): VfioDmaFaultRegion {
    this.#needDomain("enable the DMA fault region");
    if (this.#type !== "nesting") {
      throw new IopfLabError(
        "EINVAL",
        "Cannot enable the DMA fault region: the container is not a nesting container",
      );
    }
    if (this.#region) return this.#region;
    this.#checkIopfCapable("enable the DMA fault region");
    const regionOptions = {
      costs: this.costs,
      core: this.core,
      devId: (dev: IommuDevice) => this.devId(dev),
    };
    this.#region = new VfioDmaFaultRegion(
      this.sim,
      options.entries === undefined
        ? regionOptions
        : { ...regionOptions, entries: options.entries },
    );
    for (const [dev, s] of this.#devices) this.#registerL1(dev, s);
    return this.#region;
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
    const domain = this.#needDomain("set a PASID table");
    if (this.#type !== "nesting") {
      throw new IopfLabError(
        "EINVAL",
        `Cannot set a PASID table for ${dev.name}: the container is not a nesting container`,
      );
    }
    const s = this.#devices.get(dev);
    if (!s) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot set a PASID table for ${dev.name}: not attached`,
      );
    }
    const old = s.nested;
    const nested = this.core.domainAllocNested(domain, config);
    s.nested = nested;
    this.core.replaceDevice(nested, dev, done);
    if (old) this.core.domainFree(old);
  }

  /** The nested domain of `dev`, if bound to a guest stage 1. */
  nestedDomain(dev: IommuDevice): IommuDomain | undefined {
    return this.#devices.get(dev)?.nested;
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
    const targets: IommuDomain[] = [];
    for (const [dev, s] of this.#devices) {
      if (s.nested && (range.dev === undefined || range.dev === dev)) {
        targets.push(s.nested);
      }
    }
    let left = targets.length;
    if (left === 0) {
      this.sim.after(0, () => done?.());
      return;
    }
    for (const d of targets) {
      const g = newIotlbGather();
      g.start = range.iova;
      g.end = range.iova + range.size;
      g.pgsize = PAGE_SIZE;
      g.entries = Math.max(1, Math.ceil(range.size / PAGE_SIZE));
      this.core.iotlbSync(d, g, () => {
        if (--left === 0) done?.();
      });
    }
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
   *   overflow, no IOMMU set); EEXIST (overlaps a vfio_dma); ENOMEM (over
   *   RLIMIT_MEMLOCK or out of host memory: nothing stays pinned, charged
   *   or mapped; pages faulted in before the limit was hit stay populated,
   *   as in the kernel); EFAULT (vaddr not mapped)
   */
  mapDma(req: VfioDmaMapRequest): number {
    const { vaddr, iova, size, flags } = req;
    const what = `Cannot map DMA IOVA ${hex(iova)}+${hex(size)}`;
    const domain = this.#needDomain("map DMA");
    const prot = (flags & VFIO_DMA_MAP_FLAG_READ ? PROT_READ : 0) |
      (flags & VFIO_DMA_MAP_FLAG_WRITE ? PROT_WRITE : 0);
    const i = checkMapRange(this.#dmas, req, prot, what);
    const mode: VfioDmaMode = req.pfnmap !== undefined
      ? "pfnmap"
      : this.#iopf
      ? "iopf"
      : "pinned";
    const dma = new VfioDma(req, prot, mode);
    let ns = this.costs["vfio.mapDmaCall"];
    if (mode === "pfnmap") {
      ns += this.costs["vfio.pfnmapBatch"] +
        this.core.map(domain, iova, dma.pfnmap, size, prot);
      dma.mappedPages = dma.npages;
    } else if (mode === "iopf") {
      ns += this.costs["vfio.bitmapAllocPer4kPages"] * dma.npages;
      if (this.mmuNotifier) {
        dma.notifier = this.mm.registerMmuNotifier(vaddr, size, {
          invalidateRangeStart: (start, end) =>
            this.#invalidate(dma, start, end),
          invalidateRangeEnd: () => 0,
        });
      }
    } else {
      ns += this.#pinAndMapAll(dma, domain);
    }
    this.#dmas.splice(i, 0, dma);
    this.counters.add("vfio.mapDma");
    return ns;
  }

  /**
   * VFIO_IOMMU_UNMAP_DMA: removes every vfio_dma inside [iova, iova + size)
   * (EINVAL if the range would split one), unmaps it, syncs the IOTLB, then
   * unpins and uncharges what it held (when the sync completes; `done`
   * then). Returns the bytes removed (0 when none) and the CPU cost.
   */
  unmapDma(req: VfioDmaUnmapRequest, done?: () => void): VfioUnmapResult {
    const what = `Cannot unmap DMA IOVA ${hex(req.iova)}+${hex(req.size)}`;
    this.#needDomain("unmap DMA");
    const victims = takeUnmapRange(this.#dmas, req, what);
    let ns = this.costs["vfio.unmapDmaCall"];
    let bytes = 0;
    let left = victims.length + 1;
    const one = () => {
      if (--left === 0) done?.();
    };
    for (const d of victims) {
      bytes += d.size;
      ns += this.#removeDma(d, one);
    }
    this.counters.add("vfio.unmapDma");
    this.sim.after(0, one);
    return { bytes, ns };
  }

  /**
   * Container teardown (closing the container fd: vfio_iommu_type1_release):
   * unmaps and unpins every vfio_dma, detaches every device (answering its
   * pending faults INVALID) and frees the domain; `done` once everything
   * completed. The container is unusable afterwards.
   */
  release(done?: () => void): void {
    if (this.#released) {
      if (done) this.sim.after(0, done);
      return;
    }
    this.#released = true;
    let left = 1;
    const one = () => {
      if (--left > 0) return;
      if (this.#domain) {
        this.core.domainFree(this.#domain);
        this.#domain = undefined;
      }
      done?.();
    };
    const victims = this.#dmas.splice(0, this.#dmas.length);
    for (const d of victims) {
      left++;
      this.#removeDma(d, one);
    }
    for (const dev of [...this.#devices.keys()]) {
      left++;
      this.detachDevice(dev, one);
    }
    this.sim.after(0, one);
  }

  // -------------------------------------------------------------------------
  // Static pinning

  #limitPages(): number {
    const l = this.mm.memlockLimit;
    return l === Infinity ? Infinity : Math.floor(l / PAGE_SIZE);
  }

  #buf(n: number): Float64Array {
    if (!this.#pfnBuf || this.#pfnBuf.length < n) {
      this.#pfnBuf = new Float64Array(Math.max(n, this.premapPages));
    }
    return this.#pfnBuf;
  }

  /** vfio_pin_map_dma(): pins, charges and maps the whole range, or nothing. */
  #pinAndMapAll(dma: VfioDma, domain: IommuDomain): number {
    let ns = 0;
    let done = 0; // pages pinned, charged and mapped
    try {
      while (done < dma.npages) {
        const hva = dma.vaddr + done * PAGE_SIZE;
        const vma = this.mm.findVma(hva);
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
        const allow = this.#limitPages() - this.mm.lockedVm;
        if (allow < n) {
          // The kernel pins a batch before it finds the limit: the pages up
          // to it get faulted in, then everything is released.
          if (allow > 0) {
            this.mm.pinUserPages(hva, allow, { longterm: true });
            this.mm.unpinUserPages(hva, allow);
          }
          throw new IopfLabError(
            "ENOMEM",
            `Cannot pin IOVA ${hex(dma.iova)}+${
              hex(dma.size)
            }: locked_vm ${this.mm.lockedVm} + ${
              dma.npages - done
            } pages exceeds RLIMIT_MEMLOCK of ${this.#limitPages()} pages`,
          );
        }
        const huge = vma.backing === "hugetlb-2m" ||
          vma.backing === "hugetlb-1g";
        const out = huge ? undefined : this.#buf(n);
        const r = this.mm.pinUserPages(
          hva,
          n,
          out ? { longterm: true, out } : { longterm: true },
        );
        ns += r.ns +
          this.costs["mm.pinCall"] * (Math.ceil(n / VFIO_PIN_BATCH_PAGES) - 1);
        try {
          this.mm.accountLockedVm(n, true);
        } catch (e) {
          this.mm.unpinUserPages(hva, n);
          throw e;
        }
        this.#addPinned(dma, n, n);
        ns += this.#mapPinned(
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
        this.core.unmap(domain, dma.iova, dma.mappedPages * PAGE_SIZE);
        dma.mappedPages = 0;
      }
      if (dma.pinnedPages > 0) this.#releasePinned(dma, 0, dma.pinnedPages);
      throw e;
    }
    return ns;
  }

  /**
   * Maps pages [off, off + n) of `dma`, pinned just now, in physically
   * contiguous runs. PFNs come from `out` (page by page) or, for hugetlb,
   * from the head of each folio (a folio is contiguous).
   */
  #mapPinned(
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
    let runPfn = out ? out[0]! : this.#pfnAt(dma, off);
    let i = 0;
    for (;;) {
      const next = out ? i + 1 : i + folio - ((hvaPage0 + i) % folio);
      if (next >= n) break;
      const pfn = out ? out[next]! : this.#pfnAt(dma, off + next);
      if (pfn !== runPfn + (next - runStart)) {
        ns += this.#mapRun(
          dma,
          domain,
          off + runStart,
          next - runStart,
          runPfn,
        );
        runStart = next;
        runPfn = pfn;
      }
      i = next;
    }
    ns += this.#mapRun(dma, domain, off + runStart, n - runStart, runPfn);
    return ns;
  }

  /** PFN of page `page` of `dma` (from the mm: a hugetlb folio's pages). */
  #pfnAt(dma: VfioDma, page: number): number {
    return this.mm.hvaToPfn(dma.vaddr + page * PAGE_SIZE);
  }

  #mapRun(
    dma: VfioDma,
    domain: IommuDomain,
    page: number,
    n: number,
    pfn: number,
  ): number {
    const ns = this.core.map(
      domain,
      dma.iova + page * PAGE_SIZE,
      pfn * PAGE_SIZE,
      n * PAGE_SIZE,
      dma.prot,
    );
    dma.mappedPages += n;
    return ns;
  }

  #addPinned(dma: VfioDma, pinned: number, locked: number): void {
    dma.pinnedPages += pinned;
    dma.lockedPages += locked;
    this.#pinned += pinned;
    this.#locked += locked;
    if (this.#pinned > this.#pinnedPeak) this.#pinnedPeak = this.#pinned;
    if (this.#locked > this.#lockedPeak) this.#lockedPeak = this.#locked;
  }

  /** Unpins and uncharges pages [off, off + n) of a pinned dma. Returns ns. */
  #releasePinned(dma: VfioDma, off: number, n: number): number {
    const ns = this.mm.unpinUserPages(dma.vaddr + off * PAGE_SIZE, n);
    this.mm.accountLockedVm(n, false);
    dma.pinnedPages -= n;
    dma.lockedPages -= n;
    this.#pinned -= n;
    this.#locked -= n;
    return ns;
  }

  /**
   * vfio_remove_dma(): unmaps the whole range (one unmap, one sync), then
   * releases the pins it held when the sync completed. Returns the CPU cost.
   */
  #removeDma(dma: VfioDma, done: () => void): number {
    dma.removed = true;
    dma.notifier?.unregister();
    dma.notifier = undefined;
    const domain = this.#domain!;
    const release = (): number => {
      let ns = 0;
      if (dma.mode === "pinned") {
        if (dma.pinnedPages > 0) ns += this.#releasePinned(dma, 0, dma.npages);
      } else if (dma.mode === "iopf" && dma.pinnedPages > 0) {
        const bits = dma.bitmap!;
        let a = nextSet(bits, 0, dma.npages);
        while (a < dma.npages) {
          const b = nextClear(bits, a, dma.npages);
          ns += this.#releasePinned(dma, a, b - a);
          a = nextSet(bits, b, dma.npages);
        }
      }
      return ns;
    };
    let ns = 0;
    if (dma.mappedPages > 0) {
      const r = this.core.unmap(domain, dma.iova, dma.size, () => {
        release();
        done();
      });
      ns += r.ns;
      // The unpin work happens when the sync completes; count its CPU time here.
      ns += this.costs["mm.unpinPer4k"] * dma.pinnedPages;
    } else {
      ns += release();
      this.sim.after(0, done);
    }
    dma.mappedPages = 0;
    return ns;
  }

  // -------------------------------------------------------------------------
  // IOPF

  #checkIopfCapable(what: string): void {
    for (const dev of this.#devices.keys()) {
      if (!dev.stall && !dev.pri) {
        throw new IopfLabError(
          "ENODEV",
          `Cannot ${what}: ${dev.name} can neither stall nor use PRI`,
        );
      }
    }
  }

  #enableDeviceIopf(dev: IommuDevice, s: DeviceState): void {
    if (!s.iopfEnabled) {
      this.core.devEnableIopf(dev);
      s.iopfEnabled = true;
    }
    const flags = this.#type === "nesting"
      ? FAULT_REPORT_FLAT | FAULT_REPORT_NESTED_L2
      : FAULT_REPORT_FLAT;
    this.core.registerDeviceFaultHandler(dev, this.#iopfHandler, flags);
  }

  #registerL1(dev: IommuDevice, s: DeviceState): void {
    if (!s.iopfEnabled) {
      this.core.devEnableIopf(dev);
      s.iopfEnabled = true;
    }
    const region = this.#region!;
    this.core.registerDeviceFaultHandler(
      dev,
      (g, done) => region.handleGroup(g, done),
      FAULT_REPORT_NESTED_L1,
    );
  }

  /**
   * The type1 IOPF handler (vfio_iommu_type1_dma_map_iopf, RFC v3): under
   * the container lock, each fault of the group is looked up, checked,
   * pinned and mapped (with pre-map); the group then gets one response.
   */
  readonly #iopfHandler = (group: IopfGroup, done: () => void): void => {
    const w = this.#freeWork.pop() ?? this.#newWork();
    w.group = group;
    w.done = done;
    w.t0 = this.sim.now;
    (this.#cGroups ??= this.counters.cell("vfio.faultGroups")).v++;
    this.lock.acquireSlot(w.locked);
  };

  #newWork(): FaultWork {
    const w: FaultWork = {
      group: undefined,
      done: noop,
      t0: 0,
      code: IOMMU_PAGE_RESP_SUCCESS,
      locked: noop,
      unlock: noop,
      respond: noop,
    };
    w.locked = () => this.#faultGroupLocked(w);
    w.unlock = () => {
      this.lock.releaseSlot();
      this.sim.after(this.costs["vfio.faultRespond"], w.respond);
    };
    w.respond = () => {
      this.handlerNs.record(this.sim.now - w.t0);
      const { group, done, code } = w;
      w.group = undefined;
      w.done = noop;
      this.#freeWork.push(w);
      this.core.pageResponse(group!.dev, group!, code);
      done();
    };
    return w;
  }

  /** Under the container lock: handles each fault of the group, then unlocks after their time. */
  #faultGroupLocked(w: FaultWork): void {
    const group = w.group!;
    let ns = 0;
    let code: PageResponseCode = IOMMU_PAGE_RESP_SUCCESS;
    if (this.#released) {
      code = IOMMU_PAGE_RESP_INVALID;
    } else {
      const faults = group.faults;
      for (let i = 0; i < faults.length; i++) {
        ns += this.#handleFault(faults[i]!);
        if (!this.#faultOk) {
          code = IOMMU_PAGE_RESP_INVALID;
          break;
        }
      }
    }
    w.code = code;
    this.sim.after(ns, w.unlock);
  }

  /** Counts an invalid fault (`why`) and makes {@linkcode #handleFault} report it. */
  #invalid(why: string, ns: number): number {
    this.counters.add("vfio.faults.invalid");
    this.counters.add(`vfio.faults.invalid.${why}`);
    this.#faultOk = false;
    return ns;
  }

  /**
   * One fault of a group: returns the ns it took and leaves in
   * `#faultOk` whether it was resolved.
   */
  #handleFault(f: IommuFault): number {
    const k = this.costs;
    (this.#cFaults ??= this.counters.cell("vfio.faults")).v++;
    this.#faultOk = true;
    let ns = k["vfio.faultLookup"];
    if (f.type !== "page-req") return this.#invalid("notPageRequest", ns);
    const addr = f.stage === 2 && f.ipa >= 0 ? f.ipa : f.addr;
    const iova = alignDown(addr, PAGE_SIZE);
    const dma = findDma(this.#dmas, iova);
    if (!dma) return this.#invalid("noDma", ns);
    if (
      ((f.perm & IOMMU_FAULT_PERM_WRITE) !== 0 &&
        (dma.prot & PROT_WRITE) === 0) ||
      ((f.perm & IOMMU_FAULT_PERM_READ) !== 0 && (dma.prot & PROT_READ) === 0)
    ) {
      return this.#invalid("perm", ns);
    }
    if (!dma.bitmap) {
      // A pinned or PFNMAP range is mapped whole: nothing to fault in.
      if (this.core.iovaToPhys(this.#domain!, iova) >= 0) {
        this.counters.add("vfio.faults.raced");
        return ns;
      }
      return this.#invalid("notIopf", ns);
    }
    const bits = dma.bitmap;
    const p = Math.floor((iova - dma.iova) / PAGE_SIZE);
    ns += k["vfio.bitmapCheck"];
    if (testBit(bits, p)) {
      this.counters.add("vfio.faults.raced");
      return ns;
    }
    const end = Math.min(dma.npages, p + this.premapPages);
    ns += k["vfio.bitmapCheck"] * (end - p - 1);
    let budget = end - p;
    if (!this.mmuNotifier) {
      budget = Math.min(budget, this.#limitPages() - this.mm.lockedVm);
      if (budget <= 0) return this.#invalid("memlock", ns);
    }
    let q = p;
    let mapped = 0;
    while (q < end && budget > 0) {
      const a = nextClear(bits, q, end);
      if (a >= end) break;
      const b = Math.min(nextSet(bits, a, end), a + budget);
      try {
        ns += this.#faultInRun(dma, a, b - a);
      } catch (e) {
        if (!(e instanceof IopfLabError)) throw e;
        if (a !== p) break; // the faulting page is mapped; stop pre-mapping
        if (b - a === 1) return this.#invalid(e.code, ns);
        // Part of the pre-map window failed (say, beyond the VMA): the
        // faulting page alone, as the kernel pins what it can.
        try {
          ns += this.#faultInRun(dma, p, 1);
        } catch (e1) {
          if (!(e1 instanceof IopfLabError)) throw e1;
          return this.#invalid(e1.code, ns);
        }
        mapped = 1;
        break;
      }
      mapped += b - a;
      if (!this.mmuNotifier) budget -= b - a;
      q = b;
    }
    (this.#cMapped ??= this.counters.cell("vfio.faults.mappedPages")).v +=
      mapped;
    (this.#cPremapped ??= this.counters.cell("vfio.faults.premappedPages"))
      .v += mapped - 1;
    return ns;
  }

  /** Pins pages [a, a + n) of an IOPF dma, maps them, sets their bits. */
  #faultInRun(dma: VfioDma, a: number, n: number): number {
    const k = this.costs;
    const domain = this.#domain!;
    const hva = dma.vaddr + a * PAGE_SIZE;
    const out = this.#buf(n);
    const opts = this.#faultPinOpts;
    opts.longterm = !this.mmuNotifier;
    opts.out = out;
    const r = this.mm.pinUserPages(hva, n, opts);
    let ns = r.ns;
    if (!this.mmuNotifier) {
      try {
        this.mm.accountLockedVm(n, true);
      } catch (e) {
        this.mm.unpinUserPages(hva, n);
        throw e;
      }
    }
    try {
      ns += this.#mapPinned(dma, domain, a, n, out, null);
    } catch (e) {
      this.mm.unpinUserPages(hva, n);
      if (!this.mmuNotifier) this.mm.accountLockedVm(n, false);
      throw e;
    }
    fillBits(dma.bitmap!, a, a + n, true);
    ns += k["vfio.bitmapCheck"];
    if (this.mmuNotifier) ns += this.mm.unpinUserPages(hva, n);
    else this.#addPinned(dma, n, n);
    return ns;
  }

  /**
   * The MMU notifier's invalidate_range_start: unmaps the IOPF-mapped pages
   * of `dma` inside [start, end) (HVAs), clears their bits and, in strict
   * mode, syncs the IOTLB and the ATS devices' ATCs before returning
   * ({@linkcode IommuCore.unmapBlocking}: the CPU spins on CMD_SYNC, as the
   * kernel does), so no cached translation reaches the pages the mm frees
   * next. Returns the ns spent, the wait for CMD_SYNC included; the mm adds
   * it to the cost of the reclaim, munmap or madvise. In lazy mode the range
   * goes to the flush queue and stays reachable until the batched flush.
   */
  #invalidate(dma: VfioDma, start: number, end: number): number {
    if (dma.removed || !dma.bitmap) return 0;
    const s = Math.max(start, dma.vaddr);
    const e = Math.min(end, dma.vaddr + dma.size);
    if (s >= e) return 0;
    const p0 = Math.floor((s - dma.vaddr) / PAGE_SIZE);
    const p1 = Math.ceil((e - dma.vaddr) / PAGE_SIZE);
    const bits = dma.bitmap;
    let ns = this.costs["vfio.bitmapCheck"];
    const n = countBits(bits, p0, p1);
    if (n === 0) return ns;
    // Unmap from the first to the last mapped page in one call (holes cost nothing).
    const a = nextSet(bits, p0, p1);
    let b = a;
    for (let i = a; i < p1;) {
      b = nextClear(bits, i, p1);
      i = nextSet(bits, b, p1);
    }
    const r = this.core.unmapBlocking(
      this.#domain!,
      dma.iova + a * PAGE_SIZE,
      (b - a) * PAGE_SIZE,
    );
    ns += r.ns;
    fillBits(bits, a, b, false);
    dma.mappedPages -= n;
    this.counters.add("vfio.notifier.invalidations");
    this.counters.add("vfio.notifier.unmappedPages", n);
    return ns;
  }

  // -------------------------------------------------------------------------
  // Helpers

  #checkLive(what: string): void {
    if (this.#released) {
      throw new IopfLabError(
        "ENODEV",
        `Cannot ${what}: the container was released`,
      );
    }
  }

  #needDomain(what: string): IommuDomain {
    this.#checkLive(what);
    if (!this.#domain) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot ${what}: no IOMMU set (VFIO_SET_IOMMU first)`,
      );
    }
    return this.#domain;
  }
}
