/**
 * Determinism: the same scenario and seed give byte-identical JSON and CSV,
 * run after run, whether a sweep runs on the calling thread or on 1 or 2
 * workers, and through the command line (`--json` twice, `--csv` twice).
 */
import assert from "node:assert/strict";
import {
  expandSweep,
  type Metrics,
  metricsToCsv,
  runScenarioWithSeries,
  runSweep,
  seriesToCsv,
} from "../../lib/experiment/mod.ts";
import { smallScenario } from "./_machine.ts";

/** Scenarios with every source of randomness and concurrency the model has. */
const SCENARIOS: Record<string, Record<string, unknown>> = {
  "zipf random, IOPF, PRI, 4 workers, 2 VMs": {
    seed: 7,
    vm: { memory: "32MiB", count: 2 },
    device: { fault: "pri", priCapacity: 4 },
    smmu: { priqEntries: 4 },
    dma: { mode: "iopf", faultWorkers: 4, premapPages: 3 },
    workload: {
      kind: "random",
      workingSet: "8MiB",
      accesses: 800,
      accessSize: "6KiB",
      distribution: "zipf",
      writeFraction: 0.3,
    },
  },
  "nested on-fault storage, lazy": {
    seed: 3,
    smmu: { stage: "nested", invalidation: "lazy" },
    guest: { stage1: "on-fault" },
    dma: { mode: "iopf", faultWorkers: 2 },
    workload: { kind: "storage", blockSize: "32KiB", totalBytes: "1MiB" },
  },
  "nic-rx drops, static": {
    seed: 11,
    workload: {
      kind: "nic-rx",
      ringEntries: 8,
      bufferSize: "2KiB",
      packets: 500,
      rate: "100Gbps",
    },
  },
};

Deno.test("the same scenario and seed give byte-identical metrics, series and CSV", async (t) => {
  for (const [name, json] of Object.entries(SCENARIOS)) {
    await t.step(name, () => {
      const s = smallScenario({ name, check: true, ...json });
      const a = runScenarioWithSeries(s);
      const b = runScenarioWithSeries(s);
      assert.equal(JSON.stringify(b.metrics), JSON.stringify(a.metrics));
      assert.equal(metricsToCsv([b.metrics]), metricsToCsv([a.metrics]));
      assert.equal(seriesToCsv(b.series), seriesToCsv(a.series));
      assert.ok(a.series.length >= 2);
    });
  }
});

Deno.test("the seed matters: another seed gives other accesses", () => {
  const json = SCENARIOS["zipf random, IOPF, PRI, 4 workers, 2 VMs"]!;
  const a = runScenarioWithSeries(smallScenario({ ...json, seed: 1 }));
  const b = runScenarioWithSeries(smallScenario({ ...json, seed: 2 }));
  assert.notEqual(a.metrics.faults.total, 0);
  assert.notDeepEqual(
    { ...b.metrics, seed: 0 },
    { ...a.metrics, seed: 0 },
  );
});

/** A sweep over the mode, fault path and stage (8 points). */
const sweep = () =>
  expandSweep(smallScenario({
    name: "det-sweep",
    seed: 5,
    vm: { memory: "16MiB" },
    dma: { faultWorkers: 3 },
    workload: {
      kind: "random",
      workingSet: "4MiB",
      accesses: 300,
      distribution: "zipf",
    },
    check: true,
    sweep: {
      "dma.mode": ["static-pin", "iopf"],
      "device.fault": ["stall", "pri"],
      "smmu.stage": ["s2", "nested"],
    },
  }));

Deno.test("a sweep gives identical results on the calling thread and on 1 or 2 workers", async () => {
  const points = sweep();
  assert.equal(points.length, 8);
  const runs: Metrics[][] = [];
  for (const workers of [0, 1, 2]) {
    runs.push(await runSweep(points, { workers }));
  }
  const [a, b, c] = runs.map((r) => JSON.stringify(r));
  assert.equal(b, a);
  assert.equal(c, a);
  const [csvA, csvB, csvC] = runs.map((r) => metricsToCsv(r));
  assert.equal(csvB, csvA);
  assert.equal(csvC, csvA);
  assert.deepEqual(
    runs[0]!.map((m) => m.name),
    points.map((p) => p.name),
  );
});

/** Runs `deno task sim`'s entry point in a subprocess. */
async function simProcess(
  args: string[],
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      new URL("../../cli/sim.ts", import.meta.url).pathname,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: out.stdout,
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("the command line prints byte-identical JSON and writes byte-identical CSV", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "iopf-det-" });
  try {
    const file = `${dir}/det.json`;
    Deno.writeTextFileSync(
      file,
      JSON.stringify({
        seed: 9,
        host: { memory: "1GiB" },
        vm: { memory: "16MiB" },
        dma: { mode: "iopf", faultWorkers: 2 },
        workload: { kind: "random", workingSet: "4MiB", accesses: 200 },
        sweep: { "device.fault": ["stall", "pri"] },
      }),
    );
    const json1 = await simProcess([file, "--json", "--workers", "2"]);
    const json2 = await simProcess([file, "--json", "--workers", "0"]);
    assert.equal(json1.code, 0, json1.stderr);
    assert.equal(json2.code, 0, json2.stderr);
    assert.ok(json1.stdout.length > 100);
    assert.deepEqual(json2.stdout, json1.stdout);
    const parsed = JSON.parse(new TextDecoder().decode(json1.stdout));
    assert.equal(parsed.length, 2);
    const csv1 = await simProcess([file, "--json", "--csv", `${dir}/a.csv`]);
    const csv2 = await simProcess([file, "--json", "--csv", `${dir}/b.csv`]);
    assert.equal(csv1.code, 0, csv1.stderr);
    assert.equal(csv2.code, 0, csv2.stderr);
    const a = Deno.readFileSync(`${dir}/a.csv`);
    assert.ok(a.length > 100);
    assert.deepEqual(Deno.readFileSync(`${dir}/b.csv`), a);
    assert.deepEqual(csv1.stdout, json1.stdout);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
