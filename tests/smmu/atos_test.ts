/**
 * `Smmu.atos`: an ATOS translation (IHI0070 chapter 9) reports what
 * SMMU_GATOS_PAR does: FAULT, FAULTCODE, REASON (0b00 stage 1 or no stage,
 * 0b01 stage 2 on the CD fetch, 0b10 stage 2 on the stage-1 table walk,
 * 0b11 stage 2 of the stage-1 output) and FADDR (the stage-2 fault page).
 */
import assert from "node:assert/strict";
import { IoPgtable } from "../../lib/pgtable/mod.ts";
import { F_TRANSLATION } from "../../lib/smmu/mod.ts";
import { rig } from "./_helpers.ts";

const VMID = 5;

/** A nested stream at SID 1: guest RAM is IPA 0..1 MiB at stage 2, the guest's tables live at `tableIpa`. */
function nested(tableIpa: number) {
  const r = rig();
  const s2 = new IoPgtable({ stage: 2 });
  r.memory.register(0, s2);
  s2.map(0, 0x4000_0000, 0x10_0000, 3);
  let next = tableIpa;
  const s1 = new IoPgtable({
    stage: 1,
    allocTable: () => {
      const a = next;
      next += 4096;
      return a;
    },
  });
  r.memory.register(VMID, s1);
  r.smmu.writeCd(0x1000, 0, {
    V: true,
    ASID: 2,
    TTB0: s1.root,
    T0SZ: 16,
    TG0: 0,
    S: false,
    R: true,
    A: true,
  }, VMID);
  r.smmu.writeSte(1, {
    V: true,
    Config: 7,
    S1ContextPtr: 0x1000,
    S1CDMax: 0,
    S1STALLD: false,
    S2VMID: VMID,
    S2TTB: s2.root,
    S2S: false,
    S2R: true,
  });
  return { r, s1, s2 };
}

Deno.test("IHI0070 9.1.4 ATOS_PAR: REASON 0b00 for a stage-1 fault, 0b11 with FADDR for the stage-1 output missing at stage 2, 0b10 with FADDR for a stage-1 table page missing at stage 2", async (t) => {
  await t.step("stage 1 lacks the page", () => {
    const { r } = nested(0x8_0000); // tables inside guest RAM
    const a = r.smmu.atos({ sid: 1, iova: 0x7000_0000 });
    assert.ok(a.fault && a.faultCode === F_TRANSLATION);
    assert.equal(a.reason, 0);
    assert.equal(a.faddr, -1);
  });
  await t.step("the stage-1 output lacks stage 2", () => {
    const { r, s1 } = nested(0x8_0000);
    s1.map(0x7000_0000, 0x20_0000, 0x1000, 3); // IPA beyond guest RAM
    const a = r.smmu.atos({ sid: 1, iova: 0x7000_0123, write: true });
    assert.ok(a.fault && a.faultCode === F_TRANSLATION);
    assert.equal(a.reason, 3);
    assert.equal(a.faddr, 0x20_0000);
  });
  await t.step("a stage-1 table page lacks stage 2", () => {
    const { r, s1 } = nested(0x80_0000); // tables beyond guest RAM
    s1.map(0x7000_0000, 0x5000, 0x1000, 3);
    const a = r.smmu.atos({ sid: 1, iova: 0x7000_0000 });
    assert.ok(a.fault && a.reason === 2);
    assert.equal(a.faddr, 0x80_0000); // the root table's page
  });
  await t.step("a translation", () => {
    const { r, s1 } = nested(0x8_0000);
    s1.map(0x7000_0000, 0x5000, 0x1000, 3);
    const a = r.smmu.atos({ sid: 1, iova: 0x7000_0010 });
    assert.ok(!a.fault && a.pa === 0x4000_5010 && a.ns > 0);
    assert.equal(r.smmu.stats.atosRequests, 1);
  });
});

Deno.test("ATOS on an SMMU without it (SMMU_IDR0.ATOS = 0) is ENODEV", () => {
  const r = rig({ atos: false });
  assert.throws(() => r.smmu.atos({ sid: 1, iova: 0 }), /ENODEV/);
});
