/**
 * QEMU's accelerated nested SMMUv3 over iommufd, end to end on the real
 * SMMU model and driver: a stage-1 stall travels SMMU -> driver -> IOMMU
 * core -> iommufd fault queue -> the VMM's read() -> the guest's vSMMU, and
 * the guest's CMD_RESUME travels back as a page response; a non-stalled
 * stage-1 event travels SMMU -> driver -> vEVENTQ (Linux 6.15) -> the VMM
 * -> the vSMMU's event queue with the guest's virtual StreamID.
 */
import assert from "node:assert/strict";
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IommufdCtx,
  type IommufdFault,
  type IommufdVeventq,
} from "../../lib/iommufd/mod.ts";
import { IommuCore } from "../../lib/iommu/mod.ts";
import { HostMemory, MmStruct } from "../../lib/mm/mod.ts";
import { IoPgtable } from "../../lib/pgtable/mod.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import {
  ArmSmmuV3Driver,
  F_TRANSLATION,
  Smmu,
  TableMemory,
} from "../../lib/smmu/mod.ts";
import { VmmSmmuAccel, VSmmu, type VSmmuEvent } from "../../lib/vmm/mod.ts";

const GPA = 0x4000_0000;
const VSID = 0x10;
const SID = 7;

/** A VMM with one device on a nested HWPT of a vIOMMU, and a guest stage 1 with nothing mapped. */
function rig(o: { stall: boolean; veventqDepth?: number }) {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const memory = new TableMemory();
  const smmu = new Smmu(sim, { costs, memory });
  const driver = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
  const core = new IommuCore(sim, { costs, driver });
  driver.setFaultSink(core);
  const mm = new MmStruct(new HostMemory({ size: 2 ** 30, costs }), {
    memlockLimit: Infinity,
  });
  const ram = mm.mmap({ size: 2 ** 24, backing: "4k" });
  const dev = { name: "zip0", sid: SID, ats: false, pri: false, stall: true };
  const ctx = new IommufdCtx(core, mm);
  const devId = ctx.bindDevice(dev);
  const ioas = ctx.ioasAlloc();
  const s2 = ctx.hwptAlloc({
    devId,
    ptId: ioas,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  }).id;
  ctx.ioasMap(ioas, {
    userVa: ram.start,
    iova: GPA,
    length: 2 ** 24,
    flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
      IOMMU_IOAS_MAP_WRITEABLE,
  });
  const viommuId = ctx.viommuAlloc({ devId, hwptId: s2 });
  ctx.vdeviceAlloc({ viommuId, devId, virtId: VSID });
  const { faultId, fault } = ctx.faultQueueAlloc();
  let veventq: IommufdVeventq | undefined;
  if (o.veventqDepth !== undefined) {
    veventq = ctx.veventqAlloc({ viommuId, depth: o.veventqDepth }).veventq;
  }
  let table = GPA + 15 * 2 ** 20;
  const s1 = new IoPgtable({ stage: 1, allocTable: () => (table += 4096) });
  memory.register(ctx.hwpt(s2).domain.driverDomain.vmid!, s1);
  const nested = ctx.hwptAlloc({
    devId,
    ptId: viommuId,
    flags: o.stall ? IOMMU_HWPT_FAULT_ID_VALID : 0,
    ...(o.stall ? { faultId } : {}),
    data: { s1Ttb: s1.root, asid: 1, stall: o.stall },
  }).id;
  ctx.attach(devId, nested);
  const vsmmu = new VSmmu(sim, { costs });
  const accel = new VmmSmmuAccel(sim, {
    costs,
    ctx,
    fault,
    viommuId,
    vsmmu,
    deviceOf: (id) => (id === devId ? dev : undefined),
    ...(veventq ? { veventq } : {}),
  });
  sim.run();
  return {
    sim,
    costs,
    smmu,
    driver,
    ctx,
    devId,
    s1,
    fault: fault as IommufdFault,
    veventq,
    vsmmu,
    accel,
  };
}

Deno.test("QEMU reads a stage-1 stall from the fault fd, injects it into the vSMMU with the vSID, and the guest's CMD_RESUME answers it", () => {
  const r = rig({ stall: true });
  const seen: VSmmuEvent[] = [];
  let injectedAt = -1;
  // The guest's driver: maps the page in its stage 1 and resumes.
  r.vsmmu.onIrq(() => {
    injectedAt = r.sim.now;
    for (const ev of r.vsmmu.readEvents()) {
      seen.push(ev);
      r.s1.map(0x1000, GPA, 4096, 3);
      r.vsmmu.submitCommand({
        op: "resume",
        token: ev.token,
        devId: ev.devId,
        retry: true,
      });
    }
  });
  const t0 = r.sim.now;
  let ok: boolean | undefined;
  let doneAt = -1;
  r.smmu.translate({ sid: SID, iova: 0x1000, write: true }, (res) => {
    ok = res.ok;
    doneAt = r.sim.now;
  });
  r.sim.run();
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.kind, "stall");
  assert.equal(seen[0]!.devId, VSID, "the guest sees its virtual StreamID");
  assert.equal(seen[0]!.addr, 0x1000);
  assert.equal(seen[0]!.last, true);
  assert.equal(ok, true, "the retried transaction succeeds");
  assert.equal(r.fault.counters.get("iommufd.fault.responses"), 1);
  assert.equal(r.fault.awaitingResponse, 0);
  assert.equal(r.accel.counters.get("vmm.reads"), 1);
  assert.equal(r.accel.counters.get("vmm.injected"), 1);
  // The hops cost time: the fd read and the injection before the guest
  // sees it, then the trap and the write() before the device resumes.
  const k = r.costs;
  assert(
    injectedAt - t0 >=
      k["iommufd.faultRead"] + k["iommufd.faultReadPerRecord"] +
        k["vmm.injectEvent"],
  );
  assert(doneAt - injectedAt >= k["vmm.trap"] + k["iommufd.faultWrite"]);
});

