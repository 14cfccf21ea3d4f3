import assert from "node:assert/strict";
import { HostMemory } from "../../lib/mm/host_memory.ts";
import { MmStruct } from "../../lib/mm/mm_struct.ts";
import type { Backing } from "../../lib/mm/types.ts";
import { SZ_2M } from "../../lib/sim/units.ts";
import { GiB, MiB, TEST_COSTS, throwsCode, TiB } from "./_helpers.ts";

const P = 4096;
const ZERO = 100, FAULT = 1000, PIN_CALL = 50, PIN = 10, HUGE = 7, UNPIN = 5;
const SMALL = 3; // mm.pinPerSmallFolio of TEST_COSTS
const RECLAIM = 2000, SWAPIN = 20000, NOTIFY = 3;

function setup(
  hostSize = 64 * MiB,
  memlockLimit = Infinity,
  directReclaim = false,
) {
  const host = new HostMemory({
    size: hostSize,
    costs: TEST_COSTS,
    directReclaim,
  });
  const mm = new MmStruct(host, { memlockLimit });
  return { host, mm };
}

/** Records notifier calls as strings, with the populated state seen at the call. */
function recorder(mm: MmStruct, start: number, size: number) {
  const log: string[] = [];
  const n = mm.registerMmuNotifier(start, size, {
    invalidateRangeStart: (s, e) => {
      log.push(
        `start ${(s - start) / P}-${(e - start) / P} pfn=${
          mm.hvaToPfn(s) >= 0
        }`,
      );
    },
    invalidateRangeEnd: (s, e) => {
      log.push(
        `end ${(s - start) / P}-${(e - start) / P} pfn=${mm.hvaToPfn(s) >= 0}`,
      );
    },
  });
  return { log, n };
}

Deno.test("MmStruct: mmap", async (t) => {
  await t.step("aligns to the backing and keeps mappings sorted", () => {
    const { mm } = setup(4 * GiB);
    const a = mm.mmap({ size: 12 * P, backing: "4k" });
    const b = mm.mmap({ size: GiB, backing: "hugetlb-1g" });
    const c = mm.mmap({ size: 4 * MiB, backing: "thp" });
    assert.equal(a.start % (2 * MiB), 0);
    assert.equal(b.start % GiB, 0);
    assert.ok(b.start >= a.end && c.start >= b.end);
    assert.equal(b.pageSize, GiB);
    assert.deepEqual(mm.vmas.map((v) => v.backing), [
      "4k",
      "hugetlb-1g",
      "thp",
    ]);
    assert.equal(mm.findVma(c.start + 5)?.start, c.start);
    assert.equal(mm.findVma(a.end), undefined);
  });

  await t.step("fixed addresses, overlaps and bad sizes", () => {
    const { mm } = setup();
    const a = mm.mmap({ size: 4 * MiB, backing: "4k", hva: 0x1_0000_0000 });
    assert.equal(a.start, 0x1_0000_0000);
    throwsCode(
      () => mm.mmap({ size: 4 * MiB, backing: "4k", hva: 0x1_0020_0000 }),
      "EEXIST",
    );
    throwsCode(
      () => mm.mmap({ size: 4 * MiB, backing: "4k", hva: 0x1_0000_1000 }),
      "EINVAL",
    );
    throwsCode(
      () => mm.mmap({ size: 3 * MiB, backing: "hugetlb-2m" }),
      "EINVAL",
    );
    throwsCode(() => mm.mmap({ size: 0, backing: "4k" }), "EINVAL");
    throwsCode(() => mm.mmap({ size: 100, backing: "4k" }), "EINVAL");
    // deno-lint-ignore no-explicit-any
    throwsCode(() => mm.mmap({ size: P, backing: "64k" as any }), "EINVAL");
    assert.equal(mm.vmas.length, 1);
  });
});

