/**
 * STE legality and the faults the walker reports, against IHI0070: STE.EATS
 * on abort and bypass STEs, the SteIllegal checks, reserved Config values,
 * STE.S1DSS with F_STREAM_DISABLED (5.2), and the automatic PRG responses
 * of the PRI queue (8.1, 8.2). The walk's fault order is in ptw_test.ts.
 */
import assert from "node:assert/strict";
import {
  C_BAD_STE,
  F_BAD_ATS_TREQ,
  F_STREAM_DISABLED,
  PRG_RESP_FAILURE,
  PRG_RESP_SUCCESS,
  type PriEntry,
  type S1dss,
  S1DSS_BYPASS,
  S1DSS_SSID0,
  S1DSS_TERMINATE,
  type SmmuEndpoint,
  type SmmuOptions,
  type Ste,
} from "../../lib/smmu/mod.ts";
import type { AtsResult } from "../../lib/smmu/mod.ts";
import {
  drainEvents,
  hostTable,
  type Rig,
  rig,
  steS2,
  translateNow,
} from "./_helpers.ts";
import { CD_PTR, cdFor, steS1 } from "./_rig.ts";

function ats(r: Rig, sid: number, ssid = -1): AtsResult {
  let out: AtsResult | undefined;
  r.smmu.atsTranslate({ sid, ssid, iova: 0x1000 }, (x) => (out = { ...x }));
  r.sim.run();
  return out!;
}

Deno.test("IHI0070 5.2 STE.EATS is effectively 0 on a bypass STE: an ATS Translation Request gets Unsupported Request and F_BAD_ATS_TREQ is recorded", () => {
  const r = rig();
  r.smmu.writeSte(1, { V: true, Config: 4, EATS: 1 });
  const a = ats(r, 1);
  assert.ok(!a.ok && a.unsupported && a.eventId === F_BAD_ATS_TREQ);
  assert.deepEqual(drainEvents(r.smmu).map((e) => e.ID), [F_BAD_ATS_TREQ]);
  // Ordinary transactions still bypass.
  const t = translateNow(r, { sid: 1, iova: 0x1234, write: true });
  assert.ok(t?.ok && t.pa === 0x1234);
});

Deno.test("SteIllegal checks EATS only where a stage translates: EATS=2 or EATS without ATS on abort and bypass STEs is not C_BAD_STE", async (t) => {
  const cases: [string, Partial<SmmuOptions>, Ste, boolean][] = [
    ["bypass, EATS=2", {}, { V: true, Config: 4, EATS: 2 }, true],
    ["bypass, EATS=1, SMMU_IDR0.ATS=0", { ats: false }, {
      V: true,
      Config: 4,
      EATS: 1,
    }, true],
    ["abort, EATS=2", {}, { V: true, Config: 0, EATS: 2 }, false],
  ];
  for (const [name, options, ste, passes] of cases) {
    await t.step(name, () => {
      const r = rig(options);
      r.smmu.writeSte(1, ste);
      const res = translateNow(r, { sid: 1, iova: 0x5000, write: false });
      assert.ok(res);
      assert.equal(res.ok, passes);
      assert.deepEqual(drainEvents(r.smmu), []); // no C_BAD_STE
    });
  }
});

Deno.test("IHI0070 5.2 STE.Config reserved values 0b001..0b011 abort like 0b000, without C_BAD_STE", () => {
  for (const config of [1, 2, 3]) {
    const r = rig();
    r.smmu.writeSte(1, { V: true, Config: config } as unknown as Ste);
    const res = translateNow(r, { sid: 1, iova: 0, write: false });
    assert.ok(res && !res.ok && res.eventId === 0 && !res.recorded);
    assert.deepEqual(drainEvents(r.smmu), []);
  }
});

/** A stage-1 stream at SID 1 with CDs 0 and 1 (S1CDMax `cdMax`), 0x1000 mapped in both. */
function s1(
  over: { S1DSS?: S1dss; S1STALLD?: boolean; cdMax?: number } = {},
  options: Partial<SmmuOptions> = {},
) {
  const r = rig(options);
  const t = hostTable(r.memory, 1);
  t.map(0x1000, 0x9000_1000, 0x1000, 1); // read-only
  r.smmu.writeCd(CD_PTR, 0, cdFor(t));
  r.smmu.writeCd(CD_PTR, 1, cdFor(t, { ASID: 4 }));
  r.smmu.writeSte(
    1,
    steS1(CD_PTR, {
      S1CDMax: over.cdMax ?? 1,
      S1STALLD: over.S1STALLD ?? false,
      ...(over.S1DSS !== undefined ? { S1DSS: over.S1DSS } : {}),
    }),
  );
  return { r, t };
}

Deno.test("SteIllegal: S1STALLD = 1 on an SMMU without stalls (STALL_MODEL 0b01) is C_BAD_STE", () => {
  const { r } = s1({ S1STALLD: true }, { stallModel: "unsupported" });
  const res = translateNow(r, { sid: 1, iova: 0x1000, write: false });
  assert.ok(res && !res.ok && res.eventId === C_BAD_STE);
  const ok = s1({ S1STALLD: true }).r; // with stalls supported it is legal
  assert.ok(translateNow(ok, { sid: 1, iova: 0x1000, write: false })?.ok);
});

