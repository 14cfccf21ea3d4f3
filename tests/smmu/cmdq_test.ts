/**
 * The command queue consumer (lib/smmu/_cmdq.ts) against IHI0070: the
 * CMD_PRI_RESP Resp encoding (4.5.2), CMD_RESUME's Action/Abort and
 * CMD_STALL_TERM (4.7.1, 4.7.2), and command queue errors (7.1, 7.5) with
 * the driver's recovery (arm_smmu_gerror_handler, arm_smmu_cmdq_skip_err).
 */
import assert from "node:assert/strict";
import {
  ArmSmmuV3Driver,
  CERROR_ABT,
  CERROR_ATC_INV_SYNC,
  CERROR_ILL,
  CERROR_NONE,
  CMD_ATC_INV,
  CMD_PRI_RESP,
  CMD_RESUME,
  CMD_STALL_TERM,
  CMD_SYNC,
  CMD_TLBI_NH_ASID,
  CMD_TLBI_S12_VMALL,
  type Command,
  GERROR_CMDQ_ERR,
  PRG_RESP_FAILURE,
  PRG_RESP_INVALID,
  PRG_RESP_SUCCESS,
  RESUME_ABORT,
  RESUME_RETRY,
  RESUME_TERM,
  type SmmuEndpoint,
  type SmmuOptions,
  type TxnResult,
} from "../../lib/smmu/mod.ts";
import { drainEvents, hostTable, type Rig, rig, steS2 } from "./_helpers.ts";

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

function priResp(resp: number, grp = 1): Command {
  return {
    opcode: CMD_PRI_RESP,
    SID: 0x100,
    SSID: 0,
    SSV: false,
    GRPID: grp,
    Resp: resp,
  } as Command;
}

Deno.test("IHI0070 4.5.2 CMD_PRI_RESP Resp: 0b00 ResponseFailure, 0b01 InvalidRequest, 0b10 Success reach the endpoint as PCIe 1111b, 0001b, 0000b", () => {
  const r = rig();
  const ep = new Ep();
  r.smmu.attachEndpoint(0x100, ep);
  r.smmu.submit([priResp(0, 1), priResp(1, 2), priResp(2, 3)]);
  r.sim.run();
  assert.deepEqual(ep.responses, [
    [-1, 1, PRG_RESP_FAILURE],
    [-1, 2, PRG_RESP_INVALID],
    [-1, 3, PRG_RESP_SUCCESS],
  ]);
});

/** A stalling stage-2 stream at SID 1 with nothing mapped, and `n` stalled reads. */
function stalled(n: number, options: Partial<SmmuOptions> = {}) {
  const r = rig(options);
  const t = hostTable(r.memory);
  r.smmu.writeSte(1, steS2(t, { S2S: true }));
  const results: TxnResult[] = [];
  for (let i = 0; i < n; i++) {
    r.smmu.translate(
      { sid: 1, iova: 0x1000 * (i + 1), write: false },
      (res) => results.push({ ...res }),
    );
  }
  r.sim.run();
  const stags = drainEvents(r.smmu).filter((e) => e.Stall).map((e) => e.STAG);
  assert.equal(stags.length, n);
  return { r, t, results, stags };
}

Deno.test("IHI0070 4.7.1 CMD_RESUME: Action 0 terminates as the Abort parameter says (Ab=1 abort, Ab=0 RAZ/WI), Action 1 retries", () => {
  const { r, t, results, stags } = stalled(3);
  t.map(0x1000, 0x8000_1000, 0x3000, 3); // a retry now translates
  r.smmu.submit([
    { opcode: CMD_RESUME, SID: 1, STAG: stags[0]!, Resp: RESUME_ABORT },
    { opcode: CMD_RESUME, SID: 1, STAG: stags[1]!, Resp: RESUME_TERM },
    { opcode: CMD_RESUME, SID: 1, STAG: stags[2]!, Resp: RESUME_RETRY },
  ]);
  r.sim.run();
  assert.equal(results.length, 3);
  assert.deepEqual(
    results.map((x) => x.ok ? "ok" : x.abort ? "abort" : "raz/wi"),
    ["abort", "raz/wi", "ok"],
  );
  assert.equal(r.smmu.stalledCount, 0);
});

Deno.test("IHI0070 4.7.2 CMD_STALL_TERM terminates every stalled transaction of the stream with an abort, whatever CD.A or S2 config said", () => {
  const { r, results } = stalled(2);
  r.smmu.submit([{ opcode: CMD_STALL_TERM, SID: 1 }]);
  r.sim.run();
  assert.equal(results.length, 2);
  for (const x of results) {
    assert.ok(!x.ok && x.abort && x.terminated);
  }
});

