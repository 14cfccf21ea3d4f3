/**
 * "RFC vs mainline" (issue 14): the same workloads on the 2021 RFC's world
 * (VFIO type1, static pinning or IOPF) and on what mainline Linux has
 * (iommufd: a pinned IOAS, and nested translation whose stage-1 faults go
 * to the guest through the fault queue), plus the what-if of the RFC's idea
 * on iommufd (IOPF on a paging HWPT). Each configuration carries its label
 * from the run (`metrics.design.status`: mainline, posted, rfc, what-if);
 * every number is read off a simulated run, the fault latency by hop is
 * priced from the cost profile and closed by the measured mean
 * ({@linkcode pricedBreakdown}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RFC_VS_MAINLINE_MODES, rfcVsMainlineJson, rfcVsMainlineRow } from "./rfc_vs_mainline.ts";
 * import { parseScenario, runScenario } from "../experiment/mod.ts";
 * const workload = { kind: "accelerator", messageSize: "64KiB", messages: 4, reuseBuffers: true };
 * const rows = RFC_VS_MAINLINE_MODES.map((mode) => {
 *   const json = rfcVsMainlineJson({ vm: { memory: "128MiB" } }, "accelerator", workload, mode);
 *   return rfcVsMainlineRow("accelerator", mode, runScenario(parseScenario(json)), 128 * 2 ** 20);
 * });
 * const by = Object.fromEntries(rows.map((r) => [r.mode, r]));
 * assert.equal(by["iommufd-iopf"]!.status, "what-if");
 * assert.equal(by["type1-iopf"]!.status, "rfc");
 * assert(by["iommufd-pinned"]!.pinnedShare === 1 && by["iommufd-iopf"]!.pinnedShare < 0.1);
 * ```
 *
 * @module
 */
import type { Metrics } from "../experiment/metrics.ts";
import type { Scenario } from "../experiment/scenario.ts";
import { loadCostProfile } from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import { PAGE_SIZE } from "../sim/units.ts";
import { breakdownInput, pricedBreakdown } from "./breakdown.ts";
import {
  densityExperiment,
  type DensityOptions,
  type DensityRow,
  densityRowOf,
  densityScenarioJson,
  type DesignMode,
  mergeScenarioJson,
} from "./density.ts";
import type { RunResult } from "../experiment/sweep.ts";

/** The five configurations compared. */
export type RfcVsMainlineMode =
  | "type1-static"
  | "type1-iopf"
  | "iommufd-pinned"
  | "iommufd-nested"
  | "iommufd-iopf";

/** The configurations, in the order figures show them. */
export const RFC_VS_MAINLINE_MODES: readonly RfcVsMainlineMode[] = [
  "type1-static",
  "type1-iopf",
  "iommufd-pinned",
  "iommufd-nested",
  "iommufd-iopf",
];

/** The scenario sections (`dma`, `smmu`, `guest`) of each configuration. */
export function rfcVsMainlinePatch(
  mode: RfcVsMainlineMode,
): Record<string, unknown> {
  switch (mode) {
    case "type1-static":
      return { dma: { backend: "type1", mode: "static-pin" } };
    case "type1-iopf":
      return { dma: { backend: "type1", mode: "iopf" } };
    case "iommufd-pinned":
      return { dma: { backend: "iommufd", mode: "static-pin" } };
    case "iommufd-nested":
      // The guest fills its stage 1 on fault: every first touch of a
      // buffer page is a stage-1 fault forwarded to it.
      return {
        dma: { backend: "iommufd", mode: "static-pin" },
        smmu: { stage: "nested" },
        guest: { stage1: "on-fault" },
      };
    case "iommufd-iopf":
      return { dma: { backend: "iommufd", mode: "iopf" } };
    default:
      throw new IopfLabError(
        "EINVAL",
        `mode: expected one of ${RFC_VS_MAINLINE_MODES.join(", ")}, got ${
          String(mode)
        }`,
        "mode",
      );
  }
}

