/**
 * The report's "RFC vs mainline" section (issue 14): the same workloads on
 * type1 static pinning, type1 IOPF (the 2021 RFC), an iommufd pinned IOAS
 * (mainline), iommufd nested with stage-1 faults forwarded to the guest
 * through the fault queue (mainline, Linux 6.11/6.13), and IOPF on an
 * iommufd paging HWPT (a what-if). Start time, pinned memory, fault latency
 * by hop and VMs per host, every configuration labelled with the status its
 * runs report.
 *
 * @module
 */
import {
  RFC_VS_MAINLINE_MODES,
  rfcVsMainlineDensityJson,
  rfcVsMainlineDensityRow,
  rfcVsMainlineHops,
  rfcVsMainlineJson,
  type RfcVsMainlineMode,
  type RfcVsMainlineRow,
  rfcVsMainlineRow,
} from "../../analysis/rfc_vs_mainline.ts";
import { BREAKDOWN_SEGMENTS } from "../../analysis/breakdown.ts";
import type { JsonValue } from "../../experiment/scenario.ts";
import { barChart, stackedBars } from "../../plot/mod.ts";
import { formatSize, formatTime } from "../../sim/units.ts";
import type { Experiment } from "../experiment.ts";
import { need, pct } from "./_util.ts";

/** The five configurations on two workloads, and a density run. */
export function rfcVsMainline(quick: boolean): Experiment {
  const vmMemory = quick ? 256 * 2 ** 20 : 2 ** 30;
  const base = {
    host: { memory: quick ? "1GiB" : "4GiB" },
    vm: { memory: vmMemory },
  };
  const workloads: Record<string, Record<string, unknown>> = {
    accelerator: {
      kind: "accelerator",
      messageSize: "1MiB",
      messages: quick ? 8 : 40,
      reuseBuffers: true,
    },
    storage: {
      kind: "storage",
      blockSize: "128KiB",
      totalBytes: quick ? "8MiB" : "64MiB",
      freshBuffers: true,
    },
  };
  const density = quick
    ? { hostMemory: "512MiB", vmMemory: "128MiB", overcommit: 2 }
    : { hostMemory: "1GiB", vmMemory: "256MiB", overcommit: 2 };
  const order: { workload: string; mode: RfcVsMainlineMode }[] = [];
  const sets = Object.entries(workloads).flatMap(([name, w]) =>
    RFC_VS_MAINLINE_MODES.map((mode) => {
      order.push({ workload: name, mode });
      return {
        json: rfcVsMainlineJson(base, name, w, mode) as Readonly<
          Record<string, JsonValue>
        >,
      };
    })
  );
  // The density runs go to the report's workers too (not listed in the
  // section: supporting runs), one per configuration.
  const densityOptions = { ...density, workload: workloads.accelerator! };
  const supportingSets = RFC_VS_MAINLINE_MODES.map((mode) => ({
    json: rfcVsMainlineDensityJson(densityOptions, mode) as Readonly<
      Record<string, JsonValue>
    >,
  }));
  return {
    id: "rfc-vs-mainline",
    title: "RFC vs mainline: type1 IOPF, iommufd, and the what-if",
    question:
      "What did the 2021 RFC's IOPF on VFIO type1 promise, what does mainline iommufd give instead (every IOAS mapping pinned; faults forwarded to user space only for a nested HWPT's stage 1), and what would IOPF on an iommufd paging HWPT buy?",
    shows: `Each workload runs on a ${
      formatSize(vmMemory)
    } guest in five configurations; the label after each name is the status the run reports (metrics.design.status): mainline, rfc, or what-if. Nested runs fill the guest's stage 1 on fault, so every first touch of a buffer page is a stage-1 fault that travels SMMU -> IOMMU core -> iommufd fault queue -> QEMU (read of a 40-byte record) -> vSMMU -> guest -> CMD_RESUME trap -> write of the 8-byte response. Fault latency by hop prices each hop from the cost profile and closes with the measured mean. VMs per host comes from a density run (${density.vmMemory} VMs on a ${density.hostMemory} host at overcommit ${density.overcommit}: VMs that start and run without a DMA error).`,
    sets,
    series: false,
    supportingSets,
    analyse(runs, supporting) {
      const rows: RfcVsMainlineRow[] = runs.map((r, i) =>
        rfcVsMainlineRow(
          order[i]!.workload,
          order[i]!.mode,
          r.metrics,
          vmMemory,
        )
      );
      const name = (r: { mode: string; status: string }) =>
        `${r.mode} (${r.status})`;
      const status = new Map(rows.map((r) => [r.mode, r.status]));
      const labelled = rows.map((r) => ({ ...r, configuration: name(r) }));
      const xDomain = RFC_VS_MAINLINE_MODES.map((m) =>
        name({ mode: m, status: need(status.get(m), `the ${m} runs`) })
      );
      const hops = runs.flatMap((r, i) =>
        rfcVsMainlineHops(
          order[i]!.workload,
          order[i]!.mode,
          r.scenario,
          r.metrics,
        )
      );
      const hopWorkload = "accelerator";
      const segRows: { configuration: string; segment: string; ns: number }[] =
        [];
      const totals: { x: string; y: number }[] = [];
      for (const mode of RFC_VS_MAINLINE_MODES) {
        const mine = hops.filter((h) =>
          h.mode === mode && h.workload === hopWorkload
        );
        if (mine.length === 0) continue;
        const x = name({ mode, status: status.get(mode)! });
        for (const segment of BREAKDOWN_SEGMENTS) {
          const part = mine.filter((h) => h.segment === segment);
          if (part.length === 0) continue;
          const ns = part.reduce((a, h) => a + h.ns, 0);
          segRows.push({ configuration: x, segment, ns });
        }
        const row = rows.find((r) =>
          r.mode === mode && r.workload === hopWorkload
        )!;
        totals.push({ x, y: row.faultLatencyMeanNs });
      }
      const dens = RFC_VS_MAINLINE_MODES.map((mode, i) =>
        rfcVsMainlineDensityRow(densityOptions, mode, supporting[i]!)
      ).map((d) => ({
        ...d,
        configuration: name({ mode: d.mode, status: status.get(d.mode)! }),
      }));
      const start = barChart(labelled, {
        x: "configuration",
        y: "setupNs",
        group: "workload",
        logY: true,
        yUnit: "ns",
        yLabel: "VM start (guest RAM ready for DMA)",
        title: "Start time",
        subtitle:
          "Pinned designs pin all guest RAM before the guest runs; IOPF designs start at once",
        width: 820,
      });
      const pinned = barChart(labelled, {
        x: "configuration",
        y: "pinnedBytesPeak",
        group: "workload",
        yUnit: "bytes",
        yLabel: "most guest memory pinned at once",
        title: "Pinned memory",
        subtitle: "Mainline iommufd pins every IOAS mapping, nested or not",
        width: 820,
      });
      const latency = stackedBars(segRows, {
        x: "configuration",
        y: "ns",
        fill: "segment",
        fillDomain: BREAKDOWN_SEGMENTS,
        xDomain: totals.map((t) => t.x),
        totals,
        yUnit: "ns",
        xLabel: `configurations that fault (${hopWorkload} workload)`,
        yLabel: "mean fault latency",
        title: "Fault latency by hop",
        subtitle:
          "Segments: cost-profile prices of the hops taken; total: the measured mean",
        width: 820,
        height: 440,
      });
      const vms = barChart(dens, {
        x: "configuration",
        y: "vmsHealthy",
        yUnit: "count",
        yLabel: "VMs started and healthy",
        title: "VMs per host under overcommit",
        subtitle:
          `${density.vmMemory} VMs on a ${density.hostMemory} host, overcommit ${density.overcommit}`,
        width: 820,
      });
      const findings = rfcVsMainlineFindings(rows, dens, xDomain);
      return {
        figures: [
          {
            id: "rfc-vs-mainline-start",
            figure: start,
            alt: "VM start time per configuration and workload",
          },
          {
            id: "rfc-vs-mainline-pinned",
            figure: pinned,
            alt: "Peak pinned guest memory per configuration and workload",
          },
          {
            id: "rfc-vs-mainline-latency",
            figure: latency,
            alt: "Mean fault latency by hop per configuration",
          },
          {
            id: "rfc-vs-mainline-density",
            figure: vms,
            alt: "Healthy VMs per host per configuration",
          },
        ],
        tables: [
          {
            id: "rfc-vs-mainline",
            title:
              "Five configurations on two workloads (status from each run's metrics.design)",
            rows: labelled,
          },
          {
            id: "rfc-vs-mainline-hops",
            title:
              "Mean fault latency by hop (priced, closed by the measured mean)",
            rows: hops,
          },
          {
            id: "rfc-vs-mainline-density",
            title: "Density runs",
            rows: dens,
          },
        ],
        findings,
      };
    },
  };
}

