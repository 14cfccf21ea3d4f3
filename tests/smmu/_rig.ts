/**
 * Stream rigs shared by the SMMU tests: a stage-1 stream (a CD over a host
 * table, STE.Config = 5) and a nested stream (a guest stage 1 in VM space
 * over a block-mapped host stage 2, STE.Config = 7), on top of the plain
 * {@linkcode rig} of `_helpers.ts`.
 */
import { IoPgtable } from "../../lib/pgtable/mod.ts";
import type { Cd, SmmuOptions, SteNested, SteS1 } from "../../lib/smmu/mod.ts";
import { hostTable, type Rig, rig } from "./_helpers.ts";

/** Where the CD tables of {@linkcode s1Rig} live (host PA). */
export const CD_PTR = 0x7000;

/** A valid CD for `table` (ASID 3, 48-bit input, 4 KiB granule, terminate with abort, record); `over` overrides. */
export function cdFor(table: IoPgtable, over: Partial<Cd> = {}): Cd {
  return {
    V: true,
    ASID: 3,
    TTB0: table.root,
    T0SZ: 16,
    TG0: 0,
    S: false,
    R: true,
    A: true,
    ...over,
  };
}

/** A stage-1-only STE with its CD table at `ptr`, one CD; `over` overrides. */
export function steS1(
  ptr = CD_PTR,
  over: Partial<Omit<SteS1, "Config">> = {},
): SteS1 {
  return {
    V: true,
    Config: 5,
    S1ContextPtr: ptr,
    S1CDMax: 0,
    S1STALLD: false,
    ...over,
  };
}

/** Options of {@linkcode s1Rig}. */
export interface S1RigOptions {
  /** SMMU options. */
  smmu?: Partial<Omit<SmmuOptions, "costs" | "memory">>;
  /** CD fields. */
  cd?: Partial<Cd>;
  /** STE fields. */
  ste?: Partial<Omit<SteS1, "Config">>;
}

/** A rig with a stage-1 stream at SID 1: CD 0 at {@linkcode CD_PTR} over a fresh host stage-1 table `s1`. */
export function s1Rig(options: S1RigOptions = {}): { r: Rig; s1: IoPgtable } {
  const r = rig(options.smmu);
  const s1 = hostTable(r.memory, 1);
  r.smmu.writeCd(CD_PTR, 0, cdFor(s1, options.cd));
  r.smmu.writeSte(1, steS1(CD_PTR, options.ste));
  return { r, s1 };
}

/** The VMID (and guest address space) of {@linkcode nestedRig}. */
export const VMID = 5;
/** The IPA of the guest's CD table. */
export const CD_IPA = 0x1_0000;
/** Guest RAM: IPAs [0, 16 MiB), block-mapped by stage 2. */
export const GUEST_RAM = 16 * 2 ** 20;
/** Where guest RAM starts in host PA. */
export const HOST_BASE = 0x1_0000_0000;

/** Options of {@linkcode nestedRig}. */
export interface NestedRigOptions {
  /** SMMU options. */
  smmu?: Partial<Omit<SmmuOptions, "costs" | "memory">>;
  /** CD fields. */
  cd?: Partial<Cd>;
  /** STE fields. */
  ste?: Partial<Omit<SteNested, "Config">>;
}

/**
 * A rig with a nested stream at SID 2: guest RAM block-mapped by the host
 * stage 2 `s2` (with the pre-6.13 split on unmap, so tests can punch 4 KiB
 * holes), the guest's stage-1 table `s1` in guest space with its table
 * pages inside guest RAM (from 8 MiB), and its CD at {@linkcode CD_IPA}.
 */
export function nestedRig(
  options: NestedRigOptions = {},
): { r: Rig; s1: IoPgtable; s2: IoPgtable } {
  const r = rig(options.smmu);
  const s2 = hostTable(r.memory, 2, true);
  s2.map(0, HOST_BASE, GUEST_RAM, 3);
  let next = 8 * 2 ** 20;
  const s1 = new IoPgtable({
    stage: 1,
    allocTable: () => {
      const a = next;
      next += 4096;
      return a;
    },
  });
  r.memory.register(VMID, s1);
  r.smmu.writeCd(CD_IPA, 0, cdFor(s1, { ASID: 9, ...options.cd }), VMID);
  r.smmu.writeSte(2, {
    V: true,
    Config: 7,
    S1ContextPtr: CD_IPA,
    S1CDMax: 0,
    S1STALLD: false,
    S2VMID: VMID,
    S2TTB: s2.root,
    S2S: false,
    S2R: true,
    ...options.ste,
  });
  return { r, s1, s2 };
}
