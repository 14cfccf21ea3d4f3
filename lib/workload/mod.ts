/**
 * Workloads: what the guest and its device do once the VM runs. Each drives
 * DMA through a {@linkcode DmaContext}, the guest's view of the machine.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runWithDepth } from "./mod.ts";
 * let n = 0;
 * runWithDepth(5, 2, (_i, next) => { n++; next(); }, () => assert(n === 5));
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./workloads.ts";
export * from "./zipf.ts";
export * from "./guest_ram.ts";
