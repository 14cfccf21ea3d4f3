/**
 * Beyond the RFC: the five DMA designs (static pinning, IOPF, IOPF with the
 * MMU notifier, a caching-mode vIOMMU that pins what the guest maps, and
 * coIOMMU) run on the same workloads, as tidy rows for tables and figures:
 * start time, pinned memory over time, throughput over time, faults / traps
 * / doorbells per second, VMs per host (from the density experiment), and a
 * "which design for which workload" table derived from those rows.
 *
 * @module
 */
import {
  formatRate,
  formatValue,
  type Metrics,
  type SeriesRow,
} from "../experiment/metrics.ts";
import { formatSize, PAGE_SIZE } from "../sim/units.ts";
import {
  type CoiommuDesignOptions,
  densityExperiment,
  type DensityOptions,
  type DensityRow,
  DESIGN_MODES,
  designDma,
  type DesignMode,
  mergeScenarioJson,
} from "./density.ts";
import { runScenarioWithSeries } from "../experiment/run.ts";
import { parseScenario } from "../experiment/scenario.ts";

/**
 * The workloads of {@linkcode compareModes} when none are given, one per
 * guest mapping pattern: a NIC that recycles its receive buffers (maps
 * once), storage streaming into fresh page-cache pages (map and unmap per
 * block), an accelerator mapping fresh buffers per message.
 */
export const DEFAULT_COMPARE_WORKLOADS: Readonly<
  Record<string, Readonly<Record<string, unknown>>>
> = {
  "nic-rx": {
    kind: "nic-rx",
    ringEntries: 512,
    bufferSize: "2KiB",
    packets: 8000,
    rate: "10Gbps",
  },
  storage: {
    kind: "storage",
    blockSize: "128KiB",
    totalBytes: "32MiB",
    freshBuffers: true,
    queueDepth: 8,
  },
  accelerator: {
    kind: "accelerator",
    messageSize: "256KiB",
    messages: 32,
    reuseBuffers: false,
  },
};

/** Options of {@linkcode compareModes}. */
export interface CompareOptions {
  /**
   * Scenario JSON shared by every run (host, vm, device, smmu, costs,
   * seed); dma and workload are set per run. Default: a 1 GiB VM on a
   * 4 GiB host.
   */
  readonly scenario?: Readonly<Record<string, unknown>>;
  /** Named workloads (scenario workload JSON). Default {@linkcode DEFAULT_COMPARE_WORKLOADS}. */
  readonly workloads?: Readonly<
    Record<string, Readonly<Record<string, unknown>>>
  >;
  /** Designs to run. Default all of {@linkcode DESIGN_MODES}. */
  readonly modes?: readonly DesignMode[];
  /**
   * coIOMMU settings. Default: LRU unpinning every 1 ms with the default
   * generation threshold, an interval scaled down to runs that last
   * milliseconds (the backend's own default, 60 s, would never fire).
   */
  readonly coiommu?: CoiommuDesignOptions;
  /** Time-series samples per run (between this and twice as many). Default 60. */
  readonly seriesPoints?: number;
  /**
   * The recommendation's pinning budget: a design qualifies for a
   * workload when its pinned peak is at most this fraction of guest RAM.
   * Default 0.25.
   */
  readonly pinnedLimit?: number;
  /**
   * The density experiment run per workload for the VMs-per-host column
   * (its modes, workloads and coiommu are set here), or false to skip it.
   * Default: 256 MiB VMs on a 1 GiB host at overcommit 2, no baseline.
   */
  readonly density?:
    | Omit<DensityOptions, "modes" | "workloads" | "coiommu">
    | false;
  /** Run the sanitizer and invariant checks. Default true. */
  readonly check?: boolean;
}

