/**
 * Benchmarks of the io-pgtable model: table walks, a 4 KiB map+unmap pair,
 * and mapping 1 GiB with 4 KiB pages.
 *
 * Each "(x1000)" iteration does 1000 operations (bench/_ops.ts divides by
 * that for the time per operation).
 *
 * Run with `deno bench bench/pgtable_bench.ts`.
 *
 * @module
 */
import { IoPgtable, newWalkResult } from "../lib/pgtable/mod.ts";
import {
  PROT_READ,
  PROT_WRITE,
  SZ_1G,
  SZ_2M,
  SZ_4K,
} from "../lib/sim/units.ts";

const RW = PROT_READ | PROT_WRITE;

const walked = new IoPgtable({ stage: 2 });
walked.map(0x40_0000_0000, 0x1000, 64 * SZ_2M, RW); // 4 KiB pages (pa misaligned)
walked.map(0x80_0000_0000, 0, 64 * SZ_2M, RW); // 2 MiB blocks
const w = newWalkResult();
let sink = 0;

Deno.bench(
  "walk a 4 KiB page (x1000)",
  { group: "pgtable", baseline: true, n: 2000, warmup: 50 },
  () => {
    let s = 0;
    for (let i = 0; i < 1000; i++) {
      s +=
        walked.walk(0x40_0000_0000 + ((i * 4099 * SZ_4K) % (64 * SZ_2M)), w).pa;
    }
    sink += s;
  },
);

Deno.bench("walk a 2 MiB block (x1000)", {
  group: "pgtable",
  n: 2000,
  warmup: 50,
}, () => {
  let s = 0;
  for (let i = 0; i < 1000; i++) {
    s +=
      walked.walk(0x80_0000_0000 + ((i * 4099 * SZ_4K) % (64 * SZ_2M)), w).pa;
  }
  sink += s;
});

const churn = new IoPgtable({ stage: 1 });
churn.map(0, 0, SZ_4K, RW); // keep the tables of the churned leaf table alive

Deno.bench("map + unmap a 4 KiB page (x1000)", {
  group: "pgtable",
  n: 500,
  warmup: 20,
}, () => {
  for (let i = 1; i < 1001; i++) {
    churn.map(i * SZ_4K, i * SZ_4K, SZ_4K, RW);
    churn.unmap(i * SZ_4K, SZ_4K);
  }
});

Deno.bench("map 1 GiB of 4 KiB pages", { group: "pgtable", n: 10 }, (b) => {
  const pt = new IoPgtable({ stage: 2, pgsizeBitmap: SZ_4K });
  b.start();
  pt.map(SZ_1G, SZ_4K, SZ_1G, RW);
  b.end();
  pt.unmap(SZ_1G, SZ_1G);
});

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink); // keep the walks from being optimised out
});
