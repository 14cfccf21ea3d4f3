/**
 * The built-in workloads of shared/INTERFACE.md: boot, accelerator, random,
 * nic-rx, storage and trace replay, one module per kind. Each issues DMA
 * through a {@linkcode DmaContext} and calls `done` when its last transfer
 * completes.
 *
 * @module
 */
export type { DmaContext } from "./types.ts";
export { type AcceleratorOptions, AcceleratorWorkload } from "./accelerator.ts";
export { type RandomOptions, RandomWorkload } from "./random.ts";
export { type NicRxOptions, NicRxWorkload } from "./nic_rx.ts";
export { type StorageOptions, StorageWorkload } from "./storage.ts";
export {
  type TraceCursor,
  traceFileSource,
  type TraceRow,
  type TraceSource,
  TraceWorkload,
  type TraceWorkloadOptions,
} from "./trace.ts";
export type { MutableTraceRecord, TraceSummary } from "./trace_file.ts";
export { BootWorkload } from "./boot.ts";
