/**
 * MmStruct.unmapGeneration and IoPgtable.unmapGeneration: the counters a
 * cache of translations (the isolation sanitizer's) relies on. They move on
 * every operation that may take a translation away and stand still on
 * every one that only adds.
 */
import assert from "node:assert/strict";
import { HostMemory, MmStruct } from "../../lib/mm/mod.ts";
import { IoPgtable } from "../../lib/pgtable/mod.ts";
import { PROT_READ, SZ_4K } from "../../lib/sim/units.ts";
import { MiB, TEST_COSTS } from "./_helpers.ts";

Deno.test("MmStruct.unmapGeneration: moves on zap, reclaim, munmap and a failed fault-in; not on populating", () => {
  const host = new HostMemory({ size: 64 * MiB, costs: TEST_COSTS });
  const mm = new MmStruct(host, { memlockLimit: Infinity });
  const v = mm.mmap({ size: 16 * MiB, backing: "4k" });
  let g = mm.unmapGeneration;
  mm.touch(v.start, 4 * MiB);
  mm.pinUserPages(v.start, 16, { longterm: true });
  mm.unpinUserPages(v.start, 16);
  assert.equal(mm.unmapGeneration, g, "populating and pinning add only");
  mm.madviseDontneed(v.start, SZ_4K);
  assert.ok(mm.unmapGeneration > g, "MADV_DONTNEED");
  g = mm.unmapGeneration;
  assert.ok(mm.reclaim(8).reclaimed > 0);
  assert.ok(mm.unmapGeneration > g, "reclaim");
  g = mm.unmapGeneration;
  // A fault-in that runs out of memory undoes what it populated.
  const big = mm.mmap({ size: 128 * MiB, backing: "4k" });
  assert.throws(() => mm.touch(big.start, 128 * MiB));
  assert.ok(mm.unmapGeneration > g, "rollback of a failed fault-in");
  g = mm.unmapGeneration;
  mm.munmap(v.start, v.size);
  assert.ok(mm.unmapGeneration > g, "munmap");
});

Deno.test("IoPgtable.unmapGeneration: moves on unmap (of any table), not on map", () => {
  const a = new IoPgtable({ stage: 2, pgsizeBitmap: SZ_4K });
  const b = new IoPgtable({ stage: 1, pgsizeBitmap: SZ_4K });
  const g = IoPgtable.unmapGeneration;
  a.map(0x4000_0000, 0x8000_0000, SZ_4K, PROT_READ);
  b.map(0x1000, 0x2000, SZ_4K, PROT_READ);
  assert.equal(IoPgtable.unmapGeneration, g);
  assert.throws(() => a.map(0x4000_0000, 0x9000_0000, SZ_4K, PROT_READ));
  assert.equal(IoPgtable.unmapGeneration, g, "a refused map changes nothing");
  b.unmap(0x1000, SZ_4K);
  assert.equal(IoPgtable.unmapGeneration, g + 1);
});
