/**
 * The report's experiment: Lazy versus strict invalidation.
 *
 * @module
 */
import { formatRate } from "../../experiment/metrics.ts";
import type { Scenario } from "../../experiment/scenario.ts";
import { barChart } from "../../plot/mod.ts";
import { formatSize, formatTime, parseSize } from "../../sim/units.ts";
import type { Experiment } from "../experiment.ts";
import { count, pct } from "./_util.ts";

/** The experiment "Lazy versus strict invalidation", full or quick. */
export function lazyInvalidation(quick: boolean): Experiment {
  const host = quick ? "256MiB" : "1GiB";
  const guest = host; // each VM as large as the host; two of them overcommit it
  const vms = 2;
  const span = quick ? "192MiB" : "768MiB";
  const common = {
    host: { memory: host },
    vm: { memory: guest, count: vms },
    dma: { mode: "iopf", mmuNotifier: true },
    sweep: { "smmu.invalidation": ["strict", "lazy"] },
  };
  return {
    id: "lazy-invalidation",
    title: "Lazy versus strict IOTLB invalidation",
    question:
      "How much throughput does lazy (deferred, batched) IOTLB invalidation gain when the host really unmaps pages, and what isolation exposure does it cost?",
    shows:
      `Unmaps must really happen: in single-stage modes the guest's dma_unmap does not reach the host IOMMU, so the unmaps here come from VFIO's MMU notifier while the host reclaims memory (IOPF with the notifier; ${vms} VMs of ${
        formatSize(parseSize(guest))
      } on a ${formatSize(parseSize(host))} host, each touching ${
        formatSize(parseSize(span))
      }). Strict mode waits for each IOTLB invalidation (CMD_SYNC) before the page is freed; lazy mode queues it on the flush queue and frees at once, so the unmapped range stays reachable through stale IOTLB entries until the batched flush (the exposure window). Accesses that actually went through such an entry are isolation violations.`,
    sets: [
      {
        json: {
          name: "lazy-storage",
          ...common,
          workload: {
            kind: "storage",
            blockSize: "128KiB",
            totalBytes: span,
            freshBuffers: true,
          },
        },
      },
      {
        json: {
          name: "lazy-random",
          ...common,
          workload: {
            kind: "random",
            workingSet: span,
            accesses: quick ? 100_000 : 500_000,
            queueDepth: 16,
          },
        },
      },
    ],
    series: false,
    analyse(runs) {
      const wl = (s: Scenario) =>
        s.workload.kind === "storage"
          ? "storage, fresh buffers"
          : `random over ${
            formatSize(
              s.workload.kind === "random" ? s.workload.workingSet : 0,
            )
          }`;
      const rows = runs.map(({ scenario: s, metrics: m }) => ({
        workload: wl(s),
        invalidation: s.smmu.invalidation,
        throughputBytesPerSec: m.throughputBytesPerSec,
        runNs: m.runNs,
        tlbInvalidations: m.tlbInvalidations,
        notifierUnmappedPages: m.extra?.notifierUnmappedPages ?? 0,
        lazyExposureNsMax: m.extra?.lazyExposureNsMax ?? 0,
        lazyExposures: m.extra?.lazyExposures ?? 0,
        isolationViolations: m.isolationViolations,
        dmaErrors: m.dmaErrors,
        swapOuts: m.extra?.swapOuts ?? 0,
      }));
      const thr = barChart(rows, {
        x: "workload",
        y: "throughputBytesPerSec",
        group: "invalidation",
        yLabel: "throughput",
        xLabel: "workload (IOPF + MMU notifier, host under reclaim)",
        title: "What lazy invalidation gains: throughput",
        subtitle: "Strict waits for CMD_SYNC on every notifier unmap",
        width: 720,
      });
      const exp = barChart(rows, {
        x: "workload",
        y: "lazyExposureNsMax",
        yUnit: "ns",
        group: "invalidation",
        yLabel: "longest exposure window",
        xLabel: "workload (IOPF + MMU notifier, host under reclaim)",
        title: "What it costs: how long unmapped pages stayed reachable",
        subtitle:
          "Longest time from an unmap to its batched IOTLB flush (0 in strict mode)",
        width: 720,
      });
      const findings: string[] = [];
      for (const w of [...new Set(rows.map((r) => r.workload))]) {
        const strict = rows.find((r) =>
          r.workload === w && r.invalidation === "strict"
        );
        const lazy = rows.find((r) =>
          r.workload === w && r.invalidation === "lazy"
        );
        if (!strict || !lazy) continue;
        if (strict.tlbInvalidations === 0) {
          findings.push(
            `${w}: no IOTLB invalidations happened in strict mode, so strict and lazy cannot differ here.`,
          );
          continue;
        }
        const gain = lazy.throughputBytesPerSec /
            strict.throughputBytesPerSec - 1;
        findings.push(
          `${w}: lazy ${
            formatRate(lazy.throughputBytesPerSec)
          } against strict ${formatRate(strict.throughputBytesPerSec)} (${
            gain >= 0 ? "+" : ""
          }${pct(gain)}), with ${
            count(lazy.tlbInvalidations)
          } invalidation commands instead of ${
            count(strict.tlbInvalidations)
          } for ${
            count(strict.notifierUnmappedPages)
          } unmapped pages; unmapped pages stayed reachable for up to ${
            formatTime(lazy.lazyExposureNsMax)
          }, and ${count(lazy.isolationViolations)} device access(es) (${
            count(lazy.lazyExposures)
          } through stale IOTLB entries) reached a page no longer mapped for the device (strict: ${
            count(strict.isolationViolations)
          }).`,
        );
      }
      return {
        figures: [
          {
            id: "lazy-throughput",
            figure: thr,
            alt: "Throughput strict vs lazy per workload",
          },
          {
            id: "lazy-exposure",
            figure: exp,
            alt: "Longest exposure window strict vs lazy per workload",
          },
        ],
        tables: [{
          id: "lazy-invalidation",
          title: "Strict vs lazy: throughput, invalidations, exposure",
          rows,
        }],
        findings,
      };
    },
  };
}
