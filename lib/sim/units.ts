/**
 * Units: pages, sizes, times, bandwidths, permissions, and validation of
 * addresses on entry to the model.
 *
 * @module
 */
import { hex, IopfLabError } from "./errors.ts";

/** log2 of the 4 KiB page size. */
export const PAGE_SHIFT = 12;
/** The 4 KiB page size in bytes. */
export const PAGE_SIZE = 4096;
/** 4 KiB. */
export const SZ_4K = 0x1000;
/** 2 MiB. */
export const SZ_2M = 0x200000;
/** 1 GiB. */
export const SZ_1G = 0x40000000;
/** The largest address or size the model accepts (2^52). */
export const MAX_ADDRESS = 2 ** 52;

/** IOMMU_READ permission bit (as in include/linux/iommu.h). */
export const PROT_READ = 1;
/** IOMMU_WRITE permission bit. */
export const PROT_WRITE = 2;
/** A permission bitmask of {@linkcode PROT_READ} and {@linkcode PROT_WRITE}. */
export type Prot = number;

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

const TIME_UNITS: Record<string, number> = {
  "": 1,
  ns: 1,
  us: 1e3,
  "µs": 1e3,
  ms: 1e6,
  s: 1e9,
};

/** Bandwidth prefixes: decimal (k, M, G, T; any case) or binary (Ki, Mi, Gi, Ti). */
const BW_PREFIX: Record<string, number> = {
  "": 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  t: 1e12,
  ki: 1024,
  mi: 1024 ** 2,
  gi: 1024 ** 3,
  ti: 1024 ** 4,
};

/**
 * A bandwidth's unit: prefix, then bytes ("B") or bits ("b", "bit"), then
 * "/s" or "ps". The case of b/B decides bits or bytes, as users write them:
 * "Gb/s", "Gbps", "Gbit/s" are bits; "GB/s", "GBps" are bytes.
 */
const BW_UNIT = /^([kmgt]i?)?(bits?|B|b)(\/s|ps)$/i;

const NUM_UNIT = /^\s*([0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)\s*([a-zµ/]*)\s*$/i;

/** EINVAL for `value` at `where`: "expected <what> like <example>, got ...". */
function badValue(
  where: string,
  what: string,
  example: string,
  value: unknown,
  why = "",
): never {
  const got = typeof value === "number" || typeof value === "bigint"
    ? String(value)
    : JSON.stringify(value);
  throw new IopfLabError(
    "EINVAL",
    `${where}: expected ${what} like ${example}, got ${got}${why}`,
    where,
  );
}

/** `n`, or EINVAL when it is not finite ("1e400" parses to Infinity). */
function finite(
  n: number,
  where: string,
  what: string,
  example: string,
  value: unknown,
): number {
  if (!Number.isFinite(n)) {
    badValue(where, what, example, value, " (not a finite number)");
  }
  return n;
}

function parseWith(
  value: unknown,
  table: Record<string, number>,
  what: string,
  example: string,
  where: string,
  caseSensitiveUnit = false,
): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) {
      badValue(where, what, example, value);
    }
    return value;
  }
  if (typeof value !== "string") badValue(where, what, example, value);
  const m = NUM_UNIT.exec(value);
  const unit = m?.[2] ?? "";
  const mult = m
    ? table[caseSensitiveUnit ? unit : unit.toLowerCase()]
    : undefined;
  if (!m || mult === undefined) badValue(where, what, example, value);
  return finite(Number(m[1]) * mult, where, what, example, value);
}

