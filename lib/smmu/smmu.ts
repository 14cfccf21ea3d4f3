/**
 * The Arm SMMUv3 hardware model: stream table, CD tables, configuration
 * cache, IOTLB, stage-1/stage-2/nested table walks, the stall model, the
 * event, PRI and command queues, ATS translation requests and the PRI path.
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import type { Simulator } from "../sim/simulator.ts";
import { PROT_READ, PROT_WRITE } from "../sim/units.ts";
import { type IoPgtable, newWalkResult } from "../pgtable/mod.ts";
import { type CdTable, HOST_PA_SPACE, type TableMemory } from "./memory.ts";
import { SmmuQueue } from "./queue.ts";
import {
  SetAssocTlb,
  TLB_KIND_NESTED,
  TLB_KIND_S1,
  TLB_KIND_S2,
} from "./tlb.ts";
import {
  C_BAD_CD,
  C_BAD_STE,
  C_BAD_STREAMID,
  C_BAD_SUBSTREAMID,
  type Cd,
  CLASS_CD,
  CLASS_IN,
  CLASS_TT,
  CMD_ATC_INV,
  CMD_CFGI_CD,
  CMD_CFGI_CD_ALL,
  CMD_CFGI_STE,
  CMD_CFGI_STE_RANGE,
  CMD_PREFETCH_CONFIG,
  CMD_PRI_RESP,
  CMD_RESUME,
  CMD_STALL_TERM,
  CMD_SYNC,
  CMD_TLBI_EL2_ALL,
  CMD_TLBI_NH_ALL,
  CMD_TLBI_NH_ASID,
  CMD_TLBI_NH_VA,
  CMD_TLBI_NH_VAA,
  CMD_TLBI_NSNH_ALL,
  CMD_TLBI_S12_VMALL,
  CMD_TLBI_S2_IPA,
  type Command,
  COMMAND_WORDS,
  type CommandFields,
  decodeCommandInto,
  decodeEvent,
  decodeEventInto,
  decodePriEntry,
  decodePriEntryInto,
  encodeCommand,
  encodeEvent,
  encodePriEntry,
  EVENT_WORDS,
  type EventClass,
  type EventRecord,
  F_ADDR_SIZE,
  F_BAD_ATS_TREQ,
  F_CD_FETCH,
  F_PERMISSION,
  F_TRANSLATION,
  F_WALK_EABT,
  isStopMarker,
  isTranslationFault,
  type MutableEventRecord,
  type MutablePriEntry,
  newCommandFields,
  PRG_RESP_FAILURE,
  PRG_RESP_INVALID,
  PRG_RESP_SUCCESS,
  PRI_RESP_DENY,
  PRI_RESP_SUCC,
  PRI_WORDS,
  type PriEntry,
  RESUME_RETRY,
  type SmmuEndpoint,
  type Ste,
  STE_CONFIG_ABORT,
  STE_CONFIG_BYPASS,
  STE_CONFIG_NESTED,
  STE_CONFIG_S1,
  STE_CONFIG_S2,
  type TlbiRange,
} from "./types.ts";

/** SMMU_IDR0.STALL_MODEL: whether stalling faults are allowed or forced. */
export type StallModel = "supported" | "unsupported" | "forced";

/** Options (features and sizes) of an {@linkcode Smmu}. */
export interface SmmuOptions {
  /** The cost profile (smmu.* parameters). */
  costs: Costs;
  /** Where table and CD-table addresses resolve. */
  memory: TableMemory;
  /** Stall support (SMMU_IDR0.STALL_MODEL). Default "supported". */
  stallModel?: StallModel;
  /** ATS supported (SMMU_IDR0.ATS). Default true. */
  ats?: boolean;
  /** PRI supported (SMMU_IDR0.PRI). Default true. */
  pri?: boolean;
  /** Stage 1 implemented. Default true. */
  s1?: boolean;
  /** Stage 2 implemented. Default true. */
  s2?: boolean;
  /** Range invalidation (SMMU_IDR3.RIL, SMMUv3.2): TLBI TG/NUM/SCALE honoured. Default true. */
  rangeInvalidation?: boolean;
  /** IOTLB entries. Default 2048. */
  iotlbEntries?: number;
  /** IOTLB ways per set. Default 4. */
  iotlbWays?: number;
  /** log2 of the event queue entries (0..19). Default 8. */
  evtqLog2?: number;
  /** log2 of the PRI queue entries (0..19). Default 8. */
  priqLog2?: number;
  /** log2 of the command queue entries (0..19). Default 8. */
  cmdqLog2?: number;
  /** StreamID bits (linear stream table of 2^sidBits STEs, at most 20). Default 16. */
  sidBits?: number;
  /** SubstreamID bits (at most 20). Default 20. */
  ssidBits?: number;
  /** Output address size in bits (OAS). Default 48. */
  oasBits?: number;
}

/** A transaction a master presents to the SMMU. */
export interface Txn {
  /** StreamID. */
  sid: number;
  /** SubstreamID (PASID); -1 or absent for none. */
  ssid?: number;
  /** Input address (IOVA, or IPA for stage-2-only streams). */
  iova: number;
  /** Write (true) or read. */
  write: boolean;
  /** Instruction fetch. Default false. */
  exec?: boolean;
  /** Privileged. Default false. */
  priv?: boolean;
}

/** A successful translation. */
export interface TxnOk {
  /** Translated. */
  readonly ok: true;
  /** Output (physical) address. */
  readonly pa: number;
  /** When the transaction first stalled (ns), or -1 if it never did. */
  readonly stalledAt: number;
}

/** A transaction that did not get through. */
export interface TxnFault {
  /** Not translated. */
  readonly ok: false;
  /** The event ID of the fault (0 for an STE with Config = abort). */
  readonly eventId: number;
  /** Stage that faulted: 1, 2, or 0 for configuration errors. */
  readonly stage: 0 | 1 | 2;
  /** True when the master receives an abort; false for RAZ/WI (CD.A = 0). */
  readonly abort: boolean;
  /** True when an event record was written (or queued) for it. */
  readonly recorded: boolean;
  /** True when the transaction had stalled and was then terminated. */
  readonly terminated: boolean;
}

/**
 * The outcome of a transaction. The object passed to the callback is reused
 * by the SMMU after the callback returns: copy the fields you need.
 */
export type TxnResult = TxnOk | TxnFault;

/** An ATS Translation Request. */
export interface AtsRequest {
  /** StreamID (Requester ID). */
  sid: number;
  /** PASID; -1 or absent for none. */
  ssid?: number;
  /** Untranslated address. */
  iova: number;
  /** Write access intended (the answer still gives the real permissions). */
  write?: boolean;
}

/** An ATS Translation Completion. */
export interface AtsResult {
  /** A translation with at least one permission was returned. */
  readonly ok: boolean;
  /** Translated page address of `iova`'s page (aligned to `pageSize`); -1 when not ok. */
  readonly pa: number;
  /** Size of the translation (4 KiB, 2 MiB, 1 GiB); 0 when not ok. */
  readonly pageSize: number;
  /** R permission. */
  readonly read: boolean;
  /** W permission. */
  readonly write: boolean;
  /** Unsupported Request: ATS not allowed (STE.EATS = 0 or a bad configuration). */
  readonly unsupported: boolean;
  /** Event ID of the fault that denied access (0 if none). */
  readonly eventId: number;
}

/** An event record read from the event queue with the time it was written. */
export interface QueuedEvent {
  /** The decoded record. */
  readonly record: EventRecord;
  /** Simulated time the fault was detected (ns). */
  readonly time: number;
}

/** A PRI queue entry read from the PRI queue with the time it was written. */
export interface QueuedPriEntry {
  /** The decoded entry. */
  readonly entry: PriEntry;
  /** Simulated time it was written (ns). */
  readonly time: number;
}