Deno.test("MmStruct: lazy population", async (t) => {
  await t.step(
    "4k: the first touch of each page allocates and zeroes it",
    () => {
      const { host, mm } = setup();
      const v = mm.mmap({ size: 16 * MiB, backing: "4k" });
      assert.equal(mm.populatedBytes, 0);
      assert.equal(mm.hvaToPfn(v.start), -1);
      assert.equal(mm.touch(v.start + 10, 1, true), FAULT + ZERO);
      assert.equal(mm.populatedBytes, P);
      assert.equal(host.usedBytes, P);
      assert.ok(mm.hvaToPfn(v.start) >= 0);
      assert.equal(mm.hvaToPfn(v.start + 100), mm.hvaToPfn(v.start));
      assert.equal(mm.touch(v.start, P, true), 0, "populated: no fault");
      // Three pages, the first already there; a read faults like a write.
      assert.equal(mm.touch(v.start + P - 1, 2 * P, false), 2 * (FAULT + ZERO));
      assert.equal(mm.faults, 3);
      assert.equal(mm.peakPopulatedBytes, 3 * P);
    },
  );

  await t.step(
    "thp: a 2 MiB page when the aligned range fits, 4 KiB otherwise",
    () => {
      const { host, mm } = setup();
      const v = mm.mmap({ size: 4 * MiB + 2 * P, backing: "thp" });
      assert.equal(mm.touch(v.start + 5 * P, 1), FAULT + 512 * ZERO);
      assert.equal(mm.populatedBytes, 2 * MiB);
      const pfn0 = mm.hvaToPfn(v.start);
      assert.equal(pfn0 % 512, 0);
      assert.equal(mm.hvaToPfn(v.start + 2 * MiB - P), pfn0 + 511);
      // The tail beyond the last whole 2 MiB is 4 KiB pages.
      assert.equal(mm.touch(v.start + 4 * MiB, 1), FAULT + ZERO);
      assert.equal(host.usedBytes, 2 * MiB + P);
    },
  );

  await t.step("thp falls back to 4 KiB when no 2 MiB block is free", () => {
    const { host, mm } = setup(4 * MiB);
    const v = mm.mmap({ size: 4 * MiB, backing: "thp" });
    const hog = host.allocPage(4096); // breaks one block
    host.allocPage(SZ_2M); // takes the other
    assert.equal(mm.touch(v.start, 2 * P), 2 * (FAULT + ZERO));
    assert.equal(mm.populatedBytes, 2 * P);
    host.freePage(hog, 4096);
  });

  await t.step("hugetlb-2m and hugetlb-1g fault whole huge pages", () => {
    const { host, mm } = setup(4 * GiB);
    const v2 = mm.mmap({ size: 8 * MiB, backing: "hugetlb-2m" });
    assert.equal(mm.touch(v2.start + 3 * MiB, 1), FAULT + 512 * ZERO);
    assert.equal(mm.hvaToPfn(v2.start + 2 * MiB) % 512, 0);
    assert.equal(mm.hvaToPfn(v2.start), -1);
    const v1 = mm.mmap({ size: 2 * GiB, backing: "hugetlb-1g" });
    assert.equal(mm.touch(v1.start + GiB + 12345, 8), FAULT + 262144 * ZERO);
    assert.equal(mm.hvaToPfn(v1.start + GiB) % 262144, 0);
    assert.equal(
      mm.hvaToPfn(v1.start + 2 * GiB - 1),
      mm.hvaToPfn(v1.start + GiB) + 262143,
    );
    assert.equal(mm.populatedBytes, 2 * MiB + GiB);
    assert.equal(host.usedBytes, mm.populatedBytes);
    assert.equal(mm.faults, 2);
  });

  await t.step("prefault populates up front and returns the time", () => {
    const { mm } = setup();
    const v = mm.mmap({ size: 8 * MiB, backing: "4k" });
    mm.touch(v.start, P);
    assert.equal(mm.prefault(v.start, v.size), 2047 * (FAULT + ZERO));
    assert.equal(mm.populatedBytes, 8 * MiB);
    assert.equal(mm.prefault(v.start, v.size), 0);
    const h = mm.mmap({ size: 8 * MiB, backing: "hugetlb-2m" });
    assert.equal(mm.prefault(h.start, h.size), 4 * (FAULT + 512 * ZERO));
  });

  await t.step(
    "unmapped is EFAULT; out of memory is ENOMEM and populates nothing",
    () => {
      const { host, mm } = setup(4 * MiB);
      const v = mm.mmap({ size: 8 * MiB, backing: "4k" });
      throwsCode(() => mm.touch(v.end, 1), "EFAULT");
      throwsCode(() => mm.touch(v.end - P, 2 * P), "EFAULT");
      mm.touch(v.start + 7 * P, P);
      throwsCode(() => mm.prefault(v.start, v.size), "ENOMEM");
      assert.equal(mm.populatedBytes, P);
      assert.equal(host.usedBytes, P);
      assert.equal(mm.faults, 1);
      const h = mm.mmap({ size: 8 * MiB, backing: "hugetlb-2m" });
      throwsCode(() => mm.touch(h.start, h.size), "ENOMEM");
      assert.equal(host.usedBytes, P);
    },
  );

  await t.step("a 1 TiB guest with 1 GiB touched stays small", () => {
    const before = Deno.memoryUsage();
    const { mm } = setup(64 * GiB);
    const v = mm.mmap({ size: TiB, backing: "4k" });
    mm.touch(v.start + 300 * GiB, GiB);
    assert.equal(mm.populatedBytes, GiB);
    const after = Deno.memoryUsage();
    const grew = after.external + after.heapUsed - before.external -
      before.heapUsed;
    assert.ok(grew < 32 * MiB, `grew by ${grew} bytes`);
  });
});

