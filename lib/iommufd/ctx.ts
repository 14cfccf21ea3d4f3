/**
 * One iommufd file (struct iommufd_ctx, drivers/iommu/iommufd/main.c) and
 * its objects, with the ioctls a VMM uses to give a guest its assigned
 * device: VFIO_DEVICE_BIND_IOMMUFD, IOMMU_IOAS_ALLOC / MAP / UNMAP,
 * IOMMU_HWPT_ALLOC (paging and nested, Linux 6.7), IOMMU_FAULT_QUEUE_ALLOC
 * (6.11), IOMMU_VIOMMU_ALLOC and IOMMU_VDEVICE_ALLOC (6.13),
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT (attach, and replace when attached) and
 * DETACH, and IOMMU_HWPT_INVALIDATE on a vIOMMU (the guest's stage-1
 * TLBIs, arm_vsmmu_cache_invalidate).
 *
 * Faults (drivers/iommu/iommufd/fault.c, 6.11): only a nested HWPT takes a
 * fault object; its groups go to user space (the VMM), stage 1 and stage 2
 * alike, as the domain's one iopf_handler. A paging HWPT with
 * IOMMU_HWPT_FAULT_ID_VALID is EOPNOTSUPP ("user space page fault on a
 * paging hwpt is not supported yet"). Attaching a device to a fault-capable
 * HWPT enables its IOPF (iommufd_fault_iopf_enable); a replace or detach
 * answers INVALID every group of the device still pending in the old
 * HWPT's fault object (iommufd_auto_response_faults).
 *
 * What-if (labelled as such everywhere): an IOAS allocated with `iopf:
 * true` pins and maps on fault; its paging HWPTs, and the stage 2 of nested
 * HWPTs on them, get the in-kernel handler of iopf.ts.
 *
 * @module
 */
import type { IommuCore, IommuDomain } from "../iommu/core.ts";
import {
  FAULT_REPORT_FLAT,
  FAULT_REPORT_NESTED_L1,
  FAULT_REPORT_NESTED_L2,
  type IommuDevice,
  type NestedConfig,
  newIotlbGather,
} from "../iommu/types.ts";
import type { MmStruct } from "../mm/mm_struct.ts";
import type { Costs } from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import type { Simulator } from "../sim/simulator.ts";
import { PAGE_SIZE } from "../sim/units.ts";
import {
  IommufdAccount,
  type IommufdAccountMode,
  IommufdUser,
} from "./account.ts";
import { IommufdFault } from "./fault.ts";
import { type IoasMapRequest, IommufdIoas } from "./ioas.ts";
import { ioasIopfHandler } from "./iopf.ts";
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
} from "./uapi.ts";
import { IommufdVeventq } from "./veventq.ts";

/** A HWPT (struct iommufd_hw_pagetable): paging over an IOAS, or nested on a parent. */
export interface IommufdHwpt {
  /** The object id. */
  readonly id: number;
  /** Paging (the host's table over an IOAS) or nested (the guest's stage 1). */
  readonly kind: "paging" | "nested";
  /** The IOMMU core's domain. */
  readonly domain: IommuDomain;
  /** A paging HWPT's IOAS; a nested one's parent's. */
  readonly ioas: IommufdIoas;
  /** IOMMU_HWPT_ALLOC flags. */
  readonly flags: number;
  /** The nested HWPT's stage-2 parent. */
  readonly parent: IommufdHwpt | undefined;
  /** The fault object its faults go to (nested HWPTs with IOMMU_HWPT_FAULT_ID_VALID). */
  readonly fault: IommufdFault | undefined;
  /** The vIOMMU a nested HWPT was allocated on. */
  readonly viommu: IommufdViommu | undefined;
}

