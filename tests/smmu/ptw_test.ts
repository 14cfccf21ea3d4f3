/**
 * The table walker's faults against the architecture: the access flag and
 * its hardware update (IHI0070 3.13, F_ACCESS 0x12 in 7.3), and the order
 * in which a transaction's possible faults are reported.
 *
 * Fault order, as modelled and tested here. IHI0070 7.2: "Any incoming
 * transaction might cause at most one event report which might be a
 * configuration error or, if configuration is all valid, one of several
 * kinds of translation fault". Configuration is checked first, in the
 * order the architecture lists for a transaction's configuration (3.9.1.3:
 * C_BAD_STREAMID, F_STE_FETCH, C_BAD_STE, ..., C_BAD_SUBSTREAMID,
 * F_STREAM_DISABLED, the CD fetch with its stage-2 translation, F_CD_FETCH,
 * C_BAD_CD), then the walk. Within one stage the walk reports faults in the
 * Arm ARM's order (DDI0487, the VMSAv8-64 walk and its fault
 * prioritisation): an external abort on a descriptor read (F_WALK_EABT),
 * an invalid descriptor (F_TRANSLATION), an output address beyond the
 * output size (F_ADDR_SIZE), AF = 0 without hardware update (F_ACCESS),
 * then permission (F_PERMISSION). In a nested walk the stage-2 faults of
 * stage-1 descriptor fetches come as each descriptor is fetched, and the
 * stage-1 leaf's own faults come before the stage-2 translation of its
 * output (3.9.1.2: that translation "is not architecturally performed
 * unless the descriptor is valid and no fault would arise from the
 * descriptor").
 */
import assert from "node:assert/strict";
import {
  C_BAD_CD,
  C_BAD_STE,
  C_BAD_STREAMID,
  C_BAD_SUBSTREAMID,
  CLASS_CD,
  CLASS_IN,
  CLASS_TT,
  type EventRecord,
  F_ACCESS,
  F_ADDR_SIZE,
  F_PERMISSION,
  F_STREAM_DISABLED,
  F_TRANSLATION,
  F_WALK_EABT,
  S1DSS_TERMINATE,
  type TxnFault,
} from "../../lib/smmu/mod.ts";
import { newWalkResult } from "../../lib/pgtable/mod.ts";
import {
  drainEvents,
  hostTable,
  type Rig,
  rig,
  steS2,
  translateNow,
} from "./_helpers.ts";
import { CD_PTR, cdFor, HOST_BASE, nestedRig, s1Rig, steS1 } from "./_rig.ts";

const RO = 1, RW = 3;

/** Translates and expects a fault; returns it with the one event recorded. */
function faultOf(
  r: Rig,
  sid: number,
  iova: number,
  write = false,
  ssid = -1,
): { f: TxnFault; ev: EventRecord | undefined } {
  const res = translateNow(r, { sid, ssid, iova, write });
  assert.ok(res && !res.ok, `expected a fault at ${iova.toString(16)}`);
  const evs = drainEvents(r.smmu);
  assert.ok(evs.length <= 1, "at most one event per transaction (7.2)");
  return { f: res, ev: evs[0] };
}

// ---------------------------------------------------------------------------
// The access flag (IHI0070 3.13)

