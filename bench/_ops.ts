/**
 * What one bench iteration stands for, shared by the bench files (which loop
 * that many times) and the result tables of run.ts / compare.ts (which
 * divide by it to print a time per operation).
 *
 * @module
 */

/** Translations per iteration in the `translate` group. */
export const TRANSLATE_BATCH = 1000;

/** Operations per iteration, by bench name (1 when absent). */
export const OPS_PER_ITERATION: Readonly<Record<string, number>> = {
  "limit: typed-array lookup": TRANSLATE_BATCH,
  "iotlb hit s2": TRANSLATE_BATCH,
  "iotlb hit nested": TRANSLATE_BATCH,
  "walk s2 (miss)": TRANSLATE_BATCH,
  "walk a 4 KiB page (x1000)": 1000,
  "walk a 2 MiB block (x1000)": 1000,
  "map + unmap a 4 KiB page (x1000)": 1000,
};

/** What one operation is, by group (for table headers). */
export const OP_UNIT: Readonly<Record<string, string>> = {
  translate: "translation",
  fault: "fault",
  pin: "VM start",
  scenario: "run set",
  pgtable: "operation",
};
