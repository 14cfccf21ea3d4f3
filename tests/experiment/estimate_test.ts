import assert from "node:assert/strict";
import {
  estimateWork,
  memoryLimit,
  WORK_LIMIT_SECONDS,
} from "../../lib/experiment/estimate.ts";
import { parseScenario } from "../../lib/experiment/scenario.ts";

Deno.test("work estimate: names the field that makes a run large", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{
      host: { memory: "16TiB" },
      vm: { memory: "8TiB", count: 3 },
      dma: { mode: "static-pin" },
    }, "vm.memory"],
    [{
      vm: { memory: "1GiB" },
      dma: { mode: "iopf" },
      workload: { kind: "random", workingSet: "512MiB", accesses: 1e9 },
    }, "workload.accesses"],
    [{
      vm: { memory: "1GiB" },
      dma: { mode: "iopf" },
      workload: { kind: "storage", blockSize: "4KiB", totalBytes: "4096TiB" },
    }, "workload.totalBytes"],
    [
      {
        host: { memory: "8GiB" },
        vm: { memory: "1GiB", count: 2 },
        workload: { kind: "nic-rx", packets: 1e9 },
      },
      "workload.packets",
    ],
  ];
  for (const [raw, field] of cases) {
    const e = estimateWork(parseScenario(raw));
    assert.equal(e.field, field);
    assert(e.cpuSeconds > WORK_LIMIT_SECONDS, `${field}: ${e.cpuSeconds}`);
  }
});

Deno.test("work estimate: small scenarios are far below the limit, and it scales linearly", () => {
  const one = estimateWork(
    parseScenario({ vm: { memory: "64GiB" }, host: { memory: "128GiB" } }),
  );
  const two = estimateWork(
    parseScenario({ vm: { memory: "128GiB" }, host: { memory: "256GiB" } }),
  );
  assert(one.cpuSeconds < 10);
  assert(Math.abs(two.cpuSeconds / one.cpuSeconds - 2) < 1e-9);
  // hugetlb pins a folio at a time: far less work than 4 KiB pages.
  const huge = estimateWork(parseScenario({
    vm: { memory: "64GiB" },
    host: { memory: "128GiB", backing: "hugetlb-1g" },
  }));
  assert(huge.cpuSeconds < one.cpuSeconds / 100);
});

Deno.test("work estimate: model memory of a 16 TiB 4 KiB static pin is far above any 24 GiB machine", () => {
  const e = estimateWork(parseScenario({
    host: { memory: "16TiB" },
    vm: { memory: "16TiB" },
    dma: { mode: "static-pin" },
  }));
  assert(e.memoryBytes > 64 * 2 ** 30);
  assert.match(e.memoryWhat, /pinned at 4 KiB/);
  const small = estimateWork(parseScenario({ vm: { memory: "4GiB" } }));
  assert(small.memoryBytes < 2 ** 30);
  assert(memoryLimit() > 2 ** 30);
});

Deno.test("work estimate: a PRI queue smaller than the device's outstanding page requests adds its retry storm", () => {
  const scenario = (
    priqEntries: number,
    device: Record<string, unknown> = {},
    accessSize = "4KiB",
  ) =>
    parseScenario({
      host: { memory: "8GiB" },
      vm: { memory: "4GiB" },
      device: { fault: "pri", dmaSlots: 512, priCapacity: 256, ...device },
      smmu: { priqEntries },
      dma: { mode: "iopf" },
      workload: {
        kind: "random",
        workingSet: "64MiB",
        accesses: 50_000,
        accessSize,
        queueDepth: 512,
      },
    });
  const storm = (e: ReturnType<typeof estimateWork>) =>
    e.terms.find((t) => t.field === "smmu.priqEntries")?.count;
  // 256 requests outstanding against 4 queue entries: 252 groups cycle
  // while 16384 faults are served; the storm is the run's largest term.
  const small = estimateWork(scenario(4));
  assert.equal(small.field, "smmu.priqEntries");
  assert.equal(storm(small), 252 * 16384 * 2.45);
  assert.match(
    small.terms[0]!.advice ?? "",
    /^raise it to 256 \(the device can have 256 page requests outstanding\)/,
  );
  // A queue as large as the allocation, or a stalling device: no storm.
  const fits = estimateWork(scenario(256));
  assert.equal(storm(fits), undefined);
  assert(small.cpuSeconds > 20 * fits.cpuSeconds);
  assert.equal(storm(estimateWork(scenario(4, { fault: "stall" }))), undefined);
  // Fewer requests in flight than queue entries: no storm either.
  assert.equal(storm(estimateWork(scenario(4, { dmaSlots: 4 }))), undefined);
  assert.equal(
    storm(estimateWork(scenario(16, { dmaSlots: 17 }))),
    16384 * 2.45,
  );
  // One-page accesses make one-page groups whatever device.prgPages says.
  assert.equal(
    storm(estimateWork(scenario(4, { prgPages: 4 }))),
    252 * 16384 * 2.45,
  );
  // 16 KiB accesses in 4-page groups: the allocation holds 64 groups, the
  // queue 4 of them (16 entries) or all (256 entries).
  assert.equal(
    storm(estimateWork(scenario(16, { prgPages: 4 }, "16KiB"))),
    60 * 16384 * 2.45,
  );
  assert.equal(
    storm(estimateWork(scenario(256, { prgPages: 4 }, "16KiB"))),
    undefined,
  );
});
