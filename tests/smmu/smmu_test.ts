import { IopfLabError } from "../../lib/sim/errors.ts";
import assert from "node:assert/strict";
import { type IoPgtable, newWalkResult } from "../../lib/pgtable/mod.ts";
import { PlatformDevice } from "../../lib/device/mod.ts";
import type { DmaResult } from "../../lib/device/mod.ts";
import {
  C_BAD_CD,
  C_BAD_STE,
  C_BAD_STREAMID,
  C_BAD_SUBSTREAMID,
  type Cd,
  CLASS_CD,
  CLASS_IN,
  CLASS_TT,
  CMD_ATC_INV,
  CMD_CFGI_STE,
  CMD_RESUME,
  CMD_STALL_TERM,
  CMD_SYNC,
  CMD_TLBI_NH_ALL,
  CMD_TLBI_S2_IPA,
  type Command,
  F_BAD_ATS_TREQ,
  F_CD_FETCH,
  F_PERMISSION,
  F_TRANSLATION,
  PRG_RESP_FAILURE,
  PRG_RESP_SUCCESS,
  type PriEntry,
  RESUME_ABORT,
  RESUME_RETRY,
  type SmmuEndpoint,
  type StallModel,
  type Ste,
} from "../../lib/smmu/mod.ts";
import {
  drainEvents,
  hostTable,
  type Rig,
  rig,
  steS2,
  translateNow,
} from "./_helpers.ts";
import { CD_IPA, HOST_BASE, nestedRig, s1Rig, VMID } from "./_rig.ts";

const RW = 3;

function platformDma(
  r: Rig,
  sid: number,
  iova: number,
  write = true,
): { result: () => DmaResult | undefined; dev: PlatformDevice } {
  const dev = new PlatformDevice(r.sim, {
    name: `dev${sid}`,
    sid,
    smmu: r.smmu,
    costs: r.costs,
  });
  let res: DmaResult | undefined;
  dev.dma({ iova, size: 4096, write }, (x) => (res = x));
  r.sim.run();
  return { result: () => res, dev };
}

Deno.test("stage-2 stall: the DMA stalls, the record has Stall=1, S2=1 and the IPA, RESUME Retry completes it", () => {
  const r = rig();
  const s2 = hostTable(r.memory);
  r.smmu.writeSte(1, steS2(s2, { S2S: true }));
  const { result, dev } = platformDma(r, 1, 0x40_0000);
  assert.equal(result(), undefined, "the transaction is held");
  assert.equal(r.smmu.stalledCount, 1);
  const [ev, ...rest] = drainEvents(r.smmu);
  assert.equal(rest.length, 0);
  assert.equal(ev!.ID, F_TRANSLATION);
  assert.ok(ev!.Stall && ev!.S2);
  assert.equal(ev!.IPA, 0x40_0000);
  assert.equal(ev!.CLASS, CLASS_IN);
  assert.equal(ev!.RnW, false);
  assert.equal(ev!.StreamID, 1);
  s2.map(0x40_0000, 0x1_0000_0000, 4096, RW);
  const seen: number[] = [];
  dev.onAccess = (_iova, pa) => seen.push(pa);
  r.smmu.submit([{
    opcode: CMD_RESUME,
    SID: 1,
    STAG: ev!.STAG,
    Resp: RESUME_RETRY,
  }]);
  r.sim.run();
  assert.equal(result()?.ok, true);
  assert.equal(result()?.bytes, 4096);
  assert.deepEqual(seen, [0x1_0000_0000]);
  assert.equal(r.smmu.stats.resumes, 1);
  assert.equal(r.smmu.stats.retries, 1);
  assert.equal(dev.faultLatency.count, 1);
});

Deno.test("RESUME Abort gives the device an error", () => {
  const r = rig();
  const s2 = hostTable(r.memory);
  r.smmu.writeSte(1, steS2(s2, { S2S: true }));
  const { result, dev } = platformDma(r, 1, 0x40_0000);
  const [ev] = drainEvents(r.smmu);
  r.smmu.submit([{
    opcode: CMD_RESUME,
    SID: 1,
    STAG: ev!.STAG,
    Resp: RESUME_ABORT,
  }]);
  r.sim.run();
  assert.equal(result()?.ok, false);
  assert.equal(result()?.error, "fault");
  assert.equal(dev.stats.dmaErrors, 1);
  assert.equal(r.smmu.stalledCount, 0);
});

