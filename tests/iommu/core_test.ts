import assert from "node:assert/strict";
import { IommuCore } from "../../lib/iommu/core.ts";
import { newIotlbGather } from "../../lib/iommu/types.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import {
  PROT_READ,
  PROT_WRITE,
  SZ_1G,
  SZ_2M,
  SZ_4K,
} from "../../lib/sim/units.ts";
import { fakeDevice, FakeIommuDriver } from "./_fake_driver.ts";

function setup(overrides: Record<string, number> = {}, lazy = false) {
  const sim = new Simulator();
  const costs = loadCostProfile(overrides);
  const driver = new FakeIommuDriver(sim, { costs });
  const core = new IommuCore(sim, {
    costs,
    driver,
    invalidation: lazy ? "lazy" : "strict",
  });
  driver.bind(core);
  return { sim, costs, driver, core };
}

Deno.test("iommu core: map, unmap and strict invalidation", async (t) => {
  await t.step(
    "map maps with the largest page sizes and returns its cost",
    () => {
      const { core, costs } = setup();
      const d = core.domainAllocPaging(2);
      const ns = core.map(
        d,
        SZ_1G,
        2 * SZ_1G,
        SZ_1G + SZ_2M,
        PROT_READ | PROT_WRITE,
      );
      // One 1 GiB block and one 2 MiB block, plus a table page for the 2 MiB level.
      assert.ok(ns >= costs["iommu.mapCall"] + 2 * costs["iommu.mapPerPte"]);
      assert.equal(
        core.iovaToPhys(d, SZ_1G + SZ_1G + 0x1234),
        3 * SZ_1G + 0x1234,
      );
      assert.equal(d.mappedBytes, SZ_1G + SZ_2M);
    },
  );

  await t.step(
    "misaligned, empty and overlapping maps fail and change nothing",
    () => {
      const { core } = setup();
      const d = core.domainAllocPaging(2);
      assert.throws(() => core.map(d, 0x1800, 0, SZ_4K, PROT_READ), {
        code: "EINVAL",
      });
      assert.throws(() => core.map(d, 0, 0, 0, PROT_READ), {
        code: "EINVAL",
      });
      assert.throws(() => core.map(d, 0, 0, SZ_4K, 0), { code: "EINVAL" });
      core.map(d, 0, 0, SZ_4K, PROT_READ);
      assert.throws(() => core.map(d, 0, SZ_4K, SZ_4K, PROT_READ), {
        code: "EEXIST",
      });
      assert.equal(d.mappedBytes, SZ_4K);
    },
  );

  await t.step(
    "a nested domain's stage 1 cannot be mapped through the core",
    () => {
      const { core } = setup();
      const s2 = core.domainAllocPaging(2);
      const n = core.domainAllocNested(s2, {
        s1Ttb: 0x1000,
        asid: 1,
        stall: true,
      });
      assert.throws(() => core.map(n, 0, 0, SZ_4K, PROT_READ), {
        code: "EINVAL",
      });
      assert.throws(() => core.domainFree(s2), { code: "EBUSY" });
      core.domainFree(n);
      core.domainFree(s2);
    },
  );

  await t.step("strict unmap syncs before done", () => {
    const { core, sim, driver } = setup();
    const d = core.domainAllocPaging(2);
    core.map(d, 0, 0, 4 * SZ_4K, PROT_READ);
    let doneAt = -1;
    const r = core.unmap(d, 0, 2 * SZ_4K, () => doneAt = sim.now);
    assert.equal(r.bytes, 2 * SZ_4K);
    assert.equal(core.iovaToPhys(d, 0), -1);
    assert.equal(core.iovaToPhys(d, 2 * SZ_4K), 2 * SZ_4K);
    sim.run();
    assert.equal(doneAt, driver.syncNs);
    assert.equal(driver.syncs.length, 1);
    assert.equal(driver.syncs[0]!.gather.start, 0);
    assert.equal(driver.syncs[0]!.gather.end, 2 * SZ_4K);
  });

  await t.step(
    "unmapFast only gathers; iotlbSync resets the gather",
    () => {
      const { core, sim, driver } = setup();
      const d = core.domainAllocPaging(1);
      core.map(d, 0, 0, 4 * SZ_4K, PROT_READ);
      const g = newIotlbGather();
      core.unmapFast(d, 0, SZ_4K, g);
      core.unmapFast(d, 3 * SZ_4K, SZ_4K, g);
      assert.equal(driver.syncs.length, 0);
      assert.equal(g.entries, 2);
      core.iotlbSync(d, g);
      assert.equal(g.entries, 0);
      sim.run();
      assert.equal(driver.syncs.length, 1);
      assert.equal(driver.syncs[0]!.gather.end, 4 * SZ_4K);
      assert.equal(core.counters.get("iommu.syncs"), 1);
    },
  );
});

