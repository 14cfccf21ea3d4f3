import assert from "node:assert/strict";
import { runScenario } from "../../lib/experiment/run.ts";
import { parseScenario } from "../../lib/experiment/scenario.ts";

/** One fault at a time: 300 fresh 4 KiB-backed pages, each faulting once. */
function faults(costSpread: boolean, seed = 5) {
  return runScenario(parseScenario({
    name: `spread-${costSpread}`,
    seed,
    costSpread,
    vm: { memory: "256MiB" },
    host: { memory: "1GiB" },
    dma: { mode: "iopf" },
    workload: {
      kind: "random",
      workingSet: "128MiB",
      accesses: 300,
      queueDepth: 1,
    },
  }));
}

Deno.test("cost spread: p99 moves away from the mean, the mean stays, the seed decides", () => {
  const exact = faults(false);
  const spread = faults(true);
  const again = faults(true);
  const other = faults(true, 6);
  // Exact costs: with one fault at a time every fault of a page that was
  // never touched takes the same time (table allocations aside).
  const e = exact.faultLatencyNs, s = spread.faultLatencyNs;
  assert.ok(e.p99 / e.mean < 1.1, `exact p99 ${e.p99} mean ${e.mean}`);
  // With spread, the interrupt latency's tail shows at p99...
  assert.ok(s.p99 / s.mean > 1.4, `spread p99 ${s.p99} mean ${s.mean}`);
  // ...while the mean moves by less than the draws' noise (300 faults, one
  // 2.5 us lognormal draw of sigma 0.5 each: about 2 % of the 2.5 us).
  assert.ok(Math.abs(s.mean - e.mean) / e.mean < 0.03, `${s.mean} ${e.mean}`);
  // Determinism per seed.
  assert.equal(JSON.stringify(again), JSON.stringify(spread));
  assert.notEqual(other.faultLatencyNs.p99, spread.faultLatencyNs.p99);
  // The faults are the same whatever the draws.
  assert.equal(spread.faults.total, exact.faults.total);
});

Deno.test("costSpread defaults to true and must be a boolean", () => {
  assert.equal(parseScenario({}).costSpread, true);
  assert.throws(() => parseScenario({ costSpread: "no" }), /costSpread/);
});