/** A vIOMMU (struct iommufd_viommu, 6.13): the guest's SMMU instance over a nest-parent HWPT. */
export interface IommufdViommu {
  /** The object id. */
  readonly id: number;
  /** Its stage-2 HWPT. */
  readonly parent: IommufdHwpt;
  /** vDEVICEs: the virtual StreamID of each bound device (dev_id -> virt_id). */
  readonly vdevices: Map<number, number>;
  /** IOMMU_VIOMMU_TYPE_ARM_SMMUV3. */
  readonly type: number;
  /** Its vEVENTQs, at most one per type (6.15). */
  readonly veventqs: Map<number, IommufdVeventq>;
}

/** IOMMU_HWPT_ALLOC (struct iommu_hwpt_alloc). */
export interface HwptAllocRequest {
  /** The device the HWPT is for (its IOMMU decides the format). */
  readonly devId: number;
  /** An IOAS (paging), or a vIOMMU or nest-parent HWPT (nested). */
  readonly ptId: number;
  /** IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_FAULT_ID_VALID. Default 0. */
  readonly flags?: number;
  /** With IOMMU_HWPT_FAULT_ID_VALID: the fault object. */
  readonly faultId?: number;
  /** Nested: the guest's stage-1 configuration (IOMMU_HWPT_DATA_ARM_SMMUV3's vSTE, as the model reads it). */
  readonly data?: NestedConfig;
  /** Paging without NEST_PARENT: the stage the driver uses. Default 2. */
  readonly stage?: 1 | 2;
}

/** Options of {@linkcode IommufdCtx}. */
export interface IommufdCtxOptions {
  /** The cost profile. Default: the core's. */
  costs?: Costs;
  /**
   * Where pinned pages are charged: `"user"` (IOPT_PAGES_ACCOUNT_USER,
   * iommufd's default), `"mm"` (IOMMU_OPTION_RLIMIT_MODE = 1, as VFIO
   * compat) or `"none"` (CAP_IPC_LOCK). Default `"user"`.
   */
  accountMode?: IommufdAccountMode;
  /** The user charged in `"user"` mode (share one between a user's VMs). Default: a user of its own. */
  user?: IommufdUser;
}

interface BoundDevice {
  readonly id: number;
  readonly dev: IommuDevice;
  hwpt: IommufdHwpt | undefined;
  iopfEnabled: boolean;
}

/**
 * One iommufd file of a VMM over the {@linkcode IommuCore} and the VMM's
 * {@linkcode MmStruct}. Object ids come from one counter (one xarray in
 * the kernel), from 1. Ioctls change state synchronously; those that cost
 * CPU return their ns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { IommufdCtx } from "./ctx.ts";
 * import { IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE } from "./ioas.ts";
 * import { IOMMU_HWPT_FAULT_ID_VALID } from "./uapi.ts";
 * import { IommuCore } from "../iommu/mod.ts";
 * import { HostMemory, MmStruct } from "../mm/mod.ts";
 * import { loadCostProfile, Simulator } from "../sim/mod.ts";
 * import { ArmSmmuV3Driver, Smmu, TableMemory } from "../smmu/mod.ts";
 * const sim = new Simulator();
 * const costs = loadCostProfile();
 * const memory = new TableMemory();
 * const driver = new ArmSmmuV3Driver(sim, new Smmu(sim, { costs, memory }), { costs, memory });
 * const core = new IommuCore(sim, { costs, driver });
 * driver.setFaultSink(core);
 * const mm = new MmStruct(new HostMemory({ size: 2 ** 30, costs }), { memlockLimit: Infinity });
 * const ram = mm.mmap({ size: 2 ** 24, backing: "4k" });
 * const ctx = new IommufdCtx(core, mm);
 * const dev = { name: "zip0", sid: 1, ats: false, pri: false, stall: true };
 * const devId = ctx.bindDevice(dev);
 * const ioas = ctx.ioasAlloc();
 * const hwpt = ctx.hwptAlloc({ devId, ptId: ioas }).id;
 * ctx.attach(devId, hwpt);
 * const flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
 * ctx.ioasMap(ioas, { userVa: ram.start, iova: 0x4000_0000, length: 2 ** 24, flags });
 * assert.equal(ctx.pinnedPages, 4096); // every page of an IOAS mapping is pinned
 * // A paging HWPT cannot take a fault object (mainline, 6.11):
 * const { faultId } = ctx.faultQueueAlloc();
 * assert.throws(
 *   () => ctx.hwptAlloc({ devId, ptId: ioas, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId }),
 *   { code: "EOPNOTSUPP" },
 * );
 * ```
 */