Deno.test("MmStruct: pinning", async (t) => {
  await t.step("pin faults in and zeroes what is not populated", () => {
    const { mm } = setup();
    const v = mm.mmap({ size: 4 * MiB, backing: "4k" });
    mm.touch(v.start + P, P);
    const out = new Float64Array(4);
    const r = mm.pinUserPages(v.start, 4, { longterm: true, out });
    assert.equal(r.ns, 3 * (FAULT + ZERO) + PIN_CALL + 4 * (PIN + SMALL));
    assert.equal(r.newlyPopulated, 3);
    assert.equal(r.firstPfn, mm.hvaToPfn(v.start));
    assert.deepEqual(
      Array.from(out),
      [0, 1, 2, 3].map((i) => mm.hvaToPfn(v.start + i * P)),
    );
    assert.equal(mm.pinnedPages, 4);
    assert.equal(mm.lockedVm, 0, "pinning charges nothing by itself");
  });

  await t.step(
    "huge pages: the whole folio is faulted in, pinPerHuge per folio",
    () => {
      const { mm } = setup(4 * GiB);
      const h = mm.mmap({ size: 8 * MiB, backing: "hugetlb-2m" });
      const r = mm.pinUserPages(h.start + 2 * MiB - P, 2, { longterm: true });
      assert.equal(r.newlyPopulated, 1024);
      assert.equal(
        r.ns,
        2 * (FAULT + 512 * ZERO) + PIN_CALL + 2 * PIN + 2 * HUGE,
      );
      assert.equal(mm.pinnedPages, 2);
      const g = mm.mmap({ size: GiB, backing: "hugetlb-1g" });
      mm.prefault(g.start, g.size);
      const r1 = mm.pinUserPages(g.start + MiB, 1024, { longterm: true });
      assert.equal(r1.ns, PIN_CALL + 1024 * PIN + HUGE, "one 1 GiB folio");
      assert.equal(r1.newlyPopulated, 0);
    },
  );

  await t.step(
    "pin counts add up; unpin subtracts; not pinned is EINVAL",
    () => {
      const { mm } = setup();
      const v = mm.mmap({ size: 4 * MiB, backing: "4k" });
      mm.pinUserPages(v.start, 10, { longterm: true });
      mm.pinUserPages(v.start + 5 * P, 600, { longterm: false }); // crosses a chunk
      assert.equal(mm.pinCount(v.start), 1);
      assert.equal(mm.pinCount(v.start + 5 * P), 2);
      assert.equal(mm.pinCount(v.start + 604 * P), 1);
      assert.equal(mm.pinCount(v.start + 605 * P), 0);
      assert.equal(mm.pinnedPages, 605);
      assert.equal(mm.peakPinnedPages, 605);
      // Page 605 is not pinned: nothing changes.
      throwsCode(() => mm.unpinUserPages(v.start + 600 * P, 10), "EINVAL");
      assert.equal(mm.pinCount(v.start + 600 * P), 1);
      assert.equal(mm.unpinUserPages(v.start + 5 * P, 600), 600 * UNPIN);
      assert.equal(mm.pinnedPages, 10);
      assert.equal(mm.pinCount(v.start + 5 * P), 1);
      mm.unpinUserPages(v.start, 10);
      assert.equal(mm.pinnedPages, 0);
      throwsCode(() => mm.unpinUserPages(v.start, 1), "EINVAL");
      throwsCode(() => mm.unpinUserPages(v.end, 1), "EINVAL");
      assert.equal(mm.populatedBytes, 605 * P, "unpin does not free");
    },
  );

  await t.step(
    "out of memory mid-way: nothing stays pinned or newly populated",
    () => {
      const { host, mm } = setup(4 * MiB);
      const v = mm.mmap({ size: 8 * MiB, backing: "4k" });
      mm.pinUserPages(v.start, 2, { longterm: true });
      mm.touch(v.start + 2 * P, 2 * P);
      throwsCode(
        () => mm.pinUserPages(v.start, 1100, { longterm: true }),
        "ENOMEM",
      );
      assert.equal(mm.populatedBytes, 4 * P);
      assert.equal(host.usedBytes, 4 * P);
      assert.equal(mm.pinnedPages, 2);
      assert.equal(mm.pinCount(v.start), 1);
      assert.equal(mm.pinCount(v.start + 2 * P), 0);
      throwsCode(
        () => mm.pinUserPages(v.end - P, 2, { longterm: true }),
        "EFAULT",
      );
      assert.equal(mm.pinnedPages, 2);
    },
  );

  await t.step("a pin may span adjacent mappings", () => {
    const { mm } = setup();
    const a = mm.mmap({ size: 2 * MiB, backing: "4k", hva: 0x4000_0000 });
    mm.mmap({ size: 2 * MiB, backing: "hugetlb-2m", hva: 0x4020_0000 });
    const r = mm.pinUserPages(a.end - P, 2, { longterm: true });
    assert.equal(r.newlyPopulated, 1 + 512);
    assert.equal(mm.pinnedPages, 2);
  });

  await t.step("bad arguments are EINVAL", () => {
    const { mm } = setup();
    const v = mm.mmap({ size: 2 * MiB, backing: "4k" });
    throwsCode(
      () => mm.pinUserPages(v.start + 1, 1, { longterm: true }),
      "EINVAL",
    );
    throwsCode(
      () => mm.pinUserPages(v.start, 1.5, { longterm: true }),
      "EINVAL",
    );
    throwsCode(
      () =>
        mm.pinUserPages(v.start, 4, {
          longterm: true,
          out: new Float64Array(2),
        }),
      "EINVAL",
    );
    assert.deepEqual(mm.pinUserPages(v.start, 0, { longterm: true }), {
      ns: 0,
      newlyPopulated: 0,
      firstPfn: -1,
    });
  });
});

