/**
 * The report's experiment: Throughput ramp-up after VM start.
 *
 * @module
 */
import { formatRate } from "../../experiment/metrics.ts";
import type { Scenario } from "../../experiment/scenario.ts";
import { formatSize, formatTime, parseSize } from "../../sim/units.ts";
import { facetLines } from "../../plot/mod.ts";
import type { Experiment } from "../experiment.ts";
import type { Row } from "../../plot/row.ts";
import { count } from "./_util.ts";

function rampConfig(s: Scenario): string {
  if (s.dma.mode === "static-pin") return "static pin";
  return s.dma.premapPages > 1 ? `IOPF, pre-map ${s.dma.premapPages}` : "IOPF";
}

/** The experiment "Throughput ramp-up after VM start", full or quick. */
export function rampUp(quick: boolean): Experiment {
  const guest = quick ? "4GiB" : "16GiB";
  const workingSet = quick ? "512MiB" : "2GiB";
  const accesses = quick ? 600_000 : 4_000_000;
  const depth = 16;
  const json = {
    name: "ramp-up",
    host: { memory: "64GiB" },
    vm: { memory: guest },
    workload: {
      kind: "random",
      workingSet,
      accesses,
      accessSize: "4KiB",
      distribution: "uniform",
      queueDepth: depth,
    },
  };
  return {
    id: "ramp-up",
    title: "Throughput over time after VM start",
    question:
      "What does the device's throughput look like from the moment the VM starts — static pinning (nothing until every page is pinned, then full rate) against IOPF (at once, ramping up as pages fault in)?",
    shows: `A device reads and writes 4 KiB at random over a ${
      formatSize(parseSize(workingSet))
    } working set of a ${
      formatSize(parseSize(guest))
    } guest (${depth} accesses in flight). Time runs from VM start, so static pinning's setup shows as time without throughput. Throughput is averaged over each sampling interval of the run's time series.`,
    sets: [
      {
        json: {
          ...json,
          dma: { mode: "static-pin" },
        },
      },
      {
        json: {
          ...json,
          name: "ramp-up-iopf",
          dma: { mode: "iopf" },
          sweep: { "dma.premapPages": [1, 512] },
        },
      },
    ],
    series: true,
    analyse(runs) {
      const rows: Row[] = [];
      for (const { scenario: s, series } of runs) {
        const configuration = rampConfig(s);
        for (const r of series) {
          rows.push({
            configuration,
            tNs: r.tNs,
            throughputBytesPerSec: r.throughputBytesPerSec,
            dmaBytes: r.dmaBytes,
            faults: r.faults,
            pinnedPages: r.pinnedPages,
            populatedBytes: r.populatedBytes,
          });
        }
      }
      const configs = runs.map((r) => rampConfig(r.scenario));
      const thr = facetLines(rows, {
        x: "tNs",
        y: "throughputBytesPerSec",
        series: "configuration",
        seriesDomain: configs,
        xLabel: "time since VM start",
        yLabel: "DMA throughput",
        step: true,
        title: "Throughput ramp-up after VM start",
        subtitle: `Random 4 KiB accesses over ${
          formatSize(parseSize(workingSet))
        } of a ${formatSize(parseSize(guest))} guest`,
      });
      const bytes = facetLines(rows, {
        x: "tNs",
        y: "dmaBytes",
        series: "configuration",
        seriesDomain: configs,
        xLabel: "time since VM start",
        yLabel: "bytes transferred",
        title: "Work done since VM start",
        subtitle: "Cumulative DMA bytes: who finishes first",
      });
      const findings: string[] = [];
      const st = runs.find((r) => r.scenario.dma.mode === "static-pin");
      const peak = st ? st.metrics.throughputBytesPerSec : 0;
      if (st) {
        findings.push(
          `Static pinning: no DMA for the first ${
            formatTime(st.metrics.setupNs)
          } (pinning ${formatSize(st.scenario.vm.memory)}), then ${
            formatRate(peak)
          }; the workload ends ${
            formatTime(st.metrics.setupNs + st.metrics.runNs)
          } after VM start.`,
        );
      }
      for (const r of runs) {
        if (r.scenario.dma.mode !== "iopf") continue;
        const reach = r.series.find((x) =>
          peak > 0 && x.throughputBytesPerSec >= 0.9 * peak
        );
        const atStatic = st
          ? r.series.filter((x) => x.tNs <= st.metrics.setupNs).pop()
          : undefined;
        findings.push(
          `${rampConfig(r.scenario)}: DMA from ${
            formatTime(r.metrics.setupNs)
          } after VM start; ${
            reach
              ? `90 % of the static rate after ${formatTime(reach.tNs)}`
              : "never reaches 90 % of the static rate"
          }; ${count(r.metrics.faults.total)} faults; done ${
            formatTime(r.metrics.setupNs + r.metrics.runNs)
          } after VM start${
            st && r.metrics.setupNs + r.metrics.runNs <= st.metrics.setupNs
              ? ", before static pinning finished its setup"
              : atStatic && st
              ? `; ${
                formatSize(atStatic.dmaBytes)
              } transferred by the time static pinning finished its setup`
              : ""
          }.`,
        );
      }
      return {
        figures: [
          {
            id: "ramp-up",
            figure: thr,
            alt: "Throughput against time since VM start, static pin and IOPF",
          },
          {
            id: "ramp-up-bytes",
            figure: bytes,
            alt: "Cumulative bytes transferred against time since VM start",
          },
        ],
        tables: [{
          id: "ramp-up",
          title: "Time series of each run (from VM start)",
          rows,
        }],
        findings,
      };
    },
  };
}