Deno.test("RESUME for another stream's STAG is ignored", () => {
  const r = rig();
  const s2 = hostTable(r.memory);
  r.smmu.writeSte(1, steS2(s2, { S2S: true }));
  const { result } = platformDma(r, 1, 0x1000);
  const [ev] = drainEvents(r.smmu);
  r.smmu.submit([{
    opcode: CMD_RESUME,
    SID: 2,
    STAG: ev!.STAG,
    Resp: RESUME_ABORT,
  }]);
  r.sim.run();
  assert.equal(result(), undefined);
  assert.equal(r.smmu.stalledCount, 1);
});

Deno.test("several stalls of one stream get their own STAGs; STALL_TERM terminates them all", () => {
  const r = rig();
  const s2 = hostTable(r.memory);
  r.smmu.writeSte(1, steS2(s2, { S2S: true }));
  const results: boolean[] = [];
  for (const iova of [0x1000, 0x2000, 0x3000]) {
    r.smmu.translate({ sid: 1, iova, write: false }, (x) => results.push(x.ok));
  }
  r.sim.run();
  const tags = drainEvents(r.smmu).map((e) => e.STAG);
  assert.equal(new Set(tags).size, 3);
  assert.deepEqual(r.smmu.stalledTags(1).sort(), tags.sort());
  r.smmu.submit([{ opcode: CMD_STALL_TERM, SID: 1 }]);
  r.sim.run();
  assert.deepEqual(results, [false, false, false]);
  assert.equal(r.smmu.stats.stallsTerminated, 3);
});

Deno.test("a non-stalled recorded fault writes an event and terminates; S2R=0 terminates silently", () => {
  const r = rig();
  const s2 = hostTable(r.memory);
  r.smmu.writeSte(1, steS2(s2));
  r.smmu.writeSte(2, steS2(s2, { S2R: false }));
  const a = translateNow(r, { sid: 1, iova: 0x5000, write: true });
  assert.ok(
    a && !a.ok && a.eventId === F_TRANSLATION && a.stage === 2 && a.recorded,
  );
  const b = translateNow(r, { sid: 2, iova: 0x5000, write: true });
  assert.ok(b && !b.ok && !b.recorded);
  const evs = drainEvents(r.smmu);
  assert.equal(evs.length, 1);
  assert.ok(!evs[0]!.Stall);
});

Deno.test("permission faults: a read-only page refuses a write", () => {
  const r = rig();
  const s2 = hostTable(r.memory);
  s2.map(0x1000, 0x9000, 0x1000, 1);
  r.smmu.writeSte(1, steS2(s2));
  assert.equal(
    translateNow(r, { sid: 1, iova: 0x1000, write: false })?.ok,
    true,
  );
  const w = translateNow(r, { sid: 1, iova: 0x1000, write: true });
  assert.ok(w && !w.ok && w.eventId === F_PERMISSION);
});

Deno.test("illegal STEs give C_BAD_STE and abort the transaction", async (t) => {
  const cases: [string, StallModel, (s2: IoPgtable) => Ste, boolean?][] = [
    ["V=0", "supported", (s2) => ({ ...steS2(s2), V: false })],
    [
      "stall requested, STALL_MODEL unsupported",
      "unsupported",
      (s2) => steS2(s2, { S2S: true }),
    ],
    [
      "stall not set, STALL_MODEL forced",
      "forced",
      (s2) => steS2(s2, { S2S: false }),
    ],
    [
      "S2S with EATS enabled",
      "supported",
      (s2) => steS2(s2, { S2S: true, EATS: 1 }),
    ],
    ["EATS=2 outside nesting", "supported", (s2) => steS2(s2, { EATS: 2 })],
    ["S1STALLD with stall forced", "forced", () => ({
      V: true,
      Config: 5,
      S1ContextPtr: 0x1000,
      S1CDMax: 0,
      S1STALLD: true,
    })],
    ["nested without stage 1", "supported", (s2) => ({
      ...steS2(s2),
      Config: 7,
      S1ContextPtr: 0x1000,
      S1CDMax: 0,
      S1STALLD: false,
    }), true],
  ];
  for (const [name, model, make, noS1] of cases) {
    await t.step(name, () => {
      const r = rig({ stallModel: model, ...(noS1 ? { s1: false } : {}) });
      const s2 = hostTable(r.memory);
      r.smmu.writeSte(1, make(s2));
      const res = translateNow(r, { sid: 1, iova: 0, write: false });
      assert.ok(res && !res.ok && res.eventId === C_BAD_STE && res.abort);
      assert.equal(drainEvents(r.smmu)[0]?.ID, C_BAD_STE);
    });
  }
  await t.step(
    "a StreamID beyond the stream table gives C_BAD_STREAMID",
    () => {
      const r = rig({ sidBits: 4 });
      const res = translateNow(r, { sid: 16, iova: 0, write: false });
      assert.ok(res && !res.ok && res.eventId === C_BAD_STREAMID);
    },
  );
});

