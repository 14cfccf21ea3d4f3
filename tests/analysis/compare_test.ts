import assert from "node:assert/strict";
import { parseScenario } from "../../lib/experiment/scenario.ts";
import { runScenario } from "../../lib/experiment/run.ts";
import {
  compareModes,
  type ModeRow,
  recommendDesigns,
} from "../../lib/analysis/compare.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";

/**
 * The SMMU hardware's own costs (tested in run_test.ts) are zeroed here so
 * that a run's time is the mode's software path plus the data transfer,
 * and can be summed by hand from the profile.
 */
const HW_ZERO = [
  "smmu.iotlbLookup",
  "smmu.walkRead",
  "smmu.cfgFetch",
  "pci.dmaSetup",
  "smmu.cmdIssue",
  "smmu.cmdProcess",
  "smmu.cmdSync",
  "smmu.tlbiPerEntry",
  // The accelerator's own CPU and engine time (not the DMA API's).
  "accel.firstMessage",
  "accel.submit",
  "accel.doorbell",
  "accel.completion",
  "accel.enginePer4k",
];
const c = loadCostProfile(Object.fromEntries(HW_ZERO.map((k) => [k, 0])));
const MiB = 2 ** 20;
const PAGES = 16; // a 64 KiB buffer
const XFER = (64 * 1024 / 8e9) * 1e9; // 64 KiB at the default 8 GB/s
/** Prefaulting 64 MiB of 2 MiB hugetlb pages: 32 faults, each zeroing 512 small pages. */
const PREFAULT = 32 * (c["mm.faultHugetlb2m"] + 512 * c["mm.zeroPer4k"]);

/** Two 64 KiB messages through the accelerator, fresh buffers each time. */
function accelerator(
  mode: string,
  extra: Record<string, unknown> = {},
  device: Record<string, unknown> = {},
) {
  return parseScenario({
    name: `hand-${mode}`,
    vm: { memory: "64MiB" },
    host: { memory: "1GiB", backing: "hugetlb-2m", prefault: true },
    device,
    dma: { mode, ...extra },
    costs: Object.fromEntries(HW_ZERO.map((k) => [k, 0])),
    costSpread: false,
    workload: {
      kind: "accelerator",
      messageSize: "64KiB",
      messages: 2,
      reuseBuffers: false,
    },
    check: true,
  });
}

Deno.test("viommu-pin: a trap and a VFIO map per dma_map, pinned only while mapped (by hand)", () => {
  const m = runScenario(accelerator("viommu-pin"));
  // VFIO_IOMMU_MAP_DMA of one 64 KiB buffer: the ioctl, one pin_user_pages
  // call over 16 prefaulted pages in one 2 MiB folio, one iommu_map of 16
  // PTEs (4 KiB pages: the IOVA is not 2 MiB aligned).
  const mapDma = c["vfio.mapDmaCall"] + c["mm.pinCall"] +
    PAGES * c["mm.pinPer4k"] + c["mm.pinPerHuge"] + c["iommu.mapCall"] +
    PAGES * c["iommu.mapPerPte"];
  // VFIO_IOMMU_UNMAP_DMA: the ioctl, one iommu_unmap of 16 PTEs, the unpin.
  const unmapDma = c["vfio.unmapDmaCall"] + c["iommu.unmapCall"] +
    PAGES * c["iommu.unmapPerPte"] + PAGES * c["mm.unpinPer4k"];
  // The guest writes its own table, then traps; the VMM replays it on VFIO.
  const map = c["guest.dmaMap"] + c["vmm.trap"] + mapDma;
  const unmap = c["guest.dmaMap"] + c["vmm.trap"] + unmapDma;
  const message = 2 * map + 2 * XFER + 2 * unmap;
  // Each message's first map allocates the 3 table levels below the root
  // for the guest's IOVA range; the last unmap of the message frees them.
  const tables = 2 * 3 * c["iommu.tableAlloc"];
  assert.equal(m.runNs, 2 * message + tables);
  assert.equal(m.setupNs, PREFAULT, "no MAP_DMA at VM start");
  assert.equal(m.extra!.viommuTraps, 8, "traps = 4 maps + 4 unmaps");
  assert.equal(m.extra!.viommuMaps, 4);
  assert.equal(m.extra!.viommuUnmaps, 4);
  assert.equal(m.pinnedPagesPeak, 2 * PAGES, "one message's two buffers");
  assert.equal(m.pinnedPagesEnd, 0);
  assert.equal(m.lockedBytesPeak, 2 * PAGES * 4096);
  assert.equal(m.faults.total, 0);
  assert.equal(m.dmaBytes, 4 * 64 * 1024);
  assert.equal(m.dmaErrors, 0);
  assert.equal(m.isolationViolations, 0);
  assert.equal(m.invariants!.violations, 0);
});

