/**
 * Arm SMMUv3 data structures (IHI0070): stream table entries, context
 * descriptors, event records, commands and PRI queue entries, with the field
 * names of the specification, and the encoders/decoders of the byte layouts
 * that the event, command and PRI queues hold (little-endian 32-bit words).
 *
 * Field names follow the architecture (`STAG`, `S2VMID`, `PRGIndex`...), so a
 * reader can put the specification beside the code.
 *
 * @module
 */

// ---------------------------------------------------------------------------
// Stream table entry

/** STE.Config (bits [3:1]): abort all traffic, without recording an event. */
export const STE_CONFIG_ABORT = 0;
/** STE.Config: bypass both stages (output address = input address). */
export const STE_CONFIG_BYPASS = 4;
/** STE.Config: stage 1 only. */
export const STE_CONFIG_S1 = 5;
/** STE.Config: stage 2 only. */
export const STE_CONFIG_S2 = 6;
/** STE.Config: nested, stage 1 then stage 2. */
export const STE_CONFIG_NESTED = 7;

/** STE.EATS: ATS translation requests are aborted (F_BAD_ATS_TREQ). */
export const EATS_ABORT = 0;
/** STE.EATS: ATS translation requests are answered with the full translation. */
export const EATS_TRANS = 1;
/** STE.EATS: split-stage ATS (stage 1 only answered; the model treats it as {@linkcode EATS_TRANS}). */
export const EATS_S1CHK = 2;
/** A value of STE.EATS. */
export type Eats = 0 | 1 | 2;

/** Fields every STE has. */
export interface SteCommon {
  /** Valid. An invalid STE gives C_BAD_STE. */
  readonly V: boolean;
  /** Enable ATS (0 abort, 1 translate, 2 stage-1 check). Default 0. */
  readonly EATS?: Eats;
}

/** STE with Config = 0: all traffic aborted, no event recorded. */
export interface SteAbort extends SteCommon {
  /** Abort. */
  readonly Config: 0;
}

/** STE with Config = 4: bypass. */
export interface SteBypass extends SteCommon {
  /** Bypass. */
  readonly Config: 4;
}

/** The stage-1 fields of an STE. */
export interface SteS1Fields {
  /** Address of the CD table (a PA, or an IPA when nested). */
  readonly S1ContextPtr: number;
  /** log2 of the number of CDs; 0 = one CD, no SubstreamIDs. */
  readonly S1CDMax: number;
  /** Stage-1 stall disable: CD.S must then be 0. */
  readonly S1STALLD: boolean;
  /**
   * Default substream, for transactions without a SubstreamID when
   * S1CDMax != 0 (IHI0070 5.2, STE.S1DSS): {@linkcode S1DSS_TERMINATE}
   * (F_STREAM_DISABLED), {@linkcode S1DSS_BYPASS} (stage 1 bypassed) or
   * {@linkcode S1DSS_SSID0} (CD 0 is used, and SubstreamID 0 itself is
   * F_STREAM_DISABLED, 7.3.7). Default 0b10, which Linux writes for a CD table
   * (STRTAB_STE_1_S1DSS_SSID0). IGNORED when S1CDMax == 0.
   */
  readonly S1DSS?: S1dss;
}

/** STE.S1DSS 0b00: non-substream transactions are terminated with F_STREAM_DISABLED. */
export const S1DSS_TERMINATE = 0;
/** STE.S1DSS 0b01: non-substream transactions bypass stage 1. */
export const S1DSS_BYPASS = 1;
/** STE.S1DSS 0b10: non-substream transactions use CD 0; SubstreamID 0 is F_STREAM_DISABLED (IHI0070 7.3.7). */
export const S1DSS_SSID0 = 2;
/** A value of STE.S1DSS (0b11 is reserved: C_BAD_STE). */
export type S1dss = 0 | 1 | 2;

/** The stage-2 fields of an STE. */
export interface SteS2Fields {
  /** Virtual machine identifier: tags stage-2 and nested TLB entries. */
  readonly S2VMID: number;
  /** Stage-2 translation table base (a PA). */
  readonly S2TTB: number;
  /** Stage-2 stall: stage-2 translation faults stall. */
  readonly S2S: boolean;
  /** Stage-2 record: stage-2 translation faults are recorded. */
  readonly S2R: boolean;
  /**
   * STE.S2HA: hardware update of the stage-2 access flag (IHI0070 3.13,
   * with SMMU_IDR0.HTTU != 0b00; IGNORED otherwise): a stage-2 leaf with
   * AF = 0 has AF set by the walker instead of faulting with F_ACCESS.
   * Default false.
   */
  readonly S2HA?: boolean;
}

/** STE with Config = 5: stage 1 only. */
export interface SteS1 extends SteCommon, SteS1Fields {
  /** Stage 1 only. */
  readonly Config: 5;
  /** Tags the stage-1 TLB entries (Linux writes 0). Default 0. */
  readonly S2VMID?: number;
}

/** STE with Config = 6: stage 2 only. */
export interface SteS2 extends SteCommon, SteS2Fields {
  /** Stage 2 only. */
  readonly Config: 6;
}

/** STE with Config = 7: nested (stage 1 of a guest on a host stage 2). */
export interface SteNested extends SteCommon, SteS1Fields, SteS2Fields {
  /** Nested. */
  readonly Config: 7;
}

/** A stream table entry: one of the configurations, keyed by `Config`. */
export type Ste = SteAbort | SteBypass | SteS1 | SteS2 | SteNested;

// ---------------------------------------------------------------------------
// Context descriptor

/** CD.TG0 encoding of the 4 KiB granule (the only one the model walks). */
export const TG0_4K = 0;

/** A stage-1 context descriptor. */
export interface Cd {
  /** Valid. An invalid CD gives C_BAD_CD. */
  readonly V: boolean;
  /** Address space identifier: tags the stage-1 TLB entries. */
  readonly ASID: number;
  /** Stage-1 table base (a PA, or an IPA when nested). */
  readonly TTB0: number;
  /** Input size is 2^(64 - T0SZ); 16 for 48-bit IOVAs. Legal range 16..39. */
  readonly T0SZ: number;
  /** Granule: 0 = 4 KiB ({@linkcode TG0_4K}); other granules give C_BAD_CD. */
  readonly TG0: number;
  /** Stall stage-1 faults. */
  readonly S: boolean;
  /** Record stage-1 faults. */
  readonly R: boolean;
  /** Abort terminated transactions (1) rather than RAZ/WI (0). */
  readonly A: boolean;
  /**
   * CD.HA: hardware update of the stage-1 access flag (IHI0070 3.13, with
   * SMMU_IDR0.HTTU != 0b00; IGNORED otherwise): a stage-1 leaf with AF = 0
   * has AF set by the walker instead of faulting with F_ACCESS. Default
   * false. (CD.HD, dirty state, is not modelled: mainline sets HA and HD
   * together only for dirty-tracking domains, IO_PGTABLE_QUIRK_ARM_HD in
   * arm_smmu_make_s1_cd.)
   */
  readonly HA?: boolean;
}

