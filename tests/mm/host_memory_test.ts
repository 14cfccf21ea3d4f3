import assert from "node:assert/strict";
import { HostMemory } from "../../lib/mm/host_memory.ts";
import { GiB, MiB, TEST_COSTS, throwsCode } from "./_helpers.ts";

import { SZ_1G, SZ_2M, SZ_4K } from "../../lib/sim/units.ts";

Deno.test("HostMemory: the order of 4 KiB frames", async (t) => {
  await t.step("ascending: a fresh host hands out adjacent frames", () => {
    const host = new HostMemory({
      size: GiB,
      costs: TEST_COSTS,
      frameOrder: "ascending",
    });
    const first = host.allocPage(SZ_4K);
    for (let i = 1; i < 1024; i++) {
      assert.equal(host.allocPage(SZ_4K), first + i);
    }
  });
  await t.step("scattered (the default): never two in a row", () => {
    const host = new HostMemory({ size: GiB, costs: TEST_COSTS });
    assert.equal(host.frameOrder, "scattered");
    let prev = host.allocPage(SZ_4K);
    for (let i = 1; i < 1024; i++) {
      const p = host.allocPage(SZ_4K);
      assert.notEqual(p, prev + 1);
      prev = p;
    }
  });
  await t.step("another order is refused", () => {
    throwsCode(
      () =>
        new HostMemory({
          size: GiB,
          costs: TEST_COSTS,
          frameOrder: "random" as "ascending",
        }),
      "EINVAL",
    );
  });
});