Deno.test("the guest's Abort travels back as INVALID and the transaction fails", () => {
  const r = rig({ stall: true });
  r.vsmmu.onIrq(() => {
    for (const ev of r.vsmmu.readEvents()) {
      r.vsmmu.submitCommand({
        op: "resume",
        token: ev.token,
        devId: ev.devId,
        retry: false,
      });
    }
  });
  let ok: boolean | undefined;
  r.smmu.translate({ sid: SID, iova: 0x2000, write: false }, (res) => {
    ok = res.ok;
  });
  r.sim.run();
  assert.equal(ok, false);
  assert.equal(r.fault.counters.get("iommufd.fault.responses"), 1);
  assert.equal(r.driver.stats.resumes.abort, 1);
});

Deno.test("a non-stalled stage-1 fault reaches the guest through the vEVENTQ as the raw record with the vSID, not through the fault fd", () => {
  const r = rig({ stall: false, veventqDepth: 8 });
  const seen: VSmmuEvent[] = [];
  let at = -1;
  r.vsmmu.onIrq(() => {
    at = r.sim.now;
    seen.push(...r.vsmmu.readEvents());
  });
  const t0 = r.sim.now;
  let ok: boolean | undefined;
  r.smmu.translate({ sid: SID, iova: 0x3000, write: true }, (res) => {
    ok = res.ok;
  });
  r.sim.run();
  assert.equal(ok, false, "no stall: the transaction aborts");
  assert.equal(seen.length, 1);
  const ev = seen[0]!;
  assert.equal(ev.kind, "event");
  assert.equal(ev.record!.ID, F_TRANSLATION);
  assert.equal(ev.record!.StreamID, VSID, "the vSID in place of the SID");
  assert.equal(ev.record!.InputAddr, 0x3000);
  assert.equal(ev.record!.RnW, false);
  assert.equal(ev.record!.Stall, false);
  assert.equal(ev.devId, VSID);
  assert.equal(r.driver.stats.vevents, 1);
  assert.equal(r.driver.eventLog.length, 0, "handed on, not logged");
  assert.equal(r.fault.counters.get("iommufd.fault.groups"), 0);
  assert.equal(r.veventq!.counters.get("iommufd.vevent.eventsRead"), 1);
  assert.equal(r.accel.counters.get("vmm.vevents"), 1);
  const k = r.costs;
  assert(
    at - t0 >= k["iommufd.veventReport"] + k["iommufd.faultWakeup"] +
        k["iommufd.faultRead"] + k["iommufd.faultReadPerRecord"] +
        k["vmm.injectEvent"],
  );
});

Deno.test("without a vEVENTQ the driver logs the vIOMMU device's event itself", () => {
  const r = rig({ stall: false });
  let irqs = 0;
  r.vsmmu.onIrq(() => irqs++);
  r.smmu.translate({ sid: SID, iova: 0x3000, write: true }, () => {});
  r.sim.run();
  assert.equal(irqs, 0);
  assert.equal(r.driver.stats.vevents, 0);
  assert.equal(r.driver.eventLog.length, 1);
  assert.equal(r.driver.eventLog[0]!.record.StreamID, SID);
});

Deno.test("events in order with their sequence numbers; events lost on the host side show as a vSMMU overflow", () => {
  const r = rig({ stall: false, veventqDepth: 2 });
  const seen: VSmmuEvent[] = [];
  r.vsmmu.onIrq(() => seen.push(...r.vsmmu.readEvents()));
  // The order the driver reported them in (the SMMU's event queue order).
  const q = r.veventq!;
  const reported: number[] = [];
  const report = q.reportEvent.bind(q);
  q.reportEvent = (evt) => {
    reported.push(evt[4]!);
    return report(evt);
  };
  // Five faults in the same instant: the queue holds two; the rest that
  // come before the VMM's thread reads are lost.
  for (let i = 1; i <= 5; i++) {
    r.smmu.translate({ sid: SID, iova: i * 0x1000, write: true }, () => {});
  }
  r.sim.run();
  const sent = r.veventq!.counters;
  assert.equal(
    (sent.get("iommufd.vevent.events") ?? 0) +
      (sent.get("iommufd.vevent.lost") ?? 0),
    5,
  );
  assert.equal(reported.length, 5);
  const lost = r.accel.counters.get("vmm.veventsLost") ?? 0;
  assert(lost > 0, "the depth of 2 loses events");
  assert.equal(lost, sent.get("iommufd.vevent.lost"));
  assert.equal(seen.length + lost, 5);
  // What the guest sees keeps the report order (a subsequence of it).
  const got = seen.map((e) => e.addr);
  let j = 0;
  for (const a of reported) if (j < got.length && got[j] === a) j++;
  assert.equal(j, got.length, `${got} in ${reported}`);
  assert.equal(r.vsmmu.counters.get("vsmmu.lostEvents"), lost);
  assert(r.vsmmu.counters.get("vsmmu.evtqOverflows")! > 0);
});

Deno.test("a detach unbinds the vIOMMU: later events of the device are the driver's to log", () => {
  const r = rig({ stall: false, veventqDepth: 8 });
  r.ctx.detach(r.devId);
  r.sim.run();
  r.smmu.translate({ sid: SID, iova: 0x3000, write: true }, () => {});
  r.sim.run();
  assert.equal(r.driver.stats.vevents, 0);
  assert.equal(r.veventq!.pendingEvents, 0);
});