/** The scenario JSON of `mode` running `workload` on `base` (host, vm, device...). */
export function rfcVsMainlineJson(
  base: Readonly<Record<string, unknown>>,
  workloadName: string,
  workload: Readonly<Record<string, unknown>>,
  mode: RfcVsMainlineMode,
): Record<string, unknown> {
  return mergeScenarioJson(
    { ...base, name: `${workloadName}[${mode}]`, workload, check: true },
    rfcVsMainlinePatch(mode),
  );
}

/** One configuration on one workload. */
export interface RfcVsMainlineRow {
  /** The workload's name. */
  readonly workload: string;
  /** The configuration. */
  readonly mode: RfcVsMainlineMode;
  /** Its designs, from the run (`metrics.design.label`). */
  readonly label: string;
  /** Mainline, posted, rfc or what-if, from the run. */
  readonly status: string;
  /** What the status rests on, from the run. */
  readonly basis: string;
  /** VM start until guest RAM is ready for DMA (ns). */
  readonly setupNs: number;
  /** Most guest memory pinned at once (bytes). */
  readonly pinnedBytesPeak: number;
  /** That over guest RAM. */
  readonly pinnedShare: number;
  /** Faults reported to the IOMMU core. */
  readonly faults: number;
  /** Of them, stage 1 (forwarded to the guest). */
  readonly stage1Faults: number;
  /** Of them, stage 2 (handled in the host kernel). */
  readonly stage2Faults: number;
  /** Mean fault latency (ns; 0 without faults). */
  readonly faultLatencyMeanNs: number;
  /** 99th percentile fault latency (ns). */
  readonly faultLatencyP99Ns: number;
  /** DMA throughput of the workload (bytes/s). */
  readonly throughputBytesPerSec: number;
  /** Device accesses that failed. */
  readonly dmaErrors: number;
}

