/**
 * Assembly of the whole stack from a scenario: the host (memory, the VMM
 * processes), the SMMU and its driver, the IOMMU core, one VFIO container,
 * device and (in nested mode) guest vSMMU per VM, wired the way the real
 * layers are wired, plus the guest-side DMA context the workloads drive.
 *
 * The DMA modes, as the VM start and the guest's DMA API see them:
 *
 * | mode | at VM start | guest dma_map / dma_unmap | IOVA |
 * |---|---|---|---|
 * | static-pin | MAP_DMA of all RAM, pinned | free | GPA |
 * | iopf | MAP_DMA of all RAM, IOPF (mapped on fault) | free | GPA |
 * | viommu-pin | nothing mapped | trap; VMM MAP_DMA / UNMAP_DMA of the buffer | guest IOVA |
 * | coiommu | nothing mapped | DTT marks; doorbell when unpinned; lazy unpin | GPA |
 *
 * Each mode is a design (lib/experiment/designs): its setup runs at VM
 * start and hands the VM its guest DMA API ({@linkcode GuestDmaOps}); the
 * nested stage is a design on top of `iopf` or `static-pin`. With
 * `dma.backend: "iommufd"` the VM's VMM uses an iommufd file instead of a
 * type1 container ({@linkcode IommufdVm}): the device is bound, an IOAS and
 * a paging HWPT are allocated and the device attached before the iommufd
 * designs run (lib/experiment/designs/iommufd.ts).
 *
 * VMs share the host's memory and its reclaim; a VM that cannot start (its
 * RAM cannot be pinned, or prefaulted) is torn down again, as QEMU exits.
 *
 * @module
 */
import type { CachingModeViommu, GuestIommu } from "../guest/mod.ts";
import { IommuCore, type IommuDomain } from "../iommu/mod.ts";
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IommufdCtx,
  type IommufdFault,
} from "../iommufd/mod.ts";
import type { IommuDevice } from "../iommu/types.ts";
import { HostMemory, MmStruct } from "../mm/mod.ts";
import { PlatformDevice } from "../device/mod.ts";
import { PciDevice } from "../pci/mod.ts";
import { type Costs, loadCostProfile } from "../sim/costs.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import { Rng } from "../sim/rng.ts";
import { Simulator } from "../sim/simulator.ts";
import { formatSize } from "../sim/units.ts";
import { ArmSmmuV3Driver, Smmu, TableMemory } from "../smmu/mod.ts";
import { VfioContainer } from "../vfio/mod.ts";
import type { VmmSmmuAccel } from "../vmm/mod.ts";
import type { DmaContext, DmaOp, TransferResult } from "../workload/types.ts";
import { GuestRamAllocator } from "../workload/guest_ram.ts";
import {
  type Design,
  DMA_DESIGNS,
  IOMMUFD_DESIGNS,
  IOMMUFD_STAGE_DESIGNS,
  STAGE_DESIGNS,
} from "./designs/mod.ts";
import {
  CoiommuDmaOps,
  type CoiommuVm,
  type GuestDmaOps,
  GuestIommuDmaOps,
  IdentityDmaOps,
  ViommuDmaOps,
} from "./dma_ops.ts";
import { GUEST_IOVA_BASE, GUEST_RAM_BASE, tablePoolSize } from "./layout.ts";
import type { Scenario } from "./scenario.ts";

export type { CoiommuVm } from "./dma_ops.ts";
export { GUEST_IOVA_BASE, GUEST_RAM_BASE };

/** A device as the machine drives it (platform device with stall, or PCIe with ATS/PRI). */
export type MachineDevice = PlatformDevice | PciDevice;

/**
 * A VM's iommufd objects (`dma.backend: "iommufd"`): the VMM's iommufd
 * file and the ids of what it allocated (-1 until allocated).
 */
