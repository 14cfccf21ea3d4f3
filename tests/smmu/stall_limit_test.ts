/**
 * SMMU_IDR5.STALL_MAX and the bounded STAG allocation (issue 17: more than
 * 65,536 outstanding stalls hung the simulator in the STAG search).
 */
import assert from "node:assert/strict";
import {
  CMD_RESUME,
  DEFAULT_STALL_MAX,
  F_TRANSLATION,
  RESUME_RETRY,
  RESUME_TERM,
  type TxnResult,
} from "../../lib/smmu/mod.ts";
import { drainEvents, hostTable, type Rig, rig, steS2 } from "./_helpers.ts";

/** A rig whose stream 1 stalls every access at stage 2 (nothing mapped). */
function stallRig(options: Parameters<typeof rig>[0] = {}): Rig {
  const r = rig(options);
  r.smmu.writeSte(1, steS2(hostTable(r.memory), { S2S: true }));
  return r;
}

/** Presents `n` reads of distinct pages on stream 1; results land in `out` by index. */
function present(r: Rig, n: number, out: (TxnResult | undefined)[]): void {
  for (let i = 0; i < n; i++) {
    r.smmu.translate(
      { sid: 1, iova: (out.length + 1) * 0x1000, write: false },
      ((k) => (res: TxnResult) => (out[k] = { ...res }))(out.length),
    );
    out.push(undefined);
  }
}

/** Runs _stall_flood.ts in a subprocess killed after `limitMs` (so a hang fails the test instead of hanging CI). */
async function flood(
  count: number,
  stallMax: number | undefined,
  limitMs = 60_000,
): Promise<
  {
    hung: boolean;
    out?: {
      stalledCount: number;
      terminated: number;
      aborted: number;
      stats: Record<string, number>;
    };
  }
> {
  const script = new URL("./_stall_flood.ts", import.meta.url).pathname;
  const args = ["run", "--allow-read", script, String(count)];
  if (stallMax !== undefined) args.push(String(stallMax));
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill("SIGKILL");
  }, limitMs);
  const res = await child.output();
  clearTimeout(timer);
  if (hung) return { hung };
  const stderr = new TextDecoder().decode(res.stderr);
  assert.ok(res.success, `the flood subprocess failed: ${stderr}`);
  return { hung, out: JSON.parse(new TextDecoder().decode(res.stdout)) };
}

Deno.test("65,537 stalls outstanding at once (more than the 2^16 STAGs): the SMMU finishes, it does not hang in the STAG search", async () => {
  const { hung, out } = await flood(65_537, 65_535);
  assert.equal(hung, false, "the simulator hung (killed after 60 s)");
  assert.ok(out);
  assert.equal(out.stalledCount, 65_535);
  assert.equal(out.stats.stalls, 65_535);
  assert.equal(out.terminated, 2);
});

Deno.test("SMMU_IDR5.STALL_MAX defaults to 64 and accepts only 1..65535 (the field is 16 bits)", () => {
  assert.equal(DEFAULT_STALL_MAX, 64);
  assert.equal(rig().smmu.features.stallMax, 64);
  assert.equal(rig({ stallMax: 0xffff }).smmu.features.stallMax, 0xffff);
  for (const bad of [0, 0x10000, 1.5, -1, Number.NaN]) {
    assert.throws(
      () => rig({ stallMax: bad }),
      (e: Error & { code?: string }) =>
        e.code === "EINVAL" && e.message.includes("stallMax"),
    );
  }
});

Deno.test('3.12: past STALL_MAX a stall-eligible fault is "terminated instead of stalled ... reported with Stall == 0 ... terminated with Abort"', () => {
  const r = stallRig();
  const res: (TxnResult | undefined)[] = [];
  present(r, DEFAULT_STALL_MAX + 1, res);
  r.sim.run();
  assert.equal(r.smmu.stalledCount, DEFAULT_STALL_MAX);
  assert.equal(r.smmu.stats.stalls, DEFAULT_STALL_MAX);
  assert.equal(r.smmu.stats.stallMaxTerminations, 1);
  assert.equal(r.smmu.stats.stallsTerminated, 0);
  // One came back at once (the first presented: its STE fetch made it
  // fault last): aborted, recorded, never stalled.
  const back = res.flatMap((x, k) => (x ? [k] : []));
  assert.equal(back.length, 1);
  const k = back[0]!;
  const last = res[k];
  assert.ok(last && !last.ok);
  assert.equal(last.abort, true);
  assert.equal(last.recorded, true);
  assert.equal(last.terminated, false);
  assert.equal(last.eventId, F_TRANSLATION);
  const events = drainEvents(r.smmu);
  assert.equal(events.length, DEFAULT_STALL_MAX + 1);
  const stallRecords = events.filter((e) => e.Stall);
  assert.equal(stallRecords.length, DEFAULT_STALL_MAX);
  const term = events.find((e) => !e.Stall)!;
  assert.equal(term.ID, F_TRANSLATION);
  assert.equal(term.STAG, 0);
  assert.equal(term.InputAddr, (k + 1) * 0x1000);
  // 6.3.6: never more than STALL_MAX stall records outstanding.
  assert.equal(
    new Set(stallRecords.map((e) => e.STAG)).size,
    DEFAULT_STALL_MAX,
  );
});

