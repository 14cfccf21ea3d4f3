/**
 * The speed targets of issue 16, one per bench, checked on every
 * `deno task bench` run and printed beside the results (never in a test:
 * timing belongs to benchmarks). A target is either a ratio to another
 * bench measured in the same run (the group's baseline unless `versus`
 * says otherwise), which a busy or slower machine does not move much, or a
 * rate in operations per second, which it does: such rows say so.
 *
 * @module
 */
import type { BenchRow, BenchSet } from "./compare.ts";
import { OPS_PER_ITERATION } from "./_ops.ts";

/** One target. */
export interface Target {
  /** Group of the bench. */
  readonly group: string;
  /** Bench the target is about. */
  readonly bench: string;
  /** What the target says, for the table. */
  readonly text: string;
  /** Per-operation ratio to `versus` (or the group baseline) must be at most this. */
  readonly maxRatio?: number;
  /** Bench the ratio is taken to (same group); default the group's baseline. */
  readonly versus?: string;
  /** Operations per second must be at least this. */
  readonly minRate?: number;
  /** Time per operation must be at most this many ns. */
  readonly maxNs?: number;
}

/** Issue 16's targets. */
export const TARGETS: readonly Target[] = [
  {
    group: "translate",
    bench: "iotlb hit s2",
    text: "<= 4x typed-array lookup",
    maxRatio: 4,
  },
  {
    group: "translate",
    bench: "iotlb hit nested",
    text: "<= 5x typed-array lookup",
    maxRatio: 5,
  },
  {
    group: "access",
    bench: "warm page access, sanitizer on",
    text: "<= 1.5x without the sanitizer",
    maxRatio: 1.5,
  },
  {
    group: "fault",
    bench: "stall fault round trip s2",
    text: ">= 1 M faults/s (sequential)",
    minRate: 1e6,
  },
  {
    group: "fault",
    bench: "stall fault scattered over 1 TiB",
    text: ">= 0.5 M faults/s",
    minRate: 5e5,
  },
  {
    group: "fault",
    bench: "pri fault round trip s2",
    text: "<= 1.5x stall",
    maxRatio: 1.5,
  },
  {
    group: "fault",
    bench: "nested stage-1 fault to guest",
    text: "<= 1.5x stall",
    maxRatio: 1.5,
  },
  {
    group: "pin",
    bench: "static pin 64GiB 4k",
    text: "per GiB <= 1.25x the 16 GiB start (linear)",
    versus: "static pin 16GiB 4k",
    maxRatio: 1.25,
  },
  {
    group: "pin",
    bench: "static pin 16TiB hugetlb-1g",
    text: "per GiB <= 1.25x the 1 TiB start (linear)",
    versus: "static pin 1TiB hugetlb-1g",
    maxRatio: 1.25,
  },
  {
    group: "pin",
    bench: "static pin 4TiB hugetlb-2m",
    text: "per GiB <= 1.25x the 1 TiB start (linear)",
    versus: "static pin 1TiB hugetlb-2m",
    maxRatio: 1.25,
  },
  {
    group: "sweep",
    bench: "sweep, 2 workers",
    text: ">= 1.7x one worker (time <= 0.59x)",
    maxRatio: 1 / 1.7,
  },
  {
    group: "scenario",
    bench: "report --quick end to end",
    text: "<= 15 s",
    maxNs: 15e9,
  },
  {
    group: "report",
    bench: "report (full) end to end",
    text: "<= 90 s",
    maxNs: 90e9,
  },
];

/** A target's reading in one result set. */
export interface TargetCheck {
  /** The measured value, formatted. */
  readonly value: string;
  /** Whether the target is met. */
  readonly met: boolean;
}

const perOp = (
  b: BenchRow,
) => (b.reps?.perOp.p50 ?? b.p75 / (OPS_PER_ITERATION[b.name] ?? 1));

/** Checks `t` in `set`; undefined when a bench it needs did not run. */
export function checkTarget(t: Target, set: BenchSet): TargetCheck | undefined {
  const inGroup = set.benches.filter((b) =>
    b.group === t.group && b.error === undefined
  );
  const b = inGroup.find((x) => x.name === t.bench);
  if (!b) return undefined;
  if (t.maxRatio !== undefined) {
    const other = t.versus === undefined
      ? inGroup.find((x) => x.baseline)
      : inGroup.find((x) => x.name === t.versus);
    if (!other) return undefined;
    // The per-run ratio's median when it is to the baseline (same run).
    const ratio = t.versus === undefined && b.reps?.ratio
      ? b.reps.ratio.p50
      : perOp(b) / perOp(other);
    return { value: `${ratio.toFixed(2)}x`, met: ratio <= t.maxRatio };
  }
  if (t.minRate !== undefined) {
    const rate = 1e9 / perOp(b);
    return {
      value: `${(rate / 1e6).toFixed(2)} M/s`,
      met: rate >= t.minRate,
    };
  }
  const ns = perOp(b);
  return { value: `${(ns / 1e9).toFixed(1)} s`, met: ns <= t.maxNs! };
}
