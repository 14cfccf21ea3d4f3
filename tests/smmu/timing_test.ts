/**
 * The SMMU's timing structure: per-level walk caches for stage 1 and stage
 * 2, a sized configuration cache invalidated by CMD_CFGI_*, and the TCU's
 * translation slots and table walkers, so misses contend. Default sizes are
 * gem5's SMMUv3 model's (src/dev/arm/SMMUv3.py: `walk_S1L0` 4, `walk_S1L1`
 * 28, `walk_S1L2` 348, `walk_S2L0` 4, `walk_S2L1` 28, `walk_S2L2` 92,
 * `walk_assoc` 4, `cfg_entries` 64, `cfg_assoc` 4, `xlate_slots` 64,
 * `ptw_slots` 16).
 */
import assert from "node:assert/strict";
import {
  CMD_CFGI_CD,
  CMD_CFGI_STE,
  CMD_SYNC,
  CMD_TLBI_NH_ASID,
  CMD_TLBI_S2_IPA,
  GEM5_CONFIG_ENTRIES,
  GEM5_WALK_CACHE,
} from "../../lib/smmu/mod.ts";
import { hostTable, rig, steS2, translateNow } from "./_helpers.ts";
import { cdFor, steS1 } from "./_rig.ts";

const GiB = 2 ** 30, MiB = 2 ** 20;

/** A stage-2 rig with 4 KiB pages mapped at `ipas`. */
function s2Rig(ipas: number[], options: Parameters<typeof rig>[0] = {}) {
  const r = rig(options);
  const t = hostTable(r.memory, 2);
  for (const ipa of ipas) t.map(ipa, 0x8000_0000 + ipa, 4096, 3);
  r.smmu.writeSte(1, steS2(t));
  return r;
}

Deno.test("stage-2 walk caches per level: a walk starts below the deepest level cached", () => {
  const near = 0x1000, sameL2 = 0x5000, sameL1 = 0x40_0000, sameL0 = 3 * GiB;
  const r = s2Rig([near, sameL2, sameL1, sameL0]);
  const reads = (iova: number) => {
    const before = r.smmu.stats.walkReads;
    const res = translateNow(r, { sid: 1, iova, write: false });
    assert.ok(res?.ok);
    return r.smmu.stats.walkReads - before;
  };
  assert.equal(reads(near), 4, "cold: L0, L1, L2, L3");
  assert.equal(reads(sameL2), 1, "same 2 MiB region: the L2 entry, leaf only");
  assert.equal(reads(sameL1), 2, "same 1 GiB region: the L1 entry, L2 + L3");
  assert.equal(reads(sameL0), 3, "same 512 GiB region: the L0 entry");
  const t = r.smmu.timingStats;
  assert.deepEqual(t.walkS2.map((c) => c.hits), [1, 1, 1]);
  assert.deepEqual(t.walkS1.map((c) => c.hits + c.misses), [0, 0, 0]);
});

Deno.test("stage-1 walk caches are tagged by ASID", () => {
  const r = rig();
  const s1 = hostTable(r.memory, 1);
  s1.map(0x1000, 0x9000_0000, 4096, 3);
  s1.map(0x2000, 0x9000_1000, 4096, 3);
  for (const [ptr, asid] of [[0x7000, 3], [0x8000, 4]] as const) {
    r.smmu.writeCd(ptr, 0, cdFor(s1, { ASID: asid }));
  }
  r.smmu.writeSte(1, steS1(0x7000));
  r.smmu.writeSte(2, steS1(0x8000));
  const reads = (sid: number, iova: number) => {
    const before = r.smmu.stats.walkReads;
    assert.ok(translateNow(r, { sid, iova, write: false })?.ok);
    return r.smmu.stats.walkReads - before;
  };
  assert.equal(reads(1, 0x1000), 4);
  assert.equal(reads(1, 0x2000), 1, "ASID 3's L2 entry");
  assert.equal(reads(2, 0x2000), 4, "ASID 4 shares the table, not the entries");
  assert.equal(r.smmu.timingStats.walkS1[2].hits, 1);
  // IHI0070 4.4 (paraphrased): CMD_TLBI_NH_ASID invalidates every stage-1
  // entry of the ASID, walk-cache entries included (it has no Leaf option).
  r.smmu.submit([{ opcode: CMD_TLBI_NH_ASID, VMID: 0, ASID: 3 }, {
    opcode: CMD_SYNC,
  }]);
  r.sim.run();
  assert.equal(reads(1, 0x2000), 4, "ASID 3's walk-cache entries are gone");
  assert.equal(reads(2, 0x1000), 1, "ASID 4's stay");
});

