/**
 * Wall time of one simulated I/O page fault through the assembled stack
 * (lib/experiment's `buildMachine`, without the isolation sanitizer that
 * scenario runs add). The machine is built and its VM started once, outside
 * the measured loop; each iteration makes the device write
 * {@linkcode FAULT_BATCH} (100) fresh 4 KiB pages of guest RAM one after the
 * other, running the simulator until each transfer completes, timed with
 * `b.start()` / `b.end()` around the 100: the targets are faults per CPU
 * second, so the bench times a stream of faults, not one fault and the
 * timer's own cost (the tables divide by 100).
 *
 * - `stall fault round trip s2` (baseline): a platform device behind a
 *   stall-model SMMU, stage 2 with IOPF: stall, event record, evtq thread,
 *   IOMMU core IOPF queue, VFIO type1 handler (pin + iommu_map + bitmap),
 *   page response, CMD_RESUME Retry, the retried translation, the data.
 * - `stall fault scattered over 1 TiB`: the same fault, each at a random
 *   4 KiB page of a 1 TiB guest (a seeded LCG), so nearly every fault is
 *   the first touch of its 2 MiB chunk of state (bitmaps, tables, PFNs).
 * - `pri fault round trip s2`: a PCIe device with ATS/PRI: ATS Translation
 *   Request, "no access", Page Request, PRI queue, the same handler,
 *   CMD_PRI_RESP, PRG Response, ATS again, the data.
 * - `nested stage-1 fault to guest`: nested translation with the guest
 *   filling its stage 1 on faults: the stage-1 fault is forwarded through
 *   the VFIO fault region to the guest's vSMMU driver, which maps the page
 *   and answers. The guest's DMA API maps each page just before (outside
 *   the timing), and stage 2 is faulted in beforehand for the pages used,
 *   so nearly every iteration is a stage-1 fault alone (a new stage-1 table
 *   page every 256 buffers adds one stage-2 fault).
 *
 *     deno bench --allow-read bench/fault_bench.ts
 *
 * @module
 */
import { FAULT_BATCH } from "./_ops.ts";
import {
  buildMachine,
  dmaContext,
  GUEST_RAM_BASE,
  type Machine,
  parseScenario,
  startVms,
  type VmInstance,
} from "../lib/experiment/mod.ts";

const GROUP = "fault";
/** Iterations (of FAULT_BATCH faults each): 20 000 faults, as before. */
const N = 200;
/**
 * Warm-up iterations: 50 000 faults. The first tens of thousands run while
 * V8 still compiles the fault path and collects the VM start's garbage on
 * its helper threads (CPU time twice the wall time); the targets are about
 * the path in steady state.
 */
const WARMUP = 500;

/** A machine with one started VM (64 GiB unless `big`: 1 TiB) on 4 KiB pages, no workload. */
function machine(
  fault: "stall" | "pri",
  nested = false,
  big = false,
): { m: Machine; vm: VmInstance } {
  const m = buildMachine(parseScenario({
    name: `fault-bench-${fault}${nested ? "-nested" : ""}${big ? "-1t" : ""}`,
    host: { memory: big ? "1280GiB" : "128GiB", backing: "4k" },
    vm: { memory: big ? "1TiB" : "64GiB" },
    smmu: { stage: nested ? "nested" : "s2" },
    device: { fault },
    dma: { mode: "iopf", premapPages: 1 },
    ...(nested ? { guest: { stage1: "on-fault" } } : {}),
    workload: { kind: "boot" },
  }));
  let started = false;
  startVms(m, () => started = true);
  m.sim.run();
  const vm = m.vms[0]!;
  if (!started || !vm.started) {
    throw new Error(`bench setup: the VM did not start (${vm.error})`);
  }
  return { m, vm };
}

/** Fails loudly if the transfers did not fault as the bench says they do. */
function check(name: string, ok: number, faults: number, runs: number): void {
  if (ok !== runs || faults < runs) {
    throw new Error(
      `${name}: ${ok} of ${runs} transfers succeeded with ${faults} faults`,
    );
  }
}

