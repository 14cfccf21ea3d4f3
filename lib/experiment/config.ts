/**
 * The resolved scenario's types: every section of a scenario file with its
 * defaults filled in, sizes in bytes, times in ns and bandwidths in bytes
 * per second. The workload kinds' configs live with their kinds
 * (lib/workload); the DMA modes are the designs' names
 * (lib/experiment/designs).
 *
 * @module
 */
import { type FrameOrder, MAX_PHYS } from "../mm/host_memory.ts";
import type { WorkloadConfig } from "../workload/registry.ts";
import type { JsonValue } from "../sim/json.ts";
import type { DMA_BACKENDS, DMA_DESIGNS } from "./designs/mod.ts";
import type { FaultPath } from "../iommu/types.ts";

export type { JsonValue } from "../sim/json.ts";
export type { FaultPath } from "../iommu/types.ts";
export type { WorkloadConfig, WorkloadKind } from "../workload/registry.ts";
export type { AcceleratorConfig } from "../workload/accelerator.ts";
export type { BootConfig } from "../workload/boot.ts";
export type { Distribution, RandomConfig } from "../workload/random.ts";
export type { NicRxConfig } from "../workload/nic_rx.ts";
export type { StorageConfig } from "../workload/storage.ts";
export type { TraceConfig } from "../workload/trace.ts";
export { MAX_COUNT } from "../workload/limits.ts";

/** Host page backing of guest RAM (the mm's VMA backing). */
export type { Backing } from "../mm/types.ts";
import type { Backing } from "../mm/types.ts";
/** Which SMMU translation stages the device's stream uses. */
export type SmmuStage = "s1" | "s2" | "nested";
/** IOTLB invalidation policy of the IOMMU core on unmap. */
export type Invalidation = "strict" | "lazy";
/** How the device reports translation faults: stalled transactions or PCIe PRI. */
export type DeviceFault = "stall" | "pri";
/**
 * How guest RAM is made DMA-able: pinned and mapped at start (`static-pin`),
 * mapped on I/O page faults (`iopf`), pinned on the guest's vIOMMU map
 * (`viommu-pin`), or pinned when a coIOMMU tracking table marks it
 * (`coiommu`): the designs of lib/experiment/designs.
 */
export type DmaMode = keyof typeof DMA_DESIGNS;

/** The VFIO backend: type1 (with the 2021 RFC's IOPF) or iommufd. */
export type DmaBackend = typeof DMA_BACKENDS[number];
/**
 * When the coIOMMU backend unpins pages: never (`off`, the default of
 * crosvm's backend) or by its LRU unpin thread (`lru`).
 */
export type CoiommuUnpinPolicy = "off" | "lru";
/** How the guest fills its stage-1 tables in nested mode. */
export type GuestStage1 = "premapped" | "on-fault";

/** The host machine. */
export interface HostConfig {
  /** Host RAM in bytes (a multiple of 2 MiB and of the hugetlb page, at most 16 TiB). ["512GiB"] */
  readonly memory: number;
  /** Page backing of guest RAM. ["4k"] */
  readonly backing: Backing;
  /** Populate (fault in and zero) guest RAM when the VM starts (QEMU -mem-prealloc). [false] */
  readonly prefault: boolean;
  /**
   * Threads that populate guest RAM in parallel when prefaulting (QEMU's
   * prealloc-threads), 1..256: one slice of guest RAM each, faulted on its
   * own core and zeroed through the host's shared memory bandwidth
   * (`mm.zeroPer4k` per core, `mm.memBandwidthPer4k` for the host). [1]
   */
  readonly prefaultThreads: number;
  /** RLIMIT_MEMLOCK of the VMM in bytes; `Infinity` for "unlimited". ["unlimited"] */
  readonly memlockLimit: number;
  /**
   * Swap space of the host in bytes; `Infinity` for "unlimited". Reclaim
   * swaps out unpinned guest pages until it is full; then a fault, pin or
   * guest touch that needs memory fails with ENOMEM. ["unlimited"]
   */
  readonly swap: number;
  /**
   * Order of the 4 KiB frames the host hands out within a 2 MiB block:
   * "scattered" (a host whose free lists uptime has churned: consecutive
   * allocations are never adjacent, so VFIO maps 4 KiB-backed guest RAM
   * page by page) or "ascending" (a freshly booted host: the buddy
   * allocator's address order, so populated 4 KiB-backed RAM is physically
   * contiguous and VFIO maps it in long runs). ["scattered"]
   */
  readonly frameOrder: FrameOrder;
}

