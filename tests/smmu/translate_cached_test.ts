/**
 * Smmu.translateCached, the DMA engines' hit path, keeps a memo of the last
 * stream it resolved (VMID, ASID) so that a hit skips the STE and CD
 * lookups. The memo must never answer what the modelled caches would not:
 * each test caches a translation, makes a hit (so the memo holds the
 * stream), changes one thing the hit depends on, and checks that the next
 * hit is refused exactly when translate() would no longer hit. The CFGI and
 * configuration-cache cases leave the IOTLB entry in place, so a memo that
 * ignored them would still answer.
 */
import assert from "node:assert/strict";
import {
  CMD_CFGI_CD,
  CMD_CFGI_CD_ALL,
  CMD_CFGI_STE,
  CMD_CFGI_STE_RANGE,
  CMD_PREFETCH_CONFIG,
  CMD_TLBI_NH_ALL,
  CMD_TLBI_NH_ASID,
  CMD_TLBI_NH_VA,
  CMD_TLBI_NH_VAA,
  CMD_TLBI_NSNH_ALL,
  CMD_TLBI_S12_VMALL,
  CMD_TLBI_S2_IPA,
  type Command,
  S1DSS_SSID0,
  type SmmuStats,
  type Txn,
} from "../../lib/smmu/mod.ts";
import { hostTable, type Rig, rig, steS2, translateNow } from "./_helpers.ts";
import { CD_PTR, cdFor, HOST_BASE, nestedRig, s1Rig, steS1 } from "./_rig.ts";

const RW = 3;
const PA = 0x8000_0000;
const IOVA = 0x20_0000;

/** A stage-2 rig: SID 1 (VMID 1) maps IOVA's page to PA. */
function s2Stream(options: Parameters<typeof rig>[0] = {}) {
  const r = rig(options);
  const s2 = hostTable(r.memory);
  s2.map(IOVA, PA, 0x1000, RW);
  r.smmu.writeSte(1, steS2(s2));
  return { r, s2 };
}

/** Caches `txn` through translate() and checks that translateCached then hits with the same address. */
function warm(r: Rig, txn: Txn): number {
  const slow = translateNow(r, txn);
  assert.ok(slow?.ok, "translate() translates");
  assert.equal(r.smmu.translateCached(txn), slow.pa, "then a cached hit");
  return slow.pa;
}

/** translateCached refuses `txn` and changes no counter. */
function refused(r: Rig, txn: Txn, why: string): void {
  const before = { ...r.smmu.stats };
  assert.equal(r.smmu.translateCached(txn), -1, why);
  assert.deepEqual(r.smmu.stats, before, `${why}: no counter moved`);
}

const s2Txn: Txn = { sid: 1, ssid: -1, iova: IOVA + 0x10, write: true };

Deno.test("translateCached counts a hit exactly as translate() does", () => {
  const a = s2Stream(), b = s2Stream();
  warm(a.r, s2Txn);
  warm(b.r, s2Txn);
  const sa = { ...a.r.smmu.stats }, sb = { ...b.r.smmu.stats };
  assert.deepEqual(sa, sb);
  const pa = a.r.smmu.translateCached(s2Txn);
  const slow = translateNow(b.r, s2Txn);
  assert.ok(slow?.ok && slow.pa === pa);
  assert.deepEqual(a.r.smmu.stats, b.r.smmu.stats);
  // Stage 1 counts a CD hit as well.
  const c = s1Rig(), d = s1Rig();
  c.s1.map(IOVA, PA, 0x1000, RW);
  d.s1.map(IOVA, PA, 0x1000, RW);
  warm(c.r, s2Txn);
  warm(d.r, s2Txn);
  const cdHits = c.r.smmu.stats.cdHits;
  c.r.smmu.translateCached(s2Txn);
  translateNow(d.r, s2Txn);
  assert.equal(c.r.smmu.stats.cdHits, cdHits + 1);
  assert.deepEqual(c.r.smmu.stats, d.r.smmu.stats);
});

