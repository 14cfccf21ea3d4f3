import assert from "node:assert/strict";
import { loadCostProfile, Simulator } from "../../lib/sim/mod.ts";
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_PAGE_RESP_SUCCESS,
  type IommuDevice,
  type IommuFault,
  type IommuFaultSink,
  newIotlbGather,
  type PageResponseCode,
} from "../../lib/iommu/types.ts";
import {
  ArmSmmuV3Driver,
  Smmu,
  type SmmuOptions,
  TableMemory,
} from "../../lib/smmu/mod.ts";
import type { DmaResult } from "../../lib/device/mod.ts";
import {
  PciDevice,
  type PciDeviceOptions,
  PRI_STATUS_RF,
  PRI_STATUS_UPRGI,
} from "../../lib/pci/mod.ts";

const RW = 3;
const HOST = 0x1_0000_0000;

/**
 * A tiny IOMMU core: groups faults by grpid until LAST, then (after `delay`
 * ns) maps every page of the group at HOST + addr and answers `code`.
 */
class MiniCore implements IommuFaultSink {
  faults: IommuFault[] = [];
  discards = 0;
  code: PageResponseCode = IOMMU_PAGE_RESP_SUCCESS;
  delay = 5000;
  #partial = new Map<number, IommuFault[]>();
  constructor(
    readonly sim: Simulator,
    readonly drv: ArmSmmuV3Driver,
    readonly dom: Parameters<ArmSmmuV3Driver["map"]>[0],
  ) {}
  reportDeviceFault(dev: IommuDevice, f: IommuFault): void {
    this.faults.push(f);
    const g = this.#partial.get(f.grpid) ?? [];
    g.push(f);
    if ((f.flags & IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE) === 0) {
      this.#partial.set(f.grpid, g);
      return;
    }
    this.#partial.delete(f.grpid);
    const code = this.code;
    this.sim.after(this.delay, () => {
      if (code === IOMMU_PAGE_RESP_SUCCESS) {
        for (const x of g) {
          const page = x.addr - (x.addr % 4096);
          if (this.drv.iovaToPhys(this.dom, page) < 0) {
            this.drv.map(this.dom, page, HOST + page, 4096, RW);
          }
        }
      }
      this.drv.pageResponse(dev, f, code);
    });
  }
  iopfQueueDiscardPartial(): void {
    this.discards++;
    this.#partial.clear();
  }
}

function pciRig(
  devOptions: Partial<PciDeviceOptions> = {},
  smmuOptions: Partial<Omit<SmmuOptions, "costs" | "memory">> = {},
  allocation = 32,
) {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const memory = new TableMemory();
  const smmu = new Smmu(sim, { costs, memory, ...smmuOptions });
  const drv = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
  const dom = drv.domainAllocPaging(2);
  const core = new MiniCore(sim, drv, dom);
  drv.setFaultSink(core);
  const dev = new PciDevice(sim, {
    name: "0000:01:00.0",
    sid: 0x100,
    smmu,
    costs,
    ...devOptions,
  });
  drv.attachDev(dev.iommuDevice, dom, () => {});
  if (dev.iommuDevice.pri) {
    drv.enableIopf(dev.iommuDevice);
    dev.enablePri(allocation);
  }
  sim.run();
  const results: DmaResult[] = [];
  const dma = (iova: number, size = 4096, write = true) =>
    dev.dma({ iova, size, write }, (r) => results.push(r));
  return { sim, costs, smmu, drv, dom, core, dev, results, dma };
}

Deno.test("an ATS device's failed translation leads to a Page Request, a PRG response and a successful retry", () => {
  const t = pciRig();
  const seen: [number, number][] = [];
  t.dev.onAccess = (iova, pa) => seen.push([iova, pa]);
  t.dma(0x3000);
  t.sim.run();
  assert.equal(t.results[0]?.ok, true);
  const s = t.dev.stats;
  assert.equal(
    s.atsRequests,
    2,
    "the first answered no access, the retry succeeded",
  );
  assert.equal(s.faults, 1);
  assert.equal(s.pageRequests, 1);
  assert.equal(s.prgResponses.success, 1);
  assert.equal(s.retries, 1);
  assert.deepEqual(seen, [[0x3000, HOST + 0x3000]]);
  assert.equal(t.core.faults.length, 1);
  assert.equal(t.core.faults[0]!.source, "pri");
  assert.equal(t.core.faults[0]!.addr, 0x3000);
  assert.equal(t.smmu.stalledCount, 0);
  assert.equal(t.dev.faultLatency.count, 1);
  // The translation is now in the ATC.
  t.dma(0x3000, 128);
  t.sim.run();
  assert.equal(t.results[1]?.ok, true);
  assert.equal(s.atcHits, 1);
  assert.equal(s.atsRequests, 2);
});