/**
 * The guest(s). The VMs together may be given more RAM than the host has
 * (overcommit: what IOPF and the buffer-tracking modes are for; a VM whose
 * RAM cannot be pinned then fails to start, reported in the metrics), but
 * one VM may not be larger than the host.
 */
export interface VmConfig {
  /** Guest RAM of each VM in bytes, at most host.memory. ["16GiB"] */
  readonly memory: number;
  /** Number of identical VMs sharing the host, 1..64. [1] */
  readonly count: number;
}

/** The SMMU (hardware and driver settings). */
export interface SmmuConfig {
  /** Translation stages of the device's stream. ["s2"] */
  readonly stage: SmmuStage;
  /** IOTLB entries. [2048] */
  readonly iotlbEntries: number;
  /** IOTLB associativity (ways per set; divides iotlbEntries). [4] */
  readonly iotlbWays: number;
  /** Event queue entries (a power of two, 2..2^19). [256] */
  readonly evtqEntries: number;
  /** PRI queue entries (a power of two, 2..2^19). [256] */
  readonly priqEntries: number;
  /** Invalidation policy on unmap. ["strict"] */
  readonly invalidation: Invalidation;
  /** SMMU_IDR5.STALL_MAX: most transactions stalled at once (1..65535). [64] */
  readonly stallMax: number;
  /** Configuration cache entries (STEs and CDs). [64] */
  readonly configCacheEntries: number;
  /** Per-level table walk caches of gem5's sizes. [true] */
  readonly walkCache: boolean;
  /** TCU translation slots (1..4096). [64] */
  readonly xlateSlots: number;
  /** TCU table walkers (1..4096). [16] */
  readonly ptwSlots: number;
}

/** The IOMMU core's settings. */
export interface IommuConfig {
  /**
   * Where fault handlers run: in the SMMU driver's event/PRI queue thread
   * (RFC v3) or on the IOPF workqueue (host SVA's path; a what-if for
   * VFIO). ["evtq-thread"]
   */
  readonly faultPath: FaultPath;
}

/** The assigned PCIe device. */
export interface DeviceConfig {
  /** Fault model. ["stall"] */
  readonly fault: DeviceFault;
  /** Outstanding page requests the device may have (PRI capacity). [256] */
  readonly priCapacity: number;
  /** Pages per Page Request Group (the faulting page and the next ones of its burst; 1..2^20). [1] */
  readonly prgPages: number;
  /** Bandwidth of the device's DMA engine in bytes per second. ["8GB/s"] */
  readonly dmaBandwidth: number;
  /** Transfers the device's DMA engine works on at once (1..65536). [16] */
  readonly dmaSlots: number;
}

/** How VFIO makes guest RAM available for DMA. */
export interface DmaConfig {
  /** DMA mapping mode. ["static-pin"] */
  readonly mode: DmaMode;
  /** The VFIO backend. ["type1"] */
  readonly backend: DmaBackend;
  /** 4 KiB pages mapped per fault (1..2^18, VFIO's limit). [1] */
  readonly premapPages: number;
  /** Unmap IOPF-mapped pages on MMU notifier invalidations. [false] */
  readonly mmuNotifier: boolean;
  /** IOPF queue worker threads (1..256). [1] */
  readonly faultWorkers: number;
  /** coIOMMU: when pinned pages are unpinned. ["off"] */
  readonly coiommuUnpinPolicy: CoiommuUnpinPolicy;
  /** coIOMMU: period of the LRU unpin thread in ns (1 ms..2^53 ns: a timer of jiffy granularity). ["60s"] */
  readonly coiommuUnpinInterval: number;
  /**
   * coIOMMU: unpin intervals a page must stay busy before it moves to the
   * older generation, scanned once every this many intervals (0: one
   * generation only), 0..2^20. [10]
   */
  readonly coiommuGenerationThreshold: number;
}

