/**
 * The vEVENTQ uAPI (include/uapi/linux/iommufd.h and
 * drivers/iommu/iommufd/eventq.c, Linux 6.15): IOMMU_VIOMMU_ALLOC's type,
 * IOMMU_VEVENTQ_ALLOC's checks, sequence numbers, the depth and the
 * LOST_EVENTS header, and what read() returns.
 */
import assert from "node:assert/strict";
import {
  decodeVevents,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_VEVENT_ARM_SMMUV3_SIZE,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMUFD_VEVENT_HEADER_SIZE,
  IommufdCtx,
  IommufdVeventq,
  VEVENT_SEQUENCE_MAX,
} from "../../lib/iommufd/mod.ts";
import { IommuCore } from "../../lib/iommu/mod.ts";
import { HostMemory, MmStruct } from "../../lib/mm/mod.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import { fakeDevice, FakeIommuDriver } from "../iommu/_fake_driver.ts";

const LOST = IOMMU_VEVENTQ_FLAG_LOST_EVENTS;
const EV = IOMMUFD_VEVENT_HEADER_SIZE + IOMMU_VEVENT_ARM_SMMUV3_SIZE;

function queue(depth: number) {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const q = new IommufdVeventq(sim, {
    costs,
    id: 1,
    type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
    depth,
  });
  const evt = (tag: number) => {
    const w = new Uint32Array(8);
    w[0] = 0x10;
    w[1] = 0x20;
    w[4] = tag;
    return w;
  };
  return { sim, costs, q, evt };
}

const shape = (bytes: Uint8Array) =>
  decodeVevents(bytes).map((v) => [v.flags, v.sequence, v.evt?.[4] ?? -1]);

Deno.test("struct iommufd_vevent_header is 8 bytes (flags, sequence) and an ARM_SMMUV3 vEVENT carries the 32-byte record, little-endian", () => {
  assert.equal(IOMMUFD_VEVENT_HEADER_SIZE, 8);
  assert.equal(IOMMU_VEVENT_ARM_SMMUV3_SIZE, 32);
  assert.equal(VEVENT_SEQUENCE_MAX, 2 ** 31 - 1); // [0, INT_MAX]
  const { q, evt } = queue(4);
  const w = evt(0x1234_5678);
  w[7] = 0xdead_beef;
  q.reportEvent(w);
  const b = q.read(EV);
  assert.equal(b.byteLength, 40);
  assert.deepEqual([...b.subarray(0, 8)], [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...b.subarray(8, 12)], [0x10, 0, 0, 0]);
  assert.deepEqual([...b.subarray(12, 16)], [0x20, 0, 0, 0]);
  assert.deepEqual([...b.subarray(24, 28)], [0x78, 0x56, 0x34, 0x12]);
  assert.deepEqual([...b.subarray(36, 40)], [0xef, 0xbe, 0xad, 0xde]);
});

Deno.test("every vEVENT gets the next sequence number from 0; read() returns them oldest first and removes them", () => {
  const { q, evt } = queue(8);
  for (let i = 0; i < 3; i++) q.reportEvent(evt(i));
  assert.equal(q.pendingEvents, 3);
  assert.deepEqual(shape(q.read(4096)), [[0, 0, 0], [0, 1, 1], [0, 2, 2]]);
  assert.equal(q.pendingEvents, 0);
  assert.equal(q.readable, false);
  assert.equal(q.read(4096).byteLength, 0);
  q.reportEvent(evt(9));
  assert.deepEqual(shape(q.read(4096)), [[0, 3, 9]]);
});

Deno.test("read() returns whole vEVENTs only: a count too small for the first reads 0 bytes and leaves it", () => {
  const { q, evt } = queue(8);
  q.reportEvent(evt(1));
  q.reportEvent(evt(2));
  assert.equal(q.read(EV - 1).byteLength, 0);
  assert.equal(q.read(0).byteLength, 0);
  assert.deepEqual(shape(q.read(EV + EV - 1)), [[0, 0, 1]]);
  assert.deepEqual(shape(q.read(EV)), [[0, 1, 2]]);
  assert.throws(() => q.read(-1), { code: "EINVAL" });
  assert.throws(() => q.read(1.5), { code: "EINVAL" });
});

Deno.test("a full queue loses events: one LOST_EVENTS header at the tail with the last lost event's sequence, no data after it", () => {
  const { q, evt } = queue(2);
  for (let i = 0; i < 5; i++) q.reportEvent(evt(i));
  assert.equal(q.pendingEvents, 2);
  assert.equal(q.counters.get("iommufd.vevent.lost"), 3);
  // Events 2, 3, 4 lost: the header says 4; 8 bytes for it.
  const b = q.read(4096);
  assert.equal(b.byteLength, 2 * EV + 8);
  assert.deepEqual(shape(b), [[0, 0, 0], [0, 1, 1], [LOST, 4, -1]]);
  // The next event continues the sequence.
  q.reportEvent(evt(7));
  assert.deepEqual(shape(q.read(4096)), [[0, 5, 7]]);
});