/** A rig with a driver (whose GERROR handler recovers the queue). */
function withDriver(options: Partial<SmmuOptions> = {}): Rig & {
  drv: ArmSmmuV3Driver;
} {
  const r = rig(options);
  const drv = new ArmSmmuV3Driver(r.sim, r.smmu, {
    costs: r.costs,
    memory: r.memory,
  });
  return { ...r, drv };
}

Deno.test("IHI0070 7.1: an unknown opcode stops consumption at CONS with CMDQ_CONS.ERR = CERROR_ILL and GERROR.CMDQ_ERR; newer commands wait; nothing throws", () => {
  const r = rig(); // no driver: nobody acknowledges
  const done: string[] = [];
  r.smmu.submit([{ opcode: CMD_SYNC }], () => done.push("sync 1"));
  r.smmu.submit(
    [{ opcode: 0x7f } as unknown as Command],
    () => done.push("bad"),
  );
  r.smmu.submit([{ opcode: CMD_SYNC }], () => done.push("sync 2"));
  let irqs = 0;
  r.smmu.onGerrorIrq = () => irqs++;
  r.sim.run(); // returns: the queue is stopped, not spinning
  assert.deepEqual(done, ["sync 1"]);
  assert.equal(r.smmu.cmdqConsErr, CERROR_ILL);
  assert.equal(r.smmu.gerror & GERROR_CMDQ_ERR, GERROR_CMDQ_ERR);
  assert.ok(r.smmu.cmdqErrorActive);
  assert.equal(irqs, 1);
  assert.equal(r.smmu.stats.cmdqErrors, 1);
  assert.equal(r.smmu.cmdq.isEmpty, false);
  // 7.5: "Commands are not consumed from the Command queue while CMDQ_ERR
  // is active"; acknowledging without fixing the command fetches it again.
  r.smmu.writeGerrorn(r.smmu.gerror);
  r.sim.run();
  assert.deepEqual(done, ["sync 1"]);
  assert.equal(r.smmu.stats.cmdqErrors, 2);
  assert.equal(irqs, 2);
});

Deno.test("arm_smmu_cmdq_skip_err: the driver's GERROR handler replaces the illegal command at CONS with CMD_SYNC and acknowledges in GERRORN; the queue resumes", () => {
  const r = withDriver();
  const done: string[] = [];
  r.smmu.submit(
    [{ opcode: 0x7f } as unknown as Command],
    () => done.push("bad (now a CMD_SYNC)"),
  );
  r.smmu.submit([{ opcode: CMD_SYNC }], () => done.push("sync"));
  r.sim.run();
  assert.deepEqual(done, ["bad (now a CMD_SYNC)", "sync"]);
  assert.equal(r.drv.stats.cmdqErrors.ill, 1);
  assert.ok(!r.smmu.cmdqErrorActive);
  assert.equal(r.smmu.gerror, r.smmu.gerrorn);
  assert.ok(r.smmu.cmdq.isEmpty);
});

Deno.test("IHI0070 7.1 CERROR_ILL for illegal uses: stage-1 TLBI without stage 1, CMD_SYNC CS=0b11 (4.7.3), PRI_RESP Resp=0b11 (4.5.2), CMD_RESUME without stalls (4.7.1)", async (t) => {
  const cases: [string, Partial<SmmuOptions>, Command][] = [
    ["CMD_TLBI_NH_ASID, stage-2-only SMMU", { s1: false }, {
      opcode: CMD_TLBI_NH_ASID,
      VMID: 0,
      ASID: 1,
    }],
    ["CMD_SYNC CS=0b11", {}, { opcode: CMD_SYNC, CS: 3 }],
    ["CMD_PRI_RESP Resp=0b11", {}, priResp(3)],
    ["CMD_PRI_RESP without PRI", { pri: false }, priResp(2)],
    ["CMD_RESUME, STALL_MODEL 0b01", { stallModel: "unsupported" }, {
      opcode: CMD_RESUME,
      SID: 1,
      STAG: 0,
      Resp: RESUME_RETRY,
    }],
    ["CMD_STALL_TERM, STALL_MODEL 0b01", { stallModel: "unsupported" }, {
      opcode: CMD_STALL_TERM,
      SID: 1,
    }],
  ];
  for (const [name, options, cmd] of cases) {
    await t.step(name, () => {
      const r = withDriver(options);
      const ep = new Ep();
      r.smmu.attachEndpoint(0x100, ep);
      let after = false;
      r.smmu.submit([cmd]);
      r.smmu.submit([{ opcode: CMD_SYNC }], () => (after = true));
      r.sim.run();
      assert.equal(r.smmu.stats.cmdqErrors, 1);
      assert.equal(r.drv.stats.cmdqErrors.ill, 1);
      assert.equal(ep.responses.length, 0); // the command had no effect
      assert.ok(after, "the queue resumed after the skipped command");
    });
  }
  await t.step("legal on a full-featured SMMU: no error", () => {
    const r = withDriver();
    r.smmu.submit([
      { opcode: CMD_TLBI_NH_ASID, VMID: 0, ASID: 1 },
      { opcode: CMD_TLBI_S12_VMALL, VMID: 1 },
      { opcode: CMD_SYNC, CS: 1 },
      priResp(2),
    ]);
    r.sim.run();
    assert.equal(r.smmu.stats.cmdqErrors, 0);
    assert.equal(r.smmu.cmdqConsErr, CERROR_NONE);
  });
});

