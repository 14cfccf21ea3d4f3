/**
 * Resolution of one scenario (without its sweep): the field tables of every
 * section, the resolvers that read them, the inverse
 * ({@linkcode scenarioToJson}) and the list of every field
 * ({@linkcode scenarioFields}), derived from the same tables.
 *
 * @module
 */
import type { FrameOrder } from "../mm/host_memory.ts";
import { loadCostProfile } from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import { QUEUE_MAX_LOG2 } from "../smmu/queue.ts";
import { DEFAULT_STALL_MAX } from "../smmu/smmu.ts";
import { FAULT_PATHS } from "../iommu/types.ts";
import {
  formatSize,
  formatTime,
  PAGE_SIZE,
  SZ_1G,
  SZ_2M,
} from "../sim/units.ts";
import type { TraceSummary } from "../workload/trace_file.ts";
import {
  WORKLOAD_KINDS,
  type WorkloadConfig,
  workloadKind,
  WORKLOADS,
} from "../workload/registry.ts";
import type { JsonValue } from "../sim/json.ts";
import type {
  Backing,
  CoiommuUnpinPolicy,
  DeviceConfig,
  DeviceFault,
  DmaConfig,
  GuestConfig,
  GuestStage1,
  HostConfig,
  Invalidation,
  IommuConfig,
  Scenario,
  SmmuConfig,
  SmmuStage,
  VmConfig,
} from "./config.ts";
import {
  MAX_HOST_MEMORY,
  MAX_PREMAP_PAGES,
  MIN_COIOMMU_UNPIN_INTERVAL,
} from "./config.ts";
import {
  checkIommufd,
  DMA_BACKENDS,
  DMA_DESIGNS,
  DMA_MODES,
  STAGE_DESIGNS,
} from "./designs/mod.ts";
import {
  bandwidth,
  bareMessage,
  bool,
  choice,
  describe,
  fail,
  type FieldSpec,
  type FieldType,
  integer,
  isObject,
  known,
  object,
  positiveTime,
  powerOfTwo,
  size,
} from "../sim/fields.ts";

const BACKINGS: readonly Backing[] = ["4k", "thp", "hugetlb-2m", "hugetlb-1g"];
const FRAME_ORDERS: readonly FrameOrder[] = ["scattered", "ascending"];
const STAGES: readonly SmmuStage[] = ["s1", "s2", "nested"];
const INVALIDATIONS: readonly Invalidation[] = ["strict", "lazy"];
const FAULTS: readonly DeviceFault[] = ["stall", "pri"];
const STAGE1: readonly GuestStage1[] = ["premapped", "on-fault"];
const UNPIN_POLICIES: readonly CoiommuUnpinPolicy[] = ["off", "lru"];

/** The fields of `host`. */
export const HOST_FIELDS = {
  memory: {
    type: "size",
    unit: "bytes",
    default: "512GiB",
    min: SZ_2M,
    max: MAX_HOST_MEMORY,
    doc:
      "Host RAM, at most 16 TiB (a multiple of 2 MiB, the host memory model's block, and of the hugetlb page of host.backing)",
  },
  backing: {
    type: "choice",
    unit: "",
    default: "4k",
    values: BACKINGS,
    doc: "Page backing of guest RAM",
  },
  prefault: {
    type: "boolean",
    unit: "",
    default: false,
    doc:
      "Populate (fault in and zero) guest RAM when the VM starts (QEMU -mem-prealloc)",
  },
  prefaultThreads: {
    type: "integer",
    unit: "",
    default: 1,
    min: 1,
    max: 256,
    doc:
      "Threads that populate guest RAM in parallel when prefaulting (QEMU's prealloc-threads)",
  },
  memlockLimit: {
    type: "size",
    unit: "bytes",
    default: "unlimited",
    min: 0,
    doc: 'RLIMIT_MEMLOCK of the VMM: "unlimited" or a size',
  },
  swap: {
    type: "size",
    unit: "bytes",
    default: "unlimited",
    min: 0,
    doc:
      'Swap space of the host: "unlimited" or a size; once full, reclaim frees no more unpinned guest pages',
  },
  frameOrder: {
    type: "choice",
    unit: "",
    default: "scattered",
    values: FRAME_ORDERS,
    doc:
      'Order of the 4 KiB frames the host hands out: "scattered" (a churned host, never adjacent) or "ascending" (a freshly booted host, physically contiguous runs)',
  },
} as const;

/** The fields of `vm`. */
export const VM_FIELDS = {
  memory: {
    type: "size",
    unit: "bytes",
    default: "16GiB",
    max: MAX_HOST_MEMORY,
    doc: "Guest RAM of each VM, at most host.memory",
  },
  count: {
    type: "integer",
    unit: "",
    default: 1,
    min: 1,
    max: 64,
    doc: "Number of identical VMs sharing the host",
  },
} as const;