/** The guest's own IOMMU use (nested mode only). */
export interface GuestConfig {
  /** How the guest fills its stage-1 tables (nested mode only). ["premapped"] */
  readonly stage1: GuestStage1;
  /**
   * Guest RAM the guest's CPU has touched by the time the workload starts
   * (its kernel, page cache, applications), from the bottom of RAM: bytes
   * (a multiple of 4 KiB, at most vm.memory) or a percentage of vm.memory
   * such as "50%". Populated on the host at VM start (not pinned). ["50%"]
   */
  readonly touchedMemory: number | `${number}%`;
}

/** One swept parameter: its dotted path and the values it takes, as written. */
export type SweepAxis = readonly [path: string, values: readonly JsonValue[]];

/** A fully resolved scenario: every default filled, sizes in bytes, times in ns. */
export interface Scenario {
  /** Name, echoed in the metrics; sweep points append `[path=value,...]`. ["scenario"] */
  readonly name: string;
  /** Seed of every random choice (0..2^32-1). [1] */
  readonly seed: number;
  /** The host. */
  readonly host: HostConfig;
  /** The guest(s). */
  readonly vm: VmConfig;
  /** The SMMU. */
  readonly smmu: SmmuConfig;
  /** The IOMMU core. */
  readonly iommu: IommuConfig;
  /** The device. */
  readonly device: DeviceConfig;
  /** VFIO's DMA mapping. */
  readonly dma: DmaConfig;
  /** The guest: its use of its own RAM, its stage 1 (nested mode only). */
  readonly guest: GuestConfig;
  /** The workload. ({"kind": "boot"}) */
  readonly workload: WorkloadConfig;
  /** Cost overrides by parameter name (lib/sim/costs.ts). [{}] */
  readonly costs: Readonly<Record<string, number>>;
  /** Draw the profile's spread costs from their seeded distributions (lib/sim/spread.ts); false: every cost exactly its value. [true] */
  readonly costSpread: boolean;
  /** Run the model's invariant checks while simulating (slower). [false] */
  readonly check: boolean;
  /** Swept parameters, first one outermost; empty for a single run. */
  readonly sweep: readonly SweepAxis[];
  /** On a sweep point: the swept values, by path, in sweep order. */
  readonly sweepPoint?: Readonly<Record<string, JsonValue>>;
}

/** Options of {@linkcode parseScenario}. */
export interface ParseScenarioOptions {
  /** Directory that relative paths (the trace file) resolve against. [Deno.cwd()] */
  readonly baseDir?: string;
  /** Name used when the scenario has none. ["scenario"] */
  readonly defaultName?: string;
}

/** Most points a sweep may have. */
export const MAX_SWEEP_POINTS = 10_000;
/**
 * Largest host memory the model accepts: 16 TiB, the host memory model's
 * limit (`MAX_PHYS` of lib/mm/host_memory.ts: PFNs fit in 32 bits).
 */
export const MAX_HOST_MEMORY: number = MAX_PHYS;
/**
 * Most 4 KiB pages VFIO maps per fault (`dma.premapPages`): 2^18, the
 * limit of the VFIO container (lib/vfio/container.ts).
 */
export const MAX_PREMAP_PAGES = 2 ** 18;
/**
 * Shortest coIOMMU unpin interval (`dma.coiommuUnpinInterval`): 1 ms. The
 * unpin thread is a timer-driven kthread, and Linux timers have jiffy
 * granularity (1-10 ms at HZ 1000-100): a shorter period cannot be set up
 * in the real backend, and in the model it would only schedule scans far
 * faster than they can do any work.
 */
export const MIN_COIOMMU_UNPIN_INTERVAL = 1e6;