function parseBandwidthValue(value: unknown, where: string): number {
  const what = "a bandwidth", example = '"8GB/s" or "10Gbps"';
  if (typeof value !== "string") {
    return parseWith(value, {}, what, example, where);
  }
  const m = /^\s*([0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)\s*(\S+)\s*$/i.exec(
    value,
  );
  const u = m ? BW_UNIT.exec(m[2]!) : null;
  if (!m || !u) {
    badValue(
      where,
      what,
      example,
      value,
      ' (bits: "Gb/s", "Gbps", "Gbit/s"; bytes: "GB/s", "GBps")',
    );
  }
  const prefix = BW_PREFIX[(u[1] ?? "").toLowerCase()]!;
  const bits = u[2] !== "B";
  return finite(
    Number(m[1]) * prefix / (bits ? 8 : 1),
    where,
    what,
    example,
    value,
  );
}

/**
 * Parses a size: a byte count or a string with a unit ("4KiB", "16GiB",
 * "1TiB", "2M"). Returns whole bytes; fractions of a byte, negative values
 * and sizes beyond 2^52 are rejected with EINVAL naming `where`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSize } from "./units.ts";
 * assert(parseSize("16GiB") === 16 * 2 ** 30);
 * ```
 */
export function parseSize(value: unknown, where = "size"): number {
  const n = parseWith(value, SIZE_UNITS, "a size", '"1MiB"', where);
  if (!Number.isInteger(n) || n > MAX_ADDRESS) {
    throw new IopfLabError(
      "EINVAL",
      `${where}: expected a whole number of bytes at most 2^52, got ${
        JSON.stringify(value)
      }`,
      where,
    );
  }
  return n;
}

/** Parses a time in ns: a number, or "2us", "1.5ms", "10s". */
export function parseTime(value: unknown, where = "time"): number {
  const n = parseWith(value, TIME_UNITS, "a time", '"2us"', where);
  if (n > MAX_TIME) {
    throw new IopfLabError(
      "EINVAL",
      `${where}: a time must be at most 2^53 ns (about 104 days), got ${
        JSON.stringify(value)
      }`,
      where,
    );
  }
  return n;
}

/** The longest time the model accepts, in ns (2^53: exact in a double). */
export const MAX_TIME = 2 ** 53;

/**
 * Parses a bandwidth into bytes per second: "8GB/s" or "8GBps" (bytes),
 * "10Gb/s", "10Gbps" or "10Gbit/s" (bits), "1GiB/s" (binary prefix), or a
 * number (B/s). Only the case of b/B matters: it decides bits or bytes.
 */
export function parseBandwidth(value: unknown, where = "bandwidth"): number {
  const n = parseBandwidthValue(value, where);
  if (n <= 0) {
    throw new IopfLabError(
      "EINVAL",
      `${where}: a bandwidth must be positive, got ${JSON.stringify(value)}`,
      where,
    );
  }
  return n;
}

/** Formats a byte count with a binary unit ("16 GiB"). */
export function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(2)} ${units[i]}`;
}

/** Formats a time in ns with a readable unit ("1.60 us"). */
export function formatTime(ns: number): string {
  if (ns < 1e3) return `${ns.toFixed(0)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(2)} us`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(2)} ms`;
  return `${(ns / 1e9).toFixed(3)} s`;
}

/**
 * Whether the whole number `value` is a multiple of `align`: for a power of
 * two (the usual alignment) a division, which is exact, instead of the
 * floating-point remainder (a library call for values beyond 2^31).
 */
function isMultiple(value: number, align: number): boolean {
  return align <= 0x40000000 && (align & (align - 1)) === 0
    ? Number.isInteger(value / align)
    : value % align === 0;
}

/**
 * Checks that `value` is a whole, non-negative number below 2^52 that is a
 * multiple of `align`; throws EINVAL naming `what` otherwise.
 */
export function checkAddress(value: number, what: string, align = 1): void {
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < 0 ||
    value > MAX_ADDRESS
  ) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot use ${what} ${String(value)}: not a whole number in [0, 2^52]`,
    );
  }
  if (align > 1 && !isMultiple(value, align)) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot use ${what} ${hex(value)}: not aligned to ${hex(align)}`,
    );
  }
}

/** True when `x` is a multiple of `align` (any power of two up to 2^52). */
export function isAligned(x: number, align: number): boolean {
  return isMultiple(x, align);
}

/**
 * `x - (x % align)`: `x` rounded down to a multiple of `align`, by an exact
 * division for a non-negative `x` and a power-of-two `align` (no
 * floating-point remainder, a library call beyond 2^31).
 */
export function alignDown(x: number, align: number): number {
  return x >= 0 && align <= 0x40000000 && (align & (align - 1)) === 0
    ? Math.floor(x / align) * align
    : x - (x % align);
}