Deno.test("atcInvalidateBlocking drops the ATC entries at once and returns the completion time", () => {
  const t = pciRig();
  t.dma(0x3000);
  t.sim.run();
  const atc = t.dev.atc!;
  assert.ok(atc.lookup(-1, 0x3000) >= 0);
  const before = t.dev.stats.atcInvalidations;
  assert.equal(
    t.dev.atcInvalidateBlocking(-1, 0x3000, 0),
    t.costs["pci.atcInvalidate"],
  );
  assert.equal(atc.lookup(-1, 0x3000), -1);
  assert.equal(t.dev.stats.atcInvalidations, before + 1);
  assert.equal(t.sim.pending, 0);
  // An ATS answer in flight during the invalidation is used but not cached.
  t.dma(0x3000);
  t.sim.run({ until: t.sim.now + t.costs["pci.dmaSetup"] + 1 });
  t.dev.atcInvalidateBlocking(-1, 0, 52);
  t.sim.run();
  assert.equal(t.results[1]?.ok, true);
  assert.equal(atc.lookup(-1, 0x3000), -1);
});

Deno.test("Invalid Request fails the transfer", () => {
  const t = pciRig();
  t.core.code = 1;
  t.dma(0x3000, 8192);
  t.sim.run();
  assert.deepEqual(
    {
      ok: t.results[0]!.ok,
      error: t.results[0]!.error,
      bytes: t.results[0]!.bytes,
      at: t.results[0]!.failedIova,
    },
    { ok: false, error: "invalid", bytes: 0, at: 0x3000 },
  );
  assert.equal(t.dev.stats.dmaErrors, 1);
});

Deno.test("the device never has more than Allocation page requests outstanding", () => {
  const t = pciRig({ prgPages: 4 }, {}, 3);
  t.core.delay = 20_000;
  let peak = 0;
  const check = () => {
    peak = Math.max(peak, t.dev.outstandingPageRequests);
    if (t.sim.pending > 0) t.sim.after(100, check);
  };
  check();
  for (let i = 0; i < 6; i++) t.dma(i * 0x10_0000, 4 * 4096);
  t.sim.run();
  assert.equal(t.results.length, 6);
  assert.ok(t.results.every((r) => r.ok && r.bytes === 4 * 4096));
  assert.ok(peak <= 3 && t.dev.stats.maxOutstanding <= 3);
  assert.equal(t.dev.stats.maxOutstanding, 3);
  assert.ok(t.dev.stats.creditWaits > 0);
  assert.equal(t.dev.outstandingPageRequests, 0);
  // Groups of min(prgPages, allocation) = 3 pages, then 1.
  assert.equal(t.dev.stats.pageRequestGroups, 12);
  assert.equal(t.dev.stats.pageRequests, 24);
});

Deno.test("Response Failure stops PRI on the function", () => {
  const t = pciRig({}, {}, 1);
  t.core.code = 2;
  t.dma(0x1000);
  t.dma(0x2000); // waits for the only credit
  t.sim.run();
  assert.deepEqual(t.results.map((r) => r.error), [
    "response-failure",
    "response-failure",
  ]);
  const pri = t.dev.pri!;
  assert.equal(pri.status & PRI_STATUS_RF, PRI_STATUS_RF);
  assert.equal(t.dev.stats.prgResponses.failure, 1);
  const sent = t.dev.stats.pageRequests;
  t.dma(0x5000);
  t.sim.run();
  assert.equal(t.results[2]?.error, "response-failure");
  assert.equal(
    t.dev.stats.pageRequests,
    sent,
    "no page request while RF is set",
  );
  pri.writeStatus(PRI_STATUS_RF);
  t.core.code = 0;
  t.dma(0x5000);
  t.sim.run();
  assert.equal(t.results[3]?.ok, true);
});

Deno.test("a response for an unknown PRG index sets UPRGI", () => {
  const t = pciRig();
  t.dev.prgResponse(-1, 77, 0);
  t.sim.run();
  assert.equal(t.dev.pri!.status & PRI_STATUS_UPRGI, PRI_STATUS_UPRGI);
  assert.equal(t.dev.stats.unexpectedResponses, 1);
});

