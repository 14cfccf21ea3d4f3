/**
 * The report's experiment: Accelerator slowdown.
 *
 * @module
 */
import type { Scenario } from "../../experiment/scenario.ts";
import { IopfLabError } from "../../sim/errors.ts";
import { formatSize, formatTime, parseSize } from "../../sim/units.ts";
import { facetLines } from "../../plot/mod.ts";
import type { Experiment, ScenarioSet } from "../experiment.ts";
import { byKey, maxBy, need, times } from "./_util.ts";

/** The experiment "Accelerator slowdown", full or quick. */
export function acceleratorSlowdown(quick: boolean): Experiment {
  const messageSizes = quick ? ["64KiB", "1MiB"] : ["16KiB", "256KiB", "4MiB"];
  const messages = quick ? [1, 8, 64] : [1, 4, 16, 64, 256];
  const base = {
    host: { memory: "16GiB" },
    vm: { memory: quick ? "1GiB" : "4GiB" },
    workload: { kind: "accelerator" },
  };
  const sets: ScenarioSet[] = [
    {
      json: {
        name: "accel-static",
        ...base,
        dma: { mode: "static-pin" },
        sweep: {
          "workload.reuseBuffers": [true, false],
          "workload.messageSize": messageSizes,
          "workload.messages": messages,
        },
      },
    },
    {
      json: {
        name: "accel-iopf",
        ...base,
        dma: { mode: "iopf" },
        sweep: {
          "dma.premapPages": [1, 512],
          "workload.reuseBuffers": [true, false],
          "workload.messageSize": messageSizes,
          "workload.messages": messages,
        },
      },
    },
    {
      // Pre-map 512 with the MMU notifier: mapped one 4 KiB page per
      // iommu_map call, since part of a block cannot be unmapped (Alex
      // Williamson on RFC v3 4/8; io-pgtable-arm v6.13).
      json: {
        name: "accel-iopf-notifier",
        ...base,
        dma: { mode: "iopf", premapPages: 512, mmuNotifier: true },
        sweep: {
          "workload.reuseBuffers": [true, false],
          "workload.messageSize": messageSizes,
          "workload.messages": messages,
        },
      },
    },
  ];
  const premapLabel = (s: Scenario) =>
    s.dma.mmuNotifier
      ? `pre-map ${s.dma.premapPages} + notifier (4 KiB maps)`
      : `pre-map ${s.dma.premapPages}`;
  const notifierLabel = "pre-map 512 + notifier (4 KiB maps)";
  return {
    id: "accelerator-slowdown",
    title: "Accelerator slowdown under IOPF",
    question:
      "How much slower does a zip/crypto accelerator run with IOPF than with static pinning, for a given message size and number of messages — how much does pre-mapping 512 pages per fault help, and what does it cost when the MMU notifier forces 4 KiB mappings?",
    shows:
      "Slowdown is the IOPF run's simulated workload time divided by the static-pinning run's for the same workload (VM start excluded). With reused buffers only the first message faults, so the slowdown falls as messages repeat; with fresh buffers every message faults on new pages.",
    sets,
    series: false,
    analyse(runs) {
      const key = (s: Scenario) => {
        const w = s.workload;
        if (w.kind !== "accelerator") throw notAccelerator(s);
        return `${w.messageSize}/${w.messages}/${w.reuseBuffers}`;
      };
      const statics = byKey(
        runs.filter((r) => r.scenario.dma.mode === "static-pin"),
        (r) => key(r.scenario),
      );
      const rows = runs.filter((r) => r.scenario.dma.mode === "iopf").map(
        (r) => {
          const w = r.scenario.workload;
          if (w.kind !== "accelerator") throw notAccelerator(r.scenario);
          const st = need(statics.get(key(r.scenario)), "a static baseline");
          return {
            messageSizeBytes: w.messageSize,
            messageSize: formatSize(w.messageSize),
            messages: w.messages,
            buffers: w.reuseBuffers ? "reused buffers" : "fresh buffers",
            premapPages: r.scenario.dma.premapPages,
            mmuNotifier: r.scenario.dma.mmuNotifier,
            premap: premapLabel(r.scenario),
            staticRunNs: st.metrics.runNs,
            iopfRunNs: r.metrics.runNs,
            slowdown: r.metrics.runNs / st.metrics.runNs,
            faults: r.metrics.faults.total,
            faultLatencyMeanNs: r.metrics.faultLatencyNs.mean,
            dmaErrors: r.metrics.dmaErrors + st.metrics.dmaErrors,
          };
        },
      );
      const fig = facetLines(rows, {
        x: "messages",
        y: "slowdown",
        xUnit: "count",
        yUnit: "count",
        series: "messageSize",
        seriesDomain: messageSizes.map((s) => formatSize(parseSize(s))),
        fx: "buffers",
        fxDomain: ["reused buffers", "fresh buffers"],
        fy: "premap",
        fyDomain: ["pre-map 1", "pre-map 512", notifierLabel],
        xType: "log",
        yType: "log",
        xFormat: "count",
        yFormat: "count",
        xTicks: messages,
        rules: [{ y: 1, label: "no slowdown" }],
        xLabel: "messages",
        yLabel: "slowdown (IOPF / static pin)",
        dots: true,
        title: "Accelerator slowdown under IOPF",
        subtitle:
          "Workload time with IOPF over workload time with static pinning, per message size",
        width: 820,
        height: 700,
      });
      const findings: string[] = [];
      const worst = maxBy(rows, (r) => r.slowdown);
      if (worst) {
        findings.push(
          `Largest slowdown: ${
            times(worst.slowdown)
          } (${worst.messageSize} × ${worst.messages} messages, ${worst.buffers}, ${worst.premap}).`,
        );
      }
      for (const premap of [1, 512]) {
        for (const size of messageSizes.map((s) => parseSize(s))) {
          const line = rows.filter((r) =>
            r.premapPages === premap && !r.mmuNotifier &&
            r.messageSizeBytes === size &&
            r.buffers === "reused buffers"
          ).sort((a, b) => a.messages - b.messages);
          const first = line[0], last = line[line.length - 1];
          if (!first || !last || first === last) continue;
          findings.push(
            `Reused ${formatSize(size)} buffers, pre-map ${premap}: ${
              times(first.slowdown)
            } at ${first.messages} message(s), ${
              times(last.slowdown)
            } at ${last.messages}.`,
          );
        }
      }
      // What 4 KiB pre-map under the notifier costs against 512 pages
      // mapped as they come (blocks where contiguous), same workload.
      const blocks = byKey(
        rows.filter((r) => r.premapPages === 512 && !r.mmuNotifier),
        (r) => `${r.messageSizeBytes}/${r.messages}/${r.buffers}`,
      );
      const costs = rows.filter((r) => r.mmuNotifier).map((r) => {
        const b = blocks.get(
          `${r.messageSizeBytes}/${r.messages}/${r.buffers}`,
        );
        return b ? { r, ratio: r.iopfRunNs / b.iopfRunNs, b } : undefined;
      }).filter((x) => x !== undefined);
      const worstCost = maxBy(costs, (c) => c.ratio);
      if (worstCost) {
        findings.push(
          `Pre-map 512 with the MMU notifier maps 4 KiB pages one iommu_map call at a time (a block could not be unmapped in part): at most ${
            times(worstCost.ratio)
          } the run time of pre-map 512 without the notifier (${worstCost.r.messageSize} × ${worstCost.r.messages} messages, ${worstCost.r.buffers}; mean fault ${
            formatTime(worstCost.r.faultLatencyMeanNs)
          } against ${formatTime(worstCost.b.faultLatencyMeanNs)}).`,
        );
      }
      return {
        figures: [{
          id: "accelerator-slowdown",
          figure: fig,
          alt:
            "Slowdown against messages per message size, buffers and pre-map",
        }],
        tables: [{
          id: "accelerator-slowdown",
          title: "Slowdown per workload (IOPF run time / static-pin run time)",
          rows,
        }],
        findings,
      };
    },
  };
}

function notAccelerator(s: Scenario): IopfLabError {
  return new IopfLabError(
    "EINVAL",
    `Cannot analyse ${s.name}: expected an accelerator workload, got ${s.workload.kind}`,
  );
}
