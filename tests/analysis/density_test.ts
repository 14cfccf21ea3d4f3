import assert from "node:assert/strict";
import {
  densityExperiment,
  type DensityRow,
  designDma,
} from "../../lib/analysis/density.ts";
import { runScenarioWithSeries } from "../../lib/experiment/run.ts";
import { parseScenario } from "../../lib/experiment/scenario.ts";
import { HostMemory, MmStruct } from "../../lib/mm/mod.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";

const MiB = 2 ** 20;
const byMode = (rows: DensityRow[]) =>
  Object.fromEntries(rows.map((r) => [r.mode, r]));

const SMALL = {
  kind: "accelerator",
  messageSize: "64KiB",
  messages: 4,
  reuseBuffers: false,
};

Deno.test("8 GiB host, 3 GiB VMs at overcommit 1.5: static pinning starts 2 of 4, the others all 4", () => {
  const rows = byMode(densityExperiment({
    hostMemory: "8GiB",
    vmMemory: "3GiB",
    overcommit: 1.5,
    workloads: [SMALL],
    baseline: false,
  }));
  const s = rows["static-pin"]!;
  assert.equal(s.vmsRequested, 4);
  assert.equal(s.overcommit, 1.5);
  assert.equal(s.vmsStarted, 2);
  assert.equal(s.vmsFailed, 2);
  assert.equal(s.vmsHealthy, 2);
  assert.equal(s.errors.length, 2);
  assert.match(
    s.errors[0]!,
    /^vm2: Cannot pin .*out of host memory.*\(ENOMEM\)$/,
  );
  assert.equal(
    s.pinnedPagesEnd,
    2 * 3 * 2 ** 18,
    "two VMs' RAM, nothing of the failed ones",
  );
  for (const mode of ["iopf", "iopf+notifier", "viommu-pin", "coiommu"]) {
    const r = rows[mode]!;
    assert.equal(r.vmsStarted, 4, mode);
    assert.equal(r.vmsHealthy, 4, mode);
    assert.equal(r.dmaErrors, 0, mode);
    assert.equal(r.isolationViolations, 0, mode);
    // 4 VMs × 4 messages × 2 fresh 64 KiB buffers: 512 pages at most.
    assert.ok(
      r.pinnedPagesPeak <= 4 * 4 * 32,
      `${mode} pins at most the buffers`,
    );
  }
  assert.equal(
    rows["viommu-pin"]!.pinnedPagesPeak,
    4 * 32,
    "one message in flight per VM",
  );
  assert.equal(rows["iopf"]!.pinnedPagesEnd, 4 * 4 * 32, "IOPF pins only grow");
});

Deno.test("RLIMIT_MEMLOCK below the VM size: static pinning starts nothing, with the reason", () => {
  const rows = byMode(densityExperiment({
    hostMemory: "1GiB",
    vmMemory: "256MiB",
    vms: 2,
    modes: ["static-pin", "viommu-pin"],
    scenario: { host: { memlockLimit: "128MiB" } },
    workloads: [SMALL],
    baseline: false,
  }));
  assert.equal(rows["static-pin"]!.vmsStarted, 0);
  assert.match(rows["static-pin"]!.errors[0]!, /exceeds RLIMIT_MEMLOCK/);
  assert.equal(rows["viommu-pin"]!.vmsHealthy, 2);
});

Deno.test("host-wide reclaim takes unpinned pages from another VM's process, never pinned ones", () => {
  const costs = loadCostProfile();
  const host = new HostMemory({ size: 64 * MiB, costs, directReclaim: true });
  const a = new MmStruct(host, { memlockLimit: Infinity });
  const b = new MmStruct(host, { memlockLimit: Infinity });
  const ra = a.mmap({ size: 48 * MiB, backing: "4k" });
  const rb = b.mmap({ size: 48 * MiB, backing: "4k" });
  const pages = (48 * MiB) / 4096;
  a.pinUserPages(ra.start, pages, { longterm: true }); // A's RAM pinned (static pinning)
  assert.throws(
    () => b.touch(rb.start, 32 * MiB), // 16 MiB more than is free
    (e: unknown) => e instanceof IopfLabError && e.code === "ENOMEM",
  );
  assert.equal(a.swapOuts, 0);
  a.unpinUserPages(ra.start, pages); // A's pins dropped (IOPF with the notifier)
  b.touch(rb.start, 32 * MiB);
  assert.ok(a.swapOuts >= (16 * MiB) / 4096, `A swapped ${a.swapOuts} pages`);
  assert.equal(b.populatedBytes, 32 * MiB);
  assert.equal(b.swapOuts, 0);
});

