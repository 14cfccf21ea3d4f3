/**
 * A PCIe function doing DMA behind the SMMU: ATS with an ATC, and the Page
 * Request Interface.
 *
 * @module
 */
import { IopfLabError } from "../sim/errors.ts";
import type { Simulator } from "../sim/simulator.ts";
import { alignDown, PROT_READ, PROT_WRITE } from "../sim/units.ts";
import type { IommuDevice } from "../iommu/types.ts";
import type { AtsResult, Smmu } from "../smmu/smmu.ts";
import {
  type MutablePriEntry,
  newPriEntry,
  PRG_RESP_INVALID,
  PRG_RESP_SUCCESS,
  type PriEntry,
  type SmmuEndpoint,
} from "../smmu/types.ts";
import {
  type DmaDeviceOptions,
  DmaEngine,
  type DmaError,
  DmaMaster,
  type DmaStats,
  type Transfer,
} from "../device/dma_engine.ts";
import { Atc, type AtcHit } from "./atc.ts";
import { PRI_CTRL_ENABLE, PriCapability } from "./pri.ts";

const PAGE = 4096;

function noop(): void {}

/** Options of a {@linkcode PciDevice}. */
export interface PciDeviceOptions extends DmaDeviceOptions {
  /** Uses ATS (translation requests and an ATC). Default true. */
  ats?: boolean;
  /** Has PRI (needs ATS). Default true when ATS is on. */
  pri?: boolean;
  /** PRI Outstanding Page Request Capacity. Default 256. */
  priCapacity?: number;
  /** PRI Status "PRG Response PASID Required". Default true. */
  prgResponsePasidRequired?: boolean;
  /**
   * Pages asked for in one Page Request Group when a page has no access:
   * the faulting page and up to `prgPages - 1` following pages of the same
   * transfer (one burst), at most the PRI Allocation. Default 1.
   */
  prgPages?: number;
  /**
   * Extra ns before the function sends an ATS Invalidation Completion,
   * after `pci.atcInvalidate` (its entries are dropped at once either
   * way); `Infinity` for a function that never answers ATS Invalidate
   * Requests (a hung or faulty device: the SMMU's CMD_SYNC then times out,
   * IHI0070 3.9.1.4). A fault-injection what-if. Default 0.
   */
  atcInvalidateDelayNs?: number;
  /** ATC entries. Default 64. */
  atcEntries?: number;
  /** ATC ways per set. Default 4. */
  atcWays?: number;
}

const PRG_INDEXES = 512;

/** The pages of one Page Request Group, from when it is sent until it reaches the SMMU. */
interface GroupMsg {
  pasid: number;
  write: boolean;
  idx: number;
  firstPage: number;
  pages: number;
  send: () => void;
}

/** One PRG Response, from the SMMU until it reaches the function. */
interface RespMsg {
  ssid: number;
  idx: number;
  code: number;
  deliver: () => void;
}

