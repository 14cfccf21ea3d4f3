/**
 * The report's experiment: PRI queue size and outstanding requests.
 *
 * @module
 */
import { formatRate } from "../../experiment/metrics.ts";
import { facetLines } from "../../plot/mod.ts";
import type { Experiment } from "../experiment.ts";
import { count, maxBy, pct } from "./_util.ts";

/** The experiment "PRI queue size and outstanding requests", full or quick. */
export function priQueue(quick: boolean): Experiment {
  const depth = 512;
  const priq = quick
    ? [4, 16, 64, 256]
    : [4, 8, 16, 32, 64, 128, 256, 512, 1024];
  const caps = quick ? [16, 256] : [16, 64, 256, 1024];
  return {
    id: "pri-queue",
    title: "PRI queue size and outstanding page requests",
    question:
      "Under many concurrent faults, how large must the SMMU's PRI queue be for the device's outstanding page request allocation — what overflows, what gets auto-answered, and what does it cost in throughput?",
    shows:
      `A PCIe device with ATS/PRI touches a fresh working set at random with ${depth} accesses in flight, so page requests pile up. When the PRI queue is full, the SMMU drops new requests; a request with LAST=1 is answered Success automatically without the page being mapped, so the device retries, faults again, and may exhaust its retries (a DMA error).`,
    sets: [{
      json: {
        name: "pri-queue",
        host: { memory: "8GiB" },
        vm: { memory: "4GiB" },
        // As many DMA engine slots as accesses in flight, so the depth is
        // what the device really has outstanding.
        device: { fault: "pri", dmaSlots: depth },
        dma: { mode: "iopf" },
        workload: {
          kind: "random",
          workingSet: quick ? "64MiB" : "256MiB",
          accesses: quick ? 50_000 : 200_000,
          queueDepth: depth,
        },
        sweep: { "device.priCapacity": caps, "smmu.priqEntries": priq },
      },
    }],
    series: false,
    analyse(runs) {
      const rows = runs.map(({ scenario: s, metrics: m }) => ({
        priqEntries: s.smmu.priqEntries,
        priCapacity: s.device.priCapacity,
        capacity: `allocation ${s.device.priCapacity}`,
        priqOverflows: m.priqOverflows,
        priAutoResponses: m.extra?.priAutoResponses ?? 0,
        dmaErrors: m.dmaErrors,
        faults: m.faults.total,
        prgSuccess: m.priResponses.success,
        throughputBytesPerSec: m.throughputBytesPerSec,
        runNs: m.runNs,
        faultLatencyMeanNs: m.faultLatencyNs.mean,
      }));
      const capsLabels = caps.map((c) => `allocation ${c}`);
      const auto = facetLines(rows, {
        x: "priqEntries",
        y: "priAutoResponses",
        xUnit: "count",
        yUnit: "count",
        series: "capacity",
        seriesDomain: capsLabels,
        xType: "log",
        yType: "symlog",
        xFormat: "count",
        yFormat: "count",
        xTicks: priq,
        xLabel: "PRI queue entries",
        yLabel: "page requests auto-answered on overflow",
        dots: true,
        title: "PRI queue overflow: requests the SMMU answered itself",
        subtitle:
          "Per outstanding page request allocation of the device (PRI capacity)",
      });
      const thr = facetLines(rows, {
        x: "priqEntries",
        y: "throughputBytesPerSec",
        series: "capacity",
        seriesDomain: capsLabels,
        xType: "log",
        xFormat: "count",
        xTicks: priq,
        xLabel: "PRI queue entries",
        yLabel: "throughput",
        dots: true,
        title: "Throughput against PRI queue size",
        subtitle: "Same runs: DMA bytes over workload time",
      });
      const findings: string[] = [];
      for (const c of caps) {
        const line = rows.filter((r) => r.priCapacity === c);
        // The smallest size from which every larger size tried is clean.
        const sorted = [...line].sort((a, b) => a.priqEntries - b.priqEntries);
        const clean: number[] = [];
        for (let k = sorted.length - 1; k >= 0; k--) {
          if (sorted[k]!.priqOverflows !== 0) break;
          clean.push(sorted[k]!.priqEntries);
        }
        const worst = maxBy(line, (r) => r.priAutoResponses);
        findings.push(
          `Allocation ${c}: ${
            clean.length > 0
              ? `no overflow from ${Math.min(...clean)} PRI queue entries up`
              : "the PRI queue overflowed at every size tried"
          }${
            worst && worst.priAutoResponses > 0
              ? `; at ${worst.priqEntries} entries ${
                count(worst.priqOverflows)
              } overflow episode(s), ${
                count(worst.priAutoResponses)
              } requests auto-answered, ${count(worst.dmaErrors)} DMA errors, ${
                formatRate(worst.throughputBytesPerSec)
              }`
              : ""
          }.`,
        );
      }
      const best = maxBy(rows, (r) => r.throughputBytesPerSec);
      const low = maxBy(rows, (r) => -r.throughputBytesPerSec);
      if (best && low) {
        findings.push(
          `Throughput ranges from ${
            formatRate(low.throughputBytesPerSec)
          } (${low.priqEntries} entries, allocation ${low.priCapacity}) to ${
            formatRate(best.throughputBytesPerSec)
          } (${best.priqEntries} entries, allocation ${best.priCapacity}), a spread of ${
            pct(
              best.throughputBytesPerSec /
                  Math.max(1, low.throughputBytesPerSec) - 1,
            )
          }.`,
        );
      }
      return {
        figures: [
          {
            id: "pri-queue-overflow",
            figure: auto,
            alt: "Auto-responses on PRI queue overflow against queue size",
          },
          {
            id: "pri-queue-throughput",
            figure: thr,
            alt: "Throughput against PRI queue size",
          },
        ],
        tables: [{
          id: "pri-queue",
          title: "PRI queue overflows, auto-responses, errors and throughput",
          rows,
        }],
        findings,
      };
    },
  };
}
