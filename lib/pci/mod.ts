/**
 * PCIe endpoints behind the SMMU: a PCIe function with ATS, an ATC and the
 * PRI capability ({@linkcode PciDevice}), built on the DMA engine of
 * lib/device (which also holds the platform device and the DMA request and
 * result types).
 *
 * The example runs an ATS/PRI round trip by hand: the device's ATS request
 * finds no mapping, its Page Request lands in the PRI queue, "software" maps
 * the page and answers with CMD_PRI_RESP Success, and the device's retried
 * translation succeeds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadCostProfile, Simulator } from "../sim/mod.ts";
 * import { IoPgtable } from "../pgtable/mod.ts";
 * import { PRI_RESP_SUCCESS, Smmu, TableMemory } from "../smmu/mod.ts";
 * import { PciDevice } from "./mod.ts";
 *
 * const sim = new Simulator();
 * const costs = loadCostProfile();
 * const memory = new TableMemory();
 * const s2 = new IoPgtable({ stage: 2 });
 * memory.register(0, s2);
 * const smmu = new Smmu(sim, { costs, memory });
 * smmu.writeSte(8, { V: true, Config: 6, S2VMID: 1, S2TTB: s2.root, S2S: false, S2R: true, EATS: 1 });
 * const dev = new PciDevice(sim, { name: "0000:00:01.0", sid: 8, smmu, costs });
 * dev.enablePri(16);
 * smmu.onPriqIrq = () => {
 *   const e = smmu.readPri()!.entry;
 *   s2.map(e.Address, 0x4000_0000, 4096, 3);
 *   smmu.submit([{ opcode: 0x41, SID: 8, GRPID: e.PRGIndex, Resp: PRI_RESP_SUCCESS }]);
 * };
 * let ok = false;
 * dev.dma({ iova: 0x2000, size: 4096, write: true }, (r) => (ok = r.ok));
 * sim.run();
 * assert(ok && dev.stats.pageRequests === 1 && dev.stats.retries === 1);
 * ```
 *
 * @module
 */
export * from "./pci_device.ts";
export * from "./atc.ts";
export * from "./pri.ts";
