/**
 * The simulation core: a discrete-event engine on a virtual nanosecond clock,
 * resources with N servers and a FIFO queue, a seeded PRNG, statistics, the
 * cost profile, units and errors.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Resource, Simulator } from "./mod.ts";
 * const sim = new Simulator();
 * const workers = new Resource(sim, { name: "iopf workers", servers: 2 });
 * let finished = 0;
 * for (let i = 0; i < 4; i++) workers.request(1000, () => finished++);
 * sim.run();
 * assert(finished === 4 && sim.now === 2000);
 * ```
 *
 * @module
 */
export * from "./simulator.ts";
export * from "./resource.ts";
export * from "./bandwidth.ts";
export * from "./rng.ts";
export * from "./stats.ts";
export * from "./costs.ts";
export * from "./spread.ts";
export * from "./units.ts";
export * from "./errors.ts";
export * from "./steps.ts";
