/**
 * The VMM's side (QEMU's) of a VM with a passed-through device: the
 * virtual SMMU it emulates for the guest ({@linkcode VSmmu}, QEMU's smmuv3
 * model as the guest sees it), its backend for nested IOPF that carries
 * faults from VFIO's DMA fault region to the vSMMU and the guest's answers
 * back ({@linkcode VmmSmmuBackend}), QEMU's accelerated nested SMMUv3 over
 * iommufd that does the same through the iommufd fault fd
 * ({@linkcode VmmSmmuAccel}), and the trap handler of a caching-mode
 * vIOMMU that replays each guest map and unmap as VFIO MAP_DMA / UNMAP_DMA
 * ({@linkcode ViommuReplay}). The guest kernel's halves (its SMMU driver and
 * DMA API) are in lib/guest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VSmmu, type VSmmuCommand } from "./mod.ts";
 * import { loadCostProfile, Simulator } from "../sim/mod.ts";
 *
 * const sim = new Simulator();
 * const vsmmu = new VSmmu(sim, { costs: loadCostProfile(), evtqLog2: 1 });
 * // The VMM emulates every command the guest writes (a trap).
 * const trapped: VSmmuCommand[] = [];
 * vsmmu.onCommand((cmd, done) => {
 *   trapped.push(cmd);
 *   done();
 * });
 * // The guest's driver answers each event from its interrupt handler.
 * vsmmu.onIrq(() => {
 *   for (const ev of vsmmu.readEvents()) {
 *     vsmmu.submitCommand({ op: "resume", token: ev.token, devId: ev.devId, retry: true });
 *   }
 * });
 * const event = {
 *   token: 7, devId: 1, kind: "stall" as const, addr: 0x1000, perm: 2,
 *   pasid: 0, pasidValid: false, grpid: 0, last: true,
 * };
 * assert(vsmmu.injectEvent(event));
 * sim.run();
 * assert.deepEqual(trapped, [{ op: "resume", token: 7, devId: 1, retry: true }]);
 * assert(sim.now > 0); // the trap took time
 * ```
 *
 * @module
 */
export * from "./vsmmu.ts";
export * from "./vsmmu_backend.ts";
export * from "./smmuv3_accel.ts";
export * from "./viommu_replay.ts";