Deno.test("iommu core: blocking unmap (unmapBlocking) for MMU notifiers", async (t) => {
  await t.step(
    "strict: unmaps and syncs before returning; the sync's ns are in the cost",
    () => {
      const { core, sim, driver, costs } = setup();
      const d = core.domainAllocPaging(2);
      core.map(d, 0, 0, 4 * SZ_4K, PROT_READ);
      const r = core.unmapBlocking(d, SZ_4K, 2 * SZ_4K);
      assert.equal(r.bytes, 2 * SZ_4K);
      assert.equal(
        r.ns,
        costs["iommu.unmapCall"] + 2 * costs["iommu.unmapPerPte"] +
          driver.syncNs,
      );
      assert.equal(core.iovaToPhys(d, SZ_4K), -1);
      assert.equal(d.mappedBytes, 2 * SZ_4K);
      assert.equal(driver.syncs.length, 1);
      const sync = driver.syncs[0]!;
      assert.ok(sync.blocking);
      assert.equal(sync.at, 0);
      assert.deepEqual([sync.gather.start, sync.gather.end], [
        SZ_4K,
        3 * SZ_4K,
      ]);
      assert.equal(core.pendingSyncs.length, 0);
      assert.equal(sim.pending, 0, "nothing left to complete");
      assert.equal(core.counters.get("iommu.syncs"), 1);
      assert.equal(core.counters.get("iommu.blockingSyncs"), 1);
      assert.equal(core.syncLatency.count, 1);
    },
  );

  await t.step("nothing mapped: no sync, only the unmap call", () => {
    const { core, driver, costs } = setup();
    const d = core.domainAllocPaging(2);
    const r = core.unmapBlocking(d, 0, SZ_4K);
    assert.deepEqual(r, { bytes: 0, ns: costs["iommu.unmapCall"] });
    assert.equal(driver.syncs.length, 0);
    assert.equal(core.iotlbSyncBlocking(d, newIotlbGather()), 0);
  });

  await t.step("iotlbSyncBlocking resets the gather", () => {
    const { core, driver } = setup();
    const d = core.domainAllocPaging(1);
    core.map(d, 0, 0, 2 * SZ_4K, PROT_READ);
    const g = newIotlbGather();
    core.unmapFast(d, 0, 2 * SZ_4K, g);
    assert.equal(core.iotlbSyncBlocking(d, g), driver.syncNs);
    assert.deepEqual(g, newIotlbGather());
  });

  await t.step(
    "lazy mode: still a blocking sync, nothing queued (the notifier is strict in every mode)",
    () => {
      // Linux defers IOTLB invalidation only for DMA-API domains
      // (drivers/iommu/dma-iommu.c iommu_dma_unmap -> iommu_dma_free_iova ->
      // queue_iova, iommu.strict=0); an MMU notifier's invalidate_range_start
      // (mm/mmu_notifier.c) must finish before the mm frees the page.
      const { core, sim, driver } = setup({}, true);
      const d = core.domainAllocPaging(2);
      core.map(d, 0, 0, 4 * SZ_4K, PROT_READ);
      const r = core.unmapBlocking(d, 0, SZ_4K);
      assert.equal(r.bytes, SZ_4K);
      assert.equal(core.counters.get("iommu.blockingSyncs"), 1);
      assert.equal(core.counters.get("iommu.lazyUnmaps"), 0);
      assert.ok(!core.flushQueue.isExposed(d.driverDomain, 0));
      assert.equal(core.flushQueue.size, 0);
      sim.run();
      assert.equal(driver.flushes.length, 0);
      // A plain unmap in the same core still goes lazy (the DMA-API what-if).
      core.unmap(d, SZ_4K, SZ_4K);
      assert.equal(core.counters.get("iommu.lazyUnmaps"), 1);
      assert.ok(core.flushQueue.isExposed(d.driverDomain, SZ_4K));
    },
  );
});

