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

Deno.test("hit: lookup, permission and readiness in one call, over every page size", () => {
  const tlb = new SetAssocTlb({ entries: 64, ways: 4 });
  tlb.insert(1, -1, TLB_KIND_S2, 0x1000, 0x20_0000, 0x9000_0000, 1);
  tlb.insert(1, -1, TLB_KIND_S2, 0x20_0000, 0x40_0000, 0x8000_0000, RW);
  tlb.setReadyAt(tlb.lastInsert, 100);
  tlb.insert(2, 4, TLB_KIND_S1, 0x4000_0000, 0x4000_0000, 0, RW);
  assert.equal(tlb.hit(1, -1, 0x20_0123, 1, 0), 0x9000_0123);
  assert.equal(tlb.hit(1, -1, 0x20_0123, 2, 0), -1, "read-only");
  assert.equal(tlb.hit(1, 3, 0x20_0123, 1, 0), -1, "other ASID");
  // The 2 MiB block: its key never matches a 4 KiB probe.
  assert.equal(tlb.probe4k(1, -1, 0x40_0000), -1);
  assert.equal(tlb.hit(1, -1, 0x5f_fff0, 2, 99), -1, "walk still running");
  assert.equal(tlb.hit(1, -1, 0x5f_fff0, 2, 100), 0x801f_fff0);
  assert.equal(tlb.readyAt(tlb.lookup(1, -1, 0x40_0000)), 100);
  assert.equal(tlb.hit(2, 4, 0x7fff_fff0, 3, 0), 0x3fff_fff0);
  assert.equal(tlb.hit(2, 4, 0x8000_0000, 1, 0), -1, "outside the 1 GiB page");
  tlb.invalidateAll();
  assert.equal(tlb.hit(1, -1, 0x20_0123, 1, 0), -1);
  assert.equal(tlb.hit(2, 4, 0x7fff_fff0, 3, 0), -1);
  // A new entry in a dropped way answers from its own readiness (0).
  tlb.insert(1, -1, TLB_KIND_S2, 0x20_0000, 0x40_0000, 0x8000_0000, RW);
  assert.equal(tlb.hit(1, -1, 0x40_0010, 1, 0), 0x8000_0010);
});

Deno.test("hit refreshes the LRU stamp as lookup does, even when it refuses the permission", () => {
  const tlb = new SetAssocTlb({ entries: 2, ways: 2 }); // one set
  tlb.insert(0, 0, TLB_KIND_S1, 0x1000, 0x1000, 0x1000, 1);
  tlb.insert(0, 0, TLB_KIND_S1, 0x1000, 0x2000, 0x2000, RW);
  assert.equal(tlb.hit(0, 0, 0x1000, 2, 0), -1); // touches the first
  tlb.insert(0, 0, TLB_KIND_S1, 0x1000, 0x3000, 0x3000, RW);
  assert.ok(tlb.lookup(0, 0, 0x1000) >= 0);
  assert.equal(tlb.lookup(0, 0, 0x2000), -1, "the second was the LRU");
});