Deno.test("a TLBI drops the walk-cache entries it covers", () => {
  const r = s2Rig([0x1000, 0x2000, 0x3000]);
  assert.ok(translateNow(r, { sid: 1, iova: 0x1000, write: false })?.ok);
  // IHI0070 4.4 (paraphrased): CMD_TLBI_S2_IPA invalidates the stage-2
  // entries of the IPA, with Leaf = 0 the walk-cache entries of its walk too.
  r.smmu.submit([{ opcode: CMD_TLBI_S2_IPA, VMID: 1, Address: 0x2000 }, {
    opcode: CMD_SYNC,
  }]);
  r.sim.run();
  const before = r.smmu.stats.walkReads;
  assert.ok(translateNow(r, { sid: 1, iova: 0x3000, write: false })?.ok);
  assert.equal(r.smmu.stats.walkReads - before, 4);
});

Deno.test("walkCache sizes of 0 make every walk read every level", () => {
  const r = s2Rig([0x1000, 0x2000], {
    walkCacheS2: [0, 0, 0],
  });
  assert.ok(translateNow(r, { sid: 1, iova: 0x1000, write: false })?.ok);
  assert.ok(translateNow(r, { sid: 1, iova: 0x2000, write: false })?.ok);
  assert.equal(r.smmu.stats.walkReads, 8);
});

Deno.test("the default walk caches hold gem5's entries per level", () => {
  assert.deepEqual(GEM5_WALK_CACHE, { s1: [4, 28, 348], s2: [4, 28, 92] });
  // 92 stage-2 L2 entries (4-way, 23 sets): 92 regions of 2 MiB fill the
  // sets evenly and all stay; a 93rd region overflows one set.
  const pass = (n: number) => {
    const regions = Array.from({ length: n }, (_, i) => i * 2 * MiB);
    const r = s2Rig(regions.flatMap((a) => [a, a + 0x1000]));
    for (const ipa of regions) {
      translateNow(r, { sid: 1, iova: ipa, write: false });
    }
    const before = r.smmu.stats.walkReads;
    for (const ipa of regions) {
      translateNow(r, { sid: 1, iova: ipa + 0x1000, write: false });
    }
    return r.smmu.stats.walkReads - before;
  };
  assert.equal(pass(92), 92, "every second walk reads the leaf only");
  assert.ok(pass(93) > 93, "one set thrashes");
});

Deno.test("the configuration cache holds 64 entries (gem5 cfg_entries) and evicts beyond", () => {
  assert.equal(GEM5_CONFIG_ENTRIES, 64);
  const r = rig();
  const t = hostTable(r.memory, 2);
  t.map(0, 0x8000_0000, 4096, 3);
  for (let sid = 0; sid < 65; sid++) r.smmu.writeSte(sid, steS2(t));
  for (let sid = 0; sid < 64; sid++) {
    assert.ok(translateNow(r, { sid, iova: 0, write: false })?.ok);
  }
  assert.equal(r.smmu.stats.cfgEvictions, 0, "64 STEs fit (16 sets of 4)");
  assert.equal(r.smmu.stats.cfgMisses, 64);
  for (let sid = 0; sid < 64; sid++) {
    translateNow(r, { sid, iova: 0, write: false });
  }
  assert.equal(r.smmu.stats.cfgMisses, 64, "all hit");
  assert.ok(translateNow(r, { sid: 64, iova: 0, write: false })?.ok);
  assert.equal(r.smmu.stats.cfgEvictions, 1, "the 65th evicts one");
  const misses = r.smmu.stats.cfgMisses;
  for (let sid = 0; sid < 64; sid++) {
    translateNow(r, { sid, iova: 0, write: false });
  }
  assert.ok(
    r.smmu.stats.cfgMisses > misses,
    "the evicted STE is fetched again",
  );
});