// ---------------------------------------------------------------------------
// Events

/** F_UUT: unsupported upstream transaction. */
export const F_UUT = 0x01;
/** C_BAD_STREAMID: StreamID out of range of the stream table. */
export const C_BAD_STREAMID = 0x02;
/** F_STE_FETCH: external abort fetching an STE. */
export const F_STE_FETCH = 0x03;
/** C_BAD_STE: invalid or illegal STE. */
export const C_BAD_STE = 0x04;
/** F_BAD_ATS_TREQ: ATS translation request while STE.EATS forbids it. */
export const F_BAD_ATS_TREQ = 0x05;
/** F_STREAM_DISABLED: non-substream transaction when stage 1 requires one. */
export const F_STREAM_DISABLED = 0x06;
/** F_TRANSL_FORBIDDEN: translated transaction not allowed. */
export const F_TRANSL_FORBIDDEN = 0x07;
/** C_BAD_SUBSTREAMID: SubstreamID out of range or not allowed. */
export const C_BAD_SUBSTREAMID = 0x08;
/** F_CD_FETCH: external abort fetching a CD. */
export const F_CD_FETCH = 0x09;
/** C_BAD_CD: invalid or illegal CD. */
export const C_BAD_CD = 0x0a;
/** F_WALK_EABT: external abort during a table walk. */
export const F_WALK_EABT = 0x0b;
/** F_TRANSLATION: no valid translation. */
export const F_TRANSLATION = 0x10;
/** F_ADDR_SIZE: address outside the input or output range. */
export const F_ADDR_SIZE = 0x11;
/** F_ACCESS: access flag fault. */
export const F_ACCESS = 0x12;
/** F_PERMISSION: permission fault. */
export const F_PERMISSION = 0x13;
/** F_TLB_CONFLICT: conflicting TLB entries. */
export const F_TLB_CONFLICT = 0x20;
/** F_CFG_CONFLICT: conflicting configuration cache entries. */
export const F_CFG_CONFLICT = 0x21;
/** E_PAGE_REQUEST: a speculative page request hint. */
export const E_PAGE_REQUEST = 0x24;
/** F_VMS_FETCH: external abort fetching a VMS. */
export const F_VMS_FETCH = 0x25;

/** Names of the event IDs, for logs and reports. */
export const EVENT_NAMES: Readonly<Record<number, string>> = {
  [F_UUT]: "F_UUT",
  [C_BAD_STREAMID]: "C_BAD_STREAMID",
  [F_STE_FETCH]: "F_STE_FETCH",
  [C_BAD_STE]: "C_BAD_STE",
  [F_BAD_ATS_TREQ]: "F_BAD_ATS_TREQ",
  [F_STREAM_DISABLED]: "F_STREAM_DISABLED",
  [F_TRANSL_FORBIDDEN]: "F_TRANSL_FORBIDDEN",
  [C_BAD_SUBSTREAMID]: "C_BAD_SUBSTREAMID",
  [F_CD_FETCH]: "F_CD_FETCH",
  [C_BAD_CD]: "C_BAD_CD",
  [F_WALK_EABT]: "F_WALK_EABT",
  [F_TRANSLATION]: "F_TRANSLATION",
  [F_ADDR_SIZE]: "F_ADDR_SIZE",
  [F_ACCESS]: "F_ACCESS",
  [F_PERMISSION]: "F_PERMISSION",
  [F_TLB_CONFLICT]: "F_TLB_CONFLICT",
  [F_CFG_CONFLICT]: "F_CFG_CONFLICT",
  [E_PAGE_REQUEST]: "E_PAGE_REQUEST",
  [F_VMS_FETCH]: "F_VMS_FETCH",
};

/**
 * True for the four translation-related faults that the A/R/S controls
 * (CD.A/R/S, STE.S2R/S2S) apply to (spec 5.5); every other fault aborts and
 * is recorded.
 */
export function isTranslationFault(id: number): boolean {
  return id >= F_TRANSLATION && id <= F_PERMISSION;
}

/** Event CLASS: the fault happened fetching a CD. */
export const CLASS_CD = 0;
/** Event CLASS: the fault happened fetching a translation table descriptor. */
export const CLASS_TT = 1;
/** Event CLASS: the fault concerns the input address itself. */
export const CLASS_IN = 2;
/** A value of the event CLASS field. */
export type EventClass = 0 | 1 | 2;

/**
 * An event record (32 bytes in the event queue). The translation-fault
 * layout is used for every event; fields an event does not define are 0.
 */
export interface EventRecord {
  /** Event ID ({@linkcode F_TRANSLATION}...), bits [7:0]. */
  readonly ID: number;
  /** SubstreamID valid, bit 11. */
  readonly SSV: boolean;
  /** SubstreamID (PASID), bits [31:12]. */
  readonly SubstreamID: number;
  /** StreamID, bits [63:32]. */
  readonly StreamID: number;
  /** Stall tag, bits [79:64] (word 1 [15:0]); meaningful when `Stall`. */
  readonly STAG: number;
  /** The transaction is stalled, bit 95 (bit 31 of word 1). */
  readonly Stall: boolean;
  /** Privileged (1) or unprivileged access. */
  readonly PnU: boolean;
  /** Instruction (1) or data access. */
  readonly InD: boolean;
  /** Read (1) or write (0). */
  readonly RnW: boolean;
  /** The fault happened at stage 2. */
  readonly S2: boolean;
  /** What was being accessed: {@linkcode CLASS_CD}, TT or IN. */
  readonly CLASS: EventClass;
  /** The transaction's input address (IOVA). */
  readonly InputAddr: number;
  /** For a stage-2 fault: the IPA that faulted, 4 KiB aligned (bits [51:12]); else 0. */
  readonly IPA: number;
}

