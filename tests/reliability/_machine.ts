/**
 * Shared helpers of the reliability and fuzz tests: small scenarios, a
 * machine started on the simulator with the isolation sanitizer attached,
 * and the checks every test repeats (nothing pending, nothing leaked).
 */
import assert from "node:assert/strict";
import {
  buildMachine,
  checkInvariants,
  dmaContext,
  IsolationSanitizer,
  type IsolationSanitizerOptions,
  type Machine,
  makeWorkload,
  parseScenario,
  type ParseScenarioOptions,
  type Scenario,
  startVms,
  teardown,
  type VmInstance,
} from "../../lib/experiment/mod.ts";
import type { DmaResult } from "../../lib/device/dma_engine.ts";

/**
 * A scenario from JSON with small defaults (64 MiB VM on a 1 GiB host,
 * boot, and a guest that touches none of its RAM, so that reclaim works on
 * the device's pages only, unless `json.guest` says otherwise).
 */
export function smallScenario(
  json: Record<string, unknown>,
  options: ParseScenarioOptions = {},
): Scenario {
  const host = (json.host ?? {}) as Record<string, unknown>;
  const vm = (json.vm ?? {}) as Record<string, unknown>;
  const guest = (json.guest ?? {}) as Record<string, unknown>;
  return parseScenario({
    name: "reliability",
    ...json,
    host: { memory: "1GiB", ...host },
    vm: { memory: "64MiB", ...vm },
    guest: { touchedMemory: 0, ...guest },
  }, options);
}

/** A machine whose VMs have started, with the sanitizer watching every access. */
export interface Started {
  /** The machine. */
  readonly m: Machine;
  /** The sanitizer hooked into every device. */
  readonly sanitizer: IsolationSanitizer;
  /** The first VM. */
  readonly vm: VmInstance;
}

/** Builds the machine of `s`, attaches the sanitizer, and runs the VM start to completion. */
export function startMachine(
  s: Scenario,
  sanitizerOptions: IsolationSanitizerOptions = {},
): Started {
  const m = buildMachine(s);
  const sanitizer = new IsolationSanitizer(m, sanitizerOptions);
  let started = false;
  startVms(m, () => (started = true));
  m.sim.run();
  assert.ok(started, "the VMs never finished starting");
  return { m, sanitizer, vm: m.vms[0]! };
}

/** Results of device transfers started by {@linkcode startDma}. */
export interface DmaLog {
  /** Transfers started. */
  started: number;
  /** Results, in completion order. */
  readonly results: DmaResult[];
}

/** Starts a transfer on `vm`'s device and records its result in `log`. */
export function startDma(
  vm: VmInstance,
  log: DmaLog,
  req: { iova: number; size: number; write: boolean },
): void {
  log.started++;
  vm.device.dma(req, (r) => log.results.push(r));
}

/** A new, empty {@linkcode DmaLog}. */
export function newDmaLog(): DmaLog {
  return { started: 0, results: [] };
}

/** Asserts nothing is pending anywhere: no fault group, stalled transaction or page request. */
export function assertQuiet(m: Machine): void {
  const q = m.core.iopf.stats();
  assert.equal(q.pendingGroups, 0, "fault groups still pending");
  assert.equal(m.core.iopf.partialFaults().length, 0, "partial faults left");
  assert.equal(m.smmu.stalledCount, 0, "transactions still stalled");
  for (const vm of m.vms) {
    const d = vm.device;
    const out = "outstandingPageRequests" in d ? d.outstandingPageRequests : 0;
    assert.equal(out, 0, `${d.name} has page requests outstanding`);
  }
}

/** Asserts every VM's pins, locked memory and populated memory are back to zero. */
export function assertNothingLeaked(m: Machine): void {
  for (const vm of m.vms) {
    assert.equal(vm.mm.pinnedPages, 0, `vm${vm.index}: pages still pinned`);
    assert.equal(vm.mm.lockedVm, 0, `vm${vm.index}: locked_vm not zero`);
    assert.equal(vm.container.pinnedPages, 0, `vm${vm.index}: VFIO pins`);
    assert.equal(vm.container.lockedPages, 0, `vm${vm.index}: VFIO charge`);
    assert.equal(vm.mm.populatedBytes, 0, `vm${vm.index}: RAM populated`);
  }
  assert.equal(m.host.usedBytes, 0, "host memory still used");
}

/** Options of {@linkcode runWithReclaim}. */
export interface ReclaimOptions {
  /** Simulated ns between reclaim passes. */
  readonly everyNs: number;
  /** 4 KiB pages each pass asks every VM's address space for. */
  readonly pages: number;
  /** Most reclaim passes (the pressure then stops). Default 5000. */
  readonly maxPasses?: number;
  /** Options of the run's sanitizer. */
  readonly sanitizer?: IsolationSanitizerOptions;
}

/** What {@linkcode runWithReclaim} observed. */
export interface ReclaimRun extends Started {
  /** Pages reclaimed from the VMs while their workloads ran. */
  readonly reclaimed: number;
  /** Pages the MMU notifier unmapped from the IOMMU. */
  readonly notifierUnmapped: number;
}

/**
 * Runs `s`'s workload on every VM while host memory pressure reclaims the
 * VMs' unpinned pages (kswapd passes on the simulator); checks every
 * invariant after the workload, tears the machine down, checks them again
 * and that nothing leaked or stayed pending.
 */
export function runWithReclaim(s: Scenario, o: ReclaimOptions): ReclaimRun {
  const started = startMachine(s, o.sanitizer);
  const { m } = started;
  let pending = m.vms.length;
  let reclaimed = 0;
  const counters = new Map<string, number>();
  for (const vm of m.vms) {
    makeWorkload(m, s.workload).start(
      dmaContext(m, vm, counters),
      () => pending--,
    );
  }
  let ticks = 0;
  const tick = () => {
    // Stop the pressure after a while: a thrashing workload then completes.
    if (pending === 0 || ++ticks > (o.maxPasses ?? 5000)) return;
    for (const vm of m.vms) reclaimed += vm.mm.reclaim(o.pages).reclaimed;
    m.sim.after(o.everyNs, tick);
  };
  m.sim.after(o.everyNs, tick);
  m.sim.run();
  assert.equal(pending, 0, "a workload never completed");
  assertQuiet(m);
  checkInvariants(m, "after the workload");
  const notifierUnmapped = m.vms.reduce(
    (a, vm) => a + vm.container.counters.get("vfio.notifier.unmappedPages"),
    0,
  );
  teardown(m);
  assertQuiet(m);
  checkInvariants(m, "after teardown");
  assertNothingLeaked(m);
  return { ...started, reclaimed, notifierUnmapped };
}
