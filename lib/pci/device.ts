/**
 * DMA masters behind the SMMU: a PCIe function with ATS, an ATC and PRI, and
 * a platform device that relies on the SMMU's stall model.
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Histogram } from "../sim/stats.ts";
import {
  alignDown,
  parseBandwidth,
  PROT_READ,
  PROT_WRITE,
} from "../sim/units.ts";
import type { IommuDevice } from "../iommu/types.ts";
import type {
  AtsRequest,
  AtsResult,
  Smmu,
  Txn,
  TxnResult,
} from "../smmu/smmu.ts";
import {
  type MutablePriEntry,
  newPriEntry,
  PRG_RESP_INVALID,
  PRG_RESP_SUCCESS,
  type PriEntry,
  type SmmuEndpoint,
} from "../smmu/types.ts";
import { Atc } from "./atc.ts";
import { PRI_CTRL_ENABLE, PriCapability } from "./pri.ts";

/** One DMA transfer a workload asks a device to perform. */
export interface DmaRequest {
  /** First address (IOVA; IPA for a stage-2-only domain). */
  iova: number;
  /** Bytes (> 0). */
  size: number;
  /** Write to memory (true) or read from it. */
  write: boolean;
  /** PASID (SubstreamID) of the stream; absent for none. */
  pasid?: number;
}

/** Why a transfer failed. */
export type DmaError =
  /** The SMMU terminated a transaction (abort, or a stall answered Abort). */
  | "fault"
  /** A PRG Response said Invalid Request. */
  | "invalid"
  /** A PRG Response said Response Failure (PRI is now stopped at the function). */
  | "response-failure"
  /** PRI is disabled, stopped by Response Failure, reset, or has no allocation. */
  | "pri-disabled"
  /** The page still had no access after `maxPriRetries` successful page requests. */
  | "retries-exhausted"
  /** The SMMU answered an ATS request with Unsupported Request. */
  | "unsupported";

/** The outcome of a transfer. */
export interface DmaResult {
  /** All bytes were transferred. */
  readonly ok: boolean;
  /** Bytes transferred (all of them when ok). */
  readonly bytes: number;
  /** Why it failed (undefined when ok). */
  readonly error: DmaError | undefined;
  /** The address that failed, or -1. */
  readonly failedIova: number;
  /** Simulated start time (ns). */
  readonly startedAt: number;
  /** Simulated completion time (ns). */
  readonly finishedAt: number;
}

/** Counters of a device. */
export interface DmaStats {
  /** Transfers started. */
  transfers: number;
  /** Bytes transferred. */
  bytes: number;
  /** Page accesses completed. */
  pageAccesses: number;
  /** Transfers that ended in an error. */
  dmaErrors: number;
  /** Translation faults the device saw (terminated transactions, ATS "no access"). */
  faults: number;
  /** Translations retried after a successful page request. */
  retries: number;
  /** ATC hits. */
  atcHits: number;
  /** ATC misses. */
  atcMisses: number;
  /** ATS translation requests sent. */
  atsRequests: number;
  /** ATC invalidation requests received. */
  atcInvalidations: number;
  /** Page requests sent (Stop Markers not included). */
  pageRequests: number;
  /** Page Request Groups sent. */
  pageRequestGroups: number;
  /** PRG responses received, by code. */
  prgResponses: { success: number; invalid: number; failure: number };
  /** Responses for unknown PRG indexes (UPRGI). */
  unexpectedResponses: number;
  /** Times a transfer had to wait for PRI credits or a PRG index. */
  creditWaits: number;
  /** Most page requests outstanding at once. */
  maxOutstanding: number;
}

/** Options common to the devices. */
export interface DmaDeviceOptions {
  /** A unique name ("0000:01:00.0", "zip0"). */
  name: string;
  /** StreamID (Requester ID for PCIe). */
  sid: number;
  /** The SMMU the device sits behind. */
  smmu: Smmu;
  /** The cost profile (pci.*). */
  costs: Costs;
  /** DMA bandwidth: bytes/s or a string ("8GB/s"). Default "8GB/s". */
  bandwidth?: number | string;
}

const PAGE = 4096;

function newStats(): DmaStats {
  return {
    transfers: 0,
    bytes: 0,
    pageAccesses: 0,
    dmaErrors: 0,
    faults: 0,
    retries: 0,
    atcHits: 0,
    atcMisses: 0,
    atsRequests: 0,
    atcInvalidations: 0,
    pageRequests: 0,
    pageRequestGroups: 0,
    prgResponses: { success: 0, invalid: 0, failure: 0 },
    unexpectedResponses: 0,
    creditWaits: 0,
    maxOutstanding: 0,
  };
}

