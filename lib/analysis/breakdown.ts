/**
 * Where the microseconds of an I/O page fault go: the hops a fault takes
 * through the modelled stack, each priced with the cost profile's
 * parameters, scaled by how often the run took it, and closed by a
 * "queueing / other" remainder so that the parts always add up to the
 * MEASURED mean fault latency of the run. The breakdown never shows a total
 * the simulation did not produce.
 *
 * The hop lists follow the code paths of the model (and of Linux):
 *
 * - stall: SMMU event record -> IRQ -> arm_smmu_evtq_thread ->
 *   iommu_report_device_fault -> IOPF workqueue -> handler -> CMD_RESUME
 *   (Retry) -> the SMMU retries the translation (a table walk).
 * - PRI: ATS "no access" -> Page Request message -> IRQ -> arm_smmu_priq_thread
 *   -> IOPF workqueue -> handler -> CMD_PRI_RESP -> PRG Response message ->
 *   the device retries the ATS translation (round trip plus walk).
 * - stage-2 handler (VFIO type1): lookup and bitmap, fault in and zero the
 *   host page, pin, iommu_map, page response.
 * - stage-1 forwarding (nested): VFIO fault region record, eventfd, the VMM
 *   injects a vSMMU event, the guest's IRQ and fault handler, its response
 *   (a trap to the VMM) and the VMM's response write to VFIO.
 * - With `dma.backend: "iommufd"`: stage-1 forwarding goes through the
 *   iommufd fault queue (iommufd_fault_iopf_handler, the poll wakeup, read()
 *   of the 40-byte record, the write() of the response), and the stage-2
 *   handler is the what-if's in-kernel handler of a fault-mapped IOAS.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadCostProfile } from "../sim/costs.ts";
 * import { pricedBreakdown } from "./breakdown.ts";
 * const parts = pricedBreakdown({
 *   costs: loadCostProfile(),
 *   fault: "stall",
 *   measuredMeanNs: 10_702,
 *   stage1FaultsPerAccess: 0,
 *   stage2FaultsPerAccess: 1,
 *   walkReadsPerTranslation: 4,
 *   accessBytes: 4096,
 *   dmaBandwidth: 8e9,
 * });
 * const sum = parts.reduce((a, p) => a + p.ns, 0);
 * assert(Math.abs(sum - 10_702) < 1e-6);
 * ```
 *
 * @module
 */
import type { FaultPath } from "../iommu/types.ts";
import type { Metrics } from "../experiment/metrics.ts";
import type { Scenario } from "../experiment/scenario.ts";
import type { CostName, Costs } from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import { PAGE_SIZE } from "../sim/units.ts";

/** The stack segments of the breakdown (one color each in the figure), in path order. */
export const BREAKDOWN_SEGMENTS = [
  "fault delivery (SMMU/PCIe, IRQ, queue thread)",
  "IOMMU core IOPF queue",
  "nested: forwarded to the guest and back",
  "VFIO type1 handler",
  "iommufd IOPF handler (what-if)",
  "mm: fault in, zero, pin",
  "IOMMU map",
  "response and retried translation",
  "device access",
  "queueing / other",
] as const;

/** One of {@linkcode BREAKDOWN_SEGMENTS}. */
export type BreakdownSegment = typeof BREAKDOWN_SEGMENTS[number];

/** The remainder segment: measured mean minus the sum of the priced hops. */
export const REMAINDER: BreakdownSegment = "queueing / other";

/** One part of a breakdown: a hop of the fault path, priced and scaled. */
export interface BreakdownPart {
  /** The stack segment it belongs to. */
  readonly segment: BreakdownSegment;
  /** What the hop is ("SMMU IRQ -> evtq thread"). */
  readonly hop: string;
  /** The cost parameters it adds up ("smmu.irqLatency + smmu.evtqHandlerPerRecord"). */
  readonly costs: string;
  /** Nanoseconds of one traversal, from the profile (0 for the remainder). */
  readonly nsEach: number;
  /** Traversals per faulting access, from the run's counts (1 for the remainder). */
  readonly perAccess: number;
  /** Nanoseconds per faulting access: `nsEach * perAccess` (for the remainder: measured - sum). */
  readonly ns: number;
}

