/**
 * DMA masters behind the SMMU, apart from the bus they sit on: the DMA
 * engine every device shares (it moves a transfer page by page at the
 * device's bandwidth, each access translated first), the
 * {@linkcode DmaMaster} base with its request, result and counter types,
 * and a platform device relying on the SMMU's stall model
 * ({@linkcode PlatformDevice}). The PCIe function with ATS, an ATC and PRI
 * builds on the same engine in lib/pci.
 *
 * The example moves 3 pages through a stage-2 table whose second page is
 * missing: the stall-enabled stream holds the access, "software" maps the
 * page and resumes it, and the transfer completes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadCostProfile, Simulator } from "../sim/mod.ts";
 * import { IoPgtable } from "../pgtable/mod.ts";
 * import {
 *   CMD_RESUME,
 *   RESUME_RETRY,
 *   Smmu,
 *   TableMemory,
 * } from "../smmu/mod.ts";
 * import { type DmaResult, PlatformDevice } from "./mod.ts";
 *
 * const sim = new Simulator();
 * const costs = loadCostProfile();
 * const memory = new TableMemory();
 * const s2 = new IoPgtable({ stage: 2 });
 * memory.register(0, s2);
 * const smmu = new Smmu(sim, { costs, memory });
 * smmu.writeSte(3, { V: true, Config: 6, S2VMID: 1, S2TTB: s2.root, S2S: true, S2R: true });
 * s2.map(0x0000, 0x8000_0000, 4096, 3);
 * s2.map(0x2000, 0x8000_2000, 4096, 3);
 * smmu.onEvtqIrq = () => {
 *   const { record } = smmu.readEvent()!;
 *   s2.map(record.IPA, 0x8000_1000, 4096, 3);
 *   smmu.submit([{ opcode: CMD_RESUME, SID: 3, STAG: record.STAG, Resp: RESUME_RETRY }]);
 * };
 * const dev = new PlatformDevice(sim, { name: "zip0", sid: 3, smmu, costs });
 * const pas: number[] = [];
 * dev.onAccess = (_iova, pa) => pas.push(pa);
 * let result: DmaResult | undefined;
 * dev.dma({ iova: 0, size: 3 * 4096, write: true }, (r) => (result = r));
 * sim.run();
 * assert(result?.ok && result.bytes === 3 * 4096);
 * assert.deepEqual(pas, [0x8000_0000, 0x8000_1000, 0x8000_2000]);
 * assert(dev.faultLatency.count === 1);
 * ```
 *
 * @module
 */
export {
  type DmaDeviceOptions,
  type DmaError,
  DmaMaster,
  type DmaRequest,
  type DmaResult,
  type DmaStats,
} from "./dma_engine.ts";
export * from "./platform.ts";
