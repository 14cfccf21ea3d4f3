/**
 * IOMMU_IOAS_MAP in simulated time (IommufdIoas.mapTimed) and iommufd's
 * page accounting (IOPT_PAGES_ACCOUNT_USER / MM / NONE against
 * RLIMIT_MEMLOCK).
 */
import assert from "node:assert/strict";
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  type IommufdAccountMode,
  IommufdCtx,
  IommufdUser,
} from "../../lib/iommufd/mod.ts";
import { IommuCore } from "../../lib/iommu/mod.ts";
import { HostMemory, MmStruct } from "../../lib/mm/mod.ts";
import type { Backing } from "../../lib/mm/types.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import type { IopfLabError } from "../../lib/sim/errors.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import { fakeDevice, FakeIommuDriver } from "../iommu/_fake_driver.ts";

const GPA = 0x4000_0000;
const RW = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
  IOMMU_IOAS_MAP_WRITEABLE;

function rig(o: {
  ram?: number;
  backing?: Backing;
  memlock?: number;
  accountMode?: IommufdAccountMode;
  user?: IommufdUser;
  host?: { sim: Simulator; core: IommuCore; driver: FakeIommuDriver };
} = {}) {
  const costs = loadCostProfile();
  const sim = o.host?.sim ?? new Simulator();
  let driver = o.host?.driver;
  let core = o.host?.core;
  if (!driver || !core) {
    driver = new FakeIommuDriver(sim, { costs });
    core = new IommuCore(sim, { costs, driver });
    driver.bind(core);
  }
  const ramSize = o.ram ?? 2 ** 28;
  const mm = new MmStruct(new HostMemory({ size: 2 ** 33, costs }), {
    memlockLimit: o.memlock ?? Infinity,
  });
  const ram = mm.mmap({ size: ramSize, backing: o.backing ?? "4k" });
  const ctx = new IommufdCtx(core, mm, {
    ...(o.accountMode ? { accountMode: o.accountMode } : {}),
    ...(o.user ? { user: o.user } : {}),
  });
  const dev = fakeDevice(`dev${Math.random()}`, 1);
  const devId = ctx.bindDevice(dev);
  const ioas = ctx.ioasAlloc();
  const hwpt = ctx.hwptAlloc({
    devId,
    ptId: ioas,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  }).id;
  const req = { userVa: ram.start, iova: GPA, length: ramSize, flags: RW };
  return { sim, core, driver, mm, ctx, ioas, hwpt, req, costs };
}

/** Runs a timed map of `req`, sampling pinned pages at every event. */
function timedMap(r: ReturnType<typeof rig>) {
  const samples: number[] = [];
  let result: { e: IopfLabError | undefined; ns: number; at: number } | null =
    null;
  r.ctx.ioasMapTimed(r.ioas, r.req, (e, ns) => {
    result = { e, ns, at: r.sim.now };
  });
  const t0 = r.sim.now;
  samples.push(r.ctx.pinnedPages); // the first step runs in the call
  while (r.sim.run({ maxEvents: 1 }) > 0) samples.push(r.ctx.pinnedPages);
  return { samples, result: result!, t0 };
}

Deno.test("a timed IOMMU_IOAS_MAP pins as time passes, in whole 2 MiB steps, and returns after its whole cost", () => {
  const r = rig();
  const sync = rig();
  const syncNs = sync.ctx.ioasMap(sync.ioas, sync.req);
  const { samples, result } = timedMap(r);
  assert.equal(result.e, undefined);
  const total = r.req.length / 4096;
  assert.equal(r.ctx.pinnedPages, total);
  const mid = samples.filter((p) => p > 0 && p < total);
  assert(mid.length >= 32, `${mid.length} intermediate samples`);
  for (const p of samples) assert.equal(p % 512, 0, "whole 2 MiB blocks");
  for (let i = 1; i < samples.length; i++) {
    assert(samples[i]! >= samples[i - 1]!, "pins only grow");
  }
  // The same work as the one-shot ioctl, spread over time.
  assert.equal(result.at, result.ns);
  assert(
    Math.abs(result.ns - syncNs) / syncNs < 0.01,
    `${result.ns} ${syncNs}`,
  );
  assert.equal(r.ctx.account.user.lockedPages, total);
});