Deno.test("IHI0070 3.13 / 7.3 F_ACCESS (0x12): a stage-1 leaf with AF = 0 and no hardware update (CD.HA = 0) faults at stage 1 with the transaction's fields, is not cached, and follows CD.A/R/S", () => {
  const { r, s1 } = s1Rig();
  s1.map(0x4000, 0x9000_4000, 0x1000, RW);
  s1.setAccessFlag(0x4000, false); // a guest OS tracking accesses
  const { f, ev } = faultOf(r, 1, 0x4567, true);
  assert.equal(f.eventId, F_ACCESS);
  assert.equal(f.stage, 1);
  assert.ok(f.abort && f.recorded);
  assert.ok(ev);
  assert.equal(ev.ID, F_ACCESS);
  assert.equal(ev.S2, false);
  assert.equal(ev.CLASS, CLASS_IN);
  assert.equal(ev.InputAddr, 0x4567);
  assert.equal(ev.RnW, false);
  assert.equal(ev.StreamID, 1);
  assert.equal(r.smmu.iotlb.lookup(0, 3, 0x4000), -1, "not cached");
  assert.equal(r.smmu.stats.afUpdates, 0);
  // A translation-related fault (3.12): with CD.S = 1 it stalls.
  const st = s1Rig({ cd: { S: true } });
  st.s1.map(0x4000, 0x9000_4000, 0x1000, RW);
  st.s1.setAccessFlag(0x4000, false);
  let done = false;
  st.r.smmu.translate(
    { sid: 1, iova: 0x4000, write: false },
    () => done = true,
  );
  st.r.sim.run();
  assert.ok(!done && st.r.smmu.stalledCount === 1);
  const rec = drainEvents(st.r.smmu);
  assert.ok(rec.length === 1 && rec[0]!.ID === F_ACCESS && rec[0]!.Stall);
});

Deno.test("IHI0070 3.13 HTTU: with SMMU_IDR0.HTTU and CD.HA = 1 the walker sets AF (one more descriptor access) instead of faulting; HA is IGNORED without HTTU", () => {
  const on = s1Rig({ cd: { HA: true } });
  on.s1.map(0x4000, 0x9000_4000, 0x1000, RW);
  on.s1.setAccessFlag(0x4000, false);
  const c = on.r.costs;
  const t0 = on.r.sim.now;
  const ok = translateNow(on.r, { sid: 1, iova: 0x4123, write: true });
  assert.ok(ok?.ok && ok.pa === 0x9000_4123);
  assert.equal(
    on.r.sim.now - t0,
    2 * c["smmu.cfgFetch"] + c["smmu.iotlbLookup"] + 5 * c["smmu.walkRead"],
    "STE + CD fetch, lookup, 4 reads and the AF update",
  );
  assert.equal(on.r.smmu.stats.afUpdates, 1);
  assert.ok(
    on.s1.walk(0x4000, newWalkResult()).af,
    "the descriptor was written",
  );
  assert.deepEqual(drainEvents(on.r.smmu), []);

  const off = s1Rig({ smmu: { httu: "none" }, cd: { HA: true } });
  off.s1.map(0x4000, 0x9000_4000, 0x1000, RW);
  off.s1.setAccessFlag(0x4000, false);
  assert.equal(faultOf(off.r, 1, 0x4000).f.eventId, F_ACCESS);
  assert.throws(() => rig({ httu: "dirty" as "none" }), { code: "EINVAL" });
});

Deno.test("IHI0070 3.13 stage 2: AF = 0 in a stage-2 leaf gives F_ACCESS with S2 = 1 and the IPA; STE.S2HA = 1 has the walker set it", () => {
  const r = rig();
  const t = hostTable(r.memory, 2);
  t.map(0x3000, 0x8000_3000, 0x1000, RW);
  t.setAccessFlag(0x3000, false);
  r.smmu.writeSte(1, steS2(t));
  const { f, ev } = faultOf(r, 1, 0x3abc, true);
  assert.equal(f.eventId, F_ACCESS);
  assert.equal(f.stage, 2);
  assert.ok(ev && ev.S2 && ev.CLASS === CLASS_IN && ev.IPA === 0x3000);
  const h = rig();
  const t2 = hostTable(h.memory, 2);
  t2.map(0x3000, 0x8000_3000, 0x1000, RW);
  t2.setAccessFlag(0x3000, false);
  h.smmu.writeSte(1, steS2(t2, { S2HA: true }));
  assert.ok(translateNow(h, { sid: 1, iova: 0x3000, write: true })?.ok);
  assert.equal(h.smmu.stats.afUpdates, 1);
});

