/**
 * The scenario's field validators and field tables. Each validator reads one
 * field of the scenario JSON, fills its default and names the field in its
 * error (an `IopfLabError` EINVAL: `workload.messageSize: expected a size
 * like "1MiB", got "1 MB?"`). Each section of the scenario, and each
 * workload kind, describes its fields in a table of {@linkcode FieldSpec}s
 * its resolver reads the defaults and limits from, so the list of every
 * field ({@linkcode scenarioFields} in scenario.ts) is the parser's own.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { integer, size } from "./fields.ts";
 * assert.equal(size(undefined, "vm.memory", "16GiB"), 16 * 2 ** 30);
 * assert.throws(() => integer(0, "vm.count", 1, 64, 1), /vm.count: expected a whole number from 1 to 64, got 0/);
 * ```
 *
 * @module
 */
import { IopfLabError } from "./errors.ts";
import { formatSize, parseBandwidth, parseSize, parseTime } from "./units.ts";

/** A scenario field's value type, as the parser reads it. */
export type FieldType =
  | "string"
  | "integer"
  | "power-of-two"
  | "size"
  | "time"
  | "bandwidth"
  | "fraction"
  | "boolean"
  | "choice"
  | "path"
  | "object";

/** One field of a scenario section or workload kind: what it takes and its default. */
export interface FieldSpec {
  /** The value type. */
  readonly type: FieldType;
  /** The unit of a number: "bytes", "ns", "bytes/s", "pages" or "" for a plain count. */
  readonly unit: string;
  /** The default, as a scenario file would write it (undefined: required, or none). */
  readonly default?: string | number | boolean;
  /** The allowed values of a choice. */
  readonly values?: readonly string[];
  /** Smallest allowed value (integers; bytes for sizes). */
  readonly min?: number;
  /** Largest allowed value (integers; bytes for sizes). */
  readonly max?: number;
  /** What the field means. */
  readonly doc: string;
}

/** A section's fields by name, in the order the error messages list them. */
export type FieldTable = Readonly<Record<string, FieldSpec>>;

/** Throws EINVAL naming the field: `where: message`. */
export function fail(where: string, message: string): never {
  throw new IopfLabError("EINVAL", `${where}: ${message}`, where);
}

/** True for a plain (non-array, non-null) object. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A value as an error message shows it ("nothing", a number, a quoted string, "an array"). */
export function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "number") return String(v);
  if (typeof v === "bigint") return `${v}n (a BigInt)`;
  if (typeof v === "function") return "a function";
  if (typeof v === "symbol") return String(v);
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object" && v !== null) return "an object";
  if (typeof v === "string" && v.length > 60) {
    return JSON.stringify(v.slice(0, 57) + "...");
  }
  return JSON.stringify(v) ?? String(v);
}

/** The value as an object, or EINVAL "expected an object". */
export function object(v: unknown, where: string): Record<string, unknown> {
  if (!isObject(v)) fail(where, `expected an object, got ${describe(v)}`);
  return v;
}

/** EINVAL naming the first key of `o` not in `fields`. */
export function known(
  o: Record<string, unknown>,
  where: string,
  fields: readonly string[],
): void {
  for (const key of Object.keys(o)) {
    if (!fields.includes(key)) {
      fail(
        where ? `${where}.${key}` : key,
        `unknown field (known: ${fields.join(", ")})`,
      );
    }
  }
}

/** A whole number from `min` to `max` (`dflt` when absent). */
export function integer(
  v: unknown,
  where: string,
  min: number,
  max: number,
  dflt: number,
): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    fail(
      where,
      `expected a whole number from ${min} to ${max}, got ${describe(v)}`,
    );
  }
  return v;
}

/** A power of two from `min` to `max` (`dflt` when absent). */
export function powerOfTwo(
  v: unknown,
  where: string,
  min: number,
  max: number,
  dflt: number,
): number {
  if (v === undefined) return dflt;
  const n = typeof v === "number" && Number.isInteger(v) ? v : NaN;
  if (!(n >= min && n <= max && (n & (n - 1)) === 0)) {
    fail(
      where,
      `expected a power of two from ${min} to ${max}, got ${describe(v)}`,
    );
  }
  return n;
}