Deno.test("with 1 GiB pages the timed map advances a whole 1 GiB page per step", () => {
  const r = rig({ ram: 2 ** 32, backing: "hugetlb-1g" });
  const { samples, result } = timedMap(r);
  assert.equal(result.e, undefined);
  const distinct = [...new Set(samples)];
  for (const p of distinct) assert.equal(p % 2 ** 18, 0);
  assert(distinct.includes(2 ** 18) && distinct.includes(3 * 2 ** 18));
});

Deno.test("IOPT_PAGES_ACCOUNT_USER (iommufd's default): two files of one user share user_struct->locked_vm against RLIMIT_MEMLOCK; the mm's locked_vm is untouched", () => {
  const user = new IommufdUser("qemu");
  const pages = 2 ** 28 / 4096;
  const a = rig({ user, memlock: 2 ** 28 * 1.5 });
  const b = rig({ user, memlock: 2 ** 28 * 1.5 });
  a.ctx.ioasMap(a.ioas, a.req);
  assert.equal(user.lockedPages, pages);
  assert.equal(a.mm.lockedVm, 0, "ACCOUNT_USER does not charge mm->locked_vm");
  // The second file's mapping would take the user past 1.5x: ENOMEM, and
  // nothing of it stays pinned or charged.
  assert.throws(
    () => b.ctx.ioasMap(b.ioas, b.req),
    (e: IopfLabError) =>
      e.code === "ENOMEM" && /RLIMIT_MEMLOCK/.test(e.message),
  );
  assert.equal(user.lockedPages, pages);
  assert.equal(b.ctx.pinnedPages, 0);
  // Unmapping the first file's area uncharges the user; now the second fits.
  a.ctx.ioasUnmap(a.ioas, { iova: GPA, length: 2 ** 28 });
  a.sim.run();
  assert.equal(user.lockedPages, 0);
  b.ctx.ioasMap(b.ioas, b.req);
  assert.equal(user.lockedPages, pages);
  assert.equal(user.peakLockedPages, pages);
});

Deno.test("IOPT_PAGES_ACCOUNT_MM (VFIO compat) charges the mm's locked_vm, not the user; ACCOUNT_NONE charges nothing and ignores the limit", () => {
  const pages = 2 ** 28 / 4096;
  const mm = rig({ accountMode: "mm", memlock: 2 ** 29 });
  mm.ctx.ioasMap(mm.ioas, mm.req);
  assert.equal(mm.mm.lockedVm, pages);
  assert.equal(mm.ctx.account.user.lockedPages, 0);
  const tight = rig({ accountMode: "mm", memlock: 2 ** 27 });
  assert.throws(
    () => tight.ctx.ioasMap(tight.ioas, tight.req),
    (e: IopfLabError) => e.code === "ENOMEM",
  );
  assert.equal(tight.mm.lockedVm, 0);
  const none = rig({ accountMode: "none", memlock: 2 ** 20 });
  none.ctx.ioasMap(none.ioas, none.req);
  assert.equal(none.ctx.pinnedPages, pages);
  assert.equal(none.mm.lockedVm, 0);
  assert.equal(none.ctx.account.user.lockedPages, 0);
});

Deno.test("a timed IOMMU_IOAS_MAP over RLIMIT_MEMLOCK fails at the step that crosses it, after the time spent so far, and unwinds every page it pinned", () => {
  const r = rig({ memlock: 2 ** 27 }); // half of the 256 MiB mapping
  const { samples, result } = timedMap(r);
  assert.equal(result.e?.code, "ENOMEM");
  assert(Math.max(...samples) > 0 && Math.max(...samples) <= 2 ** 27 / 4096);
  assert(result.ns > 0);
  assert.equal(r.ctx.pinnedPages, 0);
  assert.equal(r.ctx.account.user.lockedPages, 0);
  // Bad account modes are refused when the file is opened.
  assert.throws(
    () => rig({ accountMode: "bogus" as IommufdAccountMode }),
    (e: IopfLabError) => e.code === "EINVAL",
  );
});
