/**
 * The SMMU's transaction records and stall model: the pool of in-flight
 * transactions, the stall table (STAGs), fault delivery (stall, record,
 * terminate), the stall records waiting for event queue space, the ATS
 * completion and the event writer. Functions over the shared
 * {@linkcode SmmuState}. Private to lib/smmu.
 *
 * @module
 */
import { PROT_READ, PROT_WRITE } from "../sim/units.ts";
import {
  C_BAD_STE,
  C_BAD_STREAMID,
  C_BAD_SUBSTREAMID,
  CLASS_IN,
  encodeEvent,
  type EventClass,
  F_STREAM_DISABLED,
  isTranslationFault,
} from "./types.ts";
import type { AtsResult, TxnFault, TxnResult } from "./smmu.ts";
import type { SmmuState } from "./_state.ts";
import { FAULT, OK, SILENT_ABORT, xlate } from "./_ptw.ts";

/** An {@linkcode AtsResult} the SMMU fills in place. */
export type MutableAtsResult = {
  -readonly [K in keyof AtsResult]: AtsResult[K];
};

/** One in-flight transaction (pooled; also holds a stalled transaction). */
export class Pending {
  /** StreamID. */
  sid = 0;
  /** SubstreamID, -1 for none. */
  ssid = -1;
  /** Input address. */
  iova = 0;
  /** Write. */
  write = false;
  /** Instruction fetch. */
  exec = false;
  /** Privileged. */
  priv = false;
  /** An ATS Translation Request rather than a transaction. */
  ats = false;
  /** The transaction's callback. */
  cb: ((r: TxnResult) => void) | undefined = undefined;
  /** The ATS request's callback. */
  atsCb: ((r: AtsResult) => void) | undefined = undefined;
  /** The success result handed to `cb` (reused). */
  readonly okRes = { ok: true as const, pa: 0, stalledAt: -1 };
  /** The ATS answer, filled when the request completes. */
  readonly atsRes: MutableAtsResult = {
    ok: false,
    pa: -1,
    pageSize: 0,
    read: false,
    write: false,
    unsupported: false,
    eventId: 0,
  };
  /** When the transaction first stalled (ns), -1 if it never did. */
  firstStallAt = -1;
  /** OK, FAULT or SILENT_ABORT (set by the walker). */
  status = OK;
  /** Output address. */
  pa = 0;
  /** Permissions of the translation. */
  prot = 0;
  /** Size of the translation. */
  pageSize = 0;
  /** Event ID of the fault. */
  eventId = 0;
  /** The fault is a stage-2 fault. */
  s2 = false;
  /** Event CLASS. */
  cls: EventClass = CLASS_IN;
  /** Faulting IPA (page aligned). */
  ipa = 0;
  /** Stage that faulted (0 for configuration errors). */
  stage: 0 | 1 | 2 = 0;
  /** The fault stalls. */
  stall = false;
  /** The fault is recorded. */
  record = false;
  /** The master receives an abort (false: RAZ/WI). */
  abort = true;
  /** STAG while stalled. */
  stag = -1;
  /** When the fault was detected (ns). */
  detectedAt = 0;
  /** The SMMU's invalidation count when the translation was looked up. */
  gen = 0;
  /** Event: the translation is delivered. */
  fire: () => void = noop;
  /** Event: the fault is delivered. */
  fault: () => void = noop;
  /** Event: the ATS request completes. */
  atsDone: () => void = noop;
  /** Event: CMD_RESUME Retry reaches the transaction. */
  retry: () => void = noop;
  /** Event: the stalled transaction is terminated. */
  terminate: () => void = noop;
  /** Neighbours in the SMMU's list of stalled transactions. */
  stallPrev: Pending | undefined = undefined;
  /** Neighbours in the SMMU's list of stalled transactions. */
  stallNext: Pending | undefined = undefined;
}

function noop(): void {}

/**
 * The stalled transactions by STAG, in the order they stalled (a Map's
 * iteration order): an array indexed by STAG plus a list through the
 * transactions, so a stall and its resume add and remove without
 * allocating.
 */
export class StallTable {
  /** The transaction stalled with each STAG (STAGs are handed out in order, so the array stays dense). */
  readonly #byTag: (Pending | undefined)[] = [];
  #head: Pending | undefined = undefined;
  #tail: Pending | undefined = undefined;
  #size = 0;

  /** Transactions stalled now. */
  get size(): number {
    return this.#size;
  }

  /** True when `stag` is in use. */
  has(stag: number): boolean {
    return this.#byTag[stag] !== undefined;
  }

  /** The transaction stalled with `stag`, if any. */
  get(stag: number): Pending | undefined {
    return this.#byTag[stag];
  }

