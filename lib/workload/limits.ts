/**
 * Limits shared by the workload kinds' fields.
 *
 * @module
 */

/** Largest count of messages, accesses or packets. */
export const MAX_COUNT = 1e9;
