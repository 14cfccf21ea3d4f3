import assert from "node:assert/strict";
import {
  IoPgtable,
  levelSize,
  newWalkResult,
  PTE_AF,
  PTE_AP_RDONLY,
  PTE_AP_UNPRIV,
  PTE_NG,
  PTE_S2AP_READ,
  PTE_S2AP_WRITE,
  PTE_TYPE_PAGE,
  PTE_VALID,
  pteAddress,
  pteIsLeaf,
  pteIsTable,
} from "../../lib/pgtable/mod.ts";
import type { WalkResult } from "../../lib/pgtable/mod.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import {
  PROT_READ,
  PROT_WRITE,
  SZ_1G,
  SZ_2M,
  SZ_4K,
} from "../../lib/sim/units.ts";

const RW = PROT_READ | PROT_WRITE;
const SZ_512G = 2 ** 39;

/** Everything observable about a table, to compare before and after a failed call. */
function snapshot(pt: IoPgtable) {
  return {
    mappings: pt.mappings({ leaves: true }),
    mappedBytes: pt.mappedBytes,
    tablePages: pt.tablePages,
  };
}

function assertCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof IopfLabError, `expected IopfLabError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, /^Cannot /);
    return true;
  });
}

/** An allocator handing out pages from a fixed region, recording frees. */
function regionAllocator(base: number, failAfter = Infinity) {
  let next = base;
  let calls = 0;
  const freed: number[] = [];
  return {
    freed,
    get calls() {
      return calls;
    },
    allocTable: () => {
      if (calls >= failAfter) {
        throw new IopfLabError(
          "ENOMEM",
          "Cannot allocate a page table: test limit",
        );
      }
      calls++;
      const a = next;
      next += SZ_4K;
      return a;
    },
    freeTable: (addr: number) => {
      freed.push(addr);
    },
  };
}

Deno.test("IoPgtable basics", async (t) => {
  await t.step("a new table has only its root", () => {
    const pt = new IoPgtable({ stage: 1 });
    assert.equal(pt.stage, 1);
    assert.equal(pt.tablePages, 1);
    assert.equal(pt.mappedBytes, 0);
    assert.equal(pt.root % SZ_4K, 0);
    assert.equal(pt.iovaToPhys(0), -1);
    pt.assertConsistent();
  });

  await t.step("tables get distinct root addresses", () => {
    const a = new IoPgtable({ stage: 1 });
    const b = new IoPgtable({ stage: 2 });
    assert.notEqual(a.root, b.root);
  });

  await t.step("maps, translates and unmaps a 4 KiB page", () => {
    const pt = new IoPgtable({ stage: 2 });
    pt.map(0x1000, 0x5000, SZ_4K, RW);
    assert.equal(pt.iovaToPhys(0x1000), 0x5000);
    assert.equal(pt.iovaToPhys(0x1abc), 0x5abc);
    assert.equal(pt.iovaToPhys(0x2000), -1);
    assert.equal(pt.iovaToPhys(0), -1);
    assert.equal(pt.mappedBytes, SZ_4K);
    assert.equal(pt.tablePages, 4);
    pt.assertConsistent();
    assert.equal(pt.unmap(0x1000, SZ_4K), SZ_4K);
    assert.equal(pt.iovaToPhys(0x1000), -1);
    assert.equal(pt.mappedBytes, 0);
    assert.equal(pt.tablePages, 1, "empty tables are freed");
    pt.assertConsistent();
  });

  await t.step("handles addresses above 4 GiB and near 2^48", () => {
    const pt = new IoPgtable({ stage: 1 });
    const iova = 2 ** 48 - 3 * SZ_4K;
    const pa = 2 ** 48 - 7 * SZ_4K;
    pt.map(iova, pa, 3 * SZ_4K, RW);
    assert.equal(pt.iovaToPhys(iova + 0x10), pa + 0x10);
    assert.equal(pt.iovaToPhys(2 ** 48 - 1), pa + 3 * SZ_4K - 1);
    pt.map(0x1_2345_6000, 0xab_cdef_0000, SZ_4K, PROT_READ);
    assert.equal(pt.iovaToPhys(0x1_2345_6fff), 0xab_cdef_0fff);
    assert.equal(pt.iovaToPhys(2 ** 48), -1);
    assert.equal(pt.iovaToPhys(-SZ_4K), -1);
    pt.assertConsistent();
  });

  await t.step("unmap returns only the bytes that were mapped", () => {
    const pt = new IoPgtable({ stage: 1 });
    assert.equal(pt.unmap(0, SZ_1G), 0);
    pt.map(0x3000, 0x3000, 2 * SZ_4K, RW);
    pt.map(0x9000, 0x9000, SZ_4K, RW);
    assert.equal(pt.unmap(0, 0x10000), 3 * SZ_4K);
    assert.equal(pt.mappedBytes, 0);
    assert.equal(pt.tablePages, 1);
  });

  await t.step("a range crossing table boundaries at every level", () => {
    const pt = new IoPgtable({ stage: 2, pgsizeBitmap: SZ_4K });
    const iova = SZ_512G - 2 * SZ_4K;
    pt.map(iova, 0x7000, 4 * SZ_4K, RW);
    for (let k = 0; k < 4; k++) {
      assert.equal(pt.iovaToPhys(iova + k * SZ_4K), 0x7000 + k * SZ_4K);
    }
    assert.equal(pt.tablePages, 1 + 2 + 2 + 2);
    pt.assertConsistent();
    assert.equal(pt.unmap(iova + SZ_4K, 2 * SZ_4K), 2 * SZ_4K);
    assert.equal(pt.iovaToPhys(iova), 0x7000);
    assert.equal(pt.iovaToPhys(iova + 3 * SZ_4K), 0x7000 + 3 * SZ_4K);
    assert.equal(pt.iovaToPhys(iova + SZ_4K), -1);
    pt.assertConsistent();
  });
});

Deno.test("IoPgtable page size selection", async (t) => {
  const sizes = (pt: IoPgtable) =>
    pt.mappings({ leaves: true }).map((m) => m.size);

  await t.step("uses 2 MiB and 1 GiB blocks when both addresses align", () => {
    const pt = new IoPgtable({ stage: 2 });
    pt.map(SZ_1G, 3 * SZ_1G, SZ_1G, RW);
    assert.deepEqual(sizes(pt), [SZ_1G]);
    assert.equal(pt.tablePages, 2, "a 1 GiB block sits in the level-1 table");
    const q = new IoPgtable({ stage: 2 });
    q.map(SZ_2M, 5 * SZ_2M, 2 * SZ_2M, RW);
    assert.deepEqual(sizes(q), [SZ_2M, SZ_2M]);
    assert.equal(q.tablePages, 3);
  });

  await t.step("mixes sizes like iommu_pgsize()", () => {
    const pt = new IoPgtable({ stage: 1 });
    // 4K up to the 2M boundary, 2M up to 1G, one 1G block, then 2M and 4K.
    const iova = SZ_1G - SZ_2M - 2 * SZ_4K;
    const size = 2 * SZ_4K + SZ_2M + SZ_1G + SZ_2M + SZ_4K;
    pt.map(iova, iova + 4 * SZ_1G, size, RW);
    assert.deepEqual(sizes(pt), [
      SZ_4K,
      SZ_4K,
      SZ_2M,
      SZ_1G,
      SZ_2M,
      SZ_4K,
    ]);
    assert.equal(pt.mappedBytes, size);
    pt.assertConsistent();
  });

  await t.step(
    "falls back to 4 KiB when the physical address is misaligned",
    () => {
      const pt = new IoPgtable({ stage: 2 });
      pt.map(0, SZ_4K, SZ_2M, RW);
      assert.equal(pt.mappings({ leaves: true }).length, 512);
      assert.deepEqual(pt.mappings(), [{
        iova: 0,
        pa: SZ_4K,
        size: SZ_2M,
        prot: RW,
      }]);
    },
  );

  await t.step("falls back when the size is smaller than the block", () => {
    const pt = new IoPgtable({ stage: 2 });
    pt.map(0, 0, SZ_2M - SZ_4K, RW);
    assert.equal(pt.mappings({ leaves: true }).length, 511);
  });

  await t.step("respects pgsizeBitmap", () => {
    const only4k = new IoPgtable({ stage: 2, pgsizeBitmap: SZ_4K });
    only4k.map(0, 0, 2 * SZ_2M, RW);
    assert.equal(only4k.mappings({ leaves: true }).length, 1024);
    const no1g = new IoPgtable({ stage: 2, pgsizeBitmap: SZ_4K | SZ_2M });
    no1g.map(0, 0, SZ_1G, RW);
    assert.equal(no1g.mappings({ leaves: true }).length, 512);
    assert.ok(sizes(no1g).every((s) => s === SZ_2M));
    const no2m = new IoPgtable({ stage: 2, pgsizeBitmap: SZ_4K | SZ_1G });
    no2m.map(0, 0, SZ_1G + SZ_2M, RW);
    const s = sizes(no2m);
    assert.equal(s[0], SZ_1G);
    assert.equal(s.length, 1 + 512);
  });

  await t.step("rejects a bad stage or bitmap", () => {
    assertCode(() => new IoPgtable({ stage: 3 as 1 }), "EINVAL");
    assertCode(
      () => new IoPgtable({ stage: 1, pgsizeBitmap: SZ_2M }),
      "EINVAL",
    );
    assertCode(
      () => new IoPgtable({ stage: 1, pgsizeBitmap: SZ_4K | 0x10000 }),
      "EINVAL",
    );
  });
});

Deno.test("IoPgtable errors leave the table unchanged", async (t) => {
  const setup = () => {
    const pt = new IoPgtable({ stage: 1 });
    pt.map(SZ_1G, 0, SZ_1G, RW); // a 1 GiB block
    pt.map(0x20_0000, 0x1000, 3 * SZ_4K, PROT_READ);
    pt.map(4 * SZ_1G, 8 * SZ_1G, SZ_2M, RW); // a 2 MiB block
    return pt;
  };

  await t.step("EEXIST on any overlap", () => {
    const pt = setup();
    const before = snapshot(pt);
    const overlapping: [number, number][] = [
      [0x20_0000, SZ_4K],
      [0x1f_f000, 2 * SZ_4K], // ends inside
      [0x20_2000, 4 * SZ_4K], // starts on the last page
      [0, SZ_1G + SZ_4K], // touches the block's first page
      [SZ_1G + SZ_1G - SZ_4K, SZ_4K], // the block's last page
      [4 * SZ_1G + SZ_2M - SZ_4K, SZ_4K],
      [0, 8 * SZ_1G],
    ];
    for (const [iova, size] of overlapping) {
      assertCode(() => pt.map(iova, 0x100_0000_0000, size, RW), "EEXIST");
      assert.deepEqual(snapshot(pt), before);
    }
    pt.assertConsistent();
  });

  await t.step("EEXIST names the first overlapping address", () => {
    const pt = setup();
    assert.throws(
      () => pt.map(0x1f_e000, 0, 0x4000, RW),
      /Cannot map IOVA 0x1fe000-0x202000: overlaps the mapping at 0x200000 \(EEXIST\)/,
    );
  });

  await t.step("EINVAL for bad arguments", () => {
    const pt = setup();
    const before = snapshot(pt);
    const bad: [number, number, number, number][] = [
      [0x1001, 0, SZ_4K, RW], // misaligned iova
      [0x10_0000_0000, 0x800, SZ_4K, RW], // misaligned paddr
      [0x10_0000_0000, 0, 0x800, RW], // misaligned size
      [0x10_0000_0000, 0, 0, RW], // empty
      [0x10_0000_0000, 0, -SZ_4K, RW],
      [2 ** 48 - SZ_4K, 0, 2 * SZ_4K, RW], // beyond the input range
      [2 ** 48, 0, SZ_4K, RW],
      [0x10_0000_0000, 2 ** 48 - SZ_4K, 2 * SZ_4K, RW], // beyond the output range
      [-SZ_4K, 0, SZ_4K, RW],
      [0x10_0000_0000, 0, SZ_4K, 0], // no permission
      [0x10_0000_0000, 0, SZ_4K, 4],
      [0.5, 0, SZ_4K, RW],
      [NaN, 0, SZ_4K, RW],
    ];
    for (const [iova, pa, size, prot] of bad) {
      assertCode(() => pt.map(iova, pa, size, prot), "EINVAL");
      assert.deepEqual(snapshot(pt), before);
    }
    assertCode(() => pt.unmap(0x1001, SZ_4K), "EINVAL");
    assertCode(() => pt.unmap(0, 0), "EINVAL");
    assertCode(() => pt.unmap(0, 0x800), "EINVAL");
    assertCode(() => pt.unmap(2 ** 48 - SZ_4K, 2 * SZ_4K), "EINVAL");
    assert.deepEqual(snapshot(pt), before);
    pt.assertConsistent();
  });

  await t.step("a failing allocTable during map rolls everything back", () => {
    for (let limit = 4; limit < 7; limit++) {
      const alloc = regionAllocator(0x1000_0000, limit);
      const pt = new IoPgtable({ stage: 2, ...alloc });
      pt.map(0, 0, SZ_4K, RW); // the root and 3 tables
      const before = snapshot(pt);
      // Needs an L3 table, then an L2 and an L3 table across the 1 GiB line.
      assertCode(() => pt.map(SZ_1G - SZ_4K, 0, 3 * SZ_4K, RW), "ENOMEM");
      assert.deepEqual(snapshot(pt), before);
      pt.assertConsistent();
      assert.equal(alloc.freed.length, alloc.calls - pt.tablePages);
    }
  });

  await t.step(
    "a failing allocTable during a split leaves the block whole",
    () => {
      const alloc = regionAllocator(0x1000_0000, 3);
      const pt = new IoPgtable({ stage: 2, splitOnUnmap: true, ...alloc });
      pt.map(0, 0, SZ_1G, RW); // root + L1
      const before = snapshot(pt);
      // Splitting a 1 GiB block at a 4 KiB boundary needs an L2 and an L3 table.
      assertCode(() => pt.unmap(SZ_4K, SZ_4K), "ENOMEM");
      assert.deepEqual(snapshot(pt), before);
      pt.assertConsistent();
    },
  );

  await t.step(
    "an unmap splitting blocks at both ends is all or nothing",
    () => {
      const alloc = regionAllocator(0x1000_0000, 4);
      const pt = new IoPgtable({ stage: 2, splitOnUnmap: true, ...alloc });
      pt.map(0, 0, 2 * SZ_2M, RW); // root + L1 + L2, two 2 MiB blocks
      const before = snapshot(pt);
      // Both blocks must split; only one more table can be allocated.
      assertCode(() => pt.unmap(SZ_4K, SZ_2M), "ENOMEM");
      assert.deepEqual(snapshot(pt), before);
      pt.assertConsistent();
    },
  );
});

// The split on unmap below is the pre-6.13 io-pgtable-arm behaviour
// (arm_lpae_split_blk_unmap()), kept behind splitOnUnmap as a what-if.
Deno.test("IoPgtable block splitting (splitOnUnmap, pre-6.13)", async (t) => {
  await t.step("unmapping a page of a 2 MiB block keeps the rest", () => {
    const pt = new IoPgtable({ stage: 2, splitOnUnmap: true });
    pt.map(SZ_2M, 10 * SZ_2M, SZ_2M, RW);
    const split = pt.stats.blocksSplit;
    assert.equal(pt.unmap(SZ_2M + 5 * SZ_4K, SZ_4K), SZ_4K);
    assert.equal(pt.stats.blocksSplit, split + 1);
    assert.equal(pt.iovaToPhys(SZ_2M + 5 * SZ_4K), -1);
    assert.equal(pt.iovaToPhys(SZ_2M + 4 * SZ_4K), 10 * SZ_2M + 4 * SZ_4K);
    assert.equal(
      pt.iovaToPhys(SZ_2M + 6 * SZ_4K + 9),
      10 * SZ_2M + 6 * SZ_4K + 9,
    );
    assert.equal(pt.mappedBytes, SZ_2M - SZ_4K);
    assert.equal(pt.mappings({ leaves: true }).length, 511);
    assert.deepEqual(pt.mappings(), [
      { iova: SZ_2M, pa: 10 * SZ_2M, size: 5 * SZ_4K, prot: RW },
      {
        iova: SZ_2M + 6 * SZ_4K,
        pa: 10 * SZ_2M + 6 * SZ_4K,
        size: SZ_2M - 6 * SZ_4K,
        prot: RW,
      },
    ]);
    pt.assertConsistent();
  });

  await t.step("a 1 GiB block splits into 2 MiB blocks and pages", () => {
    const pt = new IoPgtable({ stage: 1, splitOnUnmap: true });
    pt.map(0, 2 * SZ_1G, SZ_1G, PROT_READ);
    assert.equal(pt.unmap(3 * SZ_2M + SZ_4K, SZ_4K), SZ_4K);
    assert.equal(pt.stats.blocksSplit, 2);
    const leaves = pt.mappings({ leaves: true });
    assert.equal(leaves.filter((m) => m.size === SZ_2M).length, 511);
    assert.equal(leaves.filter((m) => m.size === SZ_4K).length, 511);
    assert.ok(
      leaves.every((m) => m.pa === 2 * SZ_1G + m.iova && m.prot === PROT_READ),
    );
    assert.equal(pt.mappedBytes, SZ_1G - SZ_4K);
    const w = pt.walk(5 * SZ_2M, newWalkResult());
    assert.equal(w.pageSize, SZ_2M);
    assert.equal(w.level, 2);
    pt.assertConsistent();
  });

  await t.step("an unmap spanning two blocks splits both ends", () => {
    const pt = new IoPgtable({ stage: 2, splitOnUnmap: true });
    pt.map(0, 0, 4 * SZ_2M, RW);
    assert.equal(pt.unmap(SZ_2M - SZ_4K, SZ_2M + 2 * SZ_4K), SZ_2M + 2 * SZ_4K);
    assert.equal(pt.stats.blocksSplit, 2, "the middle block goes whole");
    assert.equal(pt.iovaToPhys(SZ_2M - 2 * SZ_4K), SZ_2M - 2 * SZ_4K);
    assert.equal(pt.iovaToPhys(SZ_2M - SZ_4K), -1);
    assert.equal(pt.iovaToPhys(SZ_2M), -1);
    assert.equal(pt.iovaToPhys(2 * SZ_2M), -1);
    assert.equal(pt.iovaToPhys(2 * SZ_2M + SZ_4K), 2 * SZ_2M + SZ_4K);
    assert.equal(pt.walk(3 * SZ_2M, newWalkResult()).pageSize, SZ_2M);
    assert.equal(pt.mappedBytes, 3 * SZ_2M - 2 * SZ_4K);
    pt.assertConsistent();
  });

  await t.step("unmapping whole blocks and the rest frees every table", () => {
    const alloc = regionAllocator(0x4000_0000);
    const pt = new IoPgtable({ stage: 2, splitOnUnmap: true, ...alloc });
    pt.map(0, 0, SZ_1G, RW);
    pt.unmap(SZ_2M, SZ_4K);
    assert.equal(pt.tablePages, 4);
    assert.equal(pt.unmap(0, SZ_1G), SZ_1G - SZ_4K);
    assert.equal(pt.tablePages, 1);
    assert.equal(pt.mappedBytes, 0);
    assert.equal(alloc.freed.length, 3);
    assert.equal(alloc.calls, 4);
    pt.assertConsistent();
  });

  await t.step("a remap after a split can use a block again", () => {
    const pt = new IoPgtable({ stage: 2, splitOnUnmap: true });
    pt.map(0, 0, SZ_2M, RW);
    pt.unmap(0, SZ_4K);
    assert.equal(pt.unmap(0, SZ_2M), SZ_2M - SZ_4K);
    pt.map(0, SZ_2M, SZ_2M, RW);
    assert.deepEqual(pt.mappings({ leaves: true }), [
      { iova: 0, pa: SZ_2M, size: SZ_2M, prot: RW },
    ]);
  });
});

Deno.test("IoPgtable: no split on unmap (mainline since v6.13)", async (t) => {
  // "iommu/io-pgtable-arm: Remove split on unmap behavior" (Jason
  // Gunthorpe, 33729a5fc0ca, merged for v6.13): __arm_lpae_unmap() now does
  // WARN_ONCE(true, "Unmap of a partial large IOPTE is not allowed");
  // return 0; where it called arm_lpae_split_blk_unmap(). The model refuses
  // with EINVAL and changes nothing.
  await t.step(
    "unmapping 4 KiB of a 2 MiB block is EINVAL, the block stays",
    () => {
      const pt = new IoPgtable({ stage: 2 });
      pt.map(SZ_2M, 10 * SZ_2M, SZ_2M, RW);
      const before = snapshot(pt);
      assert.throws(() => pt.unmap(SZ_2M + 5 * SZ_4K, SZ_4K), {
        code: "EINVAL",
        message: /only part of the 0x200000-byte block at 0x200000/,
      });
      assert.deepEqual(snapshot(pt), before);
      assert.equal(pt.stats.blocksSplit, 0);
      assert.equal(pt.iovaToPhys(SZ_2M + 5 * SZ_4K), 10 * SZ_2M + 5 * SZ_4K);
      assert.equal(pt.unmap(SZ_2M, SZ_2M), SZ_2M); // the whole block goes
      pt.assertConsistent();
    },
  );

  await t.step("either end inside a block (1 GiB too) is EINVAL", () => {
    const pt = new IoPgtable({ stage: 1 });
    pt.map(0, 0, 4 * SZ_2M, RW);
    pt.map(SZ_1G, 2 * SZ_1G, SZ_1G, PROT_READ);
    const before = snapshot(pt);
    assertCode(() => pt.unmap(SZ_2M - SZ_4K, SZ_2M + 2 * SZ_4K), "EINVAL");
    assertCode(() => pt.unmap(SZ_2M, SZ_1G), "EINVAL"); // ends inside the 1 GiB block
    assertCode(() => pt.unmap(SZ_1G + SZ_2M, SZ_2M), "EINVAL");
    assert.deepEqual(snapshot(pt), before);
    // Ranges on block lines, holes included, still unmap.
    assert.equal(pt.unmap(SZ_2M, SZ_1G - SZ_2M), 3 * SZ_2M);
    assert.equal(pt.unmap(0, 2 * SZ_1G), SZ_2M + SZ_1G);
    assert.equal(pt.tablePages, 1);
  });

  await t.step("4 KiB mappings unmap page by page", () => {
    const pt = new IoPgtable({ stage: 2 });
    for (let i = 0; i < 512; i++) {
      pt.map(SZ_2M + i * SZ_4K, 10 * SZ_2M + i * SZ_4K, SZ_4K, RW);
    }
    assert.equal(pt.unmap(SZ_2M + 5 * SZ_4K, SZ_4K), SZ_4K);
    assert.equal(pt.mappedBytes, SZ_2M - SZ_4K);
  });
});

Deno.test("IoPgtable walk", async (t) => {
  const pt = new IoPgtable({ stage: 2 });
  pt.map(0, 0x10_0000_0000, SZ_2M, RW); // 2 MiB block
  pt.map(SZ_1G, 0x20_0000_0000, SZ_1G, PROT_READ); // 1 GiB block
  pt.map(0x40_0000_1000, 0x30_0000_5000, SZ_4K, PROT_WRITE); // page
  const w: WalkResult = newWalkResult();

  /** Checks that descAddrs chain through the table descriptors. */
  const checkChain = (r: WalkResult, iova: number) => {
    assert.equal(
      r.descAddrs[0],
      pt.root + Math.floor(iova / SZ_512G) % 512 * 8,
    );
    for (let k = 0; k < r.reads; k++) {
      const addr = r.descAddrs[k]!;
      const level = k as 0 | 1 | 2 | 3;
      const idx = Math.floor(iova / levelSize(level)) % 512;
      assert.equal(addr % SZ_4K, idx * 8, `descriptor ${k} indexes the table`);
      const desc = pt.readDescriptor(addr);
      assert.ok(desc >= 0);
      if (k + 1 < r.reads) {
        assert.ok(pteIsTable(desc, level));
        const next = r.descAddrs[k + 1]!;
        assert.equal(pteAddress(desc), next - (next % SZ_4K));
      } else if (r.ok) {
        assert.ok(pteIsLeaf(desc, level));
        assert.equal(pteAddress(desc) + (iova % r.pageSize), r.pa);
      } else {
        assert.equal(desc, 0);
      }
    }
    for (let k = r.reads; k < 4; k++) assert.equal(r.descAddrs[k], -1);
  };

  await t.step("a 4 KiB page takes four reads", () => {
    const r = pt.walk(0x40_0000_1abc, w);
    assert.equal(r, w, "fills the given result");
    assert.deepEqual(
      [r.ok, r.pa, r.prot, r.pageSize, r.level, r.reads],
      [true, 0x30_0000_5abc, PROT_WRITE, SZ_4K, 3, 4],
    );
    checkChain(r, 0x40_0000_1abc);
  });

  await t.step("a 2 MiB block takes three reads", () => {
    pt.walk(0x1f_fff8, w);
    assert.deepEqual(
      [w.ok, w.pa, w.prot, w.pageSize, w.level, w.reads],
      [true, 0x10_001f_fff8, RW, SZ_2M, 2, 3],
    );
    checkChain(w, 0x1f_fff8);
  });

  await t.step("a 1 GiB block takes two reads", () => {
    pt.walk(SZ_1G + 0x1234_5678, w);
    assert.deepEqual(
      [w.ok, w.pa, w.prot, w.pageSize, w.level, w.reads],
      [true, 0x20_1234_5678, PROT_READ, SZ_1G, 1, 2],
    );
    checkChain(w, SZ_1G + 0x1234_5678);
  });

  await t.step("a fault stops at the invalid entry", () => {
    const cases: [number, number][] = [
      [SZ_512G * 3, 0], // empty level-0 entry
      [3 * SZ_1G, 1], // empty level-1 entry
      [SZ_2M, 2], // empty level-2 entry
      [0x40_0000_2000, 3], // empty level-3 entry
    ];
    for (const [iova, level] of cases) {
      pt.walk(iova, w);
      assert.deepEqual(
        [w.ok, w.pa, w.prot, w.pageSize, w.level, w.reads],
        [false, -1, 0, 0, level, level + 1],
        `walk of 0x${iova.toString(16)}`,
      );
      checkChain(w, iova);
    }
  });

  await t.step("an IOVA outside the input range faults with no reads", () => {
    for (const iova of [2 ** 48, -1, Infinity, NaN]) {
      pt.walk(iova, w);
      assert.deepEqual([w.ok, w.level, w.reads], [false, 0, 0]);
      assert.deepEqual([...w.descAddrs], [-1, -1, -1, -1]);
    }
  });

  await t.step("readDescriptor rejects addresses outside the tables", () => {
    assert.equal(pt.readDescriptor(pt.root + 4), -1);
    assert.equal(pt.readDescriptor(0x1234_5000), -1);
    assert.ok(pteIsTable(pt.readDescriptor(pt.root), 0));
  });
});

Deno.test("IoPgtable permission encodings", async (t) => {
  const leafDesc = (pt: IoPgtable, iova: number) => {
    const w = pt.walk(iova, newWalkResult());
    return { w, desc: pt.readDescriptor(w.descAddrs[w.reads - 1]!) };
  };

  await t.step("stage 1: AP bits, nG and AF", () => {
    const pt = new IoPgtable({ stage: 1 });
    pt.map(0x0000, 0x10000, SZ_4K, PROT_READ);
    pt.map(0x1000, 0x11000, SZ_4K, RW);
    pt.map(0x2000, 0x12000, SZ_4K, PROT_WRITE);
    const expect: [number, number, boolean][] = [
      [0x0000, PROT_READ, true],
      [0x1000, RW, false],
      [0x2000, RW, false], // AP cannot say write-only: read/write, as in Linux
    ];
    for (const [iova, prot, rdonly] of expect) {
      const { w, desc } = leafDesc(pt, iova);
      assert.equal(w.prot, prot);
      const lo = desc % 2 ** 32;
      assert.equal(lo & 3, PTE_VALID | PTE_TYPE_PAGE, "a level-3 page");
      assert.equal((lo & PTE_AP_RDONLY) !== 0, rdonly);
      assert.ok(lo & PTE_AP_UNPRIV);
      assert.ok(lo & PTE_NG);
      assert.ok(lo & PTE_AF);
      assert.equal(pteAddress(desc), w.pa);
    }
  });

  await t.step("stage 2: S2AP read and write bits", () => {
    const pt = new IoPgtable({ stage: 2 });
    pt.map(0x0000, 0x10000, SZ_4K, PROT_READ);
    pt.map(0x1000, 0x11000, SZ_4K, RW);
    pt.map(0x2000, 0x12000, SZ_4K, PROT_WRITE);
    for (
      const [iova, prot] of [[0, PROT_READ], [0x1000, RW], [0x2000, PROT_WRITE]]
    ) {
      const { w, desc } = leafDesc(pt, iova!);
      assert.equal(w.prot, prot);
      const lo = desc % 2 ** 32;
      assert.equal((lo & PTE_S2AP_READ) !== 0, (prot! & PROT_READ) !== 0);
      assert.equal((lo & PTE_S2AP_WRITE) !== 0, (prot! & PROT_WRITE) !== 0);
      assert.equal(lo & PTE_NG, 0, "stage 2 has no nG");
      assert.ok(lo & PTE_AF);
    }
  });

  await t.step("block descriptors carry the same permissions as pages", () => {
    for (const stage of [1, 2] as const) {
      const pt = new IoPgtable({ stage, splitOnUnmap: true });
      pt.map(0, 0, SZ_2M, PROT_READ);
      const { w, desc } = leafDesc(pt, 0x1000);
      assert.equal(w.prot, PROT_READ);
      assert.ok(pteIsLeaf(desc, 2));
      assert.equal(desc % 4, PTE_VALID, "a block: bit 1 clear");
      // Splitting (pre-6.13, splitOnUnmap) keeps them.
      pt.unmap(0, SZ_4K);
      assert.equal(pt.walk(0x1000, w).prot, PROT_READ);
      assert.equal(w.pageSize, SZ_4K);
    }
  });
});

Deno.test("IoPgtable maps 64 GiB of 4 KiB pages in bounded memory", () => {
  const pt = new IoPgtable({ stage: 2, pgsizeBitmap: SZ_4K });
  const base = 0x100_0000_0000;
  const size = 64 * SZ_1G;
  pt.map(base, SZ_4K, size, RW);
  assert.equal(pt.mappedBytes, size);
  // 32768 leaf tables, 64 level-2 tables, one level-1 table and the root.
  assert.equal(pt.tablePages, 32768 + 64 + 1 + 1);
  assert.equal(pt.stats.leavesWritten, size / SZ_4K);
  for (const off of [0, SZ_4K * 12345, size - SZ_4K]) {
    assert.equal(pt.iovaToPhys(base + off + 7), SZ_4K + off + 7);
  }
  assertCode(() => pt.map(base + size - SZ_4K, 0, SZ_4K, RW), "EEXIST");
  assert.equal(pt.unmap(base, size), size);
  assert.equal(pt.tablePages, 1);
  assert.equal(pt.mappedBytes, 0);
});

Deno.test("the access flag: map sets AF (io-pgtable-arm's ARM_LPAE_PTE_AF) and the walk reports it; setAccessFlag clears and sets bit 10 of the leaf only", () => {
  const pt = new IoPgtable({ stage: 1 });
  pt.map(0x20_0000, 0x4000_0000, 0x20_0000, 3); // a 2 MiB block
  pt.map(0x1000, 0x8000_1000, 0x1000, 1); // a page
  const w = newWalkResult();
  assert.ok(pt.walk(0x1234, w).af && pt.walk(0x20_1234, w).af);
  const before = pt.readDescriptor(w.descAddrs[w.reads - 1]!);
  assert.ok(pt.setAccessFlag(0x20_5000, false));
  pt.walk(0x20_1234, w);
  assert.ok(w.ok && !w.af && w.pa === 0x4000_1234);
  assert.equal(pt.readDescriptor(w.descAddrs[w.reads - 1]!), before - 0x400);
  assert.ok(pt.setAccessFlag(0x1000, false));
  assert.ok(!pt.walk(0x1000, w).af && w.prot === 1);
  assert.ok(pt.setAccessFlag(0x1000, true) && pt.walk(0x1000, w).af);
  assert.equal(pt.setAccessFlag(0x5000, false), false); // not mapped
  assert.equal(pt.setAccessFlag(-1, false), false);
  pt.walk(0x9000, w);
  assert.ok(!w.ok && !w.af);
});

Deno.test("IoPgtable leaf tables: compact and wide forms read the same", async (t) => {
  // Every entry's descriptor as written by hand (what the table held before
  // leaf tables had a compact form), to compare with readDescriptor.
  const desc = (pa: number, prot: number) =>
    (pa / 2 ** 32 & 0xffff) * 2 ** 32 +
    (((pa & 0xfffff000) | PTE_VALID | PTE_TYPE_PAGE | PTE_AF | 0x300 |
      (0xf << 2) | ((prot & PROT_READ) ? PTE_S2AP_READ : 0) |
      ((prot & PROT_WRITE) ? PTE_S2AP_WRITE : 0)) >>> 0);
  const check = (
    pt: IoPgtable,
    pages: readonly { iova: number; pa: number; prot: number }[],
  ) => {
    const w = newWalkResult();
    for (const p of pages) {
      pt.walk(p.iova + 0x123, w);
      assert.equal(w.ok, true);
      assert.equal(w.pa, p.pa + 0x123);
      assert.equal(w.prot, p.prot);
      assert.equal(w.pageSize, SZ_4K);
      assert.equal(w.reads, 4);
      assert.equal(pt.readDescriptor(w.descAddrs[3]!), desc(p.pa, p.prot));
    }
    assert.deepEqual(
      pt.mappings({ leaves: true }).map((m) => [m.iova, m.pa, m.prot]),
      [...pages].sort((a, b) => a.iova - b.iova).map((
        p,
      ) => [p.iova, p.pa, p.prot]),
    );
    pt.assertConsistent();
  };
  await t.step("scattered frames within 128 MiB stay compact", () => {
    const pt = new IoPgtable({ stage: 2, pgsizeBitmap: SZ_4K });
    const pages = [];
    for (let i = 0; i < 512; i++) {
      const pa = 0x12_3400_0000 + ((i * 167) % 512) * SZ_4K +
        (i % 3) * 20 * SZ_2M;
      pages.push({ iova: 0x4000_0000 + i * SZ_4K, pa, prot: RW });
      pt.map(0x4000_0000 + i * SZ_4K, pa, SZ_4K, RW);
    }
    check(pt, pages);
  });
  await t.step(
    "a far frame, a frame below the base or another prot widen it",
    () => {
      for (
        const odd of [
          { pa: 0x12_3400_0000 + 0x20000 * SZ_4K, prot: RW },
          { pa: 0x1000, prot: RW },
          { pa: 0x12_3400_5000, prot: PROT_READ },
        ]
      ) {
        const pt = new IoPgtable({ stage: 2 });
        const pages = [];
        for (let i = 0; i < 8; i++) {
          const pa = 0x12_3400_0000 + i * 2 * SZ_4K;
          pages.push({ iova: i * SZ_4K, pa, prot: RW });
          pt.map(i * SZ_4K, pa, SZ_4K, RW);
        }
        pages.push({ iova: 100 * SZ_4K, ...odd });
        pt.map(100 * SZ_4K, odd.pa, SZ_4K, odd.prot);
        check(pt, pages);
        // Unmapping in the wide form clears both words; the rest stays.
        assert.equal(pt.unmap(0, SZ_4K), SZ_4K);
        check(pt, pages.slice(1));
        assertCode(() => pt.map(SZ_4K, 0, SZ_4K, RW), "EEXIST");
        assert.equal(pt.unmap(0, SZ_2M), 8 * SZ_4K);
        assert.equal(pt.tablePages, 1);
      }
    },
  );
  await t.step("frames at the top of the 48-bit output space", () => {
    const pt = new IoPgtable({ stage: 2 });
    const top = 2 ** 48 - 4 * SZ_4K;
    const pages = [0, 1, 2, 3].map((i) => ({
      iova: SZ_1G + i * SZ_4K,
      pa: top + i * SZ_4K,
      prot: RW,
    }));
    pt.map(SZ_1G, top, 4 * SZ_4K, RW);
    check(pt, pages);
  });
  await t.step("a split 2 MiB block is a compact leaf table", () => {
    const pt = new IoPgtable({ stage: 2, splitOnUnmap: true });
    pt.map(0, 0x8000_0000, SZ_2M, RW);
    pt.unmap(0, SZ_4K);
    const pages = [];
    for (let i = 1; i < 512; i++) {
      pages.push({ iova: i * SZ_4K, pa: 0x8000_0000 + i * SZ_4K, prot: RW });
    }
    check(pt, pages);
  });
});
