/**
 * The report's experiment: the fault latency breakdown.
 *
 * @module
 */
import type { Scenario } from "../../experiment/scenario.ts";
import { loadCostProfile } from "../../sim/costs.ts";
import { formatTime } from "../../sim/units.ts";
import { stackedBars } from "../../plot/mod.ts";
import {
  BREAKDOWN_SEGMENTS,
  breakdownInput,
  pricedBreakdown,
  REMAINDER,
  segmentTotals,
} from "../../analysis/breakdown.ts";
import type { Experiment, ScenarioSet } from "../experiment.ts";
import type { Row } from "../../plot/row.ts";
import { count, pct } from "./_util.ts";

function faultConfig(s: Scenario): string {
  const fault = s.device.fault === "pri" ? "PRI" : "stall";
  const stage = s.smmu.stage === "nested" ? "nested" : "s2";
  return `${fault}, ${stage}`;
}

/** The experiment "The fault latency breakdown", full or quick. */
export function faultLatency(quick: boolean): Experiment {
  const set: ScenarioSet = {
    json: {
      name: "fault-latency",
      host: { memory: "8GiB" },
      vm: { memory: "4GiB" },
      dma: { mode: "iopf", premapPages: 1 },
      guest: { stage1: "on-fault" },
      workload: {
        kind: "accelerator",
        messageSize: quick ? "64KiB" : "1MiB",
        messages: quick ? 4 : 16,
        reuseBuffers: false,
      },
      sweep: {
        "smmu.stage": ["s2", "nested"],
        "device.fault": ["stall", "pri"],
      },
    },
  };
  return {
    id: "fault-latency",
    title: "Where the microseconds of a fault go",
    question:
      "How long does an I/O page fault take from detection until the device's access completes, and which hops of the path cost what — stall versus PRI, single stage versus nested?",
    shows:
      "Each bar is one run (an accelerator streaming fresh 4 KiB-backed buffers, so every page faults once; one fault in flight at a time). The bar's height, marked above it, is the MEASURED mean fault latency of the run. The segments price the hops the fault path traverses with the cost profile (each hop's parameters times how often the run took it per faulting access: faults per access and descriptor reads per walk are measured), and \"queueing / other\" is the measured mean minus their sum. In nested mode a faulting access takes a stage-1 fault, forwarded to the guest, and then a stage-2 fault handled by VFIO.",
    sets: [set],
    series: false,
    analyse(runs) {
      const partRows: Row[] = [];
      const segRows: Row[] = [];
      const totals: { x: string; y: number }[] = [];
      const findings: string[] = [];
      for (const { scenario: s, metrics: m } of runs) {
        const config = faultConfig(s);
        const costs = loadCostProfile(s.costs);
        const input = breakdownInput(s, m, costs);
        const parts = pricedBreakdown(input);
        for (const p of parts) {
          partRows.push({
            configuration: config,
            fault: s.device.fault,
            stage: s.smmu.stage,
            segment: p.segment,
            hop: p.hop,
            costParameters: p.costs,
            hopNs: p.nsEach,
            perFaultingAccess: p.perAccess,
            contributionNs: p.ns,
            measuredMeanNs: m.faultLatencyNs.mean,
          });
        }
        for (const t of segmentTotals(parts)) {
          segRows.push({ configuration: config, segment: t.segment, ns: t.ns });
        }
        totals.push({ x: config, y: m.faultLatencyNs.mean });
        const rest = parts.find((p) => p.segment === REMAINDER)!.ns;
        findings.push(
          `${config}: measured mean ${formatTime(m.faultLatencyNs.mean)} (p99 ${
            formatTime(m.faultLatencyNs.p99)
          }) over ${
            count(m.extra?.faultLatencySamples ?? 0)
          } faulting accesses, ${
            input.stage1FaultsPerAccess.toFixed(2)
          } stage-1 and ${
            input.stage2FaultsPerAccess.toFixed(2)
          } stage-2 faults each; the priced hops explain all but ${
            formatTime(Math.abs(rest))
          } (${pct(Math.abs(rest) / Math.max(1, m.faultLatencyNs.mean))}${
            rest < 0 ? ", over" : ""
          }).`,
        );
      }
      const fig = stackedBars(segRows, {
        x: "configuration",
        y: "ns",
        fill: "segment",
        fillDomain: BREAKDOWN_SEGMENTS,
        xDomain: totals.map((t) => t.x),
        totals,
        yUnit: "ns",
        xLabel:
          "fault delivery, translation (s2: single stage; nested: stage 1 in the guest)",
        yLabel: "mean fault latency",
        title: "Fault latency breakdown: where the microseconds go",
        subtitle:
          "Segments: cost-profile prices of the hops taken; total: the measured mean; remainder: queueing / other",
        width: 820,
        height: 440,
      });
      return {
        figures: [{
          id: "fault-latency",
          figure: fig,
          alt:
            "Stacked bars of the mean fault latency by hop, per configuration",
        }],
        tables: [
          {
            id: "fault-latency",
            title:
              "Breakdown by hop: cost parameters, traversals per faulting access, contribution",
            rows: partRows,
          },
          {
            id: "fault-latency-segments",
            title: "Breakdown by segment (the figure's data)",
            rows: segRows,
          },
        ],
        findings,
      };
    },
  };
}
