import assert from "node:assert/strict";
import { loadCostProfile, Simulator } from "../../lib/sim/mod.ts";
import { Smmu, TableMemory } from "../../lib/smmu/mod.ts";
import { type DmaResult, PlatformDevice } from "../../lib/device/mod.ts";

Deno.test("a platform device moves data at its bandwidth, page by page", () => {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const smmu = new Smmu(sim, { costs, memory: new TableMemory() });
  smmu.writeSte(2, { V: true, Config: 4 });
  const dev = new PlatformDevice(sim, {
    name: "dma0",
    sid: 2,
    smmu,
    costs,
    bandwidth: "1GB/s",
  });
  assert.deepEqual(dev.iommuDevice, {
    name: "dma0",
    sid: 2,
    ats: false,
    pri: false,
    stall: true,
  });
  let res: DmaResult | undefined;
  const pages: number[] = [];
  dev.onAccess = (iova) => pages.push(iova);
  dev.dma({ iova: 0x800, size: 256 * 4096, write: false }, (r) => (res = r));
  sim.run();
  assert.ok(res?.ok && res.bytes === 256 * 4096);
  assert.equal(
    pages.length,
    257,
    "a transfer not page aligned touches one more page",
  );
  assert.equal(pages[1], 0x1000);
  const ns = res.finishedAt - res.startedAt;
  assert.ok(ns >= 256 * 4096 && ns <= 256 * 4096 + 2000, `took ${ns} ns`);
  assert.throws(
    () => dev.dma({ iova: -1, size: 1, write: false }, () => {}),
    /EINVAL/,
  );
  assert.throws(
    () => dev.dma({ iova: 0, size: 0, write: false }, () => {}),
    /EINVAL/,
  );
});
