import assert from "node:assert/strict";
import {
  ablationBreakdown,
  meltRows,
  pointLabel,
  seriesRows,
  sweepRows,
  vmDensity,
  vmFootprintBytes,
} from "../../lib/analysis/mod.ts";
import {
  emptyMetrics,
  expandSweep,
  type Metrics,
  parseScenario,
  type SeriesRow,
} from "../../lib/experiment/mod.ts";

const point = (
  name: string,
  sweepPoint: Record<string, string | number | boolean>,
): Metrics => ({ ...emptyMetrics(name, 1), sweepPoint });

Deno.test("pointLabel and sweepRows: swept values under their paths", () => {
  const m = point("s[vm.memory=1073741824,dma.mmuNotifier=true]", {
    "vm.memory": 2 ** 30,
    "dma.mmuNotifier": true,
  });
  assert.equal(pointLabel(m), "vm.memory=1 GiB, dma.mmuNotifier=true");
  assert.equal(pointLabel(m, ["dma.mmuNotifier"]), "dma.mmuNotifier=true");
  assert.equal(pointLabel(emptyMetrics("plain", 1)), "plain");
  const [row] = sweepRows([m]);
  assert.equal(row!["vm.memory"], 2 ** 30);
  assert.equal(row!["dma.mmuNotifier"], "true");
  assert.equal(row!["scenario"], "s");
  assert.equal(row!["faults.total"], 0);
});

Deno.test("seriesRows: rows of several runs named by their points", () => {
  const sample: SeriesRow = {
    name: "s[dma.mode=iopf]",
    tNs: 0,
    dmaBytes: 0,
    throughputBytesPerSec: 0,
    faults: 0,
    pinnedPages: 0,
    populatedBytes: 0,
    lockedBytes: 0,
  };
  const rows = seriesRows([
    {
      metrics: point("s[dma.mode=iopf]", { "dma.mode": "iopf" }),
      series: [sample, sample],
    },
    {
      metrics: point("s[dma.mode=static-pin]", { "dma.mode": "static-pin" }),
      series: [sample],
    },
  ]);
  assert.deepEqual(rows.map((r) => r.name), [
    "dma.mode=iopf",
    "dma.mode=iopf",
    "dma.mode=static-pin",
  ]);
});

Deno.test("meltRows: wide rows to long rows", () => {
  const rows = meltRows([{ k: "a", f: { x: 1, y: 2 } }], {
    keep: ["k"],
    fields: { "f.x": "X", "f.y": "Y" },
    key: "which",
  });
  assert.deepEqual(rows, [
    { k: "a", which: "X", value: 1 },
    { k: "a", which: "Y", value: 2 },
  ]);
  assert.deepEqual(meltRows([{ a: 1 }], { fields: ["a"] }), [
    { field: "a", value: 1 },
  ]);
});

Deno.test("vmDensity: host RAM over what one VM needed", () => {
  const m: Metrics = {
    ...emptyMetrics("m", 1),
    hostMemoryPeakBytes: 2 * 2 ** 30,
    lockedBytesPeak: 3 * 2 ** 30,
    extra: { vmsStarted: 1 },
  };
  assert.equal(vmFootprintBytes(m), 3 * 2 ** 30);
  assert.equal(vmDensity(m, 64 * 2 ** 30), 21);
  assert.equal(
    vmDensity({ ...m, extra: { vmsStarted: 3 } }, 64 * 2 ** 30),
    64,
  );
  assert.equal(vmDensity(emptyMetrics("none", 1), 2 ** 30), Infinity);
  assert.throws(() => vmDensity(m, 0), /EINVAL/);
});

Deno.test("ablationBreakdown: parts plus the rest add up to the measured latency", () => {
  const s = parseScenario({
    vm: { memory: "64MiB" },
    device: { fault: "pri" },
    dma: { mode: "iopf" },
    workload: { kind: "accelerator", messageSize: "16KiB", messages: 2 },
  });
  const parts = ablationBreakdown(s, { keepZero: true });
  const total = parts.reduce((a, p) => a + p.latencyNs, 0);
  const shares = parts.reduce((a, p) => a + p.share, 0);
  assert.ok(Math.abs(shares - 1) < 1e-9, `shares sum to ${shares}`);
  assert.ok(total > 0);
  const byPart = new Map(parts.map((p) => [p.part, p]));
  assert.ok(byPart.get("PCIe ATS/PRI")!.latencyNs > 0, "PRI has PCIe costs");
  assert.equal(byPart.get("VMM + guest")!.latencyNs, 0, "not nested");
  assert.equal(parts.at(-1)!.part, "the rest");
  // Without keepZero the parts that changed nothing are left out.
  assert.ok(
    !ablationBreakdown(s).some((p) => p.part === "VMM + guest"),
  );
});

Deno.test("ablationBreakdown: refuses a sweep and a part naming no cost", () => {
  const sweep = parseScenario({
    vm: { memory: "64MiB" },
    sweep: { "dma.mode": ["iopf"] },
  });
  assert.throws(() => ablationBreakdown(sweep), /sweep/);
  const one = expandSweep(sweep)[0]!;
  assert.throws(
    () => ablationBreakdown(one, { parts: { nothing: ["nope."] } }),
    /names no time cost/,
  );
});