/**
 * A PCIe function doing DMA. With ATS, each page is looked up in the ATC
 * (`pci.atcLookup`); a miss sends an ATS Translation Request
 * (`pci.atsRoundTrip` plus the SMMU's own lookup/walk time). A "no access"
 * answer (or missing write permission) leads, with PRI, to a Page Request
 * Group (`pci.pageRequestLatency` to reach the PRI queue) that waits for its
 * PRG Response (`pci.prgResponseLatency` back): Success retries the
 * translation (PCIe 10.4.2: after a Success the function re-issues its
 * Translation Request, and a page still without access is asked for again,
 * with no retry limit; so an automatic Success the SMMU sent for a group
 * it dropped on PRI queue overflow, IHI0070 8.1, makes the function ask
 * again), Invalid Request fails the transfer, Response Failure sets
 * Status.RF and stops PRI at the function. At most Allocation page requests
 * are outstanding (a transfer waits for credits), PRG indexes are 9 bits,
 * and a response for an unknown index sets UPRGI. ATC Invalidation Requests
 * complete after `pci.atcInvalidate`. Without ATS the function's
 * transactions go to {@linkcode Smmu.translate} like a platform device's.
 *
 * The PRI capability starts disabled: {@linkcode PciDevice.enablePri} (or
 * the registers in {@linkcode PciDevice.pri}) enable it, as the PCI core
 * would for the IOMMU driver.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Simulator } from "../sim/simulator.ts";
 * import { loadCostProfile } from "../sim/costs.ts";
 * import { IoPgtable } from "../pgtable/mod.ts";
 * import { TableMemory } from "../smmu/memory.ts";
 * import { Smmu } from "../smmu/smmu.ts";
 * import { PciDevice } from "./pci_device.ts";
 *
 * const sim = new Simulator();
 * const costs = loadCostProfile();
 * const memory = new TableMemory();
 * const s2 = new IoPgtable({ stage: 2 });
 * memory.register(0, s2);
 * s2.map(0, 0x8000_0000, 16384, 3);
 * const smmu = new Smmu(sim, { costs, memory });
 * // Stage 2, ATS allowed (EATS is IGNORED on a bypass STE)
 * smmu.writeSte(0x100, {
 *   V: true, Config: 6, EATS: 1, S2VMID: 1, S2TTB: s2.root, S2S: false, S2R: true,
 * });
 * const nic = new PciDevice(sim, { name: "0000:01:00.0", sid: 0x100, smmu, costs });
 * let ok = false;
 * nic.dma({ iova: 0, size: 16384, write: false }, (r) => (ok = r.ok));
 * sim.run();
 * assert(ok && nic.stats.atcMisses === 4 && nic.stats.atsRequests === 4);
 * ```
 */
