/**
 * Cost spread: seeded distributions for the cost parameters whose real
 * latency varies from one occurrence to the next (interrupt delivery,
 * thread and kworker wakeups). The profile's `spread` section gives each
 * such parameter a shape with its parameters and a source; the value in
 * `parameters` stays the mean, so spreading a cost never shifts its mean,
 * only its tail. Spread applies to a cost profile made with
 * {@linkcode withSpread} (a scenario does so unless `costSpread` is false);
 * a layer asks {@linkcode costSampler} once, at construction, for a draw
 * function of the parameter, which on any other profile returns the value
 * itself (exact hand-computed runs stay exact).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadCostProfile } from "./costs.ts";
 * import { costSampler, withSpread } from "./spread.ts";
 * const exact = costSampler(loadCostProfile(), "smmu.irqLatency");
 * assert.equal(exact(), 2500);
 * const draw = costSampler(withSpread(loadCostProfile(), 7), "smmu.irqLatency");
 * const a = draw(), b = draw();
 * assert(a !== b && a > 0);
 * ```
 *
 * @module
 */
import defaultProfile from "../../data/costs/default.json" with {
  type: "json",
};
import type { CostName, Costs } from "./costs.ts";
import { Rng } from "./rng.ts";

/**
 * A distribution shape: `"lognormal"` with shape parameter `sigma` (the
 * standard deviation of the log), scaled so that its mean is the cost's
 * value: p50 = mean × e^(-sigma²/2), p99 = mean × e^(2.326 sigma - sigma²/2).
 */
export type SpreadShape = "lognormal";

/** The spread of one cost parameter (an entry of the profile's `spread` section). */
export interface CostSpreadSpec {
  /** The distribution's shape. */
  readonly shape: SpreadShape;
  /** Its shape parameter (for lognormal: sigma of the log). */
  readonly sigma: number;
  /** Why this shape and parameter: a measurement cited, or "argued: ...". */
  readonly source: string;
}

const SPECS = defaultProfile.spread as unknown as Readonly<
  Partial<Record<CostName, CostSpreadSpec>>
>;

/** The cost parameters that have a spread, with their specs (for docs and the report). */
export function describeSpread(): Readonly<
  Partial<Record<CostName, CostSpreadSpec>>
> {
  return SPECS;
}

/** The per-run state of a spread profile: one seeded stream for all its draws. */
class SpreadState {
  readonly rng: Rng;
  /** The second normal of the last Box-Muller pair, or NaN. */
  spare = Number.NaN;

  constructor(seed: number) {
    // A stream of its own (seed mixed with a constant), so that turning
    // spread on or off leaves the workload's random choices unchanged.
    this.rng = new Rng((seed ^ 0x5bd1e995) >>> 0);
  }

  /** A standard normal (Box-Muller, both values of a pair used). */
  normal(): number {
    const s = this.spare;
    if (s === s) {
      this.spare = Number.NaN;
      return s;
    }
    const u1 = 1 - this.rng.float(); // (0, 1]
    const u2 = this.rng.float();
    const r = Math.sqrt(-2 * Math.log(u1));
    const t = 2 * Math.PI * u2;
    this.spare = r * Math.sin(t);
    return r * Math.cos(t);
  }
}

const STATES = new WeakMap<Costs, SpreadState>();

/**
 * A copy of `costs` whose spread parameters are drawn from their
 * distributions, from a stream seeded with `seed` (the scenario's seed):
 * the same seed gives the same draws in the same order.
 */
export function withSpread(costs: Costs, seed: number): Costs {
  const out = Object.freeze({ ...costs });
  STATES.set(out, new SpreadState(seed));
  return out;
}

/** True when `costs` was made by {@linkcode withSpread}. */
export function hasSpread(costs: Costs): boolean {
  return STATES.has(costs);
}

/**
 * A draw function for the parameter `name` of `costs`: each call one
 * occurrence's value. Without spread (a profile not made by
 * {@linkcode withSpread}, a parameter without a `spread` entry, or a value
 * of 0) it returns the value itself. Ask once and keep the function: a
 * draw is a few floating-point operations.
 */
export function costSampler(costs: Costs, name: CostName): () => number {
  const mean = costs[name];
  const st = STATES.get(costs);
  const spec = SPECS[name];
  if (st === undefined || spec === undefined || mean === 0) return () => mean;
  const sigma = spec.sigma;
  const mu = Math.log(mean) - (sigma * sigma) / 2;
  return () => Math.exp(mu + sigma * st.normal());
}
