/** Shared fixtures of the SMMU tests. */
import { loadCostProfile, Simulator } from "../../lib/sim/mod.ts";
import type { Costs } from "../../lib/sim/mod.ts";
import { IoPgtable } from "../../lib/pgtable/mod.ts";
import {
  Smmu,
  type SmmuOptions,
  type SteS2,
  TableMemory,
  type Txn,
  type TxnResult,
} from "../../lib/smmu/mod.ts";
import type { EventRecord } from "../../lib/smmu/mod.ts";

/** A simulator, the default costs, table memory and an SMMU. */
export interface Rig {
  sim: Simulator;
  costs: Costs;
  memory: TableMemory;
  smmu: Smmu;
}

/** Builds a rig; `options` override SMMU options. */
export function rig(
  options: Partial<Omit<SmmuOptions, "costs" | "memory">> = {},
): Rig {
  const sim = new Simulator();
  const costs = loadCostProfile();
  const memory = new TableMemory();
  const smmu = new Smmu(sim, { costs, memory, ...options });
  return { sim, costs, memory, smmu };
}

/**
 * A host stage-2 (or stage-1) table registered in host space. `split`: the
 * pre-6.13 io-pgtable-arm that splits a block on a partial unmap, for tests
 * that punch a 4 KiB hole into block-mapped memory.
 */
export function hostTable(
  memory: TableMemory,
  stage: 1 | 2 = 2,
  split = false,
): IoPgtable {
  const t = new IoPgtable({ stage, splitOnUnmap: split });
  memory.register(0, t);
  return t;
}

/** A stage-2-only STE for `table`. */
export function steS2(table: IoPgtable, over: Partial<SteS2> = {}): SteS2 {
  return {
    V: true,
    Config: 6,
    S2VMID: 1,
    S2TTB: table.root,
    S2S: false,
    S2R: true,
    ...over,
  };
}

/** Presents `txn`, runs the simulator until idle and returns a copy of the result (undefined if stalled). */
export function translateNow(r: Rig, txn: Txn): TxnResult | undefined {
  let out: TxnResult | undefined;
  r.smmu.translate(txn, (res) => (out = { ...res }));
  r.sim.run();
  return out;
}

/** Reads every event record waiting in the event queue. */
export function drainEvents(smmu: Smmu): EventRecord[] {
  const out: EventRecord[] = [];
  for (let e = smmu.readEvent(); e; e = smmu.readEvent()) out.push(e.record);
  return out;
}
