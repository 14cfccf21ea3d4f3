import assert from "node:assert/strict";
import {
  SetAssocTlb,
  TLB_KIND_NESTED,
  TLB_KIND_S1,
  TLB_KIND_S2,
} from "../../lib/smmu/mod.ts";

const RW = 3;

Deno.test("TLB entries are tagged by context and cover 4K, 2M and 1G pages", () => {
  const tlb = new SetAssocTlb({ entries: 32, ways: 4 });
  tlb.insert(1, 7, TLB_KIND_S1, 0x1000, 0x5000, 0x9000, RW);
  tlb.insert(1, -1, TLB_KIND_S2, 0x200000, 0x400000, 0x80000000, RW);
  tlb.insert(2, 7, TLB_KIND_NESTED, 0x40000000, 0x40000000, 0x0, 1);
  assert.equal(tlb.translate(tlb.lookup(1, 7, 0x5abc), 0x5abc), 0x9abc);
  assert.equal(tlb.lookup(1, 8, 0x5abc), -1); // other ASID
  assert.equal(
    tlb.translate(tlb.lookup(1, -1, 0x5fffff), 0x5fffff),
    0x801fffff,
  );
  const i = tlb.lookup(2, 7, 0x7fff_ffff);
  assert.ok(i >= 0 && tlb.prot[i] === 1 && tlb.shift[i] === 30);
});

Deno.test("a full set evicts its least recently used way", () => {
  const tlb = new SetAssocTlb({ entries: 2, ways: 2 }); // one set
  tlb.insert(0, 0, TLB_KIND_S1, 0x1000, 0x1000, 0x1000, RW);
  tlb.insert(0, 0, TLB_KIND_S1, 0x1000, 0x2000, 0x2000, RW);
  assert.ok(tlb.lookup(0, 0, 0x1000) >= 0); // touch the first
  tlb.insert(0, 0, TLB_KIND_S1, 0x1000, 0x3000, 0x3000, RW);
  assert.ok(tlb.lookup(0, 0, 0x1000) >= 0);
  assert.equal(tlb.lookup(0, 0, 0x2000), -1);
  assert.ok(tlb.lookup(0, 0, 0x3000) >= 0);
  assert.equal(tlb.valid, 2);
});

Deno.test("invalidation matches context, kind and overlapping range", () => {
  const tlb = new SetAssocTlb({ entries: 64, ways: 4 });
  tlb.insert(1, 3, TLB_KIND_S1, 0x1000, 0x1000, 0, RW);
  tlb.insert(1, 3, TLB_KIND_S1, 0x200000, 0x200000, 0, RW);
  tlb.insert(1, -1, TLB_KIND_S2, 0x1000, 0x1000, 0, RW);
  tlb.insert(1, 3, TLB_KIND_NESTED, 0x1000, 0x9000, 0, RW);
  // A 4K range inside the 2M block drops the block, not the S2 entry.
  assert.equal(tlb.invalidate(1, 3, 1 << TLB_KIND_S1, 0x201000, 0x202000), 1);
  assert.equal(tlb.invalidate(1, -1, 1 << TLB_KIND_S2, 0, Infinity), 1);
  assert.equal(tlb.invalidate(1, undefined, 0, 0, 0x2000), 1); // the S1 page
  assert.equal(tlb.valid, 1);
  assert.equal(tlb.invalidateAll(), 1);
  assert.equal(tlb.lookup(1, 3, 0x9000), -1);
});

Deno.test("TLB geometry is validated", () => {
  assert.throws(() => new SetAssocTlb({ entries: 10, ways: 4 }), /EINVAL/);
  assert.throws(() => new SetAssocTlb({ entries: 8, ways: 0 }), /EINVAL/);
});