/** A number from 0 to 1 (`dflt` when absent). */
export function fraction(v: unknown, where: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !(v >= 0 && v <= 1)) {
    fail(where, `expected a number from 0 to 1, got ${describe(v)}`);
  }
  return v;
}

/** true or false (`dflt` when absent). */
export function bool(v: unknown, where: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== "boolean") {
    fail(where, `expected true or false, got ${describe(v)}`);
  }
  return v;
}

/** One of `choices` (`dflt` when absent). */
export function choice<T extends string>(
  v: unknown,
  where: string,
  choices: readonly T[],
  dflt: T,
): T {
  if (v === undefined) return dflt;
  if (typeof v !== "string" || !(choices as readonly string[]).includes(v)) {
    const list = choices.map((c) => JSON.stringify(c)).join(", ");
    fail(where, `expected one of ${list}, got ${describe(v)}`);
  }
  return v as T;
}

/** Options of {@linkcode size}. */
export interface SizeOptions {
  /** Smallest value (default 1). */
  min?: number;
  /** Largest value. */
  max?: number;
  /** The value must be a multiple of this. */
  align?: number;
  /** Why it must be aligned, ending the error message. */
  alignWhy?: string;
  /** What the error message says was expected (default `a size like "1MiB"`). */
  example?: string;
}

/** A size in bytes ("1MiB" or a number; `dflt` when absent), checked against `o`. */
export function size(
  v: unknown,
  where: string,
  dflt: string | number,
  o: SizeOptions = {},
): number {
  if (v === undefined) return parseSize(dflt, where);
  if (typeof v !== "number" && typeof v !== "string") {
    fail(
      where,
      `expected ${o.example ?? 'a size like "1MiB"'}, got ${describe(v)}`,
    );
  }
  let n: number;
  try {
    n = parseSize(v, where);
  } catch (e) {
    if (o.example && e instanceof IopfLabError) {
      fail(where, `expected ${o.example}, got ${describe(v)}`);
    }
    throw e;
  }
  const min = o.min ?? 1;
  if (n < min) {
    fail(
      where,
      min === 1 ? "must be more than 0 bytes" : `must be at least ${min} bytes`,
    );
  }
  if (o.max !== undefined && n > o.max) {
    fail(
      where,
      `${formatSize(n)} is more than the ${
        formatSize(o.max)
      } the model supports`,
    );
  }
  if (o.align !== undefined && n % o.align !== 0) {
    fail(
      where,
      `must be a multiple of ${formatSize(o.align)} ${o.alignWhy}, got ${
        exactSize(n)
      }`,
    );
  }
  return n;
}

/** A size as formatSize shows it, with the exact bytes when that rounds. */
function exactSize(n: number): string {
  const s = formatSize(n);
  return s.includes(".") ? `${s} (${n} bytes)` : s;
}

/** A positive time in ns ("60s" or a number; `dflt` when absent). */
export function positiveTime(v: unknown, where: string, dflt: string): number {
  if (v !== undefined && typeof v !== "number" && typeof v !== "string") {
    fail(where, `expected a time like "60s", got ${describe(v)}`);
  }
  const n = parseTime(v ?? dflt, where);
  if (!(n > 0) || !Number.isFinite(n)) {
    fail(where, `must be a positive time, got ${describe(v)}`);
  }
  return n;
}

/** A bandwidth in bytes per second ("10Gbps"; `dflt` when absent), at most 10 TB/s. */
export function bandwidth(v: unknown, where: string, dflt: string): number {
  const n = parseBandwidth(v ?? dflt, where);
  if (n > 1e13) fail(where, `at most 10 TB/s, got ${describe(v)}`);
  return n;
}

/** An `IopfLabError`'s message without the " (CODE)" suffix the class appends. */
export function bareMessage(
  e: { readonly message: string; readonly code: string },
): string {
  const suffix = ` (${e.code})`;
  return e.message.endsWith(suffix)
    ? e.message.slice(0, -suffix.length)
    : e.message;
}