/** The shared stage-1 rig with a stall model, CD fields and STE.S1STALLD. */
function s1With(model: StallModel, cd: Partial<Cd>, stalld = false) {
  return s1Rig({ smmu: { stallModel: model }, cd, ste: { S1STALLD: stalld } });
}

Deno.test("illegal CDs give C_BAD_CD", async (t) => {
  const cases: [string, StallModel, Partial<Cd>, boolean][] = [
    ["CD.S with stalls unsupported", "unsupported", { S: true }, false],
    ["CD.S=0 with stalls forced", "forced", { S: false }, false],
    ["CD.S with STE.S1STALLD", "supported", { S: true }, true],
    ["invalid CD", "supported", { V: false }, false],
    ["64 KiB granule", "supported", { TG0: 1 }, false],
  ];
  for (const [name, model, cd, stalld] of cases) {
    await t.step(name, () => {
      const { r } = s1With(model, cd, stalld);
      const res = translateNow(r, { sid: 1, iova: 0, write: false });
      assert.ok(res && !res.ok && res.eventId === C_BAD_CD);
    });
  }
  await t.step("a missing CD table gives F_CD_FETCH", () => {
    const { r } = s1Rig();
    r.smmu.writeSte(1, {
      V: true,
      Config: 5,
      S1ContextPtr: 0xdead000,
      S1CDMax: 0,
      S1STALLD: false,
    });
    r.smmu.submit([{ opcode: CMD_CFGI_STE, SID: 1 }, { opcode: CMD_SYNC }]);
    const res = translateNow(r, { sid: 1, iova: 0, write: false });
    assert.ok(res && !res.ok && res.eventId === F_CD_FETCH);
  });
  await t.step(
    "a SubstreamID without substreams gives C_BAD_SUBSTREAMID",
    () => {
      const { r } = s1Rig();
      const res = translateNow(r, { sid: 1, ssid: 1, iova: 0, write: false });
      assert.ok(res && !res.ok && res.eventId === C_BAD_SUBSTREAMID);
    },
  );
});

Deno.test("stage-1 stall (CD.S) and RAZ/WI termination (CD.A=0)", () => {
  const a = s1Rig({ cd: { S: true } });
  const stalled = translateNow(a.r, { sid: 1, iova: 0x3000, write: false });
  assert.equal(stalled, undefined);
  const ev = drainEvents(a.r.smmu)[0]!;
  assert.ok(ev.Stall && !ev.S2 && ev.InputAddr === 0x3000);
  const b = s1Rig({ cd: { A: false, R: false } });
  const res = translateNow(b.r, { sid: 1, iova: 0x3000, write: false });
  assert.ok(res && !res.ok && !res.abort && !res.recorded);
});

Deno.test("after unmap + TLBI + SYNC the next DMA faults; without the TLBI the cached entry still translates", () => {
  const r = rig();
  const s2 = hostTable(r.memory);
  s2.map(0x20_0000, 0x8000_0000, 0x1000, RW);
  r.smmu.writeSte(1, steS2(s2));
  const first = translateNow(r, { sid: 1, iova: 0x20_0010, write: true });
  assert.ok(first?.ok && first.pa === 0x8000_0010);
  assert.equal(r.smmu.stats.iotlbMisses, 1);
  s2.unmap(0x20_0000, 0x1000);
  const stale = translateNow(r, { sid: 1, iova: 0x20_0020, write: true });
  assert.ok(
    stale?.ok && stale.pa === 0x8000_0020,
    "stale IOTLB entry still works",
  );
  assert.equal(r.smmu.stats.iotlbHits, 1);
  let synced = false;
  r.smmu.submit([
    {
      opcode: CMD_TLBI_S2_IPA,
      VMID: 1,
      Address: 0x20_0000,
      TG: 1,
      NUM: 0,
      SCALE: 0,
      Leaf: true,
    },
    { opcode: CMD_SYNC },
  ], () => (synced = true));
  r.sim.run();
  assert.ok(synced);
  assert.equal(r.smmu.stats.tlbEntriesInvalidated, 1);
  const after = translateNow(r, { sid: 1, iova: 0x20_0020, write: true });
  assert.ok(after && !after.ok && after.eventId === F_TRANSLATION);
});