Deno.test("IHI0070 3.9 ATS: AF = 0 without HTTU answers R = W = 0 and records nothing; with CD.HA the Translation Request sets AF and is granted", () => {
  for (const ha of [false, true]) {
    const { r, s1 } = s1Rig({ cd: { HA: ha }, ste: { EATS: 1 } });
    s1.map(0x4000, 0x9000_4000, 0x1000, RW);
    s1.setAccessFlag(0x4000, false);
    let out: { ok: boolean; eventId: number } | undefined;
    r.smmu.atsTranslate({ sid: 1, iova: 0x4000, write: true }, (x) => {
      out = { ok: x.ok, eventId: x.eventId };
    });
    r.sim.run();
    assert.ok(out);
    assert.equal(out.ok, ha);
    if (!ha) assert.equal(out.eventId, F_ACCESS);
    assert.deepEqual(drainEvents(r.smmu), []);
    assert.equal(r.smmu.stats.afUpdates, ha ? 1 : 0);
  }
});

Deno.test("io-pgtable-arm sets AF on every map (ARM_LPAE_PTE_AF), so host-managed tables never give F_ACCESS, with or without HTTU", () => {
  for (const httu of ["none", "access"] as const) {
    const { r, s1 } = s1Rig({ smmu: { httu } });
    s1.map(0x4000, 0x9000_4000, 0x3000, RW);
    for (const iova of [0x4000, 0x5000, 0x6000]) {
      assert.ok(translateNow(r, { sid: 1, iova, write: true })?.ok);
    }
    assert.equal(r.smmu.stats.afUpdates, 0);
  }
});

// ---------------------------------------------------------------------------
// Fault priority

Deno.test("fault priority, configuration before translation (IHI0070 7.2, 3.9.1.3 order): C_BAD_STREAMID, C_BAD_STE, C_BAD_SUBSTREAMID, F_STREAM_DISABLED and C_BAD_CD each win over a translation fault the same transaction would also take", async (t) => {
  await t.step("C_BAD_STREAMID over everything", () => {
    const r = rig({ sidBits: 2 });
    assert.equal(faultOf(r, 4, 0x1000).f.eventId, C_BAD_STREAMID);
  });
  await t.step("C_BAD_STE over an unmapped address", () => {
    const r = rig();
    const s2 = hostTable(r.memory, 2);
    r.smmu.writeSte(1, steS2(s2, { V: false }));
    assert.equal(faultOf(r, 1, 0x1000).f.eventId, C_BAD_STE);
  });
  await t.step("C_BAD_SUBSTREAMID over an invalid CD", () => {
    const { r } = s1Rig({ cd: { V: false } });
    assert.equal(faultOf(r, 1, 0x1000, false, 5).f.eventId, C_BAD_SUBSTREAMID);
  });
  await t.step("F_STREAM_DISABLED over an invalid CD", () => {
    const { r } = s1Rig({
      cd: { V: false },
      ste: { S1CDMax: 2, S1DSS: S1DSS_TERMINATE },
    });
    assert.equal(faultOf(r, 1, 0x1000).f.eventId, F_STREAM_DISABLED);
  });
  await t.step("C_BAD_CD over an unmapped address", () => {
    const { r } = s1Rig({ cd: { T0SZ: 8 } });
    assert.equal(faultOf(r, 1, 0x1000).f.eventId, C_BAD_CD);
  });
  await t.step(
    "F_WALK_EABT (no table at TTB0) over an unmapped address",
    () => {
      const r = rig();
      r.smmu.writeCd(CD_PTR, 0, cdFor(hostTable(rig().memory, 1)));
      r.smmu.writeSte(1, steS1());
      const { f, ev } = faultOf(r, 1, 0x1000);
      assert.equal(f.eventId, F_WALK_EABT);
      assert.ok(ev && ev.CLASS === CLASS_TT && !ev.S2);
    },
  );
});

