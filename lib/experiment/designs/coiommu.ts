/**
 * `coiommu`: nothing is mapped at VM start; the guest's coIOMMU driver marks
 * its buffers in a DMA tracking table shared with the VMM, rings a doorbell
 * for pages not pinned yet, and the VMM's backend pins them (and, with the
 * LRU policy, unpins them lazily). The IOVA is the GPA.
 *
 * @module
 */
import {
  CoiommuBackend,
  type CoiommuBackendStats,
  CoiommuFrontend,
  DmaTrackingTable,
} from "../../coiommu/mod.ts";
import { PAGE_SIZE } from "../../sim/units.ts";
import { CoiommuDmaOps } from "../dma_ops.ts";
import { GUEST_RAM_BASE } from "../layout.ts";
import type { Design } from "./design.ts";

/** Pinning when the coIOMMU tracking table marks a page. */
export const coiommu: Design = {
  name: "coiommu",
  label: "coIOMMU",
  status: () => ({
    status: "mainline",
    basis:
      "coIOMMU (USENIX ATC 2020) as crosvm's coiommu device; not in QEMU or Linux",
  }),
  setup(m, vm) {
    const s = m.scenario;
    const dtt = new DmaTrackingTable({
      frames: (GUEST_RAM_BASE + vm.ramSize) / PAGE_SIZE,
    });
    const backend = new CoiommuBackend(m.sim, {
      costs: m.costs,
      container: vm.container,
      dtt,
      hva: vm.hva,
      ramBase: GUEST_RAM_BASE,
      ramSize: vm.ramSize,
      unpinPolicy: s.dma.coiommuUnpinPolicy,
      unpinInterval: s.dma.coiommuUnpinInterval,
      generationThreshold: s.dma.coiommuGenerationThreshold,
    });
    const frontend = new CoiommuFrontend(m.sim, {
      costs: m.costs,
      dtt,
      backend,
    });
    const dmaOps = new CoiommuDmaOps({ dtt, frontend, backend });
    backend.start();
    return { ns: 0, dmaOps };
  },
  extras(vm) {
    const co = vm.dmaOps instanceof CoiommuDmaOps ? vm.dmaOps : undefined;
    const st = co?.backend.stats();
    const b = (k: keyof CoiommuBackendStats) => st?.[k] ?? 0;
    const f = (k: string) => co?.frontend.counters.get(k) ?? 0;
    return {
      coiommuDmaMaps: f("coiommu.dmaMaps"),
      coiommuDoorbells: f("coiommu.doorbells"),
      coiommuPinnedTotal: b("pinnedTotal"),
      coiommuPinFailures: b("pinFailures"),
      coiommuUnpinScans: b("unpinScans"),
      coiommuUnpinnedPages: b("unpinnedPages"),
      coiommuSecondChances: b("secondChances"),
      coiommuAgedPages: b("agedPages"),
      coiommuDttBytes: co?.dtt.bytes ?? 0,
    };
  },
};