Deno.test("a cached STE stays in use until CMD_CFGI_STE", () => {
  const r = rig();
  const s2 = hostTable(r.memory);
  s2.map(0, 0x10_0000, 0x1000, RW);
  r.smmu.writeSte(1, steS2(s2));
  assert.equal(translateNow(r, { sid: 1, iova: 0, write: false })?.ok, true);
  r.smmu.writeSte(1, { V: true, Config: 0 });
  assert.equal(translateNow(r, { sid: 1, iova: 0, write: false })?.ok, true);
  r.smmu.submit([{ opcode: CMD_CFGI_STE, SID: 1, Leaf: true }, {
    opcode: CMD_SYNC,
  }]);
  r.sim.run();
  const res = translateNow(r, { sid: 1, iova: 0, write: false });
  assert.ok(res && !res.ok && res.eventId === 0, "Config=abort: silent abort");
  assert.equal(drainEvents(r.smmu).length, 0);
});

Deno.test("translation time: a miss pays STE fetch and walk reads, a hit only the lookup", () => {
  const r = rig();
  const s2 = hostTable(r.memory);
  s2.map(0, 0x10_0000, 0x1000, RW);
  r.smmu.writeSte(1, steS2(s2));
  const t0 = r.sim.now;
  translateNow(r, { sid: 1, iova: 0, write: false });
  const c = r.costs;
  assert.equal(
    r.sim.now - t0,
    c["smmu.cfgFetch"] + c["smmu.iotlbLookup"] + 4 * c["smmu.walkRead"],
  );
  assert.equal(r.smmu.stats.walkReads, 4);
  const t1 = r.sim.now;
  translateNow(r, { sid: 1, iova: 8, write: false });
  assert.equal(r.sim.now - t1, c["smmu.iotlbLookup"]);
});

// ---------------------------------------------------------------------------
// Nested

Deno.test("nested translation: stage 1 then stage 2, then a combined IOTLB hit", () => {
  const { r, s1 } = nestedRig();
  s1.map(0x7000_0000, 0x20_0000, 0x1000, RW);
  const res = translateNow(r, { sid: 2, iova: 0x7000_0123, write: true });
  assert.ok(res?.ok && res.pa === HOST_BASE + 0x20_0123);
  // 4 stage-1 reads, each after a stage-2 translation of its IPA, plus the output IPA.
  assert.ok(r.smmu.stats.walkReads >= 4 + 4);
  const hits = r.smmu.stats.iotlbHits;
  const again = translateNow(r, { sid: 2, iova: 0x7000_0456, write: false });
  assert.ok(again?.ok && again.pa === HOST_BASE + 0x20_0456);
  assert.equal(r.smmu.stats.iotlbHits, hits + 1);
});

Deno.test("nested: a stage-1 fault reports S2=0", () => {
  const { r } = nestedRig();
  const res = translateNow(r, { sid: 2, iova: 0x7000_0000, write: false });
  assert.ok(res && !res.ok && res.eventId === F_TRANSLATION && res.stage === 1);
  const ev = drainEvents(r.smmu)[0]!;
  assert.ok(!ev.S2 && ev.CLASS === CLASS_IN && ev.InputAddr === 0x7000_0000);
});

Deno.test("nested: a stage-2 fault on the output IPA reports S2=1, CLASS=IN and the IPA", () => {
  const { r, s1 } = nestedRig();
  s1.map(0x7000_0000, 0x4000_0000, 0x1000, RW); // IPA beyond guest RAM
  const res = translateNow(r, { sid: 2, iova: 0x7000_0010, write: true });
  assert.ok(res && !res.ok && res.stage === 2);
  const ev = drainEvents(r.smmu)[0]!;
  assert.ok(ev.S2 && ev.CLASS === CLASS_IN);
  assert.equal(ev.IPA, 0x4000_0000);
  assert.equal(ev.InputAddr, 0x7000_0010);
});

Deno.test("nested: a stage-2 fault on a stage-1 descriptor fetch reports S2=1, CLASS=TT and the descriptor's IPA", () => {
  const { r, s1, s2 } = nestedRig({ ste: { S2S: true } });
  s1.map(0x7000_0000, 0x20_0000, 0x1000, RW);
  const w = s1.walk(0x7000_0000, newWalkResult());
  const leafTablePage = Math.floor(w.descAddrs[3]! / 4096) * 4096;
  s2.unmap(leafTablePage, 4096);
  const res = translateNow(r, { sid: 2, iova: 0x7000_0000, write: false });
  assert.equal(res, undefined, "stage-2 faults stall (STE.S2S)");
  const ev = drainEvents(r.smmu)[0]!;
  assert.ok(ev.Stall && ev.S2 && ev.CLASS === CLASS_TT);
  assert.equal(ev.IPA, leafTablePage);
  // Host maps the table page back and retries: the walk completes.
  s2.map(leafTablePage, HOST_BASE + leafTablePage, 4096, RW);
  let ok = false;
  r.smmu.submit([{
    opcode: CMD_RESUME,
    SID: 2,
    STAG: ev.STAG,
    Resp: RESUME_RETRY,
  }]);
  r.smmu.translate(
    { sid: 2, iova: 0x7000_0000, write: false },
    (x) => (ok = x.ok),
  );
  r.sim.run();
  assert.ok(ok);
});

