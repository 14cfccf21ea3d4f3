/**
 * The API fuzz harness: random sequences of calls on an assembled machine
 * (VFIO MAP_DMA and UNMAP_DMA, device DMA, host reclaim, MADV_DONTNEED,
 * letting time pass, device detach, teardown), over random configurations (static or IOPF,
 * stall or PRI, stage 1 or 2, MMU notifier, strict or lazy, memlock limits
 * down to one page, PRI capacity and queues down to 2 entries). After every
 * step: pins and locked memory agree between VFIO and mm and stay within
 * the limit, the vfio_dma list is what the calls made it, no strict-mode
 * isolation violation; at quiet points and after teardown, every invariant
 * of lib/experiment/invariants.ts; at the end, every transfer completed and
 * nothing leaked. A failing call must be an IopfLabError with the expected
 * code and leave the container's ranges and the accounting unchanged.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkInvariants,
  GUEST_RAM_BASE,
  type Machine,
  teardown,
} from "../../lib/experiment/mod.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { PAGE_SIZE } from "../../lib/sim/units.ts";
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
} from "../../lib/vfio/mod.ts";
import {
  assertNothingLeaked,
  assertQuiet,
  newDmaLog,
  smallScenario,
  startDma,
  startMachine,
} from "../reliability/_machine.ts";

const RAM_PAGES = 2048; // 8 MiB
const SLOTS = 4;
const SLOT_PAGES = RAM_PAGES / SLOTS;

/** One call of a sequence. */
export type Op =
  | { op: "map"; slot: number; slots: number; readOnly: boolean }
  | { op: "unmap"; slot: number; slots: number }
  | { op: "unmapPage"; page: number }
  | { op: "badMap"; how: "misaligned" | "noPerm" | "beyond" | "zero" }
  | { op: "dma"; page: number; pages: number; write: boolean }
  | { op: "run"; ns: number }
  | { op: "settle" }
  | { op: "reclaim"; pages: number }
  | { op: "dontneed"; slot: number }
  | { op: "detach" };

/** Random calls. */
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("map" as const),
      slot: fc.nat(SLOTS - 1),
      slots: fc.integer({ min: 1, max: 2 }),
      readOnly: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("unmap" as const),
      slot: fc.nat(SLOTS - 1),
      slots: fc.integer({ min: 1, max: SLOTS }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("unmapPage" as const),
      page: fc.nat(RAM_PAGES - 1),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("badMap" as const),
      how: fc.constantFrom(
        "misaligned" as const,
        "noPerm" as const,
        "beyond" as const,
        "zero" as const,
      ),
    }),
  },
  {
    weight: 20,
    arbitrary: fc.record({
      op: fc.constant("dma" as const),
      page: fc.nat(RAM_PAGES - 1),
      pages: fc.integer({ min: 1, max: 8 }),
      write: fc.boolean(),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant("run" as const),
      ns: fc.integer({ min: 0, max: 200_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: "settle" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("reclaim" as const),
      pages: fc.integer({ min: 1, max: 256 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("dontneed" as const),
      slot: fc.nat(SLOTS - 1),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: "detach" as const }) },
);

/** A random machine configuration. */
export interface Config {
  mode: "static-pin" | "iopf";
  fault: "stall" | "pri";
  stage: "s1" | "s2";
  mmuNotifier: boolean;
  invalidation: "strict" | "lazy";
  memlockPages: number; // 0 = unlimited
  premapPages: number;
  faultWorkers: number;
  priCapacity: number;
  queueLog: number;
  backing: "4k" | "thp" | "hugetlb-2m";
}

/** Random configurations. */
export const configArb: fc.Arbitrary<Config> = fc.record({
  mode: fc.constantFrom("static-pin" as const, "iopf" as const),
  fault: fc.constantFrom("stall" as const, "pri" as const),
  stage: fc.constantFrom("s1" as const, "s2" as const),
  mmuNotifier: fc.boolean(),
  invalidation: fc.constantFrom("strict" as const, "lazy" as const),
  memlockPages: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 1, max: 16 }),
    fc.integer({ min: 1, max: RAM_PAGES + 16 }),
  ),
  premapPages: fc.oneof(
    fc.integer({ min: 1, max: 4 }),
    fc.integer({ min: 1, max: 1024 }),
  ),
  faultWorkers: fc.integer({ min: 1, max: 8 }),
  priCapacity: fc.integer({ min: 1, max: 16 }),
  queueLog: fc.integer({ min: 1, max: 5 }),
  backing: fc.constantFrom(
    "4k" as const,
    "thp" as const,
    "hugetlb-2m" as const,
  ),
});

const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
const slotIova = (slot: number) =>
  GUEST_RAM_BASE + slot * SLOT_PAGES * PAGE_SIZE;

