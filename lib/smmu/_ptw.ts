/**
 * The SMMU's table walker (the smmu-common analogue): STE and CD fetch and
 * validation, the IOTLB lookup, and the stage-1, stage-2 and nested walks.
 * Functions over the shared {@linkcode SmmuState}; they fill the
 * transaction record and return the simulated time. Private to lib/smmu.
 *
 * @module
 */
import { PROT_READ, PROT_WRITE } from "../sim/units.ts";
import type { IoPgtable } from "../pgtable/mod.ts";
import { type CdTable, HOST_PA_SPACE } from "./memory.ts";
import { TLB_KIND_NESTED, TLB_KIND_S1, TLB_KIND_S2 } from "./tlb.ts";
import {
  C_BAD_CD,
  C_BAD_STE,
  C_BAD_STREAMID,
  C_BAD_SUBSTREAMID,
  type Cd,
  CLASS_CD,
  CLASS_IN,
  CLASS_TT,
  type EventClass,
  F_ACCESS,
  F_ADDR_SIZE,
  F_BAD_ATS_TREQ,
  F_CD_FETCH,
  F_PERMISSION,
  F_STREAM_DISABLED,
  F_TRANSLATION,
  F_WALK_EABT,
  isTranslationFault,
  S1DSS_SSID0,
  S1DSS_TERMINATE,
  type Ste,
  STE_CONFIG_ABORT,
  STE_CONFIG_BYPASS,
  STE_CONFIG_NESTED,
  STE_CONFIG_S1,
  STE_CONFIG_S2,
} from "./types.ts";
import type { SmmuState } from "./_state.ts";
import type { Pending } from "./_stall.ts";

/** `Pending.status`: translated. */
export const OK = 0;
/** `Pending.status`: faulted (event ID and controls set). */
export const FAULT = 1;
/** `Pending.status`: STE Config = abort (aborted without an event). */
export const SILENT_ABORT = 2;

/** A validated, cached STE. */
export interface StreamCfg {
  /** The STE. */
  readonly ste: Ste;
  /** STE.Config. */
  readonly config: number;
  /** STE.EATS. */
  readonly eats: number;
  /** Stage 1 enabled. */
  readonly s1: boolean;
  /** Stage 2 enabled. */
  readonly s2: boolean;
  /** S2VMID (0 without stage 2 unless the STE gives one). */
  readonly vmid: number;
  /** S2TTB. */
  readonly s2Ttb: number;
  /** The stage-2 table at S2TTB, once resolved. */
  s2Table: IoPgtable | undefined;
  /** STE.S2S. */
  readonly s2Stall: boolean;
  /** STE.S2R. */
  readonly s2Record: boolean;
  /** Effective STE.S2HA: stage-2 AF hardware update (SMMU_IDR0.HTTU != 0b00). */
  readonly s2ha: boolean;
  /** S1ContextPtr. */
  readonly cdPtr: number;
  /** S1CDMax. */
  readonly cdMax: number;
  /** S1STALLD. */
  readonly stalld: boolean;
  /** S1DSS (meaningful when `cdMax` != 0). */
  readonly s1dss: number;
  /** The cached CDs by SubstreamID. */
  cds: (CdCfg | undefined)[];
}

/** A validated, cached CD. */
export interface CdCfg {
  /** The CD. */
  readonly cd: Cd;
  /** CD.ASID. */
  readonly asid: number;
  /** The stage-1 table at TTB0. */
  readonly s1Table: IoPgtable;
  /** 2^(64 - T0SZ). */
  readonly inputLimit: number;
  /** CD.S. */
  readonly stall: boolean;
  /** CD.R. */
  readonly record: boolean;
  /** CD.A. */
  readonly abort: boolean;
  /** Effective CD.HA: stage-1 AF hardware update (SMMU_IDR0.HTTU != 0b00). */
  readonly ha: boolean;
}

/** The result of a stage-2 translation (a reused scratch record). */
export interface S2Result {
  /** Output address. */
  pa: number;
  /** Permissions. */
  prot: number;
  /** Size of the translation. */
  size: number;
}

const TWO48 = 2 ** 48;

/** True when the STE at `sid` is cached or would validate. */
export function steReadable(s: SmmuState, sid: number): boolean {
  if (!(sid >= 0 && sid < s.steCache.length)) return false;
  if (s.steCache[sid]) return true;
  return typeof fetchSte(s, sid) !== "number";
}

