/**
 * Guest memory slots (KVM memslots): GPA ranges backed by HVA ranges of the
 * VMM's address space.
 *
 * @module
 */
import { hex, IopfLabError } from "../sim/errors.ts";
import { checkAddress, MAX_ADDRESS, SZ_4K } from "../sim/units.ts";

/** Options of {@linkcode Memslots.add}. */
export interface MemslotOptions {
  /** First guest-physical address, 4 KiB aligned. */
  gpa: number;
  /** Length in bytes, a positive multiple of 4 KiB. */
  size: number;
  /** HVA backing the first byte, 4 KiB aligned. */
  hva: number;
}

/** One memory slot. */
export interface Memslot {
  /** Slot id, unique within its {@linkcode Memslots} (never reused). */
  readonly id: number;
  /** First guest-physical address. */
  readonly gpa: number;
  /** Length in bytes. */
  readonly size: number;
  /** HVA backing `gpa`. */
  readonly hva: number;
}

/**
 * The guest's memory slots, sorted by GPA; slots never overlap in GPA
 * space (several may share HVAs, as aliases do).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Memslots } from "./memslots.ts";
 * const slots = new Memslots();
 * slots.add({ gpa: 0x4000_0000, size: 0x10_0000, hva: 0x7f00_0000_0000 });
 * assert(slots.gpaToHva(0x4000_1234) === 0x7f00_0000_1234);
 * assert(slots.gpaToHva(0) === -1);
 * ```
 */
export class Memslots {
  #slots: Memslot[] = [];
  #nextId = 0;

  /** Number of slots. */
  get count(): number {
    return this.#slots.length;
  }

  /**
   * Adds a slot; EINVAL for misaligned or empty ranges, EEXIST when the GPA
   * range overlaps a slot.
   */
  add(options: MemslotOptions): Memslot {
    const { gpa, size, hva } = options;
    checkAddress(gpa, "memslot GPA", SZ_4K);
    checkAddress(size, "memslot size", SZ_4K);
    checkAddress(hva, "memslot HVA", SZ_4K);
    if (size === 0 || gpa + size > MAX_ADDRESS || hva + size > MAX_ADDRESS) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot add memslot at GPA ${hex(gpa)}: size ${
          hex(size)
        } is 0 or runs past 2^52`,
      );
    }
    const i = this.#upper(gpa);
    const prev = this.#slots[i - 1];
    const next = this.#slots[i];
    const other = prev && prev.gpa + prev.size > gpa
      ? prev
      : next && next.gpa < gpa + size
      ? next
      : undefined;
    if (other) {
      throw new IopfLabError(
        "EEXIST",
        `Cannot add memslot GPA ${hex(gpa)}-${
          hex(gpa + size)
        }: overlaps slot ${other.id} at ${hex(other.gpa)}-${
          hex(other.gpa + other.size)
        }`,
      );
    }
    const slot: Memslot = Object.freeze({ id: this.#nextId++, gpa, size, hva });
    this.#slots.splice(i, 0, slot);
    return slot;
  }

  /** Removes the slot with this id; ENOENT if there is none. */
  remove(id: number): Memslot {
    const i = this.#slots.findIndex((s) => s.id === id);
    if (i < 0) {
      throw new IopfLabError(
        "ENOENT",
        `Cannot remove memslot ${id}: no such slot`,
      );
    }
    return this.#slots.splice(i, 1)[0]!;
  }

  /** The slot containing `gpa`, if any. */
  find(gpa: number): Memslot | undefined {
    const s = this.#slots[this.#upper(gpa) - 1];
    return s && gpa < s.gpa + s.size ? s : undefined;
  }

  /** HVA backing `gpa`, or -1 when no slot contains it. */
  gpaToHva(gpa: number): number {
    const s = this.find(gpa);
    return s ? s.hva + (gpa - s.gpa) : -1;
  }

  /** GPA that `hva` backs (the lowest if several slots alias it), or -1. */
  hvaToGpa(hva: number): number {
    let best = -1;
    for (const s of this.#slots) {
      if (hva >= s.hva && hva < s.hva + s.size) {
        const g = s.gpa + (hva - s.hva);
        if (best < 0 || g < best) best = g;
      }
    }
    return best;
  }

  /** The slots in GPA order. */
  [Symbol.iterator](): IterableIterator<Memslot> {
    return this.#slots.slice()[Symbol.iterator]();
  }

  /** Index of the first slot whose GPA is above `gpa`. */
  #upper(gpa: number): number {
    let lo = 0, hi = this.#slots.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#slots[mid]!.gpa <= gpa) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