/** 32-bit words per event record (32 bytes). */
export const EVENT_WORDS = 8;

const TWO32 = 4294967296;

function hi32(x: number): number {
  return Math.floor(x / TWO32) >>> 0;
}

/** Writes `e` into `out[offset .. offset+8)` in the architected layout. */
export function encodeEvent(
  e: EventRecord,
  out: Uint32Array,
  offset = 0,
): void {
  out[offset] = (e.ID & 0xff) | (e.SSV ? 1 << 11 : 0) |
    ((e.SubstreamID & 0xfffff) << 12);
  out[offset + 1] = e.StreamID >>> 0;
  out[offset + 2] = (e.STAG & 0xffff) | (e.Stall ? 0x80000000 : 0);
  out[offset + 3] = (e.PnU ? 1 << 1 : 0) | (e.InD ? 1 << 2 : 0) |
    (e.RnW ? 1 << 3 : 0) | (e.S2 ? 1 << 7 : 0) | ((e.CLASS & 3) << 8);
  out[offset + 4] = e.InputAddr >>> 0;
  out[offset + 5] = hi32(e.InputAddr);
  out[offset + 6] = (e.IPA >>> 0) & 0xfffff000;
  out[offset + 7] = hi32(e.IPA) & 0xfffff;
}

/** Reads an event record from `words[offset .. offset+8)`. */
export function decodeEvent(words: Uint32Array, offset = 0): EventRecord {
  const w0 = words[offset]!, w2 = words[offset + 2]!, w3 = words[offset + 3]!;
  return {
    ID: w0 & 0xff,
    SSV: (w0 & (1 << 11)) !== 0,
    SubstreamID: (w0 >>> 12) & 0xfffff,
    StreamID: words[offset + 1]!,
    STAG: w2 & 0xffff,
    Stall: (w2 & 0x80000000) !== 0,
    PnU: (w3 & (1 << 1)) !== 0,
    InD: (w3 & (1 << 2)) !== 0,
    RnW: (w3 & (1 << 3)) !== 0,
    S2: (w3 & (1 << 7)) !== 0,
    CLASS: ((w3 >>> 8) & 3) as EventClass,
    InputAddr: words[offset + 5]! * TWO32 + words[offset + 4]!,
    IPA: (words[offset + 7]! & 0xfffff) * TWO32 +
      ((words[offset + 6]! & 0xfffff000) >>> 0),
  };
}

/** An {@linkcode EventRecord} whose fields a decoder may overwrite (a reusable record). */
export type MutableEventRecord = {
  -readonly [K in keyof EventRecord]: EventRecord[K];
};

/** A fresh {@linkcode MutableEventRecord} of zeros, to decode into. */
export function newEventRecord(): MutableEventRecord {
  return {
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
    CLASS: CLASS_CD,
    InputAddr: 0,
    IPA: 0,
  };
}

/**
 * {@linkcode decodeEvent} into an existing record (a consumer that handles
 * one record at a time decodes without allocating).
 */
export function decodeEventInto(
  words: Uint32Array,
  offset: number,
  out: MutableEventRecord,
): void {
  const w0 = words[offset]!, w2 = words[offset + 2]!, w3 = words[offset + 3]!;
  out.ID = w0 & 0xff;
  out.SSV = (w0 & (1 << 11)) !== 0;
  out.SubstreamID = (w0 >>> 12) & 0xfffff;
  out.StreamID = words[offset + 1]!;
  out.STAG = w2 & 0xffff;
  out.Stall = (w2 & 0x80000000) !== 0;
  out.PnU = (w3 & (1 << 1)) !== 0;
  out.InD = (w3 & (1 << 2)) !== 0;
  out.RnW = (w3 & (1 << 3)) !== 0;
  out.S2 = (w3 & (1 << 7)) !== 0;
  out.CLASS = ((w3 >>> 8) & 3) as EventClass;
  out.InputAddr = words[offset + 5]! * TWO32 + words[offset + 4]!;
  out.IPA = (words[offset + 7]! & 0xfffff) * TWO32 +
    ((words[offset + 6]! & 0xfffff000) >>> 0);
}

// ---------------------------------------------------------------------------
// Commands

/** CMD_PREFETCH_CONFIG opcode. */
export const CMD_PREFETCH_CONFIG = 0x01;
/** CMD_CFGI_STE opcode. */
export const CMD_CFGI_STE = 0x03;
/** CMD_CFGI_STE_RANGE opcode (CMD_CFGI_ALL is Range = 31). */
export const CMD_CFGI_STE_RANGE = 0x04;
/** CMD_CFGI_ALL: CMD_CFGI_STE_RANGE with Range = 31. */
export const CMD_CFGI_ALL = 0x04;
/** CMD_CFGI_CD opcode. */
export const CMD_CFGI_CD = 0x05;
/** CMD_CFGI_CD_ALL opcode. */
export const CMD_CFGI_CD_ALL = 0x06;
/** CMD_TLBI_NH_ALL opcode: all stage-1 entries of a VMID. */
export const CMD_TLBI_NH_ALL = 0x10;
/** CMD_TLBI_NH_ASID opcode. */
export const CMD_TLBI_NH_ASID = 0x11;
/** CMD_TLBI_NH_VA opcode. */
export const CMD_TLBI_NH_VA = 0x12;
/** CMD_TLBI_NH_VAA opcode: a VA in all ASIDs of a VMID. */
export const CMD_TLBI_NH_VAA = 0x13;
/** CMD_TLBI_EL2_ALL opcode. */
export const CMD_TLBI_EL2_ALL = 0x20;
/** CMD_TLBI_S12_VMALL opcode: every entry of a VMID. */
export const CMD_TLBI_S12_VMALL = 0x28;
/** CMD_TLBI_S2_IPA opcode. */
export const CMD_TLBI_S2_IPA = 0x2a;
/** CMD_TLBI_NSNH_ALL opcode. */
export const CMD_TLBI_NSNH_ALL = 0x30;
/** CMD_ATC_INV opcode. */
export const CMD_ATC_INV = 0x40;
/** CMD_PRI_RESP opcode. */
export const CMD_PRI_RESP = 0x41;
/** CMD_RESUME opcode. */
export const CMD_RESUME = 0x44;
/** CMD_STALL_TERM opcode. */
export const CMD_STALL_TERM = 0x45;
/** CMD_SYNC opcode. */
export const CMD_SYNC = 0x46;