Deno.test("overcommitted IOPF: pins kept exhaust the host, the MMU notifier reclaims across VMs", () => {
  const rows = byMode(densityExperiment({
    hostMemory: "256MiB",
    vmMemory: "192MiB",
    vms: 2,
    modes: ["iopf", "iopf+notifier", "viommu-pin"],
    workloads: [{
      kind: "storage",
      blockSize: "128KiB",
      totalBytes: "160MiB",
      freshBuffers: true,
    }],
    baseline: false,
    // The guests touch none of their RAM: only the device's pages compete.
    scenario: { guest: { touchedMemory: 0 } },
  }));
  const kept = rows["iopf"]!;
  assert.ok(kept.dmaErrors > 0, "faults fail once every host page is pinned");
  assert.ok(kept.vmsHealthy < 2);
  assert.equal(kept.swapOuts, 0, "pinned pages cannot be reclaimed");
  const notifier = rows["iopf+notifier"]!;
  assert.equal(notifier.dmaErrors, 0);
  assert.equal(notifier.vmsHealthy, 2);
  assert.ok(notifier.swapOuts > 0);
  assert.ok(
    notifier.notifierUnmappedPages > 0,
    "reclaim unmapped via the notifiers",
  );
  assert.equal(notifier.isolationViolations, 0);
  const viommu = rows["viommu-pin"]!;
  assert.equal(viommu.vmsHealthy, 2, "only in-flight blocks are pinned");
  assert.ok(viommu.swapOuts > 0);
});

Deno.test("a workload mix spreads over the VMs; the baseline gives the throughput cost", () => {
  const rows = densityExperiment({
    hostMemory: "512MiB",
    vmMemory: "128MiB",
    vms: 2,
    modes: ["viommu-pin"],
    workloads: [SMALL, {
      kind: "nic-rx",
      ringEntries: 32,
      bufferSize: "2KiB",
      packets: 200,
    }],
  });
  const r = rows[0]!;
  assert.equal(r.workload, "accelerator+nic-rx");
  assert.equal(r.vmsHealthy, 2);
  assert.ok(r.aloneThroughputBytesPerSec > 0);
  assert.ok(Number.isFinite(r.throughputCost));
  assert.ok(r.throughputPerVmBytesPerSec > 0);
});

Deno.test("the runner's workload mix and per-VM completion times", () => {
  const s = parseScenario({
    vm: { memory: "64MiB", count: 3 },
    host: { memory: "1GiB" },
    dma: designDma("iopf+notifier"),
    workload: SMALL,
  });
  const nic = parseScenario({
    workload: {
      kind: "nic-rx",
      ringEntries: 8,
      bufferSize: "2KiB",
      packets: 10,
    },
  }).workload;
  const kinds: number[] = [];
  runScenarioWithSeries(s, {
    workloads: [s.workload, nic],
    inspect: (m) => {
      for (const vm of m.vms) kinds.push(vm.device.stats.bytes);
      assert.ok(m.vms.every((v) => v.runDoneAt > v.setupDoneAt));
    },
  });
  assert.deepEqual(kinds, [8 * 64 * 1024, 10 * 2048, 8 * 64 * 1024]);
});

Deno.test("IOPF density under overcommit falls as the guests touch more of their RAM", () => {
  // 4 VMs of 96 MiB on 256 MiB (1.5x), a host without swap.
  const density = (touchedMemory: string) =>
    densityExperiment({
      hostMemory: "256MiB",
      vmMemory: "96MiB",
      vms: 4,
      modes: ["iopf"],
      workloads: [{ kind: "accelerator", messageSize: "64KiB", messages: 4 }],
      scenario: { host: { swap: 0 }, guest: { touchedMemory } },
      baseline: false,
    })[0]!;
  const low = density("10%"), high = density("90%");
  // 4 x 9.6 MiB touched fits; 4 x 86.4 MiB does not: two VMs fit.
  assert.equal(low.vmsHealthy, 4);
  assert.equal(high.vmsHealthy, 2);
  assert.ok(high.vmsHealthy < low.vmsHealthy);
  assert.equal(high.errors.length, 2);
  for (const e of high.errors) assert.match(e, /guest\.touchedMemory/);
  assert.ok(high.hostMemoryPeakBytes > low.hostMemoryPeakBytes);
});
