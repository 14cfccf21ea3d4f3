/**
 * The DMA isolation sanitizer catches what it should: an access through a
 * translation the IOMMU no longer has (an unmap without IOTLB/ATC
 * invalidation), and the exposure lazy invalidation trades for speed; and
 * stays silent in strict mode across every workload kind, mode, fault path
 * and translation stage (each run with `check: true`, so every invariant is
 * checked too).
 */
import assert from "node:assert/strict";
import {
  GUEST_RAM_BASE,
  type Metrics,
  runScenario,
  type Scenario,
  teardown,
} from "../../lib/experiment/mod.ts";
import { newIotlbGather } from "../../lib/iommu/types.ts";
import { PAGE_SIZE } from "../../lib/sim/units.ts";
import {
  assertNothingLeaked,
  assertQuiet,
  newDmaLog,
  runWithReclaim,
  smallScenario,
  startDma,
  startMachine,
} from "./_machine.ts";

const KINDS: Record<string, Record<string, unknown>> = {
  boot: { kind: "boot" },
  accelerator: { kind: "accelerator", messageSize: "64KiB", messages: 4 },
  random: {
    kind: "random",
    workingSet: "2MiB",
    accesses: 300,
    accessSize: "6KiB",
    distribution: "zipf",
  },
  "nic-rx": {
    kind: "nic-rx",
    ringEntries: 32,
    bufferSize: "2KiB",
    packets: 300,
  },
  storage: {
    kind: "storage",
    blockSize: "64KiB",
    totalBytes: "2MiB",
    freshBuffers: true,
  },
  trace: { kind: "trace", file: "trace.csv" },
};

const TRACE = [
  "time_ns,stream,op,iova,size",
  "0,0,w,0x100000,8192",
  "100,0,r,0x100000,4096",
  "200,0,w,0x3ff000,4096",
  "250,0,r,0x200800,6000",
  "5000,0,w,0x100000,16384",
].join("\n") + "\n";

Deno.test("an unmap without IOTLB invalidation is an isolation violation", async (t) => {
  for (const fault of ["stall", "pri"] as const) {
    await t.step(fault, () => {
      const { m, sanitizer, vm } = startMachine(smallScenario({
        device: { fault },
        dma: { mode: "static-pin" },
      }));
      const log = newDmaLog();
      const iova = GUEST_RAM_BASE + 0x10_0000;
      // Warm the IOTLB (and the ATC of a PCIe device) with the page.
      startDma(vm, log, { iova, size: PAGE_SIZE, write: false });
      m.sim.run();
      assert.equal(sanitizer.violations, 0);
      // Unmap it behind the driver's back: the page table forgets it, but
      // no TLBI, ATC_INV or CMD_SYNC is ever sent.
      const gather = newIotlbGather();
      const r = m.core.unmapFast(
        vm.container.domain!,
        iova,
        PAGE_SIZE,
        gather,
      );
      assert.equal(r.bytes, PAGE_SIZE);
      assert.equal(m.core.iovaToPhys(vm.container.domain!, iova), -1);
      startDma(vm, log, { iova, size: PAGE_SIZE, write: true });
      m.sim.run();
      // The device went through the stale entry and thinks all is well...
      assert.deepEqual(log.results.map((x) => x.ok), [true, true]);
      assert.equal(vm.device.stats.dmaErrors, 0);
      // ...and the sanitizer says why that is wrong.
      assert.equal(sanitizer.violations, 1);
      assert.equal(sanitizer.lazyExposures, 0);
      assert.match(
        sanitizer.examples[0]!,
        new RegExp(
          `^${vm.device.name} write IOVA 0x40100000 reached page 0x[0-9a-f]+ at \\d+ ns: the domain maps nothing at this address$`,
        ),
      );
      teardown(m);
      assertQuiet(m);
      assertNothingLeaked(m);
    });
  }
});

