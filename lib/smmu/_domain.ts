/**
 * What the arm-smmu-v3 driver's files share (its arm-smmu-v3.h): the
 * domain, the master, and the TLB and ATC invalidation commands a domain's changes
 * need. Private to lib/smmu; {@linkcode ArmSmmuDomain} is public through
 * driver.ts.
 *
 * @module
 */
import { SZ_4K } from "../sim/units.ts";
import type { IoPgtable } from "../pgtable/mod.ts";
import type {
  DomainKind,
  DriverDomain,
  IommuDevice,
  IommuVmaster,
  NestedConfig,
} from "../iommu/types.ts";
import {
  ATC_INV_SIZE_ALL,
  CMD_ATC_INV,
  CMD_SYNC,
  CMD_TLBI_NH_ALL,
  CMD_TLBI_NH_ASID,
  CMD_TLBI_NH_VA,
  CMD_TLBI_S12_VMALL,
  CMD_TLBI_S2_IPA,
  type Command,
} from "./types.ts";

/** A domain of the arm-smmu-v3 driver (struct arm_smmu_domain). */
export class ArmSmmuDomain implements DriverDomain {
  /** Domain id. */
  readonly id: number;
  /** What the domain translates. */
  readonly kind: DomainKind;
  /** Page sizes its table maps. */
  readonly pgsizeBitmap: number;
  /** For a nested domain: the stage-2 parent. */
  readonly parent?: ArmSmmuDomain;
  /** VMID (stage 2 and nested; 0 for stage-1 domains). */
  readonly vmid: number;
  /** ASID (stage 1 and nested; -1 for stage-2 domains). */
  readonly asid: number;
  /** The io-pgtable of a paging domain (undefined for nested: the guest owns stage 1). */
  readonly pgtable: IoPgtable | undefined;
  /** The guest's stage-1 context of a nested domain. */
  readonly nested: NestedConfig | undefined;
  /** S1ContextPtr of a nested domain (an IPA in the guest's space). */
  readonly s1ContextPtr: number;
  /** Devices attached now. */
  readonly devices: Set<IommuDevice> = new Set();
  /** Nested domains built on this stage-2 domain. */
  readonly children: Set<ArmSmmuDomain> = new Set();
  /** True when the driver wrote the guest's CD table itself (no s1ContextPtr given). */
  readonly ownsCdTable: boolean;

  /** Created by the driver only. */
  constructor(init: {
    id: number;
    kind: DomainKind;
    pgsizeBitmap: number;
    parent?: ArmSmmuDomain;
    vmid: number;
    asid: number;
    pgtable?: IoPgtable;
    nested?: NestedConfig;
    s1ContextPtr?: number;
    ownsCdTable?: boolean;
  }) {
    this.id = init.id;
    this.kind = init.kind;
    this.pgsizeBitmap = init.pgsizeBitmap;
    if (init.parent) this.parent = init.parent;
    this.vmid = init.vmid;
    this.asid = init.asid;
    this.pgtable = init.pgtable;
    this.nested = init.nested;
    this.s1ContextPtr = init.s1ContextPtr ?? -1;
    this.ownsCdTable = init.ownsCdTable ?? false;
  }
}

/** A device the driver knows (struct arm_smmu_master). */
export interface Master {
  dev: IommuDevice;
  domain: ArmSmmuDomain | undefined;
  iopf: boolean;
  /** Host PA of this master's CD table (stage-1 domains), -1 until needed. */
  cdPtr: number;
  /** The vIOMMU binding while attached to a nested domain on one (struct arm_smmu_vmaster). */
  vmaster: IommuVmaster | undefined;
}

/** How the driver may invalidate by range. */
export interface TlbiLimits {
  /** The SMMU has range invalidation (SMMU_IDR3.RIL). */
  readonly rangeInvalidation: boolean;
  /** Without it, a flush of more than this many pages invalidates the whole ASID/VMID (CMDQ_MAX_TLBI_OPS). */
  readonly tlbiMaxOps: number;
}

/** The TLBI that drops everything the domain's tables translate (by ASID or VMID). */
export function tlbiAllCmd(d: ArmSmmuDomain): Command {
  switch (d.kind) {
    case "paging-s1":
      return { opcode: CMD_TLBI_NH_ASID, VMID: 0, ASID: d.asid };
    case "paging-s2":
      return { opcode: CMD_TLBI_S12_VMALL, VMID: d.vmid };
    case "nested":
      return { opcode: CMD_TLBI_NH_ASID, VMID: d.vmid, ASID: d.asid };
  }
}