Deno.test("IHI0070 7.1 CERROR_ABT: an external abort on command fetch stops consumption with CONS.RD at the command (not applied); arm_smmu_cmdq_skip_err ('retrying command fetch') just acknowledges, and the re-fetched command runs once", () => {
  const r = rig(); // no driver first: nobody acknowledges
  r.smmu.injectCmdFetchAborts(1);
  let done = 0;
  r.smmu.submit([{ opcode: CMD_TLBI_S12_VMALL, VMID: 1 }], () => done++);
  r.sim.run();
  assert.equal(r.smmu.cmdqConsErr, CERROR_ABT);
  assert.ok(r.smmu.cmdqErrorActive);
  assert.equal(r.smmu.stats.tlbInvalidations, 0); // not applied
  assert.equal(done, 0);
  assert.equal(r.smmu.cmdq.isEmpty, false);
  r.smmu.writeGerrorn(r.smmu.gerror); // the fetch is retried
  r.sim.run();
  assert.equal(done, 1);
  assert.equal(r.smmu.stats.tlbInvalidations, 1);

  // With the driver: two aborts in a row, two GERROR round trips, no rewrite.
  const d = withDriver();
  d.smmu.injectCmdFetchAborts(2);
  const seen: string[] = [];
  d.smmu.submit(
    [{ opcode: CMD_TLBI_S12_VMALL, VMID: 1 }],
    () => seen.push("tlbi"),
  );
  d.smmu.submit([{ opcode: CMD_SYNC }], () => seen.push("sync"));
  d.sim.run();
  assert.deepEqual(seen, ["tlbi", "sync"]);
  assert.equal(d.smmu.stats.cmdqErrors, 2);
  assert.equal(d.drv.stats.cmdqErrors.abt, 2);
  assert.equal(d.drv.stats.cmdqErrors.ill, 0);
  assert.equal(d.smmu.stats.tlbInvalidations, 1); // the command was not replaced
  assert.ok(!d.smmu.cmdqErrorActive);
  assert.throws(() => d.smmu.injectCmdFetchAborts(0), { code: "EINVAL" });
});

/** An endpoint that answers ATC Invalidate Requests after `delay` ns (Infinity: never). */
class SlowEp extends Ep {
  constructor(readonly sim: Rig["sim"], readonly delay: number) {
    super();
  }
  override atcInvalidate(
    _s: number,
    _a: number,
    _l: number,
    done: () => void,
  ): void {
    if (this.delay < Infinity) this.sim.after(this.delay, done);
  }
  override atcInvalidateBlocking(): number {
    return this.delay;
  }
}

const ATC_INV: Command = {
  opcode: CMD_ATC_INV,
  SID: 0x100,
  SSID: 0,
  SSV: false,
  G: false,
  Address: 0,
  Size: 0,
} as Command;

Deno.test("IHI0070 3.9.1.4 / 7.1 CERROR_ATC_INV_SYNC: a CMD_SYNC behind a CMD_ATC_INV whose completion does not arrive within the timeout stops with CONS at the CMD_SYNC; without an acknowledgement it never completes", () => {
  const r = rig({ atcInvTimeoutNs: 1e6 });
  r.smmu.attachEndpoint(0x100, new SlowEp(r.sim, Infinity));
  let synced = false;
  let irqAt = -1;
  r.smmu.onGerrorIrq = () => (irqAt = r.sim.now);
  r.smmu.submit([ATC_INV, { opcode: CMD_SYNC }], () => (synced = true));
  r.sim.run();
  assert.equal(r.smmu.cmdqConsErr, CERROR_ATC_INV_SYNC);
  assert.ok(r.smmu.cmdqErrorActive && !synced);
  assert.equal(r.smmu.stats.atcInvTimeouts, 1);
  assert.ok(irqAt >= 1e6, `the error comes at the timeout, got ${irqAt} ns`);
  assert.equal(r.smmu.cmdq.isEmpty, false); // CONS still at the CMD_SYNC
});

