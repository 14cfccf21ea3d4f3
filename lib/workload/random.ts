/**
 * The `random` workload: accesses over a working set, uniform or Zipf.
 *
 * @module
 */
import { choice, fail, fraction, integer, size } from "../sim/fields.ts";
import { IopfLabError } from "../sim/errors.ts";
import { formatSize } from "../sim/units.ts";
import { fitVm, type WorkloadKindSpec } from "./kind.ts";
import { MAX_COUNT } from "./limits.ts";
import { type DmaContext, runWithDepth, type Workload } from "./types.ts";
import { ZipfSampler } from "./zipf.ts";

/** How the `random` workload picks offsets. */
export type Distribution = "uniform" | "zipf";

/** `random`: accesses over a working set. */
export interface RandomConfig {
  /** The workload kind. */
  readonly kind: "random";
  /** Bytes of the region touched. ["1GiB"] */
  readonly workingSet: number;
  /** Number of accesses. [1000000] */
  readonly accesses: number;
  /** Bytes per access. ["4KiB"] */
  readonly accessSize: number;
  /** Offset distribution. ["uniform"] */
  readonly distribution: Distribution;
  /** Fraction of accesses that write, 0..1. [0.5] */
  readonly writeFraction: number;
  /** Accesses in flight at once (the device's queue depth), 1..65536. [16] */
  readonly queueDepth: number;
}

/** Zipf exponent of the "zipf" distribution. */
export const ZIPF_EXPONENT = 1;

const DISTRIBUTIONS: readonly Distribution[] = ["uniform", "zipf"];

/** The fields of `random`. */
export const RANDOM_FIELDS = {
  workingSet: {
    type: "size",
    unit: "bytes",
    default: "1GiB",
    doc: "Bytes of the region touched",
  },
  accesses: {
    type: "integer",
    unit: "",
    default: 1_000_000,
    min: 1,
    max: MAX_COUNT,
    doc: "Number of accesses",
  },
  accessSize: {
    type: "size",
    unit: "bytes",
    default: "4KiB",
    doc: "Bytes per access (at most workload.workingSet)",
  },
  distribution: {
    type: "choice",
    unit: "",
    default: "uniform",
    values: DISTRIBUTIONS,
    doc: "Offset distribution (zipf: exponent 1)",
  },
  writeFraction: {
    type: "fraction",
    unit: "",
    default: 0.5,
    min: 0,
    max: 1,
    doc: "Fraction of accesses that write",
  },
  queueDepth: {
    type: "integer",
    unit: "",
    default: 16,
    min: 1,
    max: 65536,
    doc: "Accesses in flight at once (the device's queue depth)",
  },
} as const;

/** The `random` kind. */
export const randomWorkload: WorkloadKindSpec<RandomConfig> = {
  kind: "random",
  doc: "accesses over a working set",
  fields: RANDOM_FIELDS,
  resolve(o, env) {
    const F = RANDOM_FIELDS;
    const workingSet = size(
      o.workingSet,
      "workload.workingSet",
      F.workingSet.default,
    );
    fitVm(workingSet, "workload.workingSet", "the working set", env.vmMemory);
    const accesses = integer(
      o.accesses,
      "workload.accesses",
      F.accesses.min,
      F.accesses.max,
      F.accesses.default,
    );
    const accessSize = size(
      o.accessSize,
      "workload.accessSize",
      F.accessSize.default,
    );
    if (accessSize > workingSet) {
      fail(
        "workload.accessSize",
        `${formatSize(accessSize)} is larger than workload.workingSet (${
          formatSize(workingSet)
        })`,
      );
    }
    const distribution = choice(
      o.distribution,
      "workload.distribution",
      F.distribution.values,
      F.distribution.default,
    );
    const writeFraction = fraction(
      o.writeFraction,
      "workload.writeFraction",
      F.writeFraction.default,
    );
    return {
      kind: "random",
      workingSet,
      accesses,
      accessSize,
      distribution,
      writeFraction,
      queueDepth: integer(
        o.queueDepth,
        "workload.queueDepth",
        F.queueDepth.min,
        F.queueDepth.max,
        F.queueDepth.default,
      ),
    };
  },
  make: (w) => new RandomWorkload({ ...w, zipfExponent: ZIPF_EXPONENT }),
};

/** Options of {@linkcode RandomWorkload}. */
export interface RandomOptions {
  /** Bytes of the region the device touches. */
  readonly workingSet: number;
  /** Number of accesses. */
  readonly accesses: number;
  /** Bytes per access (aligned to its own size inside the working set). */
  readonly accessSize: number;
  /** How accesses pick their offset. */
  readonly distribution: "uniform" | "zipf";
  /** Fraction of accesses that are device writes. */
  readonly writeFraction: number;
  /** Accesses in flight at once. */
  readonly queueDepth: number;
  /** Zipf exponent (only for "zipf"). */
  readonly zipfExponent: number;
}

/**
 * A device touching a working set at random (uniform or Zipf: a few hot
 * slots, a long tail), with a fixed number of accesses in flight. The
 * working set is one buffer mapped once.
 */
export class RandomWorkload implements Workload {
  /** Always "random". */
  readonly kind = "random";
  readonly #o: RandomOptions;

  /** A workload with the given options. */
  constructor(options: RandomOptions) {
    if (options.accessSize > options.workingSet) {
      throw new IopfLabError(
        "EINVAL",
        `workload.accessSize: ${options.accessSize} bytes exceeds the working set of ${options.workingSet} bytes`,
        "workload.accessSize",
      );
    }
    this.#o = options;
  }

  /** Starts the accesses on `ctx`. */
  start(ctx: DmaContext, done: () => void): void {
    const o = this.#o;
    const slots = Math.floor(o.workingSet / o.accessSize);
    const zipf = o.distribution === "zipf"
      ? new ZipfSampler(slots, o.zipfExponent)
      : undefined;
    // Scatter Zipf ranks over the working set so hot slots are not adjacent.
    const stride = coprimeStride(slots);
    const gpa = ctx.allocBuffer(o.workingSet);
    ctx.dmaMap(gpa, o.workingSet, true, (iova) => {
      runWithDepth(o.accesses, o.queueDepth, (_i, next) => {
        const slot = zipf
          ? (zipf.sample(ctx.rng) * stride) % slots
          : ctx.rng.int(slots);
        const write = ctx.rng.float() < o.writeFraction;
        ctx.dma(
          { iova: iova + slot * o.accessSize, size: o.accessSize, write },
          () => next(),
        );
      }, done);
    });
  }
}

function coprimeStride(n: number): number {
  if (n <= 2) return 1;
  let s = Math.floor(n * 0.6180339887) | 1;
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  while (gcd(s, n) !== 1) s += 2;
  return s % n;
}