/** One design on one workload. */
export interface ModeRow {
  /** The workload's name. */
  readonly workload: string;
  /** The design. */
  readonly mode: DesignMode;
  /** VM start until guest RAM is ready for DMA (ns). */
  readonly setupNs: number;
  /** Workload run time (ns). */
  readonly runNs: number;
  /** Bytes moved by the device. */
  readonly dmaBytes: number;
  /** dmaBytes over runNs, per second. */
  readonly throughputBytesPerSec: number;
  /** Pages pinned at the peak. */
  readonly pinnedPagesPeak: number;
  /** Bytes pinned at the peak. */
  readonly pinnedBytesPeak: number;
  /** Bytes pinned when the workload ended. */
  readonly pinnedBytesEnd: number;
  /** pinnedBytesPeak over guest RAM. */
  readonly pinnedFraction: number;
  /** Bytes charged to RLIMIT_MEMLOCK at the peak. */
  readonly lockedBytesPeak: number;
  /** I/O page faults. */
  readonly faults: number;
  /** Guest map/unmap traps to the VMM (viommu-pin). */
  readonly traps: number;
  /** coIOMMU doorbells (pin requests). */
  readonly doorbells: number;
  /** Faults per second of run time. */
  readonly faultsPerSec: number;
  /** Traps per second of run time. */
  readonly trapsPerSec: number;
  /** Doorbells per second of run time. */
  readonly doorbellsPerSec: number;
  /** Host interventions per second: faults + traps + doorbells. */
  readonly hostEventsPerSec: number;
  /** Device accesses that failed. */
  readonly dmaErrors: number;
  /** Isolation violations. */
  readonly isolationViolations: number;
  /** VMs that started and ran healthy in the density experiment (NaN when skipped). */
  readonly vmsPerHost: number;
}

/** One time-series sample of one design on one workload. */
export interface ModeSeriesRow {
  /** The workload's name. */
  readonly workload: string;
  /** The design. */
  readonly mode: DesignMode;
  /** Time from VM start (ns). */
  readonly tNs: number;
  /** Throughput over the interval ending at tNs. */
  readonly throughputBytesPerSec: number;
  /** Bytes pinned at tNs. */
  readonly pinnedBytes: number;
  /** Host RAM populated for the guest at tNs. */
  readonly populatedBytes: number;
  /** I/O page faults so far. */
  readonly faults: number;
}

/** The design chosen for a workload, with the reason. */
export interface Recommendation {
  /** The workload's name. */
  readonly workload: string;
  /** The chosen design (the least pinning one when none is within the budget). */
  readonly mode: DesignMode;
  /** Its throughput. */
  readonly throughputBytesPerSec: number;
  /** Its pinned peak in bytes. */
  readonly pinnedBytesPeak: number;
  /** The pinning budget in bytes. */
  readonly pinnedLimitBytes: number;
  /** Its VMs per host in the density experiment. */
  readonly vmsPerHost: number;
  /** Why: the numbers that decided it, and what ruled the others out. */
  readonly reason: string;
}

/** What {@linkcode compareModes} returns: tidy rows for tables and figures. */
export interface CompareResult {
  /** One row per workload and design. */
  readonly rows: readonly ModeRow[];
  /** Time series, one row per sample. */
  readonly series: readonly ModeSeriesRow[];
  /** The density experiment, one row per workload and design (empty when skipped). */
  readonly density: readonly DensityRow[];
  /** One recommendation per workload. */
  readonly recommendations: readonly Recommendation[];
}

const DEFAULT_SCENARIO = {
  host: { memory: "4GiB" },
  vm: { memory: "1GiB" },
};

/**
 * Runs every design on every workload (and the density experiment per
 * workload) and returns the tidy rows, the series, the density rows and
 * the recommendations ({@linkcode recommendDesigns}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareModes } from "./compare.ts";
 * const r = compareModes({
 *   scenario: { host: { memory: "1GiB" }, vm: { memory: "128MiB" } },
 *   workloads: { acc: { kind: "accelerator", messageSize: "64KiB", messages: 4, reuseBuffers: false } },
 *   modes: ["static-pin", "viommu-pin"],
 *   density: false,
 * });
 * assert(r.rows.length === 2 && r.rows[1]!.traps === 16);
 * assert(r.recommendations[0]!.mode === "viommu-pin");
 * ```
 */
