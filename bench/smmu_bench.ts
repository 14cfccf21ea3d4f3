/**
 * SMMU translation speed (wall time of the model, not simulated time).
 * Each iteration runs a batch of 1000 translations (or 100 faults) through
 * the simulator, so per-operation cost is the reported time / batch size.
 *
 *     deno bench --allow-all bench/smmu_bench.ts
 */
import { loadCostProfile, Simulator } from "../lib/sim/mod.ts";
import { IoPgtable } from "../lib/pgtable/mod.ts";
import type { IommuDevice, IommuFault } from "../lib/iommu/types.ts";
import {
  ArmSmmuV3Driver,
  Smmu,
  TableMemory,
  type Txn,
  type TxnResult,
} from "../lib/smmu/mod.ts";
import { PlatformDevice } from "../lib/pci/mod.ts";

const RW = 3;
const BATCH = 1000;
const costs = loadCostProfile();

function s2Rig(iotlbEntries = 2048) {
  const sim = new Simulator();
  const memory = new TableMemory();
  const smmu = new Smmu(sim, { costs, memory, iotlbEntries, iotlbWays: 4 });
  const s2 = new IoPgtable({ stage: 2 });
  memory.register(0, s2);
  smmu.writeSte(1, {
    V: true,
    Config: 6,
    S2VMID: 1,
    S2TTB: s2.root,
    S2S: false,
    S2R: true,
  });
  return { sim, smmu, s2 };
}

let sink = 0;
const cb = (r: TxnResult) => {
  if (r.ok) sink += r.pa;
};

// Baseline: a bare typed-array lookup per "translation".
{
  const table = new Float64Array(1 << 16).map((_, i) => i * 4096);
  let k = 0;
  Deno.bench({
    name: "bare Float64Array lookup x1000",
    group: "translate",
    baseline: true,
    fn() {
      for (let i = 0; i < BATCH; i++) {
        sink += table[k = (k + 7919) & 0xffff]!;
      }
    },
  });
}

{
  const { sim, smmu, s2 } = s2Rig();
  s2.map(0, 0x1_0000_0000, 64 * 4096, RW);
  const txn: Txn = { sid: 1, iova: 0, write: false };
  Deno.bench({
    name: "IOTLB hit, stage 2 x1000",
    group: "translate",
    fn() {
      for (let i = 0; i < BATCH; i++) {
        txn.iova = (i & 63) * 4096;
        smmu.translate(txn, cb);
      }
      sim.run();
    },
  });
}

{
  // 16 IOTLB entries against 16K distinct pages: every lookup misses and walks.
  const { sim, smmu, s2 } = s2Rig(16);
  s2.map(0, 0x1_0000_0000, 16384 * 4096, RW);
  const txn: Txn = { sid: 1, iova: 0, write: false };
  let k = 0;
  Deno.bench({
    name: "IOTLB miss + stage-2 walk x1000",
    group: "translate",
    fn() {
      for (let i = 0; i < BATCH; i++) {
        k = (k + 4099) & 16383;
        txn.iova = k * 4096;
        smmu.translate(txn, cb);
      }
      sim.run();
    },
  });
}

{
  // Guest stage 1 (tables in guest IPA space, VMID 5) on a host stage 2.
  const sim = new Simulator();
  const memory = new TableMemory();
  const smmu = new Smmu(sim, { costs, memory });
  const s2 = new IoPgtable({ stage: 2 });
  memory.register(0, s2);
  s2.map(0, 0x1_0000_0000, 16 * 2 ** 20, RW);
  let next = 8 * 2 ** 20;
  const guest = new IoPgtable({
    stage: 1,
    allocTable: () => {
      const a = next;
      next += 4096;
      return a;
    },
  });
  memory.register(5, guest);
  guest.map(0x4000_0000, 0x10_0000, 64 * 4096, RW);
  smmu.writeCd(0x1_0000, 0, {
    V: true,
    ASID: 9,
    TTB0: guest.root,
    T0SZ: 16,
    TG0: 0,
    S: false,
    R: true,
    A: true,
  }, 5);
  smmu.writeSte(2, {
    V: true,
    Config: 7,
    S1ContextPtr: 0x1_0000,
    S1CDMax: 0,
    S1STALLD: false,
    S2VMID: 5,
    S2TTB: s2.root,
    S2S: false,
    S2R: true,
  });
  const txn: Txn = { sid: 2, iova: 0, write: true };
  Deno.bench({
    name: "IOTLB hit, nested x1000",
    group: "translate",
    fn() {
      for (let i = 0; i < BATCH; i++) {
        txn.iova = 0x4000_0000 + (i & 63) * 4096;
        smmu.translate(txn, cb);
      }
      sim.run();
    },
  });
}

{
  // The IOTLB lookup alone (what a hit costs the model, without the
  // simulator event that delivers the result).
  const { smmu, s2, sim } = s2Rig();
  s2.map(0, 0x1_0000_0000, 64 * 4096, RW);
  for (let i = 0; i < 64; i++) {
    smmu.translate({ sid: 1, iova: i * 4096, write: false }, cb);
  }
  sim.run();
  const tlb = smmu.iotlb;
  Deno.bench({
    name: "IOTLB lookup only x1000",
    group: "translate",
    fn() {
      for (let i = 0; i < BATCH; i++) {
        const a = (i & 63) * 4096;
        sink += tlb.translate(tlb.lookup(1, -1, a), a);
      }
    },
  });
}

{
  // A stall fault round trip: stall, event record, evtq thread, fault sink
  // (maps the page), CMD_RESUME Retry, translation completes.
  const sim = new Simulator();
  const memory = new TableMemory();
  const smmu = new Smmu(sim, { costs, memory });
  const drv = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
  const dom = drv.domainAllocPaging(2);
  const dev: IommuDevice = {
    name: "zip0",
    sid: 3,
    ats: false,
    pri: false,
    stall: true,
  };
  drv.setFaultSink({
    reportDeviceFault(d: IommuDevice, f: IommuFault) {
      drv.map(dom, f.addr - (f.addr % 4096), 0x1_0000_0000 + f.addr, 4096, RW);
      drv.pageResponse(d, f, 0);
    },
    discardPartial() {},
  });
  drv.enableIopf(dev);
  drv.attachDev(dev, dom, () => {});
  sim.run();
  const txn: Txn = { sid: 3, iova: 0, write: true };
  const FAULTS = 100;
  Deno.bench({
    name: "stall fault round trip x100",
    group: "fault",
    fn() {
      for (let i = 0; i < FAULTS; i++) {
        txn.iova = i * 4096;
        smmu.translate(txn, cb);
      }
      sim.run();
      dom.pgtable!.unmap(0, FAULTS * 4096);
      smmu.iotlb.invalidateAll();
    },
  });
}

{
  // The device hot path: a platform device streaming 1000 pages that hit the IOTLB.
  const { sim, smmu, s2 } = s2Rig();
  s2.map(0, 0x1_0000_0000, 1000 * 4096, RW);
  const dev = new PlatformDevice(sim, {
    name: "dma0",
    sid: 1,
    smmu,
    costs,
    bandwidth: "64GB/s",
  });
  dev.dma({ iova: 0, size: 1000 * 4096, write: true }, () => {});
  sim.run(); // warm the IOTLB (2048 entries hold all 1000 pages)
  Deno.bench({
    name: "platform DMA, 1000 IOTLB-hit pages",
    group: "dma",
    fn() {
      dev.dma({ iova: 0, size: 1000 * 4096, write: true }, () => {});
      sim.run();
    },
  });
}