/**
 * One transfer in progress. Transfers are pooled per DMA engine: a finished
 * one is reused by a later `dma()` call, so its callbacks are bound once,
 * when it is first created, and its request fields are set by `reset`.
 */
class Transfer {
  cur = 0;
  start = 0;
  end = 0;
  write = false;
  pasid = -1;
  startedAt = 0;
  done: (r: DmaResult) => void = noop;
  /** Untranslated transaction, reused for every page (and transfer). */
  readonly txn: Txn;
  /** ATS request, reused for every page (and transfer). */
  readonly atsReq: AtsRequest;
  /** Chunks issued on the link and not yet complete (at most two: double buffering). */
  inflight = 0;
  /** Sizes of the chunks in flight, oldest first. */
  chunk0 = 0;
  chunk1 = 0;
  /** When the chunks in flight first faulted (ns), or -1. */
  fault0 = -1;
  fault1 = -1;
  /** The error that ends the transfer once its chunks in flight complete. */
  error: DmaError | undefined = undefined;
  /** True once an error stopped further translations. */
  stopping = false;
  priRetries = 0;
  atcGen = 0;
  /** When the current page first faulted (ns), or -1. */
  faultAt = -1;
  finished = false;
  step: () => void = noop;
  onData: () => void = noop;
  onXlate: (r: TxnResult) => void = noop;
  sendAts: () => void = noop;
  onAts: (r: AtsResult) => void = noop;

  constructor(sid: number) {
    this.txn = { sid, ssid: -1, iova: 0, write: false };
    this.atsReq = { sid, ssid: -1, iova: 0, write: false };
  }

  /** Starts the transfer of `req` (validated) at `now`. */
  reset(req: DmaRequest, now: number, done: (r: DmaResult) => void): void {
    this.cur = req.iova;
    this.start = req.iova;
    this.end = req.iova + req.size;
    this.write = req.write;
    this.pasid = req.pasid ?? -1;
    this.startedAt = now;
    this.done = done;
    this.txn.ssid = this.pasid;
    this.txn.iova = 0;
    this.txn.write = req.write;
    this.atsReq.ssid = this.pasid;
    this.atsReq.iova = 0;
    this.atsReq.write = req.write;
    this.inflight = 0;
    this.chunk0 = 0;
    this.chunk1 = 0;
    this.fault0 = -1;
    this.fault1 = -1;
    this.error = undefined;
    this.stopping = false;
    this.priRetries = 0;
    this.atcGen = 0;
    this.faultAt = -1;
    this.finished = false;
  }
}

function noop(): void {}

/**
 * The DMA engine both devices share: moves a transfer page by page (a 4 KiB
 * page, or the part of it inside the transfer), each access translated and
 * then timed on the device's link (`bytes / bandwidth`, shared by all
 * transfers in progress), calling `onAccess` after every completed access.
 */
class DmaEngine {
  readonly stats: DmaStats = newStats();
  readonly faultLatency: Histogram = new Histogram();
  onAccess: ((iova: number, pa: number, write: boolean) => void) | undefined =
    undefined;
  readonly sim: Simulator;
  readonly smmu: Smmu;
  readonly costs: Costs;
  readonly name: string;
  readonly sid: number;
  readonly bandwidth: number;
  readonly #nsPerByte: number;
  readonly #cSetup: number;
  #linkFree = 0;
  /** Finished transfers, for reuse. */
  readonly #free: Transfer[] = [];
  /** Translates the page at `t.cur`, then calls `access` or `finish`. */
  translatePage: (t: Transfer) => void;
  /** Binds extra per-transfer callbacks. */
  bindExtra: (t: Transfer) => void = noop;

  constructor(sim: Simulator, options: DmaDeviceOptions) {
    this.sim = sim;
    this.smmu = options.smmu;
    this.costs = options.costs;
    this.name = options.name;
    this.sid = options.sid;
    this.bandwidth = parseBandwidth(
      options.bandwidth ?? "8GB/s",
      `${options.name}.bandwidth`,
    );
    this.#nsPerByte = 1e9 / this.bandwidth;
    this.#cSetup = this.costs["pci.dmaSetup"];
    this.translatePage = (t) => this.translateUntranslated(t);
  }

