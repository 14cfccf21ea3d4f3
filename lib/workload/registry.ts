/**
 * The workload kinds by `workload.kind`. The scenario parser resolves a
 * workload through its kind's entry and the runner builds it through the
 * same entry; adding a kind is one new module and one line here.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WORKLOAD_KINDS, WORKLOADS } from "./registry.ts";
 * assert.deepEqual(WORKLOAD_KINDS, ["boot", "accelerator", "random", "nic-rx", "storage", "trace"]);
 * assert.deepEqual(Object.keys(WORKLOADS.accelerator.fields), ["messageSize", "messages", "reuseBuffers", "chunkSize", "cpuWritesInput"]);
 * ```
 *
 * @module
 */
import { acceleratorWorkload } from "./accelerator.ts";
import { bootWorkload } from "./boot.ts";
import type { WorkloadKindSpec, WorkloadMakeEnv } from "./kind.ts";
import { nicRxWorkload } from "./nic_rx.ts";
import { randomWorkload } from "./random.ts";
import { storageWorkload } from "./storage.ts";
import { traceWorkload } from "./trace.ts";
import type { Workload } from "./types.ts";

/** The workload kinds, in the order error messages list them. */
export const WORKLOADS = {
  boot: bootWorkload,
  accelerator: acceleratorWorkload,
  random: randomWorkload,
  "nic-rx": nicRxWorkload,
  storage: storageWorkload,
  trace: traceWorkload,
} as const;

/** The kinds of workload. */
export type WorkloadKind = keyof typeof WORKLOADS;

/** What the guest and its device do: one of the workload kinds' configs. */
export type WorkloadConfig = {
  [K in WorkloadKind]: ReturnType<(typeof WORKLOADS)[K]["resolve"]>;
}[WorkloadKind];

/** The values of `workload.kind`. */
export const WORKLOAD_KINDS = Object.keys(WORKLOADS) as readonly WorkloadKind[];

/** The registry entry of a kind. */
export function workloadKind(
  kind: WorkloadKind,
): WorkloadKindSpec<WorkloadConfig> {
  return WORKLOADS[kind];
}

/** Builds the workload of a config through its kind's factory. */
export function createWorkload(
  config: WorkloadConfig,
  env: WorkloadMakeEnv,
): Workload {
  return workloadKind(config.kind).make(config, env);
}
