/**
 * The Arm SMMUv3 hardware model: stream table, CD tables, configuration
 * cache, IOTLB, stage-1/stage-2/nested table walks, the stall model, the
 * event, PRI and command queues, ATS translation requests and the PRI path.
 *
 * This file is the facade (the programming interface and the device side).
 * The units behind it share one `SmmuState` record, as the units of QEMU's
 * smmuv3 model share SMMUState: `_ptw.ts` (STE/CD fetch and the table
 * walks, QEMU's smmu-common), `_stall.ts` (transactions, the stall table,
 * fault delivery and the event writer) and `_cmdq.ts` (the command-queue
 * consumer).
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import type { Simulator } from "../sim/simulator.ts";
import { PROT_READ, PROT_WRITE } from "../sim/units.ts";
import { newWalkResult } from "../pgtable/mod.ts";
import { HOST_PA_SPACE, type TableMemory } from "./memory.ts";
import { SmmuQueue } from "./queue.ts";
import { SetAssocTlb } from "./tlb.ts";
import {
  type Cd,
  type Command,
  COMMAND_WORDS,
  decodeEvent,
  decodeEventInto,
  decodePriEntry,
  decodePriEntryInto,
  encodePriEntry,
  EVENT_WORDS,
  type EventRecord,
  isStopMarker,
  type MutableEventRecord,
  type MutablePriEntry,
  newEventRecord,
  PRG_RESP_FAILURE,
  PRG_RESP_SUCCESS,
  PRI_WORDS,
  type PriEntry,
  S1DSS_SSID0,
  type SmmuEndpoint,
  type Ste,
} from "./types.ts";
import type { SmmuState } from "./_state.ts";
import { steReadable, type StreamCfg, xlate } from "./_ptw.ts";
import {
  drainStallBacklog,
  runTxn,
  StallTable,
  takePending,
} from "./_stall.ts";
import { CmdqConsumer, DEFAULT_ATC_INV_TIMEOUT_NS } from "./_cmdq.ts";
import {
  GEM5_CACHE_WAYS,
  GEM5_CONFIG_ENTRIES,
  GEM5_WALK_CACHE,
  SlotPool,
  TagStore,
  WalkCache,
  type WalkLevelSizes,
} from "./_caches.ts";
import { cfgLive } from "./_ptw.ts";

export {
  DEFAULT_ATC_INV_TIMEOUT_NS,
  GEM5_CACHE_WAYS,
  GEM5_CONFIG_ENTRIES,
  GEM5_WALK_CACHE,
  type WalkLevelSizes,
};

/**
 * Default SMMU_IDR5.STALL_MAX: 64, the value a shipping MMU-600/700-class
 * TCU advertises (Intel Agilex 5 HPS, SMMU_IDR5 reset value 0x40). The
 * architecture leaves it IMPLEMENTATION DEFINED; real TBUs can buffer tens
 * to hundreds of stalled transactions, far fewer than the 2^16 STAGs.
 */
export const DEFAULT_STALL_MAX = 64;

/**
 * SMMU_IDR0.HTTU as far as the model goes: "none" (0b00, no hardware
 * update of translation table flags) or "access" (the access flag only,
 * IHI0070 3.13; dirty-state update, 0b10, is not modelled).
 */
