/**
 * The contract between the Linux IOMMU core model (lib/iommu) and an IOMMU
 * driver (lib/smmu/driver.ts, the arm-smmu-v3 analogue), and the fault and
 * response types of the IOPF path (include/linux/iommu.h).
 *
 * @module
 */
import type { Prot } from "../sim/units.ts";

/** Fault permission bit: read (IOMMU_FAULT_PERM_READ). */
export const IOMMU_FAULT_PERM_READ = 1 << 0;
/** Fault permission bit: write (IOMMU_FAULT_PERM_WRITE). */
export const IOMMU_FAULT_PERM_WRITE = 1 << 1;
/** Fault permission bit: execute (IOMMU_FAULT_PERM_EXEC). */
export const IOMMU_FAULT_PERM_EXEC = 1 << 2;
/** Fault permission bit: privileged (IOMMU_FAULT_PERM_PRIV). */
export const IOMMU_FAULT_PERM_PRIV = 1 << 3;

/** Page-request flag: the PASID is valid (IOMMU_FAULT_PAGE_REQUEST_PASID_VALID). */
export const IOMMU_FAULT_PAGE_REQUEST_PASID_VALID = 1 << 0;
/** Page-request flag: last page of its group (IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE). */
export const IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE = 1 << 1;

/** Page response code SUCCESS: the fault was handled, retry. */
export const IOMMU_PAGE_RESP_SUCCESS = 0;
/** Page response code INVALID: the request could not be handled; the access fails. */
export const IOMMU_PAGE_RESP_INVALID = 1;
/** Page response code FAILURE: stop this device's page requests (PRI Response Failure). */
export const IOMMU_PAGE_RESP_FAILURE = 2;
/** A page response code. */
export type PageResponseCode = 0 | 1 | 2;

/** Handler registration flag of the 2021 RFC: a flat (single-stage) domain. */
export const FAULT_REPORT_FLAT = 1 << 0;
/** Handler registration flag of the 2021 RFC: stage-1 faults of a nested domain (forwarded to the guest). */
export const FAULT_REPORT_NESTED_L1 = 1 << 1;
/** Handler registration flag of the 2021 RFC: stage-2 faults of a nested domain (handled in the host). */
export const FAULT_REPORT_NESTED_L2 = 1 << 2;

/** How a fault reached the driver: a stalled transaction or a PCIe page request. */
export type FaultSource = "stall" | "pri";

/**
 * A recoverable page fault (struct iommu_fault_page_request) as the driver
 * reports it to the core.
 */
export interface IommuFault {
  /** Always "page-req": only page requests are recoverable. */
  readonly type: "page-req";
  /** Flags: PASID_VALID, LAST_PAGE. */
  readonly flags: number;
  /** PASID (SubstreamID), meaningful when PASID_VALID is set. */
  readonly pasid: number;
  /** Page request group index (PRI) or STAG (stall). */
  readonly grpid: number;
  /** Permissions requested (IOMMU_FAULT_PERM_*). */
  readonly perm: number;
  /** The faulting input address (IOVA; page aligned for PRI). */
  readonly addr: number;
  /**
   * Which translation stage faulted: 1 (stage 1, a guest's table when nested)
   * or 2 (stage 2, the host's table).
   */
  readonly stage: 1 | 2;
  /** For a stage-2 fault during nested translation: the IPA that faulted, else -1. */
  readonly ipa: number;
  /** How the fault was delivered. */
  readonly source: FaultSource;
  /** Simulated time the hardware detected the fault (ns), for latency metrics. */
  readonly detectedAt: number;
}

/** A device as the IOMMU core sees it (struct device + iommu fwspec). */
export interface IommuDevice {
  /** A unique name ("0000:01:00.0" or "platform-zip0"). */
  readonly name: string;
  /** The SMMU StreamID. */
  readonly sid: number;
  /** Uses PCIe ATS (translation requests, an ATC to invalidate). */
  readonly ats: boolean;
  /** Uses PCIe PRI for recoverable faults. */
  readonly pri: boolean;
  /** A platform device whose faults the SMMU may stall. */
  readonly stall: boolean;
}

/** The kind of translation a domain provides. */
export type DomainKind = "paging-s1" | "paging-s2" | "nested";

/**
 * A driver's domain: the page table behind a paging domain, or the guest
 * stage-1 configuration of a nested domain on top of a stage-2 parent.
 */
export interface DriverDomain {
  /** Domain id (unique per driver). */
  readonly id: number;
  /** What it translates. */
  readonly kind: DomainKind;
  /** Sizes the domain's page table can map (iommu pgsize_bitmap). */
  readonly pgsizeBitmap: number;
  /** For a nested domain: its stage-2 parent. */
  readonly parent?: DriverDomain;
  /**
   * The VMID tagging a stage-2 (or nested) domain's IPA space, for drivers
   * that have one (arm-smmu-v3); what a VMM learns of the stage-2 domain it
   * allocated, to key the guest's stage-1 tables by.
   */
  readonly vmid?: number;
}

