/**
 * What one bench iteration stands for, shared by the bench files (which loop
 * that many times) and the result tables of run.ts / compare.ts (which
 * divide by it to print a time per operation).
 *
 * @module
 */

/** Translations per iteration in the `translate` group. */
export const TRANSLATE_BATCH = 1000;

/** Faults per iteration in the `fault` group (a stream of faults, timed together). */
export const FAULT_BATCH = 100;

/** Warm page accesses per iteration in the `access` group. */
export const ACCESS_BATCH = 256;
/** The `access` group's benches. */
export const ACCESS_NAME_OFF = "warm page access, no sanitizer";
/** The `access` group's bench with the isolation sanitizer on. */
export const ACCESS_NAME_ON = "warm page access, sanitizer on";

/** Operations per iteration, by bench name (1 when absent). */
export const OPS_PER_ITERATION: Readonly<Record<string, number>> = {
  "limit: typed-array lookup": TRANSLATE_BATCH,
  "iotlb hit s2": TRANSLATE_BATCH,
  "iotlb hit nested": TRANSLATE_BATCH,
  "walk s2 (miss)": TRANSLATE_BATCH,
  "walk a 4 KiB page (x1000)": 1000,
  "walk a 2 MiB block (x1000)": 1000,
  "map + unmap a 4 KiB page (x1000)": 1000,
  // VM starts: one operation is one GiB of guest RAM, so sizes compare.
  "static pin 16GiB 4k": 16,
  "static pin 64GiB 4k": 64,
  "static pin 1TiB hugetlb-1g": 1024,
  "static pin 16TiB hugetlb-1g": 16384,
  "static pin 1TiB hugetlb-2m": 1024,
  "static pin 4TiB hugetlb-2m": 4096,
  "stall fault round trip s2": FAULT_BATCH,
  "stall fault scattered over 1 TiB": FAULT_BATCH,
  "pri fault round trip s2": FAULT_BATCH,
  "nested stage-1 fault to guest": FAULT_BATCH,
  [ACCESS_NAME_ON]: ACCESS_BATCH,
  [ACCESS_NAME_OFF]: ACCESS_BATCH,
};

/** What one operation is, by group (for table headers). */
export const OP_UNIT: Readonly<Record<string, string>> = {
  translate: "translation",
  fault: "fault",
  pin: "GiB started",
  access: "page access",
  sweep: "sweep",
  report: "report",
  scenario: "run set",
  pgtable: "operation",
};