/** Counters of an {@linkcode Smmu}. */
export interface SmmuStats {
  /** Transactions presented (retries after CMD_RESUME not included). */
  translations: number;
  /** Translations retried after CMD_RESUME Retry. */
  retries: number;
  /** IOTLB hits (the transaction's own lookup). */
  iotlbHits: number;
  /** IOTLB misses (the transaction's own lookup). */
  iotlbMisses: number;
  /** IOTLB hits for stage-2 translations of nested descriptor fetches. */
  s2WalkCacheHits: number;
  /** Descriptor reads by the table walker. */
  walkReads: number;
  /** Configuration cache hits (STE). */
  cfgHits: number;
  /** STE and CD fetches from memory. */
  cfgFetches: number;
  /** Transactions that faulted (every fault, recorded or not). */
  faults: number;
  /** Transactions that stalled. */
  stalls: number;
  /** CMD_RESUME commands that matched a stalled transaction. */
  resumes: number;
  /** Stalled transactions terminated (CMD_RESUME Abort/Term, CMD_STALL_TERM). */
  stallsTerminated: number;
  /** Event records written. */
  eventsWritten: number;
  /** Event queue overflow conditions entered. */
  evtqOverflows: number;
  /** Event records lost to a full event queue. */
  evtqLost: number;
  /** Page requests received. */
  priRequests: number;
  /** PRI queue overflow conditions entered. */
  priqOverflows: number;
  /** Page requests discarded (queue full or overflow condition active). */
  priqDropped: number;
  /** Automatic PRG responses sent during overflow. */
  priAutoResponses: number;
  /** ATS translation requests. */
  atsRequests: number;
  /** ATS translation requests answered "no access". */
  atsNoAccess: number;
  /** Commands consumed. */
  commands: number;
  /** CMD_SYNC completed. */
  syncs: number;
  /** TLBI commands consumed. */
  tlbInvalidations: number;
  /** IOTLB entries dropped by TLBI commands. */
  tlbEntriesInvalidated: number;
  /** CMD_ATC_INV sent to endpoints. */
  atcInvalidations: number;
  /** CMD_PRI_RESP sent to endpoints. */
  priResponses: number;
}

const OK = 0;
const FAULT = 1;
const SILENT_ABORT = 2;

/** One in-flight transaction (pooled; also holds a stalled transaction). */
class Pending {
  sid = 0;
  ssid = -1;
  iova = 0;
  write = false;
  exec = false;
  priv = false;
  ats = false;
  cb: ((r: TxnResult) => void) | undefined = undefined;
  atsCb: ((r: AtsResult) => void) | undefined = undefined;
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
  firstStallAt = -1;
  status = OK;
  pa = 0;
  prot = 0;
  pageSize = 0;
  eventId = 0;
  s2 = false;
  cls: EventClass = CLASS_IN;
  ipa = 0;
  stage: 0 | 1 | 2 = 0;
  stall = false;
  record = false;
  abort = true;
  stag = -1;
  detectedAt = 0;
  /** The SMMU's invalidation count when the translation was looked up. */
  gen = 0;
  fire: () => void = noop;
  fault: () => void = noop;
  atsDone: () => void = noop;
  /** Event: CMD_RESUME Retry reaches the transaction. */
  retry: () => void = noop;
  /** Event: the stalled transaction is terminated. */
  terminate: () => void = noop;
  /** Neighbours in the SMMU's list of stalled transactions. */
  stallPrev: Pending | undefined = undefined;
  stallNext: Pending | undefined = undefined;
}

function noop(): void {}

/**
 * The stalled transactions by STAG, in the order they stalled (a Map's
 * iteration order): an array indexed by STAG plus a list through the
 * transactions, so a stall and its resume add and remove without
 * allocating.
 */
class StallTable {
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
    while (byTag.length < p.stag) byTag.push(undefined);
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

/**
 * Commands written to the command queue after the driver's issue time: the
 * commands are encoded at submission (16 bytes each), so the submitter's
 * objects are not kept. Pooled; `issue` is bound once.
 */
interface Submission {
  words: Uint32Array;
  n: number;
  done: (() => void) | undefined;
  issue: () => void;
}

/** A validated, cached STE. */
interface StreamCfg {
  readonly ste: Ste;
  readonly config: number;
  readonly eats: number;
  readonly s1: boolean;
  readonly s2: boolean;
  readonly vmid: number;
  readonly s2Ttb: number;
  s2Table: IoPgtable | undefined;
  readonly s2Stall: boolean;
  readonly s2Record: boolean;
  readonly cdPtr: number;
  readonly cdMax: number;
  readonly stalld: boolean;
  cds: (CdCfg | undefined)[];
}

/** A validated, cached CD. */
interface CdCfg {
  readonly cd: Cd;
  readonly asid: number;
  readonly s1Table: IoPgtable;
  readonly inputLimit: number;
  readonly stall: boolean;
  readonly record: boolean;
  readonly abort: boolean;
}

const TWO48 = 2 ** 48;

/**
 * An Arm SMMUv3 on the simulator's clock.
 *
 * **Device side.** {@linkcode Smmu.translate} takes a transaction through
 * the configuration cache (STE, CD), the IOTLB and, on a miss, the table
 * walk (stage 1, stage 2, or nested: each stage-1 descriptor address is an
 * IPA translated through stage 2 before it is read). Time passes on the
 * simulator: `smmu.iotlbLookup` per lookup, `smmu.cfgFetch` per STE/CD fetch,
 * `smmu.walkRead` per descriptor read. Faults follow spec 5.5: the A/R/S
 * controls (CD.A/R/S at stage 1, STE.S2R/S2S at stage 2) apply to
 * F_TRANSLATION, F_ADDR_SIZE, F_ACCESS and F_PERMISSION; other faults abort
 * and are recorded. A stalled transaction writes a record with Stall = 1 and
 * a STAG (never lost: it waits for space in a full event queue) and calls
 * back only after CMD_RESUME or CMD_STALL_TERM. IOTLB and configuration
 * cache entries stay in use until invalidated by a command, as on hardware:
 * unmapping without a TLBI leaves a working stale translation.
 * {@linkcode Smmu.atsTranslate} answers ATS Translation Requests (never
 * stalling; translation faults answer "no access" and are not recorded),
 * {@linkcode Smmu.pageRequest} receives PCIe Page Requests into the PRI queue
 * with the overflow rules of spec 8.1.
 *
 * **Driver side.** {@linkcode Smmu.writeSte} and {@linkcode Smmu.writeCd}
 * write configuration memory; {@linkcode Smmu.submit} writes commands into
 * the command queue (16-byte records), consumed one at a time
 * (`smmu.cmdIssue` per command by the driver, `smmu.cmdProcess` per command
 * by the SMMU, `smmu.cmdSync` for CMD_SYNC, which completes only after every
 * earlier command, ATC invalidations at the endpoints included);
 * {@linkcode Smmu.submitBlocking} is the CPU that spins on its CMD_SYNC: the
 * commands take effect at once and it returns the time spent. The event
 * and PRI queues hold 32- and 16-byte records; `onEvtqIrq` / `onPriqIrq` are
 * called when a record is written; {@linkcode Smmu.readEvent} /
 * {@linkcode Smmu.readPri} consume them.
 *
 * Model choices: the configuration cache is unbounded and caches only valid
 * configurations; table walk caches other than the IOTLB itself are not
 * modelled (the stage-2 translations of nested descriptor fetches are cached
 * in the IOTLB as stage-2 entries); the walker is not a contended resource;
 * STAGs are unique per SMMU; an automatic PRG response during PRI overflow
 * carries the PASID when the request had one and the STE is valid (PPS = 1
 * behaviour), Failure when the STE cannot be read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Simulator } from "../sim/simulator.ts";
 * import { loadCostProfile } from "../sim/costs.ts";
 * import { IoPgtable } from "../pgtable/mod.ts";
 * import { TableMemory } from "./memory.ts";
 * import { Smmu } from "./smmu.ts";
 *
 * const sim = new Simulator();
 * const memory = new TableMemory();
 * const s2 = new IoPgtable({ stage: 2 });
 * memory.register(0, s2);
 * s2.map(0x1000, 0x8000_0000, 0x1000, 3);
 * const smmu = new Smmu(sim, { costs: loadCostProfile(), memory });
 * smmu.writeSte(1, { V: true, Config: 6, S2VMID: 1, S2TTB: s2.root, S2S: false, S2R: true });
 * let pa = -1;
 * smmu.translate({ sid: 1, iova: 0x1234, write: true }, (r) => {
 *   if (r.ok) pa = r.pa;
 * });
 * sim.run();
 * assert(pa === 0x8000_0234 && smmu.stats.iotlbMisses === 1);
 * ```
 */
export class Smmu {
  /** The features the SMMU was built with. */
  readonly features: Readonly<{
    stallModel: StallModel;
    ats: boolean;
    pri: boolean;
    s1: boolean;
    s2: boolean;
    rangeInvalidation: boolean;
    sidBits: number;
    ssidBits: number;
    oasBits: number;
  }>;
  /** Counters. */
  readonly stats: SmmuStats = {
    translations: 0,
    retries: 0,
    iotlbHits: 0,
    iotlbMisses: 0,
    s2WalkCacheHits: 0,
    walkReads: 0,
    cfgHits: 0,
    cfgFetches: 0,
    faults: 0,
    stalls: 0,
    resumes: 0,
    stallsTerminated: 0,
    eventsWritten: 0,
    evtqOverflows: 0,
    evtqLost: 0,
    priRequests: 0,
    priqOverflows: 0,
    priqDropped: 0,
    priAutoResponses: 0,
    atsRequests: 0,
    atsNoAccess: 0,
    commands: 0,
    syncs: 0,
    tlbInvalidations: 0,
    tlbEntriesInvalidated: 0,
    atcInvalidations: 0,
    priResponses: 0,
  };
  /** The IOTLB (read-only use: inspection in tests and metrics). */
  readonly iotlb: SetAssocTlb;
  /** The event queue (32-byte records). */
  readonly evtq: SmmuQueue;
  /** The PRI queue (16-byte records). */
  readonly priq: SmmuQueue;
  /** The command queue (16-byte records). */
  readonly cmdq: SmmuQueue;
  /** Called whenever a record is written to the event queue. */
  onEvtqIrq: (() => void) | undefined = undefined;
  /** Called whenever a record is written to the PRI queue. */
  onPriqIrq: (() => void) | undefined = undefined;