export type Httu = "none" | "access";

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
  /**
   * SMMU_IDR5.STALL_MAX: the most transactions stalled at once (1..65535,
   * the field is 16 bits). A stall-eligible fault that finds this many
   * stalled is terminated with an abort and recorded with Stall = 0
   * (counted in {@linkcode SmmuStats.stallMaxTerminations}). Default
   * {@linkcode DEFAULT_STALL_MAX} (64).
   */
  stallMax?: number;
  /**
   * Hardware translation table update (SMMU_IDR0.HTTU): with "access", a
   * walk that finds a leaf with AF = 0 sets AF (a descriptor write, one
   * more `smmu.walkRead`) where CD.HA (stage 1) or STE.S2HA (stage 2)
   * asks for it; otherwise it faults with F_ACCESS. Default "access"
   * (MMU-600/700-class SMMUs implement HTTU). io-pgtable-arm sets AF on
   * every map, so host-managed tables never fault either way.
   */
  httu?: Httu;
  /** ATS supported (SMMU_IDR0.ATS). Default true. */
  ats?: boolean;
  /** PRI supported (SMMU_IDR0.PRI). Default true. */
  pri?: boolean;
  /** Address translation operations (SMMU_IDR0.ATOS, IHI0070 chapter 9): {@linkcode Smmu.atos}. Default true. */
  atos?: boolean;
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
  /**
   * Configuration cache entries (STEs and CDs, each one entry), 4-way set
   * associative with round-robin replacement; 0 caches nothing. Default 64,
   * gem5's SMMUv3 `cfg_entries` (with `cfg_assoc` 4, `cfg_policy` "rr").
   */
  configCacheEntries?: number;
  /**
   * Walk-cache entries per level (L0, L1, L2) for stage 1, 4-way with
   * round-robin replacement; 0 disables a level. Default [4, 28, 348],
   * gem5's `walk_S1L0`, `walk_S1L1`, `walk_S1L2`.
   */
  walkCacheS1?: WalkLevelSizes;
  /** Walk-cache entries per level for stage 2. Default [4, 28, 92], gem5's `walk_S2L0`..`walk_S2L2`. */
  walkCacheS2?: WalkLevelSizes;
  /**
   * Translations the TCU works on at once past an IOTLB miss (its
   * translation slots, 1..4096); more wait. Default 64, gem5's SMMUv3
   * `xlate_slots`.
   */
  xlateSlots?: number;
  /** Table walks in progress at once (the walkers, 1..4096). Default 16, gem5's `ptw_slots`. */
  ptwSlots?: number;
  /**
   * The ATS Invalidation Completion timeout (ns, at most 1e12): a
   * CMD_ATC_INV whose endpoint has not answered within it has failed, and
   * the CMD_SYNC waiting for it stops the command queue with
   * CERROR_ATC_INV_SYNC (IHI0070 3.9.1.4, 7.1). Default
   * {@linkcode DEFAULT_ATC_INV_TIMEOUT_NS} (one minute, PCIe ATS).
   */
  atcInvTimeoutNs?: number;
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
  /** IOTLB hits on an entry whose walk was still in progress: they waited for it (hit under miss). */
  iotlbHitWaits: number;
  /** IOTLB hits for stage-2 translations of nested descriptor fetches. */
  s2WalkCacheHits: number;
  /** Descriptor reads by the table walker. */
  walkReads: number;
  /** Access flags the walker set in leaf descriptors (HTTU with CD.HA / STE.S2HA). */
  afUpdates: number;
  /** Configuration cache hits (STE). */
  cfgHits: number;
  /** Configuration cache misses (STE): the STE was fetched. */
  cfgMisses: number;
  /** Configuration cache hits (CD). */
  cdHits: number;
  /** Configuration cache misses (CD): the CD was fetched. */
  cdMisses: number;
  /** Configuration cache entries (STE or CD) evicted to make room. */
  cfgEvictions: number;
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
  /**
   * Stall-eligible faults terminated with an abort instead of stalling,
   * because SMMU_IDR5.STALL_MAX transactions were already stalled (their
   * records have Stall = 0; not counted in `stalls` or `stallsTerminated`).
   */
  stallMaxTerminations: number;
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
  /** Command queue errors raised (SMMU_CMDQ_CONS.ERR set, consumption stopped). */
  cmdqErrors: number;
  /** CMD_ATC_INVs whose ATS Invalidation Completion did not arrive within `atcInvTimeoutNs`. */
  atcInvTimeouts: number;
  /** ATOS translations run ({@linkcode Smmu.atos}). */
  atosRequests: number;
}

/**
 * The result of an ATOS translation, as SMMU_GATOS_PAR reports it
 * (IHI0070 6.3, 9.1.4).
 */
export interface AtosResult {
  /** FAULT: the translation failed. */
  readonly fault: boolean;
  /** Output address of the input (when `fault` is false), else -1. */
  readonly pa: number;
  /** FAULTCODE: the event ID of the fault (0 without a fault). */
  readonly faultCode: number;
  /**
   * REASON: 0b00 stage 1 (or not attributable to a stage), 0b01 stage 2
   * during the CD fetch, 0b10 stage 2 during the stage-1 table walk, 0b11
   * stage 2 of the input address (the stage-1 output).
   */
  readonly reason: 0 | 1 | 2 | 3;
  /** FADDR: the page of the IPA that faulted at stage 2 (REASON != 0), else -1. */
  readonly faddr: number;
  /** Simulated time the walk took (ns): the driver spins on GATOS_CTRL.RUN meanwhile. */
  readonly ns: number;
}

