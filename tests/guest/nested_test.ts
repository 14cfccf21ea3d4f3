import assert from "node:assert/strict";
import {
  GuestIommu,
  type GuestStage1Mode,
} from "../../lib/guest/guest_iommu.ts";
import { VmmSmmuBackend } from "../../lib/vmm/vsmmu_backend.ts";
import { VSmmu } from "../../lib/vmm/vsmmu.ts";
import {
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
  IOMMU_PAGE_RESP_INVALID,
  IOMMU_PAGE_RESP_SUCCESS,
} from "../../lib/iommu/types.ts";
import { PAGE_SIZE, PROT_READ, PROT_WRITE } from "../../lib/sim/units.ts";
import { TableMemory } from "../../lib/smmu/memory.ts";
import { IOMMU_PGFAULT_FLAGS_LAST_PAGE } from "../../lib/vfio/fault_region.ts";
import { fakeDevice } from "../iommu/_fake_driver.ts";
import { GUEST_RAM_GPA, mapGuest, MiB, setup } from "../vfio/_setup.ts";

const VMID = 7;
const BUF_IOVA = 0x10_0000;
const BUF_GPA = GUEST_RAM_GPA + 8 * MiB;

function nested(
  options: {
    stage1?: GuestStage1Mode;
    iopf?: boolean;
    entries?: number;
    vmm?: boolean;
    pri?: boolean;
  } = {},
) {
  const dev = fakeDevice("0000:02:00.0", 0x200, options.pri ?? false);
  const s = setup({
    nesting: true,
    iopf: options.iopf ?? true,
    guestSize: 32 * MiB,
    dev,
  });
  const region = s.container.enableFaultRegion({
    entries: options.entries ?? 64,
  });
  mapGuest(s);
  const vsmmu = new VSmmu(s.sim, { costs: s.costs });
  const tables = new TableMemory();
  const guest = new GuestIommu(s.sim, {
    costs: s.costs,
    vsmmu,
    tables,
    vmid: VMID,
    tablePool: { gpa: GUEST_RAM_GPA + 30 * MiB, size: 2 * MiB },
    stage1: options.stage1 ?? "on-fault",
  });
  const vmm = options.vmm === false ? undefined : new VmmSmmuBackend(s.sim, {
    costs: s.costs,
    container: s.container,
    region,
    vsmmu,
  });
  s.container.setPasidTable(s.dev, guest.config);
  s.sim.run();
  guest.dmaMap({
    iova: BUF_IOVA,
    gpa: BUF_GPA,
    size: 16 * PAGE_SIZE,
    prot: PROT_READ | PROT_WRITE,
  });
  return { ...s, region, vsmmu, tables, guest, vmm };
}

