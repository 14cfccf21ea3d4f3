/**
 * CLI habits (issue 15): `--csv -` writes the CSV to stdout in place of the
 * table, `--help` prints usage and exits 0 without running anything, and
 * the size units the reference documents are the ones the parser applies.
 */
import assert from "node:assert/strict";
import { runSim as sim } from "./_run.ts";
import { metricsFromCsv } from "../../lib/experiment/csv.ts";
import { parseSize } from "../../lib/sim/units.ts";

const ROOT = new URL("../../", import.meta.url);

const SCENARIO = {
  name: "habits",
  vm: { memory: "128MiB" },
  host: { memory: "2GiB" },
  dma: { mode: "iopf" },
  workload: { kind: "accelerator", messageSize: "64KiB", messages: 2 },
  sweep: { seed: [1, 2] },
};

Deno.test("sim --csv - writes one CSV row per point to stdout, no table, no file", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const file = `${dir}/s.json`;
    Deno.writeTextFileSync(file, JSON.stringify(SCENARIO));
    const r = await sim([file, "--csv", "-", "--workers", "0"]);
    assert.equal(r.code, 0, r.stderr);
    const rows = metricsFromCsv(r.stdout);
    assert.deepEqual(rows.map((m) => m.seed), [1, 2]);
    assert.ok(rows.every((m) => m.faults.total > 0));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "s.json",
    ]);
    const both = await sim([file, "--csv", "-", "--json"]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--csv - and --json both write to stdout/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("every command's --help exits 0 and prints its usage, running nothing", async (t) => {
  const commands: [string, RegExp][] = [
    ["cli/sim.ts", /usage: deno task sim/],
    ["cli/report.ts", /usage: deno task report/],
    ["cli/calibration.ts", /usage: deno task calibration/],
    ["cli/mutants.ts", /usage: deno task mutants/],
    ["cli/merge.ts", /usage: deno task merge/],
    ["bench/run.ts", /usage: deno task bench /],
    ["bench/memory.ts", /usage: deno task bench:memory/],
  ];
  for (const [script, usage] of commands) {
    await t.step(script, async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", script, "--help"],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      assert.match(text, usage);
      assert.match(text, /options:\n[^]*--help/);
      assert.match(text, /example:\n {2}deno task /);
      assert.equal(new TextDecoder().decode(out.stderr), "");
    });
  }
});

Deno.test("docs/SCENARIO.md's size units are the parser's: 8GB is 10^9 bytes each, 8G and 8GiB 2^30", () => {
  const doc = Deno.readTextFileSync(new URL("docs/SCENARIO.md", ROOT));
  assert.match(doc, /`"8GB"` is 8 × 10\^9 = 8,000,000,000 bytes/);
  assert.match(
    doc,
    /`"8G"` and `"8GiB"` are 8 ×\s+2\^30 = 8,589,934,592 bytes/,
  );
  assert.equal(parseSize("8GB"), 8_000_000_000);
  assert.equal(parseSize("8G"), 8_589_934_592);
  assert.equal(parseSize("8GiB"), 8_589_934_592);
  assert.equal(parseSize("8gib"), parseSize("8GiB"));
  assert.equal(parseSize("4KB"), 4000);
  assert.equal(parseSize("4K"), 4096);
});

Deno.test("the sim table hides metrics 0 in every run unless --all", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const file = `${dir}/s.json`;
    const { sweep: _, ...one } = SCENARIO;
    Deno.writeTextFileSync(file, JSON.stringify(one));
    const short = await sim([file]);
    const full = await sim([file, "--all"]);
    assert.equal(short.code, 0, short.stderr);
    assert.equal(full.code, 0, full.stderr);
    const zeroRows = full.stdout.split("\n")
      .filter((l) => /^\S+\s+0(\s|$)/.test(l) && !l.startsWith("seed"));
    assert.ok(zeroRows.length > 0, "no all-zero metric to hide");
    for (const l of zeroRows) {
      const key = l.split(/\s+/)[0]!;
      assert.ok(!short.stdout.includes(`\n${key} `), `${key} shown`);
    }
    assert.match(short.stdout, /\(\d+ metrics 0 in every run not shown\)\n$/);
    assert.doesNotMatch(full.stdout, /not shown/);
    assert.match(short.stdout, /\nfaults\.total /);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the README's example scenario is data/scenarios/accelerator_iopf.json and its sweep has no duplicate point", async () => {
  const readme = Deno.readTextFileSync(new URL("README.md", ROOT));
  const block = readme.match(/## A scenario\n\n```json\n([^]*?)\n```/);
  assert.ok(block, "README has no example scenario");
  const file = new URL("data/scenarios/accelerator_iopf.json", ROOT);
  assert.deepEqual(
    JSON.parse(block[1]!),
    JSON.parse(Deno.readTextFileSync(file)),
  );
  const r = await sim([file.pathname, "--json", "--workers", "0"]);
  assert.equal(r.code, 0, r.stderr);
  const points = JSON.parse(r.stdout) as Record<string, unknown>[];
  assert.equal(points.length, 4);
  const bodies = points.map(({ name: _n, sweepPoint: _s, ...m }) =>
    JSON.stringify(m)
  );
  assert.equal(new Set(bodies).size, points.length, "two points ran alike");
});