for (const fault of ["stall", "pri"] as const) {
  const name = `${fault} fault round trip s2`;
  const { m, vm } = machine(fault);
  const { sim } = m;
  let page = 0, ok = 0, runs = 0;
  const done = (r: { ok: boolean }) => {
    if (r.ok) ok++;
  };
  const faults = () => m.core.iopf.stats().faults;
  // One checked fault before the bench.
  vm.device.dma({ iova: GUEST_RAM_BASE, size: 4096, write: true }, done);
  sim.run();
  page = 1;
  check(name, ok, faults(), 1);
  ok = 0;
  const before = faults();
  Deno.bench({
    name,
    group: GROUP,
    baseline: fault === "stall",
    n: N,
    warmup: WARMUP,
    fn(b) {
      b.start();
      for (let k = 0; k < FAULT_BATCH; k++) {
        const iova = GUEST_RAM_BASE + page++ * 4096;
        vm.device.dma({ iova, size: 4096, write: true }, done);
        sim.run();
      }
      b.end();
      runs += FAULT_BATCH;
    },
  });
  globalThis.addEventListener("unload", () => {
    check(name, ok, faults() - before, runs);
  });
}

{
  const name = "stall fault scattered over 1 TiB";
  const { m, vm } = machine("stall", false, true);
  const { sim } = m;
  const PAGES = 2 ** 28;
  let seed = 12345, ok = 0, runs = 0;
  const done = (r: { ok: boolean }) => {
    if (r.ok) ok++;
  };
  const faults = () => m.core.iopf.stats().faults;
  const before = faults();
  Deno.bench({
    name,
    group: GROUP,
    n: N,
    warmup: WARMUP,
    fn(b) {
      b.start();
      for (let k = 0; k < FAULT_BATCH; k++) {
        // Numerical Recipes' LCG, 32 bits; the page index is its top 28 bits.
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        const iova = GUEST_RAM_BASE + (seed >>> 4) % PAGES * 4096;
        vm.device.dma({ iova, size: 4096, write: true }, done);
        sim.run();
      }
      b.end();
      runs += FAULT_BATCH;
    },
  });
  globalThis.addEventListener("unload", () => {
    // A page the LCG repeats is a hit, not a fault: allow a few.
    if (ok !== runs || faults() - before < runs * 0.99) {
      throw new Error(
        `${name}: ${ok} of ${runs} transfers succeeded with ${
          faults() - before
        } faults`,
      );
    }
  });
}

{
  const name = "nested stage-1 fault to guest";
  const { m, vm } = machine("stall", true);
  const { sim } = m;
  const guest = vm.guest!;
  const ctx = dmaContext(m, vm, new Map());
  let ok = 0;
  const done = (r: { ok: boolean }) => {
    if (r.ok) ok++;
  };
  // Fault in stage 2 for the pages the bench maps: one DMA over all of them
  // through a buffer of the guest, which is then unmapped again.
  const POOL = 4096;
  let iova = -1;
  ctx.dmaMap(GUEST_RAM_BASE, POOL * 4096, true, (v) => iova = v);
  sim.run();
  ctx.dma({ iova, size: POOL * 4096, write: true }, done);
  sim.run();
  ctx.dmaUnmap(iova, POOL * 4096, () => {});
  sim.run();
  if (ok !== 1) throw new Error(`${name}: the stage-2 warm-up DMA failed`);
  ok = 0;
  let page = 0, runs = 0;
  const iovas = new Float64Array(FAULT_BATCH);
  const s1Before = guest.stats().faults;
  Deno.bench({
    name,
    group: GROUP,
    n: N,
    warmup: WARMUP,
    fn(b) {
      // The guest's DMA API maps the batch's buffers first (not timed).
      for (let k = 0; k < FAULT_BATCH; k++) {
        const gpa = GUEST_RAM_BASE + (page++ % POOL) * 4096;
        ctx.dmaMap(gpa, 4096, true, (v) => iovas[k] = v);
        sim.run();
      }
      b.start();
      for (let k = 0; k < FAULT_BATCH; k++) {
        vm.device.dma({ iova: iovas[k]!, size: 4096, write: true }, done);
        sim.run();
      }
      b.end();
      runs += FAULT_BATCH;
    },
  });
  globalThis.addEventListener("unload", () => {
    check(name, ok, guest.stats().faults - s1Before, runs);
  });
}
