import assert from "node:assert/strict";
import type { IopfLabError } from "../../lib/sim/errors.ts";
import { GiB, GUEST_RAM_GPA, MiB, RW, setup } from "./_setup.ts";
import type { Backing } from "../../lib/mm/types.ts";

/** VFIO_IOMMU_MAP_DMA of all guest RAM through mapDmaTimed; runs the simulator. */
function mapTimed(s: ReturnType<typeof setup>) {
  const t0 = s.sim.now;
  let result:
    | { error: IopfLabError | undefined; ns: number; at: number }
    | undefined;
  s.container.mapDmaTimed(
    { vaddr: s.ram.start, iova: GUEST_RAM_GPA, size: s.ram.size, flags: RW },
    (error, ns) => (result = { error, ns, at: s.sim.now - t0 }),
  );
  return {
    run() {
      s.sim.run();
      assert.ok(result, "the ioctl never returned");
      return result;
    },
  };
}

Deno.test("a timed static pin costs what the one-shot pin costs and ends in the same state", async (t) => {
  for (const backing of ["4k", "thp", "hugetlb-2m"] as Backing[]) {
    await t.step(backing, () => {
      const opts = {
        guestSize: 3 * GiB + 64 * MiB,
        hostSize: 8 * GiB,
        backing,
      };
      const a = setup(opts);
      const ns = a.container.mapDma({
        vaddr: a.ram.start,
        iova: GUEST_RAM_GPA,
        size: a.ram.size,
        flags: RW,
      });
      const b = setup(opts);
      const r = mapTimed(b).run();
      assert.equal(r.error, undefined);
      assert.ok(Math.abs(r.ns - ns) < 1e-6 * ns, `${r.ns} vs ${ns}`);
      assert.ok(
        Math.abs(r.at - ns) < 1e-6 * ns,
        "the ioctl returns after its cost",
      );
      assert.deepEqual(b.container.dmas(), a.container.dmas());
      assert.equal(b.mm.pinnedPages, a.mm.pinnedPages);
      assert.equal(b.mm.lockedVm, a.mm.lockedVm);
      // The same IOMMU mappings: every 2 MiB of the range translates alike.
      for (let off = 0; off < a.ram.size; off += 2 * MiB) {
        assert.equal(
          b.core.iovaToPhys(b.container.domain!, GUEST_RAM_GPA + off) -
            b.host.base,
          a.core.iovaToPhys(a.container.domain!, GUEST_RAM_GPA + off) -
            a.host.base,
        );
      }
    });
  }
});

Deno.test("pinned and locked pages grow step by step through a timed static pin", () => {
  const s = setup({ guestSize: 256 * MiB, hostSize: GiB });
  const total = (256 * MiB) / 4096;
  const seen: number[] = [];
  const job = mapTimed(s);
  const sample = () => {
    seen.push(s.container.pinnedPages);
    assert.equal(s.container.lockedPages, s.container.pinnedPages);
    if (s.container.pinnedPages < total) s.sim.after(100_000, sample);
  };
  sample();
  const r = job.run();
  const mid = seen.filter((p) => p > 0 && p < total);
  assert.ok(mid.length >= 10, `only ${mid.length} samples mid-pin`);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!);
  assert.equal(seen.at(-1), total);
  // 64 steps of 4 MiB: pinned pages are whole steps.
  for (const p of mid) assert.equal(p % 1024, 0);
  assert.ok(r.at > 0);
});

Deno.test("a timed pin over RLIMIT_MEMLOCK fails at the limit with nothing left pinned, charged or linked", () => {
  const s = setup({ guestSize: 64 * MiB, memlockLimit: 16 * MiB });
  const r = mapTimed(s).run();
  assert.equal(r.error?.code, "ENOMEM");
  assert.match(r.error!.message, /RLIMIT_MEMLOCK/);
  assert.equal(s.container.pinnedPages, 0);
  assert.equal(s.mm.lockedVm, 0);
  assert.deepEqual(s.container.dmas(), []);
  // Pages faulted in before the limit stay populated, as in the kernel.
  assert.ok(s.mm.populatedBytes > 0);
});

Deno.test("static MAP_DMA maps each physically contiguous run of 4 KiB pages with one iommu_map", async (t) => {
  // vfio_pin_map_dma(): vfio_pin_pages_remote() returns the run of
  // contiguous PFNs from the start, vfio_iommu_map() maps it in one call.
  for (
    const [order, maps] of [["ascending", 1], ["scattered", 2048]] as const
  ) {
    await t.step(order, () => {
      const s = setup({ guestSize: 8 * MiB, frameOrder: order });
      s.mm.prefault(s.ram.start, s.ram.size);
      const ns = s.container.mapDma({
        vaddr: s.ram.start,
        iova: GUEST_RAM_GPA,
        size: s.ram.size,
        flags: RW,
      });
      assert.equal(s.core.counters.get("iommu.maps"), maps);
      assert.equal(s.core.counters.get("iommu.mapBytes"), 8 * MiB);
      const k = s.costs;
      // The pin: one call per 512-page batch, GUP per 4 KiB page and per
      // 4 KiB folio; the map: iommu.mapCall per run plus the driver's PTEs.
      const pin = 4 * k["mm.pinCall"] +
        2048 * (k["mm.pinPer4k"] + k["mm.pinPerSmallFolio"]);
      assert.ok(ns >= pin + maps * k["iommu.mapCall"]);
    });
  }
});