Deno.test("with PRI disabled a page without access fails the transfer", () => {
  const t = pciRig();
  t.dev.disablePri();
  t.dma(0x1000);
  t.sim.run();
  assert.equal(t.results[0]?.error, "pri-disabled");
});

Deno.test("unmap + iotlbSync invalidates the device's ATC", () => {
  const t = pciRig();
  t.dma(0x4000);
  t.sim.run();
  assert.equal(t.dev.atc!.size, 1);
  const g = newIotlbGather();
  t.drv.unmap(t.dom, 0x4000, 4096, g);
  let synced = false;
  t.drv.iotlbSync(t.dom, g, () => (synced = true));
  t.sim.run();
  assert.ok(synced);
  assert.equal(t.dev.atc!.size, 0);
  assert.ok(t.dev.stats.atcInvalidations >= 2); // attach + sync
  t.dma(0x4000);
  t.sim.run();
  assert.equal(t.results[1]?.ok, true);
  assert.equal(t.dev.stats.pageRequests, 2, "the page faulted again");
});

Deno.test("a PRI queue overflow is survived: auto-responses make the device retry", () => {
  const t = pciRig({}, { priqLog2: 1 }, 64);
  for (let i = 0; i < 16; i++) t.dma(i * 0x1000);
  t.sim.run();
  assert.equal(t.results.length, 16);
  assert.ok(t.results.every((r) => r.ok));
  assert.ok(t.smmu.stats.priqOverflows >= 1);
  assert.ok(t.smmu.stats.priAutoResponses >= 1);
  assert.ok(t.core.discards >= 1);
  assert.ok(t.dev.stats.retries > 16 - t.smmu.stats.priAutoResponses);
});

Deno.test("a Stop Marker reaches the PRI queue and is dropped by the driver", () => {
  const t = pciRig();
  t.dev.stopPasid(3);
  t.sim.run();
  assert.equal(t.drv.stats.stopMarkers, 1);
  assert.equal(t.core.faults.length, 0);
});

Deno.test("a PCI function without ATS sends untranslated transactions", () => {
  const t = pciRig({ ats: false });
  assert.equal(t.dev.atc, undefined);
  t.drv.map(t.dom, 0, HOST, 0x2000, RW);
  t.dma(0, 0x2000);
  t.sim.run();
  t.dma(0x8000);
  t.sim.run();
  assert.equal(t.results[0]?.ok, true);
  assert.equal(t.results[1]?.error, "fault");
  assert.equal(t.smmu.stats.atsRequests, 0);
});

Deno.test("PRI needs ATS", () => {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const smmu = new Smmu(sim, { costs, memory: new TableMemory() });
  assert.throws(
    () =>
      new PciDevice(sim, {
        name: "x",
        sid: 1,
        smmu,
        costs,
        ats: false,
        pri: true,
      }),
    /EINVAL/,
  );
});

Deno.test("device.atcInvalidateDelayNs = Infinity (a function that never answers ATS Invalidate Requests): the unmap's CMD_SYNC hits CERROR_ATC_INV_SYNC at the SMMU's timeout (IHI0070 3.9.1.4), the driver repeats the CMD_SYNC (arm_smmu_cmdq_skip_err) and the sync completes", () => {
  const t = pciRig({ atcInvalidateDelayNs: Infinity }, {
    atcInvTimeoutNs: 5e6,
  });
  t.dma(0x4000);
  t.sim.run();
  const errors0 = t.smmu.stats.cmdqErrors; // attach's ATC invalidation timed out too
  const g = newIotlbGather();
  t.drv.unmap(t.dom, 0x4000, 4096, g);
  let syncedAt = -1;
  const t0 = t.sim.now;
  t.drv.iotlbSync(t.dom, g, () => (syncedAt = t.sim.now));
  t.sim.run();
  assert.ok(syncedAt - t0 >= 5e6, `${syncedAt - t0} ns`);
  assert.equal(t.dev.atc!.size, 0); // the entries were dropped all the same
  assert.equal(t.smmu.stats.cmdqErrors, errors0 + 1);
  assert.ok(t.drv.stats.cmdqErrors.atcInvSync >= 1);
  assert.ok(!t.smmu.cmdqErrorActive);
  assert.throws(() => pciRig({ atcInvalidateDelayNs: -1 }), {
    code: "EINVAL",
  });
});