/** Validates the STE at `sid`: a config or an event ID. */
export function fetchSte(s: SmmuState, sid: number): StreamCfg | number {
  if (!(sid >= 0 && sid < s.streamTable.length)) return C_BAD_STREAMID;
  const ste = s.streamTable[sid];
  if (!ste || !ste.V) return C_BAD_STE;
  const f = s.features;
  let config: number = ste.Config;
  // STE.EATS is IGNORED, effectively 0, unless a stage translates
  // (IHI0070 5.2 STE.EATS; SteIllegal checks it only then): ATS on an abort
  // or bypass STE is an F_BAD_ATS_TREQ, never a C_BAD_STE.
  const translates = config >= STE_CONFIG_S1 && config <= STE_CONFIG_NESTED;
  const eats = translates ? ste.EATS ?? 0 : 0;
  if (eats !== 0 && !f.ats) return C_BAD_STE;
  if (eats === 2 && config !== STE_CONFIG_NESTED) return C_BAD_STE;
  let s1 = false, s2 = false;
  let vmid = 0, s2Ttb = 0, s2Stall = false, s2Record = false, s2ha = false;
  let cdPtr = 0, cdMax = 0, stalld = false, s1dss: number = S1DSS_SSID0;
  // Reserved Config values 0b001..0b011 behave as 0b000: abort, without
  // an event (IHI0070 5.2 STE.Config).
  const reserved = config >= 1 && config <= 3;
  if (reserved) config = STE_CONFIG_ABORT;
  else {switch (ste.Config) {
      case STE_CONFIG_ABORT:
      case STE_CONFIG_BYPASS:
        break;
      case STE_CONFIG_S1:
        s1 = true;
        vmid = ste.S2VMID ?? 0;
        cdPtr = ste.S1ContextPtr;
        cdMax = ste.S1CDMax;
        stalld = ste.S1STALLD;
        s1dss = ste.S1DSS ?? S1DSS_SSID0;
        break;
      case STE_CONFIG_S2:
        s2 = true;
        vmid = ste.S2VMID;
        s2Ttb = ste.S2TTB;
        s2Stall = ste.S2S;
        s2Record = ste.S2R;
        s2ha = ste.S2HA === true;
        break;
      case STE_CONFIG_NESTED:
        s1 = true;
        s2 = true;
        vmid = ste.S2VMID;
        s2Ttb = ste.S2TTB;
        s2Stall = ste.S2S;
        s2Record = ste.S2R;
        s2ha = ste.S2HA === true;
        cdPtr = ste.S1ContextPtr;
        cdMax = ste.S1CDMax;
        stalld = ste.S1STALLD;
        s1dss = ste.S1DSS ?? S1DSS_SSID0;
        break;
      default:
        return C_BAD_STE;
    }}
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
    // SteIllegal: S1STALLD = 1 where stalls are forced or unsupported.
    if (stalld && f.stallModel !== "supported") return C_BAD_STE;
    if (cdMax !== 0 && !(s1dss >= 0 && s1dss <= 2)) return C_BAD_STE;
    if (!Number.isInteger(cdMax) || cdMax < 0 || cdMax > f.ssidBits) {
      return C_BAD_STE;
    }
  }
  s.stats.cfgFetches++;
  return {
    ste,
    config,
    eats,
    s1,
    s2,
    vmid,
    s2Ttb,
    s2Table: s2 ? s.memory.resolve(HOST_PA_SPACE, s2Ttb) : undefined,
    s2Stall,
    s2Record,
    s2ha: s2ha && f.httu !== "none",
    cdPtr,
    cdMax,
    stalld,
    s1dss,
    cds: [],
  };
}

/**
 * Sets `p` up as a fault with the controls that apply to it and returns
 * false (so callers can `return fault(...)`).
 */
