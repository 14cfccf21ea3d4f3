/**
 * Canonical JSON and the scenario's key: {@linkcode canonicalJson} writes a
 * value with object keys sorted and every number exact (non-finite numbers
 * and -0, which JSON cannot hold, as tagged objects), so equal values give
 * equal text; {@linkcode scenarioKey} is the sha256 of a resolved
 * scenario's canonical form, the key of the results database.
 * {@linkcode encodeJson} and {@linkcode decodeJson} are the same lossless
 * encoding with the keys in their own order (metrics keep their column
 * order through the database).
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Scenario } from "../experiment/config.ts";
import { IopfLabError } from "../sim/errors.ts";

/** The tag of a number JSON cannot hold: `{"$number": "Infinity"}`. */
const NUMBER_TAG = "$number";

function special(v: number): string | undefined {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  if (Object.is(v, -0)) return "-0";
  return undefined;
}

function replacer(_key: string, v: unknown): unknown {
  if (typeof v === "number") {
    const s = special(v);
    return s === undefined ? v : { [NUMBER_TAG]: s };
  }
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    return Array.from(v as unknown as ArrayLike<number>);
  }
  return v;
}

function reviver(_key: string, v: unknown): unknown {
  if (
    typeof v === "object" && v !== null && !Array.isArray(v) &&
    Object.keys(v).length === 1 && NUMBER_TAG in v
  ) {
    const s = (v as Record<string, unknown>)[NUMBER_TAG];
    if (s === "NaN") return NaN;
    if (s === "Infinity") return Infinity;
    if (s === "-Infinity") return -Infinity;
    if (s === "-0") return -0;
  }
  return v;
}

/**
 * A value as JSON text that loses nothing: NaN, ±Infinity and -0 are
 * written as `{"$number": "NaN"}` (and so on), typed arrays as arrays; keys
 * stay in their own order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeJson, encodeJson } from "./canonical.ts";
 * const m = { runNs: 5, latency: NaN, limit: Infinity };
 * assert.deepEqual(decodeJson(encodeJson(m)), m);
 * ```
 */
export function encodeJson(value: unknown): string {
  return JSON.stringify(value, replacer);
}

/** Reads text written by {@linkcode encodeJson} (tagged numbers restored). */
export function decodeJson(text: string): unknown {
  return JSON.parse(text, reviver);
}

/**
 * `value` as canonical JSON: {@linkcode encodeJson} with the keys of every
 * object sorted (by UTF-16 code units), no whitespace, `undefined`
 * properties left out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalJson } from "./canonical.ts";
 * assert.equal(canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] }), '{"a":[2,{"c":4,"d":3}],"b":1}');
 * ```
 */
export function canonicalJson(value: unknown): string {
  return encodeJson(sortKeys(value));
}

function sortKeys(v: unknown): unknown {
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    return Array.from(v as unknown as ArrayLike<number>);
  }
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v !== "object" || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) {
    const x = (v as Record<string, unknown>)[k];
    if (x !== undefined) out[k] = sortKeys(x);
  }
  return out;
}

/** The sha256 of `data` (text as UTF-8) in lower-case hex. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * What of a resolved scenario decides its run, as one plain value: every
 * field, defaults filled in, minus the `sweep` axes (a point's run does not
 * depend on the other points; its name and `sweepPoint` stay), and a trace
 * workload's file named by the sha256 of its contents instead of its path
 * (the same trace on another machine is the same run).
 *
 * @throws {IopfLabError} ENOENT when a trace file cannot be read
 */
export function canonicalScenario(scenario: Scenario): Record<string, unknown> {
  const { sweep: _, ...rest } = scenario;
  const out: Record<string, unknown> = { ...rest };
  if (scenario.workload.kind === "trace") {
    out.workload = {
      kind: "trace",
      fileSha256: fileSha256(scenario.workload.file),
    };
  }
  return out;
}

const fileHashes = new Map<string, { stamp: string; hash: string }>();

/** The sha256 of a file's contents (remembered while its size and mtime stay). */
export function fileSha256(path: string): string {
  let info: Deno.FileInfo;
  let bytes: Uint8Array;
  try {
    info = Deno.statSync(path);
    const stamp = `${info.size}:${info.mtime?.getTime() ?? ""}`;
    const known = fileHashes.get(path);
    if (known?.stamp === stamp) return known.hash;
    bytes = Deno.readFileSync(path);
    const hash = sha256Hex(bytes);
    fileHashes.set(path, { stamp, hash });
    return hash;
  } catch (e) {
    throw new IopfLabError(
      "ENOENT",
      `Cannot hash ${path} for the results key: ${
        e instanceof Error ? e.message : String(e)
      }`,
      path,
    );
  }
}

/**
 * The key of a run in the results database: the sha256 (hex) of the
 * {@linkcode canonicalJson} of its {@linkcode canonicalScenario}. Two
 * scenario files that resolve to the same run (defaults written out or
 * left to fill in, "1GiB" or 1073741824, keys in any order) have the same
 * key; any change to a field, the seed or the name gives another.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseScenario } from "../experiment/scenario.ts";
 * import { scenarioKey } from "./canonical.ts";
 * const a = scenarioKey(parseScenario({ vm: { memory: "1GiB" }, seed: 1 }));
 * const b = scenarioKey(parseScenario({ seed: 1, vm: { memory: 1073741824 } }));
 * assert.equal(a, b);
 * assert.notEqual(a, scenarioKey(parseScenario({ vm: { memory: "1GiB" }, seed: 2 })));
 * ```
 */
export function scenarioKey(scenario: Scenario): string {
  return sha256Hex(canonicalJson(canonicalScenario(scenario)));
}

/**
 * The key of a whole scenario file as resolved, sweep axes included: what
 * shards of one sweep share (lib/results/shard.ts).
 */
export function sweepKey(scenario: Scenario): string {
  return sha256Hex(
    canonicalJson({ ...canonicalScenario(scenario), sweep: scenario.sweep }),
  );
}