/** The row of one run; `vmMemory` is guest RAM in bytes. */
export function rfcVsMainlineRow(
  workload: string,
  mode: RfcVsMainlineMode,
  m: Metrics,
  vmMemory: number,
): RfcVsMainlineRow {
  const d = m.design;
  if (!d) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot compare ${m.name}: its metrics carry no design label`,
      "metrics.design",
    );
  }
  const pinned = m.pinnedPagesPeak * PAGE_SIZE;
  return {
    workload,
    mode,
    label: d.label,
    status: d.status,
    basis: d.basis,
    setupNs: m.setupNs,
    pinnedBytesPeak: pinned,
    pinnedShare: pinned / vmMemory,
    faults: m.faults.total,
    stage1Faults: m.faults.stage1,
    stage2Faults: m.faults.stage2,
    faultLatencyMeanNs: m.faultLatencyNs.mean,
    faultLatencyP99Ns: m.faultLatencyNs.p99,
    throughputBytesPerSec: m.throughputBytesPerSec,
    dmaErrors: m.dmaErrors,
  };
}

/** One hop of the mean fault latency of a configuration. */
export interface RfcVsMainlineHopRow {
  /** The workload's name. */
  readonly workload: string;
  /** The configuration. */
  readonly mode: RfcVsMainlineMode;
  /** The stack segment of the hop. */
  readonly segment: string;
  /** The hop. */
  readonly hop: string;
  /** Its contribution to the mean fault latency (ns). */
  readonly ns: number;
}

/**
 * The mean fault latency of a run by hop ({@linkcode pricedBreakdown} over
 * the run's cost profile and counts); none for a run without faults.
 */
export function rfcVsMainlineHops(
  workload: string,
  mode: RfcVsMainlineMode,
  scenario: Scenario,
  m: Metrics,
): RfcVsMainlineHopRow[] {
  if (!((m.extra?.faultLatencySamples ?? 0) > 0)) return [];
  const parts = pricedBreakdown(
    breakdownInput(scenario, m, loadCostProfile(scenario.costs)),
  );
  return parts.map((p) => ({
    workload,
    mode,
    segment: p.segment,
    hop: p.hop,
    ns: p.ns,
  }));
}

/** One configuration's VM density. */
export interface RfcVsMainlineDensityRow {
  /** The configuration. */
  readonly mode: RfcVsMainlineMode;
  /** VMs asked for. */
  readonly vmsRequested: number;
  /** VMs that started. */
  readonly vmsStarted: number;
  /** VMs that started and ran without a DMA error. */
  readonly vmsHealthy: number;
  /** Pinned peak over the VMs (4 KiB pages). */
  readonly pinnedPagesPeak: number;
  /** Why VMs could not start, one line each. */
  readonly errors: string;
}

/** What {@linkcode rfcVsMainlineDensity} runs. */
export interface RfcVsMainlineDensityOptions {
  /** Host RAM. */
  readonly hostMemory: number | string;
  /** RAM of each VM. */
  readonly vmMemory: number | string;
  /** Total VM RAM over host RAM. */
  readonly overcommit: number;
  /** The workload of every VM (scenario JSON). */
  readonly workload: Readonly<Record<string, unknown>>;
  /** The configurations. [all] */
  readonly modes?: readonly RfcVsMainlineMode[];
}

/** Configuration `mode`'s density options and the density design it runs. */
function densityOf(
  options: RfcVsMainlineDensityOptions,
  mode: RfcVsMainlineMode,
): { design: DesignMode; density: DensityOptions } {
  const patch = rfcVsMainlinePatch(mode);
  const dma = patch.dma as { mode: "static-pin" | "iopf" };
  return {
    design: dma.mode,
    density: {
      hostMemory: options.hostMemory,
      vmMemory: options.vmMemory,
      overcommit: options.overcommit,
      modes: [dma.mode],
      workloads: [options.workload],
      scenario: patch,
      baseline: false,
      check: true,
    },
  };
}

/**
 * The scenario JSON of configuration `mode`'s density run, for a sweep
 * runner (the report's workers); {@linkcode rfcVsMainlineDensityRow} reads
 * its result.
 */
export function rfcVsMainlineDensityJson(
  options: RfcVsMainlineDensityOptions,
  mode: RfcVsMainlineMode,
): Record<string, unknown> {
  const { design, density } = densityOf(options, mode);
  return densityScenarioJson(density, design);
}

/**
 * Configuration `mode`'s density row from its run (metrics and per-VM
 * outcomes, as runScenarioWithSeries or a sweep with series returns them).
 */
export function rfcVsMainlineDensityRow(
  options: RfcVsMainlineDensityOptions,
  mode: RfcVsMainlineMode,
  run: Pick<RunResult, "metrics" | "vms">,
): RfcVsMainlineDensityRow {
  const { design, density } = densityOf(options, mode);
  return shortRow(mode, densityRowOf(density, design, run));
}

function shortRow(
  mode: RfcVsMainlineMode,
  row: DensityRow,
): RfcVsMainlineDensityRow {
  return {
    mode,
    vmsRequested: row.vmsRequested,
    vmsStarted: row.vmsStarted,
    vmsHealthy: row.vmsHealthy,
    pinnedPagesPeak: row.pinnedPagesPeak,
    errors: row.errors.join(" | "),
  };
}

/**
 * VMs per host for each configuration: `densityExperiment` (more VMs than
 * the host could pin, the workload on each) with the configuration's
 * scenario sections, run here one after the other (the report runs
 * {@linkcode rfcVsMainlineDensityJson} on its workers instead).
 */
export function rfcVsMainlineDensity(
  options: RfcVsMainlineDensityOptions,
): RfcVsMainlineDensityRow[] {
  return (options.modes ?? RFC_VS_MAINLINE_MODES).map((mode) => {
    const [row] = densityExperiment(densityOf(options, mode).density);
    return shortRow(mode, row!);
  });
}
