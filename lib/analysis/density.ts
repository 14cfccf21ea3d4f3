/**
 * VM density under overcommit: on a host of fixed memory, start more VMs
 * than it could pin and see, for each DMA design, how many start, how many
 * run their workload without DMA errors, and what sharing the host costs in
 * throughput. Everything comes out of the simulated machine (pinning,
 * host-wide reclaim, IOPF, traps, the coIOMMU threads); nothing here is a
 * formula of the answer.
 *
 * @module
 */
import { IopfLabError } from "../sim/errors.ts";
import { parseSize } from "../sim/units.ts";
import type { Machine } from "../experiment/machine.ts";
import type { Metrics } from "../experiment/metrics.ts";
import { runScenario, runScenarioWithSeries } from "../experiment/run.ts";
import { parseScenario, type WorkloadConfig } from "../experiment/scenario.ts";

/**
 * The five DMA designs compared: static pinning, IOPF (the RFC, pins kept),
 * IOPF with the MMU notifier (pins dropped, mappings reclaimable), a
 * caching-mode vIOMMU that pins what the guest maps, and coIOMMU.
 */
export type DesignMode =
  | "static-pin"
  | "iopf"
  | "iopf+notifier"
  | "viommu-pin"
  | "coiommu";

/** Every design, in the order reports show them. */
export const DESIGN_MODES: readonly DesignMode[] = [
  "static-pin",
  "iopf",
  "iopf+notifier",
  "viommu-pin",
  "coiommu",
];

/** coIOMMU settings of a comparison (scenario `dma.coiommu*` fields). */
export interface CoiommuDesignOptions {
  /** Unpin policy. Default `"off"`, the backend's own default. */
  readonly unpinPolicy?: "off" | "lru";
  /** Unpin interval, ns or a time string. Default "60s". */
  readonly unpinInterval?: number | string;
  /** Generation threshold. Default 10. */
  readonly generationThreshold?: number;
}

/** The scenario `dma` section of a design. */
export function designDma(
  mode: DesignMode,
  coiommu: CoiommuDesignOptions = {},
): Record<string, unknown> {
  switch (mode) {
    case "static-pin":
    case "iopf":
    case "viommu-pin":
      return { mode };
    case "iopf+notifier":
      return { mode: "iopf", mmuNotifier: true };
    case "coiommu":
      return {
        mode,
        ...(coiommu.unpinPolicy !== undefined
          ? { coiommuUnpinPolicy: coiommu.unpinPolicy }
          : {}),
        ...(coiommu.unpinInterval !== undefined
          ? { coiommuUnpinInterval: coiommu.unpinInterval }
          : {}),
        ...(coiommu.generationThreshold !== undefined
          ? { coiommuGenerationThreshold: coiommu.generationThreshold }
          : {}),
      };
    default:
      throw new IopfLabError(
        "EINVAL",
        `Cannot use design ${JSON.stringify(mode)}: expected one of ${
          DESIGN_MODES.join(", ")
        }`,
      );
  }
}

/** The workload of {@linkcode densityExperiment} when none is given: page-cache streaming. */
export const DEFAULT_DENSITY_WORKLOAD: Readonly<Record<string, unknown>> = {
  kind: "storage",
  blockSize: "128KiB",
  totalBytes: "16MiB",
  freshBuffers: true,
  queueDepth: 8,
};

/** Options of {@linkcode densityExperiment}. */
export interface DensityOptions {
  /** Host RAM, bytes or a size string. Default "8GiB". */
  readonly hostMemory?: number | string;
  /** RAM of each VM, bytes or a size string. Default "3GiB". */
  readonly vmMemory?: number | string;
  /**
   * Total VM RAM over host RAM: the experiment starts
   * floor(overcommit × host / vm) VMs (1..64). Default 1.5.
   */
  readonly overcommit?: number;
  /** Number of VMs to start, overriding `overcommit` (1..64). */
  readonly vms?: number;
  /** Designs to run. Default all of {@linkcode DESIGN_MODES}. */
  readonly modes?: readonly DesignMode[];
  /**
   * The workload mix as scenario workload JSON: VM i runs
   * `workloads[i % workloads.length]`. Default one
   * {@linkcode DEFAULT_DENSITY_WORKLOAD} on every VM.
   */
  readonly workloads?: readonly Readonly<Record<string, unknown>>[];
  /**
   * Scenario JSON for everything else (device, smmu, host backing,
   * memlockLimit, costs, seed); its host.memory, vm, dma and workload are
   * set by the experiment. Default {}.
   */
  readonly scenario?: Readonly<Record<string, unknown>>;
  /** coIOMMU settings. Default: the scenario defaults (unpin policy off). */
  readonly coiommu?: CoiommuDesignOptions;
  /** Also run one VM alone per design, for the throughput cost. Default true. */
  readonly baseline?: boolean;
  /** Run the sanitizer and invariant checks (`check: true`). Default true. */
  readonly check?: boolean;
}