Deno.test("nested IOPF", async (t) => {
  await t.step(
    "the guest's stage-1 table lives at guest-physical addresses, registered by VMID",
    () => {
      const n = nested();
      assert.equal(n.tables.resolve(VMID, n.guest.config.s1Ttb), n.guest.s1);
      assert.ok(n.guest.config.s1Ttb >= GUEST_RAM_GPA + 30 * MiB);
      assert.equal(n.core.getDomainForDev(n.dev)?.kind, "nested");
      assert.equal(
        n.container.nestedDomain(n.dev)?.nestedConfig,
        n.guest.config,
      );
    },
  );

  await t.step(
    "a stage-1 fault reaches the guest through the ring and the eventfd and is answered by it",
    () => {
      const n = nested();
      const iova = BUF_IOVA + 2 * PAGE_SIZE;
      assert.equal(n.guest.s1.iovaToPhys(iova), -1);
      const wakeups: number[] = [];
      n.region.onEventfd(() => wakeups.push(n.sim.now));
      const f = n.driver.inject(n.dev, {
        addr: iova,
        stage: 1,
        perm: IOMMU_FAULT_PERM_WRITE,
      });
      n.sim.run();
      // The record went through the ring; the eventfd woke the VMM.
      assert.equal(n.region.counters.get("faultRegion.records"), 1);
      assert.equal(wakeups.length, 1);
      assert.equal(n.region.used, 0); // the VMM consumed it
      assert.equal(n.vmm!.counters.get("vmm.injected"), 1);
      // The guest mapped the page in its stage 1 and answered.
      assert.equal(n.guest.s1.iovaToPhys(iova), BUF_GPA + 2 * PAGE_SIZE);
      assert.equal(n.guest.stats().faults, 1);
      assert.equal(n.vsmmu.counters.get("vsmmu.commands.resume"), 1);
      const resp = n.driver.responsesFor(f);
      assert.deepEqual(resp.map((r) => r.code), [IOMMU_PAGE_RESP_SUCCESS]);
      // The host did not map anything for a stage-1 fault.
      assert.equal(n.container.stats().faults, 0);
      // The path's latency is the sum of its steps (no contention here).
      const k = n.costs;
      const path = k["iopf.reportFault"] + k["iopf.workqueueWakeup"] +
        k["iopf.groupOverhead"] +
        k["vfio.faultRegionWrite"] + k["vfio.eventfdSignal"] +
        k["vmm.injectEvent"] +
        k["guest.irqToHandler"] + k["guest.faultHandler"] + k["vmm.trap"] +
        k["vfio.responseWrite"];
      assert.equal(resp[0]!.at - f.detectedAt, path);
    },
  );

  await t.step(
    "a PRI group of several faults becomes one record each and one response",
    () => {
      const n = nested({ pri: true });
      const faults = [0, 1, 2].map((i) =>
        n.driver.inject(n.dev, {
          addr: BUF_IOVA + i * PAGE_SIZE,
          stage: 1,
          grpid: 9,
          last: i === 2,
          source: "pri",
        })
      );
      n.sim.run();
      for (let i = 0; i < 3; i++) {
        assert.ok(n.guest.s1.iovaToPhys(BUF_IOVA + i * PAGE_SIZE) >= 0);
      }
      assert.equal(n.region.counters.get("faultRegion.records"), 3);
      assert.equal(n.vsmmu.counters.get("vsmmu.commands.pri-resp"), 1);
      assert.deepEqual(n.driver.responses.map((r) => r.fault), [faults[2]]);
      assert.equal(n.driver.responses[0]!.code, IOMMU_PAGE_RESP_SUCCESS);
    },
  );

  await t.step(
    "a stage-1 fault outside every guest buffer is answered INVALID by the guest",
    () => {
      const n = nested();
      const f = n.driver.inject(n.dev, {
        addr: 0x9000_0000,
        stage: 1,
        perm: IOMMU_FAULT_PERM_READ,
      });
      n.sim.run();
      assert.deepEqual(n.driver.responsesFor(f).map((r) => r.code), [
        IOMMU_PAGE_RESP_INVALID,
      ]);
      assert.equal(n.guest.stats().faultsInvalid, 1);
    },
  );

  await t.step(
    "a stage-2 fault is handled by the host (type1 handler), not the guest",
    () => {
      const n = nested();
      const gpa = BUF_GPA + 3 * PAGE_SIZE;
      assert.ok(!n.container.isMapped(gpa));
      const f = n.driver.inject(n.dev, {
        addr: BUF_IOVA + 3 * PAGE_SIZE,
        stage: 2,
        ipa: gpa,
        perm: IOMMU_FAULT_PERM_WRITE,
      });
      n.sim.run();
      assert.deepEqual(n.driver.responsesFor(f).map((r) => r.code), [
        IOMMU_PAGE_RESP_SUCCESS,
      ]);
      assert.ok(n.container.isMapped(gpa));
      assert.equal(
        n.core.iovaToPhys(n.container.domain!, gpa),
        n.mm.hvaToPfn(n.ram.start + (gpa - GUEST_RAM_GPA)) * PAGE_SIZE,
      );
      assert.equal(n.container.stats().faults, 1);
      assert.equal(n.guest.stats().faults, 0);
      assert.equal(n.region.counters.get("faultRegion.records"), 0);
    },
  );

  await t.step(
    "with static stage 2, stage-1 faults still go to the guest",
    () => {
      const n = nested({ iopf: false });
      assert.equal(n.mm.pinnedPages, 32 * MiB / PAGE_SIZE);
      const f = n.driver.inject(n.dev, { addr: BUF_IOVA, stage: 1 });
      n.sim.run();
      assert.deepEqual(n.driver.responsesFor(f).map((r) => r.code), [
        IOMMU_PAGE_RESP_SUCCESS,
      ]);
      // Without IOPF for stage 2 a stage-2 fault has no handler: INVALID.
      const g = n.driver.inject(n.dev, {
        addr: BUF_IOVA,
        stage: 2,
        ipa: 0x1000,
      });
      n.sim.run();
      assert.deepEqual(n.driver.responsesFor(g).map((r) => r.code), [
        IOMMU_PAGE_RESP_INVALID,
      ]);
    },
  );

  await t.step(
    "premapped guest: dma_unmap invalidates the host IOTLB through the vSMMU",
    () => {
      const n = nested({ stage1: "premapped" });
      assert.equal(
        n.guest.s1.iovaToPhys(BUF_IOVA + PAGE_SIZE),
        BUF_GPA + PAGE_SIZE,
      );
      assert.throws(
        () => n.guest.dmaUnmap({ iova: BUF_IOVA, size: PAGE_SIZE }),
        { code: "EINVAL" } as never,
      );
      const syncs = n.driver.syncs.length;
      let done = false;
      n.guest.dmaUnmap(
        { iova: BUF_IOVA, size: 16 * PAGE_SIZE },
        () => done = true,
      );
      assert.equal(n.guest.s1.iovaToPhys(BUF_IOVA), -1);
      n.sim.run();
      assert.ok(done);
      assert.equal(n.driver.syncs.length, syncs + 1);
      assert.equal(n.driver.syncs.at(-1)!.domain.kind, "nested");
    },
  );

  await t.step("ring full: the group is answered INVALID at once", () => {
    const n = nested({ entries: 4, vmm: false }); // nobody reads the ring
    const faults = [0, 1, 2, 3].map((i) =>
      n.driver.inject(n.dev, { addr: BUF_IOVA + i * PAGE_SIZE, stage: 1 })
    );
    n.sim.run();
    assert.equal(n.region.used, 3);
    assert.equal(n.region.counters.get("faultRegion.overflows"), 1);
    assert.deepEqual(n.driver.responsesFor(faults[3]!).map((r) => r.code), [
      IOMMU_PAGE_RESP_INVALID,
    ]);
    assert.equal(n.driver.responses.length, 1);
    const recs = n.region.readRecords();
    assert.equal(recs.length, 3);
    assert.equal(recs[1]!.addr, BUF_IOVA + PAGE_SIZE);
    assert.equal(recs[1]!.devId, n.container.devId(n.dev));
    assert.ok((recs[1]!.flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE) !== 0);
    // The VMM answers them by cookie; a response goes back to the hardware.
    assert.ok(n.region.writeResponse({ cookie: recs[0]!.cookie, code: 0 }));
    assert.ok(!n.region.writeResponse({ cookie: recs[0]!.cookie, code: 0 })); // only once
    assert.throws(
      () => n.region.writeResponse({ cookie: recs[1]!.cookie, code: 2 }),
      { code: "EINVAL" } as never,
    );
    n.sim.run();
    assert.deepEqual(n.driver.responsesFor(faults[0]!).map((r) => r.code), [
      IOMMU_PAGE_RESP_SUCCESS,
    ]);
  });

  await t.step(
    "detach answers every forwarded group INVALID; the late guest answer is dropped",
    () => {
      const n = nested({ vmm: false });
      const f = n.driver.inject(n.dev, { addr: BUF_IOVA, stage: 1 });
      n.sim.run();
      const [rec] = n.region.readRecords();
      assert.equal(n.driver.responses.length, 0);
      n.container.detachDevice(n.dev);
      assert.deepEqual(n.driver.responsesFor(f).map((r) => r.code), [
        IOMMU_PAGE_RESP_INVALID,
      ]);
      assert.equal(n.region.pendingGroups, 0);
      assert.equal(
        n.region.writeResponse({ cookie: rec!.cookie, code: 0 }),
        false,
      );
      n.sim.run();
      assert.equal(n.driver.responses.length, 1);
    },
  );

  await t.step("teardown of a nested container releases everything", () => {
    const n = nested();
    n.driver.inject(n.dev, { addr: BUF_IOVA, stage: 1 });
    n.driver.inject(n.dev, { addr: BUF_IOVA, stage: 2, ipa: BUF_GPA });
    n.sim.run();
    n.container.release();
    n.sim.run();
    assert.equal(n.mm.pinnedPages, 0);
    assert.equal(n.mm.lockedVm, 0);
    assert.equal(n.core.getDomainForDev(n.dev), undefined);
  });
});