/** The fields of `smmu`. */
export const SMMU_FIELDS = {
  stage: {
    type: "choice",
    unit: "",
    default: "s2",
    values: STAGES,
    doc: "Translation stages of the device's stream",
  },
  iotlbEntries: {
    type: "integer",
    unit: "",
    default: 2048,
    min: 1,
    max: 2 ** 20,
    doc: "IOTLB entries",
  },
  iotlbWays: {
    type: "integer",
    unit: "",
    default: 4,
    min: 1,
    max: 64,
    doc: "IOTLB associativity (ways per set; divides smmu.iotlbEntries)",
  },
  evtqEntries: {
    type: "power-of-two",
    unit: "",
    default: 256,
    min: 2,
    max: 2 ** QUEUE_MAX_LOG2,
    doc: "Event queue entries (LOG2SIZE at most 19)",
  },
  priqEntries: {
    type: "power-of-two",
    unit: "",
    default: 256,
    min: 2,
    max: 2 ** QUEUE_MAX_LOG2,
    doc: "PRI queue entries (LOG2SIZE at most 19)",
  },
  invalidation: {
    type: "choice",
    unit: "",
    default: "strict",
    values: INVALIDATIONS,
    doc: "IOTLB invalidation policy on unmap",
  },
  stallMax: {
    type: "integer",
    unit: "",
    default: DEFAULT_STALL_MAX,
    min: 1,
    max: 0xffff,
    doc:
      "SMMU_IDR5.STALL_MAX: most transactions stalled at once; past it a stall-eligible fault is terminated with an abort and recorded with Stall = 0",
  },
  configCacheEntries: {
    type: "integer",
    unit: "",
    default: 64,
    min: 0,
    max: 2 ** 20,
    doc: "Configuration cache entries (STEs and CDs; gem5 cfg_entries)",
  },
  walkCache: {
    type: "boolean",
    unit: "",
    default: true,
    doc: "Per-level table walk caches of gem5's sizes (false: none)",
  },
  xlateSlots: {
    type: "integer",
    unit: "",
    default: 64,
    min: 1,
    max: 4096,
    doc: "TCU translation slots (gem5 xlate_slots)",
  },
  ptwSlots: {
    type: "integer",
    unit: "",
    default: 16,
    min: 1,
    max: 4096,
    doc: "TCU table walkers (gem5 ptw_slots)",
  },
} as const;

/** The fields of `iommu`. */
export const IOMMU_FIELDS = {
  faultPath: {
    type: "choice",
    unit: "",
    default: "evtq-thread",
    values: FAULT_PATHS,
    doc:
      'Where fault handlers run: "evtq-thread" (RFC v3: iommu_report_device_fault calls VFIO\'s handler in the SMMU event/PRI queue thread, which waits for it) or "workqueue" (the IOPF workqueue, as only host SVA uses it: a what-if for VFIO; dma.faultWorkers applies to this path only)',
  },
} as const;

/** The fields of `device`. */
export const DEVICE_FIELDS = {
  fault: {
    type: "choice",
    unit: "",
    default: "stall",
    values: FAULTS,
    doc: "Fault model: stalled transactions or PCIe PRI",
  },
  priCapacity: {
    type: "integer",
    unit: "",
    default: 256,
    min: 1,
    max: 2 ** 20,
    doc: "Outstanding page requests the device may have (PRI capacity)",
  },
  prgPages: {
    type: "integer",
    unit: "pages",
    default: 1,
    min: 1,
    max: 2 ** 20,
    doc:
      "Pages per Page Request Group: the faulting page and the next pages of the same burst (at most the PRI allocation)",
  },
  dmaBandwidth: {
    type: "bandwidth",
    unit: "bytes/s",
    default: "8GB/s",
    doc: "Bandwidth of the device's DMA engine",
  },
  dmaSlots: {
    type: "integer",
    unit: "",
    default: 16,
    min: 1,
    max: 65536,
    doc: "Transfers the device's DMA engine works on at once",
  },
} as const;

/** The fields of `dma`. */
export const DMA_FIELDS = {
  mode: {
    type: "choice",
    unit: "",
    default: "static-pin",
    values: DMA_MODES,
    doc: "DMA mapping mode (a design of lib/experiment/designs)",
  },
  backend: {
    type: "choice",
    unit: "",
    default: "type1",
    values: DMA_BACKENDS,
    doc:
      'VFIO backend: "type1" (the RFC\'s IOPF patches) or "iommufd" (mainline: pinned IOAS, nested fault queue; "iopf" is a what-if)',
  },
  premapPages: {
    type: "integer",
    unit: "pages",
    default: 1,
    min: 1,
    max: MAX_PREMAP_PAGES,
    doc: "4 KiB pages mapped per fault (at most 2^18, VFIO's limit)",
  },
  mmuNotifier: {
    type: "boolean",
    unit: "",
    default: false,
    doc: "Unmap IOPF-mapped pages on MMU notifier invalidations",
  },
  faultWorkers: {
    type: "integer",
    unit: "",
    default: 1,
    min: 1,
    max: 256,
    doc: "IOPF queue worker threads",
  },
  coiommuUnpinPolicy: {
    type: "choice",
    unit: "",
    default: "off",
    values: UNPIN_POLICIES,
    doc: "coIOMMU: when pinned pages are unpinned",
  },
  coiommuUnpinInterval: {
    type: "time",
    unit: "ns",
    default: "60s",
    min: MIN_COIOMMU_UNPIN_INTERVAL,
    doc:
      "coIOMMU: period of the LRU unpin thread, at least 1 ms (a timer-driven kthread: Linux timers have jiffy granularity)",
  },
  coiommuGenerationThreshold: {
    type: "integer",
    unit: "",
    default: 10,
    min: 0,
    max: 2 ** 20,
    doc:
      "coIOMMU: unpin intervals a page must stay busy before it moves to the older generation (0: one generation only)",
  },
} as const;

