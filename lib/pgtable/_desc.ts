/**
 * Armv8 VMSAv8-64 long-descriptor bits for a 4 KiB granule, 48-bit input and
 * output addresses (the layout drivers/iommu/io-pgtable-arm.c writes).
 *
 * A descriptor is 64 bits. The model keeps it as two 32-bit halves (`lo` =
 * bits 31:0, `hi` = bits 63:32); where a whole descriptor is handed out it is
 * a plain number, exact because no bit above 47 is ever set.
 *
 *     bit 0        valid
 *     bit 1        levels 0-2: 1 = table, 0 = block; level 3: 1 = page
 *     bits 4:2     stage 1 AttrIndx (MAIR index)   | bits 5:2 stage 2 MemAttr
 *     bits 7:6     stage 1 AP[2:1]                 | stage 2 S2AP (6 R, 7 W)
 *     bits 9:8     SH (shareability)
 *     bit 10       AF (access flag)
 *     bit 11       stage 1 nG (not global: ASID-tagged)
 *     bits 47:12   output address (next table, page, or block base)
 *
 * @module
 */
import { PROT_READ, PROT_WRITE } from "../sim/units.ts";
import type { Prot } from "../sim/units.ts";

/** Bit 0: the descriptor is valid. */
export const PTE_VALID = 1 << 0;
/** Bit 1 at levels 0-2: a table descriptor (clear: a block). */
export const PTE_TYPE_TABLE = 1 << 1;
/** Bit 1 at level 3: a page descriptor (clear at level 3: reserved, faults). */
export const PTE_TYPE_PAGE = 1 << 1;
/** Stage 1 AttrIndx field shift (bits 4:2, an index into MAIR). */
export const PTE_ATTRINDX_SHIFT = 2;
/** The MAIR index of normal write-back cacheable memory (as the kernel's). */
export const MAIR_ATTR_IDX_CACHE = 1;
/** Stage 2 MemAttr[3:0] = 0b1111: normal, outer and inner write-back. */
export const PTE_MEMATTR_OIWB = 0xf << 2;
/** Stage 1 AP[1] (bit 6): accessible at EL0 (unprivileged). */
export const PTE_AP_UNPRIV = 1 << 6;
/** Stage 1 AP[2] (bit 7): read-only. */
export const PTE_AP_RDONLY = 1 << 7;
/** Stage 2 S2AP[0] (bit 6): read allowed. */
export const PTE_S2AP_READ = 1 << 6;
/** Stage 2 S2AP[1] (bit 7): write allowed. */
export const PTE_S2AP_WRITE = 1 << 7;
/** SH[1:0] = 0b11 (bits 9:8): inner shareable. */
export const PTE_SH_IS = 3 << 8;
/** Bit 10: the access flag; `map` always sets it (io-pgtable-arm's ARM_LPAE_PTE_AF). */
export const PTE_AF = 1 << 10;
/** Bit 11, stage 1 only: not global, so TLB entries are tagged by ASID. */
export const PTE_NG = 1 << 11;

/** Number of input (and output) address bits: 48. */
export const IAS_BITS = 48;
/** The first IOVA beyond the 48-bit input range (2^48). */
export const MAX_IOVA = 2 ** 48;
/** The first physical address beyond the 48-bit output range (2^48). */
export const MAX_PADDR = 2 ** 48;

const TWO32 = 2 ** 32;
const SPANS = [2 ** 39, 2 ** 30, 2 ** 21, 2 ** 12] as const;

/**
 * The bytes one descriptor covers at `level` (0: 512 GiB, 1: 1 GiB,
 * 2: 2 MiB, 3: 4 KiB); a block or page at that level maps this much.
 */
export function levelSize(level: 0 | 1 | 2 | 3): number {
  return SPANS[level];
}

/**
 * The low-word attribute bits (bits 11:2) of a leaf descriptor for `prot` at
 * `stage`, following arm_lpae_prot_to_pte(): stage 1 sets nG, AP[1] and, for
 * read-only, AP[2]; a write-only stage 1 mapping is read/write because AP
 * cannot express write-only. Stage 2 sets S2AP read/write bits separately.
 * Both set AF and inner-shareable, cacheable memory attributes.
 */
export function protToPte(stage: 1 | 2, prot: Prot): number {
  let pte = PTE_AF | PTE_SH_IS;
  if (stage === 1) {
    pte |= PTE_NG | PTE_AP_UNPRIV |
      (MAIR_ATTR_IDX_CACHE << PTE_ATTRINDX_SHIFT);
    if ((prot & PROT_WRITE) === 0 && (prot & PROT_READ) !== 0) {
      pte |= PTE_AP_RDONLY;
    }
  } else {
    pte |= PTE_MEMATTR_OIWB;
    if (prot & PROT_READ) pte |= PTE_S2AP_READ;
    if (prot & PROT_WRITE) pte |= PTE_S2AP_WRITE;
  }
  return pte;
}

/**
 * The effective {@linkcode Prot} of a leaf descriptor's low word at `stage`
 * (the inverse of {@linkcode protToPte}).
 */
export function pteToProt(stage: 1 | 2, lo: number): Prot {
  if (stage === 1) {
    return (lo & PTE_AP_RDONLY) !== 0 ? PROT_READ : PROT_READ | PROT_WRITE;
  }
  return ((lo & PTE_S2AP_READ) !== 0 ? PROT_READ : 0) |
    ((lo & PTE_S2AP_WRITE) !== 0 ? PROT_WRITE : 0);
}

/**
 * The output address (bits 47:12) of a whole descriptor given as a number:
 * the next table's address for a table descriptor, the page or block base
 * for a leaf.
 */
export function pteAddress(desc: number): number {
  return (Math.floor(desc / TWO32) & 0xffff) * TWO32 +
    ((desc & 0xfffff000) >>> 0);
}

/**
 * True when a whole descriptor (as a number) at `level` is a valid leaf: a
 * page at level 3, a block at levels 1 and 2 (level 0 has no blocks with a
 * 4 KiB granule).
 */
export function pteIsLeaf(desc: number, level: 0 | 1 | 2 | 3): boolean {
  const lo = desc >>> 0;
  if ((lo & PTE_VALID) === 0) return false;
  if (level === 3) return (lo & PTE_TYPE_PAGE) !== 0;
  return level !== 0 && (lo & PTE_TYPE_TABLE) === 0;
}

/** True when a whole descriptor at `level` (0-2) is a valid table descriptor. */
export function pteIsTable(desc: number, level: 0 | 1 | 2 | 3): boolean {
  return level !== 3 && ((desc >>> 0) & 3) === 3;
}