Deno.test("MmStruct: locked_vm", async (t) => {
  await t.step("over RLIMIT_MEMLOCK is ENOMEM and changes nothing", () => {
    const { mm } = setup(64 * MiB, 8 * P + 100);
    mm.accountLockedVm(5, true);
    throwsCode(() => mm.accountLockedVm(4, true), "ENOMEM");
    assert.equal(mm.lockedVm, 5);
    mm.accountLockedVm(3, true);
    assert.equal(mm.lockedVm, 8);
    throwsCode(() => mm.accountLockedVm(9, false), "EINVAL");
    assert.equal(mm.lockedVm, 8);
    mm.accountLockedVm(8, false);
    assert.equal(mm.lockedVm, 0);
    assert.equal(mm.peakLockedVm, 8);
  });

  await t.step("unlimited never fails; bad limits are EINVAL", () => {
    const { mm } = setup();
    mm.accountLockedVm(2 ** 40, true);
    assert.equal(mm.lockedVm, 2 ** 40);
    const host = new HostMemory({ size: 2 * MiB, costs: TEST_COSTS });
    throwsCode(() => new MmStruct(host, { memlockLimit: -1 }), "EINVAL");
    throwsCode(() => new MmStruct(host, { memlockLimit: 1.5 }), "EINVAL");
  });

  await t.step(
    "a VFIO-like pin-then-charge releases everything on failure",
    () => {
      const { mm } = setup(64 * MiB, 16 * P);
      const v = mm.mmap({ size: 2 * MiB, backing: "4k" });
      mm.pinUserPages(v.start, 32, { longterm: true });
      throwsCode(() => mm.accountLockedVm(32, true), "ENOMEM");
      mm.unpinUserPages(v.start, 32);
      assert.equal(mm.pinnedPages, 0);
      assert.equal(mm.lockedVm, 0);
    },
  );
});