Deno.test("an unmap through the core with its IOTLB sync is no violation: the device gets an error", () => {
  const { m, sanitizer, vm } = startMachine(smallScenario({
    dma: { mode: "static-pin" },
  }));
  const log = newDmaLog();
  const iova = GUEST_RAM_BASE + 0x10_0000;
  startDma(vm, log, { iova, size: PAGE_SIZE, write: false });
  m.sim.run();
  m.core.unmap(vm.container.domain!, iova, PAGE_SIZE);
  m.sim.run(); // the sync completes
  startDma(vm, log, { iova, size: PAGE_SIZE, write: true });
  m.sim.run();
  assert.deepEqual(log.results.map((x) => x.ok), [true, false]);
  assert.equal(vm.device.stats.dmaErrors, 1);
  assert.equal(sanitizer.violations, 0);
  assertQuiet(m);
});

/** Runs one scenario of the strict table; returns its metrics. */
function runStrict(s: Scenario): Metrics {
  const m = runScenario(s);
  assert.equal(m.isolationViolations, 0, m.violationExamples?.join("\n"));
  assert.ok(m.invariants, "check: true reports the invariants");
  assert.ok(m.invariants.checks >= 10, `${m.invariants.checks} checks`);
  assert.equal(m.dmaErrors, 0);
  assert.equal(m.extra?.vmsStarted, s.vm.count);
  return m;
}

