import assert from "node:assert/strict";
import { facetLines, stackedBars } from "../../lib/plot/mod.ts";

const rows = [
  { vm: 1, ns: 1e6, mode: "iopf", backing: "4k" },
  { vm: 2, ns: 2e6, mode: "iopf", backing: "4k" },
  { vm: 1, ns: 3e6, mode: "static-pin", backing: "4k" },
  { vm: 2, ns: 6e6, mode: "static-pin", backing: "4k" },
];

Deno.test("facetLines: one series per value, in the given order, y in a readable unit", () => {
  const fig = facetLines(rows, {
    x: "vm",
    y: "ns",
    series: "mode",
    seriesDomain: ["static-pin", "iopf"],
    fx: "backing",
    xLabel: "VMs",
    yLabel: "setup",
    yUnit: "ns",
    yType: "log",
    title: "Setup",
  });
  assert.match(fig.svg, /setup \(ms\)/);
  assert.ok(fig.svg.indexOf("static-pin") < fig.svg.indexOf(">iopf<"));
});

Deno.test("facetLines and stackedBars refuse a value that is not a number", () => {
  const bad = [{ vm: 1, ns: "slow", mode: "iopf" }];
  assert.throws(
    () =>
      facetLines(bad, {
        x: "vm",
        y: "ns",
        series: "mode",
        xLabel: "",
        yLabel: "",
        title: "",
      }),
    /row 0 has ns="slow"; expected a number/,
  );
  assert.throws(
    () =>
      stackedBars(bad, {
        x: "mode",
        y: "ns",
        fill: "mode",
        xLabel: "",
        yLabel: "",
        title: "",
      }),
    /expected a number/,
  );
});