Deno.test("MmStruct: reclaim", async (t) => {
  await t.step(
    "never takes pinned pages; notifiers run before the free",
    () => {
      const { host, mm } = setup();
      const v = mm.mmap({ size: 16 * P, backing: "4k" });
      mm.prefault(v.start, v.size);
      mm.pinUserPages(v.start, 4, { longterm: true });
      const pfn5 = mm.hvaToPfn(v.start + 5 * P);
      let allocatedAtStart = false;
      const { log } = recorder(mm, v.start, v.size);
      mm.registerMmuNotifier(v.start + 5 * P, P, {
        invalidateRangeStart: () => {
          allocatedAtStart = host.isAllocated(pfn5);
        },
        invalidateRangeEnd: () => {},
      });
      const r = mm.reclaim(100);
      assert.equal(r.reclaimed, 12);
      assert.equal(r.ns, 12 * RECLAIM + 12 * 2 * NOTIFY + 2 * NOTIFY);
      assert.ok(allocatedAtStart);
      assert.equal(log.length, 24);
      assert.deepEqual(log.slice(0, 2), [
        "start 4-5 pfn=true",
        "end 4-5 pfn=false",
      ]);
      for (let i = 0; i < 4; i++) assert.ok(mm.hvaToPfn(v.start + i * P) >= 0);
      for (let i = 4; i < 16; i++) {
        assert.equal(
          mm.hvaToPfn(v.start + i * P),
          -1,
        );
      }
      assert.equal(mm.swapOuts, 12);
      assert.equal(mm.swappedPages, 12);
      assert.equal(host.usedBytes, 4 * P);
      assert.equal(mm.reclaim(1).reclaimed, 0);
      // Touching a swapped page swaps it in.
      assert.equal(mm.touch(v.start + 5 * P, 1), FAULT + SWAPIN);
      assert.equal(mm.swapIns, 1);
      assert.equal(mm.swappedPages, 11);
    },
  );

  await t.step(
    "only overlapping notifiers are called; unregister stops them",
    () => {
      const { mm } = setup();
      const v = mm.mmap({ size: 4 * P, backing: "4k" });
      mm.prefault(v.start, v.size);
      const far = recorder(mm, v.end + GiB, P);
      const near = recorder(mm, v.start, P);
      near.n.unregister();
      near.n.unregister();
      let extra = 0;
      mm.registerMmuNotifier(v.start + 3 * P, P, {
        invalidateRangeStart: () => 1000,
        invalidateRangeEnd: () => {
          extra++;
        },
      });
      const r = mm.reclaim(4);
      assert.equal(r.reclaimed, 4);
      assert.equal(
        r.ns,
        4 * RECLAIM + 2 * NOTIFY + 1000,
        "callback ns are added",
      );
      assert.equal(extra, 1);
      assert.deepEqual(far.log, []);
      assert.deepEqual(near.log, []);
    },
  );

  await t.step("THP goes whole; hugetlb is never swapped", () => {
    const { host, mm } = setup();
    const h = mm.mmap({ size: 4 * MiB, backing: "hugetlb-2m" });
    const t = mm.mmap({ size: 4 * MiB, backing: "thp" });
    mm.prefault(h.start, h.size);
    mm.touch(t.start, 1);
    const { log } = recorder(mm, t.start, t.size);
    const r = mm.reclaim(10);
    assert.equal(r.reclaimed, 512);
    assert.deepEqual(log, ["start 0-512 pfn=true", "end 0-512 pfn=false"]);
    assert.equal(mm.reclaim(10).reclaimed, 0);
    assert.equal(host.usedBytes, 4 * MiB);
    // Swap-in is 4 KiB at a time, not a new THP.
    assert.equal(mm.touch(t.start, 1), FAULT + SWAPIN);
    assert.equal(mm.populatedBytes, 4 * MiB + P);
  });

  await t.step("a referenced chunk gets a second chance", () => {
    const { mm } = setup();
    const v = mm.mmap({ size: 4 * MiB, backing: "4k" });
    mm.prefault(v.start, v.size); // both chunks referenced
    assert.equal(mm.reclaim(1).reclaimed, 1);
    assert.equal(
      mm.hvaToPfn(v.start),
      -1,
      "first revolution clears, second takes chunk 0",
    );
    mm.touch(v.start + P, 1); // chunk 0 referenced again
    mm.reclaim(1);
    assert.ok(mm.hvaToPfn(v.start + P) >= 0);
    assert.equal(mm.hvaToPfn(v.start + 2 * MiB), -1, "chunk 1 went instead");
  });

  await t.step(
    "direct reclaim swaps out another process to satisfy a fault",
    () => {
      const host = new HostMemory({
        size: 4 * MiB,
        costs: TEST_COSTS,
        directReclaim: true,
      });
      const a = new MmStruct(host, { memlockLimit: Infinity });
      const b = new MmStruct(host, { memlockLimit: Infinity });
      const va = a.mmap({ size: 4 * MiB, backing: "4k" });
      const vb = b.mmap({ size: 4 * MiB, backing: "4k" });
      a.prefault(va.start, va.size);
      a.pinUserPages(va.start, 1000, { longterm: true });
      const ns = b.touch(vb.start, 3 * P);
      assert.equal(ns, 3 * (FAULT + ZERO + RECLAIM));
      assert.equal(a.swapOuts, 3);
      assert.equal(a.pinnedPages, 1000);
      // The range being faulted is never reclaimed from under the fault.
      throwsCode(() => b.touch(vb.start, 30 * P + 25 * P), "ENOMEM");
      assert.equal(b.populatedBytes, 3 * P);
      // Pages of b outside the range can be taken.
      b.touch(vb.start + 3 * P, 21 * P);
      assert.equal(a.populatedBytes, 1000 * P);
      assert.equal(b.populatedBytes, 24 * P);
      b.touch(vb.end - P, P);
      assert.equal(b.populatedBytes, 24 * P);
      assert.equal(b.swapOuts, 1);
    },
  );
});