Deno.test("nested: the CD fetch goes through stage 2 (S2=1, CLASS=CD)", () => {
  const { r, s2 } = nestedRig();
  s2.unmap(CD_IPA, 4096);
  const res = translateNow(r, { sid: 2, iova: 0, write: false });
  assert.ok(res && !res.ok && res.stage === 2);
  const ev = drainEvents(r.smmu)[0]!;
  assert.ok(ev.S2 && ev.CLASS === CLASS_CD && ev.IPA === CD_IPA);
});

Deno.test("nested: TLBI_S2_IPA leaves combined entries; TLBI_NH_ALL removes them", () => {
  const { r, s1, s2 } = nestedRig();
  s1.map(0x7000_0000, 0x20_0000, 0x1000, RW);
  assert.equal(
    translateNow(r, { sid: 2, iova: 0x7000_0000, write: false })?.ok,
    true,
  );
  s2.unmap(0x20_0000, 0x1000);
  r.smmu.submit([
    { opcode: CMD_TLBI_S2_IPA, VMID, Address: 0x20_0000 },
    { opcode: CMD_SYNC },
  ]);
  r.sim.run();
  assert.equal(
    translateNow(r, { sid: 2, iova: 0x7000_0000, write: false })?.ok,
    true,
  );
  r.smmu.submit([{ opcode: CMD_TLBI_NH_ALL, VMID }, { opcode: CMD_SYNC }]);
  r.sim.run();
  const res = translateNow(r, { sid: 2, iova: 0x7000_0000, write: false });
  assert.ok(res && !res.ok && res.stage === 2);
});

// ---------------------------------------------------------------------------
// Queues

Deno.test("event queue overflow: records are lost, the queue keeps going, the flag waits for an ack", () => {
  const r = rig({ evtqLog2: 1 });
  r.smmu.writeSte(1, { V: false, Config: 0 });
  for (let i = 0; i < 3; i++) {
    translateNow(r, { sid: 1, iova: i * 4096, write: false });
  }
  assert.equal(r.smmu.evtq.length, 2);
  assert.ok(r.smmu.evtqOverflowPending);
  assert.equal(r.smmu.stats.evtqOverflows, 1);
  assert.equal(r.smmu.stats.evtqLost, 1);
  r.smmu.readEvent();
  translateNow(r, { sid: 1, iova: 0x9000, write: false });
  assert.equal(
    r.smmu.evtq.length,
    2,
    "a new record is written while unacknowledged",
  );
  translateNow(r, { sid: 1, iova: 0xa000, write: false });
  assert.equal(
    r.smmu.stats.evtqOverflows,
    1,
    "no second condition before the ack",
  );
  r.smmu.ackEvtqOverflow();
  assert.ok(!r.smmu.evtqOverflowPending);
});

Deno.test("stall records are never lost: they wait for event queue space", () => {
  const r = rig({ evtqLog2: 0 });
  const s2 = hostTable(r.memory);
  r.smmu.writeSte(1, steS2(s2, { S2S: true }));
  translateNow(r, { sid: 1, iova: 0x1000, write: false });
  translateNow(r, { sid: 1, iova: 0x2000, write: false });
  assert.equal(r.smmu.evtq.length, 1);
  assert.ok(!r.smmu.evtqOverflowPending);
  const a = r.smmu.readEvent()!.record;
  const b = r.smmu.readEvent()!.record;
  assert.deepEqual([a.InputAddr, b.InputAddr], [0x1000, 0x2000]);
  assert.ok(a.Stall && b.Stall && a.STAG !== b.STAG);
});