Deno.test("CMD_CFGI_STE and CMD_CFGI_CD invalidate configuration cache entries (IHI0070 4.3)", () => {
  // IHI0070 4.3 (configuration structure invalidation, paraphrased):
  // CMD_CFGI_STE invalidates the cached STE of StreamID (and what is cached
  // under it), CMD_CFGI_CD the cached CD of StreamID and SubstreamID; until
  // then the SMMU may go on using its cached copies.
  const r = rig();
  const s1 = hostTable(r.memory, 1);
  s1.map(0, 0x9000_0000, 4096, 3);
  const cd = cdFor(s1);
  r.smmu.writeCd(0x7000, 0, cd);
  r.smmu.writeSte(1, steS1(0x7000));
  const st = r.smmu.stats;
  assert.ok(translateNow(r, { sid: 1, iova: 0, write: false })?.ok);
  assert.deepEqual([st.cfgMisses, st.cdMisses], [1, 1]);
  assert.ok(translateNow(r, { sid: 1, iova: 0x10, write: false })?.ok);
  assert.deepEqual([st.cfgHits, st.cdHits], [1, 1]);
  r.smmu.submitBlocking([{ opcode: CMD_CFGI_CD, SID: 1, SSID: 0 }]);
  assert.ok(translateNow(r, { sid: 1, iova: 0x20, write: false })?.ok);
  assert.deepEqual(
    [st.cfgMisses, st.cdMisses],
    [1, 2],
    "only the CD refetched",
  );
  r.smmu.submitBlocking([{ opcode: CMD_CFGI_STE, SID: 1, Leaf: true }]);
  assert.ok(translateNow(r, { sid: 1, iova: 0x30, write: false })?.ok);
  assert.deepEqual([st.cfgMisses, st.cdMisses], [2, 3], "the STE and its CDs");
  assert.equal(st.cfgEvictions, 0);
});

Deno.test("a configuration cache of 0 entries fetches the STE every time", () => {
  const r = s2Rig([0x1000], { configCacheEntries: 0 });
  translateNow(r, { sid: 1, iova: 0x1000, write: false });
  translateNow(r, { sid: 1, iova: 0x1000, write: false });
  assert.equal(r.smmu.stats.cfgMisses, 2);
});

/** Completion times of misses to `n` pages in distinct 2 MiB regions, all presented at t = 0. */
function missTimes(n: number, options: Parameters<typeof rig>[0]): number[] {
  const ipas = Array.from({ length: n + 1 }, (_, i) => i * 2 * MiB);
  const r = s2Rig(ipas, options);
  // Warm the STE and the upper walk-cache levels.
  assert.ok(translateNow(r, { sid: 1, iova: ipas[n]!, write: false })?.ok);
  const t0 = r.sim.now;
  const ends: number[] = [];
  for (let i = 0; i < n; i++) {
    r.smmu.translate(
      { sid: 1, iova: ipas[i]!, write: false },
      () => ends.push(r.sim.now - t0),
    );
  }
  r.sim.run();
  return ends;
}

