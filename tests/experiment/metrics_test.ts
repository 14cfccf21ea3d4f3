import assert from "node:assert/strict";
import {
  emptyMetrics,
  flattenMetrics,
  formatRate,
  formatSummary,
  formatValue,
  type Metrics,
  unflattenMetrics,
} from "../../lib/experiment/metrics.ts";
import { sampleMetrics } from "./_sample.ts";

Deno.test("flattenMetrics gives dotted keys in the INTERFACE order", () => {
  const flat = flattenMetrics(sampleMetrics());
  assert.deepEqual(Object.keys(flat), [
    "name",
    "seed",
    "setupNs",
    "runNs",
    "dmaBytes",
    "throughputBytesPerSec",
    "faults.total",
    "faults.stage1",
    "faults.stage2",
    "faults.stall",
    "faults.pri",
    "faultLatencyNs.mean",
    "faultLatencyNs.p50",
    "faultLatencyNs.p99",
    "faultLatencyNs.max",
    "pinnedPagesPeak",
    "pinnedPagesEnd",
    "lockedBytesPeak",
    "hostMemoryPeakBytes",
    "iotlb.hits",
    "iotlb.misses",
    "tlbInvalidations",
    "evtqOverflows",
    "priqOverflows",
    "priResponses.success",
    "priResponses.invalid",
    "priResponses.failure",
    "dmaErrors",
    "isolationViolations",
  ]);
  assert.equal(flat["faults.total"], 1024);
  assert.equal(flat["faultLatencyNs.p99"], 12_000);
});

Deno.test("flattenMetrics is stable whatever order the sections were built in", () => {
  const m = sampleMetrics();
  const shuffled = {
    ...m,
    faults: { pri: 0, stall: 1024, total: 1024, stage2: 1024, stage1: 0 },
    extra: { zeta: 1, alpha: 2 },
    droppedPackets: 5,
    name: m.name,
  } as Metrics;
  const keys = Object.keys(flattenMetrics(shuffled));
  assert.deepEqual(keys.slice(6, 11), [
    "faults.total",
    "faults.stage1",
    "faults.stage2",
    "faults.stall",
    "faults.pri",
  ]);
  assert.deepEqual(keys.slice(-3), [
    "droppedPackets",
    "extra.alpha",
    "extra.zeta",
  ]);
});

Deno.test("sweep points and extras keep dotted names and round-trip", () => {
  const m: Metrics = {
    ...sampleMetrics("s[vm.memory=4GiB]"),
    sweepPoint: {
      "vm.memory": "4GiB",
      "costs.mm.pinCall": 250,
      "host.prefault": true,
    },
    invariants: { checks: 10, violations: 0 },
    extra: { "vfio.lockWaitNs": 12.5 },
  };
  const flat = flattenMetrics(m);
  assert.deepEqual(Object.keys(flat).slice(0, 5), [
    "name",
    "seed",
    "sweepPoint.vm.memory",
    "sweepPoint.costs.mm.pinCall",
    "sweepPoint.host.prefault",
  ]);
  assert.equal(flat["sweepPoint.host.prefault"], "true");
  assert.equal(flat["extra.vfio.lockWaitNs"], 12.5);
  assert.equal(flat["invariants.checks"], 10);
  const back = unflattenMetrics(flat);
  assert.deepEqual(back, {
    ...m,
    sweepPoint: { ...m.sweepPoint, "host.prefault": "true" },
  });
});

Deno.test("emptyMetrics has every required field at zero", () => {
  const flat = flattenMetrics(emptyMetrics("x", 3));
  assert.equal(Object.keys(flat).length, 29);
  for (const [k, v] of Object.entries(flat)) {
    if (k !== "name" && k !== "seed") assert.equal(v, 0, k);
  }
});

Deno.test("formatValue picks units from the key", () => {
  assert.equal(formatValue("setupNs", 2_900_000_000), "2.900 s");
  assert.equal(formatValue("faultLatencyNs.mean", 1600), "1.60 us");
  assert.equal(formatValue("runNs", 999), "999 ns");
  assert.equal(formatValue("dmaBytes", 16 * 2 ** 30), "16 GiB");
  assert.equal(formatValue("hostMemoryPeakBytes", 1536), "1.50 KiB");
  assert.equal(formatValue("throughputBytesPerSec", 8e9), "8.00 GB/s");
  assert.equal(formatValue("pinnedPagesPeak", 4_194_304), "4,194,304 (16 GiB)");
  assert.equal(formatValue("iotlb.hits", 1234567), "1,234,567");
  assert.equal(formatValue("extra.ratio", 0.123456), "0.1235");
  assert.equal(formatValue("seed", 12345), "12345");
  assert.equal(formatValue("sweepPoint.seed", 12345), "12345");
  assert.equal(formatValue("name", "x"), "x");
  assert.equal(formatRate(0), "0 B/s");
  assert.equal(formatRate(1.25e9), "1.25 GB/s");
});

Deno.test("formatSummary prints an aligned table of one run", () => {
  const text = formatSummary(sampleMetrics());
  const lines = text.trimEnd().split("\n");
  assert.match(lines[0]!, /^name +boot-16g$/);
  assert.match(lines[1]!, /^-+ {2}-+$/);
  assert.match(text, /\nsetupNs +2\.900 s\n/);
  assert.match(text, /\nfaults\.total +1,024\n/);
  assert.match(text, /\nfaultLatencyNs\.p99 +12\.00 us\n/);
  assert.match(text, /\npinnedPagesPeak +4,194,304 \(16 GiB\)\n/);
  assert.match(text, /\nthroughputBytesPerSec +8\.00 GB\/s\n/);
  // Values are right-aligned in one column.
  const ends = lines.map((l) => l.length);
  assert.ok(ends.every((n) => n === ends[0]), text);
});

Deno.test("formatSummary heads a sweep's columns with the swept values", () => {
  const runs = ["4GiB", "16GiB"].map((mem, i) => ({
    ...sampleMetrics(`pin[vm.memory=${mem},dma.mode=iopf]`),
    sweepPoint: { "vm.memory": mem, "dma.mode": "iopf" },
    runNs: 1000 * (i + 1),
  }));
  const lines = formatSummary(runs).split("\n");
  assert.equal(lines[0], "pin: 2 points");
  assert.match(lines[1]!, /^vm\.memory +4GiB +16GiB$/);
  assert.match(lines[2]!, /^dma\.mode +iopf +iopf$/);
  assert.match(
    lines.find((l) => l.startsWith("runNs"))!,
    /^runNs +1\.00 us +2\.00 us$/,
  );
});

Deno.test("formatSummary wraps many runs into blocks", () => {
  const runs = Array.from({ length: 12 }, (_, i) => sampleMetrics(`run-${i}`));
  const text = formatSummary(runs, { width: 80 });
  for (const line of text.split("\n")) assert.ok(line.length <= 80, line);
  for (let i = 0; i < 12; i++) assert.ok(text.includes(`run-${i}`));
  assert.equal(formatSummary([]), "(no runs)\n");
});
