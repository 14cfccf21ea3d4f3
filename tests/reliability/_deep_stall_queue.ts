/**
 * Subprocess of stall_max_test.ts: the issue 17 reproduction, scaled down.
 * Two VMs share one SMMU; each VM's stall-model device keeps `queueDepth`
 * random accesses in flight over a fresh working set, so up to twice that
 * many transactions stall at once. Prints the run's metrics and the SMMU's
 * counters as JSON. `deno run -A tests/reliability/_deep_stall_queue.ts 512 [stallMax]`
 * (the optional second argument sets the scenario's `smmu.stallMax`).
 */
import {
  parseScenario,
  runScenarioWithSeries,
} from "../../lib/experiment/mod.ts";

const queueDepth = Number(Deno.args[0] ?? "512");
const stallMax = Deno.args[1] === undefined ? {} : {
  smmu: { stallMax: Number(Deno.args[1]) },
};
const scenario = parseScenario({
  name: "deep-stall-queue",
  ...stallMax,
  host: { memory: "2GiB" },
  vm: { count: 2, memory: "256MiB" },
  // As many DMA engine slots as accesses in flight: the device really has
  // `queueDepth` transactions outstanding at the SMMU.
  device: { fault: "stall", dmaSlots: Math.min(queueDepth, 65536) },
  dma: { mode: "iopf" },
  workload: {
    kind: "random",
    workingSet: "64MiB",
    accesses: 4 * queueDepth,
    queueDepth,
  },
});
let stats: Record<string, number> = {};
let stalledAfter = -1;
const { metrics } = runScenarioWithSeries(scenario, {
  seriesPoints: 4,
  inspect: (m) => {
    stats = { ...m.smmu.stats };
    stalledAfter = m.smmu.stalledCount;
  },
});
console.log(JSON.stringify({
  dmaErrors: metrics.dmaErrors,
  stalls: metrics.extra?.stalls,
  stalledAfter,
  stats,
}));