export interface IommufdVm {
  /** The VMM's iommufd file. */
  readonly ctx: IommufdCtx;
  /** The device's dev_id. */
  devId: number;
  /** The IOAS of guest RAM. */
  ioasId: number;
  /** The paging HWPT (the stage-2 nest parent when nested). */
  hwptId: number;
  /** Nested: the vIOMMU. */
  viommuId: number;
  /** Nested: the HWPT of the guest's stage 1. */
  nestedId: number;
  /** Nested: the fault object of the nested HWPT. */
  fault: IommufdFault | undefined;
  /** Nested: QEMU's fault thread and vSMMU command emulation. */
  accel: VmmSmmuAccel | undefined;
}

/** One VM: its VMM process, VFIO container, device and (nested) guest IOMMU. */
export interface VmInstance {
  /** Index of the VM (0-based). */
  readonly index: number;
  /** The VMM's address space (one QEMU process per VM). */
  readonly mm: MmStruct;
  /** First host virtual address of guest RAM. */
  readonly hva: number;
  /** Guest RAM in bytes. */
  readonly ramSize: number;
  /** The VFIO container of the VM's assigned device (unused with the iommufd backend). */
  readonly container: VfioContainer;
  /** The VMM's iommufd objects with `dma.backend: "iommufd"`, else undefined. */
  readonly iommufd: IommufdVm | undefined;
  /** The assigned device. */
  readonly device: MachineDevice;
  /**
   * The guest's DMA API, chosen once at VM start by the VM's designs (the
   * identity API until then, and for a VM that could not start).
   */
  dmaOps: GuestDmaOps;
  /** The guest's SMMU driver in nested mode (read from {@linkcode dmaOps}). */
  readonly guest: GuestIommu | undefined;
  /** The caching-mode vIOMMU in viommu-pin mode (read from {@linkcode dmaOps}). */
  readonly viommu: CachingModeViommu | undefined;
  /** The coIOMMU table, guest driver and VMM backend in coiommu mode (read from {@linkcode dmaOps}). */
  readonly coiommu: CoiommuVm | undefined;
  /** The guest's buffer allocator (offsets from {@linkcode GUEST_RAM_BASE}). */
  readonly alloc: GuestRamAllocator;
  /** True once the VM started (guest RAM set up for DMA). */
  started: boolean;
  /** Why the VM could not start, if it could not. */
  error: IopfLabError | undefined;
  /** Simulated time at which setup completed. */
  setupDoneAt: number;
  /** Simulated time at which the VM's workload completed (0 until then). */
  runDoneAt: number;
}

/** The assembled machine. */
export interface Machine {
  /** The scenario it was built from. */
  readonly scenario: Scenario;
  /** The simulator. */
  readonly sim: Simulator;
  /** The resolved cost profile. */
  readonly costs: Costs;
  /** The seeded generator (forked per VM and workload). */
  readonly rng: Rng;
  /** Host physical memory. */
  readonly host: HostMemory;
  /** Where the SMMU finds translation tables (host tables and guests' stage 1). */
  readonly memory: TableMemory;
  /** The SMMU hardware. */
  readonly smmu: Smmu;
  /** The arm-smmu-v3 driver. */
  readonly driver: ArmSmmuV3Driver;
  /** The IOMMU core. */
  readonly core: IommuCore;
  /** The VMs. */
  readonly vms: readonly VmInstance[];
}

/**
 * Builds the machine of a scenario. Nothing runs yet: {@linkcode startVms}
 * performs the VM start (prefault, VFIO setup) on the simulator.
 */