Deno.test("a memoised hit is dropped by every CMD_CFGI_* that covers its stream", async (t) => {
  const s2Cases: [string, Command][] = [
    ["CMD_CFGI_STE", { opcode: CMD_CFGI_STE, SID: 1, Leaf: true }],
    ["CMD_CFGI_STE_RANGE", { opcode: CMD_CFGI_STE_RANGE, SID: 0, Range: 1 }],
    ["CMD_CFGI_ALL", { opcode: CMD_CFGI_STE_RANGE, SID: 0, Range: 31 }],
  ];
  for (const [name, cmd] of s2Cases) {
    await t.step(name, () => {
      const { r } = s2Stream();
      warm(r, s2Txn);
      const entries = r.smmu.iotlb.valid;
      r.smmu.submitBlocking([cmd]);
      assert.equal(r.smmu.iotlb.valid, entries, "the IOTLB entry stays");
      refused(r, s2Txn, `after ${name}`);
      // The STE is fetched again; the hit path works again.
      assert.equal(warm(r, s2Txn), PA + 0x10);
    });
  }
  const s1Cases: [string, Command][] = [
    ["CMD_CFGI_CD", { opcode: CMD_CFGI_CD, SID: 1, SSID: 0, Leaf: true }],
    ["CMD_CFGI_CD_ALL", { opcode: CMD_CFGI_CD_ALL, SID: 1 }],
    ["CMD_CFGI_STE (stage 1)", { opcode: CMD_CFGI_STE, SID: 1 }],
  ];
  for (const [name, cmd] of s1Cases) {
    await t.step(name, () => {
      const { r, s1 } = s1Rig();
      s1.map(IOVA, PA, 0x1000, RW);
      warm(r, s2Txn);
      r.smmu.submitBlocking([cmd]);
      refused(r, s2Txn, `after ${name}`);
      assert.equal(warm(r, s2Txn), PA + 0x10);
    });
  }
  await t.step("a CFGI of another stream leaves the hit", () => {
    const { r } = s2Stream();
    warm(r, s2Txn);
    r.smmu.submitBlocking([{ opcode: CMD_CFGI_STE, SID: 2 }]);
    assert.equal(r.smmu.translateCached(s2Txn), PA + 0x10);
  });
});

Deno.test("a memoised hit is dropped when its STE or CD leaves the configuration cache", async (t) => {
  await t.step("STE evicted by other streams' fills", () => {
    // One set of 4 ways, round robin: the fifth STE evicts the first.
    const { r, s2 } = s2Stream({ configCacheEntries: 4 });
    for (let sid = 2; sid <= 5; sid++) {
      r.smmu.writeSte(sid, steS2(s2, { S2VMID: sid }));
    }
    warm(r, s2Txn);
    const entries = r.smmu.iotlb.valid;
    for (let sid = 2; sid <= 5; sid++) {
      // An unmapped page: the STE is cached, the IOTLB left alone.
      translateNow(r, { sid, iova: 0, write: false });
    }
    assert.equal(r.smmu.stats.cfgEvictions, 1);
    assert.equal(r.smmu.iotlb.valid, entries, "SID 1's IOTLB entry stays");
    refused(r, s2Txn, "STE of SID 1 evicted");
    assert.equal(warm(r, s2Txn), PA + 0x10);
  });
  await t.step("STE evicted by CMD_PREFETCH_CONFIG", () => {
    const { r, s2 } = s2Stream({ configCacheEntries: 1 });
    r.smmu.writeSte(2, steS2(s2, { S2VMID: 2 }));
    warm(r, s2Txn);
    r.smmu.submitBlocking([{ opcode: CMD_PREFETCH_CONFIG, SID: 2 }]);
    refused(r, s2Txn, "STE of SID 1 evicted by the prefetch");
  });
  await t.step("CD evicted by another substream's CD", () => {
    // SID 1 with two substreams; a 2-entry cache holds the STE and one CD.
    const { r, s1 } = s1Rig({
      smmu: { configCacheEntries: 2 },
      ste: { S1CDMax: 2, S1DSS: S1DSS_SSID0 },
    });
    s1.map(IOVA, PA, 0x1000, RW);
    r.smmu.writeCd(CD_PTR, 1, cdFor(s1, { ASID: 4 }));
    r.smmu.writeCd(CD_PTR, 2, cdFor(s1, { ASID: 5 }));
    const one = { ...s2Txn, ssid: 1 };
    warm(r, one);
    translateNow(r, { ...s2Txn, ssid: 2 });
    assert.ok(r.smmu.stats.cfgEvictions >= 1);
    refused(r, one, "SID 1's configuration evicted");
  });
});