export function compareModes(options: CompareOptions = {}): CompareResult {
  const base = options.scenario ?? DEFAULT_SCENARIO;
  const workloads = options.workloads ?? DEFAULT_COMPARE_WORKLOADS;
  const modes = options.modes ?? DESIGN_MODES;
  const coiommu = options.coiommu ??
    { unpinPolicy: "lru", unpinInterval: "1ms" };
  const check = options.check ?? true;
  const rows: ModeRow[] = [];
  const series: ModeSeriesRow[] = [];
  const density: DensityRow[] = [];
  const dens = options.density === false ? undefined : {
    hostMemory: "1GiB",
    vmMemory: "256MiB",
    overcommit: 2,
    baseline: false,
    ...(options.density ?? {}),
  };
  let vmMemory = 0;
  for (const [name, workload] of Object.entries(workloads)) {
    const healthy = new Map<DesignMode, number>();
    if (dens) {
      const d = densityExperiment({
        ...dens,
        modes,
        workloads: [workload],
        coiommu,
        check,
      });
      for (const r of d) {
        healthy.set(r.mode, r.vmsHealthy);
        density.push({ ...r, workload: name });
      }
    }
    for (const mode of modes) {
      const s = parseScenario(
        compareScenarioJson(base, name, workload, mode, coiommu, check),
      );
      vmMemory = s.vm.memory * s.vm.count;
      const { metrics: m, series: ser } = runScenarioWithSeries(s, {
        seriesPoints: options.seriesPoints ?? 60,
      });
      rows.push(modeRow(name, mode, m, vmMemory, healthy.get(mode) ?? NaN));
      series.push(...modeSeries(name, mode, ser));
    }
  }
  const recommendations = recommendDesigns(rows, {
    pinnedLimitBytes: (options.pinnedLimit ?? 0.25) * vmMemory,
  });
  return { rows, series, density, recommendations };
}

/**
 * The scenario JSON of one design on one named workload, as
 * {@linkcode compareModes} runs it: `base` with the design's `dma` section
 * and the workload.
 */
export function compareScenarioJson(
  base: Readonly<Record<string, unknown>>,
  name: string,
  workload: Readonly<Record<string, unknown>>,
  mode: DesignMode,
  coiommu: CoiommuDesignOptions,
  check: boolean,
): Record<string, unknown> {
  return mergeScenarioJson(base, {
    name: `${name}[${mode}]`,
    dma: designDma(mode, coiommu),
    workload,
    check,
  });
}

/** The {@linkcode ModeRow} of one run: `vmMemory` is the guest RAM of all its VMs. */
export function modeRow(
  workload: string,
  mode: DesignMode,
  m: Metrics,
  vmMemory: number,
  vmsPerHost: number,
): ModeRow {
  const x = m.extra ?? {};
  const perSec = (n: number) => m.runNs > 0 ? (n / m.runNs) * 1e9 : 0;
  const traps = x.viommuTraps ?? 0;
  const doorbells = x.coiommuDoorbells ?? 0;
  return {
    workload,
    mode,
    setupNs: m.setupNs,
    runNs: m.runNs,
    dmaBytes: m.dmaBytes,
    throughputBytesPerSec: m.throughputBytesPerSec,
    pinnedPagesPeak: m.pinnedPagesPeak,
    pinnedBytesPeak: m.pinnedPagesPeak * PAGE_SIZE,
    pinnedBytesEnd: m.pinnedPagesEnd * PAGE_SIZE,
    pinnedFraction: (m.pinnedPagesPeak * PAGE_SIZE) / vmMemory,
    lockedBytesPeak: m.lockedBytesPeak,
    faults: m.faults.total,
    traps,
    doorbells,
    faultsPerSec: perSec(m.faults.total),
    trapsPerSec: perSec(traps),
    doorbellsPerSec: perSec(doorbells),
    hostEventsPerSec: perSec(m.faults.total + traps + doorbells),
    dmaErrors: m.dmaErrors,
    isolationViolations: m.isolationViolations,
    vmsPerHost,
  };
}