/** Sentences computed from the rows. */
function rfcVsMainlineFindings(
  rows: readonly RfcVsMainlineRow[],
  dens: readonly { mode: string; vmsHealthy: number; vmsRequested: number }[],
  names: readonly string[],
): string[] {
  const get = (mode: RfcVsMainlineMode, workload = "accelerator") =>
    need(
      rows.find((r) => r.mode === mode && r.workload === workload),
      `the ${mode} run of ${workload}`,
    );
  const out: string[] = [];
  const t1 = get("type1-static"), fd = get("iommufd-pinned");
  out.push(
    `Mainline iommufd with a pinned IOAS starts in ${
      formatTime(fd.setupNs)
    } and pins ${pct(fd.pinnedShare)} of guest RAM, as type1 static pinning (${
      formatTime(t1.setupNs)
    }, ${pct(t1.pinnedShare)}).`,
  );
  const rfc = get("type1-iopf"), wi = get("iommufd-iopf");
  out.push(
    `The RFC's type1 IOPF pins ${
      pct(rfc.pinnedShare)
    } and the iommufd what-if ${
      pct(wi.pinnedShare)
    } of guest RAM on the accelerator workload, with a mean fault latency of ${
      formatTime(rfc.faultLatencyMeanNs)
    } and ${formatTime(wi.faultLatencyMeanNs)}; neither is in any kernel.`,
  );
  const nest = get("iommufd-nested");
  out.push(
    `iommufd nested (${nest.status}) forwards ${nest.stage1Faults} stage-1 faults to the guest at a mean of ${
      formatTime(nest.faultLatencyMeanNs)
    }, while still pinning ${pct(nest.pinnedShare)} of guest RAM.`,
  );
  for (const d of dens) {
    out.push(
      `${
        names.find((n) => n.startsWith(`${d.mode} `)) ?? d.mode
      }: ${d.vmsHealthy} of ${d.vmsRequested} VMs healthy on the overcommitted host.`,
    );
  }
  return out;
}
