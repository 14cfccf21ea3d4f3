/**
 * Where the SMMU finds translation tables: a registry of page tables by the
 * address of their root, in the address space they live in.
 *
 * @module
 */
import type { IoPgtable } from "../pgtable/mod.ts";
import type { Cd } from "./types.ts";

/**
 * A context-descriptor table: CDs indexed by SubstreamID (index 0 for
 * transactions without one). Its memory is the array itself: writing an
 * element is the driver (or the guest) writing a CD; the SMMU sees the change
 * only after it drops its cached copy (CMD_CFGI_CD).
 */
export type CdTable = (Cd | undefined)[];

/** The host physical address space. */
export const HOST_PA_SPACE = 0;

/**
 * Resolves a table root address to the page table stored there. The host's
 * stage-1/stage-2 tables live in host physical memory (space 0); a guest's
 * stage-1 tables live in its guest-physical (IPA) space, keyed by the VMID of
 * the stage 2 that translates it. The SMMU translates every stage-1
 * descriptor address of a nested walk through stage 2 before it reads it, so
 * an unmapped table page still faults at stage 2 (CLASS=TT).
 */
export class TableMemory {
  #tables = new Map<string, IoPgtable>();
  #cdTables = new Map<string, CdTable>();

  /** Makes `table` reachable at its root address in `space`. */
  register(space: number, table: IoPgtable): void {
    this.#tables.set(`${space}:${table.root}`, table);
  }

  /** Removes the table rooted at `root` in `space`. */
  unregister(space: number, root: number): void {
    this.#tables.delete(`${space}:${root}`);
  }

  /** The table rooted at `root` in `space`, if any. */
  resolve(space: number, root: number): IoPgtable | undefined {
    return this.#tables.get(`${space}:${root}`);
  }

  /**
   * Makes the CD table `table` reachable at address `ptr` in `space` (what an
   * STE's S1ContextPtr points at; for a nested STE an IPA in the guest's
   * space, keyed by its VMID).
   */
  registerCdTable(space: number, ptr: number, table: CdTable): void {
    this.#cdTables.set(`${space}:${ptr}`, table);
  }

  /** Removes the CD table at `ptr` in `space`. */
  unregisterCdTable(space: number, ptr: number): void {
    this.#cdTables.delete(`${space}:${ptr}`);
  }

  /** The CD table at `ptr` in `space`, if any. */
  resolveCdTable(space: number, ptr: number): CdTable | undefined {
    return this.#cdTables.get(`${space}:${ptr}`);
  }
}
