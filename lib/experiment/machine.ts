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
 * RAM cannot be pinned, or prefaulted, or the host has no memory left for
 * what the guest touches) is torn down again, as QEMU exits (or the OOM
 * killer ends it).
 *
 * The long parts of a VM start run in simulated time, step by step
 * (lib/sim/steps.ts): the prefault, the static pin (VFIO_IOMMU_MAP_DMA) and
 * the guest's first touch of `guest.touchedMemory`, so the time series see
 * pages populated and pinned as they are.
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
import { withSpread } from "../sim/spread.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import { runSteps, stepBytes } from "../sim/steps.ts";
import { bareMessage } from "../sim/fields.ts";
import { Rng } from "../sim/rng.ts";
import { Simulator } from "../sim/simulator.ts";
import { formatSize, SZ_1G, SZ_2M, SZ_4K } from "../sim/units.ts";
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
import type { DesignSetup } from "./designs/design.ts";
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
import { touchedBytes } from "./resolve.ts";

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
  /**
   * The first error of a started VM's guest (a CPU write the host could not
   * back with memory), if any; the run goes on, the device then faults on
   * the pages and may fail.
   */
  runError: IopfLabError | undefined;
  /** Bytes of guest RAM the guest touched at start (`guest.touchedMemory`). */
  readonly touchedBytes: number;
  /** Simulated ns the guest's first touch of that RAM took on the host. */
  touchNs: number;
  /** Simulated time at which the guest finished touching it (0 until then). */
  touchDoneAt: number;
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
  // The scenario's seed also seeds the spread costs' draws (their own stream).
  const profile = loadCostProfile(scenario.costs);
  const costs = scenario.costSpread
    ? withSpread(profile, scenario.seed)
    : profile;
  const sim = new Simulator();
  const rng = new Rng(scenario.seed);
  const host = new HostMemory({
    size: scenario.host.memory,
    costs,
    directReclaim: true,
    sim,
    swap: scenario.host.swap,
    frameOrder: scenario.host.frameOrder,
  });
  const memory = new TableMemory();
  const fault = scenario.device.fault;
  const smmu = new Smmu(sim, {
    costs,
    memory,
    iotlbEntries: scenario.smmu.iotlbEntries,
    iotlbWays: scenario.smmu.iotlbWays,
    configCacheEntries: scenario.smmu.configCacheEntries,
    ...(scenario.smmu.walkCache
      ? {}
      : { walkCacheS1: [0, 0, 0], walkCacheS2: [0, 0, 0] } as const),
    xlateSlots: scenario.smmu.xlateSlots,
    ptwSlots: scenario.smmu.ptwSlots,
    evtqLog2: Math.log2(scenario.smmu.evtqEntries),
    priqLog2: Math.log2(scenario.smmu.priqEntries),
    stallMax: scenario.smmu.stallMax,
  });
  const driver = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
  const core = new IommuCore(sim, {
    costs,
    driver,
    invalidation: scenario.smmu.invalidation,
    faultWorkers: scenario.dma.faultWorkers,
    faultPath: scenario.iommu.faultPath,
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
        slots: scenario.device.dmaSlots,
        ats: true,
        pri: true,
        priCapacity: scenario.device.priCapacity,
        prgPages: scenario.device.prgPages,
      })
      : new PlatformDevice(sim, {
        name,
        sid,
        smmu,
        costs,
        bandwidth: scenario.device.dmaBandwidth,
        slots: scenario.device.dmaSlots,
      });
    const container = new VfioContainer(core, mm, {
      premapPages: scenario.dma.premapPages,
      mmuNotifier: scenario.dma.mmuNotifier,
    });
    const nested = scenario.smmu.stage === "nested";
    const reserved = nested ? tablePoolSize(scenario.vm.memory) : 0;
    const touched = touchedBytes(
      scenario.guest.touchedMemory,
      scenario.vm.memory,
    );
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
      alloc: guestAllocator(scenario.vm.memory, reserved, touched),
      started: false,
      error: undefined,
      runError: undefined,
      touchedBytes: touched,
      touchNs: 0,
      touchDoneAt: 0,
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
function guestAllocator(
  ram: number,
  tablePool: number,
  touched: number,
): GuestRamAllocator {
  try {
    return new GuestRamAllocator(ram - tablePool, { touched });
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
 * pinning) records the error and leaves nothing pinned. Then, once every VM
 * is set up (`setupDoneAt`), the booted guests touch their
 * `guest.touchedMemory` ({@linkcode touchGuests}); `done` runs when that
 * finished too.
 */
export function startVms(m: Machine, done: () => void): void {
  let i = 0;
  const next = (): void => {
    const vm = m.vms[i++];
    if (!vm) {
      touchGuests(m, done);
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
  if (!s.host.prefault) {
    m.sim.after(0, () => setUpDma(m, vm, done));
    return;
  }
  prefaultThreads(
    m,
    vm,
    (e) => (e ? fail(vm, e, m.sim, done) : setUpDma(m, vm, done)),
  );
}

/** Bytes of the page unit QEMU's prealloc threads split guest RAM into. */
const PREALLOC_UNIT: Readonly<Record<Scenario["host"]["backing"], number>> = {
  "4k": SZ_4K,
  "thp": SZ_2M,
  "hugetlb-2m": SZ_2M,
  "hugetlb-1g": SZ_1G,
};

/**
 * QEMU -mem-prealloc with `host.prefaultThreads` threads (touch_all_pages in
 * util/oslib-posix.c): guest RAM is split into one contiguous slice per
 * thread, in whole pages. Each thread goes through its slice in steps
 * ({@linkcode stepBytes}): a step faults its part in (state first, then
 * time, as every kernel path of the model), zeroes it as one stream through
 * the host's memory bandwidth, which all threads share, then spends the
 * fault path's software time on its own core before the next step. `done`
 * runs when the last thread finishes, with the first error (ENOMEM: RAM ran
 * out; the other threads stop at their next step, as QEMU exits on a failed
 * prealloc).
 */
function prefaultThreads(
  m: Machine,
  vm: VmInstance,
  done: (error?: IopfLabError) => void,
): void {
  const { sim, host } = m;
  const s = m.scenario;
  const unit = PREALLOC_UNIT[s.host.backing];
  const pages = Math.ceil(vm.ramSize / unit);
  const threads = Math.min(s.host.prefaultThreads, pages);
  const slices: { start: number; size: number }[] = [];
  let first = 0;
  for (let t = 0; t < threads; t++) {
    // The remainder is spread over the first threads, as QEMU does.
    const n = Math.floor(pages / threads) + (t < pages % threads ? 1 : 0);
    const start = first * unit;
    slices.push({
      start,
      size: Math.min(vm.ramSize, (first + n) * unit) - start,
    });
    first += n;
  }
  let running = slices.length;
  let failed: IopfLabError | undefined;
  const finished = (): void => {
    if (--running === 0) done(failed);
  };
  const align = Math.max(unit, pageSizeOf(vm));
  for (const sl of slices) {
    const step = stepBytes(sl.size, align);
    let off = 0;
    const next = (): void => {
      if (failed || off >= sl.size) return finished();
      const n = Math.min(step, sl.size - off);
      const out = { zeroPages: 0 };
      let cpuNs: number;
      try {
        cpuNs = vm.mm.prefault(vm.hva + sl.start + off, n, out);
      } catch (e) {
        if (!(e instanceof IopfLabError)) throw e;
        failed ??= e;
        return finished();
      }
      off += n;
      const fault = (): void => {
        sim.after(cpuNs, next);
      };
      if (host.bandwidth) host.bandwidth.transfer(out.zeroPages, fault);
      else fault();
    };
    next();
  }
}

/** The VM's VFIO and DMA setup, after the prefault if any. */
function setUpDma(m: Machine, vm: VmInstance, done: () => void): void {
  const s = m.scenario;
  const { sim } = m;
  const nested = s.smmu.stage === "nested";
  const dev: IommuDevice = vm.device.iommuDevice;
  const designs = (): void => {
    let setupNs = 0;
    const timed: NonNullable<DesignSetupTimed>[] = [];
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
        if (r.timed) timed.push(r.timed);
      }
    } catch (e) {
      return fail(vm, e, sim, done);
    }
    // The designs' timed parts (the static pin) one after the other,
    // then the guest boots and touches its memory.
    let k = 0;
    const nextTimed = (e?: IopfLabError): void => {
      if (e) return fail(vm, e, sim, done);
      const t = timed[k++];
      if (t) {
        t(nextTimed);
        return;
      }
      vm.started = true;
      done();
    };
    sim.after(setupNs, () => nextTimed());
  };
  const x = vm.iommufd;
  if (x) {
    // QEMU's iommufd backend: bind, an IOAS, a paging HWPT (the nest
    // parent when nested), attach; the designs map guest RAM.
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
    return;
  }
  const c = vm.container;
  c.setIommu(nested ? "nesting" : "type1v2", {
    stage: s.smmu.stage === "s1" ? 1 : 2,
  });
  c.attachDevice(dev, designs);
}

/** The design setup's part that runs in simulated time (see {@linkcode DesignSetup.timed}). */
type DesignSetupTimed = DesignSetup["timed"];

/** The host page size backing `vm`'s RAM. */
function pageSizeOf(vm: VmInstance): number {
  return vm.mm.findVma(vm.hva)?.pageSize ?? 4096;
}

/**
 * The booted guests of the VMs that started touch their RAM (see
 * {@linkcode guestTouch}), one VM after the other as they started; a guest
 * the host cannot back fails its VM (the VMM exits, as under the OOM
 * killer), and its memory is free again before the next guest goes on.
 * `done` when every guest is done or failed.
 */
export function touchGuests(m: Machine, done: () => void): void {
  const live = m.vms.filter((vm) => vm.started);
  let i = 0;
  const next = (): void => {
    const vm = live[i++];
    if (!vm) {
      done();
      return;
    }
    guestTouch(m, vm, (err) => (err ? fail(vm, err, m.sim, next) : next()));
  };
  next();
}

/**
 * The booted guest's CPU touches the bottom `vm.touchedBytes` of its RAM
 * (kernel, page cache, applications): every host page not present yet is
 * faulted in (zeroed; reclaiming other pages of the host when memory is
 * short), step by step in simulated time. Populated, not pinned. ENOMEM
 * (the host cannot back it, even after reclaim) fails the VM, naming
 * `guest.touchedMemory`.
 */
function guestTouch(
  m: Machine,
  vm: VmInstance,
  done: (error: IopfLabError | undefined) => void,
): void {
  const total = vm.touchedBytes;
  runSteps(m.sim, {
    total,
    step: stepBytes(total, pageSizeOf(vm)),
    run: (off, bytes) => vm.mm.touch(vm.hva + off, bytes),
    done: (e, ns) => {
      vm.touchNs = ns;
      vm.touchDoneAt = m.sim.now;
      if (!e) return done(undefined);
      done(
        new IopfLabError(
          e.code,
          `guest.touchedMemory: the guest touched ${
            formatSize(total)
          } of its RAM and the host could not back it: ${bareMessage(e)}`,
          "guest.touchedMemory",
        ),
      );
    },
  });
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
    cpuWrite(gpa, size, done) {
      checkGuestRange(vm, gpa, size);
      let ns = 0;
      try {
        ns = vm.mm.touch(vm.hva + (gpa - GUEST_RAM_BASE), size);
      } catch (e) {
        if (!(e instanceof IopfLabError)) throw e;
        // The host could not back the write: the guest goes on, its device
        // will fault on the pages (and may fail to pin them).
        vm.runError ??= new IopfLabError(
          e.code,
          `the guest's CPU write of ${formatSize(size)} at GPA ${
            hex(gpa)
          } could not be backed: ${bareMessage(e)}`,
          "workload",
        );
        ctx.count("guestCpuWriteFailures");
      }
      sim.after(ns, done);
    },
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