/** Options of a nested domain: the guest's stage-1 context (from the vSMMU's CD). */
export interface NestedConfig {
  /** Stage-1 table root, an IPA (guest physical address). */
  readonly s1Ttb: number;
  /** The guest's ASID. */
  readonly asid: number;
  /** Stall on stage-1 faults (CD.S); otherwise faults terminate (CD.A/R). */
  readonly stall: boolean;
  /**
   * IPA of the guest's CD table (STE.S1ContextPtr), when the guest keeps one
   * in its own memory (registered in the SMMU's TableMemory under the
   * parent's VMID). Default: the driver writes a one-CD table holding this
   * config into the guest's space at the IPA `s1Ttb`.
   */
  readonly s1ContextPtr?: number;
}

/**
 * An IOTLB gather (struct iommu_iotlb_gather): the IOVA range and page sizes
 * unmapped since the last sync, for one invalidation.
 */
export interface IotlbGather {
  /** Lowest IOVA unmapped (Infinity when empty). */
  start: number;
  /** One past the highest IOVA unmapped (0 when empty). */
  end: number;
  /** Smallest page size unmapped (for range invalidation granules). */
  pgsize: number;
  /** Number of unmapped leaf entries. */
  entries: number;
}

/** Creates an empty gather. */
export function newIotlbGather(): IotlbGather {
  return { start: Infinity, end: 0, pgsize: 0, entries: 0 };
}

/**
 * The running result of a batch of single-page maps
 * ({@linkcode IommuDriverOps.mapPages}, `IommuCore.mapPages`): the ns of
 * the calls so far (what a caller adding up the single calls' costs would
 * hold, which it starts from) and the pages mapped.
 */
export interface MapPagesResult {
  /** The cost so far in ns: the caller's running sum plus each call's cost, added one by one. */
  ns: number;
  /** Pages mapped so far. */
  pages: number;
}

/**
 * What the IOMMU core needs from a driver (struct iommu_ops and
 * iommu_domain_ops). Map and unmap change the page table synchronously and
 * return their cost in ns; anything that goes through the hardware's command
 * queue (attach, invalidation, responses) is asynchronous on the simulator
 * and calls `done` when it completes, except `iotlbSyncBlocking`, which waits
 * for its CMD_SYNC and returns the time spent.
 */
export interface IommuDriverOps {
  /** Driver name ("arm-smmu-v3"). */
  readonly name: string;
  /** Allocates a paging domain for stage 1 or stage 2. */
  domainAllocPaging(stage: 1 | 2): DriverDomain;
  /** Allocates a nested domain whose stage 1 belongs to a guest, on a stage-2 parent. */
  domainAllocNested(parent: DriverDomain, config: NestedConfig): DriverDomain;
  /** Frees a domain with no device attached. */
  domainFree(domain: DriverDomain): void;
  /** Installs the device's STE/CD for `domain` (CFGI + SYNC), then calls `done`. */
  attachDev(dev: IommuDevice, domain: DriverDomain, done: () => void): void;
  /** Puts the device's STE back to abort, then calls `done`. */
  detachDev(dev: IommuDevice, done: () => void): void;
  /** Enables recoverable faults for the device (stall or PRI), as iommu_dev_enable_feature(IOPF). */
  enableIopf(dev: IommuDevice): void;
  /** Disables recoverable faults for the device. */
  disableIopf(dev: IommuDevice): void;
  /** Maps `[iova, iova+size)` to `paddr` with `prot`; returns ns. EEXIST/EINVAL as io-pgtable. */
  map(
    domain: DriverDomain,
    iova: number,
    paddr: number,
    size: number,
    prot: Prot,
  ): number;
  /**
   * Optional: `n` single 4 KiB maps, page k at `iova + k * 4 KiB` to frame
   * `pfns[from + k]`, exactly as `n` {@linkcode map} calls in order (same
   * table, same errors, the pages before a failing one left mapped): adds
   * `callNs` plus each page's map cost to `r.ns` page by page, and the pages
   * mapped to `r.pages` (also when it throws).
   */
  mapPages?(
    domain: DriverDomain,
    iova: number,
    pfns: ArrayLike<number>,
    from: number,
    n: number,
    prot: Prot,
    callNs: number,
    r: MapPagesResult,
  ): void;
  /** Unmaps, adding to `gather`; returns `{ bytes, ns }`. Stale IOTLB entries stay until a sync. */
  unmap(
    domain: DriverDomain,
    iova: number,
    size: number,
    gather: IotlbGather,
  ): { bytes: number; ns: number };
  /** The translation a domain's own table gives for `iova` (-1 if none); no cost, for checks. */
  iovaToPhys(domain: DriverDomain, iova: number): number;
  /** Invalidates what `gather` covers (TLBI + ATC_INV + SYNC), then calls `done`. */
  iotlbSync(domain: DriverDomain, gather: IotlbGather, done: () => void): void;
  /**
   * The blocking iotlb_sync of a CPU that spins on CMD_SYNC (as an MMU
   * notifier's invalidate_range_start must: the page is freed when it
   * returns): invalidates what `gather` covers (TLBI + ATC_INV + SYNC) with
   * immediate effect, so no IOTLB or ATC entry still translates the range
   * when it returns. Resets `gather`; returns the ns the CPU spent waiting.
   */
  iotlbSyncBlocking(domain: DriverDomain, gather: IotlbGather): number;
  /** Invalidates everything cached for the domain (TLBI by VMID/ASID + SYNC), then calls `done`. */
  flushIotlbAll(domain: DriverDomain, done: () => void): void;
  /**
   * Sends the response for a fault group: CMD_RESUME (stall: SUCCESS ->
   * Retry, otherwise Abort) or CMD_PRI_RESP (PRI: SUCCESS -> Success,
   * INVALID -> Invalid, FAILURE -> Failure).
   */
  pageResponse(
    dev: IommuDevice,
    fault: IommuFault,
    code: PageResponseCode,
  ): void;
  /**
   * Sets (or, with `undefined`, clears) the device's vIOMMU binding, as
   * arm_smmu_attach_commit_vmaster / arm_smmu_master_clear_vmaster do when
   * a device attaches to a nested domain on a vIOMMU (Linux 6.13): from
   * then on the driver hands the device's non-recoverable stage-1 events to
   * `vmaster` (Linux 6.15 vEVENTQ). Drivers without vIOMMU support omit it.
   */
  setVmaster?(dev: IommuDevice, vmaster: IommuVmaster | undefined): void;
}

