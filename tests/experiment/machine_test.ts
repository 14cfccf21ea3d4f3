import assert from "node:assert/strict";
import { runScenario } from "../../lib/experiment/run.ts";
import { parseScenario } from "../../lib/experiment/scenario.ts";

/** The prefault of a 1 GiB hugetlb guest with `threads` prealloc threads, in ns. */
function prefaultNs(threads: number, backing = "hugetlb-2m"): number {
  const scenario = (prefault: boolean) =>
    parseScenario({
      name: `prefault-${threads}`,
      host: {
        memory: "2GiB",
        backing,
        prefault,
        prefaultThreads: threads,
      },
      vm: { memory: "1GiB" },
      dma: { mode: "iopf" },
      workload: { kind: "boot" },
      // one core zeroes a page per 100 ns, the host one per 25 ns: four
      // cores saturate it; faults cost 1000 ns each
      costs: {
        "mm.zeroPer4k": 100,
        "mm.memBandwidthPer4k": 25,
        "mm.faultHugetlb2m": 1000,
        "mm.faultOverhead": 1000,
      },
    });
  return runScenario(scenario(true)).setupNs -
    runScenario(scenario(false)).setupNs;
}

Deno.test("QEMU prealloc threads share the host's memory bandwidth", () => {
  // 512 faults and 262144 pages to zero, split evenly over the threads;
  // each thread zeroes at max(100, threads * 25) ns per page
  const expect = (t: number) =>
    (512 / t) * 1000 + (262_144 / t) * Math.max(100, t * 25);
  for (const t of [1, 2, 4, 8, 16]) {
    assert.ok(
      Math.abs(prefaultNs(t) - expect(t)) < 1e-6 * expect(t),
      `${t} threads: ${prefaultNs(t)} vs ${expect(t)}`,
    );
  }
  // linear up to 4 threads, then flat (only the faults still divide)
  assert.ok(prefaultNs(4) < prefaultNs(2) / 1.99);
  const flat = prefaultNs(16) / prefaultNs(4);
  assert.ok(flat > 0.95 && flat < 1, `16 vs 4 threads: ${flat}`);
});

Deno.test("an odd split: the remainder goes to the first threads", () => {
  // 512 huge pages over 3 threads: 171, 171, 170; the slowest decides
  const ns = prefaultNs(3);
  const slowest = 171 * 1000 + 171 * 512 * Math.max(100, 3 * 25);
  // while all three run each zeroes at 100; the end is set by the 171s
  assert.ok(Math.abs(ns - slowest) < 1e-6 * slowest, `${ns} vs ${slowest}`);
});
