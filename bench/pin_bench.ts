/**
 * Wall time of a VM start (one iteration = one VM start) through the
 * assembled stack (lib/experiment's `buildMachine` + `startVms`, no
 * sanitizer): VFIO_SET_IOMMU, attach, then VFIO_IOMMU_MAP_DMA of all guest
 * RAM. The machine is built before the timing starts and torn down after
 * it stops; only the start is measured. Few samples (no warm-up: the first
 * call Deno makes is one), a 64 GiB start takes seconds.
 *
 * - `iopf boot 1TiB` (baseline): IOPF enabled, so MAP_DMA only records the
 *   range and allocates its bitmap (1 bit per 4 KiB page, 32 MiB for 1 TiB).
 * - `static pin 1TiB hugetlb-1g`: every 1 GiB page faulted in (allocated
 *   and zeroed), pinned, charged and mapped (1 GiB IOMMU blocks).
 * - `static pin 16TiB hugetlb-1g`: the same at 16 times the size (the host
 *   is all guest RAM): per GiB it must cost what the 1 TiB start costs
 *   (bench/_targets.ts: time linear in size, no quadratic term in host
 *   memory allocation).
 * - `static pin 1TiB hugetlb-2m` / `static pin 4TiB hugetlb-2m`: 2 MiB
 *   pages (2 MiB IOMMU blocks), the same per-GiB rule: the host's 2 MiB
 *   block allocator must not rescan what it filled (a quadratic term).
 * - `static pin 16GiB 4k` / `static pin 64GiB 4k`: 4 M and 16 M pages of
 *   4 KiB, each faulted in, pinned and mapped with 4 KiB PTEs (frames are
 *   scattered, so there are no runs); the same per-GiB rule.
 *
 * The time per operation these rows print is per GiB of guest RAM.
 *
 *     deno bench --allow-read bench/pin_bench.ts
 *
 * @module
 */
import { teardown } from "../lib/experiment/mod.ts";
import { startMachine, startVm } from "./_machines.ts";

const GROUP = "pin";

const CASES = [
  { name: "iopf boot 1TiB", ram: "1TiB", backing: "4k", mode: "iopf", n: 8 },
  {
    name: "static pin 1TiB hugetlb-1g",
    ram: "1TiB",
    backing: "hugetlb-1g",
    mode: "static-pin",
    n: 4,
  },
  {
    name: "static pin 16TiB hugetlb-1g",
    ram: "16TiB",
    backing: "hugetlb-1g",
    mode: "static-pin",
    n: 2,
  },
  {
    name: "static pin 1TiB hugetlb-2m",
    ram: "1TiB",
    backing: "hugetlb-2m",
    mode: "static-pin",
    n: 3,
  },
  {
    name: "static pin 4TiB hugetlb-2m",
    ram: "4TiB",
    backing: "hugetlb-2m",
    mode: "static-pin",
    n: 2,
  },
  {
    name: "static pin 16GiB 4k",
    ram: "16GiB",
    backing: "4k",
    mode: "static-pin",
    n: 3,
  },
  {
    name: "static pin 64GiB 4k",
    ram: "64GiB",
    backing: "4k",
    mode: "static-pin",
    n: 2,
  },
] as const;

for (const c of CASES) {
  Deno.bench({
    name: c.name,
    group: GROUP,
    baseline: c.mode === "iopf",
    n: c.n,
    warmup: 0,
    fn(b) {
      const m = startMachine(c.ram, c.backing, c.mode);
      b.start();
      startVm(m);
      b.end();
      teardown(m);
    },
  });
}