/** The fields of `guest`. */
export const GUEST_FIELDS = {
  stage1: {
    type: "choice",
    unit: "",
    default: "premapped",
    values: STAGE1,
    doc:
      'How the guest fills its stage-1 tables (only with smmu.stage "nested")',
  },
  touchedMemory: {
    type: "size",
    unit: "bytes",
    default: "50%",
    min: 0,
    doc:
      'Guest RAM the guest\'s CPU has touched when the workload starts (kernel, page cache, applications): a size or a percentage of vm.memory like "50%"',
  },
} as const;

/**
 * `guest.touchedMemory` resolved: a percentage string (kept, so that it
 * follows a swept vm.memory) or bytes, a multiple of 4 KiB, at most
 * `vmMemory`.
 */
function resolveTouched(
  v: unknown,
  vmMemory: number,
): number | `${number}%` {
  const where = "guest.touchedMemory";
  const raw = v === undefined ? GUEST_FIELDS.touchedMemory.default : v;
  if (typeof raw === "string" && raw.trim().endsWith("%")) {
    const t = raw.trim().slice(0, -1).trim();
    const pct = /^[0-9]+(\.[0-9]+)?$/.test(t) ? Number(t) : NaN;
    if (!(pct >= 0 && pct <= 100)) {
      fail(
        where,
        `expected a percentage of vm.memory from 0% to 100%, got ${
          describe(raw)
        }`,
      );
    }
    return `${pct}%`;
  }
  const bytes = size(raw, where, 0, {
    min: 0,
    align: PAGE_SIZE,
    alignWhy: "(4 KiB pages)",
    example: '"4GiB" or "25%"',
  });
  if (bytes > vmMemory) {
    fail(
      where,
      `${formatSize(bytes)} is more than vm.memory (${formatSize(vmMemory)})`,
    );
  }
  return bytes;
}

/**
 * Bytes of guest RAM a VM of `vmMemory` bytes has touched, for a resolved
 * `guest.touchedMemory` (a percentage is rounded down to 4 KiB pages).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { touchedBytes } from "./resolve.ts";
 * assert.equal(touchedBytes("25%", 2 ** 30), 2 ** 28);
 * assert.equal(touchedBytes(8192, 2 ** 30), 8192);
 * ```
 */
export function touchedBytes(
  touched: number | `${number}%`,
  vmMemory: number,
): number {
  if (typeof touched === "number") return Math.min(touched, vmMemory);
  const pct = Number(touched.slice(0, -1));
  return Math.floor((vmMemory * pct) / 100 / PAGE_SIZE) * PAGE_SIZE;
}

/** The sections of a scenario and their fields, in the order errors list them. */
export const SECTIONS = {
  host: HOST_FIELDS,
  vm: VM_FIELDS,
  smmu: SMMU_FIELDS,
  iommu: IOMMU_FIELDS,
  device: DEVICE_FIELDS,
  dma: DMA_FIELDS,
  guest: GUEST_FIELDS,
} as const;

/** The name of a section. */
export type SectionName = keyof typeof SECTIONS;

/** The top-level fields that are not sections. */
export const TOP_LEVEL_FIELDS = {
  name: {
    type: "string",
    unit: "",
    default: "scenario",
    doc:
      "Name, echoed in the metrics (default: the file's name without .json); sweep points append [path=value,...]",
  },
  seed: {
    type: "integer",
    unit: "",
    default: 1,
    min: 0,
    max: 2 ** 32 - 1,
    doc: "Seed of every random choice",
  },
  workload: {
    type: "object",
    unit: "",
    doc: 'What the guest and its device do (default {"kind": "boot"})',
  },
  costs: {
    type: "object",
    unit: "",
    doc: "Cost overrides by parameter name (lib/sim/costs.ts)",
  },
  costSpread: {
    type: "boolean",
    unit: "",
    default: true,
    doc:
      "Draw the costs the profile's spread section lists (interrupt and wakeup latencies) from their seeded distributions, mean unchanged; false: every cost exactly its value",
  },
  check: {
    type: "boolean",
    unit: "",
    default: false,
    doc: "Run the model's invariant checks while simulating (slower)",
  },
  sweep: {
    type: "object",
    unit: "",
    doc:
      "Swept parameters: dotted path to an array of values, first one outermost",
  },
} as const;

