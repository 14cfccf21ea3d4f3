/**
 * Shrunk failures the fuzzers found, kept as named tests once fixed.
 */
import assert from "node:assert/strict";
import {
  checkInvariants,
  parseScenario,
  runScenario,
  runScenarioWithSeries,
  teardown,
} from "../../lib/experiment/mod.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import {
  assertNothingLeaked,
  newDmaLog,
  smallScenario,
  startDma,
  startMachine,
} from "../reliability/_machine.ts";
import { type Config, type Op, runSequence } from "./_api.ts";

Deno.test("a trace scenario replays its rows: addresses are offsets into guest RAM", () => {
  // Every trace scenario failed: the runner shifted rows to GPAs and the
  // replay then checked the GPAs against the size of guest RAM.
  const dir = Deno.makeTempDirSync({ prefix: "iopf-reg-" });
  try {
    Deno.writeTextFileSync(
      `${dir}/t.csv`,
      "time_ns,stream,op,iova,size\n0,0,w,0x0,4096\n10,0,r,0x1ff000,8192\n",
    );
    for (const stage of ["s2", "nested"]) {
      const m = runScenario(parseScenario({
        vm: { memory: "8MiB" },
        smmu: { stage },
        dma: { mode: "iopf" },
        workload: { kind: "trace", file: "t.csv" },
        check: true,
      }, { baseDir: dir }));
      assert.equal(m.dmaBytes, 3 * 4096);
      assert.equal(m.dmaErrors, 0);
      assert.equal(m.isolationViolations, 0);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a VM too small for the guest's buffers is EINVAL naming vm.memory", () => {
  // {"vm":{"memory":"4MiB"},"smmu":{"stage":"nested"}} failed inside the
  // guest's allocator with a message naming no field.
  assert.throws(
    () =>
      runScenario(
        parseScenario({ vm: { memory: "4MiB" }, smmu: { stage: "nested" } }),
      ),
    (e: unknown) =>
      e instanceof IopfLabError && e.code === "EINVAL" &&
      e.where === "vm.memory",
  );
});

Deno.test("a working set beyond the guest's buffer memory is EINVAL naming the workload", () => {
  // A 30 MiB working set in a nested 32 MiB VM passed parsing (it fits
  // vm.memory) and then threw ENOMEM out of the middle of the simulation.
  const s = parseScenario({
    vm: { memory: "32MiB" },
    smmu: { stage: "nested" },
    dma: { mode: "iopf" },
    workload: { kind: "random", workingSet: "30MiB", accesses: 10 },
  });
  assert.throws(
    () => runScenario(s),
    (e: unknown) => {
      assert.ok(e instanceof IopfLabError);
      assert.equal(e.code, "EINVAL");
      assert.equal(e.where, "workload");
      assert.match(
        e.message,
        /^workload: a 30 MiB buffer does not fit: the guest has 28 MiB of its 32 MiB for DMA buffers/,
      );
      return true;
    },
  );
});

Deno.test("a thrashing scenario is reported as a livelock instead of running forever", () => {
  // Three VMs overcommitting the host 2:1, each IOPF fault pre-mapping 1021
  // pages: every fault reclaimed the pages another VM's stalled access was
  // about to retry on, and the simulation never ended (three VMs then).
  // Four VMs: with the RFC's pre-map (stopping at the first mapped page) and
  // the notifier always strict, the original three complete.
  const s = parseScenario({
    name: "thrash",
    seed: 1541023592,
    host: { memory: "12MiB" },
    vm: { memory: "8MiB", count: 4 },
    smmu: { stage: "nested", invalidation: "lazy" },
    dma: { mode: "iopf", premapPages: 1021, mmuNotifier: true },
    // The regression predates the guest's own use of its RAM.
    guest: { touchedMemory: 0 },
    workload: { kind: "accelerator", messageSize: 52999, messages: 6 },
    check: true,
  });
  assert.throws(
    () => runScenarioWithSeries(s, { livelockNs: 1e8 }),
    (e: unknown) => {
      assert.ok(e instanceof IopfLabError);
      assert.equal(e.code, "ETIMEDOUT");
      assert.match(
        e.message,
        /^Scenario thrash livelocked: no DMA progress for [\d.]+ m?s of simulated time while \d+ I\/O page faults were reported/,
      );
      return true;
    },
  );
  // Without the pre-map storm the same machine completes.
  const ok = runScenario({ ...s, dma: { ...s.dma, premapPages: 1 } });
  assert.equal(ok.extra?.vmsStarted, 4);
  assert.ok(ok.dmaBytes > 0);
});

Deno.test("a stalled access retried after the MMU notifier's unmap is translated again", () => {
  // The SMMU looked the retried translation up before a blocking TLBI +
  // CMD_SYNC and delivered it after: the access reached a page the strict
  // notifier had just unmapped (and the mm was about to free).
  const cfg: Config = {
    mode: "iopf",
    fault: "stall",
    stage: "s1",
    mmuNotifier: true,
    invalidation: "strict",
    memlockPages: 0,
    premapPages: 1,
    faultWorkers: 2,
    priCapacity: 1,
    queueLog: 1,
    backing: "thp",
  };
  const ops: Op[] = [
    { op: "dma", page: 510, pages: 3, write: false },
    { op: "dma", page: 1536, pages: 1, write: false },
    { op: "settle" },
    { op: "dma", page: 1024, pages: 1, write: false },
    { op: "dma", page: 0, pages: 1, write: false },
    { op: "run", ns: 81335 },
    { op: "run", ns: 94842 },
    { op: "unmap", slot: 0, slots: 1 },
    { op: "dma", page: 512, pages: 3, write: false },
    { op: "reclaim", pages: 1 },
    { op: "dma", page: 515, pages: 1, write: false },
    { op: "dma", page: 1023, pages: 3, write: false },
    { op: "dma", page: 1537, pages: 2, write: false },
    { op: "dma", page: 0, pages: 1, write: false },
    { op: "run", ns: 191421 },
    { op: "reclaim", pages: 1 },
    { op: "map", slot: 0, slots: 1, readOnly: false },
  ];
  runSequence(cfg, ops);
});

Deno.test("a handler's answer after the device was detached is not a second response", () => {
  // checkInvariants counted the (dropped) late response of a handler whose
  // group the detach had already answered INVALID as a broken invariant.
  const { m, vm } = startMachine(smallScenario({
    vm: { memory: "16MiB" },
    dma: { mode: "iopf" },
  }));
  let release: (() => void) | undefined;
  vm.container.lock.acquire((r) => (release = r));
  startDma(vm, newDmaLog(), { iova: 0x4010_0000, size: 4096, write: true });
  m.sim.run();
  vm.container.detachDevice(vm.device.iommuDevice);
  release!();
  m.sim.run();
  assert.equal(m.core.iopf.stats().lateResponses, 1);
  checkInvariants(m, "after the workload");
  teardown(m);
  checkInvariants(m, "after teardown");
  assertNothingLeaked(m);
});

Deno.test("a page reclaimed while a detach is in flight is gone from the device's ATC too", () => {
  // The detach left the domain's invalidation list at once but flushed the
  // ATC only when its queued commands ran: the MMU notifier's blocking
  // TLBI + ATC_INV skipped the device, whose ATC still reached the page the
  // mm had freed.
  const cfg: Config = {
    mode: "iopf",
    fault: "pri",
    stage: "s1",
    mmuNotifier: true,
    invalidation: "strict",
    memlockPages: 0,
    premapPages: 1,
    faultWorkers: 1,
    priCapacity: 1,
    queueLog: 1,
    backing: "4k",
  };
  runSequence(cfg, [
    { op: "dma", page: 0, pages: 1, write: false },
    { op: "run", ns: 15741 },
    { op: "dma", page: 0, pages: 1, write: false },
    { op: "detach" },
    { op: "reclaim", pages: 1 },
    { op: "run", ns: 0 },
  ]);
});