export class IommufdCtx {
  /** The simulator (the core's). */
  readonly sim: Simulator;
  /** The IOMMU core. */
  readonly core: IommuCore;
  /** The VMM's address space. */
  readonly mm: MmStruct;
  /** The cost profile. */
  readonly costs: Costs;
  /** Where the file's pinned pages are charged. */
  readonly account: IommufdAccount;
  #nextId = 1;
  readonly #devices = new Map<number, BoundDevice>();
  readonly #ioas = new Map<number, IommufdIoas>();
  readonly #hwpts = new Map<number, IommufdHwpt>();
  readonly #faults = new Map<number, IommufdFault>();
  readonly #viommus = new Map<number, IommufdViommu>();
  #released = false;

  /** An empty iommufd file (open("/dev/iommu")). */
  constructor(core: IommuCore, mm: MmStruct, options: IommufdCtxOptions = {}) {
    this.sim = core.sim;
    this.core = core;
    this.mm = mm;
    this.costs = options.costs ?? core.costs;
    this.account = new IommufdAccount(
      mm,
      options.accountMode ?? "user",
      options.user ?? new IommufdUser(),
    );
  }

  /** 4 KiB pages pinned by every IOAS of the file. */
  get pinnedPages(): number {
    let n = 0;
    for (const a of this.#ioas.values()) n += a.pinnedPages;
    return n;
  }

  /** 4 KiB pages charged (to the user, or the mm's locked_vm, as `account.mode` says) by every IOAS of the file. */
  get lockedPages(): number {
    let n = 0;
    for (const a of this.#ioas.values()) n += a.lockedPages;
    return n;
  }

  #live(what: string): void {
    if (this.#released) {
      throw new IopfLabError(
        "ENODEV",
        `Cannot ${what}: the iommufd file was closed`,
      );
    }
  }

  #device(devId: number, what: string): BoundDevice {
    const d = this.#devices.get(devId);
    if (!d) {
      throw new IopfLabError(
        "ENOENT",
        `Cannot ${what}: no device with dev_id ${devId}`,
        "devId",
      );
    }
    return d;
  }

  /** VFIO_DEVICE_BIND_IOMMUFD: the device's dev_id. EBUSY when bound already. */
  bindDevice(dev: IommuDevice): number {
    this.#live(`bind ${dev.name}`);
    for (const d of this.#devices.values()) {
      if (d.dev === dev) {
        throw new IopfLabError(
          "EBUSY",
          `Cannot bind ${dev.name}: already bound as dev_id ${d.id}`,
        );
      }
    }
    const id = this.#nextId++;
    this.#devices.set(id, { id, dev, hwpt: undefined, iopfEnabled: false });
    return id;
  }

  /** The dev_id of a bound device, or -1. */
  devIdOf(dev: IommuDevice): number {
    for (const d of this.#devices.values()) if (d.dev === dev) return d.id;
    return -1;
  }

  /** The HWPT a device is attached to. */
  attachedHwpt(devId: number): IommufdHwpt | undefined {
    return this.#devices.get(devId)?.hwpt;
  }

  /**
   * IOMMU_IOAS_ALLOC. `iopf` is the what-if (pin and map on fault, with
   * `premapPages` per fault); mainline IOAS mappings are always pinned.
   */
  ioasAlloc(options: { iopf?: boolean; premapPages?: number } = {}): number {
    this.#live("allocate an IOAS");
    const id = this.#nextId++;
    this.#ioas.set(
      id,
      new IommufdIoas(this.sim, {
        costs: this.costs,
        core: this.core,
        mm: this.mm,
        account: this.account,
        id,
        ...options,
      }),
    );
    return id;
  }