/**
 * CMD_PRI_RESP Resp 0b00: ResponseFailure, "Permanent non-paging error"
 * (IHI0070 4.5.2); the endpoint receives PRG Response Failure (1111b).
 * Mainline's `enum pri_resp` calls this value PRI_RESP_DENY.
 */
export const PRI_RESP_FAILURE = 0;
/**
 * CMD_PRI_RESP Resp 0b01: InvalidRequest, "Page-in unsuccessful for one or
 * more pages in the group" (IHI0070 4.5.2); the endpoint receives Invalid
 * Request (0001b). Mainline calls this value PRI_RESP_FAIL.
 */
export const PRI_RESP_INVALID = 1;
/** CMD_PRI_RESP Resp 0b10: Success (IHI0070 4.5.2); mainline's PRI_RESP_SUCC. */
export const PRI_RESP_SUCCESS = 2;
/**
 * CMD_RESUME Resp (Action bit 12, Abort bit 13, IHI0070 4.7.1) with Ac = 0,
 * Ab = 0: terminate with RAZ/WI semantics (Linux CMDQ_RESUME_0_RESP_TERM).
 */
export const RESUME_TERM = 0;
/** CMD_RESUME Resp with Ac = 1: retry the translation (Ab IGNORED; Linux CMDQ_RESUME_0_RESP_RETRY). */
export const RESUME_RETRY = 1;
/** CMD_RESUME Resp with Ac = 0, Ab = 1: terminate with an abort (Linux CMDQ_RESUME_0_RESP_ABORT). */
export const RESUME_ABORT = 2;

/** SMMU_CMDQ_CONS.ERR: no error (IHI0070 7.1). */
export const CERROR_NONE = 0x00;
/** SMMU_CMDQ_CONS.ERR: command illegal (unknown opcode, Reserved value, or irrelevant to the implementation; IHI0070 7.1). */
export const CERROR_ILL = 0x01;
/** SMMU_CMDQ_CONS.ERR: abort on command fetch (IHI0070 7.1). */
export const CERROR_ABT = 0x02;
/** SMMU_CMDQ_CONS.ERR: a CMD_SYNC failed to complete earlier CMD_ATC_INVs (ATS Invalidation Completion timeout; IHI0070 7.1). */
export const CERROR_ATC_INV_SYNC = 0x03;
/** SMMU_GERROR / GERRORN bit 0: CMDQ_ERR (IHI0070 7.5). */
export const GERROR_CMDQ_ERR = 0x1;

/** CMD_ATC_INV Size that invalidates the whole address space. */
export const ATC_INV_SIZE_ALL = 52;

/** CMD_PREFETCH_CONFIG: prefetch the configuration of a stream. */
export interface CmdPrefetchConfig {
  /** Opcode 0x01. */
  readonly opcode: 0x01;
  /** StreamID. */
  readonly SID: number;
  /** SubstreamID (meaningful with SSV). */
  readonly SSID?: number;
  /** SubstreamID valid. */
  readonly SSV?: boolean;
}

/** CMD_CFGI_STE: invalidate the cached STE of a stream. */
export interface CmdCfgiSte {
  /** Opcode 0x03. */
  readonly opcode: 0x03;
  /** StreamID. */
  readonly SID: number;
  /** Leaf: only the STE, not intermediate stream table descriptors. */
  readonly Leaf?: boolean;
}

/** CMD_CFGI_STE_RANGE: invalidate 2^(Range+1) STEs from SID (aligned); Range 31 = CMD_CFGI_ALL. */
export interface CmdCfgiSteRange {
  /** Opcode 0x04. */
  readonly opcode: 0x04;
  /** First StreamID (aligned down to the range). */
  readonly SID: number;
  /** log2(number of STEs) - 1; 31 invalidates everything. */
  readonly Range: number;
}

/** CMD_CFGI_CD: invalidate one cached CD of a stream. */
export interface CmdCfgiCd {
  /** Opcode 0x05. */
  readonly opcode: 0x05;
  /** StreamID. */
  readonly SID: number;
  /** SubstreamID (0 for the CD used without a SubstreamID). */
  readonly SSID: number;
  /** Leaf. */
  readonly Leaf?: boolean;
}

/** CMD_CFGI_CD_ALL: invalidate all cached CDs of a stream. */
export interface CmdCfgiCdAll {
  /** Opcode 0x06. */
  readonly opcode: 0x06;
  /** StreamID. */
  readonly SID: number;
}

/** CMD_TLBI_NH_ALL: invalidate stage-1 (and nested) entries of a VMID. */
export interface CmdTlbiNhAll {
  /** Opcode 0x10. */
  readonly opcode: 0x10;
  /** VMID. */
  readonly VMID: number;
}

/** CMD_TLBI_NH_ASID: invalidate the entries of an ASID in a VMID. */
export interface CmdTlbiNhAsid {
  /** Opcode 0x11. */
  readonly opcode: 0x11;
  /** VMID. */
  readonly VMID: number;
  /** ASID. */
  readonly ASID: number;
}

/**
 * The address fields of the TLBI-by-address commands. With TG = 0 the
 * command invalidates the entries that cover `Address`; with TG = 1 (4 KiB,
 * SMMUv3.2 range invalidation) it invalidates (NUM + 1) * 2^SCALE pages from
 * `Address`.
 */
export interface TlbiRange {
  /** Address bits [63:12] (the low 12 bits are ignored). */
  readonly Address: number;
  /** Range: number of pages - 1 before scaling, 0..31. Default 0. */
  readonly NUM?: number;
  /** Range scale (log2), 0..31. Default 0. */
  readonly SCALE?: number;
  /** Range granule: 0 = no range, 1 = 4 KiB. Default 0. */
  readonly TG?: number;
  /** Translation table level hint. Default 0. */
  readonly TTL?: number;
  /** Only leaf entries (walk caches are not modelled). Default false. */
  readonly Leaf?: boolean;
}

/** CMD_TLBI_NH_VA: invalidate a VA (range) of an ASID. */
export interface CmdTlbiNhVa extends TlbiRange {
  /** Opcode 0x12. */
  readonly opcode: 0x12;
  /** VMID. */
  readonly VMID: number;
  /** ASID. */
  readonly ASID: number;
}