const TOP_FIELDS = [
  "name",
  "seed",
  ...Object.keys(SECTIONS),
  "workload",
  "costs",
  "costSpread",
  "check",
  "sweep",
];

/** Every field a `workload` of some kind may have, besides `kind`. */
export function workloadFieldNames(): Set<string> {
  return new Set(
    Object.values(WORKLOADS).flatMap((w) => Object.keys(w.fields)),
  );
}

/** Internal options of one resolution. */
export interface ResolveContext {
  /** Directory that relative paths resolve against. */
  readonly baseDir: string;
  /** Name used when the scenario has none. */
  readonly defaultName: string;
  /** guest.stage1 may be given: the stage is nested here or at some sweep point. */
  readonly stage1Allowed: boolean;
  /** Traces already read, by absolute path. */
  readonly traces: Map<string, TraceSummary>;
}

/** Resolves one scenario without its sweep (the sweep is `[]`). */
export function resolve(
  top: Readonly<Record<string, unknown>>,
  ctx: ResolveContext,
): Scenario {
  known(top, "", TOP_FIELDS);
  const name = top.name === undefined ? ctx.defaultName : top.name;
  if (typeof name !== "string" || name.trim() === "" || name.length > 200) {
    fail(
      "name",
      `expected a non-empty string of at most 200 characters, got ${
        describe(name)
      }`,
    );
  }
  const T = TOP_LEVEL_FIELDS;
  const seed = integer(
    top.seed,
    "seed",
    T.seed.min,
    T.seed.max,
    T.seed.default,
  );
  const host = resolveHost(section(top, "host"));
  const vm = resolveVm(section(top, "vm"), host);
  const smmu = resolveSmmu(section(top, "smmu"));
  const iommu = resolveIommu(section(top, "iommu"));
  const device = resolveDevice(section(top, "device"));
  const group = Math.min(device.prgPages, device.priCapacity);
  if (device.fault === "pri" && group > smmu.priqEntries) {
    // No group could ever be written whole: the SMMU would drop its LAST
    // and answer Success each time, and the device would ask again
    // forever (IHI0070 8.1).
    fail(
      "device.prgPages",
      `groups of ${group} pages cannot fit in smmu.priqEntries (${smmu.priqEntries}): each would be cut by the PRI queue overflow and auto-answered Success, and the device would ask again forever`,
    );
  }
  const dma = resolveDma(section(top, "dma"));
  const guestRaw = section(top, "guest");
  if (
    guestRaw.stage1 !== undefined && smmu.stage !== "nested" &&
    !ctx.stage1Allowed
  ) {
    fail("guest.stage1", 'only applies when smmu.stage is "nested"');
  }
  const G = GUEST_FIELDS;
  const guest: GuestConfig = {
    stage1: choice(
      guestRaw.stage1,
      "guest.stage1",
      G.stage1.values,
      G.stage1.default,
    ),
    touchedMemory: resolveTouched(guestRaw.touchedMemory, vm.memory),
  };
  const workload = resolveWorkload(top.workload, vm, ctx);
  const costs = resolveCosts(top.costs);
  const costSpread = bool(
    top.costSpread,
    "costSpread",
    T.costSpread.default,
  );
  const check = bool(top.check, "check", T.check.default);
  const scenario: Scenario = {
    name,
    seed,
    host,
    vm,
    smmu,
    iommu,
    device,
    dma,
    guest,
    workload,
    costs,
    costSpread,
    check,
    sweep: [],
  };
  checkDesigns(scenario);
  return scenario;
}

function section(
  top: Readonly<Record<string, unknown>>,
  name: SectionName,
): Record<string, unknown> {
  const raw = top[name];
  if (raw === undefined) return {};
  const o = object(raw, name);
  known(o, name, Object.keys(SECTIONS[name]));
  return o;
}

function hugePage(backing: Backing): number {
  return backing === "hugetlb-2m"
    ? SZ_2M
    : backing === "hugetlb-1g"
    ? SZ_1G
    : PAGE_SIZE;
}

function resolveHost(o: Record<string, unknown>): HostConfig {
  const F = HOST_FIELDS;
  const backing = choice(
    o.backing,
    "host.backing",
    F.backing.values,
    F.backing.default,
  );
  const huge = hugePage(backing);
  const memory = size(o.memory, "host.memory", F.memory.default, {
    max: F.memory.max,
    align: Math.max(huge, SZ_2M),
    alignWhy: huge > SZ_2M
      ? `with host.backing "${backing}"`
      : "(the host memory model allocates RAM in 2 MiB blocks)",
  });
  const prefault = bool(o.prefault, "host.prefault", F.prefault.default);
  const prefaultThreads = integer(
    o.prefaultThreads,
    "host.prefaultThreads",
    F.prefaultThreads.min,
    F.prefaultThreads.max,
    F.prefaultThreads.default,
  );
  const memlockLimit =
    o.memlockLimit === undefined || o.memlockLimit === F.memlockLimit.default
      ? Infinity
      : size(o.memlockLimit, "host.memlockLimit", 0, {
        min: F.memlockLimit.min,
        example: '"unlimited" or a size like "64GiB"',
      });
  const swap = o.swap === undefined || o.swap === F.swap.default
    ? Infinity
    : size(o.swap, "host.swap", 0, {
      min: F.swap.min,
      example: '"unlimited" or a size like "8GiB"',
    });
  const frameOrder = choice(
    o.frameOrder,
    "host.frameOrder",
    F.frameOrder.values,
    F.frameOrder.default,
  );
  return {
    memory,
    backing,
    prefault,
    prefaultThreads,
    memlockLimit,
    swap,
    frameOrder,
  };
}

