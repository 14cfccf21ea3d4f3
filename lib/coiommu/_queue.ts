/**
 * A FIFO of (frame number, busy count) pairs in typed arrays: the pinned
 * page lists of the coIOMMU unpin thread, one entry per pinned page without
 * an object per page.
 *
 * @module
 */

/** A growable ring of (gfn, busy) pairs. */
export class GfnQueue {
  #gfn = new Float64Array(64);
  #busy = new Uint32Array(64);
  #head = 0;
  #size = 0;

  /** Entries queued. */
  get length(): number {
    return this.#size;
  }

  /** Appends a frame with its busy count. */
  push(gfn: number, busy: number): void {
    if (this.#size === this.#gfn.length) this.#grow();
    const i = (this.#head + this.#size) % this.#gfn.length;
    this.#gfn[i] = gfn;
    this.#busy[i] = busy;
    this.#size++;
  }

  /** The first frame (the queue must not be empty). */
  frontGfn(): number {
    return this.#gfn[this.#head]!;
  }

  /** The first frame's busy count (the queue must not be empty). */
  frontBusy(): number {
    return this.#busy[this.#head]!;
  }

  /** Removes the first entry (no-op when empty). */
  shift(): void {
    if (this.#size === 0) return;
    this.#head = (this.#head + 1) % this.#gfn.length;
    this.#size--;
  }

  /** Moves every entry of `other` to the end of this queue. */
  append(other: GfnQueue): void {
    while (other.length > 0) {
      this.push(other.frontGfn(), other.frontBusy());
      other.shift();
    }
  }

  #grow(): void {
    const n = this.#gfn.length;
    const gfn = new Float64Array(n * 2);
    const busy = new Uint32Array(n * 2);
    for (let k = 0; k < this.#size; k++) {
      const i = (this.#head + k) % n;
      gfn[k] = this.#gfn[i]!;
      busy[k] = this.#busy[i]!;
    }
    this.#gfn = gfn;
    this.#busy = busy;
    this.#head = 0;
  }
}
