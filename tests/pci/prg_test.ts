/**
 * Page Request Groups at a PCIe function against the specifications: what a
 * Response Failure does to the function (PCIe base spec, Page Request
 * Interface: "Response Failure ... disables the Page Request Interface at
 * the Function", PRI Status RF), and multi-page groups cut by a PRI queue
 * overflow, whose LAST request the SMMU answers with an automatic Success
 * (IHI0070 8.1) so that the function asks again (PCIe: a Success response
 * makes the function re-issue its Translation Request; no retry limit).
 */
import assert from "node:assert/strict";
import { loadCostProfile, Simulator } from "../../lib/sim/mod.ts";
import { IoPgtable } from "../../lib/pgtable/mod.ts";
import {
  ArmSmmuV3Driver,
  CMD_PRI_RESP,
  PRI_RESP_SUCCESS,
  Smmu,
  type SmmuOptions,
  TableMemory,
} from "../../lib/smmu/mod.ts";
import {
  PciDevice,
  type PciDeviceOptions,
  PRI_STATUS_RF,
} from "../../lib/pci/mod.ts";
import type { DmaResult } from "../../lib/device/mod.ts";

const SID = 0x100;

function rig(
  smmuOptions: Partial<SmmuOptions> = {},
  dev: Partial<PciDeviceOptions> = {},
) {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const memory = new TableMemory();
  const s2 = new IoPgtable({ stage: 2 });
  memory.register(0, s2);
  const smmu = new Smmu(sim, { costs, memory, ...smmuOptions });
  smmu.writeSte(SID, {
    V: true,
    Config: 6,
    EATS: 1,
    S2VMID: 1,
    S2TTB: s2.root,
    S2S: false,
    S2R: true,
  });
  const nic = new PciDevice(sim, {
    name: "0000:01:00.0",
    sid: SID,
    smmu,
    costs,
    ...dev,
  });
  nic.enablePri(dev.priCapacity ?? 256);
  return { sim, costs, memory, s2, smmu, nic };
}

Deno.test("an unexpected page request answered as mainline's arm_smmu_handle_ppr (PRI_RESP_DENY = 0b00, ResponseFailure, IHI0070 4.5.2) ends in Response Failure at the function: PRI Status RF set, no further page requests", () => {
  const r = rig();
  // The driver knows no master at this StreamID: "unexpected PRI request".
  const drv = new ArmSmmuV3Driver(r.sim, r.smmu, {
    costs: r.costs,
    memory: r.memory,
  });
  const results: DmaResult[] = [];
  r.nic.dma(
    { iova: 0x1000, size: 4096, write: false },
    (x) => results.push({ ...x }),
  );
  r.sim.run();
  assert.equal(drv.stats.unhandledPageRequests, 1);
  assert.equal(drv.stats.priResponses.failure, 1);
  assert.equal(results[0]?.ok, false);
  assert.equal(results[0]?.error, "response-failure");
  const pri = r.nic.pri!;
  assert.equal(pri.status & PRI_STATUS_RF, PRI_STATUS_RF);
  assert.equal(pri.canIssue, false);
  assert.equal(r.nic.stats.prgResponses.failure, 1);
  // PRI is stopped for the function: the next fault sends nothing.
  const before = r.nic.stats.pageRequests;
  r.nic.dma(
    { iova: 0x5000, size: 4096, write: false },
    (x) => results.push({ ...x }),
  );
  r.sim.run();
  assert.equal(r.nic.stats.pageRequests, before);
  assert.equal(results[1]?.error, "response-failure");
  assert.equal(r.smmu.stats.priRequests, 1);
});

Deno.test("device.prgPages: one fault asks for the faulting page and the next pages of its burst in one group (LAST on the last one)", () => {
  const r = rig({}, { prgPages: 4 });
  const seen: [number, boolean, number][] = [];
  r.smmu.onPriqIrq = () => {
    for (let e = r.smmu.readPri(); e; e = r.smmu.readPri()) {
      seen.push([e.entry.Address, e.entry.LAST, e.entry.PRGIndex]);
      r.s2.map(e.entry.Address, 0x4000_0000 + e.entry.Address, 4096, 3);
      if (e.entry.LAST) {
        r.smmu.submit([{
          opcode: CMD_PRI_RESP,
          SID,
          GRPID: e.entry.PRGIndex,
          Resp: PRI_RESP_SUCCESS,
        }]);
      }
    }
  };
  let ok = false;
  r.nic.dma({ iova: 0x10000, size: 6 * 4096, write: true }, (x) => (ok = x.ok));
  r.sim.run();
  assert.ok(ok);
  assert.deepEqual(seen.map(([a, l]) => [a, l]), [
    [0x10000, false],
    [0x11000, false],
    [0x12000, false],
    [0x13000, true],
    [0x14000, false],
    [0x15000, true], // the rest of the burst: 2 pages
  ]);
  assert.equal(r.nic.stats.pageRequestGroups, 2);
});

Deno.test("IHI0070 8.1: a PRI queue overflow cuts a 4-page group; the automatic Success for its LAST makes the function ask again until it is answered (no retry cap), and the partial group stays in the queue for software to ignore (8.1.1)", () => {
  // Two PRI queue entries and nobody reading them until 50 us.
  const r = rig({ priqLog2: 1 }, { prgPages: 4 });
  let ok = false;
  r.nic.dma(
    { iova: 0x20000, size: 4 * 4096, write: false },
    (x) => (ok = x.ok),
  );
  r.sim.run({ until: 50_000 });
  assert.ok(!ok);
  const retries = r.nic.stats.pageRequestGroups;
  // The first group's pages 3 and 4 were dropped; its LAST got an
  // automatic Success, and every retry since was dropped and auto-answered.
  assert.ok(retries > 10, `${retries} groups sent`);
  // (the last group, or its automatic response, may still be on its way)
  assert.ok(r.smmu.stats.priAutoResponses >= retries - 1);
  assert.ok(r.nic.stats.prgResponses.success >= retries - 2);
  assert.equal(r.smmu.stats.priqOverflows, 1);
  // What the queue holds: the cut group's first two requests, no LAST, a
  // group the auto-response already "answered" and cannot recall.
  const held = [];
  for (let e = r.smmu.readPri(); e; e = r.smmu.readPri()) held.push(e.entry);
  assert.deepEqual(held.map((e) => [e.Address, e.LAST]), [
    [0x20000, false],
    [0x21000, false],
  ]);
  // Software ignores the partial group, maps the pages, acknowledges the
  // overflow and answers the next group: the function's retry gets in.
  r.s2.map(0x20000, 0x4000_0000, 4 * 4096, 3);
  r.smmu.onPriqIrq = () => {
    for (let e = r.smmu.readPri(); e; e = r.smmu.readPri()) {
      if (!e.entry.LAST) continue;
      r.smmu.submit([{
        opcode: CMD_PRI_RESP,
        SID,
        GRPID: e.entry.PRGIndex,
        Resp: PRI_RESP_SUCCESS,
      }]);
    }
  };
  r.smmu.ackPriqOverflow();
  r.sim.run();
  assert.ok(ok);
});