/** The {@linkcode ModeSeriesRow}s of one run's time series. */
export function modeSeries(
  workload: string,
  mode: DesignMode,
  series: readonly SeriesRow[],
): ModeSeriesRow[] {
  return series.map((p) => ({
    workload,
    mode,
    tNs: p.tNs,
    throughputBytesPerSec: p.throughputBytesPerSec,
    pinnedBytes: p.pinnedPages * PAGE_SIZE,
    populatedBytes: p.populatedBytes,
    faults: p.faults,
  }));
}

/** Options of {@linkcode recommendDesigns}. */
export interface RecommendOptions {
  /** The pinning budget in bytes (a design qualifies at or below it). */
  readonly pinnedLimitBytes: number;
}

/**
 * "Which design for which workload", computed from the rows: per workload,
 * among the designs that ran without DMA errors or isolation violations
 * and pinned at most the budget, the one with the highest throughput (ties:
 * fewer host events per second). When no design is within the budget, the
 * one pinning least. The reason quotes the numbers and what excluded the
 * others.
 */
export function recommendDesigns(
  rows: readonly ModeRow[],
  options: RecommendOptions,
): Recommendation[] {
  const limit = options.pinnedLimitBytes;
  const byWorkload = new Map<string, ModeRow[]>();
  for (const r of rows) {
    let list = byWorkload.get(r.workload);
    if (!list) byWorkload.set(r.workload, list = []);
    list.push(r);
  }
  const out: Recommendation[] = [];
  for (const [workload, list] of byWorkload) {
    const clean = list.filter((r) =>
      r.dmaErrors === 0 && r.isolationViolations === 0
    );
    const eligible = clean.filter((r) => r.pinnedBytesPeak <= limit);
    const excluded: string[] = [];
    for (const r of list) {
      if (r.dmaErrors > 0 || r.isolationViolations > 0) {
        excluded.push(
          `${r.mode} had ${r.dmaErrors} DMA errors and ${r.isolationViolations} isolation violations`,
        );
      } else if (r.pinnedBytesPeak > limit) {
        excluded.push(
          `${r.mode} pins ${bytes(r.pinnedBytesPeak)} (${
            pct(r.pinnedFraction)
          } of guest RAM)`,
        );
      }
    }
    const ranked = [...eligible].sort((a, b) =>
      b.throughputBytesPerSec - a.throughputBytesPerSec ||
      a.hostEventsPerSec - b.hostEventsPerSec
    );
    let best = ranked[0];
    let reason: string;
    if (best) {
      const second = ranked[1];
      reason = `${best.mode}: highest throughput (${
        formatRate(best.throughputBytesPerSec)
      }) among designs pinning at most ${bytes(limit)}, with ${
        bytes(best.pinnedBytesPeak)
      } pinned at the peak and ${
        formatValue("x", Math.round(best.hostEventsPerSec))
      } host events/s`;
      if (second) {
        reason += `; next ${second.mode} at ${
          pct(second.throughputBytesPerSec / best.throughputBytesPerSec)
        } of its throughput`;
      }
      if (Number.isFinite(best.vmsPerHost)) {
        reason +=
          `; ${best.vmsPerHost} healthy VMs per host in the density run`;
      }
    } else {
      const pool = clean.length > 0 ? clean : list;
      best = [...pool].sort((a, b) =>
        a.pinnedBytesPeak - b.pinnedBytesPeak ||
        b.throughputBytesPerSec - a.throughputBytesPerSec
      )[0]!;
      reason = `${best.mode}: no design stays within ${
        bytes(limit)
      } pinned; it pins least (${bytes(best.pinnedBytesPeak)})`;
    }
    if (excluded.length > 0) reason += `. Excluded: ${excluded.join("; ")}`;
    out.push({
      workload,
      mode: best.mode,
      throughputBytesPerSec: best.throughputBytesPerSec,
      pinnedBytesPeak: best.pinnedBytesPeak,
      pinnedLimitBytes: limit,
      vmsPerHost: best.vmsPerHost,
      reason,
    });
  }
  return out;
}

function bytes(n: number): string {
  return formatSize(n);
}

function pct(f: number): string {
  return `${(f * 100).toFixed(f < 0.1 ? 1 : 0)}%`;
}