/** One design's outcome on the overcommitted host. */
export interface DensityRow {
  /** The design. */
  readonly mode: DesignMode;
  /** The workload kinds of the mix, joined with "+". */
  readonly workload: string;
  /** Host RAM in bytes. */
  readonly hostMemoryBytes: number;
  /** RAM of each VM in bytes. */
  readonly vmMemoryBytes: number;
  /** VMs asked for. */
  readonly vmsRequested: number;
  /** Total VM RAM over host RAM. */
  readonly overcommit: number;
  /** VMs that started. */
  readonly vmsStarted: number;
  /** VMs that could not start (their RAM could not be pinned). */
  readonly vmsFailed: number;
  /** VMs that started and ran their workload without a DMA error. */
  readonly vmsHealthy: number;
  /** Time until every VM was started or had failed (ns). */
  readonly setupNs: number;
  /** Time from then until the last workload completed (ns). */
  readonly runNs: number;
  /** Bytes moved by all devices over runNs, per second. */
  readonly throughputBytesPerSec: number;
  /** Mean over started VMs of each VM's bytes over its own run time, per second. */
  readonly throughputPerVmBytesPerSec: number;
  /** VM 0's throughput when it runs alone on the host in this design (NaN without baseline). */
  readonly aloneThroughputBytesPerSec: number;
  /** 1 - VM 0's throughput here / alone: the share of throughput lost to the other VMs (NaN without baseline or when VM 0 failed). */
  readonly throughputCost: number;
  /** Sum over the VMs of each one's pinned peak (a VM that failed counts what it pinned before failing). */
  readonly pinnedPagesPeak: number;
  /** Pages pinned when the workloads ended, all VMs. */
  readonly pinnedPagesEnd: number;
  /** Host RAM populated for guests at the peak, bytes. */
  readonly hostMemoryPeakBytes: number;
  /** Pages the host swapped out (reclaim across the VMs). */
  readonly swapOuts: number;
  /** Pages unmapped by MMU notifiers (reclaim of IOPF mappings). */
  readonly notifierUnmappedPages: number;
  /** Device accesses that failed, all VMs. */
  readonly dmaErrors: number;
  /** Isolation violations (0 in strict mode). */
  readonly isolationViolations: number;
  /** Why VMs failed to start, one line per VM. */
  readonly errors: readonly string[];
}