/** CMD_TLBI_NH_VAA: invalidate a VA (range) in all ASIDs of a VMID. */
export interface CmdTlbiNhVaa extends TlbiRange {
  /** Opcode 0x13. */
  readonly opcode: 0x13;
  /** VMID. */
  readonly VMID: number;
}

/** CMD_TLBI_EL2_ALL: invalidate EL2 entries (none in this model). */
export interface CmdTlbiEl2All {
  /** Opcode 0x20. */
  readonly opcode: 0x20;
}

/** CMD_TLBI_S12_VMALL: invalidate every entry of a VMID. */
export interface CmdTlbiS12Vmall {
  /** Opcode 0x28. */
  readonly opcode: 0x28;
  /** VMID. */
  readonly VMID: number;
}

/**
 * CMD_TLBI_S2_IPA: invalidate stage-2 entries for an IPA (range). Combined
 * nested S1+S2 entries are not required to be invalidated by it (software
 * follows with CMD_TLBI_NH_ALL or S12_VMALL), and this model does not.
 */
export interface CmdTlbiS2Ipa extends TlbiRange {
  /** Opcode 0x2a. */
  readonly opcode: 0x2a;
  /** VMID. */
  readonly VMID: number;
}

/** CMD_TLBI_NSNH_ALL: invalidate every non-secure non-hyp entry. */
export interface CmdTlbiNsnhAll {
  /** Opcode 0x30. */
  readonly opcode: 0x30;
}

/** CMD_ATC_INV: ask an endpoint to invalidate its ATC. */
export interface CmdAtcInv {
  /** Opcode 0x40. */
  readonly opcode: 0x40;
  /** StreamID of the endpoint. */
  readonly SID: number;
  /** SubstreamID (PASID), meaningful with SSV. */
  readonly SSID?: number;
  /** SubstreamID valid. */
  readonly SSV?: boolean;
  /** Global: all PASIDs. */
  readonly G?: boolean;
  /** Address bits [63:12]; aligned down to the size. */
  readonly Address: number;
  /** log2 of the number of 4 KiB pages; 52 = everything. */
  readonly Size: number;
}

/** CMD_PRI_RESP: send a PRG Response to an endpoint. */
export interface CmdPriResp {
  /** Opcode 0x41. */
  readonly opcode: 0x41;
  /** StreamID. */
  readonly SID: number;
  /** SubstreamID (PASID), meaningful with SSV. */
  readonly SSID?: number;
  /** SubstreamID valid: the response carries the PASID. */
  readonly SSV?: boolean;
  /** PRG index (9 bits). */
  readonly GRPID: number;
  /** {@linkcode PRI_RESP_FAILURE} (0b00), INVALID (0b01) or SUCCESS (0b10); 0b11 is ILLEGAL. Bits [77:76] (dword 1 [13:12]). */
  readonly Resp: number;
}

/** CMD_RESUME: resume or terminate one stalled transaction. */
export interface CmdResume {
  /** Opcode 0x44. */
  readonly opcode: 0x44;
  /** StreamID. */
  readonly SID: number;
  /** Stall tag from the event record. */
  readonly STAG: number;
  /** Action (bit 0 here, command bit 12) and Abort (bit 1, command bit 13): {@linkcode RESUME_TERM}, RETRY or ABORT. */
  readonly Resp: number;
}

/** CMD_STALL_TERM: terminate every stalled transaction of a stream. */
export interface CmdStallTerm {
  /** Opcode 0x45. */
  readonly opcode: 0x45;
  /** StreamID. */
  readonly SID: number;
}

/** CMD_SYNC: completes once every earlier command has completed. */
export interface CmdSync {
  /** Opcode 0x46. */
  readonly opcode: 0x46;
  /** Completion signal: 0 none, 1 IRQ (MSI), 2 SEV. Default 0. */
  readonly CS?: number;
}

/** A command of the command queue, keyed by `opcode`. */
export type Command =
  | CmdPrefetchConfig
  | CmdCfgiSte
  | CmdCfgiSteRange
  | CmdCfgiCd
  | CmdCfgiCdAll
  | CmdTlbiNhAll
  | CmdTlbiNhAsid
  | CmdTlbiNhVa
  | CmdTlbiNhVaa
  | CmdTlbiEl2All
  | CmdTlbiS12Vmall
  | CmdTlbiS2Ipa
  | CmdTlbiNsnhAll
  | CmdAtcInv
  | CmdPriResp
  | CmdResume
  | CmdStallTerm
  | CmdSync;

/** Names of the opcodes, for logs. */
export const COMMAND_NAMES: Readonly<Record<number, string>> = {
  [CMD_PREFETCH_CONFIG]: "CMD_PREFETCH_CONFIG",
  [CMD_CFGI_STE]: "CMD_CFGI_STE",
  [CMD_CFGI_STE_RANGE]: "CMD_CFGI_STE_RANGE",
  [CMD_CFGI_CD]: "CMD_CFGI_CD",
  [CMD_CFGI_CD_ALL]: "CMD_CFGI_CD_ALL",
  [CMD_TLBI_NH_ALL]: "CMD_TLBI_NH_ALL",
  [CMD_TLBI_NH_ASID]: "CMD_TLBI_NH_ASID",
  [CMD_TLBI_NH_VA]: "CMD_TLBI_NH_VA",
  [CMD_TLBI_NH_VAA]: "CMD_TLBI_NH_VAA",
  [CMD_TLBI_EL2_ALL]: "CMD_TLBI_EL2_ALL",
  [CMD_TLBI_S12_VMALL]: "CMD_TLBI_S12_VMALL",
  [CMD_TLBI_S2_IPA]: "CMD_TLBI_S2_IPA",
  [CMD_TLBI_NSNH_ALL]: "CMD_TLBI_NSNH_ALL",
  [CMD_ATC_INV]: "CMD_ATC_INV",
  [CMD_PRI_RESP]: "CMD_PRI_RESP",
  [CMD_RESUME]: "CMD_RESUME",
  [CMD_STALL_TERM]: "CMD_STALL_TERM",
  [CMD_SYNC]: "CMD_SYNC",
};

/** 32-bit words per command (16 bytes). */
export const COMMAND_WORDS = 4;

