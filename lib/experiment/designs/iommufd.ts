/**
 * The designs of `dma.backend: "iommufd"`, the VFIO backend mainline Linux
 * has instead of the 2021 RFC (lib/iommufd). At VM start the machine binds
 * the device to the VMM's iommufd, allocates an IOAS and a paging HWPT
 * over it (IOMMU_HWPT_ALLOC_NEST_PARENT when nested) and attaches the
 * device; then:
 *
 * - `static-pin` ({@linkcode iommufdPinned}, mainline): IOMMU_IOAS_MAP of
 *   all guest RAM, every page pinned and charged (as QEMU's iommufd
 *   backend does through its memory listener).
 * - `iopf` ({@linkcode iommufdIopf}, a what-if: no kernel has it): the IOAS
 *   is fault-mapped, so IOMMU_IOAS_MAP pins nothing and the in-kernel
 *   handler pins and maps on fault, as type1 IOPF does in the RFC.
 * - `smmu.stage: "nested"` ({@linkcode iommufdNested}): QEMU's accelerated
 *   nested SMMUv3 (Linux 6.13 vIOMMU and vDEVICE, the 6.11 fault queue):
 *   the guest's stage 1 is a nested HWPT on a vIOMMU, with a fault queue
 *   whose fd the VMM reads ({@linkcode VmmSmmuAccel}) to inject stage-1
 *   faults into the vSMMU, and a vEVENTQ (6.15) for the guest's
 *   non-recoverable stage-1 events. Mainline for stall faults; with PRI it rests on
 *   the SMMUv3 PRI series, posted and not merged; over a fault-mapped IOAS
 *   (`iopf`) its stage 2 is the what-if.
 *
 * @module
 */
import { GuestIommu } from "../../guest/mod.ts";
import { IOMMU_HWPT_FAULT_ID_VALID } from "../../iommufd/mod.ts";
import {
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
} from "../../iommufd/mod.ts";
import { IopfLabError } from "../../sim/errors.ts";
import { VmmSmmuAccel, VSmmu } from "../../vmm/mod.ts";
import { GuestIommuDmaOps } from "../dma_ops.ts";
import { GUEST_RAM_BASE, tablePoolSize } from "../layout.ts";
import type { IommufdVm, VmInstance } from "../machine.ts";
import type { Scenario } from "../scenario.ts";
import { type Design, NO_EXTRAS } from "./design.ts";

/** The `dma.mode` values the iommufd backend models. */
export const IOMMUFD_MODES: readonly string[] = ["static-pin", "iopf"];

/**
 * Refuses what the iommufd backend does not model (EINVAL naming the
 * field): a `dma.mode` other than static-pin or iopf, and the MMU notifier
 * (an option of the RFC's type1 handler only).
 */
export function checkIommufd(s: Scenario): void {
  if (!IOMMUFD_MODES.includes(s.dma.mode)) {
    throw new IopfLabError(
      "EINVAL",
      `dma.backend: "iommufd" is modelled with dma.mode "static-pin" (pinned IOAS) or "iopf" (the what-if); got "${s.dma.mode}"`,
      "dma.backend",
    );
  }
  if (s.dma.mmuNotifier) {
    throw new IopfLabError(
      "EINVAL",
      'dma.mmuNotifier: the MMU notifier is an option of the RFC\'s type1 handler; dma.backend "iommufd" does not model it',
      "dma.mmuNotifier",
    );
  }
}

/** The iommufd objects of `vm` (EINVAL when the VM has none: a type1 VM). */
function need(vm: VmInstance): IommufdVm {
  const x = vm.iommufd;
  if (!x) {
    throw new IopfLabError(
      "EINVAL",
      'dma.backend: the VM has no iommufd (dma.backend is not "iommufd")',
      "dma.backend",
    );
  }
  return x;
}

/** IOMMU_IOAS_MAP of all of a VM's RAM at its GPA. Returns ns. */
export function mapGuestRamIoas(vm: VmInstance): number {
  const x = need(vm);
  return x.ctx.ioasMap(x.ioasId, {
    userVa: vm.hva,
    iova: GUEST_RAM_BASE,
    length: vm.ramSize,
    flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
      IOMMU_IOAS_MAP_WRITEABLE,
  });
}

/**
 * IOMMU_IOAS_MAP of all of a VM's RAM at its GPA as the ioctl runs in time
 * (the pin advances step by step: `IommufdIoas.mapTimed`).
 */
export function mapGuestRamIoasTimed(
  vm: VmInstance,
  done: (error?: IopfLabError) => void,
): void {
  const x = need(vm);
  x.ctx.ioasMapTimed(x.ioasId, {
    userVa: vm.hva,
    iova: GUEST_RAM_BASE,
    length: vm.ramSize,
    flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
      IOMMU_IOAS_MAP_WRITEABLE,
  }, (e) => done(e));
}

/** iommufd with a pinned IOAS (mainline). */
export const iommufdPinned: Design = {
  name: "static-pin",
  label: "iommufd pinned IOAS",
  status: () => ({
    status: "mainline",
    basis:
      "iommufd IOAS (Linux 6.2; VFIO cdev 6.6): IOMMU_IOAS_MAP pins all guest RAM",
  }),
  check: checkIommufd,
  setup: (_m, vm) => ({
    ns: 0,
    timed: (done) => mapGuestRamIoasTimed(vm, done),
  }),
  extras: () => NO_EXTRAS,
};

