/**
 * The bench verdict logic of bench/compare.ts and the targets of
 * bench/_targets.ts, on hand-made result sets (no timing is measured here).
 */
import assert from "node:assert/strict";
import {
  aggregateReps,
  type BenchRow,
  type BenchSet,
  MIN_NOISE_BAND,
  regressions,
  spread,
  verdict,
} from "../../bench/compare.ts";
import { checkTarget, TARGETS } from "../../bench/_targets.ts";
import { parseRunArgs } from "../../bench/run.ts";

function row(
  name: string,
  p75: number,
  baseline = false,
  group = "g",
): BenchRow {
  return { group, name, baseline, n: 10, avg: p75, p75, min: p75, max: p75 };
}

function set(...benches: BenchRow[]): BenchSet {
  return { runtime: "test", cpu: "test", benches };
}

Deno.test("spread: nearest-rank min, median and p99 of the runs", () => {
  assert.deepEqual(spread([5, 1, 3]), { n: 3, min: 1, p50: 3, p99: 5 });
  assert.deepEqual(spread([2, 4]), { n: 2, min: 2, p50: 2, p99: 4 });
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(spread(hundred).p99, 99);
});

Deno.test("aggregateReps: per-run ratios to the in-run baseline cancel a slower run", () => {
  // The second run is twice as slow for every bench (a busy neighbour).
  const a = aggregateReps([
    set(row("base", 100, true), row("x", 300)),
    set(row("base", 200, true), row("x", 600)),
    set(row("base", 110, true), row("x", 330)),
  ]);
  const x = a.benches.find((b) => b.name === "x")!;
  assert.deepEqual(x.reps?.ratio, { n: 3, min: 3, p50: 3, p99: 3 });
  assert.deepEqual(x.reps?.perOp, { n: 3, min: 300, p50: 330, p99: 600 });
  assert.equal(x.p75, 330, "the median run's figures");
  assert.equal(
    a.benches.find((b) => b.name === "base")!.reps?.ratio,
    undefined,
  );
});

Deno.test("aggregateReps: a bench that failed in any run is failed", () => {
  const failed: BenchRow = { ...row("x", NaN), error: "boom" };
  const a = aggregateReps([set(row("x", 10)), set(failed)]);
  assert.equal(a.benches[0]!.error, "boom");
});

Deno.test("verdict: inside the noise band is the same, beyond it regressed or improved", () => {
  const ref = aggregateReps([
    set(row("b", 100, true), row("x", 200)),
    set(row("b", 100, true), row("x", 220)),
    set(row("b", 100, true), row("x", 210)),
  ]).benches[1]!;
  // Reference ratios 2.0, 2.1, 2.2: band = 0.2 / 2.1 = 9.5 %.
  const cur = (xs: number[]) =>
    aggregateReps(xs.map((x) => set(row("b", 100, true), row("x", x))))
      .benches[1]!;
  const same = verdict(cur([215, 215, 215]), ref);
  assert.equal(same.verdict, "same");
  assert.ok(Math.abs(same.band - 0.2 / 2.1) < 1e-9);
  assert.equal(verdict(cur([260, 260, 260]), ref).verdict, "regressed");
  assert.equal(verdict(cur([150, 150, 150]), ref).verdict, "improved");
  // A noisy current run widens the band: 2.6 within 1.5..3.0 is not a regression.
  assert.equal(verdict(cur([150, 260, 300]), ref).verdict, "same");
  assert.equal(verdict(cur([260]), undefined).verdict, "new");
});

Deno.test("verdict: runs whose spreads overlap are the same, however far apart their medians", () => {
  // The stall fault bench of one tree in two sets of three processes
  // against the reference (ns per fault, 2026-12-04): medians 45 % and 31 %
  // above it, each beyond its band, every time with a run as fast as one
  // of the reference's.
  const runs = (xs: number[]) =>
    aggregateReps(xs.map((x) => set(row("f", x)))).benches[0]!;
  const ref = runs([7757, 8076, 9984]);
  for (const xs of [[7560, 11700, 11900], [9350, 10600, 10800]]) {
    const v = verdict(runs(xs), ref);
    assert.ok(v.change > v.band, `${xs}: ${v.change} within ${v.band}`);
    assert.equal(v.verdict, "same", `${xs}`);
  }
  // Apart by more than the band and with no overlap: a change.
  assert.equal(verdict(runs([10500, 11700, 11900]), ref).verdict, "regressed");
  assert.equal(verdict(runs([5000, 5100, 5200]), ref).verdict, "improved");
  // The faster of the two improved only when all its runs are faster.
  assert.equal(verdict(runs([5000, 5100, 8000]), ref).verdict, "same");
});