export class PciDevice extends DmaMaster implements SmmuEndpoint {
  /** How the IOMMU core sees it. */
  readonly iommuDevice: IommuDevice;
  /** The PRI capability registers (undefined without PRI). */
  readonly pri: PriCapability | undefined;
  /** The ATC (undefined without ATS). */
  readonly atc: Atc | undefined;
  readonly #engine: DmaEngine;
  /** The engine's counters, without the base class's getter on the hot path. */
  readonly #stats: DmaStats;
  /** Scratch record of the ATC lookups. */
  readonly #atcHit: AtcHit = { prot: 0 };
  readonly #sim: Simulator;
  readonly #smmu: Smmu;
  readonly #cAtcLookup: number;
  readonly #cAts: number;
  readonly #cPrq: number;
  readonly #cPrgResp: number;
  readonly #cAtcInv: number;
  readonly #prgPages: number;
  readonly #atcInvDelay: number;
  #atcGen = 0;
  readonly #groupT: (Transfer | undefined)[] = new Array(PRG_INDEXES).fill(
    undefined,
  );
  readonly #groupPages = new Int32Array(PRG_INDEXES);
  readonly #groupPasid = new Int32Array(PRG_INDEXES);
  #groups = 0;
  #nextIdx = 0;
  readonly #waiters: Transfer[] = [];
  readonly #groupMsgs: GroupMsg[] = [];
  readonly #respMsgs: RespMsg[] = [];
  readonly #priScratch: MutablePriEntry = newPriEntry();

  /**
   * Creates the function and attaches it to the SMMU as the endpoint of
   * its Requester ID (when it uses ATS).
   *
   * @throws {IopfLabError} EINVAL for PRI without ATS or bad sizes
   */
  constructor(sim: Simulator, options: PciDeviceOptions) {
    const ats = options.ats ?? true;
    const pri = options.pri ?? ats;
    if (pri && !ats) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create PCI device ${options.name}: PRI needs ATS`,
      );
    }
    const prgPages = options.prgPages ?? 1;
    if (!Number.isInteger(prgPages) || prgPages < 1) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create PCI device ${options.name}: prgPages must be a whole number >= 1, got ${prgPages}`,
      );
    }
    const atcInvDelay = options.atcInvalidateDelayNs ?? 0;
    if (!(typeof atcInvDelay === "number" && atcInvDelay >= 0)) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create PCI device ${options.name}: atcInvalidateDelayNs must be a number of ns >= 0 (or Infinity), got ${
          String(atcInvDelay)
        }`,
      );
    }
    const engine = new DmaEngine(sim, options);
    super(engine);
    this.#engine = engine;
    this.#stats = engine.stats;
    this.#sim = sim;
    this.#smmu = options.smmu;
    const c = options.costs;
    this.#cAtcLookup = c["pci.atcLookup"];
    this.#cAts = c["pci.atsRoundTrip"];
    this.#cPrq = c["pci.pageRequestLatency"];
    this.#cPrgResp = c["pci.prgResponseLatency"];
    this.#cAtcInv = c["pci.atcInvalidate"];
    this.#prgPages = prgPages;
    this.#atcInvDelay = atcInvDelay;
    this.iommuDevice = Object.freeze({
      name: options.name,
      sid: options.sid,
      ats,
      pri,
      stall: false,
    });
    this.pri = pri
      ? new PriCapability({
        capacity: options.priCapacity ?? 256,
        pasidRequired: options.prgResponsePasidRequired ?? true,
      })
      : undefined;
    if (this.pri) this.pri.onReset = () => this.#resetPri();
    this.atc = ats
      ? new Atc({
        entries: options.atcEntries ?? 64,
        ways: options.atcWays ?? 4,
      })
      : undefined;
    if (ats) {
      this.#engine.translatePage = (t) => this.#atsPage(t);
      this.#engine.bindExtra = (t) => this.#bind(t);
      options.smmu.attachEndpoint(options.sid, this);
    }
  }

  /** Page requests outstanding now. */
  get outstandingPageRequests(): number {
    return this.pri?.outstanding ?? 0;
  }

  /**
   * Enables PRI the way pci_enable_pri() does: Allocation = min(capacity,
   * `allocation`, default the capacity), then Enable. Returns the allocation.
   *
   * @throws {IopfLabError} ENODEV without PRI; EBUSY when not stopped
   */
  enablePri(allocation?: number): number {
    const pri = this.#needPri("enable PRI");
    if (pri.enabled) return pri.allocation;
    const n = pri.setAllocation(allocation ?? pri.capacity);
    pri.writeControl(PRI_CTRL_ENABLE);
    return n;
  }

  /** Clears Enable; transfers waiting for credits fail with "pri-disabled". */
  disablePri(): void {
    const pri = this.#needPri("disable PRI");
    pri.writeControl(0);
    this.#failWaiters("pri-disabled");
  }

  /** Sends a Stop Marker for `pasid` (L/W/R = 1/0/0 with the PASID). */
  stopPasid(pasid: number): void {
    this.#needPri("send a Stop Marker");
    const e: PriEntry = {
      StreamID: this.sid,
      SubstreamID: pasid,
      SSV: true,
      PRIV: false,
      EXEC: false,
      READ: false,
      WRITE: false,
      LAST: true,
      PRGIndex: 0,
      Address: 0,
    };
    this.#sim.after(this.#cPrq, () => this.#smmu.pageRequest(e));
  }

  #needPri(what: string): PriCapability {
    if (!this.pri) {
      throw new IopfLabError(
        "ENODEV",
        `Cannot ${what} on ${this.name}: no PRI capability`,
      );
    }
    return this.pri;
  }

  // -------------------------------------------------------------------------
  // Endpoint hooks (called by the SMMU)

  /** A PRG Response arrives (after `pci.prgResponseLatency`). */
  prgResponse(ssid: number, prgIndex: number, code: number): void {
    const r = this.#respMsgs.pop() ?? this.#newRespMsg();
    r.ssid = ssid;
    r.idx = prgIndex;
    r.code = code;
    this.#sim.after(this.#cPrgResp, r.deliver);
  }

  /** A PRG Response on its way to the function (pooled; `deliver` is bound once). */
  #newRespMsg(): RespMsg {
    const r: RespMsg = { ssid: -1, idx: 0, code: 0, deliver: noop };
    r.deliver = () => {
      const { ssid, idx, code } = r;
      this.#respMsgs.push(r);
      this.#onPrgResponse(ssid, idx, code);
    };
    return r;
  }

  /**
   * An ATC Invalidation Request: drop the entries, complete after
   * `pci.atcInvalidate` plus `atcInvalidateDelayNs` (never, when that is
   * Infinity).
   */
  atcInvalidate(
    ssid: number,
    addr: number,
    log2Pages: number,
    done: () => void,
  ): void {
    const ns = this.atcInvalidateBlocking(ssid, addr, log2Pages);
    if (ns < Infinity) this.#sim.after(ns, done);
  }

  /**
   * An ATC Invalidation Request whose completion the SMMU waits for
   * synchronously: drops the entries now (and keeps ATS answers already in
   * flight out of the ATC) and returns `pci.atcInvalidate` plus
   * `atcInvalidateDelayNs`, the ns until the Invalidation Completion
   * (Infinity: none comes).
   */
  atcInvalidateBlocking(ssid: number, addr: number, log2Pages: number): number {
    this.#stats.atcInvalidations++;
    this.#atcGen++;
    this.atc?.invalidate(ssid, addr, log2Pages);
    return this.#cAtcInv + this.#atcInvDelay;
  }

  // -------------------------------------------------------------------------
  // ATS / PRI path

  #bind(t: Transfer): void {
    t.sendAts = () => {
      t.atsReq.iova = t.cur;
      this.#stats.atsRequests++;
      this.#smmu.atsTranslate(t.atsReq, t.onAts);
    };
    t.onAts = (r: AtsResult) => {
      if (t.finished) return;
      const need = t.write ? r.write : r.read;
      if (r.ok && need) {
        const off = t.cur - alignDown(t.cur, r.pageSize); // t.cur % pageSize
        if (this.#atcGen === t.atcGen) {
          this.atc!.insert(
            t.pasid,
            t.cur - off,
            r.pageSize,
            r.pa,
            (r.read ? PROT_READ : 0) | (r.write ? PROT_WRITE : 0),
          );
        }
        this.#engine.access(t, r.pa + off, 0);
        return;
      }
      if (r.unsupported) {
        this.#stats.faults++;
        this.#engine.finish(t, "unsupported");
        return;
      }
      this.#stats.faults++;
      if (t.faultAt < 0) t.faultAt = this.#sim.now;
      this.#pageRequest(t);
    };
  }

  #atsPage(t: Transfer): void {
    const hit = this.#atcHit;
    const pa = this.atc!.lookupInto(t.pasid, t.cur, hit);
    if (pa >= 0) {
      if ((hit.prot & (t.write ? PROT_WRITE : PROT_READ)) !== 0) {
        this.#stats.atcHits++;
        this.#engine.access(t, pa, this.#cAtcLookup);
        return;
      }
    }
    this.#stats.atcMisses++;
    t.atcGen = this.#atcGen;
    this.#sim.after(this.#cAtcLookup + this.#cAts, t.sendAts);
  }

  #pageRequest(t: Transfer): void {
    const pri = this.pri;
    if (!pri || !pri.canIssue) {
      this.#engine.finish(
        t,
        pri?.responseFailure ? "response-failure" : "pri-disabled",
      );
      return;
    }
    const firstPage = Math.floor(t.cur / PAGE);
    const lastPage = Math.floor((t.end - 1) / PAGE);
    const k = Math.min(
      this.#prgPages,
      lastPage - firstPage + 1,
      pri.allocation,
    );
    if (pri.outstanding + k > pri.allocation || this.#groups >= PRG_INDEXES) {
      this.#stats.creditWaits++;
      this.#waiters.push(t);
      return;
    }
    let idx = this.#nextIdx;
    while (this.#groupT[idx] !== undefined) idx = (idx + 1) % PRG_INDEXES;
    this.#nextIdx = (idx + 1) % PRG_INDEXES;
    this.#groupT[idx] = t;
    this.#groupPages[idx] = k;
    this.#groupPasid[idx] = t.pasid;
    this.#groups++;
    pri.outstanding += k;
    if (pri.outstanding > this.#stats.maxOutstanding) {
      this.#stats.maxOutstanding = pri.outstanding;
    }
    this.#stats.pageRequests += k;
    this.#stats.pageRequestGroups++;
    const g = this.#groupMsgs.pop() ?? this.#newGroupMsg();
    g.pasid = t.pasid;
    g.write = t.write;
    g.idx = idx;
    g.firstPage = firstPage;
    g.pages = k;
    this.#sim.after(this.#cPrq, g.send);
  }

  /** A Page Request Group on its way to the SMMU (pooled; `send` is bound once). */
  #newGroupMsg(): GroupMsg {
    const g: GroupMsg = {
      pasid: -1,
      write: false,
      idx: 0,
      firstPage: 0,
      pages: 0,
      send: noop,
    };
    g.send = () => {
      // The SMMU encodes each entry into its PRI queue at once: one
      // scratch entry serves the whole group.
      const e = this.#priScratch;
      e.StreamID = this.sid;
      e.SubstreamID = g.pasid >= 0 ? g.pasid : 0;
      e.SSV = g.pasid >= 0;
      e.PRIV = false;
      e.EXEC = false;
      e.READ = !g.write;
      e.WRITE = g.write;
      e.PRGIndex = g.idx;
      for (let j = 0; j < g.pages; j++) {
        e.LAST = j === g.pages - 1;
        e.Address = (g.firstPage + j) * PAGE;
        this.#smmu.pageRequest(e);
      }
      this.#groupMsgs.push(g);
    };
    return g;
  }

  #onPrgResponse(ssid: number, idx: number, code: number): void {
    const pri = this.pri;
    const t = this.#groupT[idx];
    if (
      !pri || t === undefined ||
      (pri.pasidRequired && this.#groupPasid[idx]! >= 0 &&
        ssid !== this.#groupPasid[idx])
    ) {
      this.#stats.unexpectedResponses++;
      pri?.markUnexpectedIndex();
      return;
    }
    this.#groupT[idx] = undefined;
    this.#groups--;
    pri.outstanding -= this.#groupPages[idx]!;
    if (code === PRG_RESP_SUCCESS) {
      this.#stats.prgResponses.success++;
      this.#stats.retries++;
      t.priRetries++;
      t.step();
    } else if (code === PRG_RESP_INVALID) {
      this.#stats.prgResponses.invalid++;
      this.#engine.finish(t, "invalid");
    } else {
      this.#stats.prgResponses.failure++;
      pri.markResponseFailure();
      this.#engine.finish(t, "response-failure");
    }
    this.#wake();
  }

  #wake(): void {
    const pri = this.pri!;
    if (!pri.canIssue) {
      this.#failWaiters(
        pri.responseFailure ? "response-failure" : "pri-disabled",
      );
      return;
    }
    while (this.#waiters.length > 0) {
      const t = this.#waiters[0]!;
      if (t.finished) {
        this.#waiters.shift();
        continue;
      }
      const k = Math.min(
        this.#prgPages,
        Math.floor((t.end - 1) / PAGE) - Math.floor(t.cur / PAGE) + 1,
        pri.allocation,
      );
      if (pri.outstanding + k > pri.allocation || this.#groups >= PRG_INDEXES) {
        return;
      }
      this.#waiters.shift();
      this.#pageRequest(t);
    }
  }

  #failWaiters(error: DmaError): void {
    const w = this.#waiters.splice(0);
    for (const t of w) this.#engine.finish(t, error);
  }

  #resetPri(): void {
    for (let i = 0; i < PRG_INDEXES; i++) {
      const t = this.#groupT[i];
      if (t === undefined) continue;
      this.#groupT[i] = undefined;
      this.#engine.finish(t, "pri-disabled");
    }
    this.#groups = 0;
    this.#failWaiters("pri-disabled");
  }
}
