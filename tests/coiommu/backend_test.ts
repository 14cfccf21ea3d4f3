import assert from "node:assert/strict";
import { DTTE_ACCESSED, DTTE_PINNED } from "../../lib/coiommu/mod.ts";
import { GFN0, GPA, passes, rig } from "./_rig.ts";

Deno.test("dma_map pins only frames not pinned yet, one doorbell per map, one VFIO map per page", async (t) => {
  const r = rig();
  await t.step(
    "first map of 4 pages: one doorbell, 4 pinned pages, locked_vm charged",
    () => {
      let iova = -1;
      r.frontend.dmaMap(GPA + 0x10_0000, 0x4000, (i) => (iova = i));
      r.sim.run();
      assert.equal(iova, GPA + 0x10_0000, "coIOMMU does not remap: IOVA = GPA");
      assert.equal(r.mm.pinnedPages, 4);
      assert.equal(r.mm.lockedVm, 4);
      assert.equal(r.container.dmas().length, 4, "a 4 KiB vfio_dma per page");
      assert.equal(r.frontend.counters.get("coiommu.doorbells"), 1);
      assert.equal(r.frontend.counters.get("coiommu.batched"), 1);
      const gfn = GFN0 + 0x100;
      assert.equal(r.dtt.entry(gfn), (DTTE_PINNED | DTTE_ACCESSED | 1) >>> 0);
    },
  );
  await t.step("overlapping map: only the 2 new frames are requested", () => {
    r.frontend.dmaMap(GPA + 0x10_2000, 0x4000, () => {});
    r.sim.run();
    assert.equal(r.frontend.counters.get("coiommu.doorbells"), 2);
    assert.equal(r.frontend.counters.get("coiommu.doorbellPages"), 6);
    assert.equal(r.mm.pinnedPages, 6);
  });
  await t.step(
    "a map of pinned frames needs no doorbell and takes dttMark per page",
    () => {
      const t0 = r.sim.now;
      let at = -1;
      r.frontend.dmaMap(GPA + 0x10_0000, 0x2000, () => (at = r.sim.now));
      r.sim.run();
      assert.equal(r.frontend.counters.get("coiommu.doorbells"), 2);
      assert.equal(at - t0, 2 * r.costs["coiommu.dttMark"]);
    },
  );
  await t.step("dma_unmap only unmarks: pages stay pinned", () => {
    r.frontend.dmaUnmap(GPA + 0x10_0000, 0x4000, () => {});
    r.sim.run();
    assert.equal(r.mm.pinnedPages, 6);
    assert.throws(
      () => r.frontend.dmaUnmap(GPA + 0x20_0000, 0x1000, () => {}),
      /frame 0x40200 is not mapped/,
    );
  });
});

Deno.test("policy off never unpins; the timer is not even armed", () => {
  const r = rig();
  r.backend.start();
  assert.equal(r.backend.running, false);
  r.frontend.dmaMap(
    GPA,
    0x1000,
    (iova) => r.frontend.dmaUnmap(iova, 0x1000, () => {}),
  );
  r.sim.run();
  assert.equal(r.mm.pinnedPages, 1);
  assert.equal(r.backend.stats().newGeneration, 0, "no LRU bookkeeping");
});

Deno.test("LRU: a released page gets a second chance, then is unpinned", () => {
  const r = rig({ backend: { unpinPolicy: "lru" } });
  r.frontend.dmaMap(
    GPA,
    0x2000,
    (iova) => r.frontend.dmaUnmap(iova, 0x2000, () => {}),
  );
  r.sim.run();
  assert.equal(r.mm.pinnedPages, 2);
  passes(r, 1);
  assert.equal(r.backend.stats().secondChances, 2, "ACCESSED was set");
  assert.equal(r.dtt.entry(GFN0), DTTE_PINNED, "ACCESSED cleared");
  assert.equal(r.mm.pinnedPages, 2);
  passes(r, 1);
  assert.equal(r.backend.stats().unpinnedPages, 2);
  assert.equal(r.dtt.entry(GFN0), 0);
  assert.equal(r.mm.pinnedPages, 0, "unpinned after the IOTLB sync");
  assert.equal(r.mm.lockedVm, 0);
  assert.equal(r.container.dmas().length, 0);
  // Mapping it again pins it again.
  r.frontend.dmaMap(GPA, 0x1000, () => {});
  r.sim.run();
  assert.equal(r.mm.pinnedPages, 1);
  assert.equal(r.backend.stats().pinnedTotal, 3);
});

