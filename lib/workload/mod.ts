/**
 * Workloads: what the guest and its device do once the VM runs. Each drives
 * DMA through a {@linkcode DmaContext}, the guest's view of the machine.
 * Each kind (boot, accelerator, random, nic-rx, storage, trace) has its own
 * module with its config type, fields, resolver and factory; the registry
 * ({@linkcode WORKLOADS}) lists them.
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
export * from "./kind.ts";
export * from "./registry.ts";
export { MAX_COUNT } from "./limits.ts";
export {
  ACCELERATOR_FIELDS,
  type AcceleratorConfig,
  type AcceleratorEngine,
  acceleratorEngine,
  acceleratorWorkload,
} from "./accelerator.ts";
export { type BootConfig, bootWorkload } from "./boot.ts";
export {
  type Distribution,
  RANDOM_FIELDS,
  type RandomConfig,
  randomWorkload,
  ZIPF_EXPONENT,
} from "./random.ts";
export { NIC_RX_FIELDS, type NicRxConfig, nicRxWorkload } from "./nic_rx.ts";
export {
  STORAGE_FIELDS,
  type StorageConfig,
  storageWorkload,
} from "./storage.ts";
export { TRACE_FIELDS, type TraceConfig, traceWorkload } from "./trace.ts";
