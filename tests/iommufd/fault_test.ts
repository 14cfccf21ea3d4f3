/**
 * The iommufd fault uAPI rules (include/uapi/linux/iommufd.h and
 * drivers/iommu/iommufd/fault.c, Linux 6.11): the byte layout of struct
 * iommu_hwpt_pgfault and struct iommu_hwpt_page_response, read() of whole
 * groups only, the EINVAL and ESPIPE cases of write() and read(), and the
 * INVALID answers of a domain replace or detach.
 */
import assert from "node:assert/strict";
import {
  decodePgfault,
  decodePgfaults,
  encodePageResponses,
  encodePgfault,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_PAGE_RESPONSE_SIZE,
  IOMMU_HWPT_PGFAULT_SIZE,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  IommufdCtx,
  PGFAULT_OFFSETS,
} from "../../lib/iommufd/mod.ts";
import { IommuCore } from "../../lib/iommu/mod.ts";
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PERM_WRITE,
  IOMMU_PAGE_RESP_INVALID,
  IOMMU_PAGE_RESP_SUCCESS,
} from "../../lib/iommu/types.ts";
import { HostMemory, MmStruct } from "../../lib/mm/mod.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import { fakeDevice, FakeIommuDriver } from "../iommu/_fake_driver.ts";

const GPA = 0x4000_0000;
const RW = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
  IOMMU_IOAS_MAP_WRITEABLE;

/** A VMM's iommufd with one stall-capable device on a nested HWPT with a fault queue. */
function rig() {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const driver = new FakeIommuDriver(sim, { costs });
  const core = new IommuCore(sim, { costs, driver });
  driver.bind(core);
  const mm = new MmStruct(new HostMemory({ size: 2 ** 30, costs }), {
    memlockLimit: Infinity,
  });
  const ram = mm.mmap({ size: 2 ** 22, backing: "4k" });
  const ctx = new IommufdCtx(core, mm);
  const dev = fakeDevice("zip0", 1);
  const devId = ctx.bindDevice(dev);
  const ioas = ctx.ioasAlloc();
  ctx.ioasMap(ioas, {
    userVa: ram.start,
    iova: GPA,
    length: 2 ** 22,
    flags: RW,
  });
  const s2 = ctx.hwptAlloc({
    devId,
    ptId: ioas,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  }).id;
  const viommu = ctx.viommuAlloc({ devId, hwptId: s2 });
  ctx.vdeviceAlloc({ viommuId: viommu, devId, virtId: 0x20 });
  const { faultId, fault } = ctx.faultQueueAlloc();
  const config = { s1Ttb: GPA, asid: 1, stall: true };
  const nested = ctx.hwptAlloc({
    devId,
    ptId: viommu,
    flags: IOMMU_HWPT_FAULT_ID_VALID,
    faultId,
    data: config,
  }).id;
  ctx.attach(devId, nested);
  sim.run();
  /** Reports a stage-1 group of `n` faults (the last one LAST_PAGE). */
  const group = (addr: number, n = 1, grpid?: number) => {
    const g = grpid ?? 100 + addr / 4096;
    const faults = [];
    for (let i = 0; i < n; i++) {
      faults.push(driver.inject(dev, {
        addr: addr + i * 4096,
        grpid: g,
        last: i === n - 1,
        stage: 1,
        perm: IOMMU_FAULT_PERM_WRITE,
      }));
    }
    return faults;
  };
  return {
    sim,
    core,
    driver,
    ctx,
    dev,
    devId,
    s2,
    viommu,
    fault,
    faultId,
    config,
    group,
  };
}

Deno.test("struct iommu_hwpt_pgfault is 40 bytes: flags, dev_id, pasid, grpid, perm at 0..16, a hole at 20, addr at 24, length at 32, cookie at 36", () => {
  assert.equal(IOMMU_HWPT_PGFAULT_SIZE, 40);
  assert.deepEqual(PGFAULT_OFFSETS, {
    flags: 0,
    devId: 4,
    pasid: 8,
    grpid: 12,
    perm: 16,
    addr: 24,
    length: 32,
    cookie: 36,
  });
  const buf = new Uint8Array(40).fill(0xee);
  const rec = {
    flags: 3,
    devId: 0x11223344,
    pasid: 5,
    grpid: 0x1ff,
    perm: 2,
    addr: 0x000f_0000_1234_5000,
    length: 0,
    cookie: 9,
  };
  encodePgfault(new DataView(buf.buffer), 0, rec);
  // Little-endian fields at their offsets; the hole is zeroed.
  assert.deepEqual([...buf.subarray(0, 4)], [3, 0, 0, 0]);
  assert.deepEqual([...buf.subarray(4, 8)], [0x44, 0x33, 0x22, 0x11]);
  assert.deepEqual([...buf.subarray(20, 24)], [0, 0, 0, 0]);
  assert.deepEqual(
    [...buf.subarray(24, 32)],
    [0x00, 0x50, 0x34, 0x12, 0x00, 0x00, 0x0f, 0x00],
  );
  assert.deepEqual([...buf.subarray(36, 40)], [9, 0, 0, 0]);
  assert.deepEqual(decodePgfault(new DataView(buf.buffer), 0), rec);
});

