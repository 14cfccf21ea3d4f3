/**
 * Long kernel operations in simulated time: a pin of all guest RAM, a
 * prefault, a guest's first touch of its memory run for seconds on a real
 * machine, and their state (pages pinned, populated) grows as they go. An
 * operation over a range is cut into steps of whole 2 MiB blocks (at most
 * {@linkcode MAX_STEP_BYTES}, at least {@linkcode MIN_STEPS} steps when the
 * range allows), each step changes its part of the state and the next one
 * runs after the time it cost, so a time series sampled during the
 * operation sees it part done, while a 1 TiB range still takes only about
 * a thousand events.
 *
 * @module
 */
import { IopfLabError } from "./errors.ts";
import type { Simulator } from "./simulator.ts";
import { SZ_1G, SZ_2M } from "./units.ts";

/** Steps an operation is cut into when its range allows (64: a series of 100 points sees it grow). */
export const MIN_STEPS: number = 64;

/** Largest step (1 GiB, the largest page): a 1 TiB range is 1024 steps. */
export const MAX_STEP_BYTES: number = SZ_1G;

/**
 * The step size, in bytes, of an operation over `total` bytes: `total /`
 * {@linkcode MIN_STEPS} rounded up to a multiple of `align` (a power of two,
 * at least 2 MiB: a step never splits a huge page), capped at
 * {@linkcode MAX_STEP_BYTES} (or `align` when larger).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stepBytes } from "./steps.ts";
 * assert.equal(stepBytes(256 * 2 ** 20), 4 * 2 ** 20); // 64 steps of 4 MiB
 * assert.equal(stepBytes(2 ** 40), 2 ** 30); // 1024 steps of 1 GiB
 * ```
 */
export function stepBytes(total: number, align: number = SZ_2M): number {
  const a = Math.max(align, SZ_2M);
  const want = Math.ceil(total / MIN_STEPS / a) * a;
  return Math.max(a, Math.min(want, Math.max(MAX_STEP_BYTES, a)));
}

/** Options of {@linkcode runSteps}. */
export interface RunStepsOptions {
  /** Bytes of the range. */
  readonly total: number;
  /** Bytes per step (the last one may be shorter); see {@linkcode stepBytes}. */
  readonly step: number;
  /**
   * Does the part [offset, offset + bytes) of the operation at the current
   * simulated time, changing its state at once, and returns the ns it took;
   * the next part starts that much later. Throwing an `IopfLabError` stops
   * the operation.
   */
  readonly run: (offset: number, bytes: number) => number;
  /**
   * Called after the last part's time has passed, with the total ns, or
   * with the error that stopped the operation (at the time it was thrown).
   */
  readonly done: (error: IopfLabError | undefined, ns: number) => void;
}

/**
 * Runs an operation over a range step by step on `sim` (see the module
 * doc). The first step runs now, in the caller's event. An empty range
 * calls `done` at once.
 */
export function runSteps(sim: Simulator, o: RunStepsOptions): void {
  if (!(o.step > 0) || !(o.total >= 0)) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot run an operation over ${o.total} bytes in steps of ${o.step}: both must be positive`,
      "step",
    );
  }
  let off = 0;
  let ns = 0;
  const next = (): void => {
    if (off >= o.total) {
      o.done(undefined, ns);
      return;
    }
    const n = Math.min(o.step, o.total - off);
    let t: number;
    try {
      t = o.run(off, n);
    } catch (e) {
      if (!(e instanceof IopfLabError)) throw e;
      o.done(e, ns);
      return;
    }
    off += n;
    ns += t;
    sim.after(t, next);
  };
  next();
}