Deno.test("IHI0070 5.2 STE.S1DSS: 0b00 terminates non-substream traffic with F_STREAM_DISABLED, 0b01 bypasses stage 1, 0b10 uses CD 0 and makes SubstreamID 0 F_STREAM_DISABLED (7.3.7)", async (t) => {
  await t.step("0b00 Terminate", () => {
    const { r } = s1({ S1DSS: S1DSS_TERMINATE });
    const res = translateNow(r, { sid: 1, iova: 0x1000, write: false });
    assert.ok(res && !res.ok && res.eventId === F_STREAM_DISABLED);
    assert.deepEqual(drainEvents(r.smmu).map((e) => e.ID), [
      F_STREAM_DISABLED,
    ]);
    // Substream traffic is unaffected, SubstreamID 0 included.
    assert.ok(
      translateNow(r, { sid: 1, ssid: 0, iova: 0x1000, write: false })?.ok,
    );
  });
  await t.step("0b01 Bypass", () => {
    const { r } = s1({ S1DSS: S1DSS_BYPASS });
    const res = translateNow(r, { sid: 1, iova: 0x4321, write: true });
    assert.ok(res?.ok && res.pa === 0x4321);
    const sub = translateNow(r, {
      sid: 1,
      ssid: 1,
      iova: 0x1000,
      write: false,
    });
    assert.ok(sub?.ok && sub.pa === 0x9000_1000);
  });
  await t.step("0b10 Substream 0 (the default)", () => {
    for (const over of [{ S1DSS: S1DSS_SSID0 } as const, {}]) {
      const { r } = s1(over);
      const res = translateNow(r, { sid: 1, iova: 0x1000, write: false });
      assert.ok(res?.ok && res.pa === 0x9000_1000);
      assert.equal(
        r.smmu.translateCached({ sid: 1, iova: 0x1000, write: false }),
        0x9000_1000,
      );
      const zero = translateNow(r, {
        sid: 1,
        ssid: 0,
        iova: 0x1000,
        write: false,
      });
      // IHI0070 7.3.7: "a transaction was presented with SubstreamID 0
      // when ... STE.S1DSS == 0b10 (CD 0 is Reserved for non-substream
      // traffic)" is F_STREAM_DISABLED.
      assert.ok(zero && !zero.ok && zero.eventId === F_STREAM_DISABLED);
      assert.equal(
        r.smmu.translateCached({ sid: 1, ssid: 0, iova: 0x1000, write: false }),
        -1,
      );
    }
  });
  await t.step("S1DSS is IGNORED with S1CDMax = 0", () => {
    const { r } = s1({ S1DSS: S1DSS_TERMINATE, cdMax: 0 });
    assert.ok(translateNow(r, { sid: 1, iova: 0x1000, write: false })?.ok);
  });
  await t.step("0b11 is reserved: C_BAD_STE", () => {
    const { r } = s1({ S1DSS: 3 as S1dss });
    const res = translateNow(r, { sid: 1, iova: 0x1000, write: false });
    assert.ok(res && !res.ok && res.eventId === C_BAD_STE);
  });
});

class Ep implements SmmuEndpoint {
  responses: [number, number, number][] = [];
  prgResponse(ssid: number, idx: number, code: number): void {
    this.responses.push([ssid, idx, code]);
  }
  atcInvalidate(_s: number, _a: number, _l: number, done: () => void): void {
    done();
  }
  atcInvalidateBlocking(): number {
    return 0;
  }
}

function ppr(over: Partial<PriEntry>): PriEntry {
  return {
    StreamID: 2,
    SubstreamID: 0,
    SSV: false,
    PRIV: false,
    EXEC: false,
    READ: true,
    WRITE: false,
    LAST: true,
    PRGIndex: 9,
    Address: 0x1000,
    ...over,
  };
}

Deno.test("IHI0070 8.2: an SMMU without PRI answers every Page Request with an automatic Response Failure (no PASID), and Stop Markers with nothing", () => {
  const r = rig({ pri: false });
  const ep = new Ep();
  r.smmu.attachEndpoint(2, ep);
  r.smmu.pageRequest(ppr({ LAST: false, PRGIndex: 4 }));
  r.smmu.pageRequest(ppr({ SSV: true, SubstreamID: 5, PRGIndex: 4 }));
  r.smmu.pageRequest(ppr({ SSV: true, SubstreamID: 5, READ: false })); // Stop Marker
  assert.deepEqual(ep.responses, [
    [-1, 4, PRG_RESP_FAILURE],
    [-1, 4, PRG_RESP_FAILURE],
  ]);
  assert.equal(r.smmu.priq.isEmpty, true);
});

Deno.test("IHI0070 8.1: an overflow auto-response to a request without a PASID is Success whatever the STE; with a PASID it is Failure when the STE cannot be read", () => {
  const r = rig({ priqLog2: 0 }); // one entry
  const ep = new Ep();
  r.smmu.attachEndpoint(2, ep); // SID 2 has no valid STE
  r.smmu.pageRequest(ppr({ PRGIndex: 1 })); // fills the queue
  r.smmu.pageRequest(ppr({ PRGIndex: 2 })); // overflow, no PASID
  r.smmu.pageRequest(ppr({ PRGIndex: 3, SSV: true, SubstreamID: 7 }));
  assert.deepEqual(ep.responses, [
    [-1, 2, PRG_RESP_SUCCESS],
    [-1, 3, PRG_RESP_FAILURE],
  ]);
  // With a valid STE a PASID request is answered Success with its PASID.
  const t = hostTable(r.memory);
  r.smmu.writeSte(2, steS2(t));
  r.smmu.pageRequest(ppr({ PRGIndex: 4, SSV: true, SubstreamID: 7 }));
  assert.deepEqual(ep.responses.at(-1), [7, 4, PRG_RESP_SUCCESS]);
});