/** What {@linkcode pricedBreakdown} needs: the profile, the path, and the run's measurements. */
export interface BreakdownInput {
  /** The resolved cost profile of the run (`loadCostProfile(scenario.costs)`). */
  readonly costs: Costs;
  /** How faults reach software: stalled transactions or PCIe page requests. */
  readonly fault: "stall" | "pri";
  /** The measured mean fault latency (`faultLatencyNs.mean`): the total the parts add up to. */
  readonly measuredMeanNs: number;
  /** Stage-1 faults (forwarded to the guest) per faulting access. */
  readonly stage1FaultsPerAccess: number;
  /** Stage-2 faults (handled by VFIO type1) per faulting access. */
  readonly stage2FaultsPerAccess: number;
  /** Descriptor reads per translation that missed the IOTLB (measured: walkReads / iotlb.misses). */
  readonly walkReadsPerTranslation: number;
  /** Bytes the device moves once the faulting access goes through. [4096] */
  readonly accessBytes?: number;
  /** Where the fault handler ran (`iommu.faultPath`): the workqueue path adds a kworker wakeup. ["evtq-thread"] */
  readonly faultPath?: FaultPath;
  /** The device's DMA bandwidth in bytes per second. */
  readonly dmaBandwidth: number;
  /** The VFIO backend (`dma.backend`): which hops forward and handle faults. ["type1"] */
  readonly backend?: "type1" | "iommufd";
}

interface Hop {
  readonly segment: BreakdownSegment;
  readonly hop: string;
  readonly names: readonly (CostName | [CostName, number])[];
}

const DELIVERY: Readonly<Record<"stall" | "pri", readonly Hop[]>> = {
  stall: [
    {
      segment: BREAKDOWN_SEGMENTS[0],
      hop: "SMMU writes the stall event record",
      names: ["smmu.eventWrite"],
    },
    {
      segment: BREAKDOWN_SEGMENTS[0],
      hop: "SMMU IRQ -> arm_smmu_evtq_thread",
      names: ["smmu.irqLatency", "smmu.evtqHandlerPerRecord"],
    },
  ],
  pri: [
    {
      segment: BREAKDOWN_SEGMENTS[0],
      hop: "PCIe Page Request message to the PRI queue",
      names: ["pci.pageRequestLatency"],
    },
    {
      segment: BREAKDOWN_SEGMENTS[0],
      hop: "SMMU IRQ -> arm_smmu_priq_thread",
      names: ["smmu.irqLatency", "smmu.priqHandlerPerRecord"],
    },
  ],
};

const CORE: Readonly<Record<FaultPath, Hop>> = {
  "evtq-thread": {
    segment: BREAKDOWN_SEGMENTS[1],
    hop: "iommu_report_device_fault, handler called in the queue thread",
    names: ["iopf.reportFault", "iopf.groupOverhead"],
  },
  workqueue: {
    segment: BREAKDOWN_SEGMENTS[1],
    hop: "iommu_report_device_fault + IOPF workqueue",
    names: ["iopf.reportFault", "iopf.workqueueWakeup", "iopf.groupOverhead"],
  },
};

const STAGE2_HANDLER: readonly Hop[] = [
  {
    segment: BREAKDOWN_SEGMENTS[3],
    hop: "VFIO type1: vfio_dma lookup, bitmap test and set",
    names: ["vfio.faultLookup", ["vfio.bitmapCheck", 2]],
  },
  {
    segment: BREAKDOWN_SEGMENTS[5],
    hop: "mm: fault in and zero the 4 KiB host page",
    names: ["mm.faultOverhead", "mm.zeroPer4k"],
  },
  {
    segment: BREAKDOWN_SEGMENTS[5],
    hop: "mm: pin_user_pages",
    names: ["mm.pinCall", "mm.pinPer4k"],
  },
  {
    segment: BREAKDOWN_SEGMENTS[6],
    hop: "iommu_map of one 4 KiB page",
    names: ["iommu.mapCall", "iommu.mapPerPte"],
  },
  {
    segment: BREAKDOWN_SEGMENTS[3],
    hop: "VFIO page response",
    names: ["vfio.faultRespond"],
  },
];