function resolveVm(o: Record<string, unknown>, host: HostConfig): VmConfig {
  const F = VM_FIELDS;
  const page = hugePage(host.backing);
  const memory = size(o.memory, "vm.memory", F.memory.default, {
    max: F.memory.max,
    align: page,
    alignWhy: host.backing.startsWith("hugetlb")
      ? `with host.backing "${host.backing}"`
      : "(4 KiB pages)",
  });
  const count = integer(
    o.count,
    "vm.count",
    F.count.min,
    F.count.max,
    F.count.default,
  );
  // Several VMs may overcommit the host (count × memory > host.memory): the
  // run reports the VMs that could not start. One VM larger than the host
  // is refused: not even its own RAM could be backed.
  if (memory > host.memory) {
    fail(
      "vm.memory",
      `${formatSize(memory)} exceeds host.memory (${formatSize(host.memory)})`,
    );
  }
  return { memory, count };
}

function resolveSmmu(o: Record<string, unknown>): SmmuConfig {
  const F = SMMU_FIELDS;
  const stage = choice(o.stage, "smmu.stage", F.stage.values, F.stage.default);
  const iotlbEntries = integer(
    o.iotlbEntries,
    "smmu.iotlbEntries",
    F.iotlbEntries.min,
    F.iotlbEntries.max,
    F.iotlbEntries.default,
  );
  const iotlbWays = integer(
    o.iotlbWays,
    "smmu.iotlbWays",
    F.iotlbWays.min,
    F.iotlbWays.max,
    F.iotlbWays.default,
  );
  if (iotlbEntries % iotlbWays !== 0) {
    fail(
      "smmu.iotlbWays",
      `${iotlbWays} ways must divide smmu.iotlbEntries (${iotlbEntries})`,
    );
  }
  const evtqEntries = powerOfTwo(
    o.evtqEntries,
    "smmu.evtqEntries",
    F.evtqEntries.min,
    F.evtqEntries.max,
    F.evtqEntries.default,
  );
  const priqEntries = powerOfTwo(
    o.priqEntries,
    "smmu.priqEntries",
    F.priqEntries.min,
    F.priqEntries.max,
    F.priqEntries.default,
  );
  const invalidation = choice(
    o.invalidation,
    "smmu.invalidation",
    F.invalidation.values,
    F.invalidation.default,
  );
  const stallMax = integer(
    o.stallMax,
    "smmu.stallMax",
    F.stallMax.min,
    F.stallMax.max,
    F.stallMax.default,
  );
  return {
    stage,
    iotlbEntries,
    iotlbWays,
    evtqEntries,
    priqEntries,
    invalidation,
    stallMax,
    configCacheEntries: integer(
      o.configCacheEntries,
      "smmu.configCacheEntries",
      F.configCacheEntries.min,
      F.configCacheEntries.max,
      F.configCacheEntries.default,
    ),
    walkCache: bool(o.walkCache, "smmu.walkCache", F.walkCache.default),
    xlateSlots: integer(
      o.xlateSlots,
      "smmu.xlateSlots",
      F.xlateSlots.min,
      F.xlateSlots.max,
      F.xlateSlots.default,
    ),
    ptwSlots: integer(
      o.ptwSlots,
      "smmu.ptwSlots",
      F.ptwSlots.min,
      F.ptwSlots.max,
      F.ptwSlots.default,
    ),
  };
}

function resolveIommu(o: Record<string, unknown>): IommuConfig {
  const F = IOMMU_FIELDS;
  return {
    faultPath: choice(
      o.faultPath,
      "iommu.faultPath",
      F.faultPath.values,
      F.faultPath.default,
    ),
  };
}

function resolveDevice(o: Record<string, unknown>): DeviceConfig {
  const F = DEVICE_FIELDS;
  return {
    fault: choice(o.fault, "device.fault", F.fault.values, F.fault.default),
    priCapacity: integer(
      o.priCapacity,
      "device.priCapacity",
      F.priCapacity.min,
      F.priCapacity.max,
      F.priCapacity.default,
    ),
    prgPages: integer(
      o.prgPages,
      "device.prgPages",
      F.prgPages.min,
      F.prgPages.max,
      F.prgPages.default,
    ),
    dmaBandwidth: bandwidth(
      o.dmaBandwidth,
      "device.dmaBandwidth",
      F.dmaBandwidth.default,
    ),
    dmaSlots: integer(
      o.dmaSlots,
      "device.dmaSlots",
      F.dmaSlots.min,
      F.dmaSlots.max,
      F.dmaSlots.default,
    ),
  };
}

