/**
 * Wall time of an four-point sweep run by lib/experiment's `runSweep` on
 * one worker and on two (each point a 4 GiB guest started by static pinning
 * on 4 KiB pages, then a random DMA workload; the points are independent
 * and about equal). Target: two workers at least 1.7x as fast as one on an
 * idle 2-core host (bench/_targets.ts). On a busy host the ratio says how
 * much CPU the sweep got, not how well it scales: run it when `uptime`
 * shows a load below 0.5, and read the spread over runs.
 *
 *     deno bench --allow-read --allow-env bench/sweep_bench.ts
 *
 * @module
 */
import { expandSweep, parseScenario, runSweep } from "../lib/experiment/mod.ts";

const GROUP = "sweep";
const points = expandSweep(parseScenario({
  name: "sweep-bench",
  host: { memory: "8GiB", backing: "4k" },
  vm: { memory: "4GiB" },
  dma: { mode: "static-pin" },
  workload: { kind: "random", workingSet: "2GiB", accesses: 200000 },
  sweep: { seed: [1, 2, 3, 4] },
}));

for (const workers of [1, 2]) {
  Deno.bench({
    name: `sweep, ${workers} worker${workers === 1 ? "" : "s"}`,
    group: GROUP,
    baseline: workers === 1,
    n: 3,
    warmup: 1,
    async fn() {
      const metrics = await runSweep(points, { workers });
      if (metrics.length !== points.length) {
        throw new Error(`sweep: ${metrics.length} of ${points.length} points`);
      }
    },
  });
}