const STAGE1_FORWARD: readonly Hop[] = [
  {
    segment: BREAKDOWN_SEGMENTS[2],
    hop: "VFIO fault region record + eventfd to the VMM",
    names: ["vfio.faultRegionWrite", "vfio.eventfdSignal"],
  },
  {
    segment: BREAKDOWN_SEGMENTS[2],
    hop: "VMM injects the vSMMU event",
    names: ["vmm.injectEvent"],
  },
  {
    segment: BREAKDOWN_SEGMENTS[2],
    hop: "guest IRQ + guest stage-1 fault handler",
    names: ["guest.irqToHandler", "guest.faultHandler"],
  },
  {
    segment: BREAKDOWN_SEGMENTS[2],
    hop: "guest response: trap to the VMM + response write to VFIO",
    names: ["vmm.trap", "vfio.responseWrite"],
  },
];

const IOMMUFD_STAGE2_HANDLER: readonly Hop[] = [
  {
    segment: BREAKDOWN_SEGMENTS[4],
    hop: "what-if iommufd handler: iopt_area lookup",
    names: ["iommufd.iopfLookup"],
  },
  ...STAGE2_HANDLER.slice(1, 4),
  {
    segment: BREAKDOWN_SEGMENTS[4],
    hop: "what-if iommufd page response",
    names: ["iommufd.iopfRespond"],
  },
];

const IOMMUFD_STAGE1_FORWARD: readonly Hop[] = [
  {
    segment: BREAKDOWN_SEGMENTS[2],
    hop: "iommufd fault queue: deliver + poll wakeup of the VMM",
    names: ["iommufd.faultDeliver", "iommufd.faultWakeup"],
  },
  {
    segment: BREAKDOWN_SEGMENTS[2],
    hop: "VMM read() of the 40-byte record",
    names: ["iommufd.faultRead", "iommufd.faultReadPerRecord"],
  },
  STAGE1_FORWARD[1]!,
  STAGE1_FORWARD[2]!,
  {
    segment: BREAKDOWN_SEGMENTS[2],
    hop: "guest response: trap to the VMM + write() to the fault fd",
    names: ["vmm.trap", "iommufd.faultWrite"],
  },
];

const RESPONSE: Readonly<Record<"stall" | "pri", Hop>> = {
  stall: {
    segment: BREAKDOWN_SEGMENTS[7],
    hop: "CMD_RESUME (Retry) and the SMMU's replay",
    names: ["smmu.cmdIssue", "smmu.cmdProcess", "smmu.resumeRetry"],
  },
  pri: {
    segment: BREAKDOWN_SEGMENTS[7],
    hop: "CMD_PRI_RESP + PRG Response message",
    names: ["smmu.cmdIssue", "smmu.cmdProcess", "pci.prgResponseLatency"],
  },
};

const RETRY_FIXED: Readonly<Record<"stall" | "pri", readonly CostName[]>> = {
  stall: ["smmu.iotlbLookup"],
  pri: ["pci.atcLookup", "pci.atsRoundTrip", "smmu.iotlbLookup"],
};

/**
 * The breakdown of the mean fault latency into the hops of the path, each
 * `cost * traversals per faulting access`, plus the {@linkcode REMAINDER}
 * (measured mean minus their sum; negative if the priced hops exceed the
 * measurement). The parts add up to `measuredMeanNs`. Every traversal
 * count comes from the input (the run's measurements), every cost from
 * `costs`.
 *
 * @throws {IopfLabError} EINVAL for a negative or non-finite measurement
 */
