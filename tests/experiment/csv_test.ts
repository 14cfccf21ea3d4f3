import assert from "node:assert/strict";
import fc from "fast-check";
import {
  metricsFromCsv,
  metricsToCsv,
  readCsv,
  seriesFromCsv,
  seriesToCsv,
} from "../../lib/experiment/csv.ts";
import {
  flattenMetrics,
  type Metrics,
  type SeriesRow,
} from "../../lib/experiment/metrics.ts";
import { sampleMetrics } from "./_sample.ts";

Deno.test("metricsToCsv writes one row per run with flattened columns", () => {
  const csv = metricsToCsv([
    sampleMetrics("a"),
    sampleMetrics("b, with comma", 2),
  ]);
  const lines = csv.split("\n");
  assert.equal(lines.length, 3);
  assert.ok(
    lines[0]!.startsWith(
      "name,seed,setupNs,runNs,dmaBytes,throughputBytesPerSec,faults.total,",
    ),
  );
  assert.ok(lines[2]!.startsWith('"b, with comma",2,'));
});

Deno.test("metrics survive a CSV round trip", () => {
  const runs: Metrics[] = [
    sampleMetrics("12"), // a name that looks like a number stays text
    {
      ...sampleMetrics("p[x=1]"),
      sweepPoint: { "vm.memory": "4GiB", seed: 3 },
      extra: { "a.b": 0.25 },
      droppedPackets: 7,
      faultLatencyNs: {
        mean: 1 / 3,
        p50: 1e-7,
        p99: 1e21,
        max: Number.MAX_SAFE_INTEGER,
      },
    },
  ];
  assert.deepEqual(metricsFromCsv(metricsToCsv(runs)), runs);
});

Deno.test("rows with different optional fields line up", () => {
  const csv = metricsToCsv([sampleMetrics("a"), {
    ...sampleMetrics("b"),
    droppedPackets: 3,
  }]);
  const rows = readCsv(csv);
  assert.equal(rows[0]!.droppedPackets, "");
  assert.equal(rows[1]!.droppedPackets, 3);
  assert.equal(metricsFromCsv(csv)[0]!.droppedPackets, undefined);
});

Deno.test("readCsv converts numbers unless told not to", () => {
  const text = "name,a,b,c\n007,1.5e3,x,Infinity\n";
  assert.deepEqual(readCsv(text), [{
    name: "007",
    a: 1500,
    b: "x",
    c: Infinity,
  }]);
  assert.deepEqual(readCsv(text, { numbers: false }), [{
    name: "007",
    a: "1.5e3",
    b: "x",
    c: "Infinity",
  }]);
});

Deno.test("property: any finite metric values round-trip through CSV", () => {
  // -0 is written as "0": compare it as 0.
  const num = fc.oneof(
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.nat(),
  )
    .map((x) => (x === 0 ? 0 : x));
  fc.assert(
    fc.property(fc.string(), num, num, num, (name, a, b, c) => {
      const m: Metrics = {
        ...sampleMetrics(name === "" ? "x" : name),
        runNs: a,
        faults: { total: b, stage1: c, stage2: 0, stall: 0, pri: 0 },
      };
      const back = metricsFromCsv(metricsToCsv([m]))[0]!;
      assert.deepEqual(flattenMetrics(back), flattenMetrics(m));
    }),
    { numRuns: 200 },
  );
});

Deno.test("series rows survive a CSV round trip", () => {
  const rows: SeriesRow[] = [0, 1e6, 2e6].map((tNs, i) => ({
    name: "s",
    tNs,
    dmaBytes: i * 4096,
    throughputBytesPerSec: i * 1e9,
    faults: i,
    pinnedPages: i * 2,
    populatedBytes: i * 8192,
    lockedBytes: i * 8192,
  }));
  const csv = seriesToCsv(rows);
  assert.equal(
    csv.split("\n")[0],
    "name,tNs,dmaBytes,throughputBytesPerSec,faults,pinnedPages,populatedBytes,lockedBytes",
  );
  assert.deepEqual(seriesFromCsv(csv), rows);
});
