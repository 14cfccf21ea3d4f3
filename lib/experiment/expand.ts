/**
 * Sweeps: the validation of a scenario's `sweep` axes and their expansion
 * into resolved points (the cartesian product, first axis outermost).
 *
 * @module
 */
import { COST_NAMES } from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import { type JsonValue, MAX_JSON_DEPTH } from "../sim/json.ts";
import { MAX_SWEEP_POINTS, type Scenario, type SweepAxis } from "./config.ts";
import {
  bareMessage,
  describe,
  fail,
  isObject,
  object,
} from "../sim/fields.ts";
import {
  checkResolvedScenario,
  resolve,
  type ResolveContext,
  scenarioToJson,
  type SectionName,
  SECTIONS,
  workloadFieldNames,
} from "./resolve.ts";
import type { TraceSummary } from "../workload/trace_file.ts";

/**
 * The points of a scenario's sweep: the cartesian product of its axes in
 * the order given (first axis outermost, last varying fastest). Each point
 * has its values applied, an empty `sweep`, a `sweepPoint` record, and its
 * name suffixed `[path=value,...]`. A scenario without a sweep gives
 * itself.
 */
export function expandSweep(scenario: Scenario): Scenario[] {
  checkResolvedScenario(scenario, "scenario");
  if (scenario.sweep.length === 0) return [scenario];
  scenario.sweep.forEach((axis, k) => {
    if (
      !Array.isArray(axis) || axis.length !== 2 ||
      typeof axis[0] !== "string" || !Array.isArray(axis[1])
    ) {
      fail(
        `scenario.sweep[${k}]`,
        `expected a [path, values] pair, got ${describe(axis)}`,
      );
    }
    checkSweepPath(axis[0], `sweep.${axis[0]}`);
    axis[1].forEach((v, i) => checkJsonValue(v, `sweep.${axis[0]}[${i}]`));
  });
  const traces = new Map<string, TraceSummary>();
  if (scenario.workload.kind === "trace") {
    traces.set(scenario.workload.file, scenario.workload.summary);
  }
  const ctx: ResolveContext = {
    baseDir: Deno.cwd(),
    defaultName: scenario.name,
    stage1Allowed: true,
    traces,
  };
  const base = scenarioToJson({ ...scenario, sweep: [] }, {
    guest: true,
  });
  const out: Scenario[] = [];
  forEachPoint(base, scenario.sweep, ctx, (s) => out.push(s));
  return out;
}

/** Validates a scenario's `sweep`: known paths, non-empty arrays, at most {@linkcode MAX_SWEEP_POINTS} points. */
export function parseSweepAxes(raw: unknown): SweepAxis[] {
  const o = object(raw, "sweep");
  const axes: SweepAxis[] = [];
  let points = 1;
  for (const [path, values] of Object.entries(o)) {
    const where = `sweep.${path}`;
    checkSweepPath(path, where);
    if (!Array.isArray(values) || values.length === 0) {
      fail(
        where,
        `expected a non-empty array of values, got ${describe(values)}`,
      );
    }
    if (values.length > 1000) {
      fail(where, `at most 1000 values, got ${values.length}`);
    }
    points *= values.length;
    if (points > MAX_SWEEP_POINTS) {
      fail("sweep", `more than ${MAX_SWEEP_POINTS} points`);
    }
    values.forEach((v, i) => checkJsonValue(v, `${where}[${i}]`));
    axes.push([path, values as JsonValue[]]);
  }
  return axes;
}

/**
 * EINVAL naming `where` unless `v` is a JSON value (what a scenario file can
 * hold): null, a boolean, a string, a finite number, or an array or plain
 * object of such, not circular and at most {@linkcode MAX_JSON_DEPTH} deep.
 */
function checkJsonValue(v: unknown, where: string): void {
  const open: unknown[] = [];
  const walk = (x: unknown): void => {
    if (x === null || typeof x === "boolean" || typeof x === "string") return;
    if (typeof x === "number") {
      if (!Number.isFinite(x)) {
        fail(where, `expected a JSON value, got ${x} (not a finite number)`);
      }
      return;
    }
    if (typeof x !== "object") {
      fail(where, `expected a JSON value, got ${describe(x)}`);
    }
    if (open.includes(x)) fail(where, "a circular value (not JSON)");
    if (open.length >= MAX_JSON_DEPTH) {
      fail(where, `nested deeper than ${MAX_JSON_DEPTH} levels`);
    }
    if (!Array.isArray(x) && Object.getPrototypeOf(x) !== Object.prototype) {
      const proto = Object.getPrototypeOf(x);
      if (proto !== null) {
        fail(
          where,
          `expected a JSON value, got a ${
            x!.constructor?.name ?? "non-plain"
          } object`,
        );
      }
    }
    open.push(x);
    for (const item of Object.values(x as object)) walk(item);
    open.pop();
  };
  walk(v);
}

