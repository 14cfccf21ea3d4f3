/**
 * The one table of field units: what a field's values are (a time in ns, a
 * size in bytes, a rate, pages, an address, a plain count), read off the
 * field's name. The CLI summary (`formatValue`), the notebook and report
 * tables (`formatCell`) and the charts' axes (`unitOf`) all take the unit
 * from here, so a field reads the same everywhere: `workload.blockSize` is a
 * size in a chart, a table and the terminal alike.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fieldUnit } from "./field_units.ts";
 * assert.equal(fieldUnit("setupNs"), "ns");
 * assert.equal(fieldUnit("workload.blockSize"), "bytes");
 * assert.equal(fieldUnit("sweepPoint.vm.memory"), "bytes");
 * assert.equal(fieldUnit("iova"), "address");
 * assert.equal(fieldUnit("faults.total"), "count");
 * ```
 *
 * @module
 */

/**
 * The unit of a field's values: `ns` a time, `bytes` a size, `bytes/s` a
 * rate, `pages` a number of 4 KiB pages, `address` an address (IOVA, GPA,
 * HVA), `id` a number that is a name (a seed: digits as they are), `count`
 * anything else.
 */
export type FieldUnit =
  | "ns"
  | "bytes"
  | "bytes/s"
  | "pages"
  | "address"
  | "id"
  | "count";

/** One rule of {@linkcode FIELD_UNITS}. */
export interface FieldUnitRule {
  /** The unit of the fields the rule matches. */
  readonly unit: FieldUnit;
  /** Matches the field's last dotted part (`p99` of `faultLatencyNs.p99`). */
  readonly leaf?: RegExp;
  /** Matches the whole field name (after a `sweepPoint.` prefix). */
  readonly path?: RegExp;
  /** Which fields the rule is for, for people. */
  readonly means: string;
}

/**
 * The field-to-unit rules, first match wins; a field no rule matches is a
 * count. Field names are taken without a leading `sweepPoint.` (a swept
 * `vm.memory` is a size like the scenario's own).
 */
export const FIELD_UNITS: readonly FieldUnitRule[] = [
  { unit: "id", leaf: /^seed$/, means: "the run's seed" },
  {
    unit: "bytes/s",
    leaf: /BytesPerSec$/,
    means: "rates: `throughputBytesPerSec`",
  },
  { unit: "ns", leaf: /Ns$/, means: "times: `setupNs`, `lazyExposureNsMax`" },
  {
    unit: "ns",
    path: /^faultLatencyNs\./,
    means: "the fault latency statistics: `faultLatencyNs.p99`",
  },
  {
    unit: "bytes",
    leaf: /bytes/i,
    means: "sizes: `dmaBytes`, `lockedBytesPeak`, `totalBytes`, `bytes`",
  },
  {
    unit: "bytes",
    leaf:
      /^(size|memory|memlockLimit|swap|touchedMemory|messageSize|workingSet|accessSize|bufferSize|blockSize)$/i,
    means:
      "scenario and trace sizes: `vm.memory`, `workload.blockSize`, a trace's `size`",
  },
  { unit: "pages", leaf: /pages/i, means: "pages: `pinnedPagesPeak`" },
  {
    unit: "address",
    leaf: /^(iova|gpa|hva|addr|address)$/,
    means: "addresses: `iova`, `gpa`",
  },
];

/** The unit of a field by its name ({@linkcode FIELD_UNITS}). */
export function fieldUnit(field: string): FieldUnit {
  const path = field.startsWith("sweepPoint.") ? field.slice(11) : field;
  const leaf = path.slice(path.lastIndexOf(".") + 1);
  for (const rule of FIELD_UNITS) {
    if (rule.leaf !== undefined && rule.leaf.test(leaf)) return rule.unit;
    if (rule.path !== undefined && rule.path.test(path)) return rule.unit;
  }
  return "count";
}
