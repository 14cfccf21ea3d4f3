/**
 * Issue 17: a valid two-VM scenario with a deep queue of stall-model DMA
 * used to put more than 65,536 transactions in the SMMU's stall table and
 * hang in the STAG search. With SMMU_IDR5.STALL_MAX modelled (default 64)
 * the faults past the limit are terminated with an abort (the transfer
 * fails), and the run completes. Each run is a subprocess killed after
 * 120 s, so a regression fails the test instead of hanging CI.
 */
import assert from "node:assert/strict";

interface DeepRun {
  dmaErrors: number;
  stalledAfter: number;
  stats: Record<string, number>;
}

async function deepRun(
  queueDepth: number,
  stallMax?: number,
): Promise<DeepRun | "hung"> {
  const script = new URL("./_deep_stall_queue.ts", import.meta.url).pathname;
  const args = ["run", "-A", script, String(queueDepth)];
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
  }, 120_000);
  const res = await child.output();
  clearTimeout(timer);
  if (hung) return "hung";
  assert.ok(
    res.success,
    `the scenario failed: ${new TextDecoder().decode(res.stderr)}`,
  );
  return JSON.parse(new TextDecoder().decode(res.stdout));
}

Deno.test("two VMs, 2 x 40,000 stall-model accesses in flight (more than the 2^16 STAGs): the run completes; past STALL_MAX the faults are terminated with an abort", async () => {
  const r = await deepRun(40_000);
  assert.notEqual(r, "hung", "the simulator hung (killed after 120 s)");
  if (r === "hung") return;
  assert.ok(r.stats.stallMaxTerminations! > 0);
  // Each refused fault fails its transfer; nothing else fails.
  assert.equal(r.dmaErrors, r.stats.stallMaxTerminations);
  assert.equal(r.stalledAfter, 0);
  assert.equal(r.stats.stalls, r.stats.resumes);
});

Deno.test("two VMs with 2 x 32 accesses in flight stay within STALL_MAX: nothing is refused", async () => {
  const r = await deepRun(32);
  assert.notEqual(r, "hung");
  if (r === "hung") return;
  assert.equal(r.stats.stallMaxTerminations, 0);
  assert.equal(r.dmaErrors, 0);
  assert.ok(r.stats.stalls! > 0);
});

Deno.test("scenario field smmu.stallMax sets SMMU_IDR5.STALL_MAX: 2 x 32 accesses in flight past STALL_MAX = 8 are terminated with an abort (IHI0070 3.12: recorded with Stall = 0), and the run completes", async () => {
  const r = await deepRun(32, 8);
  assert.notEqual(r, "hung");
  if (r === "hung") return;
  assert.ok(r.stats.stallMaxTerminations! > 0);
  assert.equal(r.dmaErrors, r.stats.stallMaxTerminations);
  assert.equal(r.stalledAfter, 0);
  assert.equal(r.stats.stalls, r.stats.resumes);
});