function checkSweepPath(path: string, where: string): void {
  const parts = path.split(".");
  const head = parts[0]!;
  if (head === "name" || head === "sweep") {
    fail(where, `${head} cannot be swept`);
  }
  if (head === "seed" || head === "check" || head === "costSpread") {
    if (parts.length === 1) return;
  } else if (head === "costs") {
    const param = parts.slice(1).join(".");
    if ((COST_NAMES as readonly string[]).includes(param)) return;
    fail(where, `unknown cost parameter ${JSON.stringify(param)}`);
  } else if (head === "workload") {
    const all = workloadFieldNames().add("kind");
    if (parts.length === 2 && all.has(parts[1]!)) return;
  } else if (Object.hasOwn(SECTIONS, head)) {
    const fields = SECTIONS[head as SectionName];
    if (parts.length === 2 && Object.hasOwn(fields, parts[1]!)) return;
  }
  fail(where, `not a field of the scenario: ${JSON.stringify(path)}`);
}

/** Calls `fn` with every point of the sweep of `base`, resolved. */
export function forEachPoint(
  base: Readonly<Record<string, unknown>>,
  sweep: readonly SweepAxis[],
  ctx: ResolveContext,
  fn: (s: Scenario) => void,
): void {
  if (sweep.length === 0) return;
  const index = sweep.map(() => 0);
  const baseName = typeof base.name === "string" ? base.name : ctx.defaultName;
  for (;;) {
    const raw = structuredClone(base) as Record<string, unknown>;
    const point: Record<string, JsonValue> = {};
    for (let k = 0; k < sweep.length; k++) {
      const [path, values] = sweep[k]!;
      const value = values[index[k]!]!;
      point[path] = value;
      setPath(raw, path, value);
    }
    const label = Object.entries(point).map(([p, v]) => `${p}=${showValue(v)}`)
      .join(",");
    let s: Scenario;
    try {
      s = resolve(raw, ctx);
    } catch (e) {
      throw e instanceof IopfLabError ? sweepError(e, sweep, index, label) : e;
    }
    fn({ ...s, name: `${baseName}[${label}]`, sweep: [], sweepPoint: point });
    // Advance the odometer, last axis fastest.
    let k = sweep.length - 1;
    for (; k >= 0; k--) {
      const next = index[k]! + 1;
      if (next < sweep[k]![1].length) {
        index[k] = next;
        break;
      }
      index[k] = 0;
    }
    if (k < 0) return;
  }
}

function setPath(
  raw: Record<string, unknown>,
  path: string,
  value: unknown,
): void {
  const dot = path.indexOf(".");
  if (dot < 0) {
    raw[path] = value;
    return;
  }
  const head = path.slice(0, dot);
  const rest = path.slice(dot + 1);
  const section = raw[head];
  if (section === undefined) raw[head] = { [rest]: value };
  else if (isObject(section)) section[rest] = value;
  // Otherwise the section itself is malformed; resolve() reports it.
}

/** Renames an error at a swept field to the sweep entry that set it. */
function sweepError(
  e: IopfLabError,
  sweep: readonly SweepAxis[],
  index: readonly number[],
  label: string,
): IopfLabError {
  const msg = bareMessage(e);
  const where = e.where ?? "";
  for (let k = 0; k < sweep.length; k++) {
    const path = sweep[k]![0];
    if (where === path || where.startsWith(path + ".")) {
      const renamed = `sweep.${path}[${index[k]}]` + where.slice(path.length);
      const rest = msg.startsWith(where) ? msg.slice(where.length) : `: ${msg}`;
      return new IopfLabError(e.code, renamed + rest, renamed);
    }
  }
  return new IopfLabError(e.code, `sweep point [${label}]: ${msg}`, where);
}

function showValue(v: JsonValue): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}
