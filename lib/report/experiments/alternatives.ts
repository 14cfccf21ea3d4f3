/**
 * The report's comparison of the five DMA designs (issue "Beyond the RFC"):
 * static pinning, IOPF, IOPF with the MMU notifier, a caching-mode vIOMMU
 * that pins what the guest maps, and coIOMMU, on the same workloads. Start
 * time, pinned memory over time, throughput over time, host events (faults,
 * traps, doorbells) per second, VMs per host, and the "which design for
 * which workload" table, all computed from the runs.
 *
 * @module
 */
import {
  compareScenarioJson,
  DEFAULT_COMPARE_WORKLOADS,
  modeRow,
  modeSeries,
  recommendDesigns,
} from "../../analysis/compare.ts";
import {
  type DensityOptions,
  type DensityRow,
  densityRowOf,
  densityScenarioJson,
  DESIGN_MODES,
  type DesignMode,
} from "../../analysis/density.ts";
import { formatRate } from "../../experiment/metrics.ts";
import type { JsonValue } from "../../experiment/scenario.ts";
import { barChart } from "../../plot/mod.ts";
import { facetLines } from "../../plot/mod.ts";
import type { Experiment } from "../experiment.ts";

const COIOMMU = { unpinPolicy: "lru", unpinInterval: "1ms" } as const;

