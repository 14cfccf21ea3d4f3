/**
 * Random sequences of MAP_DMA, UNMAP_DMA, faults, reclaim, MADV_DONTNEED and
 * teardown in each mode, with the container's invariants checked after
 * every step.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { IommuFault } from "../../lib/iommu/types.ts";
import {
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
} from "../../lib/iommu/types.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { PAGE_SIZE } from "../../lib/sim/units.ts";
import {
  VFIO_DMA_MAP_FLAG_READ,
  VfioContainer,
} from "../../lib/vfio/container.ts";
import { GUEST_RAM_GPA, RW, type Setup, setup } from "./_setup.ts";

const SLOTS = 4;
const SLOT_PAGES = 128;
const PAGES = SLOTS * SLOT_PAGES;
const LIMIT_PAGES = 300;

type Op =
  | { op: "map"; slot: number; slots: number; readOnly: boolean }
  | { op: "unmap"; slot: number; slots: number }
  | { op: "unmapSplit"; page: number }
  | { op: "fault"; page: number; write: boolean; twice: boolean }
  | { op: "reclaim"; pages: number }
  | { op: "dontneed"; slot: number }
  | { op: "teardown" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      op: fc.constant("map" as const),
      slot: fc.nat(SLOTS - 1),
      slots: fc.integer({ min: 1, max: 2 }),
      readOnly: fc.boolean(),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("unmap" as const),
      slot: fc.nat(SLOTS - 1),
      slots: fc.integer({ min: 1, max: SLOTS }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("unmapSplit" as const),
      page: fc.nat(PAGES - 1),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("fault" as const),
      page: fc.nat(PAGES + 16),
      write: fc.boolean(),
      twice: fc.boolean(),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("reclaim" as const),
      pages: fc.integer({ min: 1, max: 200 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("dontneed" as const),
      slot: fc.nat(SLOTS - 1),
    }),
    weight: 1,
  },
  { arbitrary: fc.constant({ op: "teardown" as const }), weight: 1 },
);

interface Mode {
  iopf: boolean;
  mmuNotifier: boolean;
  lazy?: boolean;
}

function newContainer(
  s: Setup,
  mode: Mode,
  premapPages: number,
): VfioContainer {
  const c = new VfioContainer(s.core, s.mm, {
    premapPages,
    mmuNotifier: mode.mmuNotifier,
  });
  c.setIommu("type1v2");
  c.attachDevice(s.dev);
  if (mode.iopf) c.enableIopf();
  s.sim.run();
  return c;
}

function check(
  s: Setup,
  c: VfioContainer,
  mode: Mode,
  faults: IommuFault[],
): void {
  const domain = c.domain!;
  let vfioPinned = 0;
  for (let p = 0; p < PAGES; p++) {
    const iova = GUEST_RAM_GPA + p * PAGE_SIZE;
    const hva = s.ram.start + p * PAGE_SIZE;
    const dma = c.dmas().find((d) => iova >= d.iova && iova < d.iova + d.size);
    const mapped = c.isMapped(iova);
    const pa = s.core.iovaToPhys(domain, iova);
    // The bitmap (or a pinned range) agrees with what the IOMMU maps ...
    assert.equal(
      pa >= 0,
      mapped,
      `page ${p}: IOMMU ${pa}, VFIO mapped ${mapped}`,
    );
    // ... and a mapping always points at the page backing the HVA now,
    // except a pinned page MADV_DONTNEED took out of the CPU's view: the
    // device keeps the old frame (mm/madvise.c zaps the PTE; the pin holds
    // the page), the divergence QEMU avoids by disabling discard with VFIO.
    const discarded = s.mm.hvaToPfn(hva) < 0 && s.mm.pinCount(hva) > 0;
    if (mapped && discarded) {
      assert.ok(pa >= 0 && s.host.isAllocated(pa / PAGE_SIZE));
    } else if (mapped) {
      assert.equal(
        pa,
        s.mm.hvaToPfn(hva) * PAGE_SIZE,
        `page ${p} maps a stale frame`,
      );
    }
    // Pins: what VFIO holds, nothing else.
    const held = dma !== undefined &&
      (dma.mode === "pinned" || (mapped && !mode.mmuNotifier));
    assert.equal(s.mm.pinCount(hva), held ? 1 : 0, `page ${p} pin count`);
    if (held) vfioPinned++;
  }
  assert.equal(c.pinnedPages, vfioPinned);
  assert.equal(s.mm.pinnedPages, vfioPinned);
  assert.equal(s.mm.lockedVm, c.lockedPages);
  assert.ok(s.mm.lockedVm <= LIMIT_PAGES);
  if (mode.mmuNotifier) assert.equal(s.mm.lockedVm, 0);
  for (const f of faults) {
    assert.equal(
      s.driver.responsesFor(f).length,
      1,
      `fault at ${f.addr} answered once`,
    );
  }
}

function run(mode: Mode, premapPages: number, ops: Op[]): void {
  const s = setup({
    guestSize: PAGES * PAGE_SIZE,
    memlockLimit: LIMIT_PAGES * PAGE_SIZE,
    faultWorkers: 2,
    lazy: mode.lazy ?? false,
  });
  // The setup's own container is released; each run uses a fresh one.
  s.container.release();
  s.sim.run();
  let c = newContainer(s, mode, premapPages);
  const faults: IommuFault[] = [];
  for (const op of ops) {
    switch (op.op) {
      case "map": {
        const slots = Math.min(op.slots, SLOTS - op.slot);
        const off = op.slot * SLOT_PAGES * PAGE_SIZE;
        const req = {
          vaddr: s.ram.start + off,
          iova: GUEST_RAM_GPA + off,
          size: slots * SLOT_PAGES * PAGE_SIZE,
          flags: op.readOnly ? VFIO_DMA_MAP_FLAG_READ : RW,
        };
        const before = c.dmas().length;
        try {
          c.mapDma(req);
          assert.equal(c.dmas().length, before + 1);
        } catch (e) {
          assert.ok(e instanceof IopfLabError);
          assert.ok(e.code === "EEXIST" || e.code === "ENOMEM", e.message);
          if (e.code === "ENOMEM") assert.ok(!mode.iopf);
          assert.equal(c.dmas().length, before);
        }
        break;
      }
      case "unmap": {
        const slots = Math.min(op.slots, SLOTS - op.slot);
        const off = op.slot * SLOT_PAGES * PAGE_SIZE;
        try {
          c.unmapDma({
            iova: GUEST_RAM_GPA + off,
            size: slots * SLOT_PAGES * PAGE_SIZE,
          });
        } catch (e) {
          // Only a two-slot dma sticking out on either side can be split.
          assert.ok(
            e instanceof IopfLabError && e.code === "EINVAL",
            String(e),
          );
        }
        break;
      }
      case "unmapSplit": {
        const iova = GUEST_RAM_GPA + op.page * PAGE_SIZE;
        const inside = c.dmas().find((d) =>
          iova > d.iova && iova < d.iova + d.size
        );
        if (inside) {
          assert.throws(() => c.unmapDma({ iova, size: PAGE_SIZE }), {
            code: "EINVAL",
          });
        }
        break;
      }
      case "fault": {
        const addr = GUEST_RAM_GPA + op.page * PAGE_SIZE;
        const perm = op.write ? IOMMU_FAULT_PERM_WRITE : IOMMU_FAULT_PERM_READ;
        faults.push(s.driver.inject(s.dev, { addr, perm }));
        if (op.twice) faults.push(s.driver.inject(s.dev, { addr, perm }));
        break;
      }
      case "reclaim":
        s.mm.reclaim(op.pages);
        break;
      case "dontneed": {
        const off = op.slot * SLOT_PAGES * PAGE_SIZE;
        s.mm.madviseDontneed(s.ram.start + off, SLOT_PAGES * PAGE_SIZE);
        break;
      }
      case "teardown":
        c.release();
        s.sim.run();
        assert.equal(s.mm.pinnedPages, 0);
        assert.equal(s.mm.lockedVm, 0);
        c = newContainer(s, mode, premapPages);
        break;
    }
    s.sim.run();
    check(s, c, mode, faults);
  }
  c.release();
  s.sim.run();
  assert.equal(s.mm.pinnedPages, 0);
  assert.equal(s.mm.lockedVm, 0);
}

const MODES: [string, Mode][] = [
  ["static", { iopf: false, mmuNotifier: false }],
  ["iopf", { iopf: true, mmuNotifier: false }],
  ["iopf+notifier", { iopf: true, mmuNotifier: true }],
  ["iopf+notifier, lazy invalidation", {
    iopf: true,
    mmuNotifier: true,
    lazy: true,
  }],
];

Deno.test("vfio type1: random operation sequences keep the invariants", async (t) => {
  for (const [name, mode] of MODES) {
    await t.step(name, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 64 }),
          fc.array(opArb, { minLength: 1, maxLength: 40, size: "medium" }),
          (premap, ops) => run(mode, premap, ops),
        ),
        { numRuns: 80 },
      );
    });
  }
});
