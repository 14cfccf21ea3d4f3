import assert from "node:assert/strict";
import {
  FIELD_UNITS,
  fieldUnit,
  formatCell,
  formatValue,
} from "../../lib/analysis/mod.ts";
import { formatSummary } from "../../lib/experiment/metrics.ts";
import { emptyMetrics } from "../../lib/experiment/metrics.ts";
import { unitOf } from "../../lib/plot/mod.ts";

const MiB128 = 128 * 2 ** 20;

/** The fields the architecture review found read three ways, and their kin. */
const SIZES = [
  "workload.blockSize",
  "workload.messageSize",
  "workload.totalBytes",
  "vm.memory",
  "host.memory",
  "sweepPoint.workload.blockSize",
  "sweepPoint.vm.memory",
  "size",
  "dmaBytes",
  "lockedBytesPeak",
  "extra.reclaimedBytes",
];

Deno.test("a size is a size in the CLI, in tables and on chart axes", () => {
  for (const f of SIZES) {
    assert.equal(fieldUnit(f), "bytes", f);
    assert.equal(unitOf(f), "bytes", f);
    assert.equal(formatValue(f, MiB128), "128 MiB", f);
    assert.equal(formatCell(f, MiB128), "128 MiB", f);
  }
});

Deno.test("formatValue, formatCell and unitOf agree on every unit of the table", () => {
  const cases: [string, number, string, string][] = [
    ["setupNs", 2_900_000_000, "ns", "2.900 s"],
    ["faultLatencyNs.p99", 1600, "ns", "1.60 us"],
    ["throughputBytesPerSec", 8e9, "bytes/s", "8.00 GB/s"],
    ["pinnedPagesPeak", 4_194_304, "pages", "4,194,304 (16 GiB)"],
    ["iova", 0x8000000, "count", "0x8000000"],
    ["seed", 12345, "count", "12345"],
    ["sweepPoint.seed", 12345, "count", "12345"],
    ["faults.total", 1234567, "count", "1,234,567"],
  ];
  for (const [field, value, axis, text] of cases) {
    assert.equal(unitOf(field), axis, field);
    assert.equal(formatValue(field, value), text, field);
    assert.equal(formatCell(field, value), text, field);
  }
  // Every rule of the table names its unit and what it is for.
  for (const rule of FIELD_UNITS) {
    assert.ok(rule.leaf !== undefined || rule.path !== undefined);
    assert.ok(rule.means.length > 0);
  }
});

Deno.test("the CLI summary shows a swept size as a size", () => {
  const run = {
    ...emptyMetrics("storage[workload.blockSize=134217728]", 1),
    sweepPoint: { "workload.blockSize": MiB128 },
  };
  const text = formatSummary([run, run]);
  assert.match(text, /^workload\.blockSize\s+128 MiB\s+128 MiB$/m);
});
