/**
 * Scenarios: the JSON description of one experiment (shared/INTERFACE.md),
 * validated and resolved into a {@linkcode Scenario} with every default
 * filled in, sizes in bytes, times in ns and bandwidths in bytes per second.
 *
 * Every mistake is an `IopfLabError` EINVAL whose message starts with the
 * path of the field: `workload.messageSize: expected a size like "1MiB", got
 * "1 MB?"`. Unknown fields are errors. A `sweep` is validated point by point
 * when the scenario is parsed, so {@linkcode expandSweep} cannot fail on a
 * scenario that {@linkcode parseScenario} returned.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expandSweep, parseScenario } from "./scenario.ts";
 * const s = parseScenario({
 *   name: "pin-vs-iopf",
 *   vm: { memory: "4GiB" },
 *   sweep: { "dma.mode": ["static-pin", "iopf"] },
 * });
 * assert(s.vm.memory === 4 * 2 ** 30 && s.host.backing === "4k");
 * const points = expandSweep(s);
 * assert(points[1]!.name === "pin-vs-iopf[dma.mode=iopf]");
 * ```
 *
 * @module
 */
import { basename, dirname, extname, resolve as resolvePath } from "node:path";
import { IopfLabError } from "../sim/errors.ts";
import { decodeUtf8, parseJsonText } from "../sim/json.ts";
import type { ParseScenarioOptions, Scenario } from "./config.ts";
import { forEachPoint, parseSweepAxes } from "./expand.ts";
import {
  bareMessage,
  describe,
  fail,
  isObject,
  object,
} from "../sim/fields.ts";
import { resolve, type ResolveContext } from "./resolve.ts";
import { fileErrorReason } from "../workload/trace_file.ts";

export * from "./config.ts";
export { expandSweep } from "./expand.ts";
export { bareMessage } from "../sim/fields.ts";
export {
  checkResolvedScenario,
  checkWorkloadConfig,
  type ScenarioField,
  scenarioFields,
  scenarioToJson,
  type ScenarioToJsonOptions,
  touchedBytes,
} from "./resolve.ts";

/**
 * Validates a scenario (parsed JSON, see shared/INTERFACE.md) and resolves
 * it: defaults filled, units converted, the trace file read, and every
 * sweep point checked. Throws EINVAL naming the field on any mistake.
 */
export function parseScenario(
  json: unknown,
  options: ParseScenarioOptions = {},
): Scenario {
  checkOptions(options);
  if (typeof json === "string") {
    fail(
      "scenario",
      "expected an object, got a string (parse JSON text with JSON.parse first, or read a file with loadScenario)",
    );
  }
  const top = object(json, "scenario");
  const sweepRaw = top.sweep;
  const sweep = sweepRaw === undefined ? [] : parseSweepAxes(sweepRaw);
  const stageRaw = isObject(top.smmu) ? top.smmu.stage : undefined;
  const ctx: ResolveContext = {
    baseDir: options.baseDir ?? Deno.cwd(),
    defaultName: options.defaultName ?? "scenario",
    stage1Allowed: stageRaw === "nested" ||
      sweep.some(([p, vs]) => p === "smmu.stage" && vs.includes("nested")),
    traces: new Map(),
  };
  const { sweep: _, ...base } = top;
  const scenario = { ...resolve(base, ctx), sweep };
  // Validate every point now, so that a bad value fails before any run.
  forEachPoint(base, sweep, ctx, () => {});
  return scenario;
}

function checkOptions(options: unknown): void {
  const o = object(options, "options");
  for (const key of ["baseDir", "defaultName"] as const) {
    const v = o[key];
    if (v !== undefined && (typeof v !== "string" || v === "")) {
      fail(`options.${key}`, `expected a non-empty string, got ${describe(v)}`);
    }
  }
}

/**
 * Reads a scenario file: JSON (syntax errors give `file:line:column`),
 * then {@linkcode parseScenario} with paths relative to the file's directory
 * and the file's name (without `.json`) as the default scenario name.
 * Schema errors are prefixed with the file name:
 * `bad.json: vm.memory: expected a size like "1MiB", got "16"`.
 */
export function loadScenario(file: string): Scenario {
  if (typeof file !== "string" || file === "") {
    fail("file", `expected the path of a scenario file, got ${describe(file)}`);
  }
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(file);
  } catch (e) {
    throw new IopfLabError(
      e instanceof Deno.errors.NotFound ? "ENOENT" : "EINVAL",
      `${file}: cannot read the scenario file: ${fileErrorReason(e)}`,
      file,
    );
  }
  // Invalid UTF-8 is EINVAL naming the file and offset; a BOM is dropped.
  const text = decodeUtf8(bytes, file);
  const json = parseJsonText(text, file);
  try {
    return parseScenario(json, {
      baseDir: dirname(resolvePath(file)),
      defaultName: basename(file, extname(file)),
    });
  } catch (e) {
    if (e instanceof IopfLabError) {
      throw new IopfLabError(e.code, `${file}: ${bareMessage(e)}`, e.where);
    }
    throw e;
  }
}