Deno.test("coiommu: DTT marks, one doorbell per new buffer, per-page pins kept (policy off, by hand)", () => {
  const m = runScenario(accelerator("coiommu"));
  // Per page: the pin thread's lookup, then a 4 KiB VFIO_IOMMU_MAP_DMA
  // (ioctl, pin of one prefaulted page in its folio, one iommu_map of 1 PTE).
  const perPage = c["coiommu.pinLookup"] + c["vfio.mapDmaCall"] +
    c["mm.pinCall"] + c["mm.pinPer4k"] + c["mm.pinPerHuge"] +
    c["iommu.mapCall"] + c["iommu.mapPerPte"];
  const map = PAGES * c["coiommu.dttMark"] + c["coiommu.doorbell"] +
    c["coiommu.threadWakeup"] + PAGES * perPage;
  const unmap = PAGES * c["coiommu.dttMark"]; // no notification
  const message = 2 * map + 2 * XFER + 2 * unmap;
  // IOVA = GPA: all four buffers lie under one leaf table, allocated once
  // and never freed (nothing is unpinned).
  const tables = 3 * c["iommu.tableAlloc"];
  assert.equal(m.runNs, 2 * message + tables);
  assert.equal(m.setupNs, PREFAULT);
  assert.equal(m.extra!.coiommuDoorbells, 4);
  assert.equal(m.extra!.coiommuPinnedTotal, 4 * PAGES);
  assert.equal(m.extra!.viommuTraps, 0);
  assert.equal(
    m.pinnedPagesPeak,
    4 * PAGES,
    "fresh buffers: every page pinned once",
  );
  assert.equal(m.pinnedPagesEnd, 4 * PAGES, "lazy unpinning is off");
  assert.equal(m.faults.total, 0);
  assert.equal(m.isolationViolations, 0);
  assert.equal(m.extra!.coiommuDttBytes, 2 * 4096, "a leaf and the root");
});

Deno.test("coiommu with LRU unpins released buffers after a second chance", () => {
  const off = runScenario(accelerator("coiommu", {}));
  // The shortest interval the parser takes (a jiffy-granular timer), with a
  // device slow enough (1 ms per 64 KiB message) for several scans.
  const lru = runScenario(
    accelerator("coiommu", {
      coiommuUnpinPolicy: "lru",
      coiommuUnpinInterval: "1ms",
    }, { dmaBandwidth: "64MB/s" }),
  );
  assert.equal(off.pinnedPagesEnd, 4 * 16);
  const x = lru.extra!;
  assert.ok((x.coiommuUnpinScans ?? 0) >= 2);
  assert.ok((x.coiommuSecondChances ?? 0) > 0);
  assert.ok((x.coiommuUnpinnedPages ?? 0) > 0);
  assert.ok(lru.pinnedPagesEnd < off.pinnedPagesEnd);
  assert.equal(lru.isolationViolations, 0);
  assert.equal(lru.dmaErrors, 0);
});

Deno.test("viommu-pin pins a NIC's recycled ring for the whole run, storage blocks only in flight", () => {
  const base = {
    vm: { memory: "256MiB" },
    host: { memory: "1GiB" },
    dma: { mode: "viommu-pin" },
    check: true,
  };
  const nic = runScenario(parseScenario({
    ...base,
    workload: {
      kind: "nic-rx",
      ringEntries: 64,
      bufferSize: "2KiB",
      packets: 500,
    },
  }));
  assert.equal(nic.extra!.viommuTraps, 1, "the ring is mapped once");
  assert.equal(nic.pinnedPagesEnd, 32, "64 × 2 KiB stays pinned");
  const storage = runScenario(parseScenario({
    ...base,
    workload: {
      kind: "storage",
      blockSize: "128KiB",
      totalBytes: "4MiB",
      queueDepth: 4,
    },
  }));
  assert.equal(
    storage.extra!.viommuTraps,
    2 * 32,
    "a map and an unmap per block",
  );
  assert.equal(storage.pinnedPagesPeak, 4 * 32, "queue depth × block");
  assert.equal(storage.pinnedPagesEnd, 0);
});

