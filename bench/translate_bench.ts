/**
 * Translation speed of the SMMU model (wall time, not simulated time).
 * Every iteration translates {@linkcode TRANSLATE_BATCH} (1000) addresses
 * cycling over the same 64 pages, so the time per translation is the
 * reported time / 1000; ratios within the group need no division.
 *
 * - `limit: typed-array lookup` (baseline): one Uint32Array read per page,
 *   the fastest any model of a page table can be.
 * - `iotlb hit s2` / `iotlb hit nested`: an IOTLB hit as devices take it,
 *   through `Smmu.translateCached` (the DMA engines' hot path: STE cache,
 *   CD, IOTLB lookup and permission check, statistics). A hit through
 *   `Smmu.translate` also delivers its result with a simulator event.
 * - `walk s2 (miss)`: a 16-entry IOTLB against 16K pages, so every
 *   translation misses and walks the 4-level stage-2 table, through
 *   `Smmu.translate` and the simulator (the path of every miss).
 *
 *     deno bench bench/translate_bench.ts
 *
 * @module
 */
import { IoPgtable } from "../lib/pgtable/mod.ts";
import { loadCostProfile, Simulator } from "../lib/sim/mod.ts";
import { PROT_READ, PROT_WRITE, SZ_4K } from "../lib/sim/units.ts";
import {
  Smmu,
  TableMemory,
  type Txn,
  type TxnResult,
} from "../lib/smmu/mod.ts";
import { TRANSLATE_BATCH } from "./_ops.ts";

const RW = PROT_READ | PROT_WRITE;
const GROUP = "translate";
const costs = loadCostProfile();
const WARMUP = 50;
const N = 2000;

let sink = 0;
const cb = (r: TxnResult) => {
  if (r.ok) sink += r.pa;
};

/** A stage-2 stream (SID 1, VMID 1) on a fresh SMMU. */
function s2Rig(iotlbEntries = 2048) {
  const sim = new Simulator();
  const memory = new TableMemory();
  const smmu = new Smmu(sim, { costs, memory, iotlbEntries, iotlbWays: 4 });
  // 4 KiB leaves only: a 2 MiB block would turn most "misses" into hits.
  const s2 = new IoPgtable({ stage: 2, pgsizeBitmap: SZ_4K });
  memory.register(0, s2);
  smmu.writeSte(1, {
    V: true,
    Config: 6,
    S2VMID: 1,
    S2TTB: s2.root,
    S2S: false,
    S2R: true,
  });
  return { sim, smmu, s2 };
}

/** Translates every page of `iovas` once through the event path, filling the caches. */
function warm(sim: Simulator, smmu: Smmu, txn: Txn, iovas: number[]): void {
  for (const iova of iovas) smmu.translate({ ...txn, iova }, cb);
  sim.run();
}

/** Checks that the hit path hits (the bench must measure what it says). */
function checkHits(smmu: Smmu, txn: Txn, iovas: number[], pa0: number): void {
  for (const [k, iova] of iovas.entries()) {
    const pa = smmu.translateCached({ ...txn, iova });
    if (pa !== pa0 + k * 4096 + (iova % 4096)) {
      throw new Error(`bench setup: ${iova} did not hit the IOTLB (${pa})`);
    }
  }
}

const PAGES = 64;
/**
 * Where the translated pages start: guest RAM's base on the Arm `virt`
 * machine, as the model's DMA uses (above 2^30, so addresses are doubles in
 * V8, not small integers, as in every real run).
 */
const BASE = 0x4000_0000;
const pageIova = (base: number) =>
  Array.from({ length: PAGES }, (_, k) => base + k * 4096 + 0x10);

{
  const table = new Uint32Array(1 << 16).map((_, k) => 0x10_0000 + k);
  Deno.bench({
    name: "limit: typed-array lookup",
    group: GROUP,
    baseline: true,
    n: N,
    warmup: WARMUP,
    fn() {
      let s = 0;
      for (let i = 0; i < TRANSLATE_BATCH; i++) {
        const iova = BASE + ((i & (PAGES - 1)) << 12) + 0x10;
        const off = iova - BASE;
        s += table[off >>> 12]! * 4096 + (off & 4095);
      }
      sink += s;
    },
  });
}