Deno.test("fault priority within a stage walk (Arm ARM order F_TRANSLATION, F_ADDR_SIZE, F_ACCESS, F_PERMISSION), at stage 1 and stage 2", async (t) => {
  // Each case has the two faults named; the first must be reported.
  const cases: [string, number, (map: Mapper) => void][] = [
    ["F_ADDR_SIZE over F_ACCESS and F_PERMISSION", F_ADDR_SIZE, (m) => {
      m.map(0x1000, 0x1_0000_1000, RO); // beyond a 32-bit OAS
      m.clearAf(0x1000);
    }],
    ["F_ACCESS over F_PERMISSION", F_ACCESS, (m) => {
      m.map(0x1000, 0x8000_1000, RO);
      m.clearAf(0x1000);
    }],
    ["F_PERMISSION alone", F_PERMISSION, (m) => {
      m.map(0x1000, 0x8000_1000, RO);
    }],
    ["F_TRANSLATION for an invalid leaf next to an AF = 0 one", F_TRANSLATION, (
      m,
    ) => {
      m.map(0x2000, 0x8000_2000, RO);
      m.clearAf(0x2000);
    }],
  ];
  for (const stage of [1, 2] as const) {
    for (const [name, id, setup] of cases) {
      await t.step(`stage ${stage}: ${name}`, () => {
        const r = rig({ oasBits: 32 });
        const table = hostTable(r.memory, stage);
        setup({
          map: (iova, pa, prot) => table.map(iova, pa, 0x1000, prot),
          clearAf: (iova) => table.setAccessFlag(iova, false),
        });
        if (stage === 2) r.smmu.writeSte(1, steS2(table));
        else {
          r.smmu.writeCd(CD_PTR, 0, cdFor(table));
          r.smmu.writeSte(1, steS1());
        }
        const { f, ev } = faultOf(r, 1, 0x1000, true);
        assert.equal(f.eventId, id);
        assert.equal(f.stage, stage);
        assert.equal(ev?.S2, stage === 2);
      });
    }
  }
});

interface Mapper {
  map(iova: number, pa: number, prot: number): void;
  clearAf(iova: number): void;
}