Deno.test("the memo follows the stream and substream of each transaction", () => {
  // Two stage-2 streams with their own VMIDs map the same IPA to different
  // pages; only SID 1's translation is cached.
  const { r } = s2Stream();
  const other = hostTable(r.memory);
  other.map(IOVA, PA + 0x10_0000, 0x1000, RW);
  r.smmu.writeSte(2, steS2(other, { S2VMID: 2 }));
  warm(r, s2Txn);
  refused(r, { ...s2Txn, sid: 2 }, "SID 2: its STE is not cached");
  translateNow(r, { sid: 2, iova: 0x5000, write: false }); // STE 2 cached, page not
  assert.equal(r.smmu.translateCached(s2Txn), PA + 0x10);
  refused(r, { ...s2Txn, sid: 2 }, "SID 2 has no IOTLB entry for the page");
  assert.equal(warm(r, { ...s2Txn, sid: 2 }), PA + 0x10_0010);
  assert.equal(r.smmu.translateCached(s2Txn), PA + 0x10);
  refused(r, { ...s2Txn, ssid: 0 }, "a SubstreamID on a stage-2 stream");
  refused(r, { ...s2Txn, sid: -1 }, "an impossible StreamID");
  r.smmu.submitBlocking([{ opcode: CMD_CFGI_STE_RANGE, SID: 0, Range: 31 }]);
  refused(r, { ...s2Txn, sid: -1 }, "an impossible StreamID, memo empty");

  // Substreams with their own ASIDs: each finds its own entries.
  const { r: q, s1 } = s1Rig({ ste: { S1CDMax: 2, S1DSS: S1DSS_SSID0 } });
  s1.map(IOVA, PA, 0x1000, RW);
  q.smmu.writeCd(CD_PTR, 1, cdFor(s1, { ASID: 4 }));
  q.smmu.writeCd(CD_PTR, 2, cdFor(s1, { ASID: 5 }));
  warm(q, { ...s2Txn, ssid: 1 });
  translateNow(q, { ...s2Txn, ssid: 2, iova: 0x10 }); // CD 2 cached, page not
  assert.equal(q.smmu.translateCached({ ...s2Txn, ssid: 1 }), PA + 0x10);
  refused(q, { ...s2Txn, ssid: 2 }, "ASID 5 has no entry for the page");
  refused(q, { ...s2Txn, ssid: -1 }, "no SubstreamID: CD 0, never cached");
  refused(q, { ...s2Txn, ssid: 0 }, "SubstreamID 0 under S1DSS = 0b10");
  refused(q, { ...s2Txn, ssid: 4 }, "beyond S1CDMax");
});

Deno.test("a memoised hit is dropped by every TLBI that covers its entry", async (t) => {
  const s2Cases: [string, Command][] = [
    ["CMD_TLBI_S2_IPA", { opcode: CMD_TLBI_S2_IPA, VMID: 1, Address: IOVA }],
    ["CMD_TLBI_S12_VMALL", { opcode: CMD_TLBI_S12_VMALL, VMID: 1 }],
    ["CMD_TLBI_NSNH_ALL", { opcode: CMD_TLBI_NSNH_ALL }],
  ];
  for (const [name, cmd] of s2Cases) {
    await t.step(`stage 2: ${name}`, () => {
      const { r } = s2Stream();
      warm(r, s2Txn);
      r.smmu.submitBlocking([cmd]);
      refused(r, s2Txn, `after ${name}`);
      assert.equal(warm(r, s2Txn), PA + 0x10, "walked and cached again");
    });
  }
  await t.step("stage 2: a TLBI of another page or VMID leaves the hit", () => {
    const { r } = s2Stream();
    warm(r, s2Txn);
    r.smmu.submitBlocking([
      { opcode: CMD_TLBI_S2_IPA, VMID: 1, Address: IOVA + 0x1000 },
      { opcode: CMD_TLBI_S12_VMALL, VMID: 2 },
      { opcode: CMD_TLBI_NH_ALL, VMID: 1 },
    ]);
    assert.equal(r.smmu.translateCached(s2Txn), PA + 0x10);
  });
  // Stage 1 without stage 2: VMID 0, ASID 3.
  const s1Cases: [string, Command][] = [
    ["CMD_TLBI_NH_VA", {
      opcode: CMD_TLBI_NH_VA,
      VMID: 0,
      ASID: 3,
      Address: IOVA,
    }],
    ["CMD_TLBI_NH_VAA", { opcode: CMD_TLBI_NH_VAA, VMID: 0, Address: IOVA }],
    ["CMD_TLBI_NH_ASID", { opcode: CMD_TLBI_NH_ASID, VMID: 0, ASID: 3 }],
    ["CMD_TLBI_NH_ALL", { opcode: CMD_TLBI_NH_ALL, VMID: 0 }],
    ["CMD_TLBI_NSNH_ALL", { opcode: CMD_TLBI_NSNH_ALL }],
  ];
  for (const [name, cmd] of s1Cases) {
    await t.step(`stage 1: ${name}`, () => {
      const { r, s1 } = s1Rig();
      s1.map(IOVA, PA, 0x1000, RW);
      warm(r, s2Txn);
      r.smmu.submitBlocking([cmd]);
      refused(r, s2Txn, `after ${name}`);
      assert.equal(warm(r, s2Txn), PA + 0x10);
    });
  }
  await t.step("stage 1: another ASID's TLBI leaves the hit", () => {
    const { r, s1 } = s1Rig();
    s1.map(IOVA, PA, 0x1000, RW);
    warm(r, s2Txn);
    r.smmu.submitBlocking([
      { opcode: CMD_TLBI_NH_ASID, VMID: 0, ASID: 4 },
      { opcode: CMD_TLBI_NH_VA, VMID: 0, ASID: 3, Address: IOVA + 0x1000 },
    ]);
    assert.equal(r.smmu.translateCached(s2Txn), PA + 0x10);
  });
  // Nested: the combined entry (VMID 5, ASID 9).
  const nestedCases: [string, Command][] = [
    ["CMD_TLBI_NH_VA", {
      opcode: CMD_TLBI_NH_VA,
      VMID: 5,
      ASID: 9,
      Address: IOVA,
    }],
    ["CMD_TLBI_NH_ALL", { opcode: CMD_TLBI_NH_ALL, VMID: 5 }],
    ["CMD_TLBI_S12_VMALL", { opcode: CMD_TLBI_S12_VMALL, VMID: 5 }],
  ];
  for (const [name, cmd] of nestedCases) {
    await t.step(`nested: ${name}`, () => {
      const { r, s1 } = nestedRig();
      s1.map(IOVA, 0x10_0000, 0x1000, RW);
      const txn = { ...s2Txn, sid: 2 };
      assert.equal(warm(r, txn), HOST_BASE + 0x10_0010);
      r.smmu.submitBlocking([cmd]);
      refused(r, txn, `after ${name}`);
      assert.equal(warm(r, txn), HOST_BASE + 0x10_0010);
    });
  }
});

