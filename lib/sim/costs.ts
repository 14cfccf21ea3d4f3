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

/** The values a cost parameter may take (its unit decides). */
export interface CostRange {
  /** Smallest value. */
  readonly min: number;
  /** Largest value. */
  readonly max: number;
  /** Only whole numbers. */
  readonly integer: boolean;
}

/** What a cost parameter measures, read from its unit. */
export type CostKind = "time" | "count" | "size";

/** The kind of `name`: a count ("entries ..."), a size ("bytes ...") or else a time ("ns ..."). */
export function costKind(name: CostName): CostKind {
  const unit = defaultProfile.parameters[name].unit;
  if (unit.startsWith("entries")) return "count";
  if (unit.startsWith("bytes")) return "size";
  return "time";
}

/**
 * The range of a cost parameter, from its kind: a time is 0 to 1 s (10^9
 * ns: no single kernel or hardware step of the model takes longer, and a
 * larger value would only make runs unbounded); a count a whole number from
 * 1 to 10^6; a size a whole number from 0 to 2^40.
 */
export function costRange(name: CostName): CostRange {
  switch (costKind(name)) {
    case "count":
      return { min: 1, max: 1e6, integer: true };
    case "size":
      return { min: 0, max: 2 ** 40, integer: true };
    case "time":
      return { min: 0, max: 1e9, integer: false };
  }
}

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
    const range = costRange(name as CostName);
    if (
      typeof value !== "number" || !Number.isFinite(value) ||
      value < range.min || value > range.max ||
      (range.integer && !Number.isInteger(value))
    ) {
      throw new IopfLabError(
        "EINVAL",
        `${where}.${name}: expected ${
          range.integer ? "a whole number" : "a number"
        } in [${range.min}, ${range.max}] (${
          defaultProfile.parameters[name as CostName].unit
        }), got ${
          typeof value === "bigint" ? String(value) : JSON.stringify(value)
        }`,
        `${where}.${name}`,
      );
    }
    out[name as CostName] = value;
  }
  return Object.freeze(out);
}
