/**
 * IommuCore.mapPages (through the arm-smmu-v3 driver's batch and through a
 * driver without one) against the single 4 KiB iommu_map calls it stands
 * for: the same cost, added call by call from the caller's running sum (the
 * costs here are fractional, so a different order of additions shows), the
 * same counters, domain bytes, page table and error after the same pages.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { IommuCore, type IommuDomain } from "../../lib/iommu/core.ts";
import type { MapPagesResult } from "../../lib/iommu/types.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import { PROT_READ, PROT_WRITE, SZ_4K } from "../../lib/sim/units.ts";
import { ArmSmmuV3Driver, Smmu, TableMemory } from "../../lib/smmu/mod.ts";
import { FakeIommuDriver } from "./_fake_driver.ts";

const RW = PROT_READ | PROT_WRITE;

/** Costs whose sums depend on the order of additions. */
const COSTS = {
  "iommu.mapCall": 333.3,
  "iommu.mapPerPte": 0.1,
  "iommu.tableAlloc": 1234.567,
};

function rig(fake: boolean): { core: IommuCore; domain: IommuDomain } {
  const sim = new Simulator();
  const costs = loadCostProfile(COSTS);
  const memory = new TableMemory();
  const driver = fake
    ? new FakeIommuDriver(sim, { costs })
    : new ArmSmmuV3Driver(sim, new Smmu(sim, { costs, memory }), {
      costs,
      memory,
    });
  const core = new IommuCore(sim, { costs, driver });
  return { core, domain: core.domainAllocPaging(2) };
}

type Outcome = { ns: number; pages: number; error?: string };

function errText(e: unknown): string {
  if (!(e instanceof IopfLabError)) throw e;
  return `${e.code}: ${e.message}`;
}

function singles(
  core: IommuCore,
  domain: IommuDomain,
  iova: number,
  pfns: number[],
  prot: number,
  ns0: number,
): Outcome {
  const o: Outcome = { ns: ns0, pages: 0 };
  for (let k = 0; k < pfns.length; k++) {
    try {
      o.ns += core.map(domain, iova + k * SZ_4K, pfns[k]! * SZ_4K, SZ_4K, prot);
    } catch (e) {
      o.error = errText(e);
      return o;
    }
    o.pages++;
  }
  return o;
}

function batch(
  core: IommuCore,
  domain: IommuDomain,
  iova: number,
  pfns: number[],
  prot: number,
  ns0: number,
): Outcome {
  const r: MapPagesResult = { ns: ns0, pages: 0 };
  const o: Outcome = { ns: 0, pages: 0 };
  try {
    core.mapPages(
      domain,
      iova,
      new Float64Array([1, ...pfns]),
      1,
      pfns.length,
      prot,
      r,
    );
  } catch (e) {
    o.error = errText(e);
  }
  o.ns = r.ns;
  o.pages = r.pages;
  return o;
}

function state(
  core: IommuCore,
  domain: IommuDomain,
  iova: number,
  n: number,
): unknown {
  const tr = [];
  for (let k = 0; k < n; k++) {
    tr.push(core.iovaToPhys(domain, iova + k * SZ_4K));
  }
  return {
    counters: core.counters.toJSON(),
    mappedBytes: domain.mappedBytes,
    tr,
  };
}

const pfnArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 10, arbitrary: fc.integer({ min: 0, max: 2 ** 28 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(-1, 0.5, NaN, 2 ** 36, 2 ** 40, 2 ** 52),
  },
);

Deno.test("iommu mapPages: same ns (summed call by call), counters, table and error as single maps", () => {
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.array(fc.integer({ min: 0, max: 1100 }), { maxLength: 4 }),
      fc.oneof(
        {
          weight: 8,
          arbitrary: fc.integer({ min: 0, max: 1000 }).map((p) => p * SZ_4K),
        },
        {
          weight: 1,
          arbitrary: fc.constantFrom(
            -SZ_4K,
            0x800,
            2 ** 48 - 2 * SZ_4K,
            2 ** 52 - SZ_4K,
          ),
        },
      ),
      fc.array(pfnArb, { maxLength: 600 }),
      fc.constantFrom(RW, RW, PROT_READ, 0, 4 | RW),
      fc.constantFrom(0, 0.3, 1e6 + 0.7),
      (fake, premapped, iova, pfns, prot, ns0) => {
        const a = rig(fake), b = rig(fake);
        for (const { core, domain } of [a, b]) {
          for (const p of new Set(premapped)) {
            core.map(domain, p * SZ_4K, 9 * SZ_4K, SZ_4K, RW);
          }
        }
        const ra = singles(a.core, a.domain, iova, pfns, prot, ns0);
        const rb = batch(b.core, b.domain, iova, pfns, prot, ns0);
        assert.deepEqual(rb, ra);
        const at = iova >= 0 && iova < 2 ** 48 ? iova : 0;
        const n = Math.min(pfns.length, (2 ** 48 - at) / SZ_4K);
        assert.deepEqual(
          state(b.core, b.domain, at, n),
          state(a.core, a.domain, at, n),
        );
      },
    ),
    { seed: 0x16b, numRuns: 150 },
  );
});

Deno.test("iommu mapPages: a freed domain refuses the batch as its first map would", () => {
  const a = rig(false), b = rig(false);
  for (const x of [a, b]) x.core.domainFree(x.domain);
  const ra = singles(a.core, a.domain, 0, [1, 2], RW, 0);
  const rb = batch(b.core, b.domain, 0, [1, 2], RW, 0);
  assert.match(rb.error!, /^EINVAL: .*was freed/);
  assert.deepEqual(rb, ra);
  assert.deepEqual(b.core.counters.toJSON(), {});
});

Deno.test("iommu mapPages: 600 scattered frames cost 600 calls, 600 PTEs and the tables, in order", () => {
  const { core, domain } = rig(false);
  const pfns = Array.from({ length: 600 }, (_, k) => 1 + ((k * 7919) % 99_991));
  const r = batch(core, domain, 0x4000_0000 - 100 * SZ_4K, pfns, RW, 0);
  assert.equal(r.error, undefined);
  let ns = 0;
  for (let k = 0; k < 600; k++) {
    // Level 1-3 tables for the first page, level 2-3 at 1 GiB (page 100),
    // a leaf table at the next 2 MiB (page 612).
    const tables = k === 0 ? 3 : k === 100 ? 2 : k === 612 ? 1 : 0;
    ns += COSTS["iommu.mapCall"] +
      (COSTS["iommu.mapPerPte"] + tables * COSTS["iommu.tableAlloc"]);
  }
  assert.equal(r.ns, ns);
  assert.equal(core.counters.get("iommu.maps"), 600);
  assert.equal(core.counters.get("iommu.mapBytes"), 600 * SZ_4K);
  assert.equal(domain.mappedBytes, 600 * SZ_4K);
});
