/**
 * The report's experiment: Lazy versus strict invalidation, a what-if for
 * DMA-API style unmaps (the guest's dma_unmap replayed as UNMAP_DMA through
 * a caching-mode vIOMMU). The MMU notifier is strict in every mode.
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
    dma: { mode: "viommu-pin" },
    sweep: { "smmu.invalidation": ["strict", "lazy"] },
  };
  return {
    id: "lazy-invalidation",
    title:
      "Lazy versus strict IOTLB invalidation (a what-if for DMA-API style unmaps)",
    question:
      "If the unmaps a guest's DMA API sends through a caching-mode vIOMMU (VFIO_IOMMU_UNMAP_DMA) were invalidated lazily, as Linux does for its own DMA-API domains, how much throughput would that gain and what isolation exposure would it cost?",
    shows:
      `A what-if, labelled as such: Linux applies lazy invalidation (iommu.strict=0, the dma-iommu flush queue) only to DMA-API domains; VFIO type1 always syncs before it unpins, and an MMU-notifier invalidation must complete before the mm frees the page (otherwise the device uses freed memory), so the notifier stays strict in every mode and IOPF is not in this experiment. Here the guest maps and unmaps every buffer through a caching-mode vIOMMU (viommu-pin: each dma_unmap becomes VFIO_IOMMU_UNMAP_DMA; ${vms} VMs of ${
        formatSize(parseSize(guest))
      } on a ${formatSize(parseSize(host))} host, each touching ${
        formatSize(parseSize(span))
      }). Strict mode waits for each IOTLB invalidation before the pages are unpinned; lazy mode queues it on the flush queue and unpins at once, so the unmapped range stays reachable through stale IOTLB entries until the batched flush (the exposure window). Accesses that actually went through such an entry are isolation violations.`,
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
        xLabel: "workload (viommu-pin: guest unmaps replayed as UNMAP_DMA)",
        title: "What lazy invalidation would gain: throughput (what-if)",
        subtitle: "Strict waits for CMD_SYNC on every UNMAP_DMA",
        width: 720,
      });
      const exp = barChart(rows, {
        x: "workload",
        y: "lazyExposureNsMax",
        yUnit: "ns",
        group: "invalidation",
        yLabel: "longest exposure window",
        xLabel: "workload (viommu-pin: guest unmaps replayed as UNMAP_DMA)",
        title:
          "What it costs: how long unmapped pages stayed reachable (what-if)",
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
          }; unmapped pages stayed reachable for up to ${
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