export function buildMachine(scenario: Scenario): Machine {
  const costs = loadCostProfile(scenario.costs);
  const sim = new Simulator();
  const rng = new Rng(scenario.seed);
  const host = new HostMemory({
    size: scenario.host.memory,
    costs,
    directReclaim: true,
  });
  const memory = new TableMemory();
  const fault = scenario.device.fault;
  const smmu = new Smmu(sim, {
    costs,
    memory,
    iotlbEntries: scenario.smmu.iotlbEntries,
    iotlbWays: scenario.smmu.iotlbWays,
    evtqLog2: Math.log2(scenario.smmu.evtqEntries),
    priqLog2: Math.log2(scenario.smmu.priqEntries),
  });
  const driver = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
  const core = new IommuCore(sim, {
    costs,
    driver,
    invalidation: scenario.smmu.invalidation,
    faultWorkers: scenario.dma.faultWorkers,
  });
  driver.setFaultSink(core);
  const vms: VmInstance[] = [];
  for (let i = 0; i < scenario.vm.count; i++) {
    const mm = new MmStruct(host, { memlockLimit: scenario.host.memlockLimit });
    const vma = mm.mmap({
      size: scenario.vm.memory,
      backing: scenario.host.backing,
    });
    const sid = 0x100 + i;
    const name = fault === "pri"
      ? `0000:0${(i + 1).toString(16)}:00.0`
      : `platform-dev${i}`;
    const device: MachineDevice = fault === "pri"
      ? new PciDevice(sim, {
        name,
        sid,
        smmu,
        costs,
        bandwidth: scenario.device.dmaBandwidth,
        ats: true,
        pri: true,
        priCapacity: scenario.device.priCapacity,
      })
      : new PlatformDevice(sim, {
        name,
        sid,
        smmu,
        costs,
        bandwidth: scenario.device.dmaBandwidth,
      });
    const container = new VfioContainer(core, mm, {
      premapPages: scenario.dma.premapPages,
      mmuNotifier: scenario.dma.mmuNotifier,
    });
    const nested = scenario.smmu.stage === "nested";
    const reserved = nested ? tablePoolSize(scenario.vm.memory) : 0;
    vms.push({
      index: i,
      mm,
      hva: vma.start,
      ramSize: scenario.vm.memory,
      container,
      iommufd: scenario.dma.backend === "iommufd"
        ? {
          ctx: new IommufdCtx(core, mm),
          devId: -1,
          ioasId: -1,
          hwptId: -1,
          viommuId: -1,
          nestedId: -1,
          fault: undefined,
          accel: undefined,
        }
        : undefined,
      device,
      dmaOps: new IdentityDmaOps(sim),
      get guest() {
        return this.dmaOps instanceof GuestIommuDmaOps
          ? this.dmaOps.guest
          : undefined;
      },
      get viommu() {
        return this.dmaOps instanceof ViommuDmaOps
          ? this.dmaOps.viommu
          : undefined;
      },
      get coiommu() {
        return this.dmaOps instanceof CoiommuDmaOps ? this.dmaOps : undefined;
      },
      alloc: guestAllocator(scenario.vm.memory, reserved),
      started: false,
      error: undefined,
      setupDoneAt: 0,
      runDoneAt: 0,
    });
  }
  return { scenario, sim, costs, rng, host, memory, smmu, driver, core, vms };
}

/**
 * The guest's buffer allocator over RAM minus the stage-1 table pool; a VM
 * too small to leave any RAM for buffers is a scenario mistake (EINVAL
 * naming vm.memory), found before anything runs.
 */
function guestAllocator(ram: number, tablePool: number): GuestRamAllocator {
  try {
    return new GuestRamAllocator(ram - tablePool);
  } catch (e) {
    if (!(e instanceof IopfLabError)) throw e;
    const pool = tablePool > 0
      ? ` and ${formatSize(tablePool)} for its stage-1 tables`
      : "";
    throw new IopfLabError(
      "EINVAL",
      `vm.memory: ${
        formatSize(ram)
      } leaves no room for DMA buffers once the guest keeps its low memory${pool}; give the VM more memory`,
      "vm.memory",
    );
  }
}

/**
 * Starts every VM on the simulator, as QEMU would: prefault guest RAM when
 * asked (-mem-prealloc), open the container, attach the device, enable IOPF
 * when the mode uses it, map guest RAM with VFIO_IOMMU_MAP_DMA (pinning all
 * of it in static mode), and in nested mode bring up the vSMMU and the fault
 * region. VMs start one after the other. A VM that cannot start (ENOMEM from
 * pinning) records the error and leaves nothing pinned; `done` runs when all
 * VMs are set up or failed.
 */
export function startVms(m: Machine, done: () => void): void {
  let i = 0;
  const next = (): void => {
    const vm = m.vms[i++];
    if (!vm) {
      done();
      return;
    }
    startVm(m, vm, () => {
      vm.setupDoneAt = m.sim.now;
      next();
    });
  };
  next();
}