function resolveDma(o: Record<string, unknown>): DmaConfig {
  const F = DMA_FIELDS;
  return {
    mode: choice(o.mode, "dma.mode", F.mode.values, F.mode.default),
    backend: choice(
      o.backend,
      "dma.backend",
      F.backend.values,
      F.backend.default,
    ),
    premapPages: integer(
      o.premapPages,
      "dma.premapPages",
      F.premapPages.min,
      F.premapPages.max,
      F.premapPages.default,
    ),
    mmuNotifier: bool(o.mmuNotifier, "dma.mmuNotifier", F.mmuNotifier.default),
    faultWorkers: integer(
      o.faultWorkers,
      "dma.faultWorkers",
      F.faultWorkers.min,
      F.faultWorkers.max,
      F.faultWorkers.default,
    ),
    coiommuUnpinPolicy: choice(
      o.coiommuUnpinPolicy,
      "dma.coiommuUnpinPolicy",
      F.coiommuUnpinPolicy.values,
      F.coiommuUnpinPolicy.default,
    ),
    coiommuUnpinInterval: unpinInterval(o.coiommuUnpinInterval),
    coiommuGenerationThreshold: integer(
      o.coiommuGenerationThreshold,
      "dma.coiommuGenerationThreshold",
      F.coiommuGenerationThreshold.min,
      F.coiommuGenerationThreshold.max,
      F.coiommuGenerationThreshold.default,
    ),
  };
}

function unpinInterval(v: unknown): number {
  const F = DMA_FIELDS.coiommuUnpinInterval;
  const where = "dma.coiommuUnpinInterval";
  const n = positiveTime(v, where, F.default);
  if (n < F.min) {
    fail(
      where,
      `${n < 1 ? `${n} ns` : formatTime(n)} is shorter than ${
        formatTime(F.min)
      }: the unpin thread is a timer-driven kthread, and Linux timers have jiffy granularity (1-10 ms at HZ 1000-100)`,
    );
  }
  return n;
}

/**
 * Refuses a combination of designs the model does not run (EINVAL naming
 * the fields): each chosen design's `check` hook (lib/experiment/designs),
 * the same the machine runs at VM start.
 */
function checkDesigns(s: Scenario): void {
  if (s.dma.backend === "iommufd") {
    checkIommufd(s);
    return;
  }
  DMA_DESIGNS[s.dma.mode].check?.(s);
  const stage = STAGE_DESIGNS[s.smmu.stage];
  if (stage?.check === undefined) return;
  try {
    stage.check(s);
  } catch (e) {
    if (!(e instanceof IopfLabError)) throw e;
    // Name both fields: the stage design refuses the mode beneath it.
    const where = e.where ?? "smmu.stage";
    const msg = bareMessage(e);
    const rest = msg.startsWith(`${where}: `)
      ? msg.slice(where.length + 2)
      : msg;
    fail(where, `${rest} (with smmu.stage "${s.smmu.stage}")`);
  }
}

function resolveWorkload(
  raw: unknown,
  vm: VmConfig,
  ctx: ResolveContext,
): WorkloadConfig {
  if (raw === undefined) return { kind: "boot" };
  const o = object(raw, "workload");
  if (o.kind === undefined) {
    fail(
      "workload.kind",
      `required: one of ${
        WORKLOAD_KINDS.map((k) => JSON.stringify(k)).join(", ")
      }`,
    );
  }
  const kind = choice(o.kind, "workload.kind", WORKLOAD_KINDS, "boot");
  const spec = workloadKind(kind);
  const fields = Object.keys(spec.fields);
  for (const key of Object.keys(o)) {
    if (key !== "kind" && !fields.includes(key)) {
      const list = fields.length
        ? `known: kind, ${fields.join(", ")}`
        : "it has no other fields";
      fail(`workload.${key}`, `unknown field for kind "${kind}" (${list})`);
    }
  }
  return spec.resolve(o, {
    vmMemory: vm.memory,
    baseDir: ctx.baseDir,
    traces: ctx.traces,
  });
}

function resolveCosts(raw: unknown): Readonly<Record<string, number>> {
  if (raw === undefined) return Object.freeze({});
  const o = object(raw, "costs");
  loadCostProfile(o, "costs"); // validates names and values
  return Object.freeze({ ...o }) as Record<string, number>;
}

/** Options of {@linkcode scenarioToJson}. */
export interface ScenarioToJsonOptions {
  /** Include `guest` even when the stage is not nested. [false] */
  readonly guest?: boolean;
}

