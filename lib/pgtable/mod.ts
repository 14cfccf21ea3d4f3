/**
 * The Arm LPAE io-pgtable model (drivers/iommu/io-pgtable-arm.c): 4 KiB
 * granule, four levels, 48-bit IOVAs, stage 1 or stage 2, 2 MiB and 1 GiB
 * blocks. Descriptors use the real Armv8 long-descriptor bit layout and live
 * in typed arrays; `walk` reports the descriptor reads a table walker makes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { IoPgtable, newWalkResult } from "./mod.ts";
 * import { PROT_READ, SZ_1G, SZ_4K } from "../sim/units.ts";
 *
 * const s1 = new IoPgtable({ stage: 1 });
 * s1.map(0, SZ_1G, SZ_1G + SZ_4K, PROT_READ); // one 1 GiB block + one page
 * const w = newWalkResult();
 * s1.walk(SZ_1G, w);
 * assert(w.ok && w.pageSize === SZ_4K && w.reads === 4);
 * assert(s1.mappedBytes === SZ_1G + SZ_4K);
 * ```
 *
 * @module
 */
export * from "./io_pgtable.ts";