Deno.test("arm_smmu_cmdq_skip_err on CERROR_ATC_INV_SYNC repeats the CMD_SYNC (no rewrite): it completes once the timed-out invalidation is reported, the late completion is discarded, and later invalidations work", () => {
  const r = withDriver({ atcInvTimeoutNs: 1e6 });
  const ep = new SlowEp(r.sim, 3e6); // answers after the SMMU's timeout
  r.smmu.attachEndpoint(0x100, ep);
  const seen: [string, number][] = [];
  r.smmu.submit(
    [ATC_INV, { opcode: CMD_SYNC }],
    () => seen.push(["sync 1", r.sim.now]),
  );
  r.sim.run();
  assert.equal(seen.length, 1);
  assert.ok(seen[0]![1] >= 1e6);
  assert.equal(r.drv.stats.cmdqErrors.atcInvSync, 1);
  assert.equal(r.drv.stats.cmdqErrors.ill, 0);
  assert.equal(r.smmu.stats.atcInvTimeouts, 1);
  assert.equal(r.smmu.stats.syncs, 1);
  // The late completion (at 3 ms) did not count for anything; a prompt
  // endpoint's invalidation now completes normally, with no error.
  const fast = new SlowEp(r.sim, 500);
  r.smmu.attachEndpoint(0x100, fast);
  const t0 = r.sim.now;
  r.smmu.submit(
    [ATC_INV, { opcode: CMD_SYNC }],
    () => seen.push(["sync 2", r.sim.now]),
  );
  r.sim.run();
  assert.equal(seen.length, 2);
  assert.ok(seen[1]![1] - t0 < 1e6);
  assert.equal(r.smmu.stats.cmdqErrors, 1);
  assert.equal(r.smmu.stats.atcInvTimeouts, 1);
});

Deno.test("IHI0070 3.9.1.4: an invalidation completed in time raises no error and leaves no timer behind (the clock ends at the completion, not at the timeout)", () => {
  const r = rig(); // default timeout: one minute
  r.smmu.attachEndpoint(0x100, new SlowEp(r.sim, 700));
  let at = -1;
  r.smmu.submit([ATC_INV, { opcode: CMD_SYNC }], () => (at = r.sim.now));
  r.sim.run();
  assert.ok(at > 0 && at < 1e5);
  assert.equal(r.sim.now, at);
  assert.equal(r.sim.pending, 0);
  assert.equal(r.smmu.stats.cmdqErrors, 0);
  // The blocking twin caps a silent endpoint's wait at the timeout.
  const b = rig({ atcInvTimeoutNs: 2e6 });
  b.smmu.attachEndpoint(0x100, new SlowEp(b.sim, Infinity));
  const ns = b.smmu.submitBlocking([ATC_INV]);
  assert.ok(ns >= 2e6 && ns < 3e6, `${ns}`);
  assert.equal(b.smmu.stats.atcInvTimeouts, 1);
  assert.throws(() => rig({ atcInvTimeoutNs: 0 }), { code: "EINVAL" });
});

Deno.test("a full command queue: the commands that do not fit wait in order and all complete, as many as 40 times the queue", () => {
  // A 4-entry queue (cmdqLog2 2) and 161 submissions (a CMD_PRI_RESP with
  // its own group index, then a CMD_SYNC), all made before the simulator
  // runs: most wait outside the queue.
  const r = rig({ cmdqLog2: 2 });
  const ep = new Ep();
  r.smmu.attachEndpoint(0x100, ep);
  const done: number[] = [];
  for (let i = 0; i <= 160; i++) {
    r.smmu.submit(
      [priResp(2, i), { opcode: CMD_SYNC }],
      () => done.push(i),
    );
  }
  r.sim.run();
  const all = Array.from({ length: 161 }, (_, i) => i);
  assert.deepEqual(done, all);
  assert.deepEqual(ep.responses.map(([, g]) => g), all);
  assert.equal(r.smmu.stats.commands, 322);
  assert.equal(r.smmu.stats.syncs, 161);
  assert.ok(r.smmu.cmdq.isEmpty);
  // And again, after the backlog drained (the ring is reused).
  r.smmu.submit([priResp(2, 7), { opcode: CMD_SYNC }], () => done.push(-1));
  r.sim.run();
  assert.deepEqual(done.slice(161), [-1]);
  assert.equal(ep.responses.at(-1)![1], 7);
});