/** Runs one random sequence; throws on the first broken expectation. */
export function runSequence(
  cfg: Config,
  ops: readonly Op[],
  inspect?: (m: Machine) => void,
): void {
  const s = smallScenario({
    vm: { memory: `${(RAM_PAGES * PAGE_SIZE) / 2 ** 20}MiB` },
    host: {
      memory: "64MiB",
      backing: cfg.backing,
      memlockLimit: cfg.memlockPages === 0
        ? "unlimited"
        : cfg.memlockPages * PAGE_SIZE,
    },
    smmu: {
      stage: cfg.stage,
      invalidation: cfg.invalidation,
      evtqEntries: 2 ** cfg.queueLog,
      priqEntries: 2 ** cfg.queueLog,
    },
    device: { fault: cfg.fault, priCapacity: cfg.priCapacity },
    dma: {
      mode: cfg.mode,
      mmuNotifier: cfg.mmuNotifier,
      premapPages: cfg.premapPages,
      faultWorkers: cfg.faultWorkers,
    },
  });
  const { m, sanitizer, vm } = startMachine(s);
  inspect?.(m);
  const c = vm.container;
  const log = newDmaLog();
  const strict = cfg.invalidation === "strict";
  // The model of the vfio_dma list: slot index -> slots covered.
  const model = new Map<number, number>();
  let detached = false;

  const checkAlways = (what: string) => {
    assert.equal(
      vm.mm.pinnedPages,
      c.pinnedPages,
      `${what}: mm pins ${vm.mm.pinnedPages} != VFIO pins ${c.pinnedPages}`,
    );
    assert.equal(vm.mm.lockedVm, c.lockedPages, `${what}: locked_vm`);
    if (cfg.memlockPages > 0) {
      assert.ok(vm.mm.lockedVm <= cfg.memlockPages, `${what}: over the limit`);
    }
    const dmas = c.dmas().map((d) => [d.iova, d.size]);
    const want = [...model].sort((a, b) => a[0] - b[0]).map((
      [slot, n],
    ) => [slotIova(slot), n * SLOT_PAGES * PAGE_SIZE]);
    assert.deepEqual(dmas, want, `${what}: vfio_dma list`);
    // Discarded pinned pages stay the device's (see the end of the run).
    if (strict && vm.mm.discardedPinnedPages === 0) {
      assert.equal(
        sanitizer.violations,
        0,
        `${what}: ${sanitizer.examples.join("; ")}`,
      );
    }
  };
  /** Expects `fn` to throw an IopfLabError with `code`, changing nothing. */
  const refused = (code: string, what: string, fn: () => unknown) => {
    const before = JSON.stringify([
      c.dmas(),
      vm.mm.pinnedPages,
      vm.mm.lockedVm,
    ]);
    assert.throws(fn, (e: unknown) => {
      assert.ok(e instanceof IopfLabError, `${what}: ${e}`);
      assert.equal(e.code, code, `${what}: ${e.message}`);
      return true;
    });
    const after = JSON.stringify([c.dmas(), vm.mm.pinnedPages, vm.mm.lockedVm]);
    assert.equal(after, before, `${what}: state changed by a failed call`);
  };

  /**
   * VFIO_IOMMU_UNMAP_DMA returns to the VMM once the IOTLB sync completed
   * and the pages were unpinned: step the simulator until then (other
   * transfers and faults go on meanwhile).
   */
  const unmapAndWait = (
    req: { iova: number; size: number },
    bytes: number,
    what: string,
  ) => {
    let done = false;
    assert.equal(c.unmapDma(req, () => (done = true)).bytes, bytes, what);
    while (!done && m.sim.pending > 0) m.sim.run({ maxEvents: 1 });
    assert.ok(done, `${what}: UNMAP_DMA never completed`);
  };
  if (!vm.started) {
    // Static pinning over the memlock limit: the VM failed cleanly.
    assert.equal(vm.error?.code, "ENOMEM");
  } else {
    // Replace the whole-RAM vfio_dma by one per slot.
    unmapAndWait(
      { iova: GUEST_RAM_BASE, size: RAM_PAGES * PAGE_SIZE },
      RAM_PAGES * PAGE_SIZE,
      "setup",
    );
    for (let slot = 0; slot < SLOTS; slot++) {
      try {
        c.mapDma({
          vaddr: vm.hva + slot * SLOT_PAGES * PAGE_SIZE,
          iova: slotIova(slot),
          size: SLOT_PAGES * PAGE_SIZE,
          flags: RW,
        });
        model.set(slot, 1);
      } catch (e) {
        if (!(e instanceof IopfLabError) || e.code !== "ENOMEM") throw e;
      }
    }
    checkAlways("setup");
    for (const [i, op] of ops.entries()) {
      const what = `step ${i} ${JSON.stringify(op)}`;
      switch (op.op) {
        case "map": {
          const n = Math.min(op.slots, SLOTS - op.slot);
          const req = {
            vaddr: vm.hva + op.slot * SLOT_PAGES * PAGE_SIZE,
            iova: slotIova(op.slot),
            size: n * SLOT_PAGES * PAGE_SIZE,
            flags: op.readOnly ? VFIO_DMA_MAP_FLAG_READ : RW,
          };
          const overlaps = [...model].some(([a, k]) =>
            a < op.slot + n && op.slot < a + k
          );
          if (overlaps) {
            refused("EEXIST", what, () => c.mapDma(req));
            break;
          }
          try {
            c.mapDma(req);
            model.set(op.slot, n);
          } catch (e) {
            assert.ok(e instanceof IopfLabError, `${what}: ${e}`);
            assert.equal(e.code, "ENOMEM", `${what}: ${e.message}`);
            assert.ok(cfg.mode === "static-pin" && cfg.memlockPages > 0);
          }
          break;
        }
        case "unmap": {
          const n = Math.min(op.slots, SLOTS - op.slot);
          const req = {
            iova: slotIova(op.slot),
            size: n * SLOT_PAGES * PAGE_SIZE,
          };
          const splits = [...model].some(([a, k]) =>
            (a < op.slot && a + k > op.slot) ||
            (a < op.slot + n && a + k > op.slot + n)
          );
          if (splits) {
            refused("EINVAL", what, () => c.unmapDma(req));
            break;
          }
          let expect = 0;
          for (const [a, k] of [...model]) {
            if (a >= op.slot && a + k <= op.slot + n) {
              expect += k * SLOT_PAGES * PAGE_SIZE;
              model.delete(a);
            }
          }
          unmapAndWait(req, expect, what);
          break;
        }
        case "unmapPage": {
          const slot = Math.floor(op.page / SLOT_PAGES);
          const inside = [...model].some(([a, k]) => a <= slot && slot < a + k);
          const req = {
            iova: GUEST_RAM_BASE + op.page * PAGE_SIZE,
            size: PAGE_SIZE,
          };
          if (inside) refused("EINVAL", what, () => c.unmapDma(req));
          else unmapAndWait(req, 0, what);
          break;
        }
        case "badMap": {
          const req = {
            vaddr: vm.hva,
            iova: GUEST_RAM_BASE + RAM_PAGES * PAGE_SIZE,
            size: PAGE_SIZE,
            flags: RW,
          };
          if (op.how === "misaligned") req.iova += 512;
          if (op.how === "noPerm") req.flags = 0;
          if (op.how === "beyond") req.iova = 2 ** 52;
          if (op.how === "zero") req.size = 0;
          refused("EINVAL", what, () => c.mapDma(req));
          break;
        }
        case "dma": {
          const pages = Math.min(op.pages, RAM_PAGES - op.page);
          startDma(vm, log, {
            iova: GUEST_RAM_BASE + op.page * PAGE_SIZE,
            size: pages * PAGE_SIZE,
            write: op.write,
          });
          break;
        }
        case "run":
          m.sim.run({ until: m.sim.now + op.ns });
          break;
        case "settle":
          m.sim.run();
          assertQuiet(m);
          checkInvariants(m, "after the workload");
          break;
        case "reclaim":
          vm.mm.reclaim(op.pages);
          break;
        case "dontneed":
          vm.mm.madviseDontneed(
            vm.hva + op.slot * SLOT_PAGES * PAGE_SIZE,
            SLOT_PAGES * PAGE_SIZE,
          );
          break;
        case "detach":
          if (detached) {
            refused(
              "EINVAL",
              what,
              () => c.detachDevice(vm.device.iommuDevice),
            );
          } else {
            c.detachDevice(vm.device.iommuDevice);
            detached = true;
          }
          break;
      }
      checkAlways(what);
    }
    m.sim.run();
    assertQuiet(m);
    checkInvariants(m, "after the workload");
  }
  teardown(m);
  assertQuiet(m);
  checkInvariants(m, "after teardown");
  assertNothingLeaked(m);
  assert.equal(log.results.length, log.started, "transfers never completed");
  // A pinned page MADV_DONTNEED took from the CPU's view stays the
  // device's (mm/madvise.c zaps the PTE, the pin keeps the page): the
  // sanitizer sees the device reach a page that no longer backs its GPA,
  // the divergence QEMU avoids by disabling discard with VFIO.
  const discarded = m.vms.reduce((a, v) => a + v.mm.discardedPinnedPages, 0);
  if (strict && discarded === 0) {
    assert.equal(sanitizer.violations, 0, sanitizer.examples[0]);
  } else if (strict) {
    for (const e of sanitizer.examples) assert.match(e, /no longer backs GPA/);
  }
}
