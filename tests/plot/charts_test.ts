import assert from "node:assert/strict";
import {
  barChart,
  displayUnit,
  lineChart,
  scatterChart,
  unitOf,
} from "../../lib/plot/charts.ts";
import { emptyMetrics } from "../../lib/experiment/metrics.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { assertGolden, assertWellFormedSvg } from "./_golden.ts";

const series = ["static-pin", "iopf"].flatMap((name) =>
  Array.from({ length: 11 }, (_, i) => ({
    name,
    tNs: i * 1e6,
    pinnedPages: name === "iopf" ? i * i * 1000 : 262_144,
    populatedBytes: i * 2 ** 27,
  }))
);

Deno.test("unitOf and displayUnit pick readable units", () => {
  assert.equal(unitOf("setupNs"), "ns");
  assert.equal(unitOf("faultLatencyNs.p99"), "ns");
  assert.equal(unitOf("throughputBytesPerSec"), "bytes/s");
  assert.equal(unitOf("hostMemoryPeakBytes"), "bytes");
  assert.equal(unitOf("pinnedPagesPeak"), "pages");
  assert.equal(unitOf("faults.total"), "count");
  assert.deepEqual(displayUnit("ns", 999), { factor: 1, suffix: "ns" });
  assert.deepEqual(displayUnit("ns", 2.9e9), { factor: 1e9, suffix: "s" });
  assert.deepEqual(displayUnit("ns", 1.5e6), { factor: 1e6, suffix: "ms" });
  assert.deepEqual(displayUnit("bytes", 16 * 2 ** 30), {
    factor: 2 ** 30,
    suffix: "GiB",
  });
  assert.deepEqual(displayUnit("bytes/s", 8e9), {
    factor: 1e9,
    suffix: "GB/s",
  });
  assert.deepEqual(displayUnit("count", 1e9), { factor: 1, suffix: "" });
});

Deno.test("lineChart draws series rows over time", () => {
  const fig = lineChart(series, { y: "pinnedPages", title: "Pinned pages" });
  assertWellFormedSvg(fig.svg);
  assert.ok(fig.svg.includes("time (ms)"));
  assert.ok(fig.svg.includes("pinnedPages (4 KiB pages)"));
  assert.ok(
    fig.svg.includes(">static-pin</text>") && fig.svg.includes(">iopf</text>"),
  );
  assertGolden("line_chart", fig.svg);
  const bytes = lineChart(series, {
    y: "populatedBytes",
    series: null,
    step: true,
  });
  assert.ok(bytes.svg.includes("populatedBytes (GiB)"));
  assert.ok(!bytes.svg.includes("color legend"));
});

Deno.test("barChart draws grouped bars with a legend", () => {
  const rows = ["4k", "thp", "hugetlb-2m"].flatMap((backing, i) =>
    ["static-pin", "iopf"].map((mode) => ({
      backing,
      mode,
      setupNs: (i + 1) * (mode === "iopf" ? 1e6 : 1e9),
    }))
  );
  const fig = barChart(rows, {
    x: "backing",
    y: "setupNs",
    group: "mode",
    title: "VM start",
  });
  assertWellFormedSvg(fig.svg);
  assert.ok(fig.svg.includes("setupNs (s)"));
  assertGolden("bar_chart_grouped", fig.svg);
  const single = barChart(rows.filter((r) => r.mode === "iopf"), {
    x: "backing",
    y: "setupNs",
  });
  assert.ok(single.svg.includes("setupNs (ms)"));
});

Deno.test("scatterChart uses log axes and leaves out non-positive values", () => {
  const rows = [1, 2, 4, 8].flatMap((workers) =>
    [1, 4, 16, 64].map((gib) => ({
      workers,
      vmBytes: gib * 2 ** 30,
      "p99Ns": (1600 * gib) / workers,
    }))
  );
  rows.push({ workers: 1, vmBytes: 0, p99Ns: 5 });
  const fig = scatterChart(rows, {
    x: "vmBytes",
    y: "p99Ns",
    series: "workers",
    connect: true,
  });
  assertWellFormedSvg(fig.svg);
  assert.ok(fig.svg.includes("vmBytes (GiB)"));
  assert.ok(!fig.svg.includes("⚠"), "Plot warned");
  assertGolden("scatter_log", fig.svg);
});

Deno.test("charts read nested metric fields by dotted path", () => {
  const runs = [1, 2, 3].map((seed) => ({
    ...emptyMetrics(`s${seed}`, seed),
    faults: { total: seed * 10, stage1: 0, stage2: 0, stall: 0, pri: 0 },
  }));
  const fig = barChart(runs, { x: "name", y: "faults.total" });
  assert.ok(fig.svg.includes("faults.total"));
  assert.equal((fig.svg.match(/<rect/g) ?? []).length, 3);
});

Deno.test("charts reject values that are not numbers", () => {
  assert.throws(
    () => lineChart([{ name: "a", tNs: 0, y: "lots" }], { y: "y" }),
    (e: unknown) =>
      e instanceof IopfLabError &&
      /Cannot draw lineChart: row 0 has tNs=0, y="lots"/.test(e.message),
  );
});

Deno.test("barChart on a log axis draws bars from the power of ten below the smallest value", () => {
  const f = barChart(
    [{ m: "a", v: 20 }, { m: "b", v: 3000 }, { m: "c", v: 0 }],
    {
      x: "m",
      y: "v",
      logY: true,
    },
  );
  const heights = [...f.svg.matchAll(/<rect[^>]*\sheight="([0-9.]+)"/g)].map((
    m,
  ) => Number(m[1]));
  const bars = heights.filter((h) => h > 0);
  assert.equal(
    bars.length,
    2,
    "the zero bar cannot be drawn on a log axis; the others are",
  );
});