/** The five designs on the compare workloads, with a density run per workload. */
export function alternatives(quick: boolean): Experiment {
  const base = quick
    ? { host: { memory: "2GiB" }, vm: { memory: "512MiB" } }
    : { host: { memory: "4GiB" }, vm: { memory: "1GiB" } };
  const vmMemory = quick ? 512 * 2 ** 20 : 2 ** 30;
  const workloads: Record<string, Record<string, unknown>> = quick
    ? {
      "nic-rx": { ...DEFAULT_COMPARE_WORKLOADS["nic-rx"], packets: 3000 },
      storage: { ...DEFAULT_COMPARE_WORKLOADS.storage, totalBytes: "16MiB" },
      accelerator: { ...DEFAULT_COMPARE_WORKLOADS.accelerator, messages: 12 },
    }
    : { ...DEFAULT_COMPARE_WORKLOADS };
  const density = quick
    ? { hostMemory: "512MiB", vmMemory: "128MiB", overcommit: 2 }
    : { hostMemory: "1GiB", vmMemory: "256MiB", overcommit: 2 };
  const order: { workload: string; mode: DesignMode }[] = [];
  const sets = Object.entries(workloads).flatMap(([name, workload]) =>
    DESIGN_MODES.map((mode) => {
      order.push({ workload: name, mode });
      return {
        json: compareScenarioJson(
          base,
          name,
          workload,
          mode,
          COIOMMU,
          true,
        ) as Readonly<
          Record<string, JsonValue>
        >,
      };
    })
  );
  // The density runs go to the report's workers like the others: one
  // scenario per workload and design, after the comparison runs.
  const densityOptions = (
    workload: Record<string, unknown>,
  ): DensityOptions => ({
    ...density,
    baseline: false,
    workloads: [workload],
    coiommu: COIOMMU,
    check: true,
  });
  const densityOrder: { workload: string; mode: DesignMode }[] = [];
  for (const [name, workload] of Object.entries(workloads)) {
    for (const mode of DESIGN_MODES) {
      densityOrder.push({ workload: name, mode });
      sets.push({
        json: {
          ...densityScenarioJson(densityOptions(workload), mode),
          name: `${name} density[${mode}]`,
        } as Readonly<Record<string, JsonValue>>,
      });
    }
  }
  return {
    id: "alternatives",
    title: "Beyond the RFC: five designs on the same workloads",
    question:
      "Which DMA design should a workload use: static pinning, IOPF, IOPF with the MMU notifier, a caching-mode vIOMMU that pins what the guest maps, or coIOMMU's shared DMA tracking table — judged on start time, pinned memory, throughput, host interventions and VMs per host?",
    shows: `Each workload runs once per design on the same ${
      quick ? "512 MiB" : "1 GiB"
    } guest: a NIC recycling its receive buffers (maps once), storage streaming into fresh page-cache pages (a map and unmap per block), an accelerator mapping fresh buffers per message. viommu-pin traps every guest map and unmap to the VMM, which calls VFIO MAP/UNMAP_DMA; coIOMMU marks its tracking table and rings a doorbell for pages not yet pinned, and unpins idle pages every 1 ms (LRU, scaled down from the 60 s default to runs that last milliseconds). VMs per host comes from a density run per workload (${density.vmMemory} VMs on a ${density.hostMemory} host at overcommit ${density.overcommit}: VMs that start and run without a DMA error). The recommendation picks, per workload, the fastest design that pinned at most a quarter of guest RAM without errors.`,
    sets,
    series: true,
    analyse(all) {
      const runs = all.slice(0, order.length);
      const densityRows: DensityRow[] = [];
      const healthy = new Map<string, number>();
      for (const [i, { workload: name, mode }] of densityOrder.entries()) {
        const r = densityRowOf(
          densityOptions(workloads[name]!),
          mode,
          all[order.length + i]!,
        );
        densityRows.push({ ...r, workload: name });
        healthy.set(`${name}/${mode}`, r.vmsHealthy);
      }
      const rows = runs.map((run, i) => {
        const { workload, mode } = order[i]!;
        return modeRow(
          workload,
          mode,
          run.metrics,
          vmMemory,
          healthy.get(`${workload}/${mode}`) ?? NaN,
        );
      });
      const series = runs.flatMap((run, i) =>
        modeSeries(order[i]!.workload, order[i]!.mode, run.series)
      );
      const recs = recommendDesigns(rows, {
        pinnedLimitBytes: 0.25 * vmMemory,
      });
      const pinned = facetLines(series, {
        x: "tNs",
        y: "pinnedBytes",
        series: "mode",
        seriesDomain: DESIGN_MODES,
        fx: "workload",
        xBreaks: true,
        xBreaksIgnore: ["static-pin"],
        step: true,
        yType: "symlog",
        xLabel: "time since VM start",
        yLabel: "pinned guest memory",
        title: "Pinned memory over time",
        subtitle:
          "Static pinning holds all guest RAM; the others pin what DMA uses, when it uses it",
        width: 960,
      });
      const thr = facetLines(series, {
        x: "tNs",
        y: "throughputBytesPerSec",
        series: "mode",
        seriesDomain: DESIGN_MODES,
        fx: "workload",
        xBreaks: true,
        xLabel: "time since VM start",
        yLabel: "DMA throughput",
        title: "Throughput over time",
        subtitle:
          "Static pinning's line starts after its start-up; IOPF ramps up as pages fault in",
        width: 960,
      });
      const events = barChart(rows, {
        x: "workload",
        y: "hostEventsPerSec",
        group: "mode",
        yUnit: "count",
        yLabel: "faults + traps + doorbells per second",
        title: "How often each design needs the host",
        subtitle:
          "Per second of the workload's run time (static pinning needs none)",
        width: 720,
      });
      const vms = barChart(densityRows.map((d) => ({ ...d })), {
        x: "workload",
        y: "vmsHealthy",
        group: "mode",
        yUnit: "count",
        yLabel: "VMs started and healthy",
        title: "VMs per host under overcommit",
        subtitle:
          `${density.vmMemory} VMs on a ${density.hostMemory} host, overcommit ${density.overcommit}`,
        width: 720,
      });
      const findings = recs.map((r) => `${r.workload}: ${r.reason}.`);
      const fastest =
        [...rows].sort((a, b) =>
          b.throughputBytesPerSec - a.throughputBytesPerSec
        )[0];
      if (fastest) {
        findings.push(
          `The fastest run overall was ${fastest.mode} on ${fastest.workload} at ${
            formatRate(fastest.throughputBytesPerSec)
          }.`,
        );
      }
      return {
        figures: [
          {
            id: "alternatives-pinned",
            figure: pinned,
            alt: "Pinned memory over time per design and workload",
          },
          {
            id: "alternatives-throughput",
            figure: thr,
            alt: "Throughput over time per design and workload",
          },
          {
            id: "alternatives-host-events",
            figure: events,
            alt: "Faults, traps and doorbells per second per design",
          },
          {
            id: "alternatives-density",
            figure: vms,
            alt: "Healthy VMs per host per design",
          },
        ],
        tables: [
          {
            id: "alternatives",
            title: "Five designs on three workloads",
            rows: rows,
          },
          {
            id: "alternatives-recommendation",
            title:
              "Which design for which workload (computed from the rows above)",
            rows: recs,
          },
          {
            id: "alternatives-density",
            title: "Density runs",
            // No one-VM baseline runs here: its two columns would be NaN.
            rows: densityRows.map((
              {
                aloneThroughputBytesPerSec: _alone,
                throughputCost: _cost,
                ...r
              },
            ) => r),
          },
        ],
        findings,
      };
    },
  };
}