  /** The IOAS of id `ioasId`. ENOENT when there is none. */
  ioas(ioasId: number): IommufdIoas {
    const a = this.#ioas.get(ioasId);
    if (!a) {
      throw new IopfLabError(
        "ENOENT",
        `Cannot find IOAS ${ioasId}: no such object`,
        "ioasId",
      );
    }
    return a;
  }

  /** IOMMU_IOAS_MAP; see {@linkcode IommufdIoas.map}. Returns ns. */
  ioasMap(ioasId: number, req: IoasMapRequest): number {
    this.#live("map an IOAS");
    return this.ioas(ioasId).map(req);
  }

  /** IOMMU_IOAS_MAP in simulated time; see {@linkcode IommufdIoas.mapTimed}. */
  ioasMapTimed(
    ioasId: number,
    req: IoasMapRequest,
    done: (error: IopfLabError | undefined, ns: number) => void,
  ): void {
    this.#live("map an IOAS");
    this.ioas(ioasId).mapTimed(req, done);
  }

  /** IOMMU_IOAS_UNMAP; see {@linkcode IommufdIoas.unmap}. */
  ioasUnmap(
    ioasId: number,
    range: { iova: number; length: number },
    done?: () => void,
  ): { bytes: number; ns: number } {
    this.#live("unmap an IOAS");
    return this.ioas(ioasId).unmap(range, done);
  }

  /** IOMMU_FAULT_QUEUE_ALLOC: a fault object and its fd (the object, as the model's fd). */
  faultQueueAlloc(): { faultId: number; fault: IommufdFault } {
    this.#live("allocate a fault queue");
    const id = this.#nextId++;
    const fault = new IommufdFault(this.sim, {
      costs: this.costs,
      core: this.core,
      id,
      devId: (dev) => this.devIdOf(dev),
    });
    this.#faults.set(id, fault);
    return { faultId: id, fault };
  }

  /** The HWPT of id `hwptId`. ENOENT when there is none. */
  hwpt(hwptId: number): IommufdHwpt {
    const h = this.#hwpts.get(hwptId);
    if (!h) {
      throw new IopfLabError(
        "ENOENT",
        `Cannot find HWPT ${hwptId}: no such object`,
        "hwptId",
      );
    }
    return h;
  }