function range(
  c: TlbiRange,
  out: Uint32Array,
  o: number,
): void {
  out[o] = out[o]! | ((c.NUM ?? 0) & 0x1f) << 12 |
    ((c.SCALE ?? 0) & 0x1f) << 20;
  out[o + 2] = (c.Leaf ? 1 : 0) | ((c.TTL ?? 0) & 3) << 8 |
    ((c.TG ?? 0) & 3) << 10 | ((c.Address >>> 0) & 0xfffff000);
  out[o + 3] = hi32(c.Address);
}

function ssidBits(ssid: number | undefined, ssv: boolean | undefined): number {
  return (ssv ? 1 << 11 : 0) | (((ssid ?? 0) & 0xfffff) << 12);
}

/**
 * Writes `c` into `out[offset .. offset+4)` in the architected layout
 * (dword 0 = words 0-1, dword 1 = words 2-3).
 */
export function encodeCommand(c: Command, out: Uint32Array, offset = 0): void {
  const o = offset;
  out[o] = c.opcode;
  out[o + 1] = 0;
  out[o + 2] = 0;
  out[o + 3] = 0;
  switch (c.opcode) {
    case CMD_PREFETCH_CONFIG:
      out[o] = out[o]! | ssidBits(c.SSID, c.SSV);
      out[o + 1] = c.SID >>> 0;
      break;
    case CMD_CFGI_STE:
      out[o + 1] = c.SID >>> 0;
      out[o + 2] = c.Leaf ? 1 : 0;
      break;
    case CMD_CFGI_STE_RANGE:
      out[o + 1] = c.SID >>> 0;
      out[o + 2] = c.Range & 0x1f;
      break;
    case CMD_CFGI_CD:
      out[o] = out[o]! | ssidBits(c.SSID, false);
      out[o + 1] = c.SID >>> 0;
      out[o + 2] = c.Leaf ? 1 : 0;
      break;
    case CMD_CFGI_CD_ALL:
    case CMD_STALL_TERM:
      out[o + 1] = c.SID >>> 0;
      break;
    case CMD_TLBI_NH_ALL:
    case CMD_TLBI_S12_VMALL:
      out[o + 1] = c.VMID & 0xffff;
      break;
    case CMD_TLBI_NH_ASID:
      out[o + 1] = (c.VMID & 0xffff) | (c.ASID & 0xffff) << 16;
      break;
    case CMD_TLBI_NH_VA:
      out[o + 1] = (c.VMID & 0xffff) | (c.ASID & 0xffff) << 16;
      range(c, out, o);
      break;
    case CMD_TLBI_NH_VAA:
    case CMD_TLBI_S2_IPA:
      out[o + 1] = c.VMID & 0xffff;
      range(c, out, o);
      break;
    case CMD_TLBI_EL2_ALL:
    case CMD_TLBI_NSNH_ALL:
      break;
    case CMD_ATC_INV:
      out[o] = out[o]! | ssidBits(c.SSID, c.SSV) | (c.G ? 1 << 9 : 0);
      out[o + 1] = c.SID >>> 0;
      out[o + 2] = (c.Size & 0x3f) | ((c.Address >>> 0) & 0xfffff000);
      out[o + 3] = hi32(c.Address);
      break;
    case CMD_PRI_RESP:
      out[o] = out[o]! | ssidBits(c.SSID, c.SSV);
      out[o + 1] = c.SID >>> 0;
      out[o + 2] = (c.GRPID & 0x1ff) | (c.Resp & 3) << 12;
      break;
    case CMD_RESUME:
      out[o] = out[o]! | (c.Resp & 3) << 12;
      out[o + 1] = c.SID >>> 0;
      out[o + 2] = c.STAG & 0xffff;
      break;
    case CMD_SYNC:
      out[o] = out[o]! | ((c.CS ?? 0) & 3) << 12;
      break;
  }
}

function decRange(w: Uint32Array, o: number): TlbiRange {
  const w0 = w[o]!, w2 = w[o + 2]!;
  return {
    Address: w[o + 3]! * TWO32 + ((w2 & 0xfffff000) >>> 0),
    NUM: (w0 >>> 12) & 0x1f,
    SCALE: (w0 >>> 20) & 0x1f,
    TG: (w2 >>> 10) & 3,
    TTL: (w2 >>> 8) & 3,
    Leaf: (w2 & 1) !== 0,
  };
}

/**
 * Reads a command from `words[offset .. offset+4)`. Unknown opcodes throw
 * (the SMMU would report CERROR_ILL).
 */
export function decodeCommand(words: Uint32Array, offset = 0): Command {
  const o = offset;
  const w0 = words[o]!, w1 = words[o + 1]!, w2 = words[o + 2]!;
  const op = w0 & 0xff;
  const ssv = (w0 & (1 << 11)) !== 0;
  const ssid = (w0 >>> 12) & 0xfffff;
  switch (op) {
    case CMD_PREFETCH_CONFIG:
      return { opcode: op, SID: w1, SSID: ssid, SSV: ssv };
    case CMD_CFGI_STE:
      return { opcode: op, SID: w1, Leaf: (w2 & 1) !== 0 };
    case CMD_CFGI_STE_RANGE:
      return { opcode: op, SID: w1, Range: w2 & 0x1f };
    case CMD_CFGI_CD:
      return { opcode: op, SID: w1, SSID: ssid, Leaf: (w2 & 1) !== 0 };
    case CMD_CFGI_CD_ALL:
      return { opcode: op, SID: w1 };
    case CMD_STALL_TERM:
      return { opcode: op, SID: w1 };
    case CMD_TLBI_NH_ALL:
      return { opcode: op, VMID: w1 & 0xffff };
    case CMD_TLBI_S12_VMALL:
      return { opcode: op, VMID: w1 & 0xffff };
    case CMD_TLBI_NH_ASID:
      return { opcode: op, VMID: w1 & 0xffff, ASID: w1 >>> 16 };
    case CMD_TLBI_NH_VA:
      return {
        opcode: op,
        VMID: w1 & 0xffff,
        ASID: w1 >>> 16,
        ...decRange(words, o),
      };
    case CMD_TLBI_NH_VAA:
      return { opcode: op, VMID: w1 & 0xffff, ...decRange(words, o) };
    case CMD_TLBI_S2_IPA:
      return { opcode: op, VMID: w1 & 0xffff, ...decRange(words, o) };
    case CMD_TLBI_EL2_ALL:
      return { opcode: op };
    case CMD_TLBI_NSNH_ALL:
      return { opcode: op };
    case CMD_ATC_INV:
      return {
        opcode: op,
        SID: w1,
        SSID: ssid,
        SSV: ssv,
        G: (w0 & (1 << 9)) !== 0,
        Address: words[o + 3]! * TWO32 + ((w2 & 0xfffff000) >>> 0),
        Size: w2 & 0x3f,
      };
    case CMD_PRI_RESP:
      return {
        opcode: op,
        SID: w1,
        SSID: ssid,
        SSV: ssv,
        GRPID: w2 & 0x1ff,
        Resp: (w2 >>> 12) & 3,
      };
    case CMD_RESUME:
      return { opcode: op, SID: w1, STAG: w2 & 0xffff, Resp: (w0 >>> 12) & 3 };
    case CMD_SYNC:
      return { opcode: op, CS: (w0 >>> 12) & 3 };
    default:
      throw new RangeError(
        `Cannot decode command: unknown opcode 0x${op.toString(16)}`,
      );
  }
}