/**
 * A resolved scenario as scenario-file JSON (sizes in bytes, times in ns,
 * bandwidths in bytes/s, the trace file as an absolute path): parsing it
 * again gives an equal scenario.
 */
export function scenarioToJson(
  scenario: Scenario,
  options: ScenarioToJsonOptions = {},
): { [key: string]: JsonValue } {
  const s = scenario;
  const spec = workloadKind(s.workload.kind);
  const workload: { [key: string]: JsonValue } = spec.toJson
    ? { ...spec.toJson(s.workload) }
    : { ...s.workload } as { [key: string]: JsonValue };
  const out: { [key: string]: JsonValue } = {
    name: s.name,
    seed: s.seed,
    host: {
      ...s.host,
      memlockLimit: s.host.memlockLimit === Infinity
        ? "unlimited"
        : s.host.memlockLimit,
      swap: s.host.swap === Infinity ? "unlimited" : s.host.swap,
    },
    vm: { ...s.vm },
    smmu: { ...s.smmu },
    iommu: { ...s.iommu },
    device: { ...s.device },
    dma: { ...s.dma },
    workload,
    costs: { ...s.costs },
    costSpread: s.costSpread,
    check: s.check,
  };
  const nestedSwept = s.sweep.some(([p, vs]) =>
    p === "smmu.stage" && vs.includes("nested")
  );
  out.guest = options.guest || s.smmu.stage === "nested" || nestedSwept
    ? { ...s.guest }
    : { touchedMemory: s.guest.touchedMemory };
  if (s.sweep.length > 0) {
    out.sweep = Object.fromEntries(s.sweep.map(([p, vs]) => [p, [...vs]]));
  }
  return out;
}

/** One field of the scenario file, as {@linkcode scenarioFields} lists it. */
export interface ScenarioField {
  /** Dotted path: `vm.memory`, `workload.messageSize`. */
  readonly path: string;
  /** For a workload field: the kind it belongs to. */
  readonly kind?: string;
  /** The value type. */
  readonly type: FieldType;
  /** The unit of a number ("bytes", "ns", "bytes/s", "pages"; "" for a plain count). */
  readonly unit: string;
  /** The default as a scenario file writes it (absent: required or none). */
  readonly default?: string | number | boolean;
  /** The allowed values of a choice. */
  readonly values?: readonly string[];
  /** Smallest allowed value. */
  readonly min?: number;
  /** Largest allowed value. */
  readonly max?: number;
  /** What the field means. */
  readonly doc: string;
}

function row(path: string, spec: FieldSpec, kind?: string): ScenarioField {
  return {
    path,
    ...(kind === undefined ? {} : { kind }),
    type: spec.type,
    unit: spec.unit,
    ...(spec.default === undefined ? {} : { default: spec.default }),
    ...(spec.values === undefined ? {} : { values: [...spec.values] }),
    ...(spec.min === undefined ? {} : { min: spec.min }),
    ...(spec.max === undefined ? {} : { max: spec.max }),
    doc: spec.doc,
  };
}

/**
 * Every field of a scenario file, in the order of the file (top-level
 * fields, each section's fields, then `workload.kind` and each kind's
 * fields), with its unit, default and allowed values: read from the tables
 * the parser itself uses, so documentation can be checked against it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scenarioFields } from "./resolve.ts";
 * const memory = scenarioFields().find((f) => f.path === "vm.memory")!;
 * assert.equal(memory.default, "16GiB");
 * assert.equal(memory.unit, "bytes");
 * ```
 */
export function scenarioFields(): ScenarioField[] {
  const out: ScenarioField[] = [];
  const T = TOP_LEVEL_FIELDS;
  out.push(row("name", T.name), row("seed", T.seed));
  for (const [name, table] of Object.entries(SECTIONS)) {
    for (const [field, spec] of Object.entries(table)) {
      out.push(row(`${name}.${field}`, spec));
    }
  }
  out.push(row("workload", T.workload));
  out.push(row("workload.kind", {
    type: "choice",
    unit: "",
    values: WORKLOAD_KINDS,
    doc: "The workload kind (required when workload is given)",
  }));
  for (const spec of Object.values(WORKLOADS)) {
    for (const [field, f] of Object.entries(spec.fields)) {
      out.push(row(`workload.${field}`, f, spec.kind));
    }
  }
  out.push(
    row("costs", T.costs),
    row("costSpread", T.costSpread),
    row("check", T.check),
    row("sweep", T.sweep),
  );
  return out;
}

const RESOLVED_HINT = "resolve the scenario's JSON with parseScenario first";

/**
 * Checks one resolved value against its field's spec: a choice among its
 * values, a boolean, or a number in the field's range (sizes, times and
 * bandwidths non-negative and finite; `infinite` allows Infinity).
 */
