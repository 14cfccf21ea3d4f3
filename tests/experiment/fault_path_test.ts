import assert from "node:assert/strict";
import { runScenario } from "../../lib/experiment/run.ts";
import { parseScenario } from "../../lib/experiment/scenario.ts";
import type { FaultPath } from "../../lib/iommu/types.ts";

/**
 * One VM on 2 MiB hugetlb pages, never touched: every IOPF fault pins (and
 * so allocates and zeroes) a 2 MiB page under the container lock, about
 * 0.35 ms. The device keeps 65 accesses in flight, one more than the SMMU's
 * STALL_MAX (64), so while 64 are stalled the 65th is terminated and
 * retried as a new access: a stream of terminate records into an event
 * queue of 128 entries, which 64 stall records cannot fill on their own.
 */
function loaded(path: FaultPath) {
  return runScenario(parseScenario({
    name: `overload-${path}`,
    host: { memory: "16GiB", backing: "hugetlb-2m" },
    vm: { memory: "4GiB" },
    smmu: { evtqEntries: 128 },
    iommu: { faultPath: path },
    // As many DMA engine slots as accesses in flight, so 65 can stall.
    device: { dmaSlots: 65 },
    dma: { mode: "iopf" },
    workload: {
      kind: "random",
      workingSet: "2GiB",
      accesses: 200,
      queueDepth: 65,
    },
  }));
}

Deno.test("a slow synchronous fault handler overflows the event queue; the workqueue path does not", () => {
  const sync = loaded("evtq-thread");
  const wq = loaded("workqueue");
  // The event-queue thread, held in each 2 MiB fault for its zeroing, stops
  // reading records: the stall records sit in the queue, the terminate
  // records behind them find it full and are lost.
  assert(sync.extra!.evtqThreadHeldNs! > 0.9 * sync.runNs);
  assert(sync.evtqOverflows >= 1);
  assert(sync.extra!.evtqRecordsLost! > 0);
  // On the workqueue the thread hands each group off and reads on: the
  // same load loses no record.
  assert.equal(wq.evtqOverflows, 0);
  assert.equal(wq.extra!.evtqRecordsLost, 0);
  assert.equal(wq.extra!.evtqThreadHeldNs, 0);
  // The faults themselves are the same: one container lock serialises them.
  assert.equal(sync.faults.total, wq.faults.total);
});

Deno.test("iommu.faultPath defaults to the RFC's evtq-thread", () => {
  const s = parseScenario({ dma: { mode: "iopf" } });
  assert.equal(s.iommu.faultPath, "evtq-thread");
  assert.throws(
    () => parseScenario({ iommu: { faultPath: "softirq" } }),
    /iommu\.faultPath/,
  );
});