  dma(req: DmaRequest, done: (result: DmaResult) => void): void {
    const { iova, size } = req;
    if (!Number.isInteger(iova) || iova < 0 || iova >= 2 ** 52) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot start DMA on ${this.name}: bad IOVA ${String(iova)}`,
      );
    }
    if (!Number.isInteger(size) || size <= 0 || iova + size > 2 ** 52) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot start DMA on ${this.name} at ${hex(iova)}: bad size ${
          String(size)
        }`,
      );
    }
    const pasid = req.pasid;
    if (
      pasid !== undefined &&
      (!Number.isInteger(pasid) || pasid < 0 || pasid >= 2 ** 20)
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot start DMA on ${this.name}: PASID ${
          String(pasid)
        } is not in 0..2^20-1`,
      );
    }
    let t = this.#free.pop();
    if (t === undefined) {
      t = new Transfer(this.sid);
      this.#bind(t);
      this.bindExtra(t);
    }
    t.reset(req, this.sim.now, done);
    this.stats.transfers++;
    this.sim.after(this.#cSetup, t.step);
  }

  #bind(t: Transfer): void {
    t.step = () => {
      if (t.finished || t.stopping) return;
      if (t.cur >= t.end) {
        this.finish(t, undefined);
        return;
      }
      this.translatePage(t);
    };
    t.onData = () => {
      const chunk = t.chunk0, faultAt = t.fault0;
      t.chunk0 = t.chunk1;
      t.fault0 = t.fault1;
      t.inflight--;
      this.stats.bytes += chunk;
      this.stats.pageAccesses++;
      if (faultAt >= 0) this.faultLatency.record(this.sim.now - faultAt);
      if (t.inflight === 0 && (t.stopping || t.cur >= t.end)) {
        this.#complete(t, t.error);
      }
    };
    t.onXlate = (r: TxnResult) => {
      if (!r.ok) {
        this.stats.faults++;
        this.finish(t, "fault");
        return;
      }
      if (r.stalledAt >= 0 && t.faultAt < 0) t.faultAt = r.stalledAt;
      this.access(t, r.pa, 0);
    };
  }

  translateUntranslated(t: Transfer): void {
    t.txn.iova = t.cur;
    // IOTLB hit: same timing as translate(), one simulator event fewer.
    const pa = this.smmu.translateCached(t.txn);
    if (pa >= 0) {
      this.access(t, pa, this.smmu.iotlbLookupNs);
      return;
    }
    this.smmu.translate(t.txn, t.onXlate);
  }

  /**
   * Issues the current chunk to/from `pa` after `delay` ns on the shared
   * link, and starts translating the next page when this chunk starts
   * moving: translation of page k+1 overlaps the data of page k (double
   * buffering, as DMA engines and ATS devices prefetch translations). The
   * access counts as made with this translation now, when it is issued
   * (`onAccess`); the hardware's invalidation completion (CMD_SYNC, ATC
   * invalidation completion) waits for transactions already translated, so
   * this is the moment the translation must be valid.
   */
  access(t: Transfer, pa: number, delay: number): void {
    const cur = t.cur;
    const pageEnd = (Math.floor(cur / PAGE) + 1) * PAGE;
    const chunk = Math.min(pageEnd, t.end) - cur;
    const start = Math.max(this.sim.now + delay, this.#linkFree);
    this.#linkFree = start + chunk * this.#nsPerByte;
    this.onAccess?.(cur, pa, t.write);
    t.cur = cur + chunk;
    t.priRetries = 0;
    if (t.inflight === 0) {
      t.chunk0 = chunk;
      t.fault0 = t.faultAt;
    } else {
      t.chunk1 = chunk;
      t.fault1 = t.faultAt;
    }
    t.faultAt = -1;
    t.inflight++;
    this.sim.at(this.#linkFree, t.onData);
    if (t.cur < t.end) this.sim.at(start, t.step);
  }

  /**
   * Ends the transfer (error undefined = success): at once when nothing is
   * in flight, otherwise when its chunks in flight complete; no further page
   * is translated.
   */
  finish(t: Transfer, error: DmaError | undefined): void {
    if (t.finished || t.stopping) return;
    if (t.inflight > 0) {
      t.stopping = true;
      t.error = error;
      return;
    }
    this.#complete(t, error);
  }

  /**
   * Finishes `t`: nothing of it is pending any more (no chunk in flight, no
   * translation, page request or step scheduled), so it goes back to the
   * pool before its `done` runs.
   */
  #complete(t: Transfer, error: DmaError | undefined): void {
    if (t.finished) return;
    t.finished = true;
    if (error) this.stats.dmaErrors++;
    const result: DmaResult = {
      ok: error === undefined,
      bytes: t.cur - t.start,
      error,
      failedIova: error ? t.cur : -1,
      startedAt: t.startedAt,
      finishedAt: this.sim.now,
    };
    const done = t.done;
    t.done = noop;
    this.#free.push(t);
    done(result);
  }
}

/**
 * What both devices share: their DMA engine and the accessors workloads and
 * the experiment harness use (name, StreamID, bandwidth, counters, fault
 * latency, the page access hook, `dma()`).
 */
export abstract class DmaMaster {
  readonly #engine: DmaEngine;

  /** Wraps `engine`; a subclass keeps its own reference to configure it. */
  protected constructor(engine: DmaEngine) {
    this.#engine = engine;
  }

  /** The device's name (its BDF for PCIe). */
  get name(): string {
    return this.#engine.name;
  }

  /** StreamID (the Requester ID for PCIe). */
  get sid(): number {
    return this.#engine.sid;
  }

  /** Bandwidth in bytes per second. */
  get bandwidth(): number {
    return this.#engine.bandwidth;
  }

  /** Counters. */
  get stats(): DmaStats {
    return this.#engine.stats;
  }

  /** Time from a page's fault (a stall, or an ATS "no access") to its access completing (ns). */
  get faultLatency(): Histogram {
    return this.#engine.faultLatency;
  }

  /** Called for every page access, when it is issued with its translation. */
  get onAccess():
    | ((iova: number, pa: number, write: boolean) => void)
    | undefined {
    return this.#engine.onAccess;
  }

  /** Sets the page access hook. */
  set onAccess(
    fn: ((iova: number, pa: number, write: boolean) => void) | undefined,
  ) {
    this.#engine.onAccess = fn;
  }

  /**
   * Starts a transfer; `done` runs on the simulator with the bytes done or
   * the error that stopped it.
   *
   * @throws {IopfLabError} EINVAL for a bad address, size or PASID
   */
  dma(req: DmaRequest, done: (result: DmaResult) => void): void {
    this.#engine.dma(req, done);
  }
}

/**
 * A platform (non-PCI) DMA master, such as an accelerator on an SoC: its
 * transactions go straight to {@linkcode Smmu.translate}, so a translation
 * fault on a stall-enabled stream holds the access until software resumes
 * it. A terminated transaction fails the transfer with "fault".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Simulator } from "../sim/simulator.ts";
 * import { loadCostProfile } from "../sim/costs.ts";
 * import { TableMemory } from "../smmu/memory.ts";
 * import { Smmu } from "../smmu/smmu.ts";
 * import { PlatformDevice } from "./device.ts";
 *
 * const sim = new Simulator();
 * const costs = loadCostProfile();
 * const smmu = new Smmu(sim, { costs, memory: new TableMemory() });
 * smmu.writeSte(5, { V: true, Config: 4 }); // bypass
 * const dev = new PlatformDevice(sim, { name: "zip0", sid: 5, smmu, costs });
 * let bytes = 0;
 * dev.dma({ iova: 0x10000, size: 8192, write: true }, (r) => (bytes = r.bytes));
 * sim.run();
 * assert(bytes === 8192 && dev.stats.pageAccesses === 2);
 * ```
 */
export class PlatformDevice extends DmaMaster {
  /** How the IOMMU core sees it: a stall-capable device without ATS/PRI. */
  readonly iommuDevice: IommuDevice;

  /** Creates the device. */
  constructor(sim: Simulator, options: DmaDeviceOptions) {
    super(new DmaEngine(sim, options));
    this.iommuDevice = Object.freeze({
      name: options.name,
      sid: options.sid,
      ats: false,
      pri: false,
      stall: true,
    });
  }
}

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
   * transfer. Default 1.
   */
  prgPages?: number;
  /** Successful page requests for one page before the transfer fails. Default 16. */
  maxPriRetries?: number;
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
 * translation, Invalid Request fails the transfer, Response Failure sets
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
 * import { TableMemory } from "../smmu/memory.ts";
 * import { Smmu } from "../smmu/smmu.ts";
 * import { PciDevice } from "./device.ts";
 *
 * const sim = new Simulator();
 * const costs = loadCostProfile();
 * const smmu = new Smmu(sim, { costs, memory: new TableMemory() });
 * smmu.writeSte(0x100, { V: true, Config: 4, EATS: 1 }); // bypass, ATS allowed
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
  readonly #sim: Simulator;
  readonly #smmu: Smmu;
  readonly #cAtcLookup: number;
  readonly #cAts: number;
  readonly #cPrq: number;
  readonly #cPrgResp: number;
  readonly #cAtcInv: number;
  readonly #prgPages: number;
  readonly #maxRetries: number;
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
    const maxRetries = options.maxPriRetries ?? 16;
    if (!Number.isInteger(prgPages) || prgPages < 1) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create PCI device ${options.name}: prgPages must be a whole number >= 1, got ${prgPages}`,
      );
    }
    if (!Number.isInteger(maxRetries) || maxRetries < 1) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create PCI device ${options.name}: maxPriRetries must be a whole number >= 1, got ${maxRetries}`,
      );
    }
    const engine = new DmaEngine(sim, options);
    super(engine);
    this.#engine = engine;
    this.#sim = sim;
    this.#smmu = options.smmu;
    const c = options.costs;
    this.#cAtcLookup = c["pci.atcLookup"];
    this.#cAts = c["pci.atsRoundTrip"];
    this.#cPrq = c["pci.pageRequestLatency"];
    this.#cPrgResp = c["pci.prgResponseLatency"];
    this.#cAtcInv = c["pci.atcInvalidate"];
    this.#prgPages = prgPages;
    this.#maxRetries = maxRetries;
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

  /** An ATC Invalidation Request: drop the entries, complete after `pci.atcInvalidate`. */
  atcInvalidate(
    ssid: number,
    addr: number,
    log2Pages: number,
    done: () => void,
  ): void {
    this.#sim.after(this.atcInvalidateBlocking(ssid, addr, log2Pages), done);
  }

  /**
   * An ATC Invalidation Request whose completion the SMMU waits for
   * synchronously: drops the entries now (and keeps ATS answers already in
   * flight out of the ATC) and returns `pci.atcInvalidate`, the ns until
   * the Invalidation Completion.
   */
  atcInvalidateBlocking(ssid: number, addr: number, log2Pages: number): number {
    this.stats.atcInvalidations++;
    this.#atcGen++;
    this.atc?.invalidate(ssid, addr, log2Pages);
    return this.#cAtcInv;
  }

  // -------------------------------------------------------------------------
  // ATS / PRI path

  #bind(t: Transfer): void {
    t.sendAts = () => {
      t.atsReq.iova = t.cur;
      this.stats.atsRequests++;
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
        this.stats.faults++;
        this.#engine.finish(t, "unsupported");
        return;
      }
      this.stats.faults++;
      if (t.faultAt < 0) t.faultAt = this.#sim.now;
      this.#pageRequest(t);
    };
  }

  #atsPage(t: Transfer): void {
    const pa = this.atc!.lookup(t.pasid, t.cur);
    if (pa >= 0) {
      const prot = this.atc!.lastProt;
      if ((prot & (t.write ? PROT_WRITE : PROT_READ)) !== 0) {
        this.stats.atcHits++;
        this.#engine.access(t, pa, this.#cAtcLookup);
        return;
      }
    }
    this.stats.atcMisses++;
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
    if (t.priRetries >= this.#maxRetries) {
      this.#engine.finish(t, "retries-exhausted");
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
      this.stats.creditWaits++;
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
    if (pri.outstanding > this.stats.maxOutstanding) {
      this.stats.maxOutstanding = pri.outstanding;
    }
    this.stats.pageRequests += k;
    this.stats.pageRequestGroups++;
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
      this.stats.unexpectedResponses++;
      pri?.markUnexpectedIndex();
      return;
    }
    this.#groupT[idx] = undefined;
    this.#groups--;
    pri.outstanding -= this.#groupPages[idx]!;
    if (code === PRG_RESP_SUCCESS) {
      this.stats.prgResponses.success++;
      this.stats.retries++;
      t.priRetries++;
      t.step();
    } else if (code === PRG_RESP_INVALID) {
      this.stats.prgResponses.invalid++;
      this.#engine.finish(t, "invalid");
    } else {
      this.stats.prgResponses.failure++;
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
