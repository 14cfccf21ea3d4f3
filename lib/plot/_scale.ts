/**
 * Helpers lib/plot's charts share: the largest magnitude of a channel,
 * first-seen unique values, and an axis label with its display unit.
 *
 * @module
 */
import type { DisplayUnit } from "./charts.ts";

/** The largest absolute value of `key` in the data (0 for none). */
export function maxAbs<K extends string>(
  data: readonly { readonly [k in K]: number }[],
  key: K,
): number {
  let m = 0;
  for (const d of data) m = Math.max(m, Math.abs(d[key]));
  return m;
}

/** The values without repeats, in first-seen order. */
export function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/** An axis label with its display unit appended ("setupNs (ms)"), if any. */
export function axisLabel(label: string, unit: DisplayUnit): string {
  return unit.suffix ? `${label} (${unit.suffix})` : label;
}
