/**
 * The nested (vIOMMU) part of the arm-smmu-v3 driver, which Linux keeps in
 * arm-smmu-v3-iommufd.c: nested domains (a guest's stage 1 on a stage-2
 * parent), the guest CD the driver writes for them, the host side of a
 * guest TLBI (cache_invalidate_user), and, for a page request on a nested
 * domain, which stage lacks the page. `ArmSmmuV3Driver` delegates
 * its nested methods here; use them through the driver.
 *
 * @module
 */
import { IopfLabError } from "../sim/errors.ts";
import { PROT_READ, PROT_WRITE, SZ_4K } from "../sim/units.ts";
import { newWalkResult } from "../pgtable/mod.ts";
import type { NestedConfig } from "../iommu/types.ts";
import type { TableMemory } from "./memory.ts";
import type { Smmu } from "./smmu.ts";
import { type Cd, CMD_SYNC, type Command } from "./types.ts";
import {
  ArmSmmuDomain,
  atcCmds,
  tlbiAllCmd,
  type TlbiLimits,
  tlbiRangeCmds,
} from "./_domain.ts";

/** What {@linkcode ArmSmmuNested} uses of its driver. */
export interface ArmSmmuNestedOptions {
  /** The SMMU's table memory (the guest's tables and CD tables, by VMID). */
  memory: TableMemory;
  /** The driver's range-invalidation limits. */
  limits: TlbiLimits;
  /** Hands out the driver's next domain id. */
  nextId: () => number;
}

/**
 * The nested-domain code of an `ArmSmmuV3Driver` (one per
 * driver). Takes domains the driver has checked are its own.
 */
export class ArmSmmuNested {
  readonly #smmu: Smmu;
  readonly #memory: TableMemory;
  readonly #limits: TlbiLimits;
  readonly #nextId: () => number;
  readonly #w1 = newWalkResult();

  /** The nested code of the driver of `smmu`. */
  constructor(smmu: Smmu, options: ArmSmmuNestedOptions) {
    this.#smmu = smmu;
    this.#memory = options.memory;
    this.#limits = options.limits;
    this.#nextId = options.nextId;
  }

  /** `ArmSmmuV3Driver.domainAllocNested` on a domain of the driver. */
  domainAllocNested(p: ArmSmmuDomain, config: NestedConfig): ArmSmmuDomain {
    if (p.kind !== "paging-s2") {
      throw new IopfLabError(
        "EINVAL",
        `Cannot allocate a nested domain on domain ${p.id}: the parent must be a stage-2 paging domain, not ${p.kind}`,
      );
    }
    const f = this.#smmu.features;
    if (!f.s1 || !f.s2) {
      throw new IopfLabError(
        "ENODEV",
        "Cannot allocate a nested domain: the SMMU does not implement both stages",
      );
    }
    if (
      !Number.isInteger(config.asid) || config.asid < 0 || config.asid > 0xffff
    ) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot allocate a nested domain: ASID ${config.asid} is not in 0..65535`,
      );
    }
    const owns = config.s1ContextPtr === undefined;
    const ptr = config.s1ContextPtr ?? config.s1Ttb;
    const d = new ArmSmmuDomain({
      id: this.#nextId(),
      kind: "nested",
      pgsizeBitmap: p.pgsizeBitmap,
      parent: p,
      vmid: p.vmid,
      asid: config.asid,
      nested: config,
      s1ContextPtr: ptr,
      ownsCdTable: owns,
    });
    if (owns) {
      this.#smmu.writeCd(ptr, 0, this.nestedCd(config, false), p.vmid);
    }
    p.children.add(d);
    return d;
  }

  /** `ArmSmmuV3Driver.cacheInvalidateUser` on a domain of the driver. */
  cacheInvalidateUser(
    d: ArmSmmuDomain,
    range: { iova: number; size: number } | undefined,
    done: () => void,
  ): void {
    const cmds: Command[] = [];
    if (range) {
      tlbiRangeCmds(
        d,
        range.iova,
        range.iova + range.size,
        SZ_4K,
        this.#limits,
        cmds,
      );
    } else cmds.push(tlbiAllCmd(d));
    cmds.push({ opcode: CMD_SYNC });
    atcCmds(
      d,
      range ? range.iova : 0,
      range ? range.iova + range.size : Infinity,
      cmds,
    );
    this.#smmu.submit(cmds, done);
  }

  /**
   * The CD the driver writes for a nested domain that has no CD table of
   * its own: the guest's ASID and TTB0, CD.S when the SMMU forces stalls or
   * the guest asks for stalls and `stall` (IOPF enabled) allows them.
   */
  nestedCd(config: NestedConfig, stall: boolean): Cd {
    const forced = this.#smmu.features.stallModel === "forced";
    return {
      V: true,
      ASID: config.asid,
      TTB0: config.s1Ttb,
      T0SZ: 16,
      TG0: 0,
      S: forced || (config.stall && stall),
      R: true,
      A: true,
    };
  }

  /**
   * For a page request on a nested domain: the page-aligned IPA whose
   * stage-2 translation is missing (a stage-1 descriptor's page or the
   * output page), or -1 when stage 1 is the one to fix.
   */
  nestedFaultIpa(d: ArmSmmuDomain, addr: number, write: boolean): number {
    const s2 = d.parent!.pgtable!;
    const cfg = d.nested!;
    const s1 = this.#memory.resolve(d.vmid, cfg.s1Ttb);
    const page = (x: number) => Math.floor(x / SZ_4K) * SZ_4K;
    if (!s1) return s2.iovaToPhys(cfg.s1Ttb) < 0 ? page(cfg.s1Ttb) : -1;
    const w = s1.walk(addr, this.#w1);
    for (let k = 0; k < w.reads; k++) {
      const a = w.descAddrs[k]!;
      if (s2.iovaToPhys(a) < 0) return page(a);
    }
    if (!w.ok) return -1;
    const need = write ? PROT_WRITE : PROT_READ;
    if ((w.prot & need) !== need) return -1;
    return s2.iovaToPhys(w.pa) < 0 ? page(w.pa) : -1;
  }
}
