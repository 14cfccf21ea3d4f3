/**
 * Generators and guards shared by the fuzz tests: random small scenarios
 * over every workload kind and every knob of the stack, and a guard that
 * turns a runaway simulation into a failure instead of a hang.
 */
import fc from "fast-check";
import { Simulator } from "../../lib/sim/simulator.ts";

/**
 * Runs per property: `ciRuns` (the modest default every `deno task test`
 * uses) unless FUZZ_RUNS is set, then that many
 * (`FUZZ_RUNS=5000 deno test -A tests/fuzz/`).
 */
export function fuzzRuns(ciRuns: number): number {
  let v: string | undefined;
  try {
    v = Deno.env.get("FUZZ_RUNS");
  } catch {
    v = undefined; // no --allow-env
  }
  const n = v === undefined ? NaN : Number(v);
  return Number.isInteger(n) && n > 0 ? n : ciRuns;
}

/** The seed of every property (FUZZ_SEED overrides it, to explore further locally). */
export function fuzzSeed(): number {
  let v: string | undefined;
  try {
    v = Deno.env.get("FUZZ_SEED");
  } catch {
    v = undefined;
  }
  const n = v === undefined ? NaN : Number(v);
  return Number.isInteger(n) ? n : 20240611;
}

/** Thrown when a simulation runs more events than any small scenario needs. */
export class RunawayError extends Error {
  /** Creates the error for a run stopped after `events` events. */
  constructor(events: number) {
    super(`the simulation ran ${events} events without going idle (a hang)`);
    this.name = "RunawayError";
  }
}

/**
 * Calls `fn` with every `Simulator.run` capped at `maxEvents` events; a run
 * that reaches the cap with events left throws {@linkcode RunawayError}.
 */