Deno.test("viommu-pin over RLIMIT_MEMLOCK: the failed MAP_DMA is counted, the DMA fails, nothing crashes", () => {
  const m = runScenario(parseScenario({
    vm: { memory: "64MiB" },
    host: { memory: "1GiB", memlockLimit: "64KiB" },
    dma: { mode: "viommu-pin" },
    workload: {
      kind: "accelerator",
      messageSize: "64KiB",
      messages: 1,
      reuseBuffers: true,
    },
    check: true,
  }));
  assert.equal(m.extra!.viommuMapFailures, 1, "the output buffer does not fit");
  assert.ok(m.dmaErrors > 0);
  assert.equal(m.lockedBytesPeak, 64 * 1024);
  assert.equal(m.isolationViolations, 0);
});

Deno.test("the comparison modes refuse nested translation when parsed, naming both fields", () => {
  for (const mode of ["viommu-pin", "coiommu"]) {
    assert.throws(
      () =>
        parseScenario({
          vm: { memory: "64MiB" },
          host: { memory: "1GiB" },
          smmu: { stage: "nested" },
          dma: { mode },
        }),
      (e: unknown) => {
        assert.ok(e instanceof IopfLabError);
        assert.equal(e.code, "EINVAL");
        assert.equal(e.where, "dma.mode");
        assert.equal(
          e.message,
          `dma.mode: nested translation is modelled with "iopf" stage 2 or "static-pin"; got "${mode}" (with smmu.stage "nested") (EINVAL)`,
        );
        return true;
      },
    );
  }
});

const WORKLOADS: Record<string, Record<string, unknown>> = {
  "accelerator reuse": {
    kind: "accelerator",
    messageSize: "64KiB",
    messages: 4,
    reuseBuffers: true,
  },
  "accelerator fresh": {
    kind: "accelerator",
    messageSize: "48KiB",
    messages: 4,
    reuseBuffers: false,
  },
  storage: {
    kind: "storage",
    blockSize: "64KiB",
    totalBytes: "2MiB",
    queueDepth: 4,
  },
  "nic-rx": {
    kind: "nic-rx",
    ringEntries: 32,
    bufferSize: "2KiB",
    packets: 200,
  },
  random: { kind: "random", workingSet: "1MiB", accesses: 300, queueDepth: 4 },
};

const MODES: Record<string, Record<string, unknown>> = {
  "static-pin": { mode: "static-pin" },
  iopf: { mode: "iopf" },
  "iopf+notifier": { mode: "iopf", mmuNotifier: true, premapPages: 4 },
  "viommu-pin": { mode: "viommu-pin" },
  coiommu: { mode: "coiommu" },
  "coiommu lru": {
    mode: "coiommu",
    coiommuUnpinPolicy: "lru",
    coiommuUnpinInterval: "1ms",
    coiommuGenerationThreshold: 2,
  },
};

Deno.test("every mode passes the isolation sanitizer and the invariants (strict mode)", async (t) => {
  for (const [mname, dma] of Object.entries(MODES)) {
    for (const fault of ["stall", "pri"]) {
      await t.step(`${mname}, ${fault}`, () => {
        for (const [wname, workload] of Object.entries(WORKLOADS)) {
          const m = runScenario(parseScenario({
            name: `${mname} ${wname}`,
            vm: { memory: "32MiB", count: 2 },
            host: { memory: "256MiB" },
            // coIOMMU's LRU thread runs at most every 1 ms: a slow device
            // makes the runs long enough for it to scan and unpin.
            device: mname === "coiommu lru"
              ? { fault, dmaBandwidth: "64MB/s" }
              : { fault },
            dma,
            workload,
            check: true,
          }));
          const what = `${mname} / ${wname} / ${fault}`;
          assert.equal(
            m.isolationViolations,
            0,
            `${what}: ${m.violationExamples}`,
          );
          assert.equal(m.dmaErrors, 0, what);
          assert.equal(m.extra!.vmsStarted, 2, what);
          assert.equal(m.invariants!.violations, 0, what);
          assert.ok(m.invariants!.checks > 0, what);
        }
      });
    }
  }
});