/**
 * The designs of a VM of scenario `s`, in setup order: its `dma.mode`, then
 * its stage's (nested), if any.
 */
export function vmDesigns(s: Scenario): readonly Design[] {
  if (s.dma.backend === "iommufd") {
    const mode = IOMMUFD_DESIGNS[s.dma.mode];
    if (!mode) {
      throw new IopfLabError(
        "EINVAL",
        `dma.backend: "iommufd" does not model dma.mode "${s.dma.mode}"`,
        "dma.backend",
      );
    }
    const stage = IOMMUFD_STAGE_DESIGNS[s.smmu.stage];
    return stage ? [mode, stage] : [mode];
  }
  const stage = STAGE_DESIGNS[s.smmu.stage];
  const mode = DMA_DESIGNS[s.dma.mode];
  return stage ? [mode, stage] : [mode];
}

/**
 * The paging domain that translates a VM's guest RAM (the stage 2 when
 * nested): the type1 container's, or the iommufd paging HWPT's.
 */
export function vmDomain(vm: VmInstance): IommuDomain | undefined {
  const x = vm.iommufd;
  if (!x) return vm.container.domain;
  return x.hwptId > 0 ? x.ctx.hwpt(x.hwptId).domain : undefined;
}

/** 4 KiB pages the VM's VFIO backend holds pinned. */
export function vmPinnedPages(vm: VmInstance): number {
  return vm.iommufd ? vm.iommufd.ctx.pinnedPages : vm.container.pinnedPages;
}

/** 4 KiB pages the VM's VFIO backend charged to locked_vm. */
export function vmLockedPages(vm: VmInstance): number {
  return vm.iommufd ? vm.iommufd.ctx.lockedPages : vm.container.lockedPages;
}

/**
 * Closes the VM's VFIO backend (the container, or the iommufd file with
 * its objects), releasing every pin; `done` when that completed.
 */
export function releaseBackend(vm: VmInstance, done?: () => void): void {
  const x = vm.iommufd;
  if (!x) {
    vm.container.release(done);
    return;
  }
  x.ctx.release(() => vm.container.release(done));
}

function startVm(m: Machine, vm: VmInstance, done: () => void): void {
  const s = m.scenario;
  const { sim } = m;
  let ns = 0;
  if (s.host.prefault) {
    try {
      ns += vm.mm.prefault(vm.hva, vm.ramSize) / s.host.prefaultThreads;
    } catch (e) {
      return fail(vm, e, sim, done);
    }
  }
  const nested = s.smmu.stage === "nested";
  const dev: IommuDevice = vm.device.iommuDevice;
  const designs = (): void => {
    let setupNs = 0;
    try {
      if (vm.device instanceof PciDevice) {
        vm.device.enablePri(s.device.priCapacity);
      }
      const ds = vmDesigns(s);
      for (const d of ds) d.check?.(s);
      for (const d of ds) {
        const r = d.setup(m, vm);
        setupNs += r.ns;
        if (r.dmaOps) vm.dmaOps = r.dmaOps;
      }
    } catch (e) {
      return fail(vm, e, sim, done);
    }
    vm.started = true;
    sim.after(setupNs, done);
  };
  const x = vm.iommufd;
  if (x) {
    // QEMU's iommufd backend: bind, an IOAS, a paging HWPT (the nest
    // parent when nested), attach; the designs map guest RAM.
    sim.after(ns, () => {
      let fill = 0;
      try {
        x.devId = x.ctx.bindDevice(dev);
        x.ioasId = x.ctx.ioasAlloc(
          s.dma.mode === "iopf"
            ? { iopf: true, premapPages: s.dma.premapPages }
            : {},
        );
        const h = x.ctx.hwptAlloc({
          devId: x.devId,
          ptId: x.ioasId,
          flags: nested ? IOMMU_HWPT_ALLOC_NEST_PARENT : 0,
          stage: s.smmu.stage === "s1" ? 1 : 2,
        });
        x.hwptId = h.id;
        fill = h.ns;
        x.ctx.attach(x.devId, h.id, () => sim.after(fill, designs));
      } catch (e) {
        return fail(vm, e, sim, done);
      }
    });
    return;
  }
  const c = vm.container;
  c.setIommu(nested ? "nesting" : "type1v2", {
    stage: s.smmu.stage === "s1" ? 1 : 2,
  });
  sim.after(ns, () => c.attachDevice(dev, designs));
}