Deno.test("MmStruct: a full swap stops reclaim; swap-ins and munmap give slots back", () => {
  const host = new HostMemory({
    size: 4 * MiB,
    costs: TEST_COSTS,
    directReclaim: true,
    swap: 3 * P,
  });
  const a = new MmStruct(host, { memlockLimit: Infinity });
  const b = new MmStruct(host, { memlockLimit: Infinity });
  const va = a.mmap({ size: 4 * MiB, backing: "4k" });
  const vb = b.mmap({ size: 4 * MiB, backing: "4k" });
  a.prefault(va.start, va.size); // the host is full
  assert.equal(host.swap.pages, 3);
  // Three pages fit in swap: the first three faults of b reclaim a's pages.
  assert.equal(b.touch(vb.start, 3 * P), 3 * (FAULT + ZERO + RECLAIM));
  assert.equal(host.swap.used, 3);
  assert.equal(a.swappedPages, 3);
  // Swap is full: the next fault finds nothing to reclaim.
  throwsCode(() => b.touch(vb.start + 3 * P, P), "ENOMEM");
  assert.equal(b.populatedBytes, 3 * P);
  // b goes away: its memory is free again; a's swapped pages come back in
  // and free their slots.
  b.exitMmap();
  a.touch(va.start, va.size);
  assert.equal(a.swappedPages, 0);
  assert.equal(host.swap.used, 0);
  assert.equal(host.swap.peak, 3);
  // A swapped-out page of an address space that goes away frees its slot.
  const c = new MmStruct(host, { memlockLimit: Infinity });
  const vc = c.mmap({ size: 4 * MiB, backing: "4k" });
  c.touch(vc.start, P);
  assert.equal(host.swap.used, 1);
  a.exitMmap();
  c.reclaim(1);
  assert.equal(host.swap.used, 1);
  c.exitMmap();
  assert.equal(host.swap.used, 0);
});

