/**
 * The arm-smmu-v3 driver model (drivers/iommu/arm/arm-smmu-v3): domains and
 * their io-pgtables, STE/CD installation, TLB and ATC invalidation, the
 * event and PRI queue threaded IRQ handlers, and page responses. The
 * class is in this file; as in Linux, the nested (vIOMMU) part lives in
 * driver_nested.ts (arm-smmu-v3-iommufd.c), the fault path (queue threads,
 * event and PPR handlers, page responses) in driver_irq.ts, and the domain,
 * the master and the invalidation commands they share in _domain.ts
 * (arm-smmu-v3.h).
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import type { Simulator } from "../sim/simulator.ts";
import { type Prot, SZ_1G, SZ_2M, SZ_4K } from "../sim/units.ts";
import {
  IoPgtable,
  type MapPagesProgress,
  PGSIZE_BITMAP_4K,
} from "../pgtable/mod.ts";
import type {
  DriverDomain,
  IommuDevice,
  IommuDriverOps,
  IommuFault,
  IommuFaultSink,
  IommuVmaster,
  IotlbGather,
  MapPagesResult,
  NestedConfig,
  PageResponseCode,
} from "../iommu/types.ts";
import { HOST_PA_SPACE, type TableMemory } from "./memory.ts";
import type { Smmu } from "./smmu.ts";
import {
  ArmSmmuDomain,
  atcCmds,
  atcInvAll,
  type Master,
  tlbiAllCmd,
  type TlbiLimits,
  tlbiRangeCmds,
} from "./_domain.ts";
import { ArmSmmuNested } from "./driver_nested.ts";
import { ArmSmmuIrq } from "./driver_irq.ts";
import {
  CMD_CFGI_CD_ALL,
  CMD_CFGI_STE,
  CMD_SYNC,
  type Command,
  type EventRecord,
  type Ste,
} from "./types.ts";

export { ArmSmmuDomain } from "./_domain.ts";

/** Options of an {@linkcode ArmSmmuV3Driver}. */
export interface ArmSmmuV3DriverOptions {
  /** The cost profile (smmu.irqLatency, smmu.*HandlerPerRecord, iommu.map/unmap per PTE, iommu.tableAlloc). */
  costs: Costs;
  /** Where the driver registers its page tables and CD tables (the SMMU's memory). */
  memory: TableMemory;
  /** The IOMMU core's fault entry points; can also be set later with {@linkcode ArmSmmuV3Driver.setFaultSink}. */
  sink?: IommuFaultSink;
  /** First host PA of the range the driver allocates table pages from. Default 0x6000_0000_0000. */
  tableBase?: number;
  /** Size of that range in bytes. Default 2^40. */
  tableSize?: number;
  /**
   * Without range invalidation, a flush of more than this many pages becomes
   * one invalidation of the whole ASID/VMID (CMDQ_MAX_TLBI_OPS). Default 512.
   */
  tlbiMaxOps?: number;
  /** Page sizes of the domains' tables. Default 4K|2M|1G. */
  pgsizeBitmap?: number;
  /** Non-recoverable events kept in {@linkcode ArmSmmuV3Driver.eventLog}. Default 64. */
  eventLogSize?: number;
}

/** A non-recoverable event as the driver logged it. */
export interface LoggedEvent {
  /** Simulated time the SMMU detected it (ns). */
  readonly time: number;
  /** Event name ("F_TRANSLATION"). */
  readonly name: string;
  /** The record. */
  readonly record: EventRecord;
}