Deno.test("fault priority in a nested walk (IHI0070 3.12, 3.9.1.2): stage 2 of the CD fetch first, then stage 2 of each stage-1 descriptor fetch, then the stage-1 leaf's faults, and only then stage 2 of the output", async (t) => {
  await t.step("the CD fetch's stage 2 (CLASS = CD) over an invalid CD", () => {
    const { r, s2 } = nestedRig({ cd: { V: false } });
    s2.setAccessFlag(0, false); // the block holding the CD, and all guest RAM
    const { f, ev } = faultOf(r, 2, 0x7000_0000);
    assert.equal(f.eventId, F_ACCESS);
    assert.ok(ev && ev.S2 && ev.CLASS === CLASS_CD);
  });
  await t.step(
    "a stage-1 descriptor fetch's stage 2 (CLASS = TT) over the stage-1 leaf's fault",
    () => {
      const { r, s1, s2 } = nestedRig();
      s1.map(0x7000_0000, 0x20_0000, 0x1000, RO); // a write gives F_PERMISSION
      s1.setAccessFlag(0x7000_0000, false); // and F_ACCESS
      s2.unmap(8 * 2 ** 20, 2 * 2 ** 20); // the guest's table pages: S2 F_TRANSLATION
      const { f, ev } = faultOf(r, 2, 0x7000_0000, true);
      assert.equal(f.eventId, F_TRANSLATION);
      assert.ok(ev && ev.S2 && ev.CLASS === CLASS_TT);
    },
  );
  await t.step(
    "stage 1's F_ACCESS over stage 2 of the output (unmapped)",
    () => {
      const { r, s1, s2 } = nestedRig();
      s1.map(0x7000_0000, 0xc0_0000, 0x1000, RW);
      s1.setAccessFlag(0x7000_0000, false);
      s2.unmap(12 * 2 ** 20, 2 * 2 ** 20); // the output IPA (12 MiB) has no stage 2
      const { f, ev } = faultOf(r, 2, 0x7000_0000, true);
      assert.equal(f.eventId, F_ACCESS);
      assert.ok(ev && !ev.S2 && ev.CLASS === CLASS_IN);
    },
  );
  await t.step("stage 1's F_PERMISSION over stage 2 of the output", () => {
    const { r, s1, s2 } = nestedRig();
    s1.map(0x7000_0000, 0xc0_0000, 0x1000, RO);
    s2.unmap(12 * 2 ** 20, 2 * 2 ** 20);
    const { f, ev } = faultOf(r, 2, 0x7000_0000, true);
    assert.equal(f.eventId, F_PERMISSION);
    assert.equal(ev?.S2, false);
  });
  await t.step(
    "then stage 2 of the output (CLASS = IN, S2 = 1), F_ACCESS before F_PERMISSION there too",
    () => {
      const { r, s1, s2 } = nestedRig();
      s1.map(0x7000_0000, 0xc0_0000, 0x1000, RW);
      s2.unmap(12 * 2 ** 20, 2 * 2 ** 20);
      s2.map(0xc0_0000, HOST_BASE + 0xc0_0000, 0x1000, RO);
      s2.setAccessFlag(0xc0_0000, false);
      const { f, ev } = faultOf(r, 2, 0x7000_0000, true);
      assert.equal(f.eventId, F_ACCESS);
      assert.ok(ev && ev.S2 && ev.CLASS === CLASS_IN && ev.IPA === 0xc0_0000);
      s2.setAccessFlag(0xc0_0000, true);
      assert.equal(faultOf(r, 2, 0x7000_0000, true).f.eventId, F_PERMISSION);
    },
  );
});

Deno.test("IHI0070 7.3.3, 7.3.5, 7.3.7, 7.3.9: C_BAD_STREAMID, C_BAD_STE, F_STREAM_DISABLED and C_BAD_SUBSTREAMID records carry only StreamID (and SubstreamID/SSV where defined); RnW, InputAddr, S2, CLASS and IPA are RES0", async (t) => {
  const check = (
    ev: EventRecord | undefined,
    id: number,
    ssv: boolean,
    ssid: number,
  ) => {
    assert.ok(ev);
    assert.equal(ev.ID, id);
    assert.equal(ev.SSV, ssv);
    assert.equal(ev.SubstreamID, ssid);
    assert.equal(ev.InputAddr, 0);
    assert.equal(ev.RnW, false);
    assert.equal(ev.S2, false);
    assert.equal(ev.CLASS, 0);
    assert.equal(ev.IPA, 0);
  };
  await t.step("C_BAD_STREAMID keeps SSV and SubstreamID", () => {
    const r = rig({ sidBits: 2 });
    check(faultOf(r, 4, 0x1234, false, 7).ev, C_BAD_STREAMID, true, 7);
  });
  await t.step("C_BAD_STE keeps SSV and SubstreamID", () => {
    const r = rig();
    r.smmu.writeSte(1, steS2(hostTable(r.memory, 2), { V: false }));
    check(faultOf(r, 1, 0x1234, false, 3).ev, C_BAD_STE, true, 3);
  });
  await t.step("F_STREAM_DISABLED has StreamID only", () => {
    const { r } = s1Rig({ ste: { S1CDMax: 2, S1DSS: S1DSS_TERMINATE } });
    check(faultOf(r, 1, 0x1234).ev, F_STREAM_DISABLED, false, 0);
  });
  await t.step("C_BAD_SUBSTREAMID: SubstreamID without SSV", () => {
    const { r } = s1Rig();
    check(faultOf(r, 1, 0x1234, false, 5).ev, C_BAD_SUBSTREAMID, false, 5);
  });
});