Deno.test("MmStruct: madvise and munmap", async (t) => {
  await t.step(
    "MADV_DONTNEED: notifiers first; a pinned page leaves the CPU's view but its frame stays for the pin holder",
    () => {
      // mm/madvise.c madvise_dontneed_single_vma() -> zap_page_range_single():
      // the PTEs go whatever the page's refcount; a pinned page survives for
      // its pin holder (a device through VFIO), and the CPU's next touch
      // faults in a new zeroed page: the two views diverge, which is why
      // QEMU disables RAM discard while VFIO pins guest RAM
      // (ram_block_discard_disable(), hw/vfio/common.c).
      const { host, mm } = setup();
      const v = mm.mmap({ size: 8 * P, backing: "4k" });
      mm.prefault(v.start, v.size);
      const hva = v.start + 2 * P;
      mm.pinUserPages(hva, 1, { longterm: true });
      const old = mm.hvaToPfn(hva);
      const { log } = recorder(mm, v.start, v.size);
      const ns = mm.madviseDontneed(v.start, v.size);
      assert.equal(ns, 2 * NOTIFY);
      assert.deepEqual(log, ["start 0-8 pfn=true", "end 0-8 pfn=false"]);
      assert.equal(mm.populatedBytes, 0); // the CPU sees nothing
      assert.equal(mm.hvaToPfn(hva), -1);
      assert.equal(host.usedBytes, P); // the pinned frame is still allocated
      assert.equal(mm.discardedPinnedPages, 1);
      assert.equal(mm.pinCount(hva), 1);
      // The CPU's next touch gets a fresh zeroed page, not a swap-in, and
      // not the page the pin holds.
      assert.equal(mm.touch(hva, P), FAULT + ZERO);
      assert.notEqual(mm.hvaToPfn(hva), old);
      assert.equal(host.usedBytes, 2 * P);
      // The last unpin frees the old frame; the CPU's page stays.
      mm.unpinUserPages(hva, 1);
      assert.equal(host.usedBytes, P);
      assert.equal(mm.populatedBytes, P);
      assert.ok(mm.hvaToPfn(hva) >= 0);
    },
  );

  await t.step(
    "a partly covered THP is split; swap entries are dropped",
    () => {
      const { host, mm } = setup();
      const v = mm.mmap({ size: 4 * MiB, backing: "thp" });
      mm.touch(v.start, 1);
      const pfn = mm.hvaToPfn(v.start);
      mm.madviseDontneed(v.start + 2 * P, P);
      assert.equal(mm.populatedBytes, 2 * MiB - P);
      assert.equal(host.usedBytes, 2 * MiB - P);
      assert.equal(mm.hvaToPfn(v.start + 2 * P), -1);
      assert.equal(mm.hvaToPfn(v.start + 3 * P), pfn + 3);
      mm.reclaim(2);
      assert.equal(mm.swappedPages, 2);
      mm.madviseDontneed(v.start, 2 * MiB);
      assert.equal(mm.swappedPages, 0);
      assert.equal(mm.populatedBytes, 0);
      assert.equal(host.usedBytes, 0);
      // Empty again: the next fault may use a THP.
      assert.equal(mm.touch(v.start, 1), FAULT + 512 * ZERO);
    },
  );

  await t.step(
    "hugetlb needs aligned ranges and keeps pinned pages whole",
    () => {
      const { mm } = setup();
      const h = mm.mmap({ size: 4 * MiB, backing: "hugetlb-2m" });
      mm.prefault(h.start, h.size);
      mm.pinUserPages(h.start, 1, { longterm: true });
      throwsCode(() => mm.madviseDontneed(h.start, P), "EINVAL");
      mm.madviseDontneed(h.start, h.size);
      assert.equal(mm.populatedBytes, 2 * MiB);
      throwsCode(() => mm.madviseDontneed(h.end, P), "ENOMEM");
    },
  );

  await t.step(
    "munmap: EBUSY while pinned, whole mappings only, notifiers first",
    () => {
      const { host, mm } = setup(4 * GiB);
      const v = mm.mmap({ size: 8 * MiB, backing: "thp" });
      const g = mm.mmap({ size: GiB, backing: "hugetlb-1g" });
      mm.prefault(v.start, v.size);
      mm.prefault(g.start, P);
      mm.pinUserPages(v.start, 1, { longterm: true });
      throwsCode(() => mm.munmap(v.start, v.size), "EBUSY");
      throwsCode(() => mm.munmap(v.start, 2 * MiB), "EINVAL");
      throwsCode(() => mm.exitMmap(), "EBUSY");
      assert.equal(mm.populatedBytes, 8 * MiB + GiB);
      mm.unpinUserPages(v.start, 1);
      const { log } = recorder(mm, v.start, v.size);
      assert.equal(mm.munmap(v.start, v.size), 2 * NOTIFY);
      assert.deepEqual(log, ["start 0-2048 pfn=true", "end 0-2048 pfn=false"]);
      assert.equal(mm.findVma(v.start), undefined);
      assert.equal(host.usedBytes, GiB);
      mm.exitMmap();
      assert.equal(host.usedBytes, 0);
      assert.equal(mm.vmas.length, 0);
    },
  );

  await t.step("a notifier cannot unmap from inside a callback", () => {
    const { mm } = setup();
    const v = mm.mmap({ size: 4 * P, backing: "4k" });
    mm.prefault(v.start, v.size);
    let err: unknown;
    mm.registerMmuNotifier(v.start, v.size, {
      invalidateRangeStart: () => {
        try {
          mm.munmap(v.start, v.size);
        } catch (e) {
          err = e;
        }
      },
      invalidateRangeEnd: () => {},
    });
    mm.madviseDontneed(v.start, P);
    assert.match(String(err), /EBUSY/);
    assert.equal(mm.vmas.length, 1);
  });
});