/** Scenario JSON with `patch` merged into its sections (one level deep). */
export function mergeScenarioJson(
  base: Readonly<Record<string, unknown>>,
  patch: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) && k !== "workload"
      ? { ...b, ...v }
      : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Runs the density experiment: for each design, `vms` VMs of `vmMemory` on
 * a host of `hostMemory`, the workload mix spread over them, and (with
 * `baseline`) one VM alone for comparison. Returns one row per design.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { densityExperiment } from "./density.ts";
 * const rows = densityExperiment({
 *   hostMemory: "256MiB", vmMemory: "96MiB", vms: 4,
 *   modes: ["static-pin", "viommu-pin"],
 *   workloads: [{ kind: "accelerator", messageSize: "64KiB", messages: 4, reuseBuffers: false }],
 *   baseline: false,
 * });
 * assert(rows[0]!.vmsStarted === 2 && rows[1]!.vmsStarted === 4);
 * ```
 */
export function densityExperiment(options: DensityOptions = {}): DensityRow[] {
  const host = parseSize(options.hostMemory ?? "8GiB", "hostMemory");
  const vmMem = parseSize(options.vmMemory ?? "3GiB", "vmMemory");
  const over = options.overcommit ?? 1.5;
  if (options.vms === undefined && !(over > 0 && Number.isFinite(over))) {
    throw new IopfLabError(
      "EINVAL",
      `overcommit: expected a positive number, got ${over}`,
      "overcommit",
    );
  }
  const vms = options.vms ??
    Math.max(1, Math.min(64, Math.floor((over * host) / vmMem)));
  const modes = options.modes ?? DESIGN_MODES;
  const mixJson = options.workloads ?? [DEFAULT_DENSITY_WORKLOAD];
  if (mixJson.length === 0) {
    throw new IopfLabError(
      "EINVAL",
      "workloads: expected at least one workload",
      "workloads",
    );
  }
  const rows: DensityRow[] = [];
  for (const mode of modes) {
    const json = mergeScenarioJson(options.scenario ?? {}, {
      name: `density[${mode}]`,
      host: { memory: host },
      vm: { memory: vmMem, count: vms },
      dma: designDma(mode, options.coiommu),
      workload: mixJson[0]!,
      check: options.check ?? true,
    });
    const scenario = parseScenario(json);
    const mix: WorkloadConfig[] = mixJson.map((w, i) =>
      parseScenario({ ...json, workload: w }, {
        defaultName: `workload ${i}`,
      }).workload
    );
    let perVm: { started: boolean; errors: number; tput: number }[] = [];
    const { metrics } = runScenarioWithSeries(scenario, {
      seriesPoints: 4,
      workloads: mix,
      inspect: (m) => (perVm = vmOutcomes(m)),
    });
    let alone = NaN;
    if (options.baseline ?? true) {
      alone = runScenario(
        parseScenario(
          mergeScenarioJson(json, {
            name: `density[${mode}] alone`,
            vm: { memory: vmMem, count: 1 },
          }),
        ),
      ).throughputBytesPerSec;
    }
    rows.push(densityRow(mode, metrics, perVm, {
      host,
      vmMem,
      vms,
      alone,
      workload: mix.map((w) => w.kind).join("+"),
    }));
  }
  return rows;
}

function vmOutcomes(
  m: Machine,
): { started: boolean; errors: number; tput: number }[] {
  const start = Math.max(
    0,
    ...m.vms.map((v) => Math.max(v.setupDoneAt, v.touchDoneAt)),
  );
  return m.vms.map((vm) => {
    const t = vm.runDoneAt - start;
    const bytes = vm.device.stats.bytes;
    return {
      started: vm.started,
      errors: vm.device.stats.dmaErrors,
      tput: vm.started && t > 0 ? (bytes / t) * 1e9 : 0,
    };
  });
}

function densityRow(
  mode: DesignMode,
  m: Metrics,
  perVm: readonly { started: boolean; errors: number; tput: number }[],
  o: {
    host: number;
    vmMem: number;
    vms: number;
    alone: number;
    workload: string;
  },
): DensityRow {
  const started = perVm.filter((v) => v.started);
  const vm0 = perVm[0];
  const x = m.extra ?? {};
  return {
    mode,
    workload: o.workload,
    hostMemoryBytes: o.host,
    vmMemoryBytes: o.vmMem,
    vmsRequested: o.vms,
    overcommit: (o.vms * o.vmMem) / o.host,
    vmsStarted: started.length,
    vmsFailed: perVm.length - started.length,
    vmsHealthy: started.filter((v) => v.errors === 0).length,
    setupNs: m.setupNs,
    runNs: m.runNs,
    throughputBytesPerSec: m.throughputBytesPerSec,
    throughputPerVmBytesPerSec: started.length > 0
      ? started.reduce((a, v) => a + v.tput, 0) / started.length
      : 0,
    aloneThroughputBytesPerSec: o.alone,
    throughputCost: vm0 && vm0.started && o.alone > 0
      ? 1 - vm0.tput / o.alone
      : NaN,
    pinnedPagesPeak: m.pinnedPagesPeak,
    pinnedPagesEnd: m.pinnedPagesEnd,
    hostMemoryPeakBytes: m.hostMemoryPeakBytes,
    swapOuts: x.swapOuts ?? 0,
    notifierUnmappedPages: x.notifierUnmappedPages ?? 0,
    dmaErrors: m.dmaErrors,
    isolationViolations: m.isolationViolations,
    errors: m.errors ?? [],
  };
}