/**
 * Appends the TLBI commands for `[start, end)` of `d` to `out`: range
 * commands with RIL, else one per `pgsize` page up to `tlbiMaxOps` (then the
 * whole ASID/VMID); for a nesting parent also CMD_TLBI_NH_ALL.
 */
export function tlbiRangeCmds(
  d: ArmSmmuDomain,
  start: number,
  end: number,
  pgsize: number,
  limits: TlbiLimits,
  out: Command[],
): void {
  const s2 = d.kind === "paging-s2";
  const vmid = d.vmid, asid = d.asid;
  const add = (addr: number, tg: number, num: number, scale: number) => {
    if (s2) {
      out.push({
        opcode: CMD_TLBI_S2_IPA,
        VMID: vmid,
        Address: addr,
        TG: tg,
        NUM: num,
        SCALE: scale,
        Leaf: true,
      });
    } else {
      out.push({
        opcode: CMD_TLBI_NH_VA,
        VMID: vmid,
        ASID: asid,
        Address: addr,
        TG: tg,
        NUM: num,
        SCALE: scale,
        Leaf: true,
      });
    }
  };
  const first = Math.floor(start / SZ_4K) * SZ_4K;
  if (limits.rangeInvalidation) {
    // Split the page count into chunks of NUM x 2^SCALE pages: SCALE is
    // the lowest set bit, NUM the next five bits (NUM field = NUM - 1).
    let pages = Math.ceil((end - first) / SZ_4K);
    let addr = first;
    while (pages > 0) {
      let scale = 0;
      while ((pages / 2 ** scale) % 2 === 0) scale++;
      const num = (pages / 2 ** scale) % 32;
      const chunk = num * 2 ** scale;
      add(addr, 1, num - 1, scale);
      addr += chunk * SZ_4K;
      pages -= chunk;
    }
  } else {
    const step = pgsize;
    const base = Math.floor(start / step) * step;
    const n = Math.ceil((end - base) / step);
    if (n > limits.tlbiMaxOps) {
      out.push(tlbiAllCmd(d));
    } else {
      for (let k = 0; k < n; k++) add(base + k * step, 0, 0, 0);
    }
  }
  if (s2 && d.children.size > 0) {
    // Combined S1+S2 entries are not reached by TLBI_S2_IPA.
    out.push({ opcode: CMD_TLBI_NH_ALL, VMID: vmid });
  }
}

/**
 * Appends CMD_ATC_INV for the ATS devices of `d` (the range) and of its
 * nested domains (everything), then CMD_SYNC if there were any.
 */
export function atcCmds(
  d: ArmSmmuDomain,
  start: number,
  end: number,
  out: Command[],
): void {
  const n = out.length;
  for (const dev of d.devices) {
    if (dev.ats) out.push(atcInvRange(dev.sid, start, end));
  }
  for (const child of d.children) {
    for (const dev of child.devices) {
      if (dev.ats) out.push(atcInvAll(dev.sid));
    }
  }
  if (out.length > n) out.push({ opcode: CMD_SYNC });
}

/** CMD_ATC_INV of every page of every PASID of `sid`. */
export function atcInvAll(sid: number): Command {
  return {
    opcode: CMD_ATC_INV,
    SID: sid,
    G: true,
    Address: 0,
    Size: ATC_INV_SIZE_ALL,
  };
}

/** CMD_ATC_INV covering [start, end): the smallest aligned power-of-two span of pages. */
export function atcInvRange(sid: number, start: number, end: number): Command {
  if (!Number.isFinite(end)) return atcInvAll(sid);
  const first = Math.floor(start / SZ_4K);
  const last = Math.floor((end - 1) / SZ_4K);
  let log2 = 0;
  while (Math.floor(first / 2 ** log2) !== Math.floor(last / 2 ** log2)) log2++;
  if (log2 >= ATC_INV_SIZE_ALL) return atcInvAll(sid);
  const base = Math.floor(first / 2 ** log2) * 2 ** log2;
  return {
    opcode: CMD_ATC_INV,
    SID: sid,
    G: true,
    Address: base * SZ_4K,
    Size: log2,
  };
}