function fault(
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
export function xlate(s: SmmuState, p: Pending): number {
  s.acc = 0;
  p.status = OK;
  p.stall = false;
  p.record = false;
  p.abort = true;
  p.s2 = false;
  p.eventId = 0;
  p.stage = 0;
  const sid = p.sid;
  let cfg = sid >= 0 && sid < s.steCache.length ? s.steCache[sid] : undefined;
  if (cfg === undefined) {
    s.stats.cfgMisses++;
    s.acc += s.cCfg;
    const r = fetchSte(s, sid);
    if (typeof r === "number") {
      fault(p, r, false, CLASS_IN, 0, undefined, undefined);
      return s.acc;
    }
    cfg = r;
    cacheSte(s, sid, r);
  } else {
    s.stats.cfgHits++;
  }
  if (cfg.config === STE_CONFIG_ABORT) {
    p.status = SILENT_ABORT;
    p.eventId = 0;
    return s.acc;
  }
  if (p.ats && cfg.eats === 0) {
    fault(p, F_BAD_ATS_TREQ, false, CLASS_IN, 0, cfg, undefined);
    return s.acc;
  }
  const iova = p.iova;
  if (cfg.config === STE_CONFIG_BYPASS) {
    if (p.ssid >= 0) {
      fault(p, C_BAD_SUBSTREAMID, false, CLASS_IN, 0, cfg, undefined);
      return s.acc;
    }
    p.pa = iova;
    p.prot = PROT_READ | PROT_WRITE;
    p.pageSize = 4096;
    return s.acc;
  }
  let cd: CdCfg | undefined;
  let s1 = cfg.s1;
  if (s1 && p.ssid < 0 && cfg.cdMax !== 0 && cfg.s1dss !== S1DSS_SSID0) {
    // STE.S1DSS (IHI0070 5.2): a transaction without a SubstreamID.
    if (cfg.s1dss === S1DSS_TERMINATE) {
      fault(p, F_STREAM_DISABLED, false, CLASS_IN, 0, cfg, undefined);
      return s.acc;
    }
    s1 = false; // S1DSS_BYPASS (0b01): stage 1 bypassed
  }
  if (s1) {
    if (p.ssid >= 0 && (cfg.cdMax === 0 || p.ssid >= 2 ** cfg.cdMax)) {
      fault(p, C_BAD_SUBSTREAMID, false, CLASS_IN, 0, cfg, undefined);
      return s.acc;
    }
    if (p.ssid === 0 && cfg.s1dss === S1DSS_SSID0) {
      // IHI0070 7.3.7: SubstreamID 0 under S1DSS = 0b10 ("CD 0 is
      // Reserved for non-substream traffic") is F_STREAM_DISABLED.
      fault(p, F_STREAM_DISABLED, false, CLASS_IN, 0, cfg, undefined);
      return s.acc;
    }
    const idx = p.ssid >= 0 ? p.ssid : 0;
    cd = cfg.cds[idx];
    if (cd === undefined) {
      s.stats.cdMisses++;
      const r = fetchCd(s, p, cfg, idx);
      if (r === undefined) return s.acc;
      cd = r;
    } else {
      s.stats.cdHits++;
    }
  } else if (p.ssid >= 0) {
    fault(p, C_BAD_SUBSTREAMID, false, CLASS_IN, 0, cfg, undefined);
    return s.acc;
  }
  if (!s1 && !cfg.s2) {
    p.pa = iova; // stage 1 bypassed (S1DSS), no stage 2
    p.prot = PROT_READ | PROT_WRITE;
    p.pageSize = 4096;
    return s.acc;
  }
  const need = p.ats ? 0 : p.write ? PROT_WRITE : PROT_READ;
  const a = cfg.vmid, b = cd ? cd.asid : -1;
  const tlb = s.iotlb;
  s.acc += s.cIotlb;
  const i = tlb.lookup(a, b, iova);
  if (i >= 0 && (tlb.prot[i]! & need) === need) {
    s.stats.iotlbHits++;
    p.pa = tlb.translate(i, iova);
    p.prot = tlb.prot[i]!;
    if (p.ats) p.pageSize = 2 ** tlb.shift[i]!;
    // Hit under miss: the entry's own walk may still be in progress.
    const ready = tlb.readyAt(i) - s.sim.now;
    if (ready > s.acc) {
      s.stats.iotlbHitWaits++;
      s.acc = ready;
    }
    return s.acc;
  }
  s.stats.iotlbMisses++;
  const pre = s.acc;
  const inserts = tlb.inserts;
  if (!cfg.s2) walkS1(s, p, cfg, cd!, need);
  else if (!s1) walkS2Only(s, p, cfg, need);
  else walkNested(s, p, cfg, cd!, need);
  const t = tcuTime(s, pre, s.acc - pre);
  // The entry this walk filled answers only once the walk is done.
  if (tlb.inserts !== inserts) tlb.setReadyAt(tlb.lastInsert, s.sim.now + t);
  return t;
}

/**
 * The time of a translation that missed the IOTLB, `pre` ns of lookups
 * then `walk` ns of table walk, on the TCU's bounded resources: it holds
 * one of `xlateSlots` translation slots from its arrival until its walk
 * ends, and the walk itself holds one of `ptwSlots` table walkers (gem5's
 * SMMUv3 `xlate_slots` and `ptw_slots`), each taken first come, first
 * served. Returns the ns from now until the translation is done.
 */
function tcuTime(s: SmmuState, pre: number, walk: number): number {
  const now = s.sim.now;
  const ts = s.xlateSlots.start(now);
  const tw = s.ptwSlots.start(ts + pre);
  const end = tw + walk;
  s.ptwSlots.hold(end);
  s.xlateSlots.hold(end);
  return end - now;
}

/**
 * Puts the STE of `sid` into the configuration cache (`s.steCache`), whose
 * tag store `s.cfgTags` bounds it: a full set evicts its round-robin
 * victim, an STE (with the CDs cached under it) or a CD. Entries that
 * CMD_CFGI_* dropped from `s.steCache` count as free ways.
 */
export function cacheSte(s: SmmuState, sid: number, cfg: StreamCfg): void {
  const i = cfgWay(s, sid, -1);
  if (i >= 0) s.steCache[sid] = cfg;
}

/** Puts CD `idx` of `cfg` (the STE of `sid`) into the configuration cache. */
function cacheCd(
  s: SmmuState,
  sid: number,
  cfg: StreamCfg,
  idx: number,
  cd: CdCfg,
): void {
  const i = cfgWay(s, sid, idx);
  if (i >= 0) cfg.cds[idx] = cd;
}

/** The configuration cache way for (sid, ssid), its old entry evicted; -1 when the cache has no entries. */
function cfgWay(s: SmmuState, sid: number, ssid: number): number {
  const t = s.cfgTags;
  dropStreamMemo(s);
  const key = sid + ssid + 1;
  const i = t.victim(sid, ssid, key, s.cfgLive);
  if (i < 0) return -1;
  if (
    t.valid[i] === 1 && !(t.tagA[i] === sid && t.tagB[i] === ssid) &&
    s.cfgLive(i)
  ) {
    s.stats.cfgEvictions++;
    const vs = t.tagA[i]!, vb = t.tagB[i]!;
    if (vb < 0) s.steCache[vs] = undefined;
    else s.steCache[vs]!.cds[vb] = undefined;
  }
  t.set(i, sid, ssid, key);
  return i;
}

/**
 * Empties {@linkcode Smmu.translateCached}'s stream memo: called by
 * whatever changes the configuration cache. StreamID -1 matches no stream
 * the memo could hold; a transaction that gives SID -1 itself then looks
 * up ASID -2, which no IOTLB entry has, so it misses as it must.
 */
export function dropStreamMemo(s: SmmuState): void {
  s.memoSid = -1;
  s.memoAsid = -2;
}

/** True while configuration cache way `i` holds an entry CMD_CFGI_* has not dropped. */
export function cfgLive(s: SmmuState, i: number): boolean {
  const t = s.cfgTags;
  if (t.valid[i] === 0) return false;
  const cfg = s.steCache[t.tagA[i]!];
  if (cfg === undefined) return false;
  const b = t.tagB[i]!;
  return b < 0 || cfg.cds[b] !== undefined;
}

function fetchCd(
  s: SmmuState,
  p: Pending,
  cfg: StreamCfg,
  idx: number,
): CdCfg | undefined {
  s.acc += s.cCfg;
  const nested = cfg.s2;
  const space = nested ? cfg.vmid : HOST_PA_SPACE;
  if (nested) {
    // The CD table pointer is an IPA: translate the CD's address first.
    const cdAddr = cfg.cdPtr + idx * 64;
    if (!s2(s, p, cfg, cdAddr, PROT_READ, CLASS_CD, true, s.s2r)) {
      return undefined;
    }
  }
  const table: CdTable | undefined = s.memory.resolveCdTable(
    space,
    cfg.cdPtr,
  );
  if (table === undefined) {
    fault(p, F_CD_FETCH, false, CLASS_CD, 0, cfg, undefined);
    return undefined;
  }
  const cd = table[idx];
  const f = s.features;
  if (
    !cd || !cd.V || cd.TG0 !== 0 || !(cd.T0SZ >= 16 && cd.T0SZ <= 39) ||
    !Number.isInteger(cd.ASID) || cd.ASID < 0 || cd.ASID > 0xffff ||
    (cd.S && (f.stallModel === "unsupported" || cfg.stalld)) ||
    (!cd.S && f.stallModel === "forced")
  ) {
    fault(p, C_BAD_CD, false, CLASS_CD, 0, cfg, undefined);
    return undefined;
  }
  s.stats.cfgFetches++;
  const s1Table = s.memory.resolve(space, cd.TTB0);
  if (s1Table === undefined) {
    // Nothing to walk at TTB0: an external abort on the first descriptor
    // read (after its stage-2 translation when nested).
    if (
      nested && !s2(s, p, cfg, cd.TTB0, PROT_READ, CLASS_TT, true, s.s2r)
    ) {
      return undefined;
    }
    fault(p, F_WALK_EABT, false, CLASS_TT, 0, cfg, undefined);
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
    ha: cd.HA === true && f.httu !== "none",
  };
  cacheCd(s, p.sid, cfg, idx, r);
  return r;
}

/** Stage 1 only. */
function walkS1(
  s: SmmuState,
  p: Pending,
  cfg: StreamCfg,
  cd: CdCfg,
  need: number,
): void {
  const iova = p.iova;
  if (!(iova < cd.inputLimit)) {
    fault(p, F_TRANSLATION, false, CLASS_IN, 0, cfg, cd);
    return;
  }
  const w = cd.s1Table.walk(iova, s.w1);
  const reads = w.reads -
    s.walkCache.skipAndFill(1, cfg.vmid, cd.asid, iova, w.reads - 2);
  s.acc += reads * s.cWalk;
  s.stats.walkReads += reads;
  if (!w.ok) {
    fault(p, F_TRANSLATION, false, CLASS_IN, 0, cfg, cd);
    return;
  }
  // Priority, as the Arm ARM's walk: F_TRANSLATION (above), then an
  // output address beyond OAS (F_ADDR_SIZE), then the access flag
  // (F_ACCESS), then permission; a translation that faults with any but
  // F_PERMISSION is not cached.
  if (w.pa >= s.oasLimit) {
    fault(p, F_ADDR_SIZE, false, CLASS_IN, 0, cfg, cd);
    return;
  }
  if (!w.af && !accessFlag(s, cd.s1Table, cd.ha, iova)) {
    fault(p, F_ACCESS, false, CLASS_IN, 0, cfg, cd);
    return;
  }
  s.iotlb.insert(
    cfg.vmid,
    cd.asid,
    TLB_KIND_S1,
    w.pageSize,
    iova,
    w.pa,
    w.prot,
  );
  if ((w.prot & need) !== need) {
    fault(p, F_PERMISSION, false, CLASS_IN, 0, cfg, cd);
    return;
  }
  p.pa = w.pa;
  p.prot = w.prot;
  p.pageSize = w.pageSize;
}

/** Stage 2 only: the input address is an IPA. */
function walkS2Only(
  s: SmmuState,
  p: Pending,
  cfg: StreamCfg,
  need: number,
): void {
  const r = s.s2r;
  if (!s2(s, p, cfg, p.iova, need, CLASS_IN, false, r)) return;
  p.pa = r.pa;
  p.prot = r.prot;
  p.pageSize = r.size;
}

/**
 * Translates `ipa` through stage 2 (IOTLB first when `lookup`), needing
 * `need` permissions. On success fills `out` and returns true; on a fault
 * sets `p` (S2 = 1, CLASS = `cls`, IPA = `ipa`).
 */
function s2(
  s: SmmuState,
  p: Pending,
  cfg: StreamCfg,
  ipa: number,
  need: number,
  cls: EventClass,
  lookup: boolean,
  out: S2Result,
): boolean {
  const tlb = s.iotlb;
  if (lookup) {
    s.acc += s.cIotlb;
    const i = tlb.lookup(cfg.vmid, -1, ipa);
    if (i >= 0 && (tlb.prot[i]! & need) === need) {
      s.stats.s2WalkCacheHits++;
      out.pa = tlb.translate(i, ipa);
      out.prot = tlb.prot[i]!;
      out.size = 2 ** tlb.shift[i]!;
      return true;
    }
  }
  if (!(ipa >= 0 && ipa < TWO48)) {
    return fault(p, F_ADDR_SIZE, true, cls, ipa, cfg, undefined);
  }
  let table = cfg.s2Table;
  if (table === undefined) {
    table = s.memory.resolve(HOST_PA_SPACE, cfg.s2Ttb);
    if (table === undefined) {
      return fault(p, F_WALK_EABT, true, CLASS_TT, ipa, cfg, undefined);
    }
    cfg.s2Table = table;
  }
  const w = table.walk(ipa, s.w2);
  const reads = w.reads -
    s.walkCache.skipAndFill(2, cfg.vmid, -1, ipa, w.reads - 2);
  s.acc += reads * s.cWalk;
  s.stats.walkReads += reads;
  if (!w.ok) {
    return fault(p, F_TRANSLATION, true, cls, ipa, cfg, undefined);
  }
  if (w.pa >= s.oasLimit) {
    return fault(p, F_ADDR_SIZE, true, cls, ipa, cfg, undefined);
  }
  if (!w.af && !accessFlag(s, table, cfg.s2ha, ipa)) {
    return fault(p, F_ACCESS, true, cls, ipa, cfg, undefined);
  }
  tlb.insert(cfg.vmid, -1, TLB_KIND_S2, w.pageSize, ipa, w.pa, w.prot);
  if ((w.prot & need) !== need) {
    return fault(p, F_PERMISSION, true, cls, ipa, cfg, undefined);
  }
  out.pa = w.pa;
  out.prot = w.prot;
  out.size = w.pageSize;
  return true;
}

/**
 * A leaf with AF = 0 (IHI0070 3.13): with hardware update (`ha`, the
 * effective CD.HA or STE.S2HA) the walker sets AF, one more descriptor
 * access (`smmu.walkRead`, an estimate of the atomic update), and returns
 * true; without, returns false (F_ACCESS).
 */
function accessFlag(
  s: SmmuState,
  table: IoPgtable,
  ha: boolean,
  addr: number,
): boolean {
  if (!ha) return false;
  table.setAccessFlag(addr, true);
  s.acc += s.cWalk;
  s.stats.afUpdates++;
  return true;
}

/** Nested: a guest stage 1 whose every descriptor fetch goes through stage 2. */
function walkNested(
  s: SmmuState,
  p: Pending,
  cfg: StreamCfg,
  cd: CdCfg,
  need: number,
): void {
  const iova = p.iova;
  if (!(iova < cd.inputLimit)) {
    fault(p, F_TRANSLATION, false, CLASS_IN, 0, cfg, cd);
    return;
  }
  const r = s.s2r;
  const w = cd.s1Table.walk(iova, s.w1);
  const reads = w.reads;
  // Stage-1 levels found in the walk cache need neither their read nor
  // the stage-2 translation of their descriptor address.
  const wc = s.walkCache;
  const skip = wc.skip(1, cfg.vmid, cd.asid, iova, reads - 2);
  for (let k = skip; k < reads; k++) {
    // Each descriptor address is an IPA: stage 2 first, then the read.
    if (!s2(s, p, cfg, w.descAddrs[k]!, PROT_READ, CLASS_TT, true, r)) {
      // Only the table descriptors read before the stage-2 fault are cached.
      wc.fill(1, cfg.vmid, cd.asid, iova, skip, k - 1);
      return;
    }
    s.acc += s.cWalk;
    s.stats.walkReads++;
  }
  wc.fill(1, cfg.vmid, cd.asid, iova, skip, reads - 2);
  // Stage 1's own faults in the Arm ARM's order, all before the stage-2
  // translation of its output (IHI0070 3.9.1.2: "not architecturally
  // performed unless the descriptor is valid and no fault would arise").
  if (!w.ok) {
    fault(p, F_TRANSLATION, false, CLASS_IN, 0, cfg, cd);
    return;
  }
  if (w.pa >= s.oasLimit) {
    fault(p, F_ADDR_SIZE, false, CLASS_IN, 0, cfg, cd);
    return;
  }
  // The leaf's AF update is a write to an IPA whose stage-2 translation
  // the descriptor read above already made.
  if (!w.af && !accessFlag(s, cd.s1Table, cd.ha, iova)) {
    fault(p, F_ACCESS, false, CLASS_IN, 0, cfg, cd);
    return;
  }
  if ((w.prot & need) !== need) {
    fault(p, F_PERMISSION, false, CLASS_IN, 0, cfg, cd);
    return;
  }
  const s1pa = w.pa, s1prot = w.prot, s1size = w.pageSize;
  if (!s2(s, p, cfg, s1pa, need, CLASS_IN, true, r)) return;
  const size = Math.min(s1size, r.size);
  const inBase = Math.floor(iova / size) * size;
  const pa = r.pa;
  const prot = s1prot & r.prot;
  s.iotlb.insert(
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