Deno.test("strict mode: no violation and every invariant holds, every kind x mode x fault x stage", async (t) => {
  const dir = Deno.makeTempDirSync({ prefix: "iopf-strict-" });
  Deno.writeTextFileSync(`${dir}/trace.csv`, TRACE);
  try {
    for (const [kind, workload] of Object.entries(KINDS)) {
      for (const mode of ["static-pin", "iopf"]) {
        for (const fault of ["stall", "pri"]) {
          for (const stage of ["s1", "s2", "nested"]) {
            const name = `${kind} ${mode} ${fault} ${stage}`;
            await t.step(name, () => {
              const s = smallScenario({
                name,
                smmu: { stage, invalidation: "strict" },
                device: { fault },
                dma: { mode, mmuNotifier: mode === "iopf" && kind !== "boot" },
                ...(stage === "nested"
                  ? {
                    guest: {
                      stage1: kind === "random" ? "on-fault" : "premapped",
                    },
                  }
                  : {}),
                workload,
                check: true,
              }, { baseDir: dir });
              const m = runStrict(s);
              if (kind !== "boot") assert.ok(m.dmaBytes > 0, "no DMA at all");
              if (mode === "iopf" && kind !== "boot") {
                assert.ok(m.faults.total > 0, "IOPF without faults");
              }
            });
          }
        }
      }
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/** IOPF with the MMU notifier on a random workload, under reclaim. */
function reclaimScenario(
  invalidation: "strict" | "lazy",
  fault: "stall" | "pri",
  stage: "s1" | "s2" | "nested",
): Scenario {
  return smallScenario({
    name: `reclaim ${invalidation} ${fault} ${stage}`,
    vm: { memory: "16MiB" },
    smmu: { stage, invalidation },
    device: { fault },
    dma: { mode: "iopf", mmuNotifier: true, faultWorkers: 2 },
    workload: {
      kind: "random",
      workingSet: "4MiB",
      accesses: 1500,
      queueDepth: 8,
    },
    check: true,
  });
}

/**
 * Heavy pressure (32 pages every 200 us); at 8 pages every 50 us a nested
 * stall workload in strict mode thrashes: every page the device faults in
 * looks idle to reclaim (device accesses set no accessed bit) and is
 * reclaimed before the next level of the stage-1 walk faults in.
 */
const RECLAIM = { everyNs: 200_000, pages: 32 };

Deno.test("lazy mode under reclaim: the MMU notifier is still strict, nothing stays reachable", async (t) => {
  // Lazy invalidation is a DMA-API thing (drivers/iommu/dma-iommu.c, the
  // flush queue of iommu.strict=0); an MMU notifier's invalidate_range_start
  // (mm/mmu_notifier.c) must complete before the mm frees the page, so
  // lazy mode leaves the notifier's unmaps synchronous.
  for (const fault of ["stall", "pri"] as const) {
    await t.step(fault, () => {
      const r = runWithReclaim(reclaimScenario("lazy", fault, "s2"), RECLAIM);
      assert.ok(r.reclaimed > 0 && r.notifierUnmapped > 0, "no VFIO unmaps");
      const san = r.sanitizer;
      assert.equal(san.lazyExposures, 0);
      assert.equal(san.violations, 0, san.examples.join("\n"));
      assert.equal(r.m.core.flushQueue.exposureNs.count, 0);
      assert.ok(r.m.core.counters.get("iommu.blockingSyncs") > 0);
    });
  }
});

Deno.test("lazy mode in a scenario: vIOMMU unmaps of fresh storage buffers leave exposure windows", () => {
  const m = runScenario(smallScenario({
    smmu: { invalidation: "lazy" },
    dma: { mode: "viommu-pin" },
    workload: {
      kind: "storage",
      blockSize: "64KiB",
      totalBytes: "2MiB",
      freshBuffers: true,
    },
    check: true,
  }));
  assert.ok(m.extra!.lazyExposureNsMax! > 0, "no exposure window");
  assert.ok(m.extra!.lazyExposures! > 0, "no access through a stale entry");
  assert.equal(m.isolationViolations, m.extra!.lazyExposures);
  assert.match(m.violationExamples![0]!, /awaiting the lazy flush$/);
});

Deno.test("strict mode under reclaim: the MMU notifier's unmaps leave nothing reachable", async (t) => {
  // Known bug while the synchronous notifier invalidation is being landed
  // (lib/smmu, lib/iommu, lib/vfio): a stalled or ATS-retried access whose
  // translation was taken before the notifier's unmap completes after it.
  for (const fault of ["stall", "pri"] as const) {
    for (const stage of ["s1", "s2", "nested"] as const) {
      await t.step(`${fault} ${stage}`, () => {
        const r = runWithReclaim(
          reclaimScenario("strict", fault, stage),
          RECLAIM,
        );
        assert.ok(r.notifierUnmapped > 0, "no VFIO unmaps");
        assert.equal(
          r.sanitizer.violations,
          0,
          r.sanitizer.examples.join("\n"),
        );
      });
    }
  }
});

Deno.test("overcommitted VMs: reclaim drives the MMU notifier; it leaves nothing reachable in strict and in lazy mode", async (t) => {
  const overcommit = (
    invalidation: string,
    fault: string,
    stage: string,
  ) =>
    runScenario(smallScenario({
      name: `overcommit ${invalidation} ${fault} ${stage}`,
      host: { memory: "16MiB" },
      vm: { memory: "16MiB", count: 2 },
      smmu: { stage, invalidation },
      device: { fault },
      dma: { mode: "iopf", mmuNotifier: true, faultWorkers: 2 },
      workload: { kind: "random", workingSet: "12MiB", accesses: 8000 },
      check: true,
    }));
  for (const [fault, stage] of [["stall", "nested"], ["pri", "s2"]]) {
    await t.step(`strict ${fault} ${stage}`, () => {
      const m = overcommit("strict", fault!, stage!);
      assert.ok(m.extra!.notifierUnmappedPages! > 0, "no reclaim");
      assert.equal(m.isolationViolations, 0, m.violationExamples?.join("\n"));
      assert.ok(m.invariants!.checks > 0);
    });
    await t.step(`lazy ${fault} ${stage}`, () => {
      // The notifier is strict in every mode (lazy is for DMA-API unmaps).
      const m = overcommit("lazy", fault!, stage!);
      assert.ok(m.extra!.notifierUnmappedPages! > 0, "no reclaim");
      assert.equal(m.extra!.lazyExposureNsMax, 0);
      assert.equal(m.extra!.lazyExposures, 0);
      assert.equal(m.isolationViolations, 0, m.violationExamples?.join("\n"));
    });
  }
});