/** What-if: iommufd with a fault-mapped IOAS (the RFC's idea on iommufd). */
export const iommufdIopf: Design = {
  name: "iopf",
  label: "iommufd IOPF (what-if)",
  status: () => ({
    status: "what-if",
    basis:
      'IOPF on a paging HWPT, pinned on fault in the kernel; Linux 6.11: "user space page fault on a paging hwpt is not supported yet"',
  }),
  check: checkIommufd,
  setup: (_m, vm) => ({ ns: mapGuestRamIoas(vm) }),
  extras(vm) {
    const x = vm.iommufd;
    const c = x && x.ioasId > 0 ? x.ctx.ioas(x.ioasId).counters : undefined;
    const g = (k: string) => c?.get(k) ?? 0;
    return {
      iommufdIopfFaults: g("iommufd.iopf.faults"),
      iommufdIopfMappedPages: g("iommufd.iopf.mappedPages"),
      iommufdIopfPremappedPages: g("iommufd.iopf.premappedPages"),
      iommufdIopfInvalid: g("iommufd.iopf.invalid"),
    };
  },
};

/** The virtual StreamID QEMU gives VM `index`'s device (its vDEVICE's virt_id). */
function virtSid(index: number): number {
  return 0x8 + index;
}

/** Nested over iommufd: QEMU's accelerated SMMUv3 with the fault queue. */
export const iommufdNested: Design = {
  name: "nested",
  label: "iommufd nested stage 1",
  status(s) {
    if (s.dma.mode === "iopf") {
      return {
        status: "what-if",
        basis:
          "stage 1 forwarded through the iommufd fault queue (6.11) over a fault-mapped stage 2 (the what-if)",
      };
    }
    if (s.device.fault === "pri") {
      return {
        status: "posted",
        basis:
          "iommufd nesting with vIOMMU/vDEVICE (6.13) and the fault queue (6.11); SMMUv3 PRI is a posted series, not merged",
      };
    }
    return {
      status: "mainline",
      basis:
        "iommufd nesting: fault queue (Linux 6.11), vIOMMU/vDEVICE and SMMUv3 nesting (6.13), vEVENTQ (6.15); QEMU accelerated SMMUv3",
    };
  },
  check: checkIommufd,
  setup(m, vm) {
    const { sim, costs } = m;
    const s = m.scenario;
    const x = need(vm);
    const ctx = x.ctx;
    const s2 = ctx.hwpt(x.hwptId);
    const vmid = s2.domain.driverDomain.vmid;
    if (vmid === undefined) {
      throw new IopfLabError(
        "EINVAL",
        "smmu.stage: nested translation needs a stage-2 domain with a VMID",
        "smmu.stage",
      );
    }
    x.viommuId = ctx.viommuAlloc({ devId: x.devId, hwptId: x.hwptId });
    ctx.vdeviceAlloc({
      viommuId: x.viommuId,
      devId: x.devId,
      virtId: virtSid(vm.index),
    });
    const { faultId, fault } = ctx.faultQueueAlloc();
    x.fault = fault;
    const vsmmu = new VSmmu(sim, { costs });
    // The vEVENTQ (6.15) for the guest's non-recoverable stage-1 events,
    // as deep as the vSMMU's event queue.
    const { veventq } = ctx.veventqAlloc({
      viommuId: x.viommuId,
      depth: vsmmu.evtqEntries,
    });
    const pool = tablePoolSize(vm.ramSize);
    const guest = new GuestIommu(sim, {
      costs,
      vsmmu,
      tables: m.memory,
      vmid,
      tablePool: { gpa: GUEST_RAM_BASE + vm.ramSize - pool, size: pool },
      stage1: s.guest.stage1,
      stall: s.device.fault === "stall",
    });
    const dev = vm.device.iommuDevice;
    x.accel = new VmmSmmuAccel(sim, {
      costs,
      ctx,
      fault,
      viommuId: x.viommuId,
      vsmmu,
      deviceOf: (devId) => devId === x.devId ? dev : undefined,
      veventq,
    });
    x.nestedId = ctx.hwptAlloc({
      devId: x.devId,
      ptId: x.viommuId,
      flags: IOMMU_HWPT_FAULT_ID_VALID,
      faultId,
      data: guest.config,
    }).id;
    ctx.attach(x.devId, x.nestedId);
    return { ns: 0, dmaOps: new GuestIommuDmaOps(sim, guest) };
  },
  extras(vm) {
    const x = vm.iommufd;
    const f = x?.fault?.counters;
    const a = x?.accel?.counters;
    return {
      iommufdFaultGroups: f?.get("iommufd.fault.groups") ?? 0,
      iommufdFaultGroupsRead: f?.get("iommufd.fault.groupsRead") ?? 0,
      iommufdFaultResponses: f?.get("iommufd.fault.responses") ?? 0,
      iommufdFaultAutoResponses: f?.get("iommufd.fault.autoResponses") ?? 0,
      vmmFaultFdReads: a?.get("vmm.reads") ?? 0,
      vmmVevents: a?.get("vmm.vevents") ?? 0,
      vmmVeventsLost: a?.get("vmm.veventsLost") ?? 0,
    };
  },
};
