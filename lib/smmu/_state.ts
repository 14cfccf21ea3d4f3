/**
 * The SMMU's shared mutable state (QEMU's SMMUState / SMMUv3State): one
 * record the facade ({@linkcode Smmu}) builds and hands to each of its
 * units, the table walker (`_ptw.ts`), the stall and event unit
 * (`_stall.ts`) and the command-queue consumer (`_cmdq.ts`). Private to
 * lib/smmu.
 *
 * @module
 */
import type { Simulator } from "../sim/simulator.ts";
import type { WalkResult } from "../pgtable/mod.ts";
import type { TableMemory } from "./memory.ts";
import type { SmmuQueue } from "./queue.ts";
import type { SetAssocTlb } from "./tlb.ts";
import type { MutableEventRecord, SmmuEndpoint, Ste } from "./types.ts";
import type { Smmu, SmmuStats } from "./smmu.ts";
import type { S2Result, StreamCfg } from "./_ptw.ts";
import type { Pending, StallTable } from "./_stall.ts";
import type { SlotPool, TagStore, WalkCache } from "./_caches.ts";

/**
 * Everything the SMMU's units share. Built once per {@linkcode Smmu} (one
 * object literal, so one shape); the units read and write its fields
 * directly.
 */
export interface SmmuState {
  /** The simulator whose clock the SMMU runs on. */
  readonly sim: Simulator;
  /** Where table and CD-table addresses resolve. */
  readonly memory: TableMemory;
  /** The features the SMMU was built with. */
  readonly features: Smmu["features"];
  /** Counters (the facade's `stats`). */
  readonly stats: SmmuStats;
  /** The IOTLB. */
  readonly iotlb: SetAssocTlb;
  /** The event queue. */
  readonly evtq: SmmuQueue;
  /** The command queue. */
  readonly cmdq: SmmuQueue;

  /** `smmu.iotlbLookup` (ns). */
  readonly cIotlb: number;
  /** `smmu.walkRead` (ns). */
  readonly cWalk: number;
  /** `smmu.cfgFetch` (ns). */
  readonly cCfg: number;
  /** `smmu.eventWrite` (ns). */
  readonly cEvent: number;
  /** `smmu.cmdIssue` (ns). */
  readonly cIssue: number;
  /** `smmu.cmdProcess` (ns). */
  readonly cProcess: number;
  /** `smmu.cmdSync` (ns). */
  readonly cSync: number;
  /** `smmu.tlbiPerEntry` (ns). */
  readonly cTlbiEntry: number;
  /** `smmu.resumeRetry` (ns). */
  readonly cResume: number;
  /** 2^OAS: output addresses at or above fault with F_ADDR_SIZE. */
  readonly oasLimit: number;

  /** The stream table in memory, by StreamID. */
  readonly streamTable: (Ste | undefined)[];
  /** The configuration cache: validated STEs (with their CDs), by StreamID. */
  readonly steCache: (StreamCfg | undefined)[];
  /**
   * The configuration cache's tag store: which (StreamID, SubstreamID)
   * entries `steCache` may hold (SubstreamID -1 for the STE), so the cache
   * is bounded (`SmmuOptions.configCacheEntries`).
   */
  readonly cfgTags: TagStore;
  /** `cfgLive` bound to this state (a way whose entry CMD_CFGI_* dropped is free). */
  readonly cfgLive: (i: number) => boolean;
  /** The table walk caches, per stage and level. */
  readonly walkCache: WalkCache;
  /** The TCU's translation slots (translations past an IOTLB miss). */
  readonly xlateSlots: SlotPool;
  /** The TCU's table walkers. */
  readonly ptwSlots: SlotPool;
  /** PCIe endpoints by Requester ID (PRG responses, ATC invalidations). */
  readonly endpoints: Map<number, SmmuEndpoint>;
  /** Free in-flight transaction records. */
  readonly pool: Pending[];
  /** The stalled transactions by STAG. */
  readonly stalled: StallTable;
  /** Stalled transactions whose event record waits for event queue space. */
  readonly stallBacklog: Pending[];
  /** The next STAG to try. */
  nextStag: number;
  /**
   * Configuration and TLB invalidations executed so far. A translation is
   * looked up at once but delivered after its latency; one delivered after
   * an invalidation that ran meanwhile is looked up again, as the real
   * invalidation would not complete while a transaction still used what it
   * invalidates.
   */
  invalGen: number;
  /**
   * {@linkcode Smmu.translateCached}'s stream memo: the StreamID of the
   * last stream whose cached configuration (STE, CD) let a hit through,
   * or -1 when there is none. Whatever changes the configuration cache (a
   * fill or eviction in `cfgTags`, every CMD_CFGI_*) empties it
   * (`dropStreamMemo` in `_ptw.ts`), so
   * while it is set, `memoSsid`, `memoVmid`, `memoAsid` and `memoCdHit`
   * are what resolving that stream from the cache would give. It never
   * changes what is simulated, only how fast a hit is found.
   */
  memoSid: number;
  /** The memo's SubstreamID (-1: none). */
  memoSsid: number;
  /** The memo's IOTLB tag A (VMID). */
  memoVmid: number;
  /** The memo's IOTLB tag B (ASID, -1 without stage 1; -2, matching no entry, when the memo is empty). */
  memoAsid: number;
  /** 1 when the memo's stream has stage 1 (a hit also counts a CD hit), else 0. */
  memoCdHit: number;
  /** SMMU_GERROR: error flags the SMMU toggles (IHI0070 7.5). */
  gerror: number;
  /** SMMU_GERRORN: the driver's acknowledgements; an error is active while a bit differs from GERROR. */
  gerrorn: number;
  /** SMMU_CMDQ_CONS.ERR: the code of the last command queue error (CERROR_*). */
  cmdqErr: number;
  /** Called when a global error is activated (the GERROR interrupt). */
  onGerrorIrq: (() => void) | undefined;
  /** Called whenever a record is written to the event queue. */
  onEvtqIrq: (() => void) | undefined;
  /** Called whenever a record is written to the PRI queue. */
  onPriqIrq: (() => void) | undefined;

  /** Walker scratch: simulated time of the translation in progress (ns). */
  acc: number;
  /** Walker scratch: the stage-1 walk. */
  readonly w1: WalkResult;
  /** Walker scratch: the stage-2 walk. */
  readonly w2: WalkResult;
  /** Walker scratch: the result of a stage-2 translation. */
  readonly s2r: S2Result;
  /** The event record the event writer encodes from (reused). */
  readonly evScratch: MutableEventRecord;
}
