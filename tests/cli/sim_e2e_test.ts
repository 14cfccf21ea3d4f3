import assert from "node:assert/strict";
import { runSim as sim } from "./_run.ts";
import { metricsFromCsv } from "../../lib/experiment/csv.ts";

const SCENARIO = {
  name: "e2e",
  vm: { memory: "128MiB" },
  host: { memory: "2GiB" },
  dma: { mode: "iopf" },
  workload: {
    kind: "accelerator",
    messageSize: "64KiB",
    messages: 3,
    reuseBuffers: true,
  },
};

Deno.test("deno task sim end to end", async (t) => {
  const dir = Deno.makeTempDirSync();
  try {
    const file = `${dir}/s.json`;
    Deno.writeTextFileSync(file, JSON.stringify(SCENARIO));

    await t.step(
      "--json prints only the metrics object of the run",
      async () => {
        const r = await sim([file, "--json"]);
        assert.equal(r.code, 0, r.stderr);
        const m = JSON.parse(r.stdout);
        assert.equal(m.name, "e2e");
        assert.equal(
          m.faults.total,
          32,
          "16 input + 16 output pages fault once each",
        );
        assert.equal(m.dmaBytes, 3 * 2 * 65536);
        assert.equal(m.dmaErrors, 0);
      },
    );

    await t.step("without --json a summary table", async () => {
      const r = await sim([file]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /faults\.total\s+32/);
      assert.match(r.stdout, /setupNs/);
    });

    await t.step(
      "a sweep gives an array and one CSV row per point",
      async () => {
        Deno.writeTextFileSync(
          file,
          JSON.stringify({
            ...SCENARIO,
            sweep: { "dma.mode": ["static-pin", "iopf"] },
          }),
        );
        const csv = `${dir}/out.csv`;
        const r = await sim([file, "--json", "--csv", csv]);
        assert.equal(r.code, 0, r.stderr);
        const runs = JSON.parse(r.stdout);
        assert.equal(runs.length, 2);
        assert.deepEqual(
          runs.map((m: { faults: { total: number } }) => m.faults.total),
          [0, 32],
        );
        const rows = metricsFromCsv(Deno.readTextFileSync(csv));
        assert.equal(rows.length, 2);
        assert.equal(rows[1]!.faults.total, 32);
        assert.equal(rows[0]!.name, "e2e[dma.mode=static-pin]");
      },
    );

    await t.step("--check runs the invariants and reports them", async () => {
      Deno.writeTextFileSync(file, JSON.stringify(SCENARIO));
      const r = await sim([file, "--json", "--check"]);
      assert.equal(r.code, 0, r.stderr);
      const m = JSON.parse(r.stdout);
      assert.ok(m.invariants.checks > 0);
      assert.equal(m.invariants.violations, 0);
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
