import assert from "node:assert/strict";
import { CachingModeViommu } from "../../lib/guest/viommu.ts";
import { ViommuReplay } from "../../lib/vmm/viommu_replay.ts";
import { PROT_READ, PROT_WRITE } from "../../lib/sim/units.ts";
import { GUEST_RAM_GPA, MiB, setup } from "../vfio/_setup.ts";

function viommu(memlockLimit?: number) {
  const s = setup({
    guestSize: 32 * MiB,
    ...(memlockLimit === undefined ? {} : { memlockLimit }),
  });
  const v = new CachingModeViommu(s.sim, {
    costs: s.costs,
    container: s.container,
    hva: s.ram.start,
    ramBase: GUEST_RAM_GPA,
    ramSize: 32 * MiB,
    iovaBase: 0x1000_0000,
  });
  return { ...s, v };
}

const RW = PROT_READ | PROT_WRITE;

Deno.test("a guest map traps to the VMM, which pins and maps the buffer; unmap unpins it", () => {
  const { sim, container, v } = viommu();
  let iova = -1;
  v.dmaMap({ gpa: GUEST_RAM_GPA + MiB, size: 3 * 4096, prot: RW }, (i) => {
    iova = i;
  });
  assert.equal(container.pinnedPages, 0, "nothing before the trap");
  sim.run();
  assert.equal(iova, 0x1000_0000);
  assert.equal(container.pinnedPages, 3);
  assert.equal(v.iovaToGpa(iova + 5), GUEST_RAM_GPA + MiB + 5);
  assert.deepEqual(v.mappings().map((m) => m.mapped), [true]);
  let unmapped = false;
  v.dmaUnmap({ iova, size: 3 * 4096 }, () => (unmapped = true));
  sim.run();
  assert.ok(unmapped);
  assert.equal(container.pinnedPages, 0);
  assert.equal(v.iovaToGpa(iova), -1);
  assert.equal(v.counters.get("viommu.traps"), 2);
  assert.equal(v.counters.get("viommu.maps"), 1);
  assert.equal(v.counters.get("viommu.unmaps"), 1);
  assert.equal(v.counters.get("viommu.mappedBytes"), 3 * 4096);
  assert.equal(v.vmm.counters, v.counters, "one set of counters");
});

Deno.test("a MAP_DMA over RLIMIT_MEMLOCK is not reported to the guest: the IOVA stays unmapped", () => {
  const { sim, container, v } = viommu(4 * 4096);
  let iova = -1;
  v.dmaMap({ gpa: GUEST_RAM_GPA, size: 8 * 4096, prot: RW }, (i) => (iova = i));
  sim.run();
  assert.equal(iova, 0x1000_0000, "the guest got its IOVA");
  assert.equal(container.pinnedPages, 0);
  assert.equal(v.counters.get("viommu.mapFailures"), 1);
  assert.equal(v.lastMapError?.code, "ENOMEM");
  assert.deepEqual(v.mappings().map((m) => m.mapped), [false]);
  // Its unmap needs no UNMAP_DMA, and frees the IOVA for reuse.
  v.dmaUnmap({ iova, size: 8 * 4096 }, () => {});
  sim.run();
  assert.equal(v.mappings().length, 0);
  v.dmaMap({ gpa: GUEST_RAM_GPA, size: 8 * 4096, prot: RW }, (i) => (iova = i));
  sim.run();
  assert.equal(iova, 0x1000_0000, "same-size IOVA reused");
});

Deno.test("traps are handled one at a time under the VMM's emulation lock", () => {
  const { sim, costs, container, ram } = viommu();
  const vmm = new ViommuReplay(sim, {
    costs,
    container,
    hva: ram.start,
    ramBase: GUEST_RAM_GPA,
  });
  const ends: number[] = [];
  const replayed: boolean[] = [];
  for (let k = 0; k < 3; k++) {
    vmm.trapMap(
      {
        iova: 0x1000_0000 + k * 4096,
        gpa: GUEST_RAM_GPA + k * 4096,
        size: 4096,
        prot: RW,
      },
      (_req, ok) => replayed.push(ok),
      () => ends.push(sim.now),
    );
  }
  sim.run();
  assert.deepEqual(replayed, [true, true, true]);
  assert.equal(ends.length, 3);
  assert.ok(ends[0]! < ends[1]! && ends[1]! < ends[2]!, "serialised");
  assert.ok(vmm.emulation.totalWaitNs > 0, "later traps waited for the lock");
  assert.equal(vmm.counters.get("viommu.traps"), 3);
});

Deno.test("the guest's dma_map refuses a range outside guest RAM or without permission", () => {
  const { v } = viommu();
  assert.throws(
    () =>
      v.dmaMap(
        { gpa: GUEST_RAM_GPA + 32 * MiB, size: 4096, prot: RW },
        () => {},
      ),
    /not a page-aligned range of guest RAM.*EINVAL/,
  );
  assert.throws(
    () => v.dmaMap({ gpa: GUEST_RAM_GPA, size: 4096, prot: 0 }, () => {}),
    /no permission.*EINVAL/,
  );
  assert.throws(
    () => v.dmaUnmap({ iova: 0x1000_0000, size: 4096 }, () => {}),
    /EINVAL/,
  );
});
