import assert from "node:assert/strict";
import { HostMemory } from "../../lib/mm/host_memory.ts";
import { MmStruct } from "../../lib/mm/mm_struct.ts";
import type { Backing } from "../../lib/mm/types.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import { GiB, MiB } from "./_helpers.ts";

/** Distinct fault costs per backing and round zeroing costs. */
const COSTS = loadCostProfile({
  "mm.zeroPer4k": 100,
  "mm.memBandwidthPer4k": 40,
  "mm.faultOverhead": 200,
  "mm.faultThp": 30_000,
  "mm.faultHugetlb2m": 2_000,
  "mm.faultHugetlb1g": 5_000,
});

function space(backing: Backing, sim?: Simulator) {
  const host = new HostMemory({
    size: 4 * GiB,
    costs: COSTS,
    ...(sim ? { sim } : {}),
  });
  const mm = new MmStruct(host, { memlockLimit: Infinity });
  const vma = mm.mmap({ size: 2 * GiB, backing });
  return { host, mm, hva: vma.start };
}

Deno.test("fault-in costs differ by backing", async (t) => {
  await t.step("4 KiB: one 4 KiB fault and one page zeroed per page", () => {
    const { mm, hva } = space("4k");
    assert.equal(mm.prefault(hva, 2 * MiB), 512 * (200 + 100));
  });

  await t.step("THP: one THP fault and 512 pages zeroed per 2 MiB", () => {
    const { mm, hva } = space("thp");
    assert.equal(mm.prefault(hva, 4 * MiB), 2 * (30_000 + 512 * 100));
  });

  await t.step("hugetlb 2 MiB: the pool's fault, the same zeroing", () => {
    const { mm, hva } = space("hugetlb-2m");
    assert.equal(mm.prefault(hva, 4 * MiB), 2 * (2_000 + 512 * 100));
  });

  await t.step("hugetlb 1 GiB: one fault, 262144 pages zeroed", () => {
    const { mm, hva } = space("hugetlb-1g");
    assert.equal(mm.prefault(hva, 4096), 5_000 + 262_144 * 100);
  });

  await t.step("a pin that faults pays the same fault-in as a touch", () => {
    const { mm, hva } = space("thp");
    const pin = mm.pinUserPages(hva, 1, { longterm: true });
    const k = COSTS;
    assert.equal(
      pin.ns,
      30_000 + 512 * 100 + k["mm.pinCall"] + k["mm.pinPer4k"] +
        k["mm.pinPerHuge"],
    );
  });

  await t.step("prefault with out leaves the zeroing to the caller", () => {
    const { mm, hva } = space("hugetlb-2m");
    const out = { zeroPages: -1 };
    assert.equal(mm.prefault(hva, 6 * MiB, out), 3 * 2_000);
    assert.equal(out.zeroPages, 3 * 512);
    // already populated: nothing to fault or zero
    assert.equal(mm.prefault(hva, 6 * MiB, out), 0);
    assert.equal(out.zeroPages, 0);
  });
});

Deno.test("page zeroing draws on the host's memory bandwidth", async (t) => {
  await t.step("alone, a fault zeroes at the rate of one core", () => {
    const sim = new Simulator();
    const { host, mm, hva } = space("hugetlb-2m", sim);
    assert.ok(host.bandwidth);
    assert.equal(mm.prefault(hva, 2 * MiB), 2_000 + 512 * 100);
  });

  await t.step(
    "a fault while prealloc streams run gets its fair share of the host",
    () => {
      const sim = new Simulator();
      const { host, mm, hva } = space("hugetlb-2m", sim);
      const bw = host.bandwidth!;
      // two elastic streams: each 1 page per 100 ns (cores) while the host
      // does 1 per 40 ns; a third (the fault) gets max(100, 3 * 40) = 120
      bw.transfer(1e6, () => {});
      bw.transfer(1e6, () => {});
      assert.equal(mm.prefault(hva, 2 * MiB), 2_000 + 512 * 120);
    },
  );

  await t.step("without a simulator every zeroing is one core alone", () => {
    const { host } = space("4k");
    assert.equal(host.bandwidth, undefined);
    assert.equal(host.zeroNs(10), 1000);
  });
});