Deno.test("compareModes: tidy rows per workload and design, series, recommendations from the rows", () => {
  const r = compareModes({
    scenario: { host: { memory: "1GiB" }, vm: { memory: "64MiB" } },
    workloads: {
      acc: {
        kind: "accelerator",
        messageSize: "64KiB",
        messages: 4,
        reuseBuffers: false,
      },
    },
    density: { hostMemory: "256MiB", vmMemory: "96MiB", vms: 4 },
    seriesPoints: 8,
  });
  assert.deepEqual(r.rows.map((x) => x.mode), [
    "static-pin",
    "iopf",
    "iopf+notifier",
    "viommu-pin",
    "coiommu",
  ]);
  const row = Object.fromEntries(r.rows.map((x) => [x.mode, x]));
  assert.equal(row["static-pin"]!.pinnedFraction, 1);
  assert.equal(row["static-pin"]!.vmsPerHost, 2);
  assert.equal(row["viommu-pin"]!.vmsPerHost, 4);
  assert.equal(row["viommu-pin"]!.traps, 16);
  assert.equal(row["iopf"]!.faults, 4 * 32);
  assert.equal(row["coiommu"]!.doorbells, 8);
  assert.ok(r.series.length > 5 * 8);
  assert.ok(r.series.every((p) => p.workload === "acc"));
  assert.equal(r.density.length, 5);
  const rec = r.recommendations[0]!;
  assert.equal(rec.workload, "acc");
  assert.notEqual(rec.mode, "static-pin");
  const eligible = r.rows.filter((x) =>
    x.pinnedBytesPeak <= rec.pinnedLimitBytes
  );
  const best = Math.max(...eligible.map((x) => x.throughputBytesPerSec));
  assert.equal(rec.throughputBytesPerSec, best);
  assert.match(
    rec.reason,
    /Excluded: static-pin pins 64 MiB \(100% of guest RAM\)/,
  );
});

Deno.test("recommendDesigns: the pinning budget, DMA errors and ties decide", () => {
  const row = (
    mode: ModeRow["mode"],
    tput: number,
    pinned: number,
    extra: Partial<ModeRow> = {},
  ): ModeRow => ({
    workload: "w",
    mode,
    setupNs: 0,
    runNs: 1e9,
    dmaBytes: tput,
    throughputBytesPerSec: tput,
    pinnedPagesPeak: pinned / 4096,
    pinnedBytesPeak: pinned,
    pinnedBytesEnd: pinned,
    pinnedFraction: pinned / (1024 * MiB),
    lockedBytesPeak: pinned,
    faults: 0,
    traps: 0,
    doorbells: 0,
    faultsPerSec: 0,
    trapsPerSec: 0,
    doorbellsPerSec: 0,
    hostEventsPerSec: 0,
    dmaErrors: 0,
    isolationViolations: 0,
    vmsPerHost: NaN,
    ...extra,
  });
  const [a] = recommendDesigns([
    row("static-pin", 8e9, 1024 * MiB),
    row("iopf", 5e9, 10 * MiB, { dmaErrors: 3 }),
    row("viommu-pin", 2e9, 1 * MiB),
    row("coiommu", 3e9, 20 * MiB),
  ], { pinnedLimitBytes: 256 * MiB });
  assert.equal(a!.mode, "coiommu");
  assert.match(a!.reason, /next viommu-pin at 67% of its throughput/);
  assert.match(a!.reason, /iopf had 3 DMA errors/);
  const [b] = recommendDesigns([
    row("static-pin", 8e9, 1024 * MiB),
    row("iopf", 5e9, 512 * MiB),
  ], { pinnedLimitBytes: 256 * MiB });
  assert.equal(b!.mode, "iopf");
  assert.match(
    b!.reason,
    /no design stays within 256 MiB pinned; it pins least/,
  );
});