Deno.test("an event after a loss removes a LOST_EVENTS header still at the tail: the sequence gap tells the loss", () => {
  const { q, evt } = queue(1);
  q.reportEvent(evt(0)); // seq 0
  q.reportEvent(evt(1)); // lost: header seq 1
  assert.deepEqual(shape(q.read(EV)), [[0, 0, 0]]); // the header does not fit after it
  q.reportEvent(evt(2)); // room again: replaces the header, seq 2
  assert.deepEqual(shape(q.read(4096)), [[0, 2, 2]]);
});

Deno.test("the LOST_EVENTS header alone fits in 8 bytes", () => {
  const { q, evt } = queue(1);
  q.reportEvent(evt(0));
  q.reportEvent(evt(1));
  q.read(EV);
  assert.deepEqual(shape(q.read(8)), [[LOST, 1, -1]]);
  assert.equal(q.readable, false);
});

Deno.test("the reader is woken once after iommufd.veventReport + iommufd.faultWakeup", () => {
  const { sim, costs, q, evt } = queue(8);
  const wakes: number[] = [];
  q.onReadable(() => wakes.push(sim.now));
  assert.equal(q.reportEvent(evt(0)), costs["iommufd.veventReport"]);
  q.reportEvent(evt(1));
  sim.run();
  assert.deepEqual(wakes, [
    costs["iommufd.veventReport"] + costs["iommufd.faultWakeup"],
  ]);
});

function ctxRig() {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const driver = new FakeIommuDriver(sim, { costs });
  const core = new IommuCore(sim, { costs, driver });
  driver.bind(core);
  const mm = new MmStruct(new HostMemory({ size: 2 ** 28, costs }), {
    memlockLimit: Infinity,
  });
  const ctx = new IommufdCtx(core, mm);
  const dev = fakeDevice("zip0", 1);
  const devId = ctx.bindDevice(dev);
  const ioas = ctx.ioasAlloc();
  const s2 = ctx.hwptAlloc({
    devId,
    ptId: ioas,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  }).id;
  return { sim, driver, ctx, dev, devId, ioas, s2 };
}

Deno.test("IOMMU_VIOMMU_ALLOC takes type ARM_SMMUV3 (1) on a nest parent; other types are EOPNOTSUPP", () => {
  const { ctx, devId, s2, ioas } = ctxRig();
  assert.ok(ctx.viommuAlloc({ devId, hwptId: s2, type: 1 }) > 0);
  assert.throws(() => ctx.viommuAlloc({ devId, hwptId: s2, type: 0 }), {
    code: "EOPNOTSUPP",
  });
  const plain = ctx.hwptAlloc({ devId, ptId: ioas }).id;
  assert.throws(() => ctx.viommuAlloc({ devId, hwptId: plain }), {
    code: "EINVAL",
  });
});

Deno.test("IOMMU_VEVENTQ_ALLOC: type DEFAULT is EOPNOTSUPP, depth 0 EINVAL, a second queue of a type EEXIST, a missing vIOMMU ENOENT", () => {
  const { ctx, devId, s2 } = ctxRig();
  const viommuId = ctx.viommuAlloc({ devId, hwptId: s2 });
  assert.throws(() => ctx.veventqAlloc({ viommuId, type: 0, depth: 4 }), {
    code: "EOPNOTSUPP",
  });
  assert.throws(() => ctx.veventqAlloc({ viommuId, depth: 0 }), {
    code: "EINVAL",
  });
  assert.throws(() => ctx.veventqAlloc({ viommuId: 999, depth: 4 }), {
    code: "ENOENT",
  });
  const { veventqId, veventq } = ctx.veventqAlloc({ viommuId, depth: 4 });
  assert.equal(veventq.depth, 4);
  assert.throws(() => ctx.veventqAlloc({ viommuId, depth: 4 }), {
    code: "EEXIST",
  });
  ctx.veventqDestroy(veventqId);
  assert.ok(ctx.veventqAlloc({ viommuId, depth: 8 }).veventqId > veventqId);
  assert.throws(() => ctx.veventqDestroy(veventqId), { code: "ENOENT" });
});

Deno.test("a nested attach on a vIOMMU binds the device's vSID in the driver; its events reach the vEVENTQ only while one exists", () => {
  const { ctx, driver, dev, devId, s2 } = ctxRig();
  const viommuId = ctx.viommuAlloc({ devId, hwptId: s2 });
  ctx.vdeviceAlloc({ viommuId, devId, virtId: 0x42 });
  const nested = ctx.hwptAlloc({
    devId,
    ptId: viommuId,
    data: { s1Ttb: 0x1000, asid: 1, stall: false },
  }).id;
  ctx.attach(devId, nested);
  const vm = driver.vmasters.get(dev)!;
  assert.equal(vm.vsid, 0x42);
  assert.equal(vm.reportEvent(new Uint32Array(8)), -1, "no vEVENTQ yet");
  const { veventq } = ctx.veventqAlloc({ viommuId, depth: 4 });
  assert(vm.reportEvent(new Uint32Array(8)) >= 0);
  assert.equal(veventq.pendingEvents, 1);
  // Back to the plain stage 2: no vIOMMU binding any more.
  ctx.attach(devId, s2);
  assert.equal(driver.vmasters.has(dev), false);
});