Deno.test("misses contend for table walkers (gem5 ptw_slots)", () => {
  const c = rig().costs;
  // Each walk: the L1 entry hits, so L2 + L3 are read.
  const walk = 2 * c["smmu.walkRead"];
  const one = c["smmu.iotlbLookup"] + walk;
  assert.deepEqual(missTimes(3, { ptwSlots: 16 }), [one, one, one]);
  assert.deepEqual(missTimes(3, { ptwSlots: 1 }), [
    one,
    one + walk,
    one + 2 * walk,
  ]);
  const r = s2Rig([0, 2 * MiB], { ptwSlots: 1 });
  r.smmu.translate({ sid: 1, iova: 0, write: false }, () => {});
  r.smmu.translate({ sid: 1, iova: 2 * MiB, write: false }, () => {});
  r.sim.run();
  assert.equal(r.smmu.timingStats.ptwSlotWaits, 1);
});

Deno.test("misses contend for translation slots (gem5 xlate_slots)", () => {
  const c = rig().costs;
  const walk = 2 * c["smmu.walkRead"];
  const one = c["smmu.iotlbLookup"] + walk;
  // Two slots, many walkers: the third translation waits for the first slot.
  assert.deepEqual(missTimes(3, { xlateSlots: 2 }), [one, one, 2 * one]);
});

Deno.test("IOTLB hits do not wait for busy walkers", () => {
  const r = s2Rig([0, 2 * MiB, 4 * MiB], { ptwSlots: 1 });
  assert.ok(translateNow(r, { sid: 1, iova: 0, write: false })?.ok);
  const t0 = r.sim.now;
  let hitAt = -1;
  r.smmu.translate({ sid: 1, iova: 2 * MiB, write: false }, () => {});
  r.smmu.translate({ sid: 1, iova: 4 * MiB, write: false }, () => {});
  r.smmu.translate(
    { sid: 1, iova: 0x10, write: false },
    () => hitAt = r.sim.now - t0,
  );
  r.sim.run();
  assert.equal(hitAt, r.costs["smmu.iotlbLookup"]);
});

Deno.test("a hit on an entry whose walk is still in progress waits for that walk", () => {
  // gem5's SMMUv3 checks such hazards too; on hardware the second access
  // cannot use a translation the walker has not returned yet.
  const r = s2Rig([0, 2 * MiB, 4 * MiB], { ptwSlots: 1 });
  assert.ok(translateNow(r, { sid: 1, iova: 0, write: false })?.ok);
  const t0 = r.sim.now;
  const at: number[] = [];
  r.smmu.translate(
    { sid: 1, iova: 2 * MiB, write: false },
    () => at.push(r.sim.now - t0),
  );
  r.smmu.translate(
    { sid: 1, iova: 4 * MiB, write: false },
    () => at.push(r.sim.now - t0),
  );
  // The same page as the second walk, which waits for the walker.
  r.smmu.translate(
    { sid: 1, iova: 4 * MiB + 0x10, write: false },
    () => at.push(r.sim.now - t0),
  );
  r.sim.run();
  assert.equal(at[1], at[2], "the hit is delivered with its walk");
  assert.equal(r.smmu.stats.iotlbHitWaits, 1);
  assert.ok(
    at[2]! > r.costs["smmu.iotlbLookup"] + 2 * r.costs["smmu.walkRead"],
  );
});

Deno.test("SlotPool: starts and waits as a FIFO multi-server queue over the multiset of free times", async () => {
  const { SlotPool } = await import("../../lib/smmu/_caches.ts");
  const fc = (await import("fast-check")).default;
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 9 }),
    fc.array(
      fc.tuple(
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 0, max: 80 }),
      ),
      { maxLength: 200 },
    ),
    (n, ops) => {
      const pool = new SlotPool(n);
      // The reference: every server's free time, the one free first taken.
      const free = new Array<number>(n).fill(0);
      let now = 0, waits = 0, waitNs = 0;
      for (const [gap, busy] of ops) {
        now += gap;
        const k = free.indexOf(Math.min(...free));
        const start = Math.max(now, free[k]!);
        if (free[k]! > now) {
          waits++;
          waitNs += free[k]! - now;
        }
        free[k] = start + busy;
        assert.equal(pool.start(now), start);
        pool.hold(start + busy);
      }
      assert.deepEqual([pool.waits, pool.waitNs], [waits, waitNs]);
    },
  ));
});