/**
 * A VM that could not start: the VMM reports the error and exits, closing
 * its container (which releases whatever was pinned) and its address space
 * (which frees what was populated), before the next VM starts.
 */
function fail(
  vm: VmInstance,
  e: unknown,
  sim: Simulator,
  done: () => void,
): void {
  if (!(e instanceof IopfLabError)) throw e;
  vm.error = e;
  vm.started = false;
  vm.dmaOps.stop();
  releaseBackend(vm, () => {
    vm.mm.exitMmap();
    sim.after(0, done);
  });
}

/**
 * Stops the VMs' background threads (the coIOMMU unpin timers) so the
 * simulator can run idle; the runner calls it when the workloads are done.
 */
export function stopBackground(m: Machine): void {
  for (const vm of m.vms) vm.dmaOps.stop();
}

/**
 * The guest's view of one VM for a workload: buffers from guest RAM, the
 * guest DMA API of the mode (identity in single-stage modes, the guest's
 * stage-1 table in nested mode), the device's DMA engine.
 */
export function dmaContext(
  m: Machine,
  vm: VmInstance,
  counters: Map<string, number>,
): DmaContext {
  const { sim } = m;
  const rng = m.rng.fork(1000 + vm.index);
  const ops = vm.dmaOps;
  const ctx: DmaContext = {
    sim,
    rng,
    guestMemory: vm.alloc.size,
    allocBuffer: (size) => guestBuffer(vm, size, () => vm.alloc.alloc(size)),
    allocFresh: (size) =>
      guestBuffer(vm, size, () => vm.alloc.allocFresh(size)),
    freeBuffer: (gpa, size) => vm.alloc.free(gpa - GUEST_RAM_BASE, size),
    dmaMap: (gpa, size, write, done) => ops.dmaMap(gpa, size, write, done),
    dmaUnmap: (iova, size, done) => ops.dmaUnmap(iova, size, done),
    dma(op: DmaOp, done: (r: TransferResult) => void) {
      // A stream is one of the device's independent DMA queues, all in the
      // function's one address space (no PASID): the VM's domain.
      vm.device.dma(
        { iova: op.iova, size: op.size, write: op.write },
        (r) => done({ ok: r.ok, bytes: r.bytes }),
      );
    },
    count(name, n = 1) {
      counters.set(name, (counters.get(name) ?? 0) + n);
    },
  };
  return ctx;
}

/**
 * A buffer from the guest's allocator, as a GPA. Running out is a scenario
 * mistake (the workload's buffers do not fit the VM's RAM once the guest
 * kernel's low memory and, nested, its stage-1 tables are set aside): EINVAL
 * naming the workload, not an error of the model.
 */
function guestBuffer(
  vm: VmInstance,
  size: number,
  alloc: () => number,
): number {
  try {
    return GUEST_RAM_BASE + alloc();
  } catch (e) {
    if (!(e instanceof IopfLabError) || e.code !== "ENOMEM") throw e;
    const usable = vm.alloc.size - vm.alloc.base;
    throw new IopfLabError(
      "EINVAL",
      `workload: a ${formatSize(size)} buffer does not fit: the guest has ${
        formatSize(usable)
      } of its ${formatSize(vm.ramSize)} for DMA buffers and ${
        formatSize(vm.alloc.inUse)
      } are in use; give the VM more memory or the workload less`,
      "workload",
    );
  }
}

/** Checks that a guest-physical range lies in the VM's RAM (for traces and tests). */
export function checkGuestRange(
  vm: VmInstance,
  gpa: number,
  size: number,
): void {
  if (gpa < GUEST_RAM_BASE || gpa + size > GUEST_RAM_BASE + vm.ramSize) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot use guest range ${hex(gpa)}+${hex(size)}: outside guest RAM ${
        hex(GUEST_RAM_BASE)
      }+${hex(vm.ramSize)}`,
    );
  }
}
