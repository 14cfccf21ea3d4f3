/**
 * The model's own invariants, checked after a run and after teardown when a
 * scenario asks for it (`check: true`, `deno task sim --check`): every fault
 * group answered exactly once, every stalled transaction resumed or
 * terminated, every page request answered or knowingly dropped, pins and
 * locked memory agreeing between VFIO and mm and within the limit, and
 * nothing left pinned, charged or populated after teardown. The first broken
 * invariant throws EIO naming it.
 *
 * @module
 */
import { IopfLabError } from "../sim/errors.ts";
import { PAGE_SIZE } from "../sim/units.ts";
import { type Machine, vmLockedPages, vmPinnedPages } from "./machine.ts";

/** How many invariants were checked (all held, or the check threw). */
export interface InvariantReport {
  /** Invariants checked. */
  readonly checks: number;
  /** Invariants broken (always 0 when returned: a broken one throws). */
  readonly violations: number;
}

/** The names of the invariants, for documentation and error messages. */
export const INVARIANTS = {
  oneResponsePerGroup: "every fault group got exactly one response",
  noPendingGroups: "no fault group is left without a response",
  noStalledTransactions: "every stalled transaction was resumed or terminated",
  noOutstandingPageRequests:
    "every page request was answered or dropped by the overflow rules",
  pinsAgree: "pins held in mm (summed over pages) equal the pins VFIO holds",
  lockedAgree: "locked_vm equals what VFIO charged",
  lockedWithinLimit: "locked_vm never exceeds RLIMIT_MEMLOCK",
  nothingPinnedAfterTeardown: "no page stays pinned after teardown",
  nothingLockedAfterTeardown: "locked memory returns to zero after teardown",
  nothingPopulatedAfterTeardown:
    "no guest RAM stays populated after the VMMs exit",
} as const;

/** Checks every invariant that applies at `when`; throws EIO on the first broken one. */
export function checkInvariants(
  m: Machine,
  when: "after the workload" | "after teardown",
): InvariantReport {
  let checks = 0;
  const must = (ok: boolean, name: keyof typeof INVARIANTS, detail: string) => {
    checks++;
    if (!ok) {
      throw new IopfLabError(
        "EIO",
        `Invariant broken ${when} in ${m.scenario.name}: ${name} (${
          INVARIANTS[name]
        }): ${detail}`,
      );
    }
  };
  const q = m.core.iopf.stats();
  // A handler's response to a group the core already answered INVALID on
  // device removal is dropped (q.lateResponses): the hardware still got one.
  // A second response to an answered group is refused; count those.
  const duplicates = m.core.counters.get("iopf.responses.duplicate");
  const responded = q.responses.success + q.responses.invalid +
    q.responses.failure;
  must(
    duplicates === 0 && responded + q.pendingGroups === q.groups,
    "oneResponsePerGroup",
    `${q.groups} groups, ${responded} answered, ${q.pendingGroups} pending, ${duplicates} second responses refused`,
  );
  must(
    q.pendingGroups === 0,
    "noPendingGroups",
    `${q.pendingGroups} groups pending`,
  );
  must(
    m.smmu.stalledCount === 0,
    "noStalledTransactions",
    `${m.smmu.stalledCount} transactions still stalled`,
  );
  for (const vm of m.vms) {
    const d = vm.device;
    const outstanding = "outstandingPageRequests" in d
      ? d.outstandingPageRequests
      : 0;
    must(
      outstanding === 0,
      "noOutstandingPageRequests",
      `${d.name} has ${outstanding} page requests outstanding`,
    );
    const limitPages = m.scenario.host.memlockLimit / PAGE_SIZE;
    must(
      vm.mm.peakLockedVm <= limitPages,
      "lockedWithinLimit",
      `vm${vm.index} peaked at ${vm.mm.peakLockedVm} pages, limit ${limitPages}`,
    );
    if (when === "after the workload") {
      must(
        vm.mm.pinRefs === vmPinnedPages(vm),
        "pinsAgree",
        `vm${vm.index}: mm holds ${vm.mm.pinRefs} pins, VFIO holds ${
          vmPinnedPages(vm)
        }`,
      );
      // iommufd in user mode charges user_struct->locked_vm, not the mm's.
      const acct = vm.iommufd?.ctx.account;
      const mmCharged = acct && acct.mode !== "mm" ? 0 : vmLockedPages(vm);
      must(
        vm.mm.lockedVm === mmCharged &&
          (!acct || acct.mode !== "user" ||
            acct.user.lockedPages === vmLockedPages(vm)),
        "lockedAgree",
        `vm${vm.index}: locked_vm ${vm.mm.lockedVm} pages, VFIO charged ${
          vmLockedPages(vm)
        }`,
      );
    } else {
      must(
        vm.mm.pinnedPages === 0,
        "nothingPinnedAfterTeardown",
        `vm${vm.index}: ${vm.mm.pinnedPages} pages pinned`,
      );
      must(
        vm.mm.lockedVm === 0,
        "nothingLockedAfterTeardown",
        `vm${vm.index}: locked_vm ${vm.mm.lockedVm} pages`,
      );
      must(
        vm.mm.populatedBytes === 0,
        "nothingPopulatedAfterTeardown",
        `vm${vm.index}: ${vm.mm.populatedBytes} bytes populated`,
      );
    }
  }
  return { checks, violations: 0 };
}
