/**
 * The nested (vIOMMU) part of the arm-smmu-v3 driver, which Linux keeps in
 * arm-smmu-v3-iommufd.c: nested domains (a guest's stage 1 on a stage-2
 * parent), the guest CD the driver writes for them, the host side of a
 * guest TLBI (cache_invalidate_user). It never reads the guest's tables:
 * which stage a nested fault lacks comes from the hardware (the driver's
 * fault path, lib/smmu/driver_irq.ts). `ArmSmmuV3Driver` delegates
 * its nested methods here; use them through the driver.
 *
 * @module
 */
import { IopfLabError } from "../sim/errors.ts";
import { SZ_4K } from "../sim/units.ts";
import type { NestedConfig } from "../iommu/types.ts";
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
  readonly #limits: TlbiLimits;
  readonly #nextId: () => number;

  /** The nested code of the driver of `smmu`. */
  constructor(smmu: Smmu, options: ArmSmmuNestedOptions) {
    this.#smmu = smmu;
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
}