Deno.test("table changes reach the hit path only after their invalidation, as on hardware", async (t) => {
  await t.step("stage 2 unmap and remap", () => {
    const { r, s2 } = s2Stream();
    warm(r, s2Txn);
    s2.unmap(IOVA, 0x1000);
    s2.map(IOVA, PA + 0x5000, 0x1000, 1); // read-only, elsewhere
    assert.equal(
      r.smmu.translateCached(s2Txn),
      PA + 0x10,
      "the stale IOTLB entry still answers, with its old permissions",
    );
    r.smmu.submitBlocking([{
      opcode: CMD_TLBI_S2_IPA,
      VMID: 1,
      Address: IOVA,
    }]);
    refused(r, s2Txn, "after the TLBI");
    const read = { ...s2Txn, write: false };
    assert.equal(warm(r, read), PA + 0x5010, "the new mapping");
    refused(r, s2Txn, "the new mapping is read-only");
  });
  await t.step("stage 1 unmap", () => {
    const { r, s1 } = s1Rig();
    s1.map(IOVA, PA, 0x1000, RW);
    warm(r, s2Txn);
    s1.unmap(IOVA, 0x1000);
    assert.equal(r.smmu.translateCached(s2Txn), PA + 0x10, "stale entry");
    r.smmu.submitBlocking([{
      opcode: CMD_TLBI_NH_VA,
      VMID: 0,
      ASID: 3,
      Address: IOVA,
    }]);
    refused(r, s2Txn, "after the TLBI");
    const res = translateNow(r, s2Txn);
    assert.ok(res && !res.ok, "now it faults");
  });
  await t.step("an STE rewritten without CMD_CFGI_STE", () => {
    const { r } = s2Stream();
    warm(r, s2Txn);
    r.smmu.writeSte(1, steS1()); // not yet seen: the cached STE is used
    assert.equal(r.smmu.translateCached(s2Txn), PA + 0x10);
    r.smmu.submitBlocking([{ opcode: CMD_CFGI_STE, SID: 1 }]);
    refused(r, s2Txn, "after CMD_CFGI_STE the STE is not cached");
  });
});

Deno.test("counters of a refused cached translation stay as they were", () => {
  const { r } = s2Stream();
  warm(r, s2Txn);
  const keys = Object.keys(r.smmu.stats) as (keyof SmmuStats)[];
  assert.ok(keys.length > 30);
  refused(r, { ...s2Txn, iova: IOVA + 0x1000 }, "another page");
  refused(r, { ...s2Txn, sid: 3 }, "an STE never cached");
});
