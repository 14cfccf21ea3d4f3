/**
 * Small analyses the notebooks share: tidy rows from sweep results, labels
 * for sweep points, VM density on a host, a fault-latency breakdown by
 * layer (each layer's costs made free in turn), and wide rows to long ones.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseScenario } from "../experiment/scenario.ts";
 * import { ablationBreakdown } from "./tidy.ts";
 * const parts = ablationBreakdown(parseScenario({
 *   vm: { memory: "64MiB" },
 *   dma: { mode: "iopf" },
 *   workload: { kind: "accelerator", messageSize: "16KiB", messages: 2 },
 * }));
 * assert(parts.some((p) => p.part === "VFIO handler" && p.latencyNs > 0));
 * ```
 *
 * @module
 */
import { COST_NAMES, describeCosts } from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import {
  type FlatMetrics,
  flattenMetrics,
  type Metrics,
  type SeriesRow,
} from "../experiment/metrics.ts";
import type { Scenario } from "../experiment/scenario.ts";
import { runScenario } from "../experiment/run.ts";
import { formatCell } from "./format.ts";
import { getPath, type Row } from "../plot/row.ts";
import type { RunResult } from "../experiment/sweep.ts";

/**
 * A run's label: its swept values (`dma.mode=iopf, vm.memory=4 GiB`, sizes
 * formatted as in tables), only those of `keys` when given, or its name
 * when it is not a sweep point.
 */
export function pointLabel(run: Metrics, keys?: readonly string[]): string {
  if (run.sweepPoint === undefined) return run.name;
  const point = run.sweepPoint;
  return (keys ?? Object.keys(point))
    .filter((k) => Object.hasOwn(point, k))
    .map((k) => `${k}=${formatCell(k, point[k])}`)
    .join(", ");
}

/**
 * Tidy rows of a sweep's results, for charts and tables: each run's
 * flattened metrics (`faults.total`, `extra.containerLockWaits`), its swept
 * values under their own paths (`"dma.mode": "iopf"`, as written in the
 * sweep; booleans as "true"/"false"), its label as `point` and its
 * scenario's name without the sweep suffix as `scenario`.
 */
export function sweepRows(runs: readonly Metrics[]): FlatMetrics[] {
  return runs.map((run) => {
    const row: FlatMetrics = {
      scenario: run.sweepPoint === undefined
        ? run.name
        : run.name.replace(/\[[^\]]*\]$/, ""),
      point: pointLabel(run),
    };
    for (const [k, v] of Object.entries(run.sweepPoint ?? {})) {
      row[k] = typeof v === "number" || typeof v === "string"
        ? v
        : JSON.stringify(v);
    }
    return { ...row, ...flattenMetrics(run) };
  });
}

/** Options of {@linkcode meltRows}. */
export interface MeltRowsOptions {
  /** Fields copied from each row into each of its long rows. [[]] */
  readonly keep?: readonly string[];
  /**
   * Fields to melt, each to the label it gets in the `key` column
   * (`{ "faults.stage1": "stage 1" }`), or a list of fields labelled by
   * their own names.
   */
  readonly fields: Readonly<Record<string, string>> | readonly string[];
  /** Name of the column naming the melted field. ["field"] */
  readonly key?: string;
  /** Name of the column holding its value. ["value"] */
  readonly value?: string;
}

/**
 * Wide rows to long rows (one per row and melted field), the shape grouped
 * bar charts take: `{point, "faults.stage1": 3, "faults.stage2": 5}` becomes
 * `{point, field: "faults.stage1", value: 3}` and `{point, field:
 * "faults.stage2", value: 5}`. Fields are read by key or dotted path.
 */
export function meltRows(
  rows: readonly Row[],
  options: MeltRowsOptions,
): Record<string, unknown>[] {
  const key = options.key ?? "field";
  const value = options.value ?? "value";
  const fields: [string, string][] = Array.isArray(options.fields)
    ? (options.fields as readonly string[]).map((f) => [f, f])
    : Object.entries(options.fields);
  return rows.flatMap((row) =>
    fields.map(([f, label]) => {
      const out: Record<string, unknown> = {};
      for (const k of options.keep ?? []) out[k] = getPath(row, k);
      out[key] = label;
      out[value] = getPath(row, f);
      return out;
    })
  );
}

/**
 * The time series of several runs as one list of tidy rows, each run's rows
 * named by its {@linkcode pointLabel} (so a chart's legend shows the swept
 * values rather than the full scenario name); `keys` picks the swept values
 * shown.
 */
export function seriesRows(
  results: readonly RunResult[],
  keys?: readonly string[],
): SeriesRow[] {
  return results.flatMap((r) => {
    const name = pointLabel(r.metrics, keys);
    return r.series.map((row) => ({ ...row, name }));
  });
}

/**
 * Host RAM one VM of a run needs: the most RAM populated for it or locked
 * for it (static pinning locks all guest RAM; IOPF only what the device
 * touched), divided among the VMs that started.
 */
