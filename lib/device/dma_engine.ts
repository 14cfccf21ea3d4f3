/**
 * The DMA engine every device model shares: it moves a transfer page by
 * page at the device's bandwidth, each access translated first, and the
 * {@linkcode DmaMaster} base the devices build on, with the request, result
 * and counter types.
 *
 * {@linkcode DmaEngine} and {@linkcode Transfer} are the plumbing the device
 * classes (lib/device/platform.ts, lib/pci/pci_device.ts) configure; they are
 * not re-exported from lib/device/mod.ts.
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import { hex, IopfLabError } from "../sim/errors.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Histogram } from "../sim/stats.ts";
import { parseBandwidth } from "../sim/units.ts";
import type {
  AtsRequest,
  AtsResult,
  Smmu,
  Txn,
  TxnResult,
} from "../smmu/smmu.ts";

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
  /** Transfers that waited for a free DMA engine slot. */
  slotWaits: number;
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
  /**
   * Transfers the engine works on at once (its slots, 1..65536): each
   * does its own setup, translations (ATS requests included) and page
   * requests while the others' data moves on the shared link; further
   * `dma()` calls wait in order for a free slot. Default
   * {@linkcode DEFAULT_DMA_SLOTS}.
   */
  slots?: number;
}

/**
 * Default DMA engine slots: 16, as many as gem5's SMMUv3 device interface
 * has translation slots (`SMMUv3DeviceInterface.xlate_slots` 16), so the
 * engine can keep every translation slot of the SMMU's front end busy
 * (estimate: device DMA engines do not publish their depth).
 */
export const DEFAULT_DMA_SLOTS = 16;

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
    slotWaits: 0,
  };
}

/**
 * One transfer in progress: the explicit state record the engine and the
 * device's translation path (ATC, ATS, PRI) share. Transfers are pooled per
 * DMA engine: a finished one is reused by a later `dma()` call, so its
 * callbacks are bound once, when it is first created, and its request
 * fields are set by `reset`.
 */
export class Transfer {
  /** The next address to translate and move. */
  cur = 0;
  /** First address of the transfer. */
  start = 0;
  /** One past the last address. */
  end = 0;
  /** Writes memory (true) or reads it. */
  write = false;
  /** PASID, or -1 for none. */
  pasid = -1;
  /** Simulated start time (ns). */
  startedAt = 0;
  /** The caller's completion callback. */
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
  /** Successful page requests for the current page so far. */
  priRetries = 0;
  /** The device's ATC generation when this page's ATS request was sent. */
  atcGen = 0;
  /** When the current page first faulted (ns), or -1. */
  faultAt = -1;
  /** True once `done` has been called (the record is back in the pool). */
  finished = false;
  /** Moves on to the next page (bound once by the engine). */
  step: () => void = noop;
  /** A chunk in flight completed (bound once by the engine). */
  onData: () => void = noop;
  /** An untranslated transaction's translation arrived (bound once by the engine). */
  onXlate: (r: TxnResult) => void = noop;
  /** Sends the ATS request for `cur` (bound once by the device, if it has ATS). */
  sendAts: () => void = noop;
  /** An ATS Translation Completion arrived (bound once by the device, if it has ATS). */
  onAts: (r: AtsResult) => void = noop;

  /** Creates an idle transfer record for StreamID `sid`. */
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
 * The DMA engine every device shares: moves a transfer page by page (a 4 KiB
 * page, or the part of it inside the transfer), each access translated and
 * then timed on the device's link (`bytes / bandwidth`, shared by all
 * transfers in progress), calling `onAccess` when every access is issued.
 * It works on up to `slots` transfers at once, so one transfer's setup
 * (`pci.dmaSetup`, the descriptor fetch), translations, ATS requests and
 * page requests overlap the others' data on the link.
 *
 * A device configures it once, at construction: `translatePage` (default:
 * untranslated transactions to {@linkcode Smmu.translate}) and `bindExtra`
 * (the device's own per-transfer callbacks).
 */
export class DmaEngine {
  /** Counters (the device's own ones included). */
  readonly stats: DmaStats = newStats();
  /** Time from a page's fault to its access completing (ns). */
  readonly faultLatency: Histogram = new Histogram();
  /** Called for every page access, when it is issued with its translation. */
  onAccess: ((iova: number, pa: number, write: boolean) => void) | undefined =
    undefined;
  /** The simulator. */
  readonly sim: Simulator;
  /** The SMMU the device sits behind. */
  readonly smmu: Smmu;
  /** The cost profile. */
  readonly costs: Costs;
  /** The device's name. */
  readonly name: string;
  /** StreamID. */
  readonly sid: number;
  /** Bytes per second. */
  readonly bandwidth: number;
  /** Transfers in progress at most (the engine's slots). */
  readonly slots: number;
  readonly #nsPerByte: number;
  readonly #cSetup: number;
  #linkFree = 0;
  /** Finished transfers, for reuse. */
  readonly #free: Transfer[] = [];
  /** Transfers in progress (holding a slot). */
  #active = 0;
  /** Transfers waiting for a slot, oldest at `#waitHead`. */
  readonly #waiting: Transfer[] = [];
  #waitHead = 0;
  /** Translates the page at `t.cur`, then calls `access` or `finish`. */
  translatePage: (t: Transfer) => void;
  /** Binds extra per-transfer callbacks. */
  bindExtra: (t: Transfer) => void = noop;

  /** Creates the engine of the device `options` describes. */
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
    const slots = options.slots ?? DEFAULT_DMA_SLOTS;
    if (!Number.isInteger(slots) || slots < 1 || slots > 65536) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create the DMA engine of ${options.name}: slots must be a whole number in 1..65536, got ${slots}`,
        `${options.name}.slots`,
      );
    }
    this.slots = slots;
    this.#nsPerByte = 1e9 / this.bandwidth;
    this.#cSetup = this.costs["pci.dmaSetup"];
    this.translatePage = (t) => this.translateUntranslated(t);
  }

  /**
   * Validates `req` and starts it with a pooled {@linkcode Transfer}:
   * after `pci.dmaSetup` when a slot is free, else when one frees (in the
   * order of the calls).
   *
   * @throws {IopfLabError} EINVAL for a bad address, size or PASID
   */
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
    if (this.#active < this.slots) {
      this.#active++;
      this.sim.after(this.#cSetup, t.step);
    } else {
      this.#waiting.push(t);
    }
  }

  /** Transfers waiting for a free slot now. */
  get waitingTransfers(): number {
    return this.#waiting.length - this.#waitHead;
  }

  /** Gives the slot `t` held to the oldest waiting transfer, if any. */
  #nextWaiting(): void {
    const w = this.#waiting;
    if (this.#waitHead === w.length) {
      this.#active--;
      return;
    }
    const t = w[this.#waitHead++]!;
    if (this.#waitHead >= 1024 && this.#waitHead * 2 >= w.length) {
      w.copyWithin(0, this.#waitHead);
      w.length -= this.#waitHead;
      this.#waitHead = 0;
    }
    this.stats.slotWaits++;
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

  /**
   * Sends the page at `t.cur` to the SMMU as an untranslated transaction
   * (the default `translatePage`), with the IOTLB hit fast path.
   */
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
    this.#nextWaiting();
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