/** Counters of an {@linkcode ArmSmmuV3Driver}. */
export interface ArmSmmuV3DriverStats {
  /** Stall events reported to the core. */
  stallFaults: number;
  /** Page requests reported to the core. */
  priFaults: number;
  /** Events that were not recoverable faults (logged, or handed to a vIOMMU). */
  nonRecoverable: number;
  /** Non-recoverable events handed to a vIOMMU's event queue (vEVENTQ, Linux 6.15), not logged. */
  vevents: number;
  /** Event counts by event ID. */
  eventsById: Record<number, number>;
  /** Stalls aborted because nobody could handle them (no IOPF, no domain, no sink). */
  unhandledStalls: number;
  /** Page requests denied because nobody could handle them. */
  unhandledPageRequests: number;
  /** Stop markers seen (dropped without response). */
  stopMarkers: number;
  /** Event queue overflows seen by the handler. */
  evtqOverflows: number;
  /** PRI queue overflows seen by the handler (partial groups discarded). */
  priqOverflows: number;
  /** Command queue errors handled (arm_smmu_cmdq_skip_err), by SMMU_CMDQ_CONS.ERR. */
  cmdqErrors: { ill: number; abt: number; atcInvSync: number };
  /** ATOS translations run to classify nested page requests. */
  atosLookups: number;
  /** Time (ns) the event-queue thread spent waiting inside fault handlers (fault path "evtq-thread"). */
  evtqThreadHeldNs: number;
  /** Time (ns) the PRI-queue thread spent waiting inside fault handlers (fault path "evtq-thread"). */
  priqThreadHeldNs: number;
  /** CMD_RESUME sent, by response. */
  resumes: { retry: number; abort: number };
  /** CMD_PRI_RESP sent, by response. */
  priResponses: { success: number; invalid: number; failure: number };
}

/**
 * The arm-smmu-v3 driver on an {@linkcode Smmu}: implements the IOMMU core's
 * {@linkcode IommuDriverOps} and turns the hardware's event and PRI records
 * into {@linkcode IommuFault} reports.
 *
 * Domains: a stage-2 paging domain gets a VMID and an STE with Config = 6
 * (S2VMID, S2TTB); a stage-1 paging domain gets an ASID and a CD (ASID,
 * TTB0) in a per-device CD table behind an STE with Config = 5; a nested
 * domain installs Config = 7 with the guest's CD (S1ContextPtr and TTB0 are
 * IPAs in the guest's space, registered in {@linkcode TableMemory} under the
 * parent's VMID) on top of the parent's stage 2. The driver owns the paging
 * domains' io-pgtables, whose table pages come from a host PA range and are
 * registered in TableMemory space 0. Configuration changes are installed with
 * CMD_CFGI_* + CMD_SYNC; unmaps are invalidated in `iotlbSync` with TLBI
 * (range commands when the SMMU has RIL) + CMD_SYNC, then CMD_ATC_INV for ATS
 * devices + CMD_SYNC (`iotlbSyncBlocking`: the same commands, waited for
 * synchronously). A stage-2 domain that is a nesting parent also
 * invalidates the nested combined entries (CMD_TLBI_NH_ALL) and the ATCs of
 * the devices attached through its nested domains.
 *
 * Recoverable faults: `enableIopf` sets CD.S / STE.S2S for stall-capable
 * platform devices, or accepts page requests from PRI devices. The event
 * queue thread reports each stall record (F_TRANSLATION..F_PERMISSION with
 * Stall = 1) as a one-fault group with LAST set and grpid = STAG; other
 * events are counted and logged. **Unlike mainline Linux, whose PRI handler
 * only logs and denies (PRI support was posted but never merged), this
 * driver handles PRI fully:** each PRI queue entry is reported with grpid =
 * PRG index and LAST as the entry says (the core assembles the groups), Stop
 * Markers are dropped without response, and a PRI queue overflow makes the
 * core discard its partial groups (`iopfQueueDiscardPartial`). For a nested domain
 * the driver never reads guest memory: a stall record says the stage itself
 * (its S2 bit and IPA), and for a page request (whose entry does not say) it
 * asks the SMMU with an ATOS translation (`Smmu.atos`, IHI0070 chapter 9),
 * whose SMMU_GATOS_PAR gives REASON (stage 2 or not) and FADDR (the IPA
 * page). `pageResponse` sends CMD_RESUME (SUCCESS -> Retry, otherwise Abort;
 * no CMD_SYNC, as in Linux) or CMD_PRI_RESP with the architecture's Resp
 * encoding (IHI0070 4.5.2: SUCCESS -> 0b10 Success, INVALID -> 0b01
 * InvalidRequest, FAILURE -> 0b00 ResponseFailure; fire and forget). A
 * page request nobody can handle is answered as mainline's
 * arm_smmu_handle_ppr does, with PRI_RESP_DENY, whose value 0 the
 * architecture defines as ResponseFailure. A command queue error
 * (GERROR.CMDQ_ERR) is handled as arm_smmu_gerror_handler and
 * arm_smmu_cmdq_skip_err do: CERROR_ILL replaces the command at
 * SMMU_CMDQ_CONS with a CMD_SYNC, then GERRORN acknowledges, which resumes
 * the queue.
 *
 * The driver knows nothing of VFIO: it talks to the core through
 * {@linkcode IommuFaultSink} and to the hardware through the SMMU's queues.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Simulator } from "../sim/simulator.ts";
 * import { loadCostProfile } from "../sim/costs.ts";
 * import { TableMemory } from "./memory.ts";
 * import { Smmu } from "./smmu.ts";
 * import { ArmSmmuV3Driver } from "./driver.ts";
 *
 * const sim = new Simulator();
 * const costs = loadCostProfile();
 * const memory = new TableMemory();
 * const smmu = new Smmu(sim, { costs, memory });
 * const drv = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
 * const dev = { name: "zip0", sid: 3, ats: false, pri: false, stall: true };
 * const dom = drv.domainAllocPaging(2);
 * let attached = false;
 * drv.attachDev(dev, dom, () => (attached = true));
 * sim.run();
 * assert(attached && smmu.ste(3)?.Config === 6);
 * ```
 */