/**
 * A device's binding to a vIOMMU as the IOMMU driver sees it (struct
 * arm_smmu_vmaster): the virtual StreamID the guest knows the device by,
 * and the entry point that queues one raw event record to user space
 * (iommufd_viommu_report_event).
 */
export interface IommuVmaster {
  /** The virtual StreamID (the vDEVICE's virt_id). */
  readonly vsid: number;
  /**
   * Queues the raw hardware event record `evt` (32-bit words, the virtual
   * StreamID already in place of the physical one). Returns the CPU ns it
   * took the reporting thread, or -1 when the vIOMMU has no event queue of
   * the driver's type (EOPNOTSUPP: the driver logs the event itself).
   */
  reportEvent(evt: Uint32Array): number;
}

/**
 * Where the IOMMU core runs a fault group's handler:
 * - `"evtq-thread"`: synchronously, in the thread that reported the fault
 *   (the SMMU driver's event-queue or PRI-queue thread), which waits for
 *   the handler to return. RFC v3 (Apr 2021): iommu_report_device_fault()
 *   calls the handler VFIO registered with
 *   iommu_register_device_fault_handler() directly; mainline since Linux
 *   6.7 likewise calls the domain's iopf_handler from the reporting thread.
 * - `"workqueue"`: as a work item on the IOPF workqueue (io-pgfault.c's
 *   iopf_queue), the reporting thread going on at once: the path only host
 *   SVA takes (iommu_sva_iopf_handler queues the group); for VFIO a what-if.
 */
export type FaultPath = "evtq-thread" | "workqueue";

/** Every {@linkcode FaultPath}. */
export const FAULT_PATHS: readonly FaultPath[] = ["evtq-thread", "workqueue"];

/**
 * What a driver needs from the IOMMU core: the fault entry point
 * (iommu_report_device_fault) and the notice that the hardware PRI queue
 * overflowed (iopf_queue_discard_partial).
 */
export interface IommuFaultSink {
  /**
   * Reports one recoverable fault of `dev` from the driver's queue thread.
   * Returns true when the core runs the fault's handler in that thread
   * (fault path `"evtq-thread"`): the thread is then held until the
   * handler returns, and `resume` is called at that moment. Any other
   * return (false, or nothing from a sink that never holds the thread)
   * means the caller goes on at once and `resume` is never called.
   */
  reportDeviceFault(
    dev: IommuDevice,
    fault: IommuFault,
    resume?: () => void,
  ): boolean | void;
  /** Discards partial groups after a PRI queue overflow. */
  iopfQueueDiscardPartial(dev?: IommuDevice): void;
}
