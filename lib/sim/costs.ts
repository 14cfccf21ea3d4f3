/**
 * The cost model: per-operation costs loaded from a profile in data/costs/.
 *
 * Every parameter has a unit and a source (shared/CALIBRATION.md or an
 * estimate with its reasoning); the code never holds a cost constant.
 *
 * @module
 */
import defaultProfile from "../../data/costs/default.json" with {
  type: "json",
};
import { IopfLabError } from "./errors.ts";

/** The name of a cost parameter, e.g. `"vfio.faultLookup"`. */
export type CostName = keyof typeof defaultProfile.parameters;

/** A resolved cost profile: every parameter's value. */
export type Costs = Readonly<Record<CostName, number>>;

/** One parameter of a profile: value, unit and source. */
export interface CostParameter {
  /** The value in the given unit. */
  value: number;
  /** The unit ("ns per fault"). */
  unit: string;
  /** Where the value comes from. */
  source: string;
}

/** All parameter names of the default profile, sorted. */
export const COST_NAMES: readonly CostName[] = Object.keys(
  defaultProfile.parameters,
).sort() as CostName[];

/** The default profile's parameters with units and sources (for docs and the report). */
export function describeCosts(): Readonly<Record<CostName, CostParameter>> {
  return defaultProfile.parameters;
}

/**
 * Loads the default cost profile with overrides by name. Unknown names,
 * and values that are not finite non-negative numbers, throw EINVAL naming
 * the parameter.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadCostProfile } from "./costs.ts";
 * const costs = loadCostProfile({ "vfio.faultLookup": 800 });
 * assert(costs["vfio.faultLookup"] === 800);
 * ```
 */
export function loadCostProfile(
  overrides: Readonly<Record<string, unknown>> = {},
  where = "costs",
): Costs {
  const out = {} as Record<CostName, number>;
  for (const name of COST_NAMES) {
    out[name] = defaultProfile.parameters[name].value;
  }
  for (const [name, value] of Object.entries(overrides)) {
    if (!Object.hasOwn(defaultProfile.parameters, name)) {
      throw new IopfLabError(
        "EINVAL",
        `${where}.${name}: unknown cost parameter (known: ${
          COST_NAMES.join(", ")
        })`,
        `${where}.${name}`,
      );
    }
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new IopfLabError(
        "EINVAL",
        `${where}.${name}: expected a finite number >= 0, got ${
          JSON.stringify(value)
        }`,
        `${where}.${name}`,
      );
    }
    out[name as CostName] = value;
  }
  return Object.freeze(out);
}