Deno.test("a CMD_RESUME frees a stall slot: the next fault stalls again, and a retried one that faults again is refused while the SMMU is full", () => {
  const r = stallRig({ stallMax: 2 });
  const res: (TxnResult | undefined)[] = [];
  present(r, 2, res);
  r.sim.run();
  const [a, b] = drainEvents(r.smmu);
  assert.ok(a && b);
  r.smmu.submit([{
    opcode: CMD_RESUME,
    SID: 1,
    STAG: a.STAG,
    Resp: RESUME_TERM,
  }]);
  r.sim.run();
  present(r, 1, res); // takes the freed slot
  r.sim.run();
  assert.equal(r.smmu.stalledCount, 2);
  assert.equal(r.smmu.stats.stallMaxTerminations, 0);
  // Retry b: between CMD_RESUME and the retry b holds no slot, so the
  // refill below takes it and b's second fault is refused.
  r.smmu.submit([{
    opcode: CMD_RESUME,
    SID: 1,
    STAG: b.STAG,
    Resp: RESUME_RETRY,
  }]);
  present(r, 1, res);
  r.sim.run();
  assert.equal(r.smmu.stalledCount, 2);
  assert.equal(r.smmu.stats.stallMaxTerminations, 1);
  assert.equal(r.smmu.stats.stalls, 4);
});

Deno.test("the stall backlog is bounded by STALL_MAX: with a one-entry event queue the stall records wait, the refused faults' records are lost", () => {
  const r = stallRig({ stallMax: 4, evtqLog2: 0 });
  const res: (TxnResult | undefined)[] = [];
  present(r, 10, res);
  r.sim.run();
  assert.equal(r.smmu.stalledCount, 4);
  assert.equal(r.smmu.stats.stallMaxTerminations, 6);
  assert.equal(r.smmu.stats.evtqLost, 6);
  assert.equal(r.smmu.stats.evtqOverflows, 1);
  assert.equal(res.filter((x) => x && !x.ok && x.abort).length, 6);
  // The four stall records, none lost, come out as the queue drains.
  const events = drainEvents(r.smmu);
  assert.equal(events.length, 4);
  assert.ok(events.every((e) => e.Stall));
  assert.equal(new Set(events.map((e) => e.STAG)).size, 4);
});

Deno.test("STAG allocation wraps past 0xffff and skips STAGs still in use (STALL_MAX 65535: one free STAG in 2^16)", () => {
  const r = stallRig({ stallMax: 0xffff, evtqLog2: 0 });
  const res: (TxnResult | undefined)[] = [];
  present(r, 0xffff, res); // STAGs 0..0xfffe
  r.sim.run();
  assert.equal(r.smmu.stalledCount, 0xffff);
  const resume = (stag: number) => {
    r.smmu.submit([{
      opcode: CMD_RESUME,
      SID: 1,
      STAG: stag,
      Resp: RESUME_TERM,
    }]);
    r.sim.run();
  };
  resume(7);
  present(r, 1, res); // next after 0xfffe: 0xffff
  r.sim.run();
  resume(100);
  present(r, 1, res); // wraps to 0, skips 0..6 in use: 7
  r.sim.run();
  resume(7);
  present(r, 1, res); // from 8, skips 8..99 in use: 100
  r.sim.run();
  const tags = r.smmu.stalledTags(1);
  assert.equal(tags.length, 0xffff);
  assert.ok(tags.includes(0xffff) && tags.includes(100));
  assert.ok(!tags.includes(7));
  assert.equal(r.smmu.stats.stallMaxTerminations, 0);
});