class FakeEndpoint implements SmmuEndpoint {
  responses: [number, number, number][] = [];
  invalidations: [number, number, number][] = [];
  delay = 0;
  constructor(private readonly r: Rig) {}
  prgResponse(ssid: number, idx: number, code: number): void {
    this.responses.push([ssid, idx, code]);
  }
  atcInvalidate(
    ssid: number,
    addr: number,
    log2: number,
    done: () => void,
  ): void {
    this.invalidations.push([ssid, addr, log2]);
    this.r.sim.after(this.delay, done);
  }
  atcInvalidateBlocking(ssid: number, addr: number, log2: number): number {
    this.invalidations.push([ssid, addr, log2]);
    return this.delay;
  }
}

function pri(over: Partial<PriEntry>): PriEntry {
  return {
    StreamID: 1,
    SubstreamID: 0,
    SSV: false,
    PRIV: false,
    EXEC: false,
    READ: true,
    WRITE: false,
    LAST: false,
    PRGIndex: 0,
    Address: 0,
    ...over,
  };
}

Deno.test("PRI queue overflow auto-answers LAST=1 requests and drops LAST=0 ones", () => {
  const r = rig({ priqLog2: 1 });
  const s2 = hostTable(r.memory);
  r.smmu.writeSte(1, steS2(s2, { EATS: 1 }));
  const ep = new FakeEndpoint(r);
  r.smmu.attachEndpoint(1, ep);
  let irqs = 0;
  r.smmu.onPriqIrq = () => irqs++;
  r.smmu.pageRequest(pri({ PRGIndex: 1, Address: 0x1000 }));
  r.smmu.pageRequest(pri({ PRGIndex: 1, Address: 0x2000, LAST: true }));
  assert.equal(irqs, 2);
  r.smmu.pageRequest(pri({ PRGIndex: 2, Address: 0x3000 })); // LAST=0: dropped
  assert.ok(r.smmu.priqOverflowPending);
  r.smmu.pageRequest(pri({ PRGIndex: 2, Address: 0x4000, LAST: true })); // auto Success
  r.smmu.pageRequest(
    pri({ PRGIndex: 0, SSV: true, SubstreamID: 4, LAST: true, READ: false }),
  ); // stop marker
  assert.deepEqual(ep.responses, [[-1, 2, PRG_RESP_SUCCESS]]);
  // The overflow condition inhibits writes even once space frees.
  r.smmu.readPri();
  r.smmu.pageRequest(pri({ PRGIndex: 3, LAST: true }));
  assert.equal(r.smmu.priq.length, 1);
  assert.equal(ep.responses.length, 2);
  r.smmu.ackPriqOverflow();
  r.smmu.pageRequest(pri({ PRGIndex: 4, LAST: true }));
  assert.equal(r.smmu.priq.length, 2);
  assert.equal(r.smmu.stats.priqOverflows, 1);
  assert.equal(r.smmu.stats.priqDropped, 4);
  assert.equal(r.smmu.stats.priAutoResponses, 2);
});

Deno.test("PRI overflow answers Failure when the STE cannot be read", () => {
  const r = rig({ priqLog2: 0 });
  const ep = new FakeEndpoint(r);
  r.smmu.attachEndpoint(7, ep);
  r.smmu.pageRequest(pri({ StreamID: 7 }));
  r.smmu.pageRequest(
    pri({ StreamID: 7, PRGIndex: 9, LAST: true, SSV: true, SubstreamID: 3 }),
  );
  assert.deepEqual(ep.responses, [[-1, 9, PRG_RESP_FAILURE]]);
});

Deno.test("CMD_SYNC completes only after the ATC invalidations before it", () => {
  const r = rig();
  const ep = new FakeEndpoint(r);
  ep.delay = 50_000;
  r.smmu.attachEndpoint(1, ep);
  let doneAt = -1;
  r.smmu.submit([
    {
      opcode: CMD_ATC_INV,
      SID: 1,
      SSID: 2,
      SSV: true,
      Address: 0x5000,
      Size: 0,
    },
    { opcode: CMD_SYNC },
  ], () => (doneAt = r.sim.now));
  r.sim.run();
  assert.deepEqual(ep.invalidations, [[2, 0x5000, 0]]);
  assert.ok(doneAt >= 50_000 + r.costs["smmu.cmdSync"]);
});

Deno.test("commands cost issue, process and sync time, in order across submissions", () => {
  const r = rig();
  const order: string[] = [];
  r.smmu.submit(
    [{ opcode: CMD_TLBI_NH_ALL, VMID: 1 }, { opcode: CMD_SYNC }],
    () => order.push("a"),
  );
  r.smmu.submit([{ opcode: CMD_SYNC }], () => order.push("b"));
  r.sim.run();
  assert.deepEqual(order, ["a", "b"]);
  const c = r.costs;
  // The second submission is issued while the first is processed.
  assert.equal(
    r.sim.now,
    2 * c["smmu.cmdIssue"] + 3 * c["smmu.cmdProcess"] + 2 * c["smmu.cmdSync"],
  );
  assert.equal(r.smmu.stats.commands, 3);
  assert.equal(r.smmu.stats.syncs, 2);
});