export class ArmSmmuV3Driver implements IommuDriverOps {
  /** Driver name. */
  readonly name = "arm-smmu-v3";
  /** Counters. */
  readonly stats: ArmSmmuV3DriverStats = {
    stallFaults: 0,
    priFaults: 0,
    nonRecoverable: 0,
    vevents: 0,
    eventsById: {},
    unhandledStalls: 0,
    unhandledPageRequests: 0,
    stopMarkers: 0,
    evtqOverflows: 0,
    priqOverflows: 0,
    cmdqErrors: { ill: 0, abt: 0, atcInvSync: 0 },
    atosLookups: 0,
    evtqThreadHeldNs: 0,
    priqThreadHeldNs: 0,
    resumes: { retry: 0, abort: 0 },
    priResponses: { success: 0, invalid: 0, failure: 0 },
  };
  /** The last non-recoverable events (oldest first). */
  readonly eventLog: LoggedEvent[] = [];

  readonly #sim: Simulator;
  readonly #smmu: Smmu;
  readonly #memory: TableMemory;
  readonly #costs: Costs;
  readonly #tableEnd: number;
  #nextTable: number;
  readonly #freeTables: number[] = [];
  readonly #limits: TlbiLimits;
  readonly #pgsizeBitmap: number;
  readonly #masters = new Map<string, Master>();
  /** The reused progress of {@linkcode mapPages}. */
  readonly #batch: MapPagesProgress = { pages: 0, tables: new Uint8Array(0) };
  readonly #bySid = new Map<number, Master>();
  readonly #vmids = new Set<number>();
  readonly #asids = new Set<number>();
  #nextId = 1;
  /** The fault path: event and PRI queue threads, page responses. */
  readonly #irq: ArmSmmuIrq;
  readonly #takeId = (): number => this.#nextId++;
  /** The nested (vIOMMU) part (arm-smmu-v3-iommufd.c). */
  readonly #nested: ArmSmmuNested;
  readonly #allocTable = (): number => this.#takeTable();
  readonly #freeTable = (addr: number): void => {
    this.#freeTables.push(addr);
  };

  /** Creates the driver and hooks the SMMU's event and PRI queue interrupts. */
  constructor(sim: Simulator, smmu: Smmu, options: ArmSmmuV3DriverOptions) {
    this.#sim = sim;
    this.#smmu = smmu;
    this.#memory = options.memory;
    this.#costs = options.costs;
    const base = options.tableBase ?? 0x6000_0000_0000;
    const size = options.tableSize ?? 2 ** 40;
    if (base % SZ_4K !== 0 || base + size > 2 ** 48 || size < SZ_4K) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create arm-smmu-v3 driver: table range ${hex(base)}+${
          hex(size)
        } must be 4 KiB aligned and below 2^48`,
      );
    }
    this.#nextTable = base;
    this.#tableEnd = base + size;
    this.#limits = {
      rangeInvalidation: smmu.features.rangeInvalidation,
      tlbiMaxOps: options.tlbiMaxOps ?? 512,
    };
    this.#pgsizeBitmap = options.pgsizeBitmap ?? PGSIZE_BITMAP_4K;
    this.#nested = new ArmSmmuNested(smmu, {
      limits: this.#limits,
      nextId: this.#takeId,
    });
    this.#irq = new ArmSmmuIrq(sim, smmu, {
      costs: options.costs,
      stats: this.stats,
      eventLog: this.eventLog,
      eventLogSize: options.eventLogSize ?? 64,
      bySid: this.#bySid,
      sink: options.sink,
    });
  }

  /** Sets the IOMMU core's fault entry points. */
  setFaultSink(sink: IommuFaultSink): void {
    this.#irq.setFaultSink(sink);
  }

  /** The SMMU this driver runs. */
  get smmu(): Smmu {
    return this.#smmu;
  }

  // -------------------------------------------------------------------------
  // Domains

  /** Allocates a paging domain with its own io-pgtable (stage 1: an ASID; stage 2: a VMID). */
  domainAllocPaging(stage: 1 | 2): ArmSmmuDomain {
    if (stage !== 1 && stage !== 2) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot allocate a paging domain: stage must be 1 or 2, got ${
          String(stage)
        }`,
      );
    }
    const f = this.#smmu.features;
    if ((stage === 1 && !f.s1) || (stage === 2 && !f.s2)) {
      throw new IopfLabError(
        "ENODEV",
        `Cannot allocate a stage-${stage} domain: the SMMU does not implement stage ${stage}`,
      );
    }
    const vmid = stage === 2 ? this.#allocId(this.#vmids, "VMID") : 0;
    const asid = stage === 1 ? this.#allocId(this.#asids, "ASID") : -1;
    let pgtable: IoPgtable;
    try {
      pgtable = new IoPgtable({
        stage,
        pgsizeBitmap: this.#pgsizeBitmap,
        allocTable: this.#allocTable,
        freeTable: this.#freeTable,
      });
    } catch (e) {
      if (stage === 2) this.#vmids.delete(vmid);
      else this.#asids.delete(asid);
      throw e;
    }
    this.#memory.register(HOST_PA_SPACE, pgtable);
    return new ArmSmmuDomain({
      id: this.#nextId++,
      kind: stage === 1 ? "paging-s1" : "paging-s2",
      pgsizeBitmap: this.#pgsizeBitmap,
      vmid,
      asid,
      pgtable,
    });
  }

  /**
   * Allocates a nested domain: the guest's stage 1 (`config`) on the
   * stage-2 domain `parent`. When `config.s1ContextPtr` is absent the driver
   * writes a one-CD table holding the config into the guest's space at the
   * IPA `config.s1Ttb` (so the CD fetch needs the same stage-2 page as the
   * first descriptor read).
   */
  domainAllocNested(parent: DriverDomain, config: NestedConfig): ArmSmmuDomain {
    const p = this.#own(parent, "allocate a nested domain on");
    return this.#nested.domainAllocNested(p, config);
  }

  /** Frees a domain with no device attached (EBUSY otherwise, or while nested domains use it). */
  domainFree(domain: DriverDomain): void {
    const d = this.#own(domain, "free");
    if (d.devices.size > 0 || d.children.size > 0) {
      throw new IopfLabError(
        "EBUSY",
        `Cannot free domain ${d.id}: ${d.devices.size} device(s) and ${d.children.size} nested domain(s) still use it`,
      );
    }
    if (d.pgtable) this.#memory.unregister(HOST_PA_SPACE, d.pgtable.root);
    if (d.kind === "paging-s2") this.#vmids.delete(d.vmid);
    if (d.kind === "paging-s1") this.#asids.delete(d.asid);
    if (d.kind === "nested" && d.parent) {
      d.parent.children.delete(d);
      if (d.ownsCdTable) this.#memory.unregisterCdTable(d.vmid, d.s1ContextPtr);
    }
  }

  #allocId(used: Set<number>, what: string): number {
    for (let id = 1; id <= 0xffff; id++) {
      if (!used.has(id)) {
        used.add(id);
        return id;
      }
    }
    throw new IopfLabError(
      "ENOSPC",
      `Cannot allocate a domain: no free ${what}`,
    );
  }

  #takeTable(): number {
    const free = this.#freeTables.pop();
    if (free !== undefined) return free;
    if (this.#nextTable + SZ_4K > this.#tableEnd) {
      throw new IopfLabError(
        "ENOMEM",
        "Cannot allocate a table page: the driver's table range is exhausted",
      );
    }
    const a = this.#nextTable;
    this.#nextTable += SZ_4K;
    return a;
  }

  #own(domain: DriverDomain, what: string): ArmSmmuDomain {
    if (!(domain instanceof ArmSmmuDomain)) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot ${what} domain ${domain.id}: not an arm-smmu-v3 domain`,
      );
    }
    return domain;
  }

  #paging(domain: DriverDomain, what: string): IoPgtable {
    const d = this.#own(domain, what);
    if (!d.pgtable) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot ${what} domain ${d.id}: a ${d.kind} domain has no host page table`,
      );
    }
    return d.pgtable;
  }

  // -------------------------------------------------------------------------
  // Devices

  #master(dev: IommuDevice): Master {
    let m = this.#masters.get(dev.name);
    if (!m) {
      m = {
        dev,
        domain: undefined,
        iopf: false,
        cdPtr: -1,
        vmaster: undefined,
      };
      this.#masters.set(dev.name, m);
    }
    return m;
  }

  /** Installs the device's STE (and CD) for `domain`: CFGI + SYNC, then ATC flush for ATS devices. */
  attachDev(dev: IommuDevice, domain: DriverDomain, done: () => void): void {
    const d = this.#own(domain, "attach a device to");
    const other = this.#bySid.get(dev.sid);
    if (other && other.dev.name !== dev.name) {
      throw new IopfLabError(
        "EBUSY",
        `Cannot attach ${dev.name}: StreamID ${dev.sid} belongs to ${other.dev.name}`,
      );
    }
    const m = this.#master(dev);
    if (m.domain && m.domain !== d) m.domain.devices.delete(dev);
    m.domain = d;
    // Only a nested domain keeps a vIOMMU binding (arm_smmu_master_clear_vmaster).
    if (d.kind !== "nested") m.vmaster = undefined;
    d.devices.add(dev);
    this.#bySid.set(dev.sid, m);
    this.#install(m, done);
  }

  /**
   * Binds the device to a vIOMMU (arm_smmu_attach_commit_vmaster) or, with
   * `undefined`, unbinds it: its non-stalled stage-1 events then go to
   * `vmaster` (vEVENTQ, Linux 6.15) instead of the driver's log.
   *
   * @throws {IopfLabError} EINVAL when the device is not attached to a
   *   nested domain of this driver
   */
  setVmaster(dev: IommuDevice, vmaster: IommuVmaster | undefined): void {
    const m = this.#masters.get(dev.name);
    if (vmaster === undefined) {
      if (m) m.vmaster = undefined;
      return;
    }
    if (!m || m.domain?.kind !== "nested") {
      throw new IopfLabError(
        "EINVAL",
        `Cannot bind ${dev.name} to a vIOMMU: it is not attached to a nested domain`,
      );
    }
    m.vmaster = vmaster;
  }

  /**
   * Puts the device's STE back to abort (CFGI + SYNC, ATC flush), then calls
   * `done`. Until then the device's ATC may still hold the domain's
   * translations, so it stays on the domain's invalidation list: an unmap
   * meanwhile invalidates its ATC too.
   */
  detachDev(dev: IommuDevice, done: () => void): void {
    const m = this.#masters.get(dev.name);
    if (!m || !m.domain) {
      this.#sim.after(0, done);
      return;
    }
    const d = m.domain;
    m.domain = undefined;
    m.vmaster = undefined;
    this.#install(m, () => {
      if (m.domain !== d) d.devices.delete(dev);
      done();
    });
  }

  /**
   * Enables recoverable faults for `dev`: stalls (CD.S / STE.S2S) for a
   * stall-capable device, page requests for a PRI device.
   *
   * @throws {IopfLabError} ENODEV when neither the device nor the SMMU supports a way
   */
  enableIopf(dev: IommuDevice): void {
    const f = this.#smmu.features;
    if (dev.stall) {
      if (f.stallModel === "unsupported") {
        throw new IopfLabError(
          "ENODEV",
          `Cannot enable IOPF for ${dev.name}: the SMMU does not support stalls`,
        );
      }
    } else if (dev.pri) {
      if (!f.pri || !f.ats || !dev.ats) {
        throw new IopfLabError(
          "ENODEV",
          `Cannot enable IOPF for ${dev.name}: PRI needs ATS and PRI on both the device and the SMMU`,
        );
      }
    } else {
      throw new IopfLabError(
        "ENODEV",
        `Cannot enable IOPF for ${dev.name}: the device supports neither stall nor PRI`,
      );
    }
    const m = this.#master(dev);
    if (m.iopf) return;
    m.iopf = true;
    if (m.domain && dev.stall) this.#install(m, undefined);
  }

  /** Disables recoverable faults for `dev`. */
  disableIopf(dev: IommuDevice): void {
    const m = this.#masters.get(dev.name);
    if (!m || !m.iopf) return;
    m.iopf = false;
    if (m.domain && dev.stall) this.#install(m, undefined);
  }

  #stallFor(m: Master): boolean {
    const model = this.#smmu.features.stallModel;
    if (model === "forced") return true;
    if (model === "unsupported") return false;
    return m.iopf && m.dev.stall && !m.dev.ats;
  }

  #buildSte(m: Master): Ste {
    const d = m.domain;
    const eats = m.dev.ats && this.#smmu.features.ats ? 1 : 0;
    if (!d) return { V: true, Config: 0 };
    const stall = this.#stallFor(m);
    const supported = this.#smmu.features.stallModel === "supported";
    switch (d.kind) {
      case "paging-s2":
        return {
          V: true,
          Config: 6,
          S2VMID: d.vmid,
          S2TTB: d.pgtable!.root,
          S2S: stall,
          S2R: true,
          EATS: stall ? 0 : eats,
        };
      case "paging-s1": {
        if (m.cdPtr < 0) m.cdPtr = this.#takeTable();
        this.#smmu.writeCd(m.cdPtr, 0, {
          V: true,
          ASID: d.asid,
          TTB0: d.pgtable!.root,
          T0SZ: 16,
          TG0: 0,
          S: stall,
          R: true,
          A: true,
        });
        return {
          V: true,
          Config: 5,
          S1ContextPtr: m.cdPtr,
          S1CDMax: 0,
          S1STALLD: !stall && supported,
          EATS: stall ? 0 : eats,
          S2VMID: 0,
        };
      }
      case "nested": {
        const p = d.parent!;
        if (d.ownsCdTable) {
          this.#smmu.writeCd(
            d.s1ContextPtr,
            0,
            this.#nested.nestedCd(d.nested!, stall),
            d.vmid,
          );
        }
        return {
          V: true,
          Config: 7,
          S1ContextPtr: d.s1ContextPtr,
          S1CDMax: 0,
          S1STALLD: false,
          EATS: stall ? 0 : eats,
          S2VMID: p.vmid,
          S2TTB: p.pgtable!.root,
          S2S: stall,
          S2R: true,
        };
      }
    }
  }

  #install(m: Master, done: (() => void) | undefined): void {
    const sid = m.dev.sid;
    const ste = this.#buildSte(m);
    this.#smmu.writeSte(sid, ste);
    const cmds: Command[] = [];
    if (ste.Config === 5 || ste.Config === 7) {
      cmds.push({ opcode: CMD_CFGI_CD_ALL, SID: sid });
    }
    cmds.push({ opcode: CMD_CFGI_STE, SID: sid, Leaf: true }, {
      opcode: CMD_SYNC,
    });
    if (m.dev.ats) {
      cmds.push(atcInvAll(sid), { opcode: CMD_SYNC });
    }
    this.#smmu.submit(cmds, done);
  }

  // -------------------------------------------------------------------------
  // Map / unmap / invalidation

  /** Maps through the domain's io-pgtable; returns ns (per PTE written and table page allocated). */
  map(
    domain: DriverDomain,
    iova: number,
    paddr: number,
    size: number,
    prot: Prot,
  ): number {
    const pt = this.#paging(domain, "map into");
    const s = pt.stats;
    const leaves = s.leavesWritten, tables = s.tablesAllocated;
    pt.map(iova, paddr, size, prot);
    const c = this.#costs;
    return (s.leavesWritten - leaves) * c["iommu.mapPerPte"] +
      (s.tablesAllocated - tables) * c["iommu.tableAlloc"];
  }

  /**
   * `n` single 4 KiB maps through the domain's io-pgtable
   * ({@linkcode IoPgtable.mapPages}), priced as `n` {@linkcode map} calls:
   * `r.ns` gets `callNs` plus each page's cost added page by page, `r.pages`
   * the pages mapped (also when it throws, as the first failing map would).
   */
  mapPages(
    domain: DriverDomain,
    iova: number,
    pfns: ArrayLike<number>,
    from: number,
    n: number,
    prot: Prot,
    callNs: number,
    r: MapPagesResult,
  ): void {
    const pt = this.#paging(domain, "map into");
    const p = this.#batch;
    if (p.tables.length < n) p.tables = new Uint8Array(Math.max(n, 512));
    try {
      pt.mapPages(iova, pfns, from, n, prot, p);
    } finally {
      const c = this.#costs;
      const perPte = c["iommu.mapPerPte"], perTable = c["iommu.tableAlloc"];
      const tables = p.tables;
      let ns = r.ns;
      // As map prices one page: 1 leaf written, tables[k] tables allocated.
      for (let k = 0; k < p.pages; k++) {
        ns += callNs + (perPte + tables[k]! * perTable);
      }
      r.ns = ns;
      r.pages += p.pages;
    }
  }

  /** Unmaps through the io-pgtable and adds the range to `gather`; the IOTLB keeps stale entries until a sync. */
  unmap(
    domain: DriverDomain,
    iova: number,
    size: number,
    gather: IotlbGather,
  ): { bytes: number; ns: number } {
    const pt = this.#paging(domain, "unmap from");
    const s = pt.stats;
    const cleared = s.leavesCleared, written = s.leavesWritten;
    const bytes = pt.unmap(iova, size);
    const leaves = s.leavesCleared - cleared;
    const c = this.#costs;
    const ns = leaves * c["iommu.unmapPerPte"] +
      (s.leavesWritten - written) * c["iommu.mapPerPte"];
    if (bytes > 0) {
      const avg = bytes / Math.max(1, leaves);
      const pg = avg >= SZ_1G ? SZ_1G : avg >= SZ_2M ? SZ_2M : SZ_4K;
      gather.start = Math.min(gather.start, iova);
      gather.end = Math.max(gather.end, iova + size);
      gather.pgsize = gather.pgsize === 0 ? pg : Math.min(gather.pgsize, pg);
      gather.entries += leaves;
    }
    return { bytes, ns };
  }

  /** The domain's own translation of `iova` (-1 if none). */
  iovaToPhys(domain: DriverDomain, iova: number): number {
    return this.#paging(domain, "look up").iovaToPhys(iova);
  }

  /**
   * Invalidates what `gather` covers: TLBI by range (RIL) or per page, or the
   * whole ASID/VMID past `tlbiMaxOps` pages; CMD_SYNC; then CMD_ATC_INV to
   * ATS devices and CMD_SYNC. Resets the gather.
   */
  iotlbSync(domain: DriverDomain, gather: IotlbGather, done: () => void): void {
    const cmds = this.#syncCmds(domain, gather);
    if (cmds === undefined) this.#sim.after(0, done);
    else this.#smmu.submit(cmds, done);
  }

  /**
   * The blocking iotlb_sync of a CPU that spins on CMD_SYNC: the same
   * commands as {@linkcode iotlbSync}, through {@linkcode Smmu.submitBlocking},
   * so the IOTLB and the ATS devices' ATCs no longer hold the range when it
   * returns. Resets the gather; returns the ns spent (0 for an empty gather).
   */
  iotlbSyncBlocking(domain: DriverDomain, gather: IotlbGather): number {
    const cmds = this.#syncCmds(domain, gather);
    return cmds === undefined ? 0 : this.#smmu.submitBlocking(cmds);
  }

  /**
   * The commands that invalidate what `gather` covers (TLBI..., CMD_SYNC,
   * then CMD_ATC_INV... and CMD_SYNC for ATS devices), resetting the
   * gather; undefined when it is empty.
   */
  #syncCmds(domain: DriverDomain, gather: IotlbGather): Command[] | undefined {
    const d = this.#own(domain, "sync");
    if (!(gather.end > gather.start)) return undefined;
    const start = gather.start, end = gather.end;
    const pgsize = gather.pgsize || SZ_4K;
    gather.start = Infinity;
    gather.end = 0;
    gather.pgsize = 0;
    gather.entries = 0;
    const cmds: Command[] = [];
    tlbiRangeCmds(d, start, end, pgsize, this.#limits, cmds);
    cmds.push({ opcode: CMD_SYNC });
    atcCmds(d, start, end, cmds);
    return cmds;
  }

  /** Invalidates everything cached for the domain (TLBI by ASID/VMID, ATC flush) and syncs. */
  flushIotlbAll(domain: DriverDomain, done: () => void): void {
    const d = this.#own(domain, "flush");
    const cmds: Command[] = [tlbiAllCmd(d), { opcode: CMD_SYNC }];
    atcCmds(d, 0, Infinity, cmds);
    this.#smmu.submit(cmds, done);
  }

  /**
   * Invalidates a nested domain's stage-1 entries after the guest changed
   * its table (the host side of a guest TLBI through the vSMMU): TLBI_NH_VA
   * for `[iova, iova + size)`, or the whole ASID when `range` is omitted,
   * then ATC invalidation and CMD_SYNC.
   */
  cacheInvalidateUser(
    domain: DriverDomain,
    range: { iova: number; size: number } | undefined,
    done: () => void,
  ): void {
    const d = this.#own(domain, "invalidate");
    this.#nested.cacheInvalidateUser(d, range, done);
  }

  // -------------------------------------------------------------------------
  // Faults

  /**
   * Answers a fault group: CMD_RESUME for a stall (SUCCESS -> Retry,
   * otherwise Abort), CMD_PRI_RESP for a page request group.
   */
  pageResponse(
    dev: IommuDevice,
    fault: IommuFault,
    code: PageResponseCode,
  ): void {
    this.#irq.pageResponse(dev, fault, code);
  }
}