/**
 * Every field of every command in one flat record: what
 * {@linkcode decodeCommandInto} fills, so that a command processor reads
 * one object shape whatever the opcode (only the fields of the opcode are
 * meaningful).
 */
export interface CommandFields {
  /** Opcode. */
  opcode: number;
  /** StreamID. */
  SID: number;
  /** SubstreamID. */
  SSID: number;
  /** SubstreamID valid. */
  SSV: boolean;
  /** Leaf. */
  Leaf: boolean;
  /** CMD_CFGI_STE_RANGE Range. */
  Range: number;
  /** VMID. */
  VMID: number;
  /** ASID. */
  ASID: number;
  /** Address (TLBI by address, CMD_ATC_INV). */
  Address: number;
  /** TLBI range NUM. */
  NUM: number;
  /** TLBI range SCALE. */
  SCALE: number;
  /** TLBI range granule. */
  TG: number;
  /** TLBI level hint. */
  TTL: number;
  /** CMD_ATC_INV Global. */
  G: boolean;
  /** CMD_ATC_INV Size. */
  Size: number;
  /** CMD_PRI_RESP PRG index. */
  GRPID: number;
  /** CMD_PRI_RESP / CMD_RESUME response. */
  Resp: number;
  /** CMD_RESUME stall tag. */
  STAG: number;
  /** CMD_SYNC completion signal. */
  CS: number;
}

/** A fresh {@linkcode CommandFields} of zeros (opcode 0), to decode into. */
export function newCommandFields(): CommandFields {
  return {
    opcode: 0,
    SID: 0,
    SSID: 0,
    SSV: false,
    Leaf: false,
    Range: 0,
    VMID: 0,
    ASID: 0,
    Address: 0,
    NUM: 0,
    SCALE: 0,
    TG: 0,
    TTL: 0,
    G: false,
    Size: 0,
    GRPID: 0,
    Resp: 0,
    STAG: 0,
    CS: 0,
  };
}

/**
 * {@linkcode decodeCommand} into a flat {@linkcode CommandFields}: the
 * opcode and the fields the opcode has get the values decodeCommand gives
 * them; the other fields keep what they held (a reader looks only at the
 * fields of the opcode). Unknown opcodes throw the same RangeError (`out`
 * is then unspecified).
 */
export function decodeCommandInto(
  words: Uint32Array,
  offset: number,
  out: CommandFields,
): void {
  const o = offset;
  const w0 = words[o]!, w1 = words[o + 1]!, w2 = words[o + 2]!;
  const op = w0 & 0xff;
  out.opcode = op;
  switch (op) {
    case CMD_RESUME:
      out.SID = w1;
      out.STAG = w2 & 0xffff;
      out.Resp = (w0 >>> 12) & 3;
      return;
    case CMD_PRI_RESP:
      out.SID = w1;
      out.SSID = (w0 >>> 12) & 0xfffff;
      out.SSV = (w0 & (1 << 11)) !== 0;
      out.GRPID = w2 & 0x1ff;
      out.Resp = (w2 >>> 12) & 3;
      return;
    case CMD_SYNC:
      out.CS = (w0 >>> 12) & 3;
      return;
    case CMD_PREFETCH_CONFIG:
      out.SID = w1;
      out.SSID = (w0 >>> 12) & 0xfffff;
      out.SSV = (w0 & (1 << 11)) !== 0;
      return;
    case CMD_CFGI_STE:
      out.SID = w1;
      out.Leaf = (w2 & 1) !== 0;
      return;
    case CMD_CFGI_STE_RANGE:
      out.SID = w1;
      out.Range = w2 & 0x1f;
      return;
    case CMD_CFGI_CD:
      out.SID = w1;
      out.SSID = (w0 >>> 12) & 0xfffff;
      out.Leaf = (w2 & 1) !== 0;
      return;
    case CMD_CFGI_CD_ALL:
    case CMD_STALL_TERM:
      out.SID = w1;
      return;
    case CMD_TLBI_NH_ALL:
    case CMD_TLBI_S12_VMALL:
      out.VMID = w1 & 0xffff;
      return;
    case CMD_TLBI_NH_ASID:
      out.VMID = w1 & 0xffff;
      out.ASID = w1 >>> 16;
      return;
    case CMD_TLBI_NH_VA:
    case CMD_TLBI_NH_VAA:
    case CMD_TLBI_S2_IPA:
      out.VMID = w1 & 0xffff;
      if (op === CMD_TLBI_NH_VA) out.ASID = w1 >>> 16;
      out.Address = words[o + 3]! * TWO32 + ((w2 & 0xfffff000) >>> 0);
      out.NUM = (w0 >>> 12) & 0x1f;
      out.SCALE = (w0 >>> 20) & 0x1f;
      out.TG = (w2 >>> 10) & 3;
      out.TTL = (w2 >>> 8) & 3;
      out.Leaf = (w2 & 1) !== 0;
      return;
    case CMD_TLBI_EL2_ALL:
    case CMD_TLBI_NSNH_ALL:
      return;
    case CMD_ATC_INV:
      out.SID = w1;
      out.SSID = (w0 >>> 12) & 0xfffff;
      out.SSV = (w0 & (1 << 11)) !== 0;
      out.G = (w0 & (1 << 9)) !== 0;
      out.Address = words[o + 3]! * TWO32 + ((w2 & 0xfffff000) >>> 0);
      out.Size = w2 & 0x3f;
      return;
    default:
      throw new RangeError(
        `Cannot decode command: unknown opcode 0x${op.toString(16)}`,
      );
  }
}