Deno.test("submitBlocking: the commands take effect before it returns, which gives the CPU's wait", async (t) => {
  const setupS2 = () => {
    const r = rig();
    const s2 = hostTable(r.memory);
    s2.map(0x20_0000, 0x8000_0000, 0x1000, RW);
    r.smmu.writeSte(1, steS2(s2));
    assert.equal(
      translateNow(r, { sid: 1, iova: 0x20_0010, write: true })?.ok,
      true,
    );
    s2.unmap(0x20_0000, 0x1000);
    return r;
  };
  const tlbi = {
    opcode: CMD_TLBI_S2_IPA,
    VMID: 1,
    Address: 0x20_0000,
    TG: 1,
    NUM: 0,
    SCALE: 0,
    Leaf: true,
  } as const;

  await t.step(
    "TLBI: the stale entry is gone at once; a CMD_SYNC is appended",
    () => {
      const r = setupS2();
      const c = r.costs;
      const t0 = r.sim.now;
      const ns = r.smmu.submitBlocking([tlbi]);
      assert.equal(r.sim.now, t0, "no simulated time passed");
      assert.equal(
        r.smmu.translateCached({ sid: 1, iova: 0x20_0010, write: true }),
        -1,
      );
      assert.equal(r.smmu.stats.tlbEntriesInvalidated, 1);
      assert.equal(r.smmu.stats.syncs, 1);
      assert.equal(
        ns,
        2 * c["smmu.cmdIssue"] + 2 * c["smmu.cmdProcess"] +
          c["smmu.tlbiPerEntry"] + c["smmu.cmdSync"],
      );
      assert.equal(r.smmu.submitBlocking([]), 0);
      const after = translateNow(r, { sid: 1, iova: 0x20_0010, write: true });
      assert.ok(after && !after.ok && after.eventId === F_TRANSLATION);
    },
  );

  await t.step("the same time as submit() takes on an idle queue", () => {
    const a = setupS2();
    let doneAt = -1;
    const t0 = a.sim.now;
    a.smmu.submit([tlbi, { opcode: CMD_SYNC }], () => (doneAt = a.sim.now));
    a.sim.run();
    const b = setupS2();
    assert.equal(
      b.smmu.submitBlocking([tlbi, { opcode: CMD_SYNC }]),
      doneAt - t0,
    );
  });

  await t.step(
    "ATC_INV: delivered at once, the CMD_SYNC waits for its completion",
    () => {
      const r = rig();
      const ep = new FakeEndpoint(r);
      ep.delay = 50_000;
      r.smmu.attachEndpoint(1, ep);
      const c = r.costs;
      const ns = r.smmu.submitBlocking([
        {
          opcode: CMD_ATC_INV,
          SID: 1,
          SSID: 2,
          SSV: true,
          Address: 0x5000,
          Size: 0,
        },
        { opcode: CMD_SYNC },
      ]);
      assert.deepEqual(ep.invalidations, [[2, 0x5000, 0]]);
      assert.equal(
        ns,
        2 * c["smmu.cmdIssue"] + c["smmu.cmdProcess"] + 50_000 +
          c["smmu.cmdSync"],
      );
      assert.equal(r.smmu.stats.atcInvalidations, 1);
      assert.equal(r.sim.pending, 0);
    },
  );

  await t.step(
    "commands already queued add their remaining time but still run later",
    () => {
      const idle = setupS2().smmu.submitBlocking([tlbi]);
      const r = setupS2();
      const c = r.costs;
      let queuedDone = false;
      r.smmu.submit(
        [{ opcode: CMD_TLBI_NH_ALL, VMID: 1 }, {
          opcode: CMD_TLBI_NH_ALL,
          VMID: 2,
        }, {
          opcode: CMD_SYNC,
        }],
        () => (queuedDone = true),
      );
      const syncs = r.smmu.stats.syncs;
      const ns = r.smmu.submitBlocking([tlbi]);
      assert.equal(
        r.smmu.stats.tlbEntriesInvalidated,
        1,
        "ours applied at once",
      );
      assert.equal(r.smmu.stats.syncs, syncs + 1);
      assert.ok(
        ns >= idle + 3 * c["smmu.cmdProcess"] + c["smmu.cmdSync"],
        `${ns} ns`,
      );
      assert.ok(!queuedDone);
      r.sim.run();
      assert.ok(queuedDone);
      assert.equal(r.smmu.stats.syncs, syncs + 2);
      // Once drained, the queue costs nothing extra.
      assert.equal(
        r.smmu.submitBlocking([{ opcode: CMD_SYNC }]),
        c["smmu.cmdIssue"] + c["smmu.cmdProcess"] + c["smmu.cmdSync"],
      );
    },
  );

  await t.step(
    "an unknown opcode (CERROR_ILL on the queue) is EINVAL before any command takes effect",
    () => {
      const r = setupS2();
      const bad = { opcode: 0x7f } as unknown as Command;
      assert.throws(
        () => r.smmu.submitBlocking([tlbi, bad]),
        (e: unknown) =>
          e instanceof IopfLabError && e.code === "EINVAL" &&
          e.where === "cmds[1]" && /CERROR_ILL/.test(e.message),
      );
      assert.equal(r.smmu.stats.tlbEntriesInvalidated, 0);
      assert.ok(
        r.smmu.translateCached({ sid: 1, iova: 0x20_0010, write: true }) >= 0,
      );
    },
  );
});

