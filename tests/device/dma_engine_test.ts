import assert from "node:assert/strict";
import { IopfLabError, loadCostProfile, Simulator } from "../../lib/sim/mod.ts";
import { Smmu, TableMemory } from "../../lib/smmu/mod.ts";
import { PlatformDevice } from "../../lib/device/mod.ts";

Deno.test("transfers share the link bandwidth", () => {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const smmu = new Smmu(sim, { costs, memory: new TableMemory() });
  smmu.writeSte(2, { V: true, Config: 4 });
  const dev = new PlatformDevice(sim, {
    name: "dma0",
    sid: 2,
    smmu,
    costs,
    bandwidth: 4096e9 / 1000,
  });
  const ends: number[] = [];
  for (let i = 0; i < 2; i++) {
    dev.dma(
      { iova: i * 0x10_0000, size: 10 * 4096, write: true },
      (r) => ends.push(r.finishedAt),
    );
  }
  sim.run();
  // 20 pages at 1000 ns each on one link: the later one finishes near 20 us.
  assert.ok(Math.max(...ends) >= 20_000);
});

/** Ends of `n` one-page transfers started at once on an engine of `slots` slots (bypass STE). */
function oneShotEnds(n: number, slots: number) {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const smmu = new Smmu(sim, { costs, memory: new TableMemory() });
  smmu.writeSte(2, { V: true, Config: 4 });
  const dev = new PlatformDevice(sim, {
    name: "dma0",
    sid: 2,
    smmu,
    costs,
    bandwidth: 4096e9 / 1000, // one page per 1000 ns
    slots,
  });
  const ends: number[] = [];
  for (let i = 0; i < n; i++) {
    dev.dma({ iova: i * 4096, size: 4096, write: true }, (r) => {
      assert.ok(r.ok);
      ends.push(r.finishedAt);
    });
  }
  sim.run();
  return { ends, costs, stats: dev.stats };
}

Deno.test("the engine's slots overlap one transfer's setup and translation with another's data", () => {
  // One slot: each transfer's setup (pci.dmaSetup) and translation wait for
  // the previous transfer to finish, so they add to every page's time.
  const serial = oneShotEnds(3, 1);
  const c = serial.costs;
  const first = serial.ends[0]!;
  assert.equal(first, c["pci.dmaSetup"] + c["smmu.cfgFetch"] + 1000);
  const perPage = c["pci.dmaSetup"] + 1000; // later ones: bypass cached
  assert.deepEqual(serial.ends, [first, first + perPage, first + 2 * perPage]);
  assert.equal(serial.stats.slotWaits, 2);
  // Three slots: the setups overlap (the two transfers whose STE is
  // already cached go first), only the link serialises the data.
  const overlapped = oneShotEnds(3, 3);
  const setup = c["pci.dmaSetup"];
  assert.deepEqual(overlapped.ends, [
    setup + 1000,
    setup + 2000,
    setup + 3000,
  ]);
  assert.equal(overlapped.stats.slotWaits, 0);
});

Deno.test("transfers beyond the slots start in the order they were asked for", () => {
  const { ends } = oneShotEnds(6, 2);
  assert.deepEqual([...ends].sort((a, b) => a - b), ends);
});

Deno.test("the engine refuses a bad number of slots", () => {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const smmu = new Smmu(sim, { costs, memory: new TableMemory() });
  for (const slots of [0, 1.5, 65537]) {
    assert.throws(
      () => new PlatformDevice(sim, { name: "d", sid: 2, smmu, costs, slots }),
      (e: unknown) => e instanceof IopfLabError && e.code === "EINVAL",
    );
  }
});
