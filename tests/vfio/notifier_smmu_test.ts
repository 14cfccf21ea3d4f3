/**
 * The MMU notifier's invalidation through the real stack (Smmu,
 * ArmSmmuV3Driver, IommuCore, devices of lib/pci): in strict mode the
 * IOTLB and the ATC no longer reach a page when the mm frees it.
 */
import assert from "node:assert/strict";
import { IommuCore } from "../../lib/iommu/core.ts";
import { HostMemory } from "../../lib/mm/host_memory.ts";
import { MmStruct } from "../../lib/mm/mm_struct.ts";
import { PciDevice } from "../../lib/pci/mod.ts";
import { PlatformDevice } from "../../lib/device/mod.ts";
import type { DmaResult } from "../../lib/device/mod.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import { PAGE_SIZE } from "../../lib/sim/units.ts";
import { ArmSmmuV3Driver, Smmu, TableMemory } from "../../lib/smmu/mod.ts";
import { VfioContainer } from "../../lib/vfio/container.ts";
import { GUEST_RAM_GPA, MiB, RW } from "./_setup.ts";

const SID = 0x100;

function realStack(kind: "platform" | "pci", lazy = false) {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const memory = new TableMemory();
  const smmu = new Smmu(sim, { costs, memory });
  const driver = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
  const core = new IommuCore(sim, {
    costs,
    driver,
    invalidation: lazy ? "lazy" : "strict",
  });
  driver.setFaultSink(core);
  const host = new HostMemory({ size: 256 * MiB, costs });
  const mm = new MmStruct(host, { memlockLimit: Infinity });
  const ram = mm.mmap({ size: 16 * MiB, backing: "4k" });
  const opts = { name: "dev0", sid: SID, smmu, costs };
  const pci = kind === "pci"
    ? new PciDevice(sim, { ...opts, name: "0000:01:00.0" })
    : undefined;
  const dev = pci ?? new PlatformDevice(sim, opts);
  const container = new VfioContainer(core, mm, {
    mmuNotifier: true,
    premapPages: 1,
  });
  container.setIommu("type1v2");
  container.attachDevice(dev.iommuDevice);
  sim.run();
  pci?.enablePri();
  container.enableIopf();
  container.mapDma({
    vaddr: ram.start,
    iova: GUEST_RAM_GPA,
    size: ram.size,
    flags: RW,
  });
  sim.run();
  const accesses: number[] = [];
  dev.onAccess = (_iova, pa) => accesses.push(pa);
  const results: DmaResult[] = [];
  const dma = (iova: number) =>
    dev.dma({ iova, size: PAGE_SIZE, write: true }, (r) => results.push(r));
  // Spy on the notifier's unmaps to see their cost.
  const unmapNs: number[] = [];
  const unmapNow = core.unmapBlocking.bind(core);
  core.unmapBlocking = (d, iova, size) => {
    const r = unmapNow(d, iova, size);
    unmapNs.push(r.ns);
    return r;
  };
  return {
    sim,
    costs,
    smmu,
    core,
    mm,
    ram,
    container,
    dev,
    pci,
    accesses,
    results,
    dma,
    unmapNs,
  };
}

type Stack = ReturnType<typeof realStack>;

/** Faults page 5 in by DMA, then DMAs it again from the IOTLB (or the ATC). */
function faultInAndCache(s: Stack): { iova: number; hva: number } {
  const iova = GUEST_RAM_GPA + 5 * PAGE_SIZE;
  const hva = s.ram.start + 5 * PAGE_SIZE;
  s.dma(iova);
  s.sim.run();
  assert.equal(s.results[0]?.ok, true);
  assert.equal(s.container.stats().faults, 1);
  assert.equal(s.accesses[0], s.mm.hvaToPfn(hva) * PAGE_SIZE);
  const hits = s.smmu.stats.iotlbHits + (s.pci?.stats.atcHits ?? 0);
  s.dma(iova);
  s.sim.run();
  assert.equal(s.results[1]?.ok, true);
  assert.equal(s.container.stats().faults, 1, "the second DMA hit the cache");
  assert.equal(s.smmu.stats.iotlbHits + (s.pci?.stats.atcHits ?? 0), hits + 1);
  assert.equal(s.accesses[1], s.accesses[0]);
  return { iova, hva };
}

/** DMAs `iova` again: it must fault and reach the page faulted in anew. */
function assertRefaults(s: Stack, iova: number, hva: number): void {
  s.dma(iova);
  s.sim.run();
  assert.equal(s.results[2]?.ok, true);
  assert.equal(s.container.stats().faults, 2, "the third DMA faulted again");
  const pfn = s.mm.hvaToPfn(hva);
  assert.ok(pfn >= 0);
  assert.equal(s.accesses[2], pfn * PAGE_SIZE);
  assert.equal(s.mm.pinnedPages, 0);
}

