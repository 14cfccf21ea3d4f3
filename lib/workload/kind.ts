/**
 * What a workload kind is: its config type, its fields (the scenario's
 * `workload.<field>`s), its resolver (scenario JSON to config) and its
 * factory (config to {@linkcode Workload}). One module per kind implements
 * {@linkcode WorkloadKindSpec}; registry.ts lists them.
 *
 * @module
 */
import type { FieldTable } from "../sim/fields.ts";
import { fail } from "../sim/fields.ts";
import type { TraceSummary } from "./trace_file.ts";
import type { Costs } from "../sim/costs.ts";
import { formatSize } from "../sim/units.ts";
import type { Workload } from "./types.ts";

/** What a resolver may read besides the workload's own JSON. */
export interface WorkloadResolveEnv {
  /** Guest RAM of each VM in bytes (buffers must fit in it). */
  readonly vmMemory: number;
  /** Directory that relative paths (the trace file) resolve against. */
  readonly baseDir: string;
  /** Traces already read, by absolute path (shared by the points of a sweep). */
  readonly traces: Map<string, TraceSummary>;
}

/** What a factory may read of the machine. */
export interface WorkloadMakeEnv {
  /** The resolved cost profile. */
  readonly costs: Costs;
  /** Guest-physical address of the first byte of guest RAM. */
  readonly ramBase: number;
}

/** One workload kind: fields, resolver and factory. */
export interface WorkloadKindSpec<C extends { readonly kind: string }> {
  /** The kind, as `workload.kind` names it. */
  readonly kind: C["kind"];
  /** What the workload does. */
  readonly doc: string;
  /** Its fields besides `kind`, in the order error messages list them. */
  readonly fields: FieldTable;
  /**
   * Resolves the workload's JSON (`kind` and only known fields, already
   * checked) into its config; throws EINVAL naming `workload.<field>`.
   */
  resolve(o: Readonly<Record<string, unknown>>, env: WorkloadResolveEnv): C;
  /** Builds the workload of a config. */
  make(config: C, env: WorkloadMakeEnv): Workload;
  /** The config as scenario-file JSON (default: the config itself). */
  toJson?(config: C): Readonly<Record<string, string | number | boolean>>;
}

/** EINVAL naming `where` when `bytes` do not fit in the VM's RAM. */
export function fitVm(
  bytes: number,
  where: string,
  what: string,
  vmMemory: number,
): void {
  if (bytes > vmMemory) {
    fail(
      where,
      `${what} (${formatSize(bytes)}) must fit in vm.memory (${
        formatSize(vmMemory)
      })`,
    );
  }
}