{
  const { sim, smmu, s2 } = s2Rig();
  s2.map(BASE, 0x1_0000_0000, PAGES * 4096, RW);
  // The shape of a DMA engine's transaction (ssid -1: no PASID).
  const txn: Txn = { sid: 1, ssid: -1, iova: 0, write: false };
  warm(sim, smmu, txn, pageIova(BASE));
  checkHits(smmu, txn, pageIova(BASE), 0x1_0000_0000);
  Deno.bench({
    name: "iotlb hit s2",
    group: GROUP,
    n: N,
    warmup: WARMUP,
    fn() {
      let s = 0;
      for (let i = 0; i < TRANSLATE_BATCH; i++) {
        txn.iova = BASE + ((i & (PAGES - 1)) << 12) + 0x10;
        s += smmu.translateCached(txn);
      }
      sink += s;
    },
  });
}

{
  // Guest stage 1 (tables in guest IPA space, VMID 5) on a host stage 2.
  const sim = new Simulator();
  const memory = new TableMemory();
  const smmu = new Smmu(sim, { costs, memory });
  const s2 = new IoPgtable({ stage: 2 });
  memory.register(0, s2);
  s2.map(0, 0x1_0000_0000, 16 * 2 ** 20, RW);
  let next = 8 * 2 ** 20;
  const guest = new IoPgtable({
    stage: 1,
    allocTable: () => {
      const a = next;
      next += 4096;
      return a;
    },
  });
  memory.register(5, guest);
  const IOVA = BASE;
  guest.map(IOVA, 0x10_0000, PAGES * 4096, RW);
  smmu.writeCd(0x1_0000, 0, {
    V: true,
    ASID: 9,
    TTB0: guest.root,
    T0SZ: 16,
    TG0: 0,
    S: false,
    R: true,
    A: true,
  }, 5);
  smmu.writeSte(2, {
    V: true,
    Config: 7,
    S1ContextPtr: 0x1_0000,
    S1CDMax: 0,
    S1STALLD: false,
    S2VMID: 5,
    S2TTB: s2.root,
    S2S: false,
    S2R: true,
  });
  const txn: Txn = { sid: 2, ssid: -1, iova: 0, write: true };
  warm(sim, smmu, txn, pageIova(IOVA));
  checkHits(smmu, txn, pageIova(IOVA), 0x1_0010_0000);
  Deno.bench({
    name: "iotlb hit nested",
    group: GROUP,
    n: N,
    warmup: WARMUP,
    fn() {
      let s = 0;
      for (let i = 0; i < TRANSLATE_BATCH; i++) {
        txn.iova = IOVA + ((i & (PAGES - 1)) << 12) + 0x10;
        s += smmu.translateCached(txn);
      }
      sink += s;
    },
  });
}

{
  // 16 IOTLB entries against 16K distinct pages: every lookup misses and walks.
  const { sim, smmu, s2 } = s2Rig(16);
  const SPAN = 16384;
  s2.map(0, 0x1_0000_0000, SPAN * 4096, RW);
  const txn: Txn = { sid: 1, ssid: -1, iova: 0, write: false };
  warm(sim, smmu, txn, [0]);
  let k = 0;
  Deno.bench({
    name: "walk s2 (miss)",
    group: GROUP,
    n: N / 4,
    warmup: WARMUP,
    fn() {
      for (let i = 0; i < TRANSLATE_BATCH; i++) {
        k = (k + 4099) & (SPAN - 1);
        txn.iova = k * 4096 + 0x10;
        smmu.translate(txn, cb);
      }
      sim.run();
    },
  });
  globalThis.addEventListener("unload", () => {
    const st = smmu.stats;
    if (st.iotlbHits > 1) {
      console.error(
        `walk s2 (miss): ${st.iotlbHits} IOTLB hits, expected none`,
      );
    }
  });
}

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink); // keep the loops from being optimised out
});
