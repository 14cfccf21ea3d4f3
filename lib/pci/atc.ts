/**
 * The Address Translation Cache of a PCIe endpoint with ATS.
 *
 * @module
 */
import { SetAssocTlb, TLB_KIND_ANY } from "../smmu/tlb.ts";
import { ATC_INV_SIZE_ALL } from "../smmu/types.ts";

/** Options of an {@linkcode Atc}. */
export interface AtcOptions {
  /** Entries. Default 64. */
  entries?: number;
  /** Ways per set. Default 4. */
  ways?: number;
}

/**
 * The scratch record an ATC lookup fills on a hit (the device keeps one and
 * passes it to every {@linkcode Atc.lookupInto}).
 */
export interface AtcHit {
  /** Permissions (IOMMU_READ | IOMMU_WRITE) of the entry that hit. */
  prot: number;
}

/**
 * An ATC: translations returned by ATS Translation Completions, tagged by
 * PASID (-1 = none), for 4 KiB, 2 MiB or 1 GiB pages, with their R/W
 * permissions. Invalidated by ATC Invalidation Requests whose size is the
 * log2 of a number of 4 KiB pages around an address (52 = everything).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Atc } from "./atc.ts";
 * const atc = new Atc();
 * atc.insert(-1, 0x5000, 0x1000, 0x9000_0000, 3);
 * assert(atc.lookup(-1, 0x5123) === 0x9000_0123);
 * atc.invalidate(-1, 0x4000, 1); // pages 0x4000-0x5fff
 * assert(atc.lookup(-1, 0x5123) === -1);
 * ```
 */
export class Atc {
  /** The underlying cache (typed arrays). */
  readonly tlb: SetAssocTlb;
  /** Filled by {@linkcode lookup}, for {@linkcode lastProt}. */
  readonly #hit: AtcHit = { prot: 0 };

  /** Creates an empty ATC. */
  constructor(options: AtcOptions = {}) {
    this.tlb = new SetAssocTlb({
      entries: options.entries ?? 64,
      ways: options.ways ?? 4,
      name: "ATC",
    });
  }

  /**
   * The translated address of `addr` for `pasid`, or -1 on a miss. The
   * entry's permissions are then in {@linkcode lastProt}.
   */
  lookup(pasid: number, addr: number): number {
    return this.lookupInto(pasid, addr, this.#hit);
  }

  /**
   * {@linkcode lookup} for a hot path: the translated address of `addr`
   * for `pasid`, or -1 on a miss (and `hit` unchanged); on a hit the
   * entry's permissions are in `hit.prot`.
   */
  lookupInto(pasid: number, addr: number, hit: AtcHit): number {
    const i = this.tlb.lookup(pasid + 1, 0, addr);
    if (i < 0) return -1;
    hit.prot = this.tlb.prot[i]!;
    return this.tlb.translate(i, addr);
  }

  /** Permissions (IOMMU_READ | IOMMU_WRITE) of the entry the last {@linkcode lookup} hit used. */
  get lastProt(): number {
    return this.#hit.prot;
  }

  /** Caches a translation of the `pageSize` page at `inBase` to `outBase`. */
  insert(
    pasid: number,
    inBase: number,
    pageSize: number,
    outBase: number,
    prot: number,
  ): void {
    this.tlb.insert(
      pasid + 1,
      0,
      TLB_KIND_ANY,
      pageSize,
      inBase,
      outBase,
      prot,
    );
  }

  /**
   * Drops the translations of `pasid` (-1 = every PASID) overlapping the
   * 2^log2Pages pages aligned around `addr` (log2Pages >= 52: everything).
   * Returns how many entries were dropped.
   */
  invalidate(pasid: number, addr: number, log2Pages: number): number {
    const tag = pasid < 0 ? -1 : pasid + 1;
    if (log2Pages >= ATC_INV_SIZE_ALL) {
      return this.tlb.invalidate(tag, undefined, 0, 0, Infinity);
    }
    const size = 2 ** log2Pages * 4096;
    const base = Math.floor(addr / size) * size;
    return this.tlb.invalidate(tag, undefined, 0, base, base + size);
  }

  /** Entries held now. */
  get size(): number {
    return this.tlb.valid;
  }
}