// ---------------------------------------------------------------------------
// PRI queue entries

/** A PCIe Page Request as the SMMU writes it in the PRI queue (16 bytes). */
export interface PriEntry {
  /** StreamID (the PCIe Requester ID), bits [31:0]. */
  readonly StreamID: number;
  /** SubstreamID (PASID), bits [51:32]; meaningful with SSV. */
  readonly SubstreamID: number;
  /** The request carried a PASID, bit 63. */
  readonly SSV: boolean;
  /** Privileged access requested, bit 58. */
  readonly PRIV: boolean;
  /** Execute access requested, bit 59. */
  readonly EXEC: boolean;
  /** Read access requested, bit 60. */
  readonly READ: boolean;
  /** Write access requested, bit 61. */
  readonly WRITE: boolean;
  /** Last request of its Page Request Group, bit 62. */
  readonly LAST: boolean;
  /** Page Request Group index, bits [72:64] (9 bits). */
  readonly PRGIndex: number;
  /** Page address, bits [127:76] (4 KiB aligned). */
  readonly Address: number;
}

/** 32-bit words per PRI queue entry (16 bytes). */
export const PRI_WORDS = 4;

/** True for a Stop PASID marker: L/W/R = 1/0/0 with a PASID. */
export function isStopMarker(e: PriEntry): boolean {
  return e.LAST && !e.WRITE && !e.READ && e.SSV;
}

/** Writes `e` into `out[offset .. offset+4)` in the architected layout. */
export function encodePriEntry(
  e: PriEntry,
  out: Uint32Array,
  offset = 0,
): void {
  out[offset] = e.StreamID >>> 0;
  out[offset + 1] = (e.SubstreamID & 0xfffff) | (e.PRIV ? 1 << 26 : 0) |
    (e.EXEC ? 1 << 27 : 0) | (e.READ ? 1 << 28 : 0) | (e.WRITE ? 1 << 29 : 0) |
    (e.LAST ? 1 << 30 : 0) | (e.SSV ? 0x80000000 : 0);
  out[offset + 2] = (e.PRGIndex & 0x1ff) | ((e.Address >>> 0) & 0xfffff000);
  out[offset + 3] = hi32(e.Address);
}

/** Reads a PRI queue entry from `words[offset .. offset+4)`. */
export function decodePriEntry(words: Uint32Array, offset = 0): PriEntry {
  const w1 = words[offset + 1]!, w2 = words[offset + 2]!;
  return {
    StreamID: words[offset]!,
    SubstreamID: w1 & 0xfffff,
    PRIV: (w1 & (1 << 26)) !== 0,
    EXEC: (w1 & (1 << 27)) !== 0,
    READ: (w1 & (1 << 28)) !== 0,
    WRITE: (w1 & (1 << 29)) !== 0,
    LAST: (w1 & (1 << 30)) !== 0,
    SSV: (w1 & 0x80000000) !== 0,
    PRGIndex: w2 & 0x1ff,
    Address: words[offset + 3]! * TWO32 + ((w2 & 0xfffff000) >>> 0),
  };
}

/** A {@linkcode PriEntry} whose fields a decoder may overwrite (a reusable entry). */
export type MutablePriEntry = { -readonly [K in keyof PriEntry]: PriEntry[K] };

/** A fresh {@linkcode MutablePriEntry} of zeros, to decode into. */
export function newPriEntry(): MutablePriEntry {
  return {
    StreamID: 0,
    SubstreamID: 0,
    PRIV: false,
    EXEC: false,
    READ: false,
    WRITE: false,
    LAST: false,
    SSV: false,
    PRGIndex: 0,
    Address: 0,
  };
}

/** {@linkcode decodePriEntry} into an existing entry. */
export function decodePriEntryInto(
  words: Uint32Array,
  offset: number,
  out: MutablePriEntry,
): void {
  const w1 = words[offset + 1]!, w2 = words[offset + 2]!;
  out.StreamID = words[offset]!;
  out.SubstreamID = w1 & 0xfffff;
  out.PRIV = (w1 & (1 << 26)) !== 0;
  out.EXEC = (w1 & (1 << 27)) !== 0;
  out.READ = (w1 & (1 << 28)) !== 0;
  out.WRITE = (w1 & (1 << 29)) !== 0;
  out.LAST = (w1 & (1 << 30)) !== 0;
  out.SSV = (w1 & 0x80000000) !== 0;
  out.PRGIndex = w2 & 0x1ff;
  out.Address = words[offset + 3]! * TWO32 + ((w2 & 0xfffff000) >>> 0);
}

// ---------------------------------------------------------------------------
// Endpoint side (PCIe)

/** PCIe PRG Response code: Success (0000b). */
export const PRG_RESP_SUCCESS = 0x0;
/** PCIe PRG Response code: Invalid Request (0001b). */
export const PRG_RESP_INVALID = 0x1;
/** PCIe PRG Response code: Response Failure (1111b). */
export const PRG_RESP_FAILURE = 0xf;

/**
 * What the SMMU needs from a PCIe endpoint attached to a StreamID: the
 * receiving end of PRG Responses and ATC Invalidation Requests.
 */
export interface SmmuEndpoint {
  /**
   * A PRG Response arrives for `prgIndex` (`ssid` -1 when it carries no
   * PASID) with a PCIe response code ({@linkcode PRG_RESP_SUCCESS},
   * INVALID or FAILURE).
   */
  prgResponse(ssid: number, prgIndex: number, code: number): void;
  /**
   * An ATC Invalidation Request: drop translations of `ssid` (-1 = every
   * PASID) in the 2^log2Pages pages aligned around `addr`
   * ({@linkcode ATC_INV_SIZE_ALL} = everything). Call `done` when the
   * Invalidation Completion is sent (a function that never answers never
   * calls it; the SMMU times the request out, IHI0070 3.9.1.4).
   */
  atcInvalidate(
    ssid: number,
    addr: number,
    log2Pages: number,
    done: () => void,
  ): void;
  /**
   * The same ATC Invalidation Request for a caller that waits for it
   * synchronously (the SMMU's `submitBlocking`): drop the entries now
   * and return the ns until the Invalidation Completion would be sent
   * (Infinity when it never would).
   */
  atcInvalidateBlocking(ssid: number, addr: number, log2Pages: number): number;
}