Deno.test("verdict: without spreads a single run compares per-op times with the minimum band", () => {
  const ref = row("x", 1000);
  assert.equal(
    verdict(row("x", 1000 * (1 + MIN_NOISE_BAND / 2)), ref).verdict,
    "same",
  );
  assert.equal(
    verdict(row("x", 1000 * (1 + 2 * MIN_NOISE_BAND)), ref).verdict,
    "regressed",
  );
});

Deno.test("regressions: lists only the benches beyond their band", () => {
  const ref = set(row("a", 100), row("b", 100));
  const cur = set(row("a", 100), row("b", 200));
  assert.deepEqual(regressions(cur, ref).map((b) => b.name), ["b"]);
});

Deno.test("targets: every target's bench is one a bench file defines", async () => {
  const names = new Set<string>();
  const dir = new URL("../../bench/", import.meta.url);
  const ops = await import("../../bench/_ops.ts");
  for (const e of Deno.readDirSync(dir)) {
    if (!e.name.endsWith("_bench.ts")) continue;
    const text = Deno.readTextFileSync(new URL(e.name, dir));
    for (const m of text.matchAll(/name(?:: | = )"([^"]+)"/g)) names.add(m[1]!);
    for (const m of text.matchAll(/`([^`$]*)\$\{fault\}([^`]*)`/g)) {
      for (const f of ["stall", "pri"]) names.add(`${m[1]}${f}${m[2]}`);
    }
  }
  names.add(ops.ACCESS_NAME_ON).add(ops.ACCESS_NAME_OFF);
  for (const t of TARGETS) {
    assert.ok(names.has(t.bench), `target bench ${t.bench} is not defined`);
  }
});

Deno.test("checkTarget: ratio to the baseline, to a named bench, rate and time", () => {
  const s = aggregateReps([set(
    row("limit: typed-array lookup", 1000, true, "translate"),
    row("iotlb hit s2", 3900, false, "translate"),
    row("iotlb hit nested", 6000, false, "translate"),
    // An iteration is 100 faults (bench/_ops.ts FAULT_BATCH): 900 ns each.
    row("stall fault round trip s2", 90_000, true, "fault"),
    row("static pin 16TiB hugetlb-1g", 16 * 1300, false, "pin"),
    row("static pin 1TiB hugetlb-1g", 1000, false, "pin"),
  )]);
  const check = (bench: string) =>
    checkTarget(TARGETS.find((t) => t.bench === bench)!, s);
  // translate: 1000 ns per 1000 lookups is 1 ns; a hit is 3.9 ns.
  assert.deepEqual(check("iotlb hit s2"), { value: "3.90x", met: true });
  assert.deepEqual(check("iotlb hit nested"), { value: "6.00x", met: false });
  assert.deepEqual(check("stall fault round trip s2"), {
    value: "1.11 M/s",
    met: true,
  });
  // Per GiB: 16 TiB at 1.3 ns/GiB-iteration-unit vs 1 TiB: 1.3x is not linear.
  assert.deepEqual(check("static pin 16TiB hugetlb-1g"), {
    value: "1.30x",
    met: false,
  });
  assert.equal(check("pri fault round trip s2"), undefined, "not run");
});

Deno.test("bench options: --reps, --gate, filters; bad values refused", () => {
  assert.deepEqual(parseRunArgs(["fault", "--reps", "5", "--gate"]), {
    update: false,
    gate: true,
    reps: 5,
    filters: ["fault"],
  });
  assert.equal(parseRunArgs([]).reps, 3);
  assert.throws(() => parseRunArgs(["--reps", "0"]), /--reps/);
  assert.throws(() => parseRunArgs(["--reps=x"]), /--reps/);
  assert.throws(() => parseRunArgs(["--fast"]), /unknown option --fast/);
});