Deno.test("LRU generations: a busy page ages into the old generation, scanned every threshold passes", () => {
  const r = rig({ backend: { unpinPolicy: "lru", generationThreshold: 2 } });
  let iova = -1;
  r.frontend.dmaMap(GPA, 0x1000, (i) => (iova = i));
  r.sim.run();
  const scanned = () => r.backend.stats().scannedEntries;
  passes(r, 1); // counter 1: new generation only; busy 1
  assert.equal(scanned(), 1);
  passes(r, 1); // counter 2: old (empty), then new; busy 2 -> old
  assert.equal(scanned(), 2);
  assert.equal(r.backend.stats().agedPages, 1);
  assert.deepEqual(
    [r.backend.stats().newGeneration, r.backend.stats().oldGeneration],
    [0, 1],
  );
  passes(r, 1); // counter 1: the old generation is skipped
  assert.equal(scanned(), 2);
  passes(r, 1); // counter 2: old scanned, still mapped
  assert.equal(scanned(), 3);
  assert.equal(r.mm.pinnedPages, 1, "a busy page is never unpinned");
  r.frontend.dmaUnmap(iova, 0x1000, () => {});
  r.sim.run();
  passes(r, 1);
  assert.equal(r.mm.pinnedPages, 1, "old generation not scanned this pass");
  passes(r, 1);
  assert.equal(
    r.mm.pinnedPages,
    0,
    "exactly PINNED at the old generation's turn",
  );
  assert.equal(r.backend.stats().secondChances, 3);
});

Deno.test("the unpin thread runs every interval until stopped", () => {
  const r = rig({ backend: { unpinPolicy: "lru", unpinInterval: 1e6 } });
  r.frontend.dmaMap(
    GPA,
    0x1000,
    (iova) => r.frontend.dmaUnmap(iova, 0x1000, () => {}),
  );
  r.backend.start();
  r.sim.run({ until: 3.5e6 });
  r.backend.stop();
  r.sim.run();
  assert.equal(r.backend.stats().unpinScans, 3);
  assert.equal(r.mm.pinnedPages, 0);
  assert.equal(r.backend.running, false);
});

Deno.test("a balloon request unpins by force, but not a page the guest still maps", () => {
  const r = rig({ backend: { unpinPolicy: "lru" } });
  let iova = -1;
  r.frontend.dmaMap(GPA, 0x1000, (i) => (iova = i));
  r.frontend.dmaMap(
    GPA + 0x1000,
    0x1000,
    (i) => r.frontend.dmaUnmap(i, 0x1000, () => {}),
  );
  r.sim.run();
  assert.equal(r.mm.pinnedPages, 2);
  let res = { unpinned: -1, ok: true, refusedGfn: -1 };
  r.backend.balloon(GPA + 0x1000, 0x1000, (x) => (res = x));
  r.sim.run();
  assert.deepEqual(
    res,
    { unpinned: 1, ok: true, refusedGfn: -1 },
    "ACCESSED set, but forced",
  );
  r.backend.balloon(GPA, 0x1000, (x) => (res = x));
  r.sim.run();
  assert.deepEqual(res, { unpinned: 0, ok: false, refusedGfn: GFN0 });
  assert.equal(r.mm.pinnedPages, 1);
  assert.equal(r.backend.stats().balloonRefused, 1);
  // A later LRU pass drops the ballooned page's queue entry as not pinned.
  r.frontend.dmaUnmap(iova, 0x1000, () => {});
  r.sim.run();
  passes(r, 2);
  assert.equal(r.mm.pinnedPages, 0);
  assert.equal(r.backend.stats().newGeneration, 0);
});

Deno.test("a page VFIO cannot pin (RLIMIT_MEMLOCK) stays unpinned and is counted", () => {
  const r = rig({ memlockLimit: 2 * 4096 });
  r.frontend.dmaMap(GPA, 0x3000, () => {});
  r.sim.run();
  const s = r.backend.stats();
  assert.equal(s.pinnedPages, 2);
  assert.equal(s.pinFailures, 1);
  assert.equal(r.backend.lastPinError?.code, "ENOMEM");
  assert.equal(r.dtt.entry(GFN0 + 2) & DTTE_PINNED, 0);
  assert.equal(r.mm.lockedVm, 2);
});

Deno.test("an unpin interval shorter than a pass does not pile passes up (queue_delayed_work on pending work is a no-op)", () => {
  // 1 ns interval: a tick every ns, but each pass (wakeup + scan) takes
  // longer, so at most one pass is pending at a time.
  const r = rig({ backend: { unpinPolicy: "lru", unpinInterval: 1 } });
  r.frontend.dmaMap(GPA, 0x1000, () => {});
  r.backend.start();
  r.sim.run({ until: 1e5 });
  r.backend.stop();
  r.sim.run();
  const s = r.backend.stats();
  const wakeup = r.costs["coiommu.threadWakeup"];
  assert(s.unpinScans >= 1 && s.unpinScans <= Math.ceil(1e5 / wakeup) + 1);
  assert(s.unpinTicksSkipped > 1e5 / 2);
  assert.equal(r.backend.lock.waits <= s.unpinScans, true);
});
