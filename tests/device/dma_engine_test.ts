import assert from "node:assert/strict";
import { loadCostProfile, Simulator } from "../../lib/sim/mod.ts";
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
