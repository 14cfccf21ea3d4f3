/**
 * Wall time of an four-point sweep run by lib/experiment's `runSweep` on
 * one worker and on two (each point a 4 GiB guest started by static pinning
 * on 4 KiB pages, then a random DMA workload; the points are independent
 * and about equal). "sweep, 1 worker" and "sweep, 2 workers" run on a
 * {@linkcode SweepPool} kept across iterations, as the report keeps one
 * across its experiments: the workers are started and their code compiled
 * and optimised by the warm-up iteration, so the ratio is the scaling of the
 * sweep itself. "sweep, 2 fresh workers" starts two new workers every
 * iteration (a one-off sweep without a pool): worker start-up and JIT
 * warm-up included. Target: two warm workers at least 1.7x as fast as one
 * on an idle 2-core host (bench/_targets.ts). On a busy host the ratio says
 * how much CPU the sweep got, not how well it scales: run it when `uptime`
 * shows a load below 0.5, and read the spread over runs
 * (`deno task bench sweep --reps 3`).
 *
 *     deno bench --allow-read --allow-env bench/sweep_bench.ts
 *
 * @module
 */
import {
  expandSweep,
  parseScenario,
  runSweep,
  type RunSweepOptions,
  SweepPool,
} from "../lib/experiment/mod.ts";

const GROUP = "sweep";
const points = expandSweep(parseScenario({
  name: "sweep-bench",
  host: { memory: "8GiB", backing: "4k" },
  vm: { memory: "4GiB" },
  dma: { mode: "static-pin" },
  workload: { kind: "random", workingSet: "2GiB", accesses: 200000 },
  sweep: { seed: [1, 2, 3, 4] },
}));

const pools = [new SweepPool({ size: 1 }), new SweepPool({ size: 2 })];
globalThis.addEventListener("unload", () => {
  for (const p of pools) p.close();
});

async function sweep(options: RunSweepOptions): Promise<void> {
  const metrics = await runSweep(points, options);
  if (metrics.length !== points.length) {
    throw new Error(`sweep: ${metrics.length} of ${points.length} points`);
  }
}

// Deno.bench awaits only an async function's promise.
const RUNS = { group: GROUP, n: 3, warmup: 1 } as const;

Deno.bench({
  name: "sweep, 1 worker",
  ...RUNS,
  baseline: true,
  async fn() {
    await sweep({ pool: pools[0]! });
  },
});

Deno.bench({
  name: "sweep, 2 workers",
  ...RUNS,
  async fn() {
    await sweep({ pool: pools[1]! });
  },
});

Deno.bench({
  name: "sweep, 2 fresh workers",
  ...RUNS,
  async fn() {
    await sweep({ workers: 2 });
  },
});
