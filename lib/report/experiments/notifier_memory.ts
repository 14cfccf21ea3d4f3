/**
 * The report's experiment: Memory over time with the MMU notifier under host memory pressure.
 *
 * @module
 */
import type { Scenario } from "../../experiment/scenario.ts";
import {
  formatSize,
  formatTime,
  PAGE_SIZE,
  parseSize,
} from "../../sim/units.ts";
import { facetLines } from "../../plot/mod.ts";
import type { Experiment } from "../experiment.ts";
import type { Row } from "../../plot/row.ts";
import { count } from "./_util.ts";

/** The experiment "Memory over time with the MMU notifier under host memory pressure", full or quick. */
export function notifierMemory(quick: boolean): Experiment {
  const host = quick ? "512MiB" : "2GiB";
  const guest = host; // each VM as large as the host; two of them overcommit it
  const vms = 2;
  const total = quick ? "384MiB" : "1536MiB";
  return {
    id: "notifier-memory",
    title: "Memory over time with the MMU notifier under host memory pressure",
    question:
      "When the guests touch more memory than the host has, what happens to host memory and pins with IOPF alone (pins only grow) and with the MMU notifier (reclaim can unmap and take pages back)?",
    shows: `${vms} VMs of ${formatSize(parseSize(guest))} share a host with ${
      formatSize(parseSize(host))
    } of RAM (overcommitted); in each, a storage device streams ${
      formatSize(parseSize(total))
    } into fresh page-cache buffers, so together they touch more than the host has. Memory is summed over the VMs. Without the notifier every faulted page stays pinned, so once host RAM is full new faults cannot be served and DMA fails. With the notifier the pin is dropped right after mapping; reclaim swaps pages out and the notifier unmaps them from the IOMMU, so populated memory stays within the host.`,
    sets: [{
      json: {
        name: "notifier",
        host: { memory: host },
        vm: { memory: guest, count: vms },
        dma: { mode: "iopf" },
        workload: {
          kind: "storage",
          blockSize: "128KiB",
          totalBytes: total,
          freshBuffers: true,
        },
        sweep: { "dma.mmuNotifier": [false, true] },
      },
    }],
    series: true,
    analyse(runs) {
      const label = (s: Scenario) =>
        s.dma.mmuNotifier ? "IOPF + MMU notifier" : "IOPF, no notifier";
      const rows: Row[] = [];
      const long: Row[] = [];
      for (const { scenario: s, series } of runs) {
        for (const r of series) {
          const pinnedBytes = r.pinnedPages * PAGE_SIZE;
          rows.push({
            configuration: label(s),
            tNs: r.tNs,
            populatedBytes: r.populatedBytes,
            pinnedPages: r.pinnedPages,
            pinnedBytes,
            lockedBytes: r.lockedBytes,
            dmaBytes: r.dmaBytes,
            faults: r.faults,
          });
          long.push(
            {
              configuration: label(s),
              tNs: r.tNs,
              quantity: "host RAM populated",
              bytes: r.populatedBytes,
            },
            {
              configuration: label(s),
              tNs: r.tNs,
              quantity: "pinned",
              bytes: pinnedBytes,
            },
          );
        }
      }
      const hostBytes = runs[0]?.scenario.host.memory ?? 0;
      const failing = runs.find((r) => r.metrics.dmaErrors > 0);
      const caption = failing
        ? `${label(failing.scenario)}: the run ends after ${
          formatTime(failing.metrics.runNs)
        }, its remaining blocks failed (${
          count(failing.metrics.dmaErrors)
        } DMA errors) once host RAM was full of pinned pages.`
        : undefined;
      const fig = facetLines(long, {
        x: "tNs",
        y: "bytes",
        series: "configuration",
        seriesDomain: ["IOPF, no notifier", "IOPF + MMU notifier"],
        fy: "quantity",
        fyDomain: ["host RAM populated", "pinned"],
        xLabel: "time since VM start",
        yLabel: "memory",
        dashed: ["IOPF + MMU notifier"],
        rules: [{ y: hostBytes, label: `host RAM ${formatSize(hostBytes)}` }],
        title: "Guest memory on an overcommitted host",
        subtitle: `${vms} VMs of ${formatSize(parseSize(guest))} on a ${
          formatSize(parseSize(host))
        } host, each streaming ${
          formatSize(parseSize(total))
        } into fresh storage buffers`,
        ...(caption ? { caption } : {}),
        height: 480,
      });
      const summary = runs.map(({ scenario: s, metrics: m }) => ({
        configuration: label(s),
        hostMemoryBytes: s.host.memory,
        guestMemoryBytes: s.vm.memory,
        vms: s.vm.count,
        hostMemoryPeakBytes: m.hostMemoryPeakBytes,
        pinnedPagesPeak: m.pinnedPagesPeak,
        lockedBytesPeak: m.lockedBytesPeak,
        dmaBytes: m.dmaBytes,
        dmaErrors: m.dmaErrors,
        faults: m.faults.total,
        swapOuts: m.extra?.swapOuts ?? 0,
        swapIns: m.extra?.swapIns ?? 0,
        notifierUnmappedPages: m.extra?.notifierUnmappedPages ?? 0,
        runNs: m.runNs,
      }));
      const findings = summary.map((r) =>
        `${r.configuration}: host RAM peaks at ${
          formatSize(r.hostMemoryPeakBytes)
        } of ${formatSize(r.hostMemoryBytes)}, at most ${
          formatSize(r.pinnedPagesPeak * PAGE_SIZE)
        } pinned, ${formatSize(r.dmaBytes)} transferred, ${
          count(r.dmaErrors)
        } DMA errors, ${formatSize(r.swapOuts * PAGE_SIZE)} swapped out, ${
          formatSize(r.notifierUnmappedPages * PAGE_SIZE)
        } unmapped from the IOMMU by the notifier.`
      );
      return {
        figures: [{
          id: "notifier-memory",
          figure: fig,
          alt:
            "Populated and pinned memory over time with and without notifier",
        }],
        tables: [
          {
            id: "notifier-memory",
            title: "Time series of each run (from VM start)",
            rows,
          },
          {
            id: "notifier-memory-summary",
            title: "Per run: peaks, errors, reclaim",
            rows: summary,
          },
        ],
        findings,
      };
    },
  };
}
