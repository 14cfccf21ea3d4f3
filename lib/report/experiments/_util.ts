/**
 * Helpers the report's experiments share: number formats, lookups, labels.
 *
 * @module
 */
import { IopfLabError } from "../../sim/errors.ts";

/** Bytes in a GiB. */
export const GiB = 2 ** 30;

/** A count with thousands separators ("12,345"). */
export function count(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** A share as a percentage ("12 %", "3.4 %" below 10 %). */
export function pct(x: number): string {
  return `${(x * 100).toFixed(x < 0.1 ? 1 : 0)} %`;
}

/** A ratio as a factor ("3.25×", "12.5×", "140×"). */
export function times(x: number): string {
  return x >= 100
    ? `${x.toFixed(0)}×`
    : x >= 10
    ? `${x.toFixed(1)}×`
    : `${x.toFixed(2)}×`;
}

/** The items by a key (the last wins). */
export function byKey<T>(
  items: readonly T[],
  key: (t: T) => string,
): Map<string, T> {
  const m = new Map<string, T>();
  for (const t of items) m.set(key(t), t);
  return m;
}

/** The value, or an EINVAL error naming what is missing from the runs. */
export function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot analyse the report: ${what} is missing from the runs`,
    );
  }
  return v;
}

/** The item with the largest `f`, or undefined for none. */
export function maxBy<T>(
  items: readonly T[],
  f: (t: T) => number,
): T | undefined {
  let best: T | undefined;
  for (const t of items) if (best === undefined || f(t) > f(best)) best = t;
  return best;
}

/** Display names of the host memory backings. */
export const BACKING_LABEL: Readonly<Record<string, string>> = {
  "4k": "4 KiB pages",
  "thp": "THP",
  "hugetlb-2m": "hugetlb 2 MiB",
  "hugetlb-1g": "hugetlb 1 GiB",
};