Deno.test("MmStruct: every backing tears down to zero", () => {
  const { host, mm } = setup(4 * GiB);
  for (
    const backing of ["4k", "thp", "hugetlb-2m", "hugetlb-1g"] as Backing[]
  ) {
    const v = mm.mmap({ size: GiB, backing });
    mm.pinUserPages(v.start + 3 * MiB, 700, { longterm: true });
    mm.touch(v.start + 100 * MiB, 5 * MiB);
    mm.reclaim(1000);
    mm.unpinUserPages(v.start + 3 * MiB, 700);
    mm.munmap(v.start, v.size);
    assert.equal(host.usedBytes, 0, backing);
    assert.equal(mm.pinnedPages, 0);
    assert.equal(mm.populatedBytes, 0);
    assert.equal(mm.swappedPages, 0);
  }
});

Deno.test("pinRefs counts every pin, pinnedPages every pinned page", () => {
  const mm = new MmStruct(
    new HostMemory({ size: 64 * MiB, costs: TEST_COSTS }),
    {
      memlockLimit: Infinity,
    },
  );
  const v = mm.mmap({ size: SZ_2M, backing: "4k" });
  mm.pinUserPages(v.start, 4, { longterm: true });
  mm.pinUserPages(v.start + P, 2, { longterm: true }); // two pages pinned twice
  const counts = () => [mm.pinnedPages, mm.pinRefs];
  assert.deepEqual(counts(), [4, 6]);
  mm.unpinUserPages(v.start, 4);
  assert.deepEqual(counts(), [2, 2]);
  mm.unpinUserPages(v.start + P, 2);
  assert.deepEqual(counts(), [0, 0]);
});

Deno.test("MMU interval notifier: the sequence count moves on each overlapping invalidation", () => {
  // mm/mmu_notifier.c (v5.10+): mmu_interval_read_begin() returns the
  // interval's invalidate_seq; mn_itree_inv_start_range() and the callback's
  // mmu_interval_set_seq() move it before the pages go;
  // mmu_interval_read_retry(sub, seq) is `sub->invalidate_seq != seq`.
  const { mm } = setup();
  const v = mm.mmap({ size: 64 * P, backing: "4k" });
  mm.prefault(v.start, 64 * P);
  const { n } = recorder(mm, v.start + 16 * P, 16 * P);
  const seq = n.readBegin();
  assert.equal(n.readRetry(seq), false);
  // Outside the interval: no change.
  mm.madviseDontneed(v.start, 16 * P);
  mm.madviseDontneed(v.start + 32 * P, 4 * P);
  assert.equal(n.readRetry(seq), false);
  // One page inside it: the count moves, a reader must retry.
  mm.madviseDontneed(v.start + 20 * P, P);
  assert.equal(n.readRetry(seq), true);
  const seq2 = n.readBegin();
  assert.notEqual(seq2, seq);
  assert.equal(n.readRetry(seq2), false);
  // Reclaim of a page in the interval moves it as well.
  mm.reclaim(64);
  assert.equal(n.readRetry(seq2), true);
});
