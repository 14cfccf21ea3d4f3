/**
 * The VM start in simulated time (lib/experiment/machine.ts): the guest's
 * CPU touching its RAM, the guest's CPU writing a DMA input, and the state
 * a time series sees while the static pin runs.
 */
import assert from "node:assert/strict";
import { parseScenario } from "../../lib/experiment/scenario.ts";
import {
  runScenario,
  runScenarioWithSeries,
} from "../../lib/experiment/run.ts";
import type { Machine } from "../../lib/experiment/machine.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";

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

const MiB = 2 ** 20;
const COSTS = loadCostProfile();
/** A first touch of a 4 KiB page: a host page fault that zeroes the page. */
const FIRST_TOUCH = COSTS["mm.zeroPer4k"] + COSTS["mm.faultOverhead"];

function run(json: Record<string, unknown>) {
  let populated = 0, pinned = 0, started = 0;
  const r = runScenarioWithSeries(parseScenario(json), {
    inspect: (m: Machine) => {
      for (const vm of m.vms) {
        populated += vm.mm.populatedBytes;
        pinned += vm.mm.pinnedPages;
        started += vm.started ? 1 : 0;
      }
    },
  });
  return { ...r, populated, pinned, started };
}

Deno.test("the guest's touched RAM is populated on the host, not pinned, at the cost of a first touch per page", () => {
  const r = run({
    host: { memory: "1GiB" },
    vm: { memory: "64MiB" },
    dma: { mode: "iopf" },
    guest: { touchedMemory: "25%" },
  });
  const pages = (16 * MiB) / 4096;
  assert.equal(r.populated, 16 * MiB);
  assert.equal(r.pinned, 0);
  assert.equal(r.metrics.extra!.guestTouchedBytes, 16 * MiB);
  assert.ok(
    Math.abs(r.metrics.extra!.guestTouchNs! - pages * FIRST_TOUCH) < 1e-6,
  );
  // The touch runs after the VM setup (the cheap IOPF MAP_DMA), before the
  // workload: setupNs does not count it, the run ends after it.
  const none = run({
    host: { memory: "1GiB" },
    vm: { memory: "64MiB" },
    dma: { mode: "iopf" },
    guest: { touchedMemory: 0 },
  });
  assert.equal(r.metrics.setupNs, none.metrics.setupNs);
  assert.equal(none.metrics.extra!.guestTouchNs, 0);
  assert.ok(
    Math.abs(
      r.series.at(-1)!.tNs - none.series.at(-1)!.tNs - pages * FIRST_TOUCH,
    ) < 1e-6,
  );
  // Given as a size, the same.
  const bytes = run({
    host: { memory: "1GiB" },
    vm: { memory: "64MiB" },
    dma: { mode: "iopf" },
    guest: { touchedMemory: "16MiB" },
  });
  assert.equal(bytes.populated, 16 * MiB);
  // Under static pinning every page is already present: the touch is free.
  const pin = run({
    host: { memory: "1GiB" },
    vm: { memory: "64MiB" },
    dma: { mode: "static-pin" },
    guest: { touchedMemory: "25%" },
  });
  assert.equal(pin.metrics.extra!.guestTouchNs, 0);
  assert.equal(pin.pinned, (64 * MiB) / 4096);
});

Deno.test("a device fault over pages the guest's CPU wrote pins and maps without zeroing", () => {
  // One 64 KiB input and one output, pre-map 16: one fault per buffer.
  const latency = (cpuWritesInput: boolean) => {
    const r = run({
      host: { memory: "1GiB" },
      vm: { memory: "64MiB" },
      dma: { mode: "iopf", premapPages: 16 },
      guest: { touchedMemory: 0 },
      workload: {
        kind: "accelerator",
        messageSize: "64KiB",
        messages: 1,
        cpuWritesInput,
      },
    });
    assert.equal(r.metrics.faults.total, 2);
    assert.equal(r.metrics.extra!.premappedPages, 30);
    return r;
  };
  const plain = latency(false), written = latency(true);
  // The input's fault is the shorter one (mean = (in + out) / 2, max = out).
  const lIn = (r: typeof plain) =>
    2 * r.metrics.faultLatencyNs.mean - r.metrics.faultLatencyNs.max;
  // Its 16 pages were faulted in by the CPU: the device's fault does not
  // pay the 16 zeroings and page faults (the rest of the fault is alike).
  const saved = lIn(plain) - lIn(written);
  assert.ok(saved >= 16 * COSTS["mm.zeroPer4k"], `${saved}`);
  assert.ok(saved <= 16 * FIRST_TOUCH, `${saved}`);
  // The CPU paid them instead: the same pages are populated either way.
  assert.equal(written.populated, plain.populated);
});

Deno.test("a static pin's pinned pages grow through its duration in the time series", () => {
  const r = run({
    host: { memory: "1GiB" },
    vm: { memory: "256MiB" },
    dma: { mode: "static-pin" },
  });
  const total = (256 * MiB) / 4096;
  const setup = r.metrics.setupNs;
  const during = r.series.filter((x) => x.tNs < setup);
  const mid = during.filter((x) => x.pinnedPages > 0 && x.pinnedPages < total);
  assert.ok(mid.length >= 10, `${mid.length} samples mid-pin`);
  for (let i = 1; i < during.length; i++) {
    assert.ok(during[i]!.pinnedPages >= during[i - 1]!.pinnedPages);
  }
  // Pinned pages follow the pin's time: at a quarter of it, about a quarter.
  const q = during.find((x) => x.tNs >= setup / 4)!;
  const f = q.pinnedPages / total;
  assert.ok(f > 0.1 && f < 0.5, `${f} pinned at ${q.tNs} of ${setup} ns`);
  assert.equal(r.series.at(-1)!.pinnedPages, total);
  // Locked bytes follow the pins; populated bytes run just ahead of them.
  for (const x of during) {
    assert.equal(x.lockedBytes, x.pinnedPages * 4096);
    assert.ok(x.populatedBytes >= x.pinnedPages * 4096);
  }
});

Deno.test("a host that cannot back what the guests touch fails the VMs, naming guest.touchedMemory", () => {
  const r = run({
    host: { memory: "256MiB", swap: 0 },
    vm: { memory: "96MiB", count: 3 },
    dma: { mode: "iopf" },
    guest: { touchedMemory: "90%" },
  });
  assert.equal(r.started, 2);
  assert.equal(r.metrics.extra!.vmsFailed, 1);
  assert.match(
    r.metrics.errors![0]!,
    /^vm2: guest\.touchedMemory: the guest touched 86\.40 MiB of its RAM and the host could not back it: .*out of host memory/,
  );
  // With swap the third VM starts, swapping the others' touched pages out.
  const swapped = run({
    host: { memory: "256MiB" },
    vm: { memory: "96MiB", count: 3 },
    dma: { mode: "iopf" },
    guest: { touchedMemory: "90%" },
  });
  assert.equal(swapped.started, 3);
  assert.ok(swapped.metrics.extra!.swapOuts! > 0);
  assert.equal(
    swapped.metrics.extra!.swapPeakBytes,
    swapped.metrics.extra!.swapOuts! * 4096,
  );
});
