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
  // Multi-page Page Request Groups (device.prgPages) at allocation 256:
  // 64 KiB bursts (16 pages), so a group can ask for up to 16 pages.
  const prgPages = quick ? [1, 4, 16] : [1, 2, 4, 8, 16];
  // At least 16 entries: a larger group than the queue is refused by the
  // parser (it could never be written whole).
  const prgPriq = quick ? [16, 64, 256] : [16, 32, 64, 256, 1024];
  const workload = {
    kind: "random",
    workingSet: quick ? "64MiB" : "256MiB",
    accesses: quick ? 50_000 : 200_000,
    queueDepth: depth,
  };
  return {
    id: "pri-queue",
    title: "PRI queue size and outstanding page requests",
    question:
      "Under many concurrent faults, how large must the SMMU's PRI queue be for the device's outstanding page request allocation — what overflows, what gets auto-answered, and what does it cost in throughput?",
    shows:
      `A PCIe device with ATS/PRI touches a fresh working set at random with ${depth} accesses in flight, so page requests pile up. When the PRI queue is full, the SMMU drops new requests; a request with LAST=1 is answered Success automatically without the page being mapped (IHI0070 8.1), so the device sends its Translation Request again, faults again and asks again (PCIe sets no retry limit). With multi-page groups (device.prgPages > 1) an overflow can cut a group: its first requests are in the queue, its LAST was dropped and auto-answered. The RFC's handler can only discard such a partial group when it sees the overflow (iopf_queue_discard_partial): an automatic Success cannot be recalled, so the pages asked for are not mapped and the device asks for them again.`,
    sets: [{
      json: {
        name: "pri-queue",
        host: { memory: "8GiB" },
        vm: { memory: "4GiB" },
        // As many DMA engine slots as accesses in flight, so the depth is
        // what the device really has outstanding.
        device: { fault: "pri", dmaSlots: depth },
        dma: { mode: "iopf" },
        workload,
        sweep: { "device.priCapacity": caps, "smmu.priqEntries": priq },
      },
    }, {
      json: {
        name: "pri-queue-prg",
        host: { memory: "8GiB" },
        vm: { memory: "4GiB" },
        device: { fault: "pri", priCapacity: 256 },
        dma: { mode: "iopf" },
        workload: {
          ...workload,
          accessSize: "64KiB",
          accesses: quick ? 5_000 : 20_000,
          queueDepth: 64,
        },
        sweep: { "device.prgPages": prgPages, "smmu.priqEntries": prgPriq },
      },
    }],
    series: false,
    analyse(all) {
      const isPrg = (r: (typeof all)[number]) =>
        r.scenario.name.startsWith("pri-queue-prg");
      const runs = all.filter((r) => !isPrg(r));
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
      // Multi-page groups (64 KiB bursts; prgPages 1 is the baseline).
      const prgRows = all
        .filter(isPrg)
        .map(({ scenario: s, metrics: m }) => {
          const handled = m.faults.total;
          const requests = m.extra?.pageRequests ?? 0;
          return {
            prgPages: s.device.prgPages,
            group: `${s.device.prgPages} page(s) per group`,
            priqEntries: s.smmu.priqEntries,
            priqOverflows: m.priqOverflows,
            priAutoResponses: m.extra?.priAutoResponses ?? 0,
            pageRequests: requests,
            partialPageRequestsDiscarded:
              m.extra?.partialPageRequestsDiscarded ?? 0,
            pageRequestsPerHandledRequest: handled > 0 ? requests / handled : 0,
            dmaErrors: m.dmaErrors,
            throughputBytesPerSec: m.throughputBytesPerSec,
          };
        })
        .sort((a, b) =>
          a.prgPages - b.prgPages || a.priqEntries - b.priqEntries
        );
      const groups = prgPages.map((k) => `${k} page(s) per group`);
      const partial = facetLines(prgRows, {
        x: "priqEntries",
        y: "pageRequestsPerHandledRequest",
        xUnit: "count",
        series: "group",
        seriesDomain: groups,
        xType: "log",
        xFormat: "count",
        xTicks: prgPriq,
        xLabel: "PRI queue entries",
        yLabel: "page requests sent per request the host handled",
        dots: true,
        title: "Multi-page groups under PRI queue overflow (device.prgPages)",
        subtitle:
          "Requests dropped and auto-answered Success are sent again; 64 KiB bursts, allocation 256",
      });
      for (const k of prgPages) {
        const line = prgRows.filter((r) => r.prgPages === k);
        const worst = maxBy(line, (r) => r.partialPageRequestsDiscarded);
        if (!worst) continue;
        findings.push(
          `${k} page(s) per group: ${
            worst.partialPageRequestsDiscarded > 0
              ? `at ${worst.priqEntries} PRI queue entries ${
                count(worst.partialPageRequestsDiscarded)
              } page request(s) of cut groups were discarded after the SMMU had answered their groups Success (the answer cannot be recalled), and the device sent ${
                worst.pageRequestsPerHandledRequest.toFixed(2)
              } page requests per request the host handled`
              : `no group was cut (${
                k === 1
                  ? "a one-page group has nothing before its LAST"
                  : "a group's requests arrive together, so the queue was full before a group or had room for all of it"
              }); ${
                maxBy(line, (r) => r.pageRequestsPerHandledRequest)!
                  .pageRequestsPerHandledRequest.toFixed(2)
              } page requests sent per request handled at worst`
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
          {
            id: "pri-queue-partial-groups",
            figure: partial,
            alt:
              "Page requests of groups cut by PRI queue overflow, against queue size, per pages per group",
          },
        ],
        tables: [{
          id: "pri-queue",
          title: "PRI queue overflows, auto-responses, errors and throughput",
          rows,
        }, {
          id: "pri-queue-prg",
          title:
            "Multi-page page request groups: cut groups, repeated requests and throughput",
          rows: prgRows,
        }],
        findings,
      };
    },
  };
}