Deno.test("vfio notifier, real SMMU: strict invalidation completes before the mm frees the page", async (t) => {
  await t.step(
    "platform device: reclaim drops the IOTLB entry at once; the next DMA faults and reaches the new page",
    () => {
      const s = realStack("platform");
      const { iova, hva } = faultInAndCache(s);
      assert.ok(s.smmu.translateCached({ sid: SID, iova, write: true }) >= 0);
      const r = s.mm.reclaim(1);
      assert.equal(r.reclaimed, 1);
      assert.equal(s.mm.hvaToPfn(hva), -1);
      // No simulator step ran: the invalidation is already complete.
      assert.equal(
        s.smmu.translateCached({ sid: SID, iova, write: true }),
        -1,
        "no stale IOTLB entry",
      );
      assert.equal(s.core.pendingSyncs.length, 0);
      assert.equal(s.core.counters.get("iommu.blockingSyncs"), 1);
      assert.equal(s.container.stats().notifierUnmappedPages, 1);
      // The device DMAs at once, in the same instant as the reclaim.
      assertRefaults(s, iova, hva);
    },
  );

  await t.step("platform device: the same with MADV_DONTNEED", () => {
    const s = realStack("platform");
    const { iova, hva } = faultInAndCache(s);
    const ns = s.mm.madviseDontneed(hva, PAGE_SIZE);
    assert.equal(s.mm.hvaToPfn(hva), -1);
    assert.equal(s.smmu.translateCached({ sid: SID, iova, write: true }), -1);
    assert.equal(s.unmapNs.length, 1);
    assert.ok(ns >= s.unmapNs[0]!);
    assertRefaults(s, iova, hva);
  });

  await t.step(
    "the notifier's unmap and its wait for CMD_SYNC are in reclaim's ns",
    () => {
      const s = realStack("platform");
      faultInAndCache(s);
      const c = s.costs;
      const r = s.mm.reclaim(1);
      assert.equal(r.reclaimed, 1);
      assert.equal(s.unmapNs.length, 1);
      const unmap = s.unmapNs[0]!;
      // iommu_unmap of one PTE, then TLBI + CMD_SYNC spun on.
      const sync = 2 * c["smmu.cmdIssue"] + 2 * c["smmu.cmdProcess"] +
        c["smmu.cmdSync"];
      assert.ok(
        unmap >= c["iommu.unmapCall"] + c["iommu.unmapPerPte"] + sync,
        `unmap ${unmap} ns`,
      );
      assert.equal(
        r.ns,
        c["mm.reclaimPer4k"] + 2 * c["mm.notifierCall"] +
          c["vfio.bitmapCheck"] + unmap,
      );
    },
  );

  await t.step(
    "PCI device with ATS/PRI: the ATC entry is invalidated before the notifier returns",
    () => {
      const s = realStack("pci");
      const pci = s.pci!;
      const { iova, hva } = faultInAndCache(s);
      assert.ok(pci.atc!.lookup(-1, iova) >= 0, "the ATC holds the page");
      const atcInv = pci.stats.atcInvalidations;
      let atcAtNotifier = -2;
      s.mm.registerMmuNotifier(s.ram.start, s.ram.size, {
        // Registered after VFIO's: runs after VFIO's invalidate_range_start.
        invalidateRangeStart: () => {
          atcAtNotifier = pci.atc!.lookup(-1, iova);
          return 0;
        },
        invalidateRangeEnd: () => 0,
      });
      const r = s.mm.reclaim(1);
      assert.equal(r.reclaimed, 1);
      assert.equal(
        atcAtNotifier,
        -1,
        "ATC empty when VFIO's notifier returned",
      );
      assert.equal(pci.stats.atcInvalidations, atcInv + 1);
      assert.equal(pci.atc!.lookup(-1, iova), -1);
      assert.equal(s.smmu.translateCached({ sid: SID, iova, write: true }), -1);
      // The CPU waited for the device's Invalidation Completion.
      const c = s.costs;
      assert.ok(
        s.unmapNs[0]! >= c["pci.atcInvalidate"] + 2 * c["smmu.cmdSync"],
        `unmap ${s.unmapNs[0]} ns`,
      );
      assert.ok(r.ns >= s.unmapNs[0]! + c["mm.reclaimPer4k"]);
      assertRefaults(s, iova, hva);
      assert.equal(pci.stats.pageRequests, 2);
    },
  );

  await t.step(
    "lazy mode: the notifier is still strict (blocking sync, nothing in the flush queue)",
    () => {
      // Lazy invalidation exists for DMA-API domains only
      // (drivers/iommu/dma-iommu.c, iommu_dma_unmap -> the flush queue when
      // iommu.strict=0); mm/mmu_notifier.c's invalidate_range_start must be
      // complete before the mm frees the page, or the device uses freed
      // memory (Alex Williamson on RFC v3 3/8: "we can't allow the system to
      // continue in any way with pages getting unmapped from under the device").
      const s = realStack("platform", true);
      const { iova } = faultInAndCache(s);
      s.mm.reclaim(1);
      assert.equal(s.core.counters.get("iommu.blockingSyncs"), 1);
      assert.equal(s.core.counters.get("iommu.lazyUnmaps"), 0);
      assert.equal(s.core.flushQueue.size, 0);
      assert.ok(
        !s.core.flushQueue.isExposed(s.container.domain!.driverDomain, iova),
      );
      assert.equal(s.smmu.translateCached({ sid: SID, iova, write: true }), -1);
    },
  );
});
