import assert from "node:assert/strict";
import { formatCell } from "../../lib/analysis/mod.ts";
import { metricsTable, table } from "../../lib/notebook/mod.ts";
import { emptyMetrics, type Metrics } from "../../lib/experiment/mod.ts";

const DISPLAY = Symbol.for("Jupyter.display");

Deno.test("table: formats cells by field name and shows HTML in Jupyter", () => {
  const t = table([
    { mode: "iopf", setupNs: 4e6, lockedBytesPeak: 2 ** 30, iova: 0x1000 },
    { mode: "static-pin", setupNs: 2.9e9, faults: { total: 12345 } },
  ], {
    columns: ["mode", "setupNs", "lockedBytesPeak", "iova", "faults.total"],
  });
  assert.deepEqual(t.cells, [
    ["iopf", "4.00 ms", "1 GiB", "0x1000", "-"],
    ["static-pin", "2.900 s", "-", "-", "12,345"],
  ]);
  const bundle =
    (t as unknown as Record<symbol, () => Record<string, string>>)[DISPLAY]!();
  assert.ok(bundle["text/html"]!.startsWith("<table>"));
  assert.ok(
    bundle["text/html"]!.includes('<td style="text-align:right">2.900 s</td>'),
  );
  assert.ok(bundle["text/plain"]!.includes("static-pin"));
});

Deno.test("table: columns default to every key, labels and caption apply, HTML is escaped", () => {
  const t = table([{ a: "<b>", b: 1 }, { c: true }], {
    labels: { a: "A & co" },
    caption: "x < y",
  });
  assert.deepEqual(t.columns, ["a", "b", "c"]);
  assert.deepEqual(t.headers, ["A & co", "b", "c"]);
  assert.ok(t.html.includes("&lt;b&gt;") && t.html.includes("A &amp; co"));
  assert.ok(t.html.includes("<caption>x &lt; y</caption>"));
  assert.ok(String(t).startsWith("x < y\n"));
});

Deno.test("table: a custom format replaces the default", () => {
  const t = table([{ n: 1.5 }], { format: (f, v) => `${f}:${v}` });
  assert.deepEqual(t.cells, [["n:1.5"]]);
});

Deno.test("formatCell: sizes, addresses, metrics, missing values", () => {
  assert.equal(formatCell("vm.memory", 4 * 2 ** 30), "4 GiB");
  assert.equal(formatCell("gpa", 255), "0xff");
  assert.equal(formatCell("throughputBytesPerSec", 8e9), "8.00 GB/s");
  assert.equal(formatCell("x", undefined), "-");
  assert.equal(formatCell("x", false), "false");
  assert.equal(formatCell("dma.mode", "iopf"), "iopf");
});

Deno.test("metricsTable: one row per metric, one column per run", () => {
  const a: Metrics = { ...emptyMetrics("a", 1), setupNs: 1e6 };
  const b: Metrics = {
    ...emptyMetrics("b[vm.memory=4GiB]", 1),
    sweepPoint: { "vm.memory": "4GiB" },
    setupNs: 2e9,
  };
  const t = metricsTable([a, b], { fields: ["setupNs", "faults.total"] });
  assert.deepEqual(t.headers, ["metric", "a", "vm.memory=4GiB"]);
  assert.deepEqual(t.cells, [
    ["setupNs", "1.00 ms", "2.000 s"],
    ["faults.total", "0", "0"],
  ]);
  const all = metricsTable(a);
  assert.ok(all.cells.some((r) => r[0] === "dmaErrors"));
  assert.ok(!all.cells.some((r) => r[0] === "name" || r[0] === "seed"));
});