export function pricedBreakdown(input: BreakdownInput): BreakdownPart[] {
  const {
    costs,
    fault,
    measuredMeanNs,
    stage1FaultsPerAccess: s1,
    stage2FaultsPerAccess: s2,
    walkReadsPerTranslation: walk,
  } = input;
  for (
    const [name, v] of [
      ["measuredMeanNs", measuredMeanNs],
      ["stage1FaultsPerAccess", s1],
      ["stage2FaultsPerAccess", s2],
      ["walkReadsPerTranslation", walk],
      ["dmaBandwidth", input.dmaBandwidth],
    ] as const
  ) {
    if (!Number.isFinite(v) || v < 0) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot break down the fault latency: ${name} must be a finite number >= 0, got ${v}`,
      );
    }
  }
  const parts: BreakdownPart[] = [];
  const add = (hop: Hop, perAccess: number) => {
    if (perAccess <= 0) return;
    let nsEach = 0;
    const names: string[] = [];
    for (const n of hop.names) {
      const [name, times] = typeof n === "string" ? [n, 1] : n;
      nsEach += costs[name] * times;
      names.push(times === 1 ? name : `${times} × ${name}`);
    }
    parts.push({
      segment: hop.segment,
      hop: hop.hop,
      costs: names.join(" + "),
      nsEach,
      perAccess,
      ns: nsEach * perAccess,
    });
  };
  const faults = s1 + s2;
  for (const h of DELIVERY[fault]) add(h, faults);
  add(CORE[input.faultPath ?? "evtq-thread"], faults);
  const fd = input.backend === "iommufd";
  for (const h of fd ? IOMMUFD_STAGE1_FORWARD : STAGE1_FORWARD) add(h, s1);
  for (const h of fd ? IOMMUFD_STAGE2_HANDLER : STAGE2_HANDLER) add(h, s2);
  add(RESPONSE[fault], faults);
  const retryNames = RETRY_FIXED[fault];
  let retryEach = walk * costs["smmu.walkRead"];
  for (const n of retryNames) retryEach += costs[n];
  if (faults > 0) {
    parts.push({
      segment: BREAKDOWN_SEGMENTS[7],
      hop: fault === "stall"
        ? "retried translation: IOTLB miss and table walk"
        : "retried ATS translation: round trip, IOTLB miss and walk",
      costs: `${retryNames.join(" + ")} + ${
        round2(walk)
      } × smmu.walkRead (measured reads per walk)`,
      nsEach: retryEach,
      perAccess: faults,
      ns: retryEach * faults,
    });
  }
  const bytes = input.accessBytes ?? PAGE_SIZE;
  if (input.dmaBandwidth > 0) {
    const ns = (bytes / input.dmaBandwidth) * 1e9;
    parts.push({
      segment: BREAKDOWN_SEGMENTS[8],
      hop: `device moves ${bytes} bytes at the link bandwidth`,
      costs: "bytes / device.dmaBandwidth",
      nsEach: ns,
      perAccess: 1,
      ns,
    });
  }
  const sum = parts.reduce((a, p) => a + p.ns, 0);
  parts.push({
    segment: REMAINDER,
    hop: "queueing, table allocation, anything not priced above",
    costs: "measured mean - sum of the hops",
    nsEach: 0,
    perAccess: 1,
    ns: measuredMeanNs - sum,
  });
  return parts;
}

/**
 * The {@linkcode BreakdownInput} of a run: its cost profile, fault kind and
 * bandwidth from the scenario; the faults per faulting access
 * (`faults.stage1` and `faults.stage2` over `extra.faultLatencySamples`)
 * and the descriptor reads per IOTLB miss (`extra.walkReads /
 * iotlb.misses`) from its metrics.
 *
 * @throws {IopfLabError} EINVAL when the run has no faults or lacks the counts
 */
export function breakdownInput(
  scenario: Scenario,
  metrics: Metrics,
  costs: Costs,
): BreakdownInput {
  const samples = metrics.extra?.faultLatencySamples ?? 0;
  const walkReads = metrics.extra?.walkReads;
  if (!(samples > 0) || walkReads === undefined) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot break down the fault latency of ${metrics.name}: the run recorded no faulting accesses (extra.faultLatencySamples) or no walk reads`,
    );
  }
  const misses = metrics.iotlb.misses;
  return {
    costs,
    fault: scenario.device.fault,
    measuredMeanNs: metrics.faultLatencyNs.mean,
    stage1FaultsPerAccess: metrics.faults.stage1 / samples,
    stage2FaultsPerAccess: metrics.faults.stage2 / samples,
    walkReadsPerTranslation: misses > 0 ? walkReads / misses : 0,
    accessBytes: PAGE_SIZE,
    dmaBandwidth: scenario.device.dmaBandwidth,
    faultPath: scenario.iommu.faultPath,
    backend: scenario.dma.backend,
  };
}

/** Sums the parts by segment, in {@linkcode BREAKDOWN_SEGMENTS} order (segments without parts left out). */
export function segmentTotals(
  parts: readonly BreakdownPart[],
): { segment: BreakdownSegment; ns: number }[] {
  const out: { segment: BreakdownSegment; ns: number }[] = [];
  for (const segment of BREAKDOWN_SEGMENTS) {
    const mine = parts.filter((p) => p.segment === segment);
    if (mine.length === 0) continue;
    out.push({ segment, ns: mine.reduce((a, p) => a + p.ns, 0) });
  }
  return out;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