  /** Adds `p` (its `stag` not in use) as the newest. */
  add(p: Pending): void {
    const byTag = this.#byTag;
    while (byTag.length < p.stag) byTag.push(undefined); // STAG < 2^16
    byTag[p.stag] = p;
    p.stallPrev = this.#tail;
    p.stallNext = undefined;
    if (this.#tail) this.#tail.stallNext = p;
    else this.#head = p;
    this.#tail = p;
    this.#size++;
  }

  /** Removes the transaction stalled with `stag`, if any. */
  delete(stag: number): void {
    const p = this.#byTag[stag];
    if (p === undefined) return;
    this.#byTag[stag] = undefined;
    if (p.stallPrev) p.stallPrev.stallNext = p.stallNext;
    else this.#head = p.stallNext;
    if (p.stallNext) p.stallNext.stallPrev = p.stallPrev;
    else this.#tail = p.stallPrev;
    p.stallPrev = undefined;
    p.stallNext = undefined;
    this.#size--;
  }

  /** The stalled transactions, oldest first (a new array). */
  list(): Pending[] {
    const out: Pending[] = [];
    for (let p = this.#head; p !== undefined; p = p.stallNext) out.push(p);
    return out;
  }
}

/** A free transaction record from the pool (a new one, events bound, when empty). */
export function takePending(s: SmmuState): Pending {
  return s.pool.pop() ?? newPending(s);
}

function newPending(s: SmmuState): Pending {
  const p = new Pending();
  p.fire = () => {
    if (p.gen !== s.invalGen) {
      runTxn(s, p); // raced an invalidation: translate again
      return;
    }
    const cb = p.cb!;
    p.cb = undefined;
    p.okRes.pa = p.pa;
    p.okRes.stalledAt = p.firstStallAt;
    cb(p.okRes);
    s.pool.push(p);
  };
  p.fault = () => onFault(s, p);
  p.atsDone = () => onAtsDone(s, p);
  p.retry = () => {
    s.stats.retries++;
    runTxn(s, p);
  };
  p.terminate = () => terminate(s, p);
  return p;
}

/** Translates `p` and schedules its completion or its fault. */
export function runTxn(s: SmmuState, p: Pending): void {
  p.gen = s.invalGen;
  const cost = xlate(s, p);
  if (p.status === OK) {
    s.sim.after(cost, p.fire);
    return;
  }
  s.stats.faults++;
  p.detectedAt = s.sim.now + cost;
  // A recorded fault completes once its record is written.
  s.sim.after(p.record ? cost + s.cEvent : cost, p.fault);
}

function onFault(s: SmmuState, p: Pending): void {
  if (p.status === SILENT_ABORT) {
    finishFault(s, p, false);
    return;
  }
  if (p.stall) {
    const stag = s.stalled.size < s.features.stallMax ? takeStag(s) : -1;
    if (stag < 0) {
      // SMMU_IDR5.STALL_MAX transactions are stalled already (6.3.6: "The
      // SMMU guarantees that the total number of Stall fault records ...
      // without any having been the subject of a resume or terminate
      // command, will not exceed this number"). 3.12 lets an SMMU treat a
      // stalling configuration as terminating: "faulting transactions are
      // terminated instead of stalled. The faults are reported with
      // Stall == 0. The transaction is terminated with Abort." A terminate
      // record, so lost when the event queue is full (3.12.1, 7.2.1).
      s.stats.stallMaxTerminations++;
      p.stall = false;
      p.abort = true;
      if (!writeEvent(s, p, false)) {
        s.stats.evtqLost++;
        if (s.evtq.noteOverflow()) s.stats.evtqOverflows++;
      }
      finishFault(s, p, false);
      return;
    }
    p.stag = stag;
    if (p.firstStallAt < 0) p.firstStallAt = p.detectedAt;
    s.stalled.add(p);
    s.stats.stalls++;
    if (s.stallBacklog.length > 0 || !writeEvent(s, p, true)) {
      s.stallBacklog.push(p);
    }
    return;
  }
  if (p.record && !writeEvent(s, p, false)) {
    s.stats.evtqLost++;
    if (s.evtq.noteOverflow()) s.stats.evtqOverflows++;
  }
  finishFault(s, p, false);
}

/**
 * A free STAG, searched from the one after the last handed out, or -1 when
 * all 2^16 are in use. Bounded: at most 2^16 probes, whatever the table
 * holds (the caller keeps fewer than STALL_MAX <= 0xffff stalled, so one is
 * always free and -1 is a guard only).
 */
function takeStag(s: SmmuState): number {
  let stag = s.nextStag;
  for (let n = 0; n <= 0xffff; n++) {
    if (!s.stalled.has(stag)) {
      s.nextStag = (stag + 1) & 0xffff;
      return stag;
    }
    stag = (stag + 1) & 0xffff;
  }
  return -1;
}

function terminate(s: SmmuState, p: Pending): void {
  s.stats.stallsTerminated++;
  finishFault(s, p, true);
}

function finishFault(s: SmmuState, p: Pending, terminated: boolean): void {
  const cb = p.cb!;
  p.cb = undefined;
  const r: TxnFault = {
    ok: false,
    eventId: p.eventId,
    stage: p.stage,
    abort: p.abort,
    recorded: p.record || p.stall,
    terminated,
  };
  cb(r);
  s.pool.push(p);
}

function onAtsDone(s: SmmuState, p: Pending): void {
  if (p.gen !== s.invalGen) {
    // Raced an invalidation: translate again.
    p.gen = s.invalGen;
    const cost = xlate(s, p);
    p.detectedAt = s.sim.now + cost;
    s.sim.after(cost, p.atsDone);
    return;
  }
  const cb = p.atsCb!;
  p.atsCb = undefined;
  // The transaction's own result record, read by `cb` before the
  // transaction can be reused (see atsTranslate).
  const r = p.atsRes;
  if (p.status === OK && p.prot !== 0) {
    setAts(
      r,
      true,
      Math.floor(p.pa / p.pageSize) * p.pageSize,
      p.pageSize,
      p.prot,
      false,
      0,
    );
  } else if (p.status === SILENT_ABORT) {
    setAts(r, false, -1, 0, 0, true, 0);
  } else if (p.status === FAULT && !isTranslationFault(p.eventId)) {
    s.stats.atsNoAccess++;
    if (!writeEvent(s, p, false)) {
      s.stats.evtqLost++;
      if (s.evtq.noteOverflow()) s.stats.evtqOverflows++;
    }
    setAts(r, false, -1, 0, 0, true, p.eventId);
  } else {
    s.stats.atsNoAccess++;
    setAts(r, false, -1, 0, 0, false, p.status === FAULT ? p.eventId : 0);
  }
  s.pool.push(p);
  cb(r);
}

/** Writes `p`'s event record; false (nothing written) when the event queue is full. */
function writeEvent(s: SmmuState, p: Pending, stall: boolean): boolean {
  const q = s.evtq;
  if (q.isFull) return false;
  const e = s.evScratch;
  e.ID = p.eventId;
  e.SSV = p.ssid >= 0;
  e.SubstreamID = p.ssid >= 0 ? p.ssid : 0;
  e.StreamID = p.sid;
  e.STAG = stall ? p.stag : 0;
  e.Stall = stall;
  e.PnU = p.priv;
  e.InD = p.exec;
  e.RnW = !p.write;
  e.S2 = p.s2;
  e.CLASS = p.cls;
  e.InputAddr = p.iova;
  e.IPA = p.s2 ? p.ipa : 0;
  const id = p.eventId;
  if (
    id === C_BAD_STREAMID || id === C_BAD_STE || id === F_STREAM_DISABLED ||
    id === C_BAD_SUBSTREAMID
  ) {
    // These records carry the stream's identity only; every other field is
    // RES0 (IHI0070 7.3.3, 7.3.5, 7.3.7, 7.3.9): F_STREAM_DISABLED has no
    // SubstreamID, C_BAD_SUBSTREAMID no SSV (its SubstreamID is always
    // valid).
    e.PnU = false;
    e.InD = false;
    e.RnW = false;
    e.S2 = false;
    e.CLASS = 0;
    e.InputAddr = 0;
    e.IPA = 0;
    if (id === F_STREAM_DISABLED) {
      e.SSV = false;
      e.SubstreamID = 0;
    } else if (id === C_BAD_SUBSTREAMID) e.SSV = false;
  }
  encodeEvent(e, q.words, q.writeOffset);
  q.commit(p.detectedAt);
  s.stats.eventsWritten++;
  s.onEvtqIrq?.();
  return true;
}

/** Writes the stall records waiting for event queue space, as space allows. */
export function drainStallBacklog(s: SmmuState): void {
  const b = s.stallBacklog;
  // Bounded: each pass writes one record (the queue is not full) and drops
  // it from the backlog, which holds fewer than STALL_MAX.
  while (b.length > 0 && !s.evtq.isFull) {
    writeEvent(s, b.shift()!, true);
  }
}

/** Fills an ATS answer (`prot` gives R and W). */
function setAts(
  r: MutableAtsResult,
  ok: boolean,
  pa: number,
  pageSize: number,
  prot: number,
  unsupported: boolean,
  eventId: number,
): void {
  r.ok = ok;
  r.pa = pa;
  r.pageSize = pageSize;
  r.read = (prot & PROT_READ) !== 0;
  r.write = (prot & PROT_WRITE) !== 0;
  r.unsupported = unsupported;
  r.eventId = eventId;
}