/** Hits and misses of one cache. */
export interface CacheCounts {
  /** Lookups that hit. */
  readonly hits: number;
  /** Lookups that missed. */
  readonly misses: number;
}

/**
 * The SMMU's timing structures at a glance ({@linkcode Smmu.timingStats}):
 * each walk cache's lookups, and the waits for the TCU's translation slots
 * and table walkers.
 */
export interface SmmuTimingStats {
  /** Stage-1 walk caches, levels 0, 1, 2. */
  readonly walkS1: readonly [CacheCounts, CacheCounts, CacheCounts];
  /** Stage-2 walk caches, levels 0, 1, 2. */
  readonly walkS2: readonly [CacheCounts, CacheCounts, CacheCounts];
  /** Translations that waited for a translation slot. */
  readonly xlateSlotWaits: number;
  /** Total ns they waited. */
  readonly xlateSlotWaitNs: number;
  /** Table walks that waited for a walker. */
  readonly ptwSlotWaits: number;
  /** Total ns they waited. */
  readonly ptwSlotWaitNs: number;
}

/**
 * An Arm SMMUv3 on the simulator's clock.
 *
 * **Device side.** {@linkcode Smmu.translate} takes a transaction through
 * the configuration cache (STE, CD), the IOTLB and, on a miss, the table
 * walk (stage 1, stage 2, or nested: each stage-1 descriptor address is an
 * IPA translated through stage 2 before it is read). Time passes on the
 * simulator: `smmu.iotlbLookup` per lookup, `smmu.cfgFetch` per STE/CD fetch,
 * `smmu.walkRead` per descriptor read (and per access flag update). Faults follow spec 5.5: the A/R/S
 * controls (CD.A/R/S at stage 1, STE.S2R/S2S at stage 2) apply to
 * F_TRANSLATION, F_ADDR_SIZE, F_ACCESS and F_PERMISSION; other faults abort
 * and are recorded. A stalled transaction writes a record with Stall = 1 and
 * a STAG (never lost: it waits for space in a full event queue) and calls
 * back only after CMD_RESUME or CMD_STALL_TERM. At most STALL_MAX
 * (`stallMax`) transactions are stalled at once; a stall-eligible fault
 * beyond that is terminated with an abort and recorded with Stall = 0
 * (spec 3.12, 6.3.6). IOTLB and configuration
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
 * **Timing structure** (defaults from gem5's SMMUv3 model): the
 * configuration cache holds `configCacheEntries` STEs and CDs (64, 4-way,
 * round robin) and caches only valid configurations; CMD_CFGI_* drop
 * entries (IHI0070 4.3). Per-level walk caches for stage 1 and stage 2
 * (`walkCacheS1`, `walkCacheS2`) let a walk start below the levels they
 * hold; they change the walk's time only, never its result, and every TLBI
 * drops the entries it covers. A translation that misses the IOTLB holds one
 * of `xlateSlots` translation slots (64) until its walk ends, and the walk
 * one of `ptwSlots` walkers (16): misses contend, first come, first served
 * ({@linkcode Smmu.timingStats}). The stage-2 translations of nested
 * descriptor fetches are also cached in the IOTLB as stage-2 entries.
 * An IOTLB entry answers only from the end of the walk that filled it: a hit
 * on it before then waits for that walk (hit under miss). Approximations: a
 * translation's state changes (IOTLB fill) happen when it is looked up, its
 * answer arrives after its queueing and walk time; IOTLB hits do not queue
 * for slots.
 * Model choices: STAGs are unique per SMMU; an automatic PRG response during PRI overflow
 * follows IHI0070 8.1 with SMMU_IDR3.PPS = 0 and STE.PPAR = 1: Success
 * without a PASID for a request without one, Success with the PASID when
 * the STE is valid, Failure (no PASID) when it cannot be read; without PRI
 * (SMMU_IDR0.PRI = 0) every Page Request is answered Response Failure
 * (8.2). SMMU_IDR0.TERM_MODEL = 0: CMD_RESUME's Abort parameter chooses
 * abort or RAZ/WI. Command queue errors (IHI0070 7.1): CERROR_ILL for
 * illegal commands, CERROR_ABT for an injected abort on command fetch
 * ({@linkcode Smmu.injectCmdFetchAborts}), CERROR_ATC_INV_SYNC at a
 * CMD_SYNC behind a CMD_ATC_INV the endpoint did not complete within
 * `atcInvTimeoutNs` (3.9.1.4; the late completion is discarded, and the
 * failure is reported once). No external aborts on event or PRI queue
 * writes are modelled. The access flag (3.13): a leaf with AF = 0 gives
 * F_ACCESS unless HTTU (`httu`) and CD.HA (stage 1) or STE.S2HA (stage 2)
 * let the walker set it; an ATS Translation Request sets it the same way
 * (3.9). io-pgtable-arm sets AF on every map, so only tables whose owner
 * clears AF (`IoPgtable.setAccessFlag`, a guest OS's what-if) fault;
 * dirty-state update (HTTU 0b10, CD.HD) is not modelled. A walk reports
 * one fault, in the Arm ARM's order: F_TRANSLATION, F_ADDR_SIZE, F_ACCESS,
 * F_PERMISSION, stage 1's before the stage-2 translation of its output.
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
    stallMax: number;
    httu: Httu;
    ats: boolean;
    pri: boolean;
    atos: boolean;
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
    iotlbHitWaits: 0,
    s2WalkCacheHits: 0,
    walkReads: 0,
    afUpdates: 0,
    cfgHits: 0,
    cfgMisses: 0,
    cdHits: 0,
    cdMisses: 0,
    cfgEvictions: 0,
    cfgFetches: 0,
    faults: 0,
    stalls: 0,
    resumes: 0,
    stallsTerminated: 0,
    stallMaxTerminations: 0,
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
    cmdqErrors: 0,
    atcInvTimeouts: 0,
    atosRequests: 0,
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
  get onEvtqIrq(): (() => void) | undefined {
    return this.#s.onEvtqIrq;
  }
  set onEvtqIrq(fn: (() => void) | undefined) {
    this.#s.onEvtqIrq = fn;
  }
  /** Called when a global error is activated (the GERROR interrupt, IHI0070 7.5.1). */
  get onGerrorIrq(): (() => void) | undefined {
    return this.#s.onGerrorIrq;
  }
  set onGerrorIrq(fn: (() => void) | undefined) {
    this.#s.onGerrorIrq = fn;
  }
  /** Called whenever a record is written to the PRI queue. */
  get onPriqIrq(): (() => void) | undefined {
    return this.#s.onPriqIrq;
  }
  set onPriqIrq(fn: (() => void) | undefined) {
    this.#s.onPriqIrq = fn;
  }

  /** The state the units share. */
  readonly #s: SmmuState;
  /** The state's STE cache (the same array), one indirection fewer on the hit path. */
  readonly #steCache: (StreamCfg | undefined)[];
  /** The command-queue consumer. */
  readonly #cq: CmdqConsumer;

  /**
   * Creates an SMMU with an empty stream table (every STE invalid).
   *
   * @throws {IopfLabError} EINVAL for out-of-range sizes
   */
  constructor(sim: Simulator, options: SmmuOptions) {
    const sidBits = options.sidBits ?? 16;
    const ssidBits = options.ssidBits ?? 20;
    const oasBits = options.oasBits ?? 48;
    const stallMax = options.stallMax ?? DEFAULT_STALL_MAX;
    const cfgEntries = options.configCacheEntries ?? GEM5_CONFIG_ENTRIES;
    const xlateSlots = options.xlateSlots ?? 64;
    const ptwSlots = options.ptwSlots ?? 16;
    const wc1 = options.walkCacheS1 ?? GEM5_WALK_CACHE.s1;
    const wc2 = options.walkCacheS2 ?? GEM5_WALK_CACHE.s2;
    for (
      const [name, v, lo, hi] of [
        ["sidBits", sidBits, 0, 20],
        ["ssidBits", ssidBits, 0, 20],
        ["oasBits", oasBits, 32, 52],
        ["stallMax", stallMax, 1, 0xffff],
        ["configCacheEntries", cfgEntries, 0, 2 ** 20],
        ["xlateSlots", xlateSlots, 1, 4096],
        ["ptwSlots", ptwSlots, 1, 4096],
        ["walkCacheS1[0]", wc1[0], 0, 2 ** 20],
        ["walkCacheS1[1]", wc1[1], 0, 2 ** 20],
        ["walkCacheS1[2]", wc1[2], 0, 2 ** 20],
        ["walkCacheS2[0]", wc2[0], 0, 2 ** 20],
        ["walkCacheS2[1]", wc2[1], 0, 2 ** 20],
        ["walkCacheS2[2]", wc2[2], 0, 2 ** 20],
      ] as const
    ) {
      if (!Number.isInteger(v) || v < lo || v > hi) {
        throw new IopfLabError(
          "EINVAL",
          `Cannot create SMMU: ${name} must be a whole number in ${lo}..${hi}, got ${v}`,
        );
      }
    }
    const httu = options.httu ?? "access";
    if (httu !== "none" && httu !== "access") {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create SMMU: httu must be "none" or "access", got ${
          String(httu)
        }`,
      );
    }
    this.features = Object.freeze({
      stallModel: options.stallModel ?? "supported",
      stallMax,
      httu,
      ats: options.ats ?? true,
      pri: options.pri ?? true,
      atos: options.atos ?? true,
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
    const c = options.costs;
    const state: SmmuState = {
      sim,
      memory: options.memory,
      features: this.features,
      stats: this.stats,
      iotlb: this.iotlb,
      evtq: this.evtq,
      cmdq: this.cmdq,
      cIotlb: c["smmu.iotlbLookup"],
      cWalk: c["smmu.walkRead"],
      cCfg: c["smmu.cfgFetch"],
      cEvent: c["smmu.eventWrite"],
      cIssue: c["smmu.cmdIssue"],
      cProcess: c["smmu.cmdProcess"],
      cSync: c["smmu.cmdSync"],
      cTlbiEntry: c["smmu.tlbiPerEntry"],
      cResume: c["smmu.resumeRetry"],
      oasLimit: 2 ** oasBits,
      streamTable: new Array(2 ** sidBits).fill(undefined),
      steCache: new Array(2 ** sidBits).fill(undefined),
      cfgTags: new TagStore(cfgEntries, GEM5_CACHE_WAYS),
      cfgLive: (i: number) => cfgLive(state, i),
      walkCache: new WalkCache(wc1, wc2, GEM5_CACHE_WAYS),
      xlateSlots: new SlotPool(xlateSlots),
      ptwSlots: new SlotPool(ptwSlots),
      endpoints: new Map(),
      pool: [],
      stalled: new StallTable(),
      stallBacklog: [],
      nextStag: 0,
      invalGen: 0,
      memoSid: -1,
      memoSsid: -1,
      memoVmid: 0,
      memoAsid: -2,
      memoCdHit: 0,
      gerror: 0,
      gerrorn: 0,
      cmdqErr: 0,
      onGerrorIrq: undefined,
      onEvtqIrq: undefined,
      onPriqIrq: undefined,
      acc: 0,
      w1: newWalkResult(),
      w2: newWalkResult(),
      s2r: { pa: 0, prot: 0, size: 0 },
      evScratch: newEventRecord(),
    };
    this.#s = state;
    this.#cq = new CmdqConsumer(
      this.#s,
      options.atcInvTimeoutNs === undefined
        ? {}
        : { atcInvTimeoutNs: options.atcInvTimeoutNs },
    );
    this.#steCache = this.#s.steCache;
  }

  // -------------------------------------------------------------------------
  // Configuration memory (driver side)

  /** The STE in the stream table at `sid` (memory, not the cached copy). */
  ste(sid: number): Ste | undefined {
    return this.#s.streamTable[sid];
  }

  /**
   * Writes the STE at `sid` in memory. The SMMU keeps using a cached copy
   * until CMD_CFGI_STE (or CFGI_ALL).
   *
   * @throws {IopfLabError} EINVAL when `sid` is outside the stream table
   */
  writeSte(sid: number, ste: Ste): void {
    this.#checkSid(sid, "write the STE of");
    this.#s.streamTable[sid] = ste;
  }

  /**
   * Writes CD `ssid` (0 for the CD used without a SubstreamID) of the CD
   * table at `ptr` in address space `space` (0 = host PA), creating the
   * table. The SMMU keeps using a cached copy until CMD_CFGI_CD(_ALL).
   */
  writeCd(ptr: number, ssid: number, cd: Cd, space = HOST_PA_SPACE): void {
    let table = this.#s.memory.resolveCdTable(space, ptr);
    if (table === undefined) {
      table = [];
      this.#s.memory.registerCdTable(space, ptr, table);
    }
    table[ssid] = cd;
  }

  /** CD `ssid` of the CD table at `ptr` in `space` (memory, not the cache). */
  cd(ptr: number, ssid: number, space = HOST_PA_SPACE): Cd | undefined {
    return this.#s.memory.resolveCdTable(space, ptr)?.[ssid];
  }

  /** Attaches the PCIe endpoint with Requester ID `sid` (PRG responses, ATC invalidations). */
  attachEndpoint(sid: number, ep: SmmuEndpoint): void {
    this.#checkSid(sid, "attach an endpoint to");
    this.#s.endpoints.set(sid, ep);
  }

  /** Detaches the endpoint at `sid`. */
  detachEndpoint(sid: number): void {
    this.#s.endpoints.delete(sid);
  }

  #checkSid(sid: number, what: string): void {
    if (
      !Number.isInteger(sid) || sid < 0 || sid >= this.#s.streamTable.length
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
    const p = takePending(this.#s);
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
    runTxn(this.#s, p);
  }

  /**
   * The hit fast path for masters' hot loops: when `txn` hits the
   * configuration cache and the IOTLB with the permission it needs, counts
   * the hit and returns the output address, which {@linkcode translate}
   * would deliver after {@linkcode iotlbLookupNs}. Otherwise returns -1 and
   * changes nothing: the caller then uses {@linkcode translate}.
   *
   * The last stream it resolved (its cached STE and CD, as VMID and ASID)
   * is kept in a memo that every configuration-cache fill or eviction and
   * every CMD_CFGI_* empties, so a run of hits on one stream reads the
   * configuration cache once; the IOTLB is looked up on every call
   * ({@linkcode SetAssocTlb.hit}). Neither changes what is simulated.
   */
  translateCached(txn: Txn): number {
    const s = this.#s;
    const ssid = txn.ssid ?? -1;
    if (
      (txn.sid !== s.memoSid || ssid !== s.memoSsid) &&
      !this.#memoStream(txn.sid, ssid)
    ) return -1;
    // An IOTLB hit with the permission needed whose walk is done (one
    // still in progress: translate() waits for it).
    const pa = this.iotlb.hit(
      s.memoVmid,
      s.memoAsid,
      txn.iova,
      txn.write ? PROT_WRITE : PROT_READ,
      s.sim.now + s.cIotlb,
    );
    if (pa < 0) return -1;
    const st = this.stats;
    st.translations++;
    st.cfgHits++;
    st.cdHits += s.memoCdHit;
    st.iotlbHits++;
    return pa;
  }

  /**
   * Resolves the configuration of (`sid`, `ssid`) from the configuration
   * cache as {@linkcode translateCached} needs it (cached STE and CD, no
   * S1DSS special case) into the stream memo (`SmmuState.memoSid` ...);
   * false (memo unchanged) when the fast path does not apply.
   */
  #memoStream(sid: number, ssid: number): boolean {
    const steCache = this.#steCache;
    const cfg = sid >= 0 && sid < steCache.length ? steCache[sid] : undefined;
    if (cfg === undefined || (!cfg.s1 && !cfg.s2)) return false;
    let b = -1, cdHit = 0;
    if (cfg.s1) {
      if (ssid >= 0 && (cfg.cdMax === 0 || ssid >= 2 ** cfg.cdMax)) {
        return false;
      }
      // S1DSS other than "substream 0", or SubstreamID 0 under it: slow path.
      if (
        cfg.cdMax !== 0 &&
        (ssid < 0 ? cfg.s1dss !== S1DSS_SSID0 : ssid === 0 &&
          cfg.s1dss === S1DSS_SSID0)
      ) return false;
      const cd = cfg.cds[ssid >= 0 ? ssid : 0];
      if (cd === undefined) return false;
      b = cd.asid;
      cdHit = 1;
    } else if (ssid >= 0) {
      return false;
    }
    const s = this.#s;
    s.memoSid = sid;
    s.memoSsid = ssid;
    s.memoVmid = cfg.vmid;
    s.memoAsid = b;
    s.memoCdHit = cdHit;
    return true;
  }

  /** The walk caches' hits and misses and the waits for translation slots and walkers (a new record). */
  get timingStats(): SmmuTimingStats {
    const s = this.#s;
    const c = (t: TagStore): CacheCounts => ({
      hits: t.hits,
      misses: t.misses,
    });
    const w = s.walkCache;
    return {
      walkS1: [c(w.s1[0]), c(w.s1[1]), c(w.s1[2])],
      walkS2: [c(w.s2[0]), c(w.s2[1]), c(w.s2[2])],
      xlateSlotWaits: s.xlateSlots.waits,
      xlateSlotWaitNs: s.xlateSlots.waitNs,
      ptwSlotWaits: s.ptwSlots.waits,
      ptwSlotWaitNs: s.ptwSlots.waitNs,
    };
  }

  /** Simulated time of an IOTLB lookup (`smmu.iotlbLookup`, ns): the latency of a hit. */
  get iotlbLookupNs(): number {
    return this.#s.cIotlb;
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
      this.#s.sim.after(0, () => cb(atsUnsupported(0)));
      return;
    }
    const p = takePending(this.#s);
    p.sid = req.sid;
    p.ssid = req.ssid ?? -1;
    p.iova = req.iova;
    p.write = req.write ?? false;
    p.exec = false;
    p.priv = false;
    p.ats = true;
    p.atsCb = cb;
    p.gen = this.#s.invalGen;
    const cost = xlate(this.#s, p);
    p.detectedAt = this.#s.sim.now + cost;
    this.#s.sim.after(cost, p.atsDone);
  }

  /**
   * A Page Request (or Stop Marker) arrives from an endpoint. With space in
   * the PRI queue and no overflow condition it is written (16 bytes) and
   * `onPriqIrq` is called. Otherwise it is discarded and the overflow
   * condition entered (spec 8.1): a request with LAST = 1 is answered at
   * once with Success (Failure when it has a PASID and the STE cannot be
   * read), LAST = 0 is dropped silently, and a Stop Marker is dropped
   * without response. Without PRI every request is answered Response
   * Failure (spec 8.2).
   */
  pageRequest(entry: PriEntry): void {
    this.stats.priRequests++;
    const q = this.priq;
    const ep = this.#s.endpoints.get(entry.StreamID);
    if (!this.features.pri) {
      // No PRI queue (SMMU_IDR0.PRI = 0, so PRIQEN is effectively 0):
      // "All incoming PPRs cause an automatic PRG Response having
      // ResponseCode == 0b1111 ('Response Failure')", without a PASID; no
      // response to Stop Markers (IHI0070 8.2).
      this.stats.priqDropped++;
      if (isStopMarker(entry)) return;
      this.stats.priAutoResponses++;
      ep?.prgResponse(-1, entry.PRGIndex, PRG_RESP_FAILURE);
      return;
    }
    if (q.overflowPending || q.isFull) {
      if (q.noteOverflow()) this.stats.priqOverflows++;
      this.stats.priqDropped++;
      if (isStopMarker(entry) || !entry.LAST) return;
      this.stats.priAutoResponses++;
      // IHI0070 8.1 (SMMU_IDR3.PPS = 0, STE.PPAR = 1): without a PASID the
      // response is Success, no PASID, whatever the STE; with a PASID,
      // Success with it when the STE is valid, else Failure without it.
      const readable = !entry.SSV || steReadable(this.#s, entry.StreamID);
      ep?.prgResponse(
        readable && entry.SSV ? entry.SubstreamID : -1,
        entry.PRGIndex,
        readable ? PRG_RESP_SUCCESS : PRG_RESP_FAILURE,
      );
      return;
    }
    encodePriEntry(entry, q.words, q.writeOffset);
    q.commit(this.#s.sim.now);
    this.#s.onPriqIrq?.();
  }

  /** STAGs of the transactions of `sid` stalled now. */
  stalledTags(sid: number): number[] {
    const out: number[] = [];
    for (const p of this.#s.stalled.list()) if (p.sid === sid) out.push(p.stag);
    return out;
  }

  /** Number of transactions stalled now. */
  get stalledCount(): number {
    return this.#s.stalled.size;
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
    drainStallBacklog(this.#s);
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
    drainStallBacklog(this.#s);
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
    this.#cq.submit(cmds, done);
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
   * @throws {IopfLabError} EINVAL for a command the queue would stop at
   * with CERROR_ILL (nothing applied): a CPU spinning on CMD_SYNC behind
   * it would wait for the GERROR handler, which this twin does not model
   */
  submitBlocking(cmds: readonly Command[]): number {
    return this.#cq.submitBlocking(cmds);
  }

  // -------------------------------------------------------------------------
  // Global errors (driver side)

  /** SMMU_GERROR (IHI0070 7.5): a bit toggles when its error activates. */
  get gerror(): number {
    return this.#s.gerror;
  }

  /** SMMU_GERRORN: the driver's acknowledgements. */
  get gerrorn(): number {
    return this.#s.gerrorn;
  }

  /**
   * Writes SMMU_GERRORN. Making CMDQ_ERR inactive (GERRORN.CMDQ_ERR ==
   * GERROR.CMDQ_ERR) restarts command consumption at SMMU_CMDQ_CONS.RD,
   * which fetches the command there again (IHI0070 7.1).
   */
  writeGerrorn(value: number): void {
    this.#cq.writeGerrorn(value);
  }

  /** SMMU_CMDQ_CONS.ERR: the CERROR_* code of the last command queue error. */
  get cmdqConsErr(): number {
    return this.#s.cmdqErr;
  }

  /** True while GERROR.CMDQ_ERR is active (no command is consumed). */
  get cmdqErrorActive(): boolean {
    return this.#cq.errorActive;
  }

  /**
   * Fault injection: the next `count` reads of commands from the command
   * queue's memory return an external abort (an interconnect or RAS error),
   * each stopping consumption with SMMU_CMDQ_CONS.ERR = CERROR_ABT and
   * GERROR.CMDQ_ERR; CONS.RD stays at the command, fetched again when the
   * driver acknowledges (IHI0070 7.1). Only the queue's consumer fetches
   * (not {@linkcode submitBlocking}'s twin). A command queue base outside
   * memory would abort every fetch, and arm_smmu_cmdq_skip_err would retry
   * forever; the injection is therefore bounded.
   *
   * @throws {IopfLabError} EINVAL unless `count` is a whole number in 1..2^20
   */
  injectCmdFetchAborts(count: number): void {
    this.#cq.injectFetchAborts(count);
  }

  /**
   * Rewrites the command at SMMU_CMDQ_CONS.RD in queue memory while
   * CMDQ_ERR is active (the driver replacing the erroneous command, as
   * arm_smmu_cmdq_skip_err does with a CMD_SYNC).
   *
   * @throws {IopfLabError} EBUSY when no command queue error is active
   */
  replaceCommandAtCons(cmd: Command): void {
    this.#cq.replaceAtCons(cmd);
  }

  // -------------------------------------------------------------------------
  // Address translation operations (driver side)

  /**
   * An ATOS translation (SMMU_GATOS_SID / ADDR / CTRL, IHI0070 chapter 9)
   * of `req.iova` for the stream and substream, type stage 1 and stage 2
   * (the STE's own configuration): the walk the hardware does for a
   * transaction, through the same caches, with the result SMMU_GATOS_PAR
   * gives. It never stalls and records no event; its lookups and walk
   * count in `stats` like a transaction's (IOTLB hits and misses, walk
   * reads). Software reads which stage lacks a page here instead of
   * walking tables itself.
   *
   * @throws {IopfLabError} ENODEV when SMMU_IDR0.ATOS = 0
   */
  atos(req: AtsRequest): AtosResult {
    if (!this.features.atos) {
      throw new IopfLabError(
        "ENODEV",
        "Cannot run an ATOS translation: the SMMU has no ATOS (SMMU_IDR0.ATOS = 0)",
      );
    }
    this.stats.atosRequests++;
    const s = this.#s;
    const p = takePending(s);
    p.sid = req.sid;
    p.ssid = req.ssid ?? -1;
    p.iova = req.iova;
    p.write = req.write ?? false;
    p.exec = false;
    p.priv = false;
    p.ats = false;
    p.gen = s.invalGen;
    const ns = xlate(s, p);
    const fault = p.status !== 0;
    const reason: 0 | 1 | 2 | 3 = !fault || !p.s2
      ? 0
      : p.cls === 0
      ? 1
      : p.cls === 1
      ? 2
      : 3;
    const r: AtosResult = {
      fault,
      pa: fault ? -1 : p.pa,
      faultCode: fault ? p.eventId : 0,
      reason,
      faddr: reason !== 0 ? p.ipa : -1,
      ns,
    };
    s.pool.push(p);
    return r;
  }
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
