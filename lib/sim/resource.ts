/**
 * A resource with N servers and a FIFO queue: the IOPF workqueue's workers,
 * a device's DMA engine, a lock that serialises faults.
 *
 * @module
 */
import { IopfLabError } from "./errors.ts";
import type { Simulator } from "./simulator.ts";

/** Options of a {@linkcode Resource}. */
export interface ResourceOptions {
  /** A name for reports ("container lock"). */
  name: string;
  /** How many holders at once (1 for a lock). Default 1. */
  servers?: number;
}

/** Releases a hold on a {@linkcode Resource}. Calling it twice throws. */
export type Release = () => void;

/** A request waiting for a server (`slot`: taken with acquireSlot). */
interface Waiter {
  granted: (release: Release) => void;
  slot: boolean;
  since: number;
}

/**
 * N servers with a FIFO queue on the simulator's clock. Statistics say how
 * contended it was: how many requests waited, for how long in total, and the
 * longest queue seen.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Simulator } from "./simulator.ts";
 * import { Resource } from "./resource.ts";
 * const sim = new Simulator();
 * const lock = new Resource(sim, { name: "lock" });
 * const done: number[] = [];
 * lock.request(100, () => done.push(sim.now));
 * lock.request(100, () => done.push(sim.now));
 * sim.run();
 * assert(done.join() === "100,200");
 * ```
 */
export class Resource {
  /** The name given at construction. */
  readonly name: string;
  /** The number of servers. */
  readonly servers: number;
  #sim: Simulator;
  #busy = 0;
  #queue: Array<Waiter> = [];
  #head = 0;
  #busySince = 0;
  /** Requests that had to wait for a server. */
  waits = 0;
  /** Requests granted so far. */
  grants = 0;
  /** Total time requests spent waiting (ns). */
  totalWaitNs = 0;
  /** Longest queue seen. */
  maxQueue = 0;
  /** Server-time integral: sum over time of busy servers (ns). */
  busyNs = 0;

  /** Creates a resource on `sim`. */
  constructor(sim: Simulator, options: ResourceOptions) {
    const servers = options.servers ?? 1;
    if (!Number.isInteger(servers) || servers < 1) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create resource ${options.name}: servers must be a whole number >= 1, got ${servers}`,
      );
    }
    this.#sim = sim;
    this.name = options.name;
    this.servers = servers;
  }

  /** Servers busy now. */
  get busy(): number {
    return this.#busy;
  }

  /** Requests waiting now. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** Waits for a server, then calls `granted` with a release function. */
  acquire(granted: (release: Release) => void): void {
    this.#acquire(granted, false);
  }

  /**
   * Like {@linkcode acquire} for a hot path that keeps its callback bound
   * once: waits for a server, then calls `granted`; the holder gives the
   * server back with {@linkcode releaseSlot} (no release function is made
   * per grant). Same order, timing and statistics as `acquire`.
   */
  acquireSlot(granted: () => void): void {
    this.#acquire(granted, true);
  }

  /**
   * Gives back a server taken with {@linkcode acquireSlot} (and grants it
   * to the next waiter, if any).
   *
   * @throws {IopfLabError} EINVAL when no server is held
   */
  releaseSlot(): void {
    if (this.#busy === 0) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot release ${this.name}: no server is held`,
      );
    }
    this.#release();
  }

  #acquire(granted: Waiter["granted"], slot: boolean): void {
    if (this.#busy < this.servers) {
      this.#grant(granted, slot, 0);
      return;
    }
    this.#queue.push({ granted, slot, since: this.#sim.now });
    this.waits++;
    const q = this.queued;
    if (q > this.maxQueue) this.maxQueue = q;
  }

  /** Holds a server for `serviceNs`, then calls `done` (after releasing it). */
  request(serviceNs: number, done: () => void): void {
    this.acquire((release) => {
      this.#sim.after(serviceNs, () => {
        release();
        done();
      });
    });
  }

  #account(): void {
    const now = this.#sim.now;
    this.busyNs += this.#busy * (now - this.#busySince);
    this.#busySince = now;
  }

  /** Gives a server to `granted`, which waited `waited` ns for it. */
  #grant(granted: Waiter["granted"], slot: boolean, waited: number): void {
    this.#account();
    this.#busy++;
    this.grants++;
    this.totalWaitNs += waited;
    if (slot) {
      (granted as () => void)();
      return;
    }
    let released = false;
    granted(() => {
      if (released) {
        throw new IopfLabError(
          "EINVAL",
          `Cannot release ${this.name}: already released`,
        );
      }
      released = true;
      this.#release();
    });
  }

  #release(): void {
    this.#account();
    this.#busy--;
    if (this.#head < this.#queue.length) {
      const next = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as never;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      this.#grant(next.granted, next.slot, this.#sim.now - next.since);
    }
  }

  /** Utilisation so far: busy server-time over (servers x elapsed time). */
  utilisation(): number {
    this.#account();
    const t = this.#sim.now;
    return t > 0 ? this.busyNs / (this.servers * t) : 0;
  }
}