Deno.test("iommu core: lazy invalidation through the flush queue", async (t) => {
  await t.step("unmapped ranges stay exposed until a batch fills", () => {
    const { core, sim, driver } = setup({ "iommu.flushQueueBatch": 3 }, true);
    const d = core.domainAllocPaging(2);
    core.map(d, 0, 0, 8 * SZ_4K, PROT_READ);
    let dones = 0;
    core.unmap(d, 0, SZ_4K, () => dones++);
    sim.after(100, () => core.unmap(d, SZ_4K, SZ_4K, () => dones++));
    sim.run({ until: 200 });
    assert.equal(dones, 2); // the caller does not wait for the flush
    assert.equal(driver.syncs.length + driver.flushes.length, 0);
    assert.equal(core.flushQueue.size, 2);
    assert.ok(core.flushQueue.isExposed(d.driverDomain, 0));
    assert.ok(!core.flushQueue.isExposed(d.driverDomain, 2 * SZ_4K));
    core.unmap(d, 2 * SZ_4K, SZ_4K);
    assert.equal(driver.flushes.length, 1); // batch of 3 reached
    assert.equal(core.flushQueue.size, 3); // in flight until the flush completes
    sim.run();
    assert.equal(core.flushQueue.size, 0);
    assert.equal(core.flushQueue.exposureNs.count, 3);
    assert.equal(core.flushQueue.exposureNs.max, 200 + driver.syncNs);
    assert.equal(core.flushQueue.batchFlushes, 1);
  });

  await t.step("a lone range is flushed by the timeout", () => {
    const { core, sim, driver, costs } = setup({}, true);
    const d = core.domainAllocPaging(2);
    core.map(d, 0, 0, SZ_4K, PROT_READ);
    const seen: number[] = [];
    core.flushQueue.onFlushed((r) =>
      seen.push(r.completedAt - r.entries[0]!.queuedAt)
    );
    core.unmap(d, 0, SZ_4K);
    sim.run();
    assert.deepEqual(seen, [costs["iommu.flushQueueTimeout"] + driver.syncNs]);
    assert.equal(core.flushQueue.timeoutFlushes, 1);
  });
});

Deno.test("iommu core: attach and detach", async (t) => {
  await t.step("attach twice is EBUSY; detach completes asynchronously", () => {
    const { core, sim, driver } = setup();
    const dev = fakeDevice("dev0", 1);
    const d = core.domainAllocPaging(2);
    let attached = false;
    core.attachDevice(d, dev, () => attached = true);
    assert.equal(core.getDomainForDev(dev), d);
    assert.throws(() => core.attachDevice(d, dev), { code: "EBUSY" });
    sim.run();
    assert.ok(attached);
    assert.equal(driver.attached.get(dev), d.driverDomain);
    assert.throws(() => core.domainFree(d), { code: "EBUSY" });
    let detached = false;
    core.detachDevice(d, dev, () => detached = true);
    sim.run();
    assert.ok(detached);
    assert.equal(core.getDomainForDev(dev), undefined);
    core.domainFree(d);
  });
});
