/**
 * The guest's page allocator, as far as DMA buffers are concerned: buffers
 * come from guest RAM above a reserved low region (the guest kernel and its
 * early allocations), first fit, with freed buffers reused first. A guest
 * that keeps allocating fresh buffers (page cache) eventually cycles through
 * all of its RAM, which is what makes fresh-buffer workloads fault so much
 * under IOPF.
 *
 * @module
 */
import { hex, IopfLabError } from "../sim/errors.ts";
import { PAGE_SIZE } from "../sim/units.ts";

/**
 * A first-fit allocator of page-aligned guest-physical ranges.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GuestRamAllocator } from "./guest_ram.ts";
 * const a = new GuestRamAllocator(1 << 30, { reserved: 1 << 20 });
 * const gpa = a.alloc(8192);
 * assert(gpa === 1 << 20);
 * ```
 */
export class GuestRamAllocator {
  /** Guest RAM size in bytes. */
  readonly size: number;
  /** First GPA handed out. */
  readonly base: number;
  #next: number;
  #free: Array<{ gpa: number; size: number }> = [];
  #inUse = 0;

  /**
   * Creates an allocator over `size` bytes of guest RAM.
   *
   * @param size guest RAM in bytes
   * @param options.reserved bytes at the bottom never handed out (default: 1/64 of RAM, at least 1 MiB, rounded to 2 MiB)
   */
  constructor(size: number, options: { reserved?: number } = {}) {
    const twoM = 2 * 1024 * 1024;
    const reserved = options.reserved ??
      Math.max(1 << 20, Math.ceil(size / 64 / twoM) * twoM);
    if (reserved >= size) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot allocate DMA buffers in ${size} bytes of guest RAM: ${reserved} bytes are reserved`,
      );
    }
    this.size = size;
    this.base = reserved;
    this.#next = reserved;
  }

  /** Bytes handed out and not freed. */
  get inUse(): number {
    return this.#inUse;
  }

  /** Allocates `size` bytes (rounded up to whole pages). Wraps around RAM; ENOMEM when nothing fits. */
  alloc(size: number): number {
    const bytes = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    for (let i = 0; i < this.#free.length; i++) {
      const f = this.#free[i]!;
      if (f.size >= bytes) {
        const gpa = f.gpa;
        if (f.size === bytes) this.#free.splice(i, 1);
        else this.#free[i] = { gpa: f.gpa + bytes, size: f.size - bytes };
        this.#inUse += bytes;
        return gpa;
      }
    }
    if (this.#next + bytes > this.size) {
      throw new IopfLabError(
        "ENOMEM",
        `Cannot allocate a ${bytes}-byte guest buffer: guest RAM exhausted (${this.#inUse} bytes in use)`,
      );
    }
    const gpa = this.#next;
    this.#next += bytes;
    this.#inUse += bytes;
    return gpa;
  }

  /** Frees a buffer; {@linkcode alloc} reuses it first fit. */
  free(gpa: number, size: number): void {
    const bytes = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    if (gpa < this.base || gpa + bytes > this.#next || bytes > this.#inUse) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot free guest buffer ${hex(gpa)}+${bytes}: not allocated`,
      );
    }
    this.#inUse -= bytes;
    this.#free.push({ gpa, size: bytes });
  }

  /**
   * Allocates from RAM never handed out before while any remains, then
   * first fit: a guest whose page cache takes fresh pages walks through all
   * of its RAM before it reuses any.
   */
  allocFresh(size: number): number {
    const bytes = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    if (this.#next + bytes <= this.size) {
      const gpa = this.#next;
      this.#next += bytes;
      this.#inUse += bytes;
      return gpa;
    }
    return this.alloc(size);
  }
}
