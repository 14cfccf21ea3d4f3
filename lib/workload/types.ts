/**
 * What a workload sees of the machine: the guest's view of DMA. A workload
 * allocates buffers in guest RAM, maps them for DMA through the guest's DMA
 * API (which, depending on the mode, is free, writes a guest stage-1 table,
 * traps to the VMM, or marks a coIOMMU tracking table), and has the device
 * transfer data. Every call is asynchronous on the simulator.
 *
 * @module
 */
import type { Rng } from "../sim/rng.ts";
import type { Simulator } from "../sim/simulator.ts";

/** One device transfer. */
export interface DmaOp {
  /** Device-visible address (IOVA). */
  readonly iova: number;
  /** Bytes to transfer. */
  readonly size: number;
  /** Device writes memory (a receive, an output buffer) when true; reads otherwise. */
  readonly write: boolean;
  /** Stream: one of the device's independent DMA queues (ordering only, same address space); 0 unless a trace says otherwise. */
  readonly stream?: number;
}

/** The outcome of a transfer. */
export interface TransferResult {
  /** True when every byte was transferred. */
  readonly ok: boolean;
  /** Bytes transferred before completion or the first error. */
  readonly bytes: number;
}

/** The machine as a workload drives it. */
export interface DmaContext {
  /** The simulator (time, scheduling). */
  readonly sim: Simulator;
  /** A generator reserved for the workload. */
  readonly rng: Rng;
  /** Guest RAM size in bytes. */
  readonly guestMemory: number;
  /** Allocates `size` bytes (rounded up to 4 KiB) of guest RAM; returns the GPA. */
  allocBuffer(size: number): number;
  /** Allocates from guest RAM never used for a buffer before, while any is left (page-cache churn). */
  allocFresh(size: number): number;
  /** Returns a buffer to the guest's allocator. */
  freeBuffer(gpa: number, size: number): void;
  /** The guest's dma_map of a buffer for the device; `done` gets the IOVA. */
  dmaMap(
    gpa: number,
    size: number,
    write: boolean,
    done: (iova: number) => void,
  ): void;
  /**
   * The guest's CPU writes [gpa, gpa + size) (fills a buffer the device
   * will read): the host pages not present are faulted in first (zeroed,
   * or read back from swap), in simulated time; `done` after that. The
   * write itself (the guest's own compute) costs nothing here.
   */
  cpuWrite(gpa: number, size: number, done: () => void): void;
  /** The guest's dma_unmap. */
  dmaUnmap(iova: number, size: number, done: () => void): void;
  /** The device transfers `op`; `done` gets the result. */
  dma(op: DmaOp, done: (result: TransferResult) => void): void;
  /** Counts a workload-level event ("droppedPackets"). */
  count(name: string, n?: number): void;
}

/** A workload: started once, calls `done` when its last transfer completes. */
export interface Workload {
  /** The workload kind, as in the scenario. */
  readonly kind: string;
  /** Starts issuing work on `ctx`; `done` runs when all of it has completed. */
  start(ctx: DmaContext, done: () => void): void;
}

/**
 * Runs `count` jobs with at most `depth` in flight, calling `done` once all
 * have completed. `job(i, next)` must call `next()` exactly once.
 */
export function runWithDepth(
  count: number,
  depth: number,
  job: (i: number, next: () => void) => void,
  done: () => void,
): void {
  if (count === 0) {
    done();
    return;
  }
  let issued = 0;
  let completed = 0;
  const issue = (): void => {
    const i = issued++;
    job(i, () => {
      completed++;
      if (issued < count) issue();
      else if (completed === count) done();
    });
  };
  const first = Math.min(depth, count);
  for (let k = 0; k < first; k++) issue();
}