  readonly #sim: Simulator;
  readonly #memory: TableMemory;
  readonly #cIotlb: number;
  readonly #cWalk: number;
  readonly #cCfg: number;
  readonly #cEvent: number;
  readonly #cIssue: number;
  readonly #cProcess: number;
  readonly #cSync: number;
  readonly #cTlbiEntry: number;
  readonly #cResume: number;
  readonly #oasLimit: number;
  readonly #streamTable: (Ste | undefined)[];
  readonly #steCache: (StreamCfg | undefined)[];
  readonly #endpoints = new Map<number, SmmuEndpoint>();
  readonly #pool: Pending[] = [];
  readonly #stalled = new StallTable();
  readonly #stallBacklog: Pending[] = [];
  #nextStag = 0;
  #acc = 0;
  readonly #w1 = newWalkResult();
  readonly #w2 = newWalkResult();
  #s2pa = 0;
  #s2prot = 0;
  #s2size = 0;
  readonly #evScratch = {
    ID: 0,
    SSV: false,
    SubstreamID: 0,
    StreamID: 0,
    STAG: 0,
    Stall: false,
    PnU: false,
    InD: false,
    RnW: false,
    S2: false,
    CLASS: CLASS_IN as EventClass,
    InputAddr: 0,
    IPA: 0,
  };
  // command queue state
  #issueFree = 0;
  #cmdBusy = false;
  readonly #cmdDone: ((() => void) | undefined)[];
  readonly #cmdBacklog: {
    words: Uint32Array;
    done: (() => void) | undefined;
  }[] = [];
  readonly #submissions: Submission[] = [];
  /** The command being processed from the queue (decoded in place). */
  readonly #cmd: CommandFields = newCommandFields();
  /** The command {@linkcode submitBlocking} is applying. */
  readonly #waitCmd: CommandFields = newCommandFields();
  /** The commands of a {@linkcode submitBlocking} call, encoded. */
  #waitWords = new Uint32Array(16 * COMMAND_WORDS);
  #atcPending = 0;
  /**
   * Configuration and TLB invalidations executed so far. A translation is
   * looked up at once but delivered after its latency; one delivered after
   * an invalidation that ran meanwhile is looked up again, as the real
   * invalidation would not complete while a transaction still used what it
   * invalidates.
   */
  #invalGen = 0;
  #syncWaiter: (() => void) | undefined = undefined;
  /** Commands submitted (issued or being issued) and not yet consumed. */
  #queuedCmds = 0;
  /**
   * Estimated time the queue drains: each submission's processing and sync
   * time after it is issued (TLBI and ATC work not counted).
   */
  #drainAt = 0;
  readonly #processNext = () => this.#processCommand();
  readonly #cmdContinue = () => this.#nextCommand();

  /**
   * Creates an SMMU with an empty stream table (every STE invalid).
   *
   * @throws {IopfLabError} EINVAL for out-of-range sizes
   */
  constructor(sim: Simulator, options: SmmuOptions) {
    const sidBits = options.sidBits ?? 16;
    const ssidBits = options.ssidBits ?? 20;
    const oasBits = options.oasBits ?? 48;
    for (
      const [name, v, lo, hi] of [
        ["sidBits", sidBits, 0, 20],
        ["ssidBits", ssidBits, 0, 20],
        ["oasBits", oasBits, 32, 52],
      ] as const
    ) {
      if (!Number.isInteger(v) || v < lo || v > hi) {
        throw new IopfLabError(
          "EINVAL",
          `Cannot create SMMU: ${name} must be a whole number in ${lo}..${hi}, got ${v}`,
        );
      }
    }
    this.#sim = sim;
    this.#memory = options.memory;
    const c = options.costs;
    this.#cIotlb = c["smmu.iotlbLookup"];
    this.#cWalk = c["smmu.walkRead"];
    this.#cCfg = c["smmu.cfgFetch"];
    this.#cEvent = c["smmu.eventWrite"];
    this.#cIssue = c["smmu.cmdIssue"];
    this.#cProcess = c["smmu.cmdProcess"];
    this.#cSync = c["smmu.cmdSync"];
    this.#cTlbiEntry = c["smmu.tlbiPerEntry"];
    this.#cResume = c["smmu.resumeRetry"];
    this.#oasLimit = 2 ** oasBits;
    this.features = Object.freeze({
      stallModel: options.stallModel ?? "supported",
      ats: options.ats ?? true,
      pri: options.pri ?? true,
      s1: options.s1 ?? true,
      s2: options.s2 ?? true,
      rangeInvalidation: options.rangeInvalidation ?? true,
      sidBits,
      ssidBits,
      oasBits,
    });
    this.iotlb = new SetAssocTlb({
      entries: options.iotlbEntries ?? 2048,
      ways: options.iotlbWays ?? 4,
      name: "IOTLB",
    });
    this.evtq = new SmmuQueue({
      log2Size: options.evtqLog2 ?? 8,
      entryWords: EVENT_WORDS,
      name: "event queue",
    });
    this.priq = new SmmuQueue({
      log2Size: options.priqLog2 ?? 8,
      entryWords: PRI_WORDS,
      name: "PRI queue",
    });
    this.cmdq = new SmmuQueue({
      log2Size: options.cmdqLog2 ?? 8,
      entryWords: COMMAND_WORDS,
      name: "command queue",
    });
    this.#cmdDone = new Array(this.cmdq.entries).fill(undefined);
    this.#streamTable = new Array(2 ** sidBits).fill(undefined);
    this.#steCache = new Array(2 ** sidBits).fill(undefined);
  }

  // -------------------------------------------------------------------------
  // Configuration memory (driver side)

  /** The STE in the stream table at `sid` (memory, not the cached copy). */
  ste(sid: number): Ste | undefined {
    return this.#streamTable[sid];
  }

  /**
   * Writes the STE at `sid` in memory. The SMMU keeps using a cached copy
   * until CMD_CFGI_STE (or CFGI_ALL).
   *
   * @throws {IopfLabError} EINVAL when `sid` is outside the stream table
   */
  writeSte(sid: number, ste: Ste): void {
    this.#checkSid(sid, "write the STE of");
    this.#streamTable[sid] = ste;
  }

  /**
   * Writes CD `ssid` (0 for the CD used without a SubstreamID) of the CD
   * table at `ptr` in address space `space` (0 = host PA), creating the
   * table. The SMMU keeps using a cached copy until CMD_CFGI_CD(_ALL).
   */
  writeCd(ptr: number, ssid: number, cd: Cd, space = HOST_PA_SPACE): void {
    let table = this.#memory.resolveCdTable(space, ptr);
    if (table === undefined) {
      table = [];
      this.#memory.registerCdTable(space, ptr, table);
    }
    table[ssid] = cd;
  }

  /** CD `ssid` of the CD table at `ptr` in `space` (memory, not the cache). */
  cd(ptr: number, ssid: number, space = HOST_PA_SPACE): Cd | undefined {
    return this.#memory.resolveCdTable(space, ptr)?.[ssid];
  }

  /** Attaches the PCIe endpoint with Requester ID `sid` (PRG responses, ATC invalidations). */
  attachEndpoint(sid: number, ep: SmmuEndpoint): void {
    this.#checkSid(sid, "attach an endpoint to");
    this.#endpoints.set(sid, ep);
  }

  /** Detaches the endpoint at `sid`. */
  detachEndpoint(sid: number): void {
    this.#endpoints.delete(sid);
  }

  #checkSid(sid: number, what: string): void {
    if (
      !Number.isInteger(sid) || sid < 0 || sid >= this.#streamTable.length
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot ${what} StreamID ${sid}: outside the stream table (${this.features.sidBits} bits)`,
      );
    }
  }

  // -------------------------------------------------------------------------
  // Device side

  /**
   * Presents a transaction. `cb` runs on the simulator once the translation
   * completes or faults; a stalled transaction calls back only after
   * CMD_RESUME or CMD_STALL_TERM. The result object is reused after `cb`
   * returns.
   */
  translate(txn: Txn, cb: (r: TxnResult) => void): void {
    const p = this.#pool.pop() ?? this.#newPending();
    p.sid = txn.sid;
    p.ssid = txn.ssid ?? -1;
    p.iova = txn.iova;
    p.write = txn.write;
    p.exec = txn.exec ?? false;
    p.priv = txn.priv ?? false;
    p.ats = false;
    p.firstStallAt = -1;
    p.cb = cb;
    this.stats.translations++;
    this.#run(p);
  }

  /**
   * The hit fast path for masters' hot loops: when `txn` hits the
   * configuration cache and the IOTLB with the permission it needs, counts
   * the hit and returns the output address, which {@linkcode translate}
   * would deliver after {@linkcode iotlbLookupNs}. Otherwise returns -1 and
   * changes nothing: the caller then uses {@linkcode translate}.
   */
  translateCached(txn: Txn): number {
    const sid = txn.sid;
    const cfg = sid >= 0 && sid < this.#steCache.length
      ? this.#steCache[sid]
      : undefined;
    if (cfg === undefined || (!cfg.s1 && !cfg.s2)) return -1;
    const ssid = txn.ssid ?? -1;
    let b = -1;
    if (cfg.s1) {
      if (ssid >= 0 && (cfg.cdMax === 0 || ssid >= 2 ** cfg.cdMax)) return -1;
      const cd = cfg.cds[ssid >= 0 ? ssid : 0];
      if (cd === undefined) return -1;
      b = cd.asid;
    } else if (ssid >= 0) {
      return -1;
    }
    const tlb = this.iotlb;
    const iova = txn.iova;
    const i = tlb.lookup(cfg.vmid, b, iova);
    if (i < 0) return -1;
    const need = txn.write ? PROT_WRITE : PROT_READ;
    if ((tlb.prot[i]! & need) !== need) return -1;
    const st = this.stats;
    st.translations++;
    st.cfgHits++;
    st.iotlbHits++;
    return tlb.translate(i, iova);
  }

  /** Simulated time of an IOTLB lookup (`smmu.iotlbLookup`, ns): the latency of a hit. */
  get iotlbLookupNs(): number {
    return this.#cIotlb;
  }

  /**
   * Answers an ATS Translation Request after the SMMU's lookup/walk time.
   * Never stalls: a translation fault answers "no access" (R = W = 0)
   * without an event; STE.EATS = 0 gives F_BAD_ATS_TREQ (recorded) and an
   * Unsupported Request. The result object is reused after `cb` returns.
   */
  atsTranslate(req: AtsRequest, cb: (r: AtsResult) => void): void {
    this.stats.atsRequests++;
    if (!this.features.ats) {
      this.#sim.after(0, () => cb(atsUnsupported(0)));
      return;
    }
    const p = this.#pool.pop() ?? this.#newPending();
    p.sid = req.sid;
    p.ssid = req.ssid ?? -1;
    p.iova = req.iova;
    p.write = req.write ?? false;
    p.exec = false;
    p.priv = false;
    p.ats = true;
    p.atsCb = cb;
    p.gen = this.#invalGen;
    const cost = this.#xlate(p);
    p.detectedAt = this.#sim.now + cost;
    this.#sim.after(cost, p.atsDone);
  }

  /**
   * A Page Request (or Stop Marker) arrives from an endpoint. With space in
   * the PRI queue and no overflow condition it is written (16 bytes) and
   * `onPriqIrq` is called. Otherwise it is discarded and the overflow
   * condition entered (spec 8.1): a request with LAST = 1 is answered at
   * once with Success (Failure when the STE cannot be read), LAST = 0 is
   * dropped silently, and a Stop Marker is dropped without response.
   */
  pageRequest(entry: PriEntry): void {
    this.stats.priRequests++;
    const q = this.priq;
    if (!this.features.pri) {
      this.stats.priqDropped++;
      return;
    }
    if (q.overflowPending || q.isFull) {
      if (q.noteOverflow()) this.stats.priqOverflows++;
      this.stats.priqDropped++;
      if (isStopMarker(entry) || !entry.LAST) return;
      const ep = this.#endpoints.get(entry.StreamID);
      this.stats.priAutoResponses++;
      const readable = this.#steReadable(entry.StreamID);
      ep?.prgResponse(
        readable && entry.SSV ? entry.SubstreamID : -1,
        entry.PRGIndex,
        readable ? PRG_RESP_SUCCESS : PRG_RESP_FAILURE,
      );
      return;
    }
    encodePriEntry(entry, q.words, q.writeOffset);
    q.commit(this.#sim.now);
    this.onPriqIrq?.();
  }

  /** STAGs of the transactions of `sid` stalled now. */
  stalledTags(sid: number): number[] {
    const out: number[] = [];
    for (const p of this.#stalled.list()) if (p.sid === sid) out.push(p.stag);
    return out;
  }

  /** Number of transactions stalled now. */
  get stalledCount(): number {
    return this.#stalled.size;
  }

  // -------------------------------------------------------------------------
  // Queue consumers (driver side)

  /**
   * Consumes the next event record (advancing EVENTQ_CONS), or returns
   * undefined when the queue is empty. Stall records waiting for space are
   * written as space frees.
   */
  readEvent(): QueuedEvent | undefined {
    const q = this.evtq;
    if (q.isEmpty) return undefined;
    const time = q.stamps[q.readSlot]!;
    const record = decodeEvent(q.words, q.readOffset);
    q.advance();
    this.#drainStallBacklog();
    return { record, time };
  }

  /**
   * {@linkcode readEvent} into `out` (a driver handling one record at a
   * time reuses one record): returns the time the record was written, or
   * -1 (and `out` unchanged) when the queue is empty.
   */
  readEventInto(out: MutableEventRecord): number {
    const q = this.evtq;
    if (q.isEmpty) return -1;
    const time = q.stamps[q.readSlot]!;
    decodeEventInto(q.words, q.readOffset, out);
    q.advance();
    this.#drainStallBacklog();
    return time;
  }

  /**
   * {@linkcode readPri} into `out`: returns the time the entry was written,
   * or -1 (and `out` unchanged) when the queue is empty.
   */
  readPriInto(out: MutablePriEntry): number {
    const q = this.priq;
    if (q.isEmpty) return -1;
    const time = q.stamps[q.readSlot]!;
    decodePriEntryInto(q.words, q.readOffset, out);
    q.advance();
    return time;
  }

  /** Consumes the next PRI queue entry, or returns undefined when empty. */
  readPri(): QueuedPriEntry | undefined {
    const q = this.priq;
    if (q.isEmpty) return undefined;
    const time = q.stamps[q.readSlot]!;
    const entry = decodePriEntry(q.words, q.readOffset);
    q.advance();
    return { entry, time };
  }

  /** True while the event queue is in an unacknowledged overflow condition. */
  get evtqOverflowPending(): boolean {
    return this.evtq.overflowPending;
  }

  /** True while the PRI queue is in an overflow condition (new entries inhibited). */
  get priqOverflowPending(): boolean {
    return this.priq.overflowPending;
  }

  /** Acknowledges an event queue overflow (EVENTQ_CONS.OVACKFLG = OVFLG). */
  ackEvtqOverflow(): void {
    this.evtq.ackOverflow();
  }

  /** Acknowledges a PRI queue overflow, which lets new entries in again. */
  ackPriqOverflow(): void {
    this.priq.ackOverflow();
  }

  // -------------------------------------------------------------------------
  // Command queue (driver side)

  /**
   * Writes `cmds` to the command queue after the driver's issue time
   * (`smmu.cmdIssue` each, serialised with other submissions) and calls
   * `done` when the last one has completed (for a CMD_SYNC: when everything
   * before it, ATC invalidations included, has completed). A full command
   * queue makes the submitter wait for space.
   */
  submit(cmds: readonly Command[], done?: () => void): void {
    const n = cmds.length;
    const sim = this.#sim;
    const at = Math.max(sim.now, this.#issueFree) + n * this.#cIssue;
    this.#issueFree = at;
    if (n === 0) {
      if (done) sim.at(at, done);
      return;
    }
    const sub = this.#submissions.pop() ?? this.#newSubmission();
    if (sub.words.length < n * COMMAND_WORDS) {
      sub.words = new Uint32Array(n * COMMAND_WORDS);
    }
    this.#queuedCmds += n;
    let work = n * this.#cProcess;
    for (let i = 0; i < n; i++) {
      const c = cmds[i]!;
      if (c.opcode === CMD_SYNC) work += this.#cSync;
      encodeCommand(c, sub.words, i * COMMAND_WORDS);
    }
    this.#drainAt = Math.max(this.#drainAt, at) + work;
    sub.n = n;
    sub.done = done;
    sim.at(at, sub.issue);
  }

  #newSubmission(): Submission {
    const sub: Submission = {
      words: new Uint32Array(4 * COMMAND_WORDS),
      n: 0,
      done: undefined,
      issue: noop,
    };
    sub.issue = () => {
      const { words, n, done } = sub;
      for (let i = 0; i < n; i++) {
        this.#enqueueCommand(
          words,
          i * COMMAND_WORDS,
          i === n - 1 ? done : undefined,
        );
      }
      sub.done = undefined;
      this.#submissions.push(sub);
      this.#kickCommands();
    };
    return sub;
  }

  /**
   * Issues `cmds` and waits for their completion synchronously, as the
   * driver's CPU does when it spins on CMD_SYNC
   * (arm_smmu_cmdq_issue_cmdlist with sync = true): a CMD_SYNC is appended
   * unless the list already ends with one. The commands' effects apply at
   * once (IOTLB entries dropped, configuration caches invalidated, CMD_ATC_INV
   * delivered to the endpoint, which drops its ATC entries, see
   * {@linkcode SmmuEndpoint.atcInvalidateBlocking}), so when this returns nothing
   * cached can translate what the commands invalidated. Returns the ns the
   * CPU spent, for the caller to add to its own cost: the issue time
   * (`smmu.cmdIssue` each, after any submission still being issued), then
   * per command `smmu.cmdProcess` plus its own work (`smmu.tlbiPerEntry` per
   * IOTLB entry dropped), and per CMD_SYNC the wait for the ATC
   * invalidations before it (the endpoint's completion time,
   * `pci.atcInvalidate` for a PCIe device of lib/pci) plus `smmu.cmdSync`.
   * An empty list costs nothing.
   *
   * Approximation: the commands execute ahead of anything already in the
   * command queue (the real CPU's CMD_SYNC completes only after the
   * commands queued before it). The queued commands' remaining time is
   * added to the returned ns as an estimate (`smmu.cmdProcess` per command
   * and `smmu.cmdSync` per CMD_SYNC from when each submission was issued;
   * their TLBI and ATC work not counted, so a lower bound), but their
   * effects still happen later, on the queue. Only the issue time of the
   * commands delays later submissions (issue is serialised, as in
   * {@linkcode submit}); their processing does not delay the queue.
   *
   * @throws {RangeError} for an unknown opcode, as the queue's decoder (nothing applied)
   */
  submitBlocking(cmds: readonly Command[]): number {
    const n = cmds.length;
    if (n === 0) return 0;
    if (this.#waitWords.length < (n + 1) * COMMAND_WORDS) {
      this.#waitWords = new Uint32Array((n + 1) * COMMAND_WORDS);
    }
    const words = this.#waitWords;
    const cmd = this.#waitCmd;
    // Round-trip through the 16-byte format, as the queue does (validates
    // every command before any takes effect).
    for (let i = 0; i < n; i++) {
      encodeCommand(cmds[i]!, words, i * COMMAND_WORDS);
      decodeCommandInto(words, i * COMMAND_WORDS, cmd);
    }
    let total = n;
    if (cmd.opcode !== CMD_SYNC) {
      encodeCommand(SYNC, words, n * COMMAND_WORDS);
      total++;
    }
    const now = this.#sim.now;
    const issued = Math.max(now, this.#issueFree) + total * this.#cIssue;
    this.#issueFree = issued;
    // Behind the commands still queued (an estimate, see above).
    let t = this.#queuedCmds > 0 ? Math.max(issued, this.#drainAt) : issued;
    let atcDoneAt = 0;
    for (let i = 0; i < total; i++) {
      decodeCommandInto(words, i * COMMAND_WORDS, cmd);
      t += this.#cProcess;
      this.stats.commands++;
      if (cmd.opcode === CMD_SYNC) {
        t = Math.max(t, atcDoneAt) + this.#cSync;
        this.stats.syncs++;
      } else if (cmd.opcode === CMD_ATC_INV) {
        this.stats.atcInvalidations++;
        const ep = this.#endpoints.get(cmd.SID);
        if (ep) {
          const at = t +
            ep.atcInvalidateBlocking(atcSsid(cmd), cmd.Address, cmd.Size);
          if (at > atcDoneAt) atcDoneAt = at;
        }
      } else {
        t += this.#execute(cmd);
      }
    }
    return t - now;
  }

  /** Writes the command encoded at `src[off ..]` into the queue (or the backlog when full). */
  #enqueueCommand(
    src: Uint32Array,
    off: number,
    done: (() => void) | undefined,
  ): void {
    const q = this.cmdq;
    if (q.isFull || this.#cmdBacklog.length > 0) {
      this.#cmdBacklog.push({
        words: src.slice(off, off + COMMAND_WORDS),
        done,
      });
      return;
    }
    this.#writeCommand(src, off, done);
  }

  #writeCommand(
    src: Uint32Array,
    off: number,
    done: (() => void) | undefined,
  ): void {
    const q = this.cmdq;
    const o = q.writeOffset;
    const w = q.words;
    for (let k = 0; k < COMMAND_WORDS; k++) w[o + k] = src[off + k]!;
    this.#cmdDone[o / COMMAND_WORDS] = done;
    q.commit(this.#sim.now);
  }

  #kickCommands(): void {
    if (this.#cmdBusy || this.cmdq.isEmpty) return;
    this.#cmdBusy = true;
    this.#sim.after(this.#cProcess, this.#processNext);
  }

  #nextCommand(): void {
    if (this.cmdq.isEmpty) {
      this.#cmdBusy = false;
      return;
    }
    this.#sim.after(this.#cProcess, this.#processNext);
  }

  #processCommand(): void {
    const q = this.cmdq;
    const slot = q.readSlot;
    const cmd = this.#cmd;
    decodeCommandInto(q.words, q.readOffset, cmd);
    const done = this.#cmdDone[slot];
    this.#cmdDone[slot] = undefined;
    q.advance();
    this.#queuedCmds--;
    while (this.#cmdBacklog.length > 0 && !q.isFull) {
      const b = this.#cmdBacklog.shift()!;
      this.#writeCommand(b.words, 0, b.done);
    }
    this.stats.commands++;
    if (cmd.opcode === CMD_SYNC) {
      const finish = () => {
        this.#sim.after(this.#cSync, () => {
          this.stats.syncs++;
          done?.();
          this.#nextCommand();
        });
      };
      if (this.#atcPending === 0) finish();
      else this.#syncWaiter = finish;
      return;
    }
    const extra = this.#execute(cmd);
    if (extra > 0) {
      this.#sim.after(extra, () => {
        done?.();
        this.#nextCommand();
      });
      return;
    }
    done?.();
    this.#cmdContinue();
  }

  /** Applies a command; returns extra processing time (ns). */
  #execute(cmd: CommandFields): number {
    if (cmd.opcode >= CMD_CFGI_STE && cmd.opcode <= CMD_TLBI_NSNH_ALL) {
      this.#invalGen++;
    }
    switch (cmd.opcode) {
      case CMD_PREFETCH_CONFIG:
        if (cmd.SID < this.#steCache.length && !this.#steCache[cmd.SID]) {
          const r = this.#fetchSte(cmd.SID);
          if (typeof r !== "number") this.#steCache[cmd.SID] = r;
        }
        return 0;
      case CMD_CFGI_STE:
        if (cmd.SID < this.#steCache.length) {
          this.#steCache[cmd.SID] = undefined;
        }
        return 0;
      case CMD_CFGI_STE_RANGE: {
        if (cmd.Range >= 31) {
          this.#steCache.fill(undefined);
          return 0;
        }
        const n = 2 ** (cmd.Range + 1);
        const first = cmd.SID - (cmd.SID % n);
        const last = Math.min(first + n, this.#steCache.length);
        for (let s = first; s < last; s++) this.#steCache[s] = undefined;
        return 0;
      }
      case CMD_CFGI_CD: {
        const cfg = this.#steCache[cmd.SID];
        if (cfg) cfg.cds[cmd.SSID] = undefined;
        return 0;
      }
      case CMD_CFGI_CD_ALL: {
        const cfg = this.#steCache[cmd.SID];
        if (cfg) cfg.cds = [];
        return 0;
      }
      case CMD_TLBI_NH_ALL:
        return this.#tlbi(cmd.VMID, undefined, S1_KINDS, 0, Infinity);
      case CMD_TLBI_NH_ASID:
        return this.#tlbi(cmd.VMID, cmd.ASID, S1_KINDS, 0, Infinity);
      case CMD_TLBI_NH_VA:
        this.#tlbiRange(cmd);
        return this.#tlbi(cmd.VMID, cmd.ASID, S1_KINDS, this.#rs, this.#re);
      case CMD_TLBI_NH_VAA:
        this.#tlbiRange(cmd);
        return this.#tlbi(cmd.VMID, undefined, S1_KINDS, this.#rs, this.#re);
      case CMD_TLBI_EL2_ALL:
        this.stats.tlbInvalidations++;
        return 0;
      case CMD_TLBI_S12_VMALL:
        return this.#tlbi(cmd.VMID, undefined, 0, 0, Infinity);
      case CMD_TLBI_S2_IPA:
        this.#tlbiRange(cmd);
        return this.#tlbi(cmd.VMID, -1, 1 << TLB_KIND_S2, this.#rs, this.#re);
      case CMD_TLBI_NSNH_ALL:
        return this.#tlbi(-1, undefined, 0, 0, Infinity);
      case CMD_ATC_INV: {
        this.stats.atcInvalidations++;
        const ep = this.#endpoints.get(cmd.SID);
        if (!ep) return 0;
        this.#atcPending++;
        ep.atcInvalidate(
          atcSsid(cmd),
          cmd.Address,
          cmd.Size,
          () => {
            if (--this.#atcPending === 0 && this.#syncWaiter) {
              const w = this.#syncWaiter;
              this.#syncWaiter = undefined;
              w();
            }
          },
        );
        return 0;
      }
      case CMD_PRI_RESP: {
        this.stats.priResponses++;
        const ep = this.#endpoints.get(cmd.SID);
        const code = cmd.Resp === PRI_RESP_SUCC
          ? PRG_RESP_SUCCESS
          : cmd.Resp === PRI_RESP_DENY
          ? PRG_RESP_INVALID
          : PRG_RESP_FAILURE;
        ep?.prgResponse(cmd.SSV ? cmd.SSID : -1, cmd.GRPID, code);
        return 0;
      }
      case CMD_RESUME: {
        const p = this.#stalled.get(cmd.STAG);
        if (!p || p.sid !== cmd.SID) return 0; // no such stall: ignored
        this.#stalled.delete(cmd.STAG);
        this.stats.resumes++;
        this.#sim.after(
          this.#cResume,
          cmd.Resp === RESUME_RETRY ? p.retry : p.terminate,
        );
        return 0;
      }
      case CMD_STALL_TERM: {
        for (const p of this.#stalled.list()) {
          if (p.sid !== cmd.SID) continue;
          this.#stalled.delete(p.stag);
          this.#sim.after(this.#cResume, p.terminate);
        }
        // Stall records still waiting for event queue space go too.
        for (let i = this.#stallBacklog.length - 1; i >= 0; i--) {
          const p = this.#stallBacklog[i]!;
          if (p.sid !== cmd.SID) continue;
          this.#stallBacklog.splice(i, 1);
          this.#stalled.delete(p.stag);
          this.#sim.after(this.#cResume, p.terminate);
        }
        return 0;
      }
      case CMD_SYNC:
        return 0;
      default:
        return 0; // the decoder rejected unknown opcodes
    }
  }

  #rs = 0;
  #re = 0;

  #tlbiRange(c: TlbiRange): void {
    const start = Math.floor(c.Address / 4096) * 4096;
    this.#rs = start;
    const tg = c.TG ?? 0;
    if (tg === 0 || !this.features.rangeInvalidation) {
      this.#re = start + 1; // entries covering Address
      return;
    }
    const granule = tg === 1 ? 4096 : tg === 2 ? 16384 : 65536;
    this.#re = start + ((c.NUM ?? 0) + 1) * 2 ** (c.SCALE ?? 0) * granule;
  }

  #tlbi(
    a: number,
    b: number | undefined,
    kinds: number,
    start: number,
    end: number,
  ): number {
    this.stats.tlbInvalidations++;
    const n = this.iotlb.invalidate(a, b, kinds, start, end);
    this.stats.tlbEntriesInvalidated += n;
    return n * this.#cTlbiEntry;
  }

  // -------------------------------------------------------------------------
  // Translation machinery

  #newPending(): Pending {
    const p = new Pending();
    p.fire = () => {
      if (p.gen !== this.#invalGen) {
        this.#run(p); // raced an invalidation: translate again
        return;
      }
      const cb = p.cb!;
      p.cb = undefined;
      p.okRes.pa = p.pa;
      p.okRes.stalledAt = p.firstStallAt;
      cb(p.okRes);
      this.#pool.push(p);
    };
    p.fault = () => this.#onFault(p);
    p.atsDone = () => this.#onAtsDone(p);
    p.retry = () => {
      this.stats.retries++;
      this.#run(p);
    };
    p.terminate = () => this.#terminate(p);
    return p;
  }

  #run(p: Pending): void {
    p.gen = this.#invalGen;
    const cost = this.#xlate(p);
    if (p.status === OK) {
      this.#sim.after(cost, p.fire);
      return;
    }
    this.stats.faults++;
    p.detectedAt = this.#sim.now + cost;
    // A recorded fault completes once its record is written.
    this.#sim.after(p.record ? cost + this.#cEvent : cost, p.fault);
  }

  #onFault(p: Pending): void {
    if (p.status === SILENT_ABORT) {
      this.#finishFault(p, false);
      return;
    }
    if (p.stall) {
      let stag = this.#nextStag;
      while (this.#stalled.has(stag)) stag = (stag + 1) & 0xffff;
      this.#nextStag = (stag + 1) & 0xffff;
      p.stag = stag;
      if (p.firstStallAt < 0) p.firstStallAt = p.detectedAt;
      this.#stalled.add(p);
      this.stats.stalls++;
      if (this.#stallBacklog.length > 0 || !this.#writeEvent(p, true)) {
        this.#stallBacklog.push(p);
      }
      return;
    }
    if (p.record && !this.#writeEvent(p, false)) {
      this.stats.evtqLost++;
      if (this.evtq.noteOverflow()) this.stats.evtqOverflows++;
    }
    this.#finishFault(p, false);
  }

  #terminate(p: Pending): void {
    this.stats.stallsTerminated++;
    this.#finishFault(p, true);
  }

  #finishFault(p: Pending, terminated: boolean): void {
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
    this.#pool.push(p);
  }

  #onAtsDone(p: Pending): void {
    if (p.gen !== this.#invalGen) {
      // Raced an invalidation: translate again.
      p.gen = this.#invalGen;
      const cost = this.#xlate(p);
      p.detectedAt = this.#sim.now + cost;
      this.#sim.after(cost, p.atsDone);
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
      this.stats.atsNoAccess++;
      if (!this.#writeEvent(p, false)) {
        this.stats.evtqLost++;
        if (this.evtq.noteOverflow()) this.stats.evtqOverflows++;
      }
      setAts(r, false, -1, 0, 0, true, p.eventId);
    } else {
      this.stats.atsNoAccess++;
      setAts(r, false, -1, 0, 0, false, p.status === FAULT ? p.eventId : 0);
    }
    this.#pool.push(p);
    cb(r);
  }

  #writeEvent(p: Pending, stall: boolean): boolean {
    const q = this.evtq;
    if (q.isFull) return false;
    const e = this.#evScratch;
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
    encodeEvent(e, q.words, q.writeOffset);
    q.commit(p.detectedAt);
    this.stats.eventsWritten++;
    this.onEvtqIrq?.();
    return true;
  }

  #drainStallBacklog(): void {
    const b = this.#stallBacklog;
    while (b.length > 0 && !this.evtq.isFull) {
      this.#writeEvent(b.shift()!, true);
    }
  }

  #steReadable(sid: number): boolean {
    if (!(sid >= 0 && sid < this.#steCache.length)) return false;
    if (this.#steCache[sid]) return true;
    return typeof this.#fetchSte(sid) !== "number";
  }

  /** Validates the STE at `sid`: a config or an event ID. */
  #fetchSte(sid: number): StreamCfg | number {
    if (!(sid >= 0 && sid < this.#streamTable.length)) return C_BAD_STREAMID;
    const ste = this.#streamTable[sid];
    if (!ste || !ste.V) return C_BAD_STE;
    const f = this.features;
    const config = ste.Config;
    const eats = ste.EATS ?? 0;
    if (eats !== 0 && !f.ats) return C_BAD_STE;
    if (eats === 2 && config !== STE_CONFIG_NESTED) return C_BAD_STE;
    let s1 = false, s2 = false;
    let vmid = 0, s2Ttb = 0, s2Stall = false, s2Record = false;
    let cdPtr = 0, cdMax = 0, stalld = false;
    switch (ste.Config) {
      case STE_CONFIG_ABORT:
      case STE_CONFIG_BYPASS:
        break;
      case STE_CONFIG_S1:
        s1 = true;
        vmid = ste.S2VMID ?? 0;
        cdPtr = ste.S1ContextPtr;
        cdMax = ste.S1CDMax;
        stalld = ste.S1STALLD;
        break;
      case STE_CONFIG_S2:
        s2 = true;
        vmid = ste.S2VMID;
        s2Ttb = ste.S2TTB;
        s2Stall = ste.S2S;
        s2Record = ste.S2R;
        break;
      case STE_CONFIG_NESTED:
        s1 = true;
        s2 = true;
        vmid = ste.S2VMID;
        s2Ttb = ste.S2TTB;
        s2Stall = ste.S2S;
        s2Record = ste.S2R;
        cdPtr = ste.S1ContextPtr;
        cdMax = ste.S1CDMax;
        stalld = ste.S1STALLD;
        break;
      default:
        return C_BAD_STE;
    }
    if ((s1 && !f.s1) || (s2 && !f.s2)) return C_BAD_STE;
    if (s2) {
      if (s2Stall && f.stallModel === "unsupported") return C_BAD_STE;
      if (!s2Stall && f.stallModel === "forced") return C_BAD_STE;
      if (s2Stall && eats !== 0) return C_BAD_STE;
      if (!Number.isInteger(vmid) || vmid < 0 || vmid > 0xffff) {
        return C_BAD_STE;
      }
    }
    if (s1) {
      if (stalld && f.stallModel === "forced") return C_BAD_STE;
      if (!Number.isInteger(cdMax) || cdMax < 0 || cdMax > f.ssidBits) {
        return C_BAD_STE;
      }
    }
    this.stats.cfgFetches++;
    return {
      ste,
      config,
      eats,
      s1,
      s2,
      vmid,
      s2Ttb,
      s2Table: s2 ? this.#memory.resolve(HOST_PA_SPACE, s2Ttb) : undefined,
      s2Stall,
      s2Record,
      cdPtr,
      cdMax,
      stalld,
      cds: [],
    };
  }

  /**
   * Sets `p` up as a fault with the controls that apply to it and returns
   * false (so callers can `return this.#fault(...)`).
   */
  #fault(
    p: Pending,
    id: number,
    s2: boolean,
    cls: EventClass,
    ipa: number,
    cfg: StreamCfg | undefined,
    cd: CdCfg | undefined,
  ): false {
    p.status = FAULT;
    p.eventId = id;
    p.s2 = s2;
    p.cls = cls;
    p.ipa = Math.floor(ipa / 4096) * 4096;
    const translation = isTranslationFault(id);
    p.stage = !translation && id !== F_WALK_EABT ? 0 : s2 ? 2 : 1;
    if (p.ats) {
      p.stall = false;
      p.record = !translation;
      p.abort = true;
    } else if (translation && cfg) {
      if (s2) {
        p.stall = cfg.s2Stall;
        p.record = cfg.s2Record || p.stall;
        p.abort = true;
      } else {
        p.stall = cd?.stall ?? false;
        p.record = (cd?.record ?? true) || p.stall;
        p.abort = cd?.abort ?? true;
      }
    } else {
      p.stall = false;
      p.record = true;
      p.abort = true;
    }
    return false;
  }

  /**
   * Translates `p` synchronously (state only); sets `p.status` and the
   * result fields and returns the simulated time it takes.
   */
  #xlate(p: Pending): number {
    this.#acc = 0;
    p.status = OK;
    p.stall = false;
    p.record = false;
    p.abort = true;
    p.s2 = false;
    p.eventId = 0;
    p.stage = 0;
    const sid = p.sid;
    let cfg = sid >= 0 && sid < this.#steCache.length
      ? this.#steCache[sid]
      : undefined;
    if (cfg === undefined) {
      this.#acc += this.#cCfg;
      const r = this.#fetchSte(sid);
      if (typeof r === "number") {
        this.#fault(p, r, false, CLASS_IN, 0, undefined, undefined);
        return this.#acc;
      }
      cfg = r;
      this.#steCache[sid] = r;
    } else {
      this.stats.cfgHits++;
    }
    if (cfg.config === STE_CONFIG_ABORT) {
      p.status = SILENT_ABORT;
      p.eventId = 0;
      return this.#acc;
    }
    if (p.ats && cfg.eats === 0) {
      this.#fault(p, F_BAD_ATS_TREQ, false, CLASS_IN, 0, cfg, undefined);
      return this.#acc;
    }
    const iova = p.iova;
    if (cfg.config === STE_CONFIG_BYPASS) {
      if (p.ssid >= 0) {
        this.#fault(p, C_BAD_SUBSTREAMID, false, CLASS_IN, 0, cfg, undefined);
        return this.#acc;
      }
      p.pa = iova;
      p.prot = PROT_READ | PROT_WRITE;
      p.pageSize = 4096;
      return this.#acc;
    }
    let cd: CdCfg | undefined;
    if (cfg.s1) {
      if (p.ssid >= 0 && (cfg.cdMax === 0 || p.ssid >= 2 ** cfg.cdMax)) {
        this.#fault(p, C_BAD_SUBSTREAMID, false, CLASS_IN, 0, cfg, undefined);
        return this.#acc;
      }
      const idx = p.ssid >= 0 ? p.ssid : 0;
      cd = cfg.cds[idx];
      if (cd === undefined) {
        const r = this.#fetchCd(p, cfg, idx);
        if (r === undefined) return this.#acc;
        cd = r;
      }
    } else if (p.ssid >= 0) {
      this.#fault(p, C_BAD_SUBSTREAMID, false, CLASS_IN, 0, cfg, undefined);
      return this.#acc;
    }
    const need = p.ats ? 0 : p.write ? PROT_WRITE : PROT_READ;
    const a = cfg.vmid, b = cd ? cd.asid : -1;
    const tlb = this.iotlb;
    this.#acc += this.#cIotlb;
    const i = tlb.lookup(a, b, iova);
    if (i >= 0 && (tlb.prot[i]! & need) === need) {
      this.stats.iotlbHits++;
      p.pa = tlb.translate(i, iova);
      p.prot = tlb.prot[i]!;
      if (p.ats) p.pageSize = 2 ** tlb.shift[i]!;
      return this.#acc;
    }
    this.stats.iotlbMisses++;
    if (!cfg.s2) this.#walkS1(p, cfg, cd!, need);
    else if (!cfg.s1) this.#walkS2Only(p, cfg, need);
    else this.#walkNested(p, cfg, cd!, need);
    return this.#acc;
  }

  #fetchCd(p: Pending, cfg: StreamCfg, idx: number): CdCfg | undefined {
    this.#acc += this.#cCfg;
    const nested = cfg.s2;
    const space = nested ? cfg.vmid : HOST_PA_SPACE;
    if (nested) {
      // The CD table pointer is an IPA: translate the CD's address first.
      const cdAddr = cfg.cdPtr + idx * 64;
      if (!this.#s2(p, cfg, cdAddr, PROT_READ, CLASS_CD, true)) {
        return undefined;
      }
    }
    const table: CdTable | undefined = this.#memory.resolveCdTable(
      space,
      cfg.cdPtr,
    );
    if (table === undefined) {
      this.#fault(p, F_CD_FETCH, false, CLASS_CD, 0, cfg, undefined);
      return undefined;
    }
    const cd = table[idx];
    const f = this.features;
    if (
      !cd || !cd.V || cd.TG0 !== 0 || !(cd.T0SZ >= 16 && cd.T0SZ <= 39) ||
      !Number.isInteger(cd.ASID) || cd.ASID < 0 || cd.ASID > 0xffff ||
      (cd.S && (f.stallModel === "unsupported" || cfg.stalld)) ||
      (!cd.S && f.stallModel === "forced")
    ) {
      this.#fault(p, C_BAD_CD, false, CLASS_CD, 0, cfg, undefined);
      return undefined;
    }
    this.stats.cfgFetches++;
    const s1Table = this.#memory.resolve(space, cd.TTB0);
    if (s1Table === undefined) {
      // Nothing to walk at TTB0: an external abort on the first descriptor
      // read (after its stage-2 translation when nested).
      if (nested && !this.#s2(p, cfg, cd.TTB0, PROT_READ, CLASS_TT, true)) {
        return undefined;
      }
      this.#fault(p, F_WALK_EABT, false, CLASS_TT, 0, cfg, undefined);
      return undefined;
    }
    const r: CdCfg = {
      cd,
      asid: cd.ASID,
      s1Table,
      inputLimit: 2 ** (64 - cd.T0SZ),
      stall: cd.S,
      record: cd.R,
      abort: cd.A,
    };
    cfg.cds[idx] = r;
    return r;
  }

  /** Stage 1 only. */
  #walkS1(p: Pending, cfg: StreamCfg, cd: CdCfg, need: number): void {
    const iova = p.iova;
    if (!(iova < cd.inputLimit)) {
      this.#fault(p, F_TRANSLATION, false, CLASS_IN, 0, cfg, cd);
      return;
    }
    const w = cd.s1Table.walk(iova, this.#w1);
    this.#acc += w.reads * this.#cWalk;
    this.stats.walkReads += w.reads;
    if (!w.ok) {
      this.#fault(p, F_TRANSLATION, false, CLASS_IN, 0, cfg, cd);
      return;
    }
    this.iotlb.insert(
      cfg.vmid,
      cd.asid,
      TLB_KIND_S1,
      w.pageSize,
      iova,
      w.pa,
      w.prot,
    );
    if ((w.prot & need) !== need) {
      this.#fault(p, F_PERMISSION, false, CLASS_IN, 0, cfg, cd);
      return;
    }
    if (w.pa >= this.#oasLimit) {
      this.#fault(p, F_ADDR_SIZE, false, CLASS_IN, 0, cfg, cd);
      return;
    }
    p.pa = w.pa;
    p.prot = w.prot;
    p.pageSize = w.pageSize;
  }

  /** Stage 2 only: the input address is an IPA. */
  #walkS2Only(p: Pending, cfg: StreamCfg, need: number): void {
    if (!this.#s2(p, cfg, p.iova, need, CLASS_IN, false)) return;
    p.pa = this.#s2pa;
    p.prot = this.#s2prot;
    p.pageSize = this.#s2size;
  }

  /**
   * Translates `ipa` through stage 2 (IOTLB first when `lookup`), needing
   * `need` permissions. On success sets #s2pa/#s2prot/#s2size and returns
   * true; on a fault sets `p` (S2 = 1, CLASS = `cls`, IPA = `ipa`).
   */
  #s2(
    p: Pending,
    cfg: StreamCfg,
    ipa: number,
    need: number,
    cls: EventClass,
    lookup: boolean,
  ): boolean {
    const tlb = this.iotlb;
    if (lookup) {
      this.#acc += this.#cIotlb;
      const i = tlb.lookup(cfg.vmid, -1, ipa);
      if (i >= 0 && (tlb.prot[i]! & need) === need) {
        this.stats.s2WalkCacheHits++;
        this.#s2pa = tlb.translate(i, ipa);
        this.#s2prot = tlb.prot[i]!;
        this.#s2size = 2 ** tlb.shift[i]!;
        return true;
      }
    }
    if (!(ipa >= 0 && ipa < TWO48)) {
      return this.#fault(p, F_ADDR_SIZE, true, cls, ipa, cfg, undefined);
    }
    let table = cfg.s2Table;
    if (table === undefined) {
      table = this.#memory.resolve(HOST_PA_SPACE, cfg.s2Ttb);
      if (table === undefined) {
        return this.#fault(p, F_WALK_EABT, true, CLASS_TT, ipa, cfg, undefined);
      }
      cfg.s2Table = table;
    }
    const w = table.walk(ipa, this.#w2);
    this.#acc += w.reads * this.#cWalk;
    this.stats.walkReads += w.reads;
    if (!w.ok) {
      return this.#fault(p, F_TRANSLATION, true, cls, ipa, cfg, undefined);
    }
    tlb.insert(cfg.vmid, -1, TLB_KIND_S2, w.pageSize, ipa, w.pa, w.prot);
    if ((w.prot & need) !== need) {
      return this.#fault(p, F_PERMISSION, true, cls, ipa, cfg, undefined);
    }
    if (w.pa >= this.#oasLimit) {
      return this.#fault(p, F_ADDR_SIZE, true, cls, ipa, cfg, undefined);
    }
    this.#s2pa = w.pa;
    this.#s2prot = w.prot;
    this.#s2size = w.pageSize;
    return true;
  }

  /** Nested: a guest stage 1 whose every descriptor fetch goes through stage 2. */
  #walkNested(p: Pending, cfg: StreamCfg, cd: CdCfg, need: number): void {
    const iova = p.iova;
    if (!(iova < cd.inputLimit)) {
      this.#fault(p, F_TRANSLATION, false, CLASS_IN, 0, cfg, cd);
      return;
    }
    const w = cd.s1Table.walk(iova, this.#w1);
    const reads = w.reads;
    for (let k = 0; k < reads; k++) {
      // Each descriptor address is an IPA: stage 2 first, then the read.
      if (!this.#s2(p, cfg, w.descAddrs[k]!, PROT_READ, CLASS_TT, true)) return;
      this.#acc += this.#cWalk;
      this.stats.walkReads++;
    }
    if (!w.ok) {
      this.#fault(p, F_TRANSLATION, false, CLASS_IN, 0, cfg, cd);
      return;
    }
    if ((w.prot & need) !== need) {
      this.#fault(p, F_PERMISSION, false, CLASS_IN, 0, cfg, cd);
      return;
    }
    const s1pa = w.pa, s1prot = w.prot, s1size = w.pageSize;
    if (!this.#s2(p, cfg, s1pa, need, CLASS_IN, true)) return;
    const size = Math.min(s1size, this.#s2size);
    const inBase = Math.floor(iova / size) * size;
    const pa = this.#s2pa;
    const prot = s1prot & this.#s2prot;
    this.iotlb.insert(
      cfg.vmid,
      cd.asid,
      TLB_KIND_NESTED,
      size,
      inBase,
      pa - (iova - inBase),
      prot,
    );
    p.pa = pa;
    p.prot = prot;
    p.pageSize = size;
  }
}

const S1_KINDS = (1 << TLB_KIND_S1) | (1 << TLB_KIND_NESTED);

/** CMD_SYNC, appended by {@linkcode Smmu.submitBlocking}. */
const SYNC: Command = { opcode: CMD_SYNC };

/** The PASID a CMD_ATC_INV targets at the endpoint (-1 = every PASID). */
function atcSsid(cmd: CommandFields): number {
  return cmd.SSV && !cmd.G ? cmd.SSID : -1;
}

/** An {@linkcode AtsResult} the SMMU fills in place. */
type MutableAtsResult = { -readonly [K in keyof AtsResult]: AtsResult[K] };

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

function atsUnsupported(eventId: number): AtsResult {
  return {
    ok: false,
    pa: -1,
    pageSize: 0,
    read: false,
    write: false,
    unsupported: true,
    eventId,
  };
}