Deno.test("a full command queue makes the submitter wait", () => {
  const r = rig({ cmdqLog2: 1 });
  let done = false;
  r.smmu.submit(
    Array.from(
      { length: 6 },
      () => ({ opcode: CMD_TLBI_NH_ALL, VMID: 1 } as const),
    ),
  );
  r.smmu.submit([{ opcode: CMD_SYNC }], () => (done = true));
  r.sim.run();
  assert.ok(done);
  assert.equal(r.smmu.stats.commands, 7);
});

Deno.test("ATS translation requests never stall and need STE.EATS", () => {
  const r = rig();
  const s2 = hostTable(r.memory);
  s2.map(0x2000, 0x9000_0000, 0x1000, 1);
  r.smmu.writeSte(1, steS2(s2, { EATS: 1 }));
  r.smmu.writeSte(2, steS2(s2));
  type Answer = {
    ok: boolean;
    read: boolean;
    write: boolean;
    unsupported: boolean;
    pa: number;
  };
  const results: Record<string, Answer> = {};
  const keep = (name: string) =>
  (
    x: Answer,
  ) => (results[name] = {
    ok: x.ok,
    read: x.read,
    write: x.write,
    unsupported: x.unsupported,
    pa: x.pa,
  });
  r.smmu.atsTranslate({ sid: 1, iova: 0x2345 }, keep("mapped"));
  r.smmu.atsTranslate({ sid: 1, iova: 0x5000 }, keep("unmapped"));
  r.smmu.atsTranslate({ sid: 2, iova: 0x2345 }, keep("no EATS"));
  r.sim.run();
  assert.deepEqual(results, {
    mapped: {
      ok: true,
      read: true,
      write: false,
      unsupported: false,
      pa: 0x9000_0000,
    },
    unmapped: {
      ok: false,
      read: false,
      write: false,
      unsupported: false,
      pa: -1,
    },
    "no EATS": {
      ok: false,
      read: false,
      write: false,
      unsupported: true,
      pa: -1,
    },
  });
  const evs = drainEvents(r.smmu);
  assert.deepEqual(
    evs.map((e) => e.ID),
    [F_BAD_ATS_TREQ],
    "translation faults of ATS requests are not recorded",
  );
  assert.equal(r.smmu.stalledCount, 0);
});

Deno.test("translateCached answers IOTLB hits only, with translate()'s result", () => {
  const r = rig();
  const s2 = hostTable(r.memory);
  s2.map(0x4000, 0x9000_0000, 0x1000, 1);
  r.smmu.writeSte(1, steS2(s2));
  const read = { sid: 1, iova: 0x4321, write: false };
  assert.equal(
    r.smmu.translateCached(read),
    -1,
    "cold: the STE is not cached yet",
  );
  const slow = translateNow(r, read);
  assert.ok(slow?.ok);
  const hits = r.smmu.stats.iotlbHits;
  assert.equal(r.smmu.translateCached(read), slow.pa);
  assert.equal(r.smmu.stats.iotlbHits, hits + 1);
  assert.equal(
    r.smmu.translateCached({ ...read, write: true }),
    -1,
    "no write permission",
  );
  assert.equal(r.smmu.translateCached({ ...read, iova: 0x8000 }), -1);
  assert.equal(r.smmu.translateCached({ ...read, ssid: 1 }), -1);
  assert.equal(r.smmu.iotlbLookupNs, r.costs["smmu.iotlbLookup"]);
});
