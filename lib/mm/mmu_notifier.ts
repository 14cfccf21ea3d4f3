/**
 * MMU notifiers of an address space (mm/mmu_notifier.c): interval notifier
 * registration, the interval's sequence count (mmu_interval_read_begin /
 * mmu_interval_read_retry) and the invalidate_range_start/end calls around
 * every unmap, zap and reclaim. Private to lib/mm; the public entry point is
 * {@linkcode MmStruct.registerMmuNotifier}.
 *
 * @module
 */
import { hex, IopfLabError } from "../sim/errors.ts";
import { checkAddress } from "../sim/units.ts";
import type { MmState, NotifierEntry } from "./_mm.ts";
import type { MmuNotifier, MmuNotifierOps } from "./types.ts";

/**
 * mmu_interval_notifier_insert: registers `ops` on [start, start + size) of
 * `s`. EINVAL for a bad or empty interval.
 */
export function registerMmuNotifier(
  s: MmState,
  start: number,
  size: number,
  ops: MmuNotifierOps,
): MmuNotifier {
  checkAddress(start, "notifier start");
  checkAddress(size, "notifier size");
  if (size === 0) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot register an MMU notifier at ${hex(start)}: size is 0`,
    );
  }
  const entry: NotifierEntry = { start, end: start + size, ops, seq: 0 };
  s.notifiers = [...s.notifiers, entry];
  return {
    start,
    size,
    readBegin: () => entry.seq,
    readRetry: (seq: number) => entry.seq !== seq,
    unregister: () => {
      s.notifiers = s.notifiers.filter((e) => e !== entry);
    },
  };
}

/**
 * mmu_notifier_invalidate_range_start, `body`, then
 * mmu_notifier_invalidate_range_end for [start, end): calls the overlapping
 * notifiers (`mm.notifierCall` per callback, plus what each returns) with
 * `s.zapping` raised; returns the ns.
 */
export function invalidateRange(
  s: MmState,
  start: number,
  end: number,
  body: () => void,
): number {
  const call = s.costs["mm.notifierCall"];
  const list = s.notifiers.filter((n) => n.start < end && start < n.end);
  let ns = 0;
  s.unmapGen++;
  s.zapping++;
  // mn_itree_inv_start_range(): each overlapping interval's sequence count
  // moves on before its callback runs (the callback's mmu_interval_set_seq).
  for (const n of list) n.seq++;
  try {
    for (const n of list) {
      ns += call + (n.ops.invalidateRangeStart(start, end) ?? 0);
    }
    body();
    for (const n of list) {
      ns += call + (n.ops.invalidateRangeEnd(start, end) ?? 0);
    }
  } finally {
    s.zapping--;
  }
  return ns;
}