export function withEventCap<T>(maxEvents: number, fn: () => T): T {
  const proto = Simulator.prototype;
  const original = proto.run;
  proto.run = function (this: Simulator, options = {}) {
    const asked = options.maxEvents ?? Infinity;
    const n = original.call(this, {
      ...options,
      maxEvents: Math.min(asked, maxEvents),
    });
    if (n >= maxEvents && asked > maxEvents && this.pending > 0) {
      throw new RunawayError(n);
    }
    return n;
  };
  try {
    return fn();
  } finally {
    proto.run = original;
  }
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** A trace file's rows as CSV text (time_ns,stream,op,iova,size). */
export function traceCsv(
  rows: readonly { t: number; write: boolean; page: number; size: number }[],
): string {
  const lines = ["time_ns,stream,op,iova,size"];
  let t = 0;
  for (const r of rows) {
    t += r.t;
    lines.push(
      `${t},0,${r.write ? "w" : "r"},0x${
        (r.page * 4096).toString(16)
      },${r.size}`,
    );
  }
  return lines.join("\n") + "\n";
}

/** A random workload for a VM of `vmMiB` MiB (JSON as in a scenario file). */
function workloadArb(vmMiB: number): fc.Arbitrary<Record<string, unknown>> {
  const vmPages = (vmMiB * MiB) / 4096;
  return fc.oneof(
    fc.constant({ kind: "boot" }),
    fc.record({
      kind: fc.constant("accelerator"),
      messageSize: fc.integer({ min: 1, max: 64 * KiB }),
      messages: fc.integer({ min: 1, max: 6 }),
      reuseBuffers: fc.boolean(),
    }),
    fc.record({
      kind: fc.constant("random"),
      workingSet: fc.oneof(
        fc.integer({ min: 1, max: Math.min(vmPages, 512) }),
        fc.integer({ min: 1, max: vmPages }),
      ).map((p) => p * 4096),
      accesses: fc.integer({ min: 1, max: 300 }),
      accessSize: fc.integer({ min: 1, max: 8192 }),
      distribution: fc.constantFrom("uniform", "zipf"),
      writeFraction: fc.double({ min: 0, max: 1, noNaN: true }),
      queueDepth: fc.integer({ min: 1, max: 32 }),
    }).map((w) => ({
      ...w,
      accessSize: Math.min(w.accessSize, w.workingSet),
    })),
    fc.record({
      kind: fc.constant("nic-rx"),
      ringEntries: fc.integer({ min: 1, max: 64 }),
      bufferSize: fc.integer({ min: 64, max: 4096 }),
      packets: fc.integer({ min: 1, max: 300 }),
      rate: fc.constantFrom("1Gbps", "10Gbps", "100Gbps"),
    }),
    fc.record({
      kind: fc.constant("storage"),
      blockSize: fc.integer({ min: 512, max: 64 * KiB }),
      blocks: fc.integer({ min: 1, max: 24 }),
      freshBuffers: fc.boolean(),
      queueDepth: fc.integer({ min: 1, max: 16 }),
    }).map(({ blocks, ...w }) => ({
      ...w,
      totalBytes: w.blockSize * blocks,
    })),
    fc.record({
      kind: fc.constant("trace"),
      rows: fc.array(
        fc.record({
          t: fc.integer({ min: 0, max: 5000 }),
          write: fc.boolean(),
          page: fc.integer({ min: 0, max: Math.min(vmPages, 256) - 2 }),
          size: fc.integer({ min: 1, max: 8192 }),
        }),
        { minLength: 1, maxLength: 40 },
      ),
    }),
  );
}

/** One random scenario, as JSON (a trace workload carries `rows` to write to a file). */
export const scenarioArb: fc.Arbitrary<Record<string, unknown>> = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  backing: fc.constantFrom("4k", "4k", "thp", "hugetlb-2m"),
  vmMiB: fc.constantFrom(6, 8, 16, 32),
  count: fc.integer({ min: 1, max: 3 }),
  // Host memory as a share of what the VMs need: below 1 overcommits.
  hostShare: fc.constantFrom(0.5, 0.75, 1, 1, 1.5),
  prefault: fc.boolean(),
  memlock: fc.oneof(
    fc.constant("unlimited"),
    fc.integer({ min: 1, max: 8192 }).map((p) => p * 4096),
  ),
  stage: fc.constantFrom("s1", "s2", "nested"),
  iotlbWaysLog: fc.integer({ min: 0, max: 3 }),
  iotlbSetsLog: fc.integer({ min: 0, max: 6 }),
  evtqLog: fc.integer({ min: 1, max: 8 }),
  priqLog: fc.integer({ min: 1, max: 8 }),
  invalidation: fc.constantFrom("strict", "lazy"),
  fault: fc.constantFrom("stall", "pri"),
  priCapacity: fc.integer({ min: 1, max: 32 }),
  dmaBandwidth: fc.constantFrom("1GB/s", "8GB/s", "32GB/s"),
  mode: fc.constantFrom("static-pin", "iopf", "iopf", "viommu-pin", "coiommu"),
  premapPages: fc.oneof(
    fc.integer({ min: 1, max: 8 }),
    fc.integer({ min: 1, max: 1024 }),
  ),
  mmuNotifier: fc.boolean(),
  faultWorkers: fc.integer({ min: 1, max: 8 }),
  stage1: fc.constantFrom("premapped", "on-fault"),
}).chain((k) =>
  workloadArb(k.vmMiB).map((workload) => ({
    name: "fuzz",
    seed: k.seed,
    host: {
      memory: `${
        Math.max(k.vmMiB, Math.ceil((k.vmMiB * k.count * k.hostShare) / 2) * 2)
      }MiB`,
      backing: k.backing,
      prefault: k.prefault,
      memlockLimit: k.memlock,
    },
    vm: { memory: `${k.vmMiB}MiB`, count: k.count },
    smmu: {
      stage: k.stage,
      iotlbEntries: 2 ** (k.iotlbWaysLog + k.iotlbSetsLog),
      iotlbWays: 2 ** k.iotlbWaysLog,
      evtqEntries: 2 ** k.evtqLog,
      priqEntries: 2 ** k.priqLog,
      invalidation: k.invalidation,
    },
    device: {
      fault: k.fault,
      priCapacity: k.priCapacity,
      dmaBandwidth: k.dmaBandwidth,
    },
    dma: {
      mode: k.mode,
      premapPages: k.premapPages,
      mmuNotifier: k.mmuNotifier,
      faultWorkers: k.faultWorkers,
    },
    ...(k.stage === "nested" ? { guest: { stage1: k.stage1 } } : {}),
    workload,
    check: true,
  }))
);
