/**
 * `deno task sim --check`: the invariant checks run for the scenario (or
 * every sweep point) and are reported in the metrics; a broken invariant is
 * an internal error of the model (exit 1, the invariant's name on stderr),
 * which tests/reliability/invariants_test.ts provokes on a hand-broken
 * machine, since no scenario file can break one.
 */
import assert from "node:assert/strict";
import { runSim as sim } from "./_run.ts";

const SCENARIO = {
  host: { memory: "1GiB" },
  vm: { memory: "16MiB" },
  dma: { mode: "iopf", mmuNotifier: true },
  device: { fault: "pri" },
  workload: { kind: "accelerator", messageSize: "64KiB", messages: 3 },
};

Deno.test("--check runs the invariant checks and reports them", async (t) => {
  const dir = Deno.makeTempDirSync({ prefix: "iopf-check-" });
  try {
    const one = `${dir}/one.json`;
    Deno.writeTextFileSync(one, JSON.stringify(SCENARIO));
    const two = `${dir}/sweep.json`;
    Deno.writeTextFileSync(
      two,
      JSON.stringify({
        ...SCENARIO,
        sweep: { "smmu.stage": ["s2", "nested"] },
      }),
    );
    await t.step("one scenario", async () => {
      const r = await sim([one, "--check", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      const m = JSON.parse(r.stdout);
      assert.ok(m.invariants.checks > 0, r.stdout);
      assert.equal(m.invariants.violations, 0);
      assert.equal(m.isolationViolations, 0);
    });
    await t.step("without --check there is no invariants field", async () => {
      const r = await sim([one, "--json"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).invariants, undefined);
    });
    await t.step("every point of a sweep, on workers", async () => {
      const r = await sim([two, "--check", "--json", "--workers", "2"]);
      assert.equal(r.code, 0, r.stderr);
      const ms = JSON.parse(r.stdout);
      assert.equal(ms.length, 2);
      for (const m of ms) assert.ok(m.invariants.checks > 0);
    });
    await t.step("the CSV has the invariant columns", async () => {
      const csv = `${dir}/out.csv`;
      const r = await sim([one, "--check", "--csv", csv]);
      assert.equal(r.code, 0, r.stderr);
      const [header] = Deno.readTextFileSync(csv).split("\n");
      assert.match(header!, /(^|,)invariants\.checks(,|$)/);
      assert.match(r.stdout, /invariants\.checks/);
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
