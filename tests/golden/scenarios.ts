/**
 * The fixed set of scenarios whose simulated outputs are stored in
 * tests/golden/outputs.json: every DMA mode, workload kind, SMMU stage,
 * fault model and backing, small enough to run in seconds. A refactor or
 * an optimisation must leave every output byte-identical
 * (tests/golden/golden_test.ts); a change to the model regenerates them
 * with `deno run -A tests/golden/generate.ts` and says why in its commit.
 *
 * @module
 */

/** A named raw scenario object, as a scenario file would hold it. */
export interface GoldenCase {
  readonly name: string;
  readonly scenario: Record<string, unknown>;
}

const small = { memory: "512MiB" };
const workloads: Record<string, Record<string, unknown>> = {
  boot: { kind: "boot" },
  accelerator: {
    kind: "accelerator",
    messageSize: "256KiB",
    messages: 8,
    reuseBuffers: false,
  },
  random: {
    kind: "random",
    workingSet: "64MiB",
    accesses: 400,
    accessSize: "4KiB",
    distribution: "zipf",
    writeFraction: 0.3,
    queueDepth: 4,
  },
  "nic-rx": {
    kind: "nic-rx",
    ringEntries: 64,
    bufferSize: "2KiB",
    packets: 300,
    rate: "1.25GB/s",
  },
  storage: {
    kind: "storage",
    blockSize: "64KiB",
    totalBytes: "4MiB",
    freshBuffers: true,
    queueDepth: 4,
  },
  trace: { kind: "trace", file: "../../data/traces/accelerator_two_phase.csv" },
};

function cases(): GoldenCase[] {
  const out: GoldenCase[] = [];
  const modes = ["static-pin", "iopf", "viommu-pin", "coiommu"];
  for (const mode of modes) {
    for (const [wname, workload] of Object.entries(workloads)) {
      out.push({
        name: `${mode}-${wname}`,
        scenario: {
          name: `${mode}-${wname}`,
          seed: 7,
          host: { memory: "4GiB", backing: "4k" },
          vm: small,
          dma: mode === "coiommu"
            ? { mode, coiommuUnpinPolicy: "lru" }
            : { mode },
          workload,
        },
      });
    }
  }
  for (const stage of ["s1", "s2", "nested"]) {
    for (const fault of ["stall", "pri"]) {
      for (
        const stage1 of stage === "nested"
          ? ["premapped", "on-fault"]
          : [undefined]
      ) {
        const name = `iopf-${stage}-${fault}${stage1 ? "-" + stage1 : ""}`;
        out.push({
          name,
          scenario: {
            name,
            seed: 3,
            host: { memory: "4GiB", backing: "thp" },
            vm: small,
            smmu: { stage, priqEntries: 32 },
            device: { fault, priCapacity: 16 },
            dma: { mode: "iopf", premapPages: 8, faultWorkers: 2 },
            ...(stage1 ? { guest: { stage1 } } : {}),
            workload: workloads.random,
          },
        });
      }
    }
  }
  for (const backing of ["4k", "thp", "hugetlb-2m", "hugetlb-1g"]) {
    for (const mode of ["static-pin", "iopf"]) {
      const name = `${mode}-boot-${backing}`;
      out.push({
        name,
        scenario: {
          name,
          host: { memory: "8GiB", backing, prefault: backing !== "4k" },
          vm: { memory: "2GiB" },
          dma: { mode },
          workload: workloads.accelerator,
        },
      });
    }
  }
  out.push({
    name: "iopf-notifier-overcommit",
    scenario: {
      name: "iopf-notifier-overcommit",
      seed: 11,
      host: { memory: "1GiB" },
      vm: { memory: "512MiB", count: 3 },
      dma: { mode: "iopf", mmuNotifier: true, premapPages: 16 },
      workload: workloads.random,
    },
  });
  out.push({
    name: "iopf-lazy",
    scenario: {
      name: "iopf-lazy",
      host: { memory: "4GiB" },
      vm: small,
      smmu: { invalidation: "lazy" },
      dma: { mode: "viommu-pin" },
      workload: workloads.storage,
    },
  });
  out.push({
    name: "density-static",
    scenario: {
      name: "density-static",
      host: { memory: "8GiB", backing: "hugetlb-2m" },
      vm: { memory: "3GiB", count: 4 },
      dma: { mode: "static-pin" },
      workload: workloads.boot,
    },
  });
  return out;
}

/** Every golden case, in a fixed order. */
export const GOLDEN_CASES: readonly GoldenCase[] = cases();