Deno.test("HostMemory", async (t) => {
  await t.step("a 512 GiB host is cheap and starts empty", () => {
    const host = new HostMemory({ size: 512 * GiB, costs: TEST_COSTS });
    assert.equal(host.totalPages, 512 * GiB / SZ_4K);
    assert.equal(host.usedBytes, 0);
    assert.equal(host.freeBytes, 512 * GiB);
    assert.equal(host.free1gPages, 512);
    assert.equal(host.free2mPages, 512 * 512);
  });

  await t.step("pages are naturally aligned and counted", () => {
    const host = new HostMemory({
      size: 4 * GiB,
      costs: TEST_COSTS,
      base: 2 * GiB,
    });
    const p4 = host.allocPage(SZ_4K);
    const p2 = host.allocPage(SZ_2M);
    const p1 = host.allocPage(SZ_1G);
    assert.equal(p2 % 512, 0);
    assert.equal(p1 % (512 * 512), 0);
    for (const p of [p4, p2, p1]) {
      assert.ok(p >= host.basePfn && p < host.basePfn + host.totalPages);
    }
    assert.equal(host.basePfn, 2 * GiB / SZ_4K);
    assert.equal(host.usedBytes, SZ_4K + SZ_2M + SZ_1G);
    assert.ok(
      host.isAllocated(p4) && host.isAllocated(p2 + 511) &&
        host.isAllocated(p1 + 12345),
    );
    // 4 KiB and 2 MiB came from the same partly used GiB, keeping 1 GiB regions whole.
    assert.equal(Math.floor(p4 / 262144), Math.floor(p2 / 262144));
    assert.equal(host.free1gPages, 2);
    host.freePage(p4, SZ_4K);
    host.freePage(p2, SZ_2M);
    host.freePage(p1, SZ_1G);
    assert.equal(host.usedBytes, 0);
    assert.equal(host.free1gPages, 4);
    assert.equal(host.peakUsedBytes, SZ_4K + SZ_2M + SZ_1G);
  });

  await t.step("double free and wrong size are EINVAL", () => {
    const host = new HostMemory({ size: 2 * GiB, costs: TEST_COSTS });
    const p = host.allocPage(SZ_2M);
    throwsCode(() => host.freePage(p, SZ_4K), "EINVAL");
    throwsCode(() => host.freePage(p, SZ_1G), "EINVAL");
    throwsCode(() => host.freePage(p + 1, SZ_2M), "EINVAL");
    host.freePage(p, SZ_2M);
    throwsCode(() => host.freePage(p, SZ_2M), "EINVAL");
    const q = host.allocPage(SZ_4K);
    host.freePage(q, SZ_4K);
    throwsCode(() => host.freePage(q, SZ_4K), "EINVAL");
    assert.equal(host.usedBytes, 0);
  });

  await t.step(
    "out of memory is -1 / ENOMEM; frees coalesce back to huge pages",
    () => {
      const host = new HostMemory({ size: 4 * MiB, costs: TEST_COSTS });
      const frames: number[] = [];
      for (let i = 0; i < 1024; i++) frames.push(host.allocPage(SZ_4K));
      assert.equal(new Set(frames).size, 1024);
      assert.equal(host.freeBytes, 0);
      assert.equal(host.tryAllocPage(SZ_4K), -1);
      throwsCode(() => host.allocPage(SZ_2M), "ENOMEM");
      // Free every other frame: 2 MiB free in total, but no whole 2 MiB block.
      for (let i = 0; i < 1024; i += 2) host.freePage(frames[i]!, SZ_4K);
      assert.equal(host.freeBytes, 2 * MiB);
      assert.equal(host.tryAllocPage(SZ_2M), -1);
      for (let i = 1; i < 1024; i += 2) host.freePage(frames[i]!, SZ_4K);
      assert.equal(host.free2mPages, 2);
      assert.ok(host.allocPage(SZ_2M) >= 0);
    },
  );

  await t.step("a split 2 MiB page frees 4 KiB at a time", () => {
    const host = new HostMemory({ size: 2 * MiB, costs: TEST_COSTS });
    const p = host.allocPage(SZ_2M);
    host.splitHugePage(p);
    assert.equal(host.usedBytes, SZ_2M);
    host.freePage(p + 7, SZ_4K);
    assert.equal(host.allocPage(SZ_4K), p + 7);
    for (let i = 0; i < 512; i++) host.freePage(p + i, SZ_4K);
    assert.equal(host.usedBytes, 0);
    assert.equal(host.allocPage(SZ_2M), p);
  });

  await t.step("host-wide reclaim asks the shrinkers in turn", () => {
    const host = new HostMemory({ size: 2 * MiB, costs: TEST_COSTS });
    const asked: string[] = [];
    const a = host.registerShrinker({
      reclaim: (n) => (asked.push(`a${n}`), { reclaimed: 3, ns: 10 }),
    });
    host.registerShrinker({
      reclaim: (n) => (asked.push(`b${n}`), { reclaimed: n, ns: 1 }),
    });
    assert.deepEqual(host.reclaim(5), { reclaimed: 5, ns: 11 });
    assert.deepEqual(host.reclaim(5), { reclaimed: 5, ns: 1 });
    a.unregister();
    host.reclaim(1);
    assert.deepEqual(asked, ["a5", "b2", "b5", "b1"]);
  });

  await t.step("bad sizes are EINVAL", () => {
    throwsCode(
      () => new HostMemory({ size: 3 * MiB, costs: TEST_COSTS }),
      "EINVAL",
    );
    throwsCode(() => new HostMemory({ size: 0, costs: TEST_COSTS }), "EINVAL");
    throwsCode(
      () => new HostMemory({ size: 2 ** 45, costs: TEST_COSTS }),
      "EINVAL",
    );
    const host = new HostMemory({ size: 2 * MiB, costs: TEST_COSTS });
    throwsCode(() => host.tryAllocPage(8192), "EINVAL");
  });
});

Deno.test("HostMemory: searches find the lowest fitting region after frees below the last find", () => {
  const GiB = 2 ** 30;
  const host = new HostMemory({ size: 8 * GiB, costs: TEST_COSTS });
  const giga = Array.from({ length: 8 }, () => host.allocPage(GiB));
  assert.deepEqual(giga.map((p) => p / 2 ** 18), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(host.tryAllocPage(GiB), -1);
  host.freePage(giga[5]!, GiB);
  host.freePage(giga[2]!, GiB);
  // The lowest whole region, though the last 1 GiB search ended at 8.
  assert.equal(host.allocPage(GiB) / 2 ** 18, 2);
  // 2 MiB pages: region 5 is the only free one; once it is partly used it
  // is preferred, and a block freed in region 5 again comes back first.
  const a = host.allocPage(2 ** 21);
  assert.equal(Math.floor(a / 2 ** 18), 5);
  host.freePage(giga[1]!, GiB);
  const b = host.allocPage(2 ** 21);
  assert.equal(
    Math.floor(b / 2 ** 18),
    5,
    "a partly used region before a whole one",
  );
  host.freePage(giga[0]!, GiB);
  assert.equal(host.allocPage(GiB) / 2 ** 18, 0, "the lowest whole region");
});