export function vmFootprintBytes(run: Metrics): number {
  const vms = Math.max(1, run.extra?.["vmsStarted"] ?? 1);
  return Math.max(run.hostMemoryPeakBytes, run.lockedBytesPeak) / vms;
}

/**
 * How many VMs like the run's fit on a host with `hostMemory` bytes of RAM,
 * counting only guest memory the host had to provide
 * ({@linkcode vmFootprintBytes}); Infinity when the run populated nothing.
 * The guests' CPU-side use of their RAM is not modelled: this is the limit
 * DMA mapping imposes.
 */
export function vmDensity(run: Metrics, hostMemory: number): number {
  if (!(hostMemory > 0)) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot compute VM density: host memory must be more than 0 bytes, got ${hostMemory}`,
    );
  }
  const footprint = vmFootprintBytes(run);
  return footprint === 0 ? Infinity : Math.floor(hostMemory / footprint);
}

/** One part of a {@linkcode ablationBreakdown}. */
export interface LatencyPart {
  /** What the part stands for ("VFIO handler"), or "the rest". */
  readonly part: string;
  /** The cost parameters made free to measure it (empty for the rest). */
  readonly costs: readonly string[];
  /** How much the measured latency dropped when they were free, ns. */
  readonly latencyNs: number;
  /** `latencyNs` as a fraction of the measured latency. */
  readonly share: number;
}

/** Options of {@linkcode ablationBreakdown}. */
export interface AblationBreakdownOptions {
  /**
   * Parts by label, each a list of cost-name prefixes (`"vfio."`) or names.
   * Only time costs (units in ns) are made free. [{@linkcode LATENCY_PARTS}]
   */
  readonly parts?: Readonly<Record<string, readonly string[]>>;
  /** What to measure on each run. [the mean fault latency] */
  readonly measure?: (run: Metrics) => number;
  /** Keep parts that changed nothing. [false] */
  readonly keepZero?: boolean;
}

/**
 * The layers of the fault path, by cost-name prefix: the SMMU (hardware
 * and driver), PCIe ATS/PRI messages, the IOMMU core's IOPF queue, VFIO's
 * fault handler, the host mm (fault-in, zeroing, pinning), IOMMU map and
 * unmap, and the VMM and guest (nested stage-1 faults).
 */
export const LATENCY_PARTS: Readonly<Record<string, readonly string[]>> = {
  "SMMU": ["smmu."],
  "PCIe ATS/PRI": ["pci."],
  "IOPF queue": ["iopf."],
  "VFIO handler": ["vfio."],
  "host mm": ["mm."],
  "iommu_map": ["iommu."],
  "VMM + guest": ["vmm.", "guest."],
};

/**
 * Where a fault's latency goes, layer by layer: runs the scenario once as
 * it is, then once per part with that part's time costs set to 0, and
 * reports how much the measured latency dropped each time. The last row,
 * "the rest", is what no part accounts for: the device's own transfer,
 * queueing behind other faults, and interactions between parts (it can be
 * negative when making one part free also shortens queues elsewhere).
 * Runs `1 + parts` simulations of the scenario; keep it small.
 */
export function ablationBreakdown(
  scenario: Scenario,
  options: AblationBreakdownOptions = {},
): LatencyPart[] {
  if (scenario.sweep.length > 0 && scenario.sweepPoint === undefined) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot break down the latency of ${scenario.name}: it has a sweep; pass one point of expandSweep()`,
      "sweep",
    );
  }
  const measure = options.measure ?? ((m: Metrics) => m.faultLatencyNs.mean);
  const parts = options.parts ?? LATENCY_PARTS;
  const described = describeCosts();
  const timeCosts = COST_NAMES.filter((n) => /^ns\b/.test(described[n].unit));
  const base = measure(runScenario(scenario));
  const out: LatencyPart[] = [];
  let explained = 0;
  for (const [part, prefixes] of Object.entries(parts)) {
    const costs = timeCosts.filter((n) =>
      prefixes.some((p) => n === p || (p.endsWith(".") && n.startsWith(p)))
    );
    if (costs.length === 0) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot break down the latency: part ${
          JSON.stringify(part)
        } names no time cost (${prefixes.join(", ")})`,
      );
    }
    const free = Object.fromEntries(costs.map((n) => [n, 0]));
    const ns = base -
      measure(runScenario({
        ...scenario,
        costs: { ...scenario.costs, ...free },
      }));
    explained += ns;
    if (ns !== 0 || options.keepZero) {
      out.push({
        part,
        costs,
        latencyNs: ns,
        share: base === 0 ? 0 : ns / base,
      });
    }
  }
  const rest = base - explained;
  out.push({
    part: "the rest",
    costs: [],
    latencyNs: rest,
    share: base === 0 ? 0 : rest / base,
  });
  return out;
}