function checkResolvedField(
  v: unknown,
  where: string,
  spec: FieldSpec,
  infinite = false,
): void {
  const bad = (what: string): never =>
    fail(where, `expected ${what}, got ${describe(v)} (${RESOLVED_HINT})`);
  switch (spec.type) {
    case "choice":
      if (typeof v !== "string" || !spec.values?.includes(v)) {
        bad(`one of ${spec.values?.map((c) => JSON.stringify(c)).join(", ")}`);
      }
      return;
    case "boolean":
      if (typeof v !== "boolean") bad("true or false");
      return;
    case "string":
    case "path":
      if (typeof v !== "string") bad("a string");
      return;
    case "object":
      if (!isObject(v)) bad("an object");
      return;
    case "integer":
    case "power-of-two": {
      const min = spec.min ?? 0;
      const max = spec.max ?? Number.MAX_SAFE_INTEGER;
      if (
        typeof v !== "number" || !Number.isInteger(v) || v < min || v > max
      ) bad(`a whole number from ${min} to ${max}`);
      const n = v as number;
      if (spec.type === "power-of-two" && (n & (n - 1)) !== 0) {
        bad(`a power of two from ${min} to ${max}`);
      }
      return;
    }
    case "fraction":
      if (typeof v !== "number" || !(v >= 0 && v <= 1)) {
        bad("a number from 0 to 1");
      }
      return;
    default: {
      // size, time, bandwidth: a number in the unit of the field.
      const ok = typeof v === "number" && v >= 0 &&
        (Number.isFinite(v) || (infinite && v === Infinity));
      if (!ok) bad(`a number of ${spec.unit || "units"} (resolved)`);
    }
  }
}

/**
 * Checks a workload config as a resolver returns it (the `kind` and every
 * field of the kind's table, in resolved form); EINVAL naming `where`.
 */
export function checkWorkloadConfig(
  v: unknown,
  where: string,
): asserts v is WorkloadConfig {
  const o = object(v, where);
  if (
    typeof o.kind !== "string" ||
    !(WORKLOAD_KINDS as readonly string[]).includes(o.kind)
  ) {
    const list = WORKLOAD_KINDS.map((k) => JSON.stringify(k)).join(", ");
    fail(`${where}.kind`, `expected one of ${list}, got ${describe(o.kind)}`);
  }
  const spec = workloadKind(o.kind as WorkloadConfig["kind"]);
  for (const [field, f] of Object.entries(spec.fields)) {
    checkResolvedField(o[field], `${where}.${field}`, f);
  }
}

/**
 * Checks that `v` is a resolved {@linkcode Scenario} (what
 * {@linkcode resolve}, parseScenario and expandSweep return): an object with
 * every section and field in resolved form (numbers in bytes and ns, not
 * "4GiB"). The library's entry points call it on their arguments, so a
 * malformed one is EINVAL naming the argument and field (`scenario.vm.memory:
 * ...`), never a TypeError later.
 */
export function checkResolvedScenario(
  v: unknown,
  where = "scenario",
): asserts v is Scenario {
  if (typeof v === "string") {
    fail(
      where,
      `expected a resolved scenario object, got a string; ${RESOLVED_HINT} (and JSON text with JSON.parse before it)`,
    );
  }
  if (!isObject(v)) {
    fail(
      where,
      `expected a resolved scenario object, got ${
        describe(v)
      }; ${RESOLVED_HINT}`,
    );
  }
  const T = TOP_LEVEL_FIELDS;
  const name = v.name;
  if (typeof name !== "string" || name === "") {
    fail(
      `${where}.name`,
      `expected a non-empty string, got ${describe(name)} (${RESOLVED_HINT})`,
    );
  }
  checkResolvedField(v.seed, `${where}.seed`, T.seed);
  for (const [section, table] of Object.entries(SECTIONS)) {
    const o = v[section];
    if (!isObject(o)) {
      fail(
        `${where}.${section}`,
        `expected an object, got ${describe(o)} (${RESOLVED_HINT})`,
      );
    }
    for (const [field, spec] of Object.entries(table)) {
      const f = o[field];
      if (
        section === "guest" && field === "touchedMemory" &&
        typeof f === "string" && /^[0-9.]+%$/.test(f) &&
        Number(f.slice(0, -1)) >= 0 && Number(f.slice(0, -1)) <= 100
      ) continue; // a percentage of vm.memory
      checkResolvedField(
        o[field],
        `${where}.${section}.${field}`,
        spec,
        section === "host" &&
          (field === "memlockLimit" || field === "swap"),
      );
    }
  }
  checkWorkloadConfig(v.workload, `${where}.workload`);
  loadCostProfile(object(v.costs, `${where}.costs`), `${where}.costs`);
  checkResolvedField(v.costSpread, `${where}.costSpread`, T.costSpread);
  checkResolvedField(v.check, `${where}.check`, T.check);
  if (!Array.isArray(v.sweep)) {
    fail(
      `${where}.sweep`,
      `expected an array of sweep axes, got ${
        describe(v.sweep)
      } (${RESOLVED_HINT})`,
    );
  }
  if (v.sweepPoint !== undefined) object(v.sweepPoint, `${where}.sweepPoint`);
  checkDesigns(v as unknown as Scenario);
}
