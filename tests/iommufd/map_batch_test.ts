/**
 * IOMMU_IOAS_MAP of scattered 4 KiB frames hands its single-page runs to
 * IommuCore.mapPages in batches: against a twin whose core maps them with
 * one iommu_map call each (what iopt_map_pages did before), the ioctl must
 * cost the same ns (fractional costs: the order of additions shows), count
 * the same and translate the same.
 */
import assert from "node:assert/strict";
import { mapPagesOneByOne } from "../iommu/_one_by_one.ts";
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IommufdCtx,
} from "../../lib/iommufd/mod.ts";
import { IommuCore } from "../../lib/iommu/mod.ts";
import { HostMemory, MmStruct } from "../../lib/mm/mod.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import { fakeDevice, FakeIommuDriver } from "../iommu/_fake_driver.ts";

const GPA = 0x4000_0000;
const SIZE = 8 * 2 ** 20;

function rig(reference: boolean) {
  const costs = loadCostProfile({
    "iommu.mapCall": 333.3,
    "iommu.mapPerPte": 0.1,
    "iommu.tableAlloc": 1234.567,
  });
  const sim = new Simulator();
  const driver = new FakeIommuDriver(sim, { costs });
  const core = new IommuCore(sim, { costs, driver });
  driver.bind(core);
  if (reference) {
    mapPagesOneByOne(core);
  }
  const mm = new MmStruct(new HostMemory({ size: 2 ** 32, costs }), {
    memlockLimit: Infinity,
  });
  const ram = mm.mmap({ size: SIZE, backing: "4k" });
  const ctx = new IommufdCtx(core, mm);
  const devId = ctx.bindDevice(fakeDevice("dev", 1));
  const ioas = ctx.ioasAlloc();
  const hwpt = ctx.hwptAlloc({
    devId,
    ptId: ioas,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  }).id;
  const ns = ctx.ioasMap(ioas, {
    userVa: ram.start,
    iova: GPA,
    length: SIZE,
    flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
      IOMMU_IOAS_MAP_WRITEABLE,
  });
  const domain = ctx.hwpt(hwpt).domain;
  // A second domain on the IOAS maps its areas again (iopt_fill_domain).
  const second = ctx.hwptAlloc({ devId, ptId: ioas, flags: 0 });
  const tr = [];
  for (let p = -1; p <= SIZE / 4096; p++) {
    const a = GPA + p * 4096;
    tr.push(
      core.iovaToPhys(domain, a),
      core.iovaToPhys(ctx.hwpt(second.id).domain, a),
    );
  }
  return { ns, fillNs: second.ns, counters: core.counters.toJSON(), tr };
}

Deno.test("IOAS map of scattered 4 KiB frames: batched maps cost, count and translate as one call per page did", () => {
  const b = rig(false);
  assert.equal(b.counters["iommu.maps"], 2 * SIZE / 4096);
  assert.deepEqual(b, rig(true));
});
