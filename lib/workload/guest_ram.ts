/**
 * The guest's page allocator, as far as DMA buffers are concerned: buffers
 * come from guest RAM above a reserved low region (the guest kernel and its
 * early allocations), first fit, with freed buffers reused first. A guest
 * that keeps allocating fresh buffers (page cache) eventually cycles through
 * all of its RAM, which is what makes fresh-buffer workloads fault so much
 * under IOPF.
 *
 * RAM the guest's CPU already uses (its kernel, page cache and
 * applications: the `touched` option, from the bottom of RAM, as a booted
 * Linux fills its memory from low addresses first since 5.10's "place
 * pages to tail in __free_pages_core()") is handed out last: buffers come
 * from the RAM above it while any is left, then from the used part (the
 * guest reclaiming its page cache for them).
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
  /** End of the RAM the guest uses itself (at least {@linkcode base}); buffers come from above it first. */
  readonly touchedEnd: number;
  /** Start of the region handed out first (touchedEnd, or lower for a buffer larger than the RAM above it). */
  #hiStart: number;
  /** Next never-handed-out byte above #hiStart, then (once that is used up) below it. */
  #next: number;
  /** True once the RAM above touchedEnd is used up and #next walks [base, touchedEnd). */
  #low = false;
  #free: Array<{ gpa: number; size: number }> = [];
  #inUse = 0;

  /**
   * Creates an allocator over `size` bytes of guest RAM.
   *
   * @param size guest RAM in bytes
   * @param options.reserved bytes at the bottom never handed out (default: 1/64 of RAM, at least 1 MiB, rounded to 2 MiB)
   * @param options.touched bytes at the bottom the guest uses itself, handed out only once the RAM above is used up (default 0; rounded up to 2 MiB)
   */
  constructor(
    size: number,
    options: { reserved?: number; touched?: number } = {},
  ) {
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
    const touched = Math.ceil((options.touched ?? 0) / twoM) * twoM;
    this.touchedEnd = Math.min(size, Math.max(reserved, touched));
    this.#hiStart = this.touchedEnd;
    this.#next = this.touchedEnd;
    if (this.#next >= size) this.#toLow();
  }

  /** The RAM above touchedEnd is used up: continue from base. */
  #toLow(): void {
    this.#low = true;
    this.#next = this.base;
  }

  /** Bytes never handed out that `#next` can still reach in its region. */
  #room(): number {
    return (this.#low ? this.#hiStart : this.size) - this.#next;
  }

  /** Takes `bytes` never handed out, or returns -1 when no region has room. */
  #bump(bytes: number): number {
    const twoM = 2 * 1024 * 1024;
    if (
      !this.#low && this.#room() < bytes && this.#next === this.#hiStart &&
      this.size - this.base >= bytes
    ) {
      // The first buffer is larger than the RAM above the touched part: it
      // takes the top of RAM, reaching down into what the guest used.
      const top = Math.floor((this.size - bytes) / twoM) * twoM;
      this.#hiStart = Math.max(this.base, top);
      this.#next = this.#hiStart;
    }
    if (this.#room() < bytes && !this.#low) this.#toLow();
    if (this.#room() < bytes) return -1;
    const gpa = this.#next;
    this.#next += bytes;
    this.#inUse += bytes;
    return gpa;
  }

  /** True when [gpa, gpa + bytes) lies in RAM handed out at some point. */
  #handedOut(gpa: number, bytes: number): boolean {
    const end = gpa + bytes;
    const hiEnd = this.#low ? this.size : this.#next;
    if (gpa >= this.#hiStart && end <= hiEnd) return true;
    return this.#low && gpa >= this.base && end <= this.#next;
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
    const gpa = this.#bump(bytes);
    if (gpa < 0) {
      throw new IopfLabError(
        "ENOMEM",
        `Cannot allocate a ${bytes}-byte guest buffer: guest RAM exhausted (${this.#inUse} bytes in use)`,
      );
    }
    return gpa;
  }

  /** Frees a buffer; {@linkcode alloc} reuses it first fit. */
  free(gpa: number, size: number): void {
    const bytes = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    if (!this.#handedOut(gpa, bytes) || bytes > this.#inUse) {
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
    const gpa = this.#bump(bytes);
    return gpa >= 0 ? gpa : this.alloc(size);
  }
}
