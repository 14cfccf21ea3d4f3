import assert from "node:assert/strict";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import {
  costSampler,
  describeSpread,
  hasSpread,
  withSpread,
} from "../../lib/sim/spread.ts";

function draws(seed: number, n: number): number[] {
  const draw = costSampler(
    withSpread(loadCostProfile(), seed),
    "smmu.irqLatency",
  );
  return Array.from({ length: n }, draw);
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

Deno.test("spread: without withSpread every draw is the value itself", () => {
  const costs = loadCostProfile();
  assert.equal(hasSpread(costs), false);
  const draw = costSampler(costs, "smmu.irqLatency");
  assert.deepEqual([draw(), draw(), draw()], [2500, 2500, 2500]);
  // A parameter without a spread entry stays exact under withSpread too.
  const spread = withSpread(costs, 1);
  assert.equal(hasSpread(spread), true);
  const exact = costSampler(spread, "vfio.faultLookup");
  const lookup = costs["vfio.faultLookup"];
  assert.deepEqual([exact(), exact()], [lookup, lookup]);
  // A zero mean stays zero.
  const zero = costSampler(
    withSpread(loadCostProfile({ "smmu.irqLatency": 0 }), 1),
    "smmu.irqLatency",
  );
  assert.equal(zero(), 0);
});

Deno.test("spread: lognormal draws keep the mean and give the lognormal tail", () => {
  const sigma = describeSpread()["smmu.irqLatency"]!.sigma;
  assert.equal(sigma, 0.5);
  const xs = draws(42, 200_000);
  const mean = xs.reduce((a, x) => a + x, 0) / xs.length;
  const sorted = [...xs].sort((a, b) => a - b);
  // Mean = the profile's value (2500 ns) within 1 %; median and p99 are
  // those of a lognormal of that mean: 2500 e^(-s²/2), 2500 e^(2.326 s - s²/2).
  assert.ok(Math.abs(mean - 2500) / 2500 < 0.01, `mean ${mean}`);
  const p50 = 2500 * Math.exp(-(sigma ** 2) / 2);
  const p99 = 2500 * Math.exp(2.3263 * sigma - (sigma ** 2) / 2);
  assert.ok(Math.abs(quantile(sorted, 0.5) - p50) / p50 < 0.01);
  assert.ok(Math.abs(quantile(sorted, 0.99) - p99) / p99 < 0.03);
  assert.ok(sorted[0]! > 0);
});

Deno.test("spread: the same seed gives the same draws, another seed others", () => {
  assert.deepEqual(draws(7, 100), draws(7, 100));
  assert.notDeepEqual(draws(7, 100), draws(8, 100));
});

Deno.test("spread: every spread entry names a lognormal with a sigma and a source", () => {
  const spec = describeSpread();
  const costs = loadCostProfile();
  for (const [name, s] of Object.entries(spec)) {
    assert.ok(name in costs, `${name} is a cost parameter`);
    assert.equal(s!.shape, "lognormal");
    assert.ok(s!.sigma > 0 && s!.sigma < 2, name);
    assert.ok(s!.source.length > 20, name);
  }
});