Deno.test("the report's estimate counts the suite's runs and grows with the suite", async () => {
  const { estimateReport, formatReportEstimate } = await import(
    "../../cli/report.ts"
  );
  const { experimentScenarios, reportSuite } = await import(
    "../../lib/report/mod.ts"
  );
  const quick = estimateReport(true, 2);
  const full = estimateReport(false, 2);
  assert.equal(
    quick.runs,
    reportSuite({ quick: true }).flatMap(experimentScenarios).length,
  );
  assert.equal(quick.experiments, 9);
  assert.ok(full.runs > quick.runs && full.cpuSeconds > quick.cpuSeconds);
  assert.ok(full.memoryBytes >= quick.memoryBytes && quick.memoryBytes > 0);
  assert.equal(quick.wallSeconds, quick.cpuSeconds / 2);
  assert.ok(estimateReport(true, 1).memoryBytes <= quick.memoryBytes);
  // The README quotes the full suite's estimate.
  const { formatDuration } = await import("../../lib/experiment/estimate.ts");
  const readme = Deno.readTextFileSync(new URL("README.md", ROOT));
  const quoted = `${formatDuration(full.cpuSeconds)} of CPU for the full suite`;
  assert.ok(
    readme.replace(/\s+/g, " ").includes(quoted),
    `README does not say "${quoted}"`,
  );
  assert.match(
    formatReportEstimate(quick),
    /^report: \d+ runs in 9 experiments: about .+ of CPU \(about .+ on 2 workers\) and up to [0-9.]+ (MiB|GiB) of model state at once, estimated$/,
  );
});

Deno.test("the report's estimate leaves out the runs the results database holds", async () => {
  const { estimateReport, formatReportEstimate } = await import(
    "../../cli/report.ts"
  );
  const { experimentScenarios, reportSuite } = await import(
    "../../lib/report/mod.ts"
  );
  const { ResultsDb } = await import("../../lib/results/mod.ts");
  const { emptyMetrics } = await import("../../lib/experiment/metrics.ts");
  const dir = Deno.makeTempDirSync();
  const db = ResultsDb.open(`${dir}/r.sqlite`);
  try {
    const none = estimateReport(true, 2, db);
    assert.equal(none.stored, 0);
    assert.equal(none.cpuSeconds, estimateReport(true, 2).cpuSeconds);
    // Store the first experiment's runs (with series when it keeps them).
    const [first] = reportSuite({ quick: true });
    const points = experimentScenarios(first!);
    for (const sc of points) {
      db.put(sc, {
        metrics: emptyMetrics(sc.name, sc.seed),
        ...(first!.series ? { series: [] } : {}),
      });
    }
    const some = estimateReport(true, 2, db);
    assert.equal(some.stored, points.length);
    assert.equal(some.runs, none.runs);
    assert.ok(some.cpuSeconds < none.cpuSeconds);
    assert.match(
      formatReportEstimate(some),
      new RegExp(
        `^report: ${some.runs} runs in 9 experiments \\(${points.length} stored, read back\\): `,
      ),
    );
  } finally {
    db.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the report's long-run progress lines go to stderr and leave the outputs as they were", async () => {
  const { longRunLines } = await import("../../cli/report.ts");
  const { runReport } = await import("../../lib/report/mod.ts");
  const csvs = (dir: string) =>
    Object.fromEntries(
      [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".csv"))
        .map((e) => [e.name, Deno.readTextFileSync(`${dir}/${e.name}`)]),
    );
  const a = Deno.makeTempDirSync(), b = Deno.makeTempDirSync();
  try {
    const base = {
      quick: true,
      only: ["fault-latency"],
      workers: 0,
      progress: false,
      log: () => {},
    } as const;
    await runReport({ ...base, out: a });
    let lines = "";
    await runReport({
      ...base,
      out: b,
      onRunProgress: longRunLines((t) => void (lines += t), 0, 0),
    });
    assert.match(lines, /^report: \S+: (running|starting the VMs): /m);
    const before = csvs(a);
    assert.ok(Object.keys(before).length > 0);
    assert.deepEqual(csvs(b), before);
  } finally {
    Deno.removeSync(a, { recursive: true });
    Deno.removeSync(b, { recursive: true });
  }
});