Deno.test("struct iommu_hwpt_page_response is 8 bytes: cookie then code, little-endian", () => {
  assert.equal(IOMMU_HWPT_PAGE_RESPONSE_SIZE, 8);
  const b = encodePageResponses([{ cookie: 0x0102_0304, code: 1 }, {
    cookie: 2,
    code: 0,
  }]);
  assert.deepEqual([...b], [4, 3, 2, 1, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
});

Deno.test("read() returns the records of a group with the device's dev_id, the fault's fields, length 0 and one cookie", () => {
  const r = rig();
  const faults = r.group(0x10_0000, 3, 7);
  r.sim.run();
  assert.equal(r.fault.readable, true);
  const recs = decodePgfaults(r.fault.read(40 * 8));
  assert.equal(recs.length, 3);
  for (let i = 0; i < 3; i++) {
    assert.equal(recs[i]!.devId, r.devId);
    assert.equal(recs[i]!.addr, faults[i]!.addr);
    assert.equal(recs[i]!.grpid, 7);
    assert.equal(recs[i]!.perm, IOMMU_FAULT_PERM_WRITE);
    assert.equal(recs[i]!.length, 0);
    assert.equal(recs[i]!.cookie, recs[0]!.cookie);
  }
  assert.equal(
    recs[2]!.flags & IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
    IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  );
  assert.equal(recs[0]!.flags & IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE, 0);
  assert.equal(r.fault.readable, false);
});

Deno.test("read() returns whole groups only: a buffer too small for the first group reads 0 bytes, the rest waits", () => {
  const r = rig();
  r.group(0x10_0000, 3, 7); // 120 bytes
  r.group(0x20_0000, 1, 8); // 40 bytes
  r.sim.run();
  assert.equal(r.fault.read(80).byteLength, 0);
  assert.equal(r.fault.deliverable, 2);
  // 160 bytes hold both; 120 only the first (the second is not split off).
  assert.equal(r.fault.read(120).byteLength, 120);
  assert.equal(r.fault.deliverable, 1);
  assert.equal(r.fault.read(400).byteLength, 40);
  assert.equal(r.fault.read(400).byteLength, 0);
});

Deno.test("read() of a count that is not a multiple of 40 is ESPIPE and reads nothing", () => {
  const r = rig();
  r.group(0x10_0000);
  r.sim.run();
  for (const n of [1, 39, 41, 100]) {
    assert.throws(
      () => r.fault.read(n),
      (e: unknown) => e instanceof IopfLabError && e.code === "ESPIPE",
    );
  }
  assert.equal(r.fault.deliverable, 1);
});

Deno.test("write() of SUCCESS answers the group once; the same cookie again is EINVAL", () => {
  const r = rig();
  const [f] = r.group(0x10_0000);
  r.sim.run();
  const [rec] = decodePgfaults(r.fault.read(40));
  const bytes = encodePageResponses([{
    cookie: rec!.cookie,
    code: IOMMUFD_PAGE_RESP_SUCCESS,
  }]);
  assert.equal(r.fault.write(bytes), 8);
  assert.deepEqual(r.driver.responsesFor(f!).map((x) => x.code), [
    IOMMU_PAGE_RESP_SUCCESS,
  ]);
  assert.throws(
    () => r.fault.write(bytes),
    (e: unknown) => e instanceof IopfLabError && e.code === "EINVAL",
  );
  assert.equal(r.driver.responsesFor(f!).length, 1);
});

Deno.test("write() of a code other than SUCCESS or INVALID is EINVAL and answers nothing", () => {
  const r = rig();
  const [f] = r.group(0x10_0000);
  r.sim.run();
  const [rec] = decodePgfaults(r.fault.read(40));
  for (const code of [2, 3, 0xffff_ffff]) {
    assert.throws(
      () => r.fault.write(encodePageResponses([{ cookie: rec!.cookie, code }])),
      (e: unknown) => e instanceof IopfLabError && e.code === "EINVAL",
    );
  }
  assert.equal(r.driver.responsesFor(f!).length, 0);
  assert.equal(r.fault.awaitingResponse, 1);
  // INVALID is accepted and reaches the hardware as INVALID.
  r.fault.write(
    encodePageResponses([{
      cookie: rec!.cookie,
      code: IOMMUFD_PAGE_RESP_INVALID,
    }]),
  );
  assert.deepEqual(r.driver.responsesFor(f!).map((x) => x.code), [
    IOMMU_PAGE_RESP_INVALID,
  ]);
});

Deno.test("write() with a cookie never handed out, or of a group not read yet, is EINVAL", () => {
  const r = rig();
  const [f] = r.group(0x10_0000);
  r.sim.run();
  // The group was delivered but not read: it has no cookie yet.
  for (const cookie of [0, 1, 12345]) {
    assert.throws(
      () => r.fault.write(encodePageResponses([{ cookie, code: 0 }])),
      (e: unknown) => e instanceof IopfLabError && e.code === "EINVAL",
    );
  }
  assert.equal(r.driver.responsesFor(f!).length, 0);
});

Deno.test("write() stops at the first bad response and returns the bytes handled before it", () => {
  const r = rig();
  const [f1] = r.group(0x10_0000, 1, 1);
  const [f2] = r.group(0x20_0000, 1, 2);
  r.sim.run();
  const recs = decodePgfaults(r.fault.read(80));
  const n = r.fault.write(encodePageResponses([
    { cookie: recs[0]!.cookie, code: 0 },
    { cookie: 999, code: 0 },
    { cookie: recs[1]!.cookie, code: 0 },
  ]));
  assert.equal(n, 8);
  assert.equal(r.driver.responsesFor(f1!).length, 1);
  assert.equal(r.driver.responsesFor(f2!).length, 0);
  assert.equal(r.fault.awaitingResponse, 1);
});

Deno.test("write() of a length that is not a multiple of 8 is ESPIPE", () => {
  const r = rig();
  r.group(0x10_0000);
  r.sim.run();
  const [rec] = decodePgfaults(r.fault.read(40));
  const b = encodePageResponses([{ cookie: rec!.cookie, code: 0 }]);
  assert.throws(
    () => r.fault.write(b.subarray(0, 7)),
    (e: unknown) => e instanceof IopfLabError && e.code === "ESPIPE",
  );
  assert.equal(r.fault.awaitingResponse, 1);
});

Deno.test("cookies are the lowest free ids from 1, reused once answered", () => {
  const r = rig();
  r.group(0x10_0000, 1, 1);
  r.group(0x20_0000, 1, 2);
  r.sim.run();
  const a = decodePgfaults(r.fault.read(80));
  assert.deepEqual(a.map((x) => x.cookie), [1, 2]);
  r.fault.write(encodePageResponses([{ cookie: 1, code: 0 }]));
  r.group(0x30_0000, 1, 3);
  r.sim.run();
  assert.equal(decodePgfaults(r.fault.read(40))[0]!.cookie, 1);
});

Deno.test("a domain replace answers every pending group INVALID, read or not; their cookies are EINVAL afterwards", () => {
  const r = rig();
  const [read] = r.group(0x10_0000, 1, 1);
  r.sim.run();
  const [rec] = decodePgfaults(r.fault.read(40));
  const [unread] = r.group(0x20_0000, 1, 2);
  r.sim.run();
  // The guest's vSTE changes: QEMU allocates a new nested HWPT and replaces.
  const again = r.ctx.hwptAlloc({
    devId: r.devId,
    ptId: r.viommu,
    flags: IOMMU_HWPT_FAULT_ID_VALID,
    faultId: r.faultId,
    data: r.config,
  }).id;
  r.ctx.attach(r.devId, again);
  assert.deepEqual(r.driver.responsesFor(read!).map((x) => x.code), [
    IOMMU_PAGE_RESP_INVALID,
  ]);
  assert.deepEqual(r.driver.responsesFor(unread!).map((x) => x.code), [
    IOMMU_PAGE_RESP_INVALID,
  ]);
  assert.equal(r.fault.readable, false);
  assert.throws(
    () =>
      r.fault.write(encodePageResponses([{ cookie: rec!.cookie, code: 0 }])),
    (e: unknown) => e instanceof IopfLabError && e.code === "EINVAL",
  );
  // The new HWPT delivers new faults to the same queue.
  r.sim.run();
  r.group(0x30_0000, 1, 3);
  r.sim.run();
  assert.equal(decodePgfaults(r.fault.read(40)).length, 1);
});

Deno.test("a detach answers every pending group INVALID and disables the device's IOPF", () => {
  const r = rig();
  const [read] = r.group(0x10_0000, 1, 1);
  r.sim.run();
  r.fault.read(40);
  const unread = r.group(0x20_0000, 2, 2).at(-1); // answered for its LAST fault
  r.sim.run();
  r.ctx.detach(r.devId);
  r.sim.run();
  for (const f of [read!, unread!]) {
    assert.deepEqual(r.driver.responsesFor(f).map((x) => x.code), [
      IOMMU_PAGE_RESP_INVALID,
    ]);
  }
  assert.equal(r.fault.awaitingResponse, 0);
  assert.equal(r.fault.deliverable, 0);
  assert.equal(r.driver.iopfEnabled.has(r.dev), false);
  assert.equal(r.core.iopf.stats().pendingGroups, 0);
});

Deno.test("a paging HWPT cannot take a fault queue (EOPNOTSUPP), and a nested HWPT names an existing one (ENOENT)", () => {
  const r = rig();
  const ioas = r.ctx.ioasAlloc();
  assert.throws(
    () =>
      r.ctx.hwptAlloc({
        devId: r.devId,
        ptId: ioas,
        flags: IOMMU_HWPT_FAULT_ID_VALID,
        faultId: r.faultId,
      }),
    (e: unknown) => e instanceof IopfLabError && e.code === "EOPNOTSUPP",
  );
  assert.throws(
    () =>
      r.ctx.hwptAlloc({
        devId: r.devId,
        ptId: r.viommu,
        flags: IOMMU_HWPT_FAULT_ID_VALID,
        faultId: 4242,
        data: r.config,
      }),
    (e: unknown) => e instanceof IopfLabError && e.code === "ENOENT",
  );
});

Deno.test("an IOAS mapping pins and charges every page; unmapping releases them after the IOTLB sync", () => {
  const r = rig();
  assert.equal(r.ctx.pinnedPages, 1024);
  assert.equal(r.ctx.lockedPages, 1024);
  // iommufd's default IOPT_PAGES_ACCOUNT_USER charges the user, not the mm.
  assert.equal(r.ctx.account.user.lockedPages, 1024);
  assert.equal(r.ctx.mm.lockedVm, 0);
  const ioasId = r.ctx.attachedHwpt(r.devId)!.ioas.id;
  assert.throws(
    () => r.ctx.ioasUnmap(ioasId, { iova: GPA, length: 4096 }),
    (e: unknown) => e instanceof IopfLabError && e.code === "ENOENT",
  );
  let done = false;
  const u = r.ctx.ioasUnmap(ioasId, { iova: GPA, length: 2 ** 22 }, () => {
    done = true;
  });
  assert.equal(u.bytes, 2 ** 22);
  assert.equal(r.ctx.pinnedPages, 1024); // until the sync completes
  r.sim.run();
  assert.equal(done, true);
  assert.equal(r.ctx.pinnedPages, 0);
  assert.equal(r.ctx.account.user.lockedPages, 0);
  assert.equal(r.ctx.mm.pinRefs, 0);
});

Deno.test("what-if: an IOAS with iopf pins nothing at map and pins the faulting page when a paging HWPT faults", () => {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const driver = new FakeIommuDriver(sim, { costs });
  const core = new IommuCore(sim, { costs, driver });
  driver.bind(core);
  const mm = new MmStruct(new HostMemory({ size: 2 ** 30, costs }), {
    memlockLimit: Infinity,
  });
  const ram = mm.mmap({ size: 2 ** 22, backing: "4k" });
  const ctx = new IommufdCtx(core, mm);
  const dev = fakeDevice("zip0", 1);
  const devId = ctx.bindDevice(dev);
  const ioas = ctx.ioasAlloc({ iopf: true, premapPages: 4 });
  ctx.ioasMap(ioas, {
    userVa: ram.start,
    iova: GPA,
    length: 2 ** 22,
    flags: RW,
  });
  assert.equal(ctx.pinnedPages, 0);
  const hwpt = ctx.hwptAlloc({ devId, ptId: ioas }).id;
  ctx.attach(devId, hwpt);
  sim.run();
  assert.equal(driver.iopfEnabled.has(dev), true);
  const f = driver.inject(dev, {
    addr: GPA + 0x5000,
    perm: IOMMU_FAULT_PERM_WRITE,
  });
  sim.run();
  assert.deepEqual(driver.responsesFor(f).map((x) => x.code), [
    IOMMU_PAGE_RESP_SUCCESS,
  ]);
  assert.equal(ctx.pinnedPages, 4); // the faulting page and 3 pre-mapped
  assert(core.iovaToPhys(ctx.hwpt(hwpt).domain, GPA + 0x5000) >= 0);
  assert.equal(core.iovaToPhys(ctx.hwpt(hwpt).domain, GPA + 0x9000), -1);
  // Outside every area: INVALID.
  const g = driver.inject(dev, { addr: 0x1000 });
  sim.run();
  assert.deepEqual(driver.responsesFor(g).map((x) => x.code), [
    IOMMU_PAGE_RESP_INVALID,
  ]);
  let released = false;
  ctx.release(() => (released = true));
  sim.run();
  assert.equal(released, true);
  assert.equal(mm.pinRefs, 0);
  assert.equal(mm.lockedVm, 0);
});