  /**
   * IOMMU_HWPT_ALLOC. Over an IOAS: a paging HWPT (stage 2 with
   * IOMMU_HWPT_ALLOC_NEST_PARENT), filled with the IOAS's pinned areas.
   * Over a vIOMMU or a nest-parent HWPT with `data`: a nested HWPT, with
   * IOMMU_HWPT_FAULT_ID_VALID its faults go to `faultId`. Returns its id
   * and the CPU ns of the fill.
   *
   * @throws {IopfLabError} EOPNOTSUPP for IOMMU_HWPT_FAULT_ID_VALID on a
   *   paging HWPT (mainline 6.11) or unknown flags; EINVAL for a nested
   *   HWPT without `data` or over a parent without NEST_PARENT; ENOENT for
   *   ids that name nothing
   */
  hwptAlloc(req: HwptAllocRequest): { id: number; ns: number } {
    this.#live("allocate a HWPT");
    this.#device(req.devId, "allocate a HWPT");
    const flags = req.flags ?? 0;
    const ioas = this.#ioas.get(req.ptId);
    if (ioas) {
      if ((flags & IOMMU_HWPT_FAULT_ID_VALID) !== 0) {
        throw new IopfLabError(
          "EOPNOTSUPP",
          `Cannot allocate a paging HWPT on IOAS ${req.ptId} with IOMMU_HWPT_FAULT_ID_VALID: user space page fault on a paging hwpt is not supported (Linux 6.11)`,
          "flags",
        );
      }
      if ((flags & ~IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0) {
        throw new IopfLabError(
          "EOPNOTSUPP",
          `Cannot allocate a paging HWPT: unsupported flags ${flags}`,
          "flags",
        );
      }
      const stage = flags & IOMMU_HWPT_ALLOC_NEST_PARENT ? 2 : req.stage ?? 2;
      const domain = this.core.domainAllocPaging(stage);
      const ns = ioas.addDomain(domain);
      const id = this.#nextId++;
      this.#hwpts.set(id, {
        id,
        kind: "paging",
        domain,
        ioas,
        flags,
        parent: undefined,
        fault: undefined,
        viommu: undefined,
      });
      return { id, ns };
    }
    const viommu = this.#viommus.get(req.ptId);
    const parent = viommu?.parent ?? this.#hwpts.get(req.ptId);
    if (!parent) {
      throw new IopfLabError(
        "ENOENT",
        `Cannot allocate a HWPT on object ${req.ptId}: it is no IOAS, HWPT or vIOMMU`,
        "ptId",
      );
    }
    if (
      parent.kind !== "paging" ||
      (parent.flags & IOMMU_HWPT_ALLOC_NEST_PARENT) === 0
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot allocate a nested HWPT on HWPT ${parent.id}: it was not allocated with IOMMU_HWPT_ALLOC_NEST_PARENT`,
        "ptId",
      );
    }
    if ((flags & ~IOMMU_HWPT_FAULT_ID_VALID) !== 0) {
      throw new IopfLabError(
        "EOPNOTSUPP",
        `Cannot allocate a nested HWPT: unsupported flags ${flags}`,
        "flags",
      );
    }
    if (!req.data) {
      throw new IopfLabError(
        "EINVAL",
        "Cannot allocate a nested HWPT without the guest's stage-1 data",
        "data",
      );
    }
    let fault: IommufdFault | undefined;
    if (flags & IOMMU_HWPT_FAULT_ID_VALID) {
      fault = this.#faults.get(req.faultId ?? -1);
      if (!fault) {
        throw new IopfLabError(
          "ENOENT",
          `Cannot allocate a nested HWPT: fault object ${
            String(req.faultId)
          } does not exist`,
          "faultId",
        );
      }
    }
    const domain = this.core.domainAllocNested(parent.domain, req.data);
    const id = this.#nextId++;
    this.#hwpts.set(id, {
      id,
      kind: "nested",
      domain,
      ioas: parent.ioas,
      flags,
      parent,
      fault,
      viommu,
    });
    return { id, ns: 0 };
  }

  /**
   * IOMMU_VIOMMU_ALLOC (6.13): a vIOMMU of `type` (default and only one
   * modelled: IOMMU_VIOMMU_TYPE_ARM_SMMUV3, else EOPNOTSUPP) over the
   * nest-parent HWPT `hwptId`.
   */
  viommuAlloc(req: { devId: number; hwptId: number; type?: number }): number {
    this.#live("allocate a vIOMMU");
    this.#device(req.devId, "allocate a vIOMMU");
    const type = req.type ?? IOMMU_VIOMMU_TYPE_ARM_SMMUV3;
    if (type !== IOMMU_VIOMMU_TYPE_ARM_SMMUV3) {
      throw new IopfLabError(
        "EOPNOTSUPP",
        `Cannot allocate a vIOMMU of type ${type}: the SMMUv3 driver offers IOMMU_VIOMMU_TYPE_ARM_SMMUV3 (1)`,
        "type",
      );
    }
    const parent = this.hwpt(req.hwptId);
    if (
      parent.kind !== "paging" ||
      (parent.flags & IOMMU_HWPT_ALLOC_NEST_PARENT) === 0
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot allocate a vIOMMU on HWPT ${parent.id}: not a nest parent`,
        "hwptId",
      );
    }
    const id = this.#nextId++;
    this.#viommus.set(id, {
      id,
      parent,
      vdevices: new Map(),
      type,
      veventqs: new Map(),
    });
    return id;
  }

  /**
   * IOMMU_VEVENTQ_ALLOC (6.15): a vEVENTQ of `type` with room for `depth`
   * events on vIOMMU `viommuId`, and its fd (the object, as the model's
   * fd). The driver hands it the non-recoverable stage-1 events of every
   * device attached to a nested HWPT of the vIOMMU.
   *
   * @throws {IopfLabError} EOPNOTSUPP for a type other than
   *   IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 (DEFAULT included); EINVAL for a depth
   *   of 0 (or not a u32); ENOENT for no such vIOMMU; EEXIST when the
   *   vIOMMU has a vEVENTQ of the type already
   */
  veventqAlloc(
    req: { viommuId: number; type?: number; depth: number },
  ): { veventqId: number; veventq: IommufdVeventq } {
    this.#live("allocate a vEVENTQ");
    const type = req.type ?? IOMMU_VEVENTQ_TYPE_ARM_SMMUV3;
    if (type !== IOMMU_VEVENTQ_TYPE_ARM_SMMUV3) {
      throw new IopfLabError(
        "EOPNOTSUPP",
        `Cannot allocate a vEVENTQ of type ${type}: the SMMUv3 driver reports IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 (1)`,
        "type",
      );
    }
    const v = this.#viommus.get(req.viommuId);
    if (!v) {
      throw new IopfLabError(
        "ENOENT",
        `Cannot allocate a vEVENTQ: vIOMMU ${req.viommuId} does not exist`,
        "viommuId",
      );
    }
    if (v.veventqs.has(type)) {
      throw new IopfLabError(
        "EEXIST",
        `Cannot allocate a vEVENTQ of type ${type} on vIOMMU ${v.id}: it has one (vEVENTQ ${
          v.veventqs.get(type)!.id
        })`,
        "type",
      );
    }
    const q = new IommufdVeventq(this.sim, {
      costs: this.costs,
      id: this.#nextId,
      type,
      depth: req.depth,
    });
    this.#nextId++;
    v.veventqs.set(type, q);
    return { veventqId: q.id, veventq: q };
  }

  /** IOMMU_DESTROY of a vEVENTQ: its events are dropped; later events of the vIOMMU are logged by the driver. */
  veventqDestroy(veventqId: number): void {
    for (const v of this.#viommus.values()) {
      for (const [type, q] of v.veventqs) {
        if (q.id !== veventqId) continue;
        v.veventqs.delete(type);
        q.destroy();
        return;
      }
    }
    throw new IopfLabError(
      "ENOENT",
      `Cannot destroy vEVENTQ ${veventqId}: no such object`,
      "veventqId",
    );
  }

  /** IOMMU_VDEVICE_ALLOC (6.13): the device's virtual StreamID in the vIOMMU. */
  vdeviceAlloc(
    req: { viommuId: number; devId: number; virtId: number },
  ): number {
    this.#live("allocate a vDEVICE");
    this.#device(req.devId, "allocate a vDEVICE");
    const v = this.#viommus.get(req.viommuId);
    if (!v) {
      throw new IopfLabError(
        "ENOENT",
        `Cannot allocate a vDEVICE: vIOMMU ${req.viommuId} does not exist`,
        "viommuId",
      );
    }
    for (const [d, virt] of v.vdevices) {
      if (d === req.devId || virt === req.virtId) {
        throw new IopfLabError(
          "EEXIST",
          `Cannot allocate a vDEVICE for dev_id ${req.devId} at virtual id ${req.virtId}: dev_id ${d} has virtual id ${virt}`,
        );
      }
    }
    v.vdevices.set(req.devId, req.virtId);
    return this.#nextId++;
  }

  /** The dev_id of the vDEVICE with virtual id `virtId` in `viommuId`, or -1. */
  devIdOfVirt(viommuId: number, virtId: number): number {
    const v = this.#viommus.get(viommuId);
    if (!v) return -1;
    for (const [d, virt] of v.vdevices) if (virt === virtId) return d;
    return -1;
  }

  /** The virtual id of `devId`'s vDEVICE in `viommuId`, or -1. */
  virtIdOf(viommuId: number, devId: number): number {
    return this.#viommus.get(viommuId)?.vdevices.get(devId) ?? -1;
  }

  /**
   * VFIO_DEVICE_ATTACH_IOMMUFD_PT: attaches the device to HWPT `hwptId`, or
   * replaces its HWPT when attached (iommu_group_replace_domain). A
   * fault-capable HWPT enables the device's IOPF and routes its faults; the
   * old HWPT's fault object answers the device's pending groups INVALID;
   * `done` when the hardware uses the new HWPT.
   *
   * @throws {IopfLabError} ENODEV for a fault-capable HWPT and a device
   *   that can neither stall nor use PRI; ENOENT for a nested HWPT on a
   *   vIOMMU without a vDEVICE of the device (arm_smmu_attach_prepare_vmaster)
   */
  attach(devId: number, hwptId: number, done?: () => void): void {
    this.#live("attach a device");
    const d = this.#device(devId, "attach");
    const h = this.hwpt(hwptId);
    const faulting = h.fault !== undefined || h.ioas.iopf;
    if (faulting && !d.dev.stall && !d.dev.pri) {
      throw new IopfLabError(
        "ENODEV",
        `Cannot attach ${d.dev.name} to HWPT ${hwptId}: it takes I/O page faults and the device can neither stall nor use PRI`,
      );
    }
    if (h.viommu && !h.viommu.vdevices.has(devId)) {
      throw new IopfLabError(
        "ENOENT",
        `Cannot attach ${d.dev.name} to nested HWPT ${hwptId}: no vDEVICE of it in vIOMMU ${h.viommu.id}`,
      );
    }
    const old = d.hwpt;
    if (old === h) {
      if (done) this.sim.after(0, done);
      return;
    }
    if (old) {
      this.#dropFaults(d, old);
      this.core.replaceDevice(h.domain, d.dev, done);
    } else {
      this.core.attachDevice(h.domain, d.dev, done);
    }
    d.hwpt = h;
    this.#routeFaults(d, h);
    this.#bindVmaster(d, h);
  }

  /**
   * arm_smmu_attach_prepare_vmaster / commit: a device on a nested HWPT of
   * a vIOMMU reports its events to the vIOMMU's vEVENTQ under its virtual
   * StreamID; any other attach drops that binding.
   */
  #bindVmaster(d: BoundDevice, h: IommufdHwpt): void {
    const v = h.viommu;
    if (!v) {
      this.core.setVmaster(d.dev, undefined);
      return;
    }
    const vsid = v.vdevices.get(d.id)!;
    this.core.setVmaster(d.dev, {
      vsid,
      reportEvent: (evt) => {
        const q = v.veventqs.get(IOMMU_VEVENTQ_TYPE_ARM_SMMUV3);
        return q ? q.reportEvent(evt) : -1;
      },
    });
  }

  /**
   * VFIO_DEVICE_DETACH_IOMMUFD_PT: the old HWPT's fault object answers the
   * device's pending groups INVALID, the device is detached (its STE
   * blocks) and its IOPF disabled; `done` when that completed.
   */
  detach(devId: number, done?: () => void): void {
    const d = this.#device(devId, "detach");
    const h = d.hwpt;
    if (!h) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot detach dev_id ${devId}: it is not attached`,
      );
    }
    this.#dropFaults(d, h);
    d.hwpt = undefined;
    this.core.setVmaster(d.dev, undefined);
    this.core.detachDevice(h.domain, d.dev, done);
    if (d.iopfEnabled) {
      this.core.devDisableIopf(d.dev);
      d.iopfEnabled = false;
    }
  }

  /** The old HWPT's pending groups of `d` answered INVALID; its handlers removed. */
  #dropFaults(d: BoundDevice, old: IommufdHwpt): void {
    old.fault?.autoResponse(d.dev);
    // Groups still on their way through the IOPF workqueue go too (the
    // model's approximation of the attach handle going away).
    this.core.iopfQueueRemoveDevice(d.dev);
    this.core.unregisterDeviceFaultHandler(d.dev);
  }

  /** Registers the fault handlers of HWPT `h` for `d` (enabling its IOPF once). */
  #routeFaults(d: BoundDevice, h: IommufdHwpt): void {
    const regs: [
      number,
      (g: Parameters<IommufdFault["iopfHandler"]>[0], done: () => void) => void,
    ][] = [];
    const ioas = h.ioas;
    if (h.kind === "paging") {
      if (ioas.iopf) {
        regs.push([
          FAULT_REPORT_FLAT,
          (g, done) => ioasIopfHandler(ioas, h.domain, g, done),
        ]);
      }
    } else {
      const fault = h.fault;
      const parent = h.parent!;
      if (ioas.iopf) {
        regs.push([
          FAULT_REPORT_NESTED_L2,
          (g, done) => ioasIopfHandler(ioas, parent.domain, g, done),
        ]);
        if (fault) {
          regs.push([
            FAULT_REPORT_NESTED_L1,
            (g, done) => fault.iopfHandler(g, done),
          ]);
        }
      } else if (fault) {
        // Mainline: the nested domain's one iopf_handler gets every fault.
        regs.push([
          FAULT_REPORT_NESTED_L1 | FAULT_REPORT_NESTED_L2,
          (g, done) => fault.iopfHandler(g, done),
        ]);
      }
    }
    if (regs.length === 0) return;
    if (!d.iopfEnabled) {
      this.core.devEnableIopf(d.dev);
      d.iopfEnabled = true;
    }
    for (const [flags, handler] of regs) {
      this.core.registerDeviceFaultHandler(d.dev, handler, flags);
    }
  }

  /**
   * IOMMU_HWPT_INVALIDATE on vIOMMU `viommuId` (arm_vsmmu_cache_invalidate):
   * the guest's CMD_TLBI_NH_VA for [iova, iova + size) on every nested HWPT
   * of the vIOMMU a device is attached to; `done` when the syncs completed.
   */
  viommuInvalidate(
    viommuId: number,
    range: { iova: number; size: number },
    done?: () => void,
  ): void {
    const targets = new Set<IommuDomain>();
    for (const d of this.#devices.values()) {
      if (d.hwpt?.viommu?.id === viommuId) targets.add(d.hwpt.domain);
    }
    let left = targets.size;
    if (left === 0) {
      this.sim.after(0, () => done?.());
      return;
    }
    for (const dom of targets) {
      const g = newIotlbGather();
      g.start = range.iova;
      g.end = range.iova + range.size;
      g.pgsize = PAGE_SIZE;
      g.entries = Math.max(1, Math.ceil(range.size / PAGE_SIZE));
      this.core.iotlbSync(dom, g, () => {
        if (--left === 0) done?.();
      });
    }
  }

  /**
   * close() of the iommufd file and the device fds: detaches every device
   * (answering pending faults INVALID), destroys the fault objects, frees
   * the HWPTs and releases every IOAS (unmapping and unpinning); `done`
   * when the pins are gone.
   */
  release(done?: () => void): void {
    if (this.#released) {
      if (done) this.sim.after(0, done);
      return;
    }
    this.#released = true;
    let left = 1;
    const one = () => {
      if (--left > 0) return;
      const hwpts = [...this.#hwpts.values()];
      for (const h of hwpts) {
        if (h.kind === "nested") this.core.domainFree(h.domain);
      }
      let rest = 1;
      const last = () => {
        if (--rest > 0) return;
        for (const h of hwpts) {
          if (h.kind === "paging") this.core.domainFree(h.domain);
        }
        this.#hwpts.clear();
        done?.();
      };
      for (const a of this.#ioas.values()) {
        rest++;
        a.release(last);
      }
      this.sim.after(0, last);
    };
    for (const d of this.#devices.values()) {
      if (!d.hwpt) continue;
      left++;
      this.detach(d.id, one);
    }
    for (const f of this.#faults.values()) f.destroy();
    for (const v of this.#viommus.values()) {
      for (const q of v.veventqs.values()) q.destroy();
      v.veventqs.clear();
    }
    this.sim.after(0, one);
  }
}
