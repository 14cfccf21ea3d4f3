/**
 * Running a scenario: build the machine, start the VMs (VFIO setup), run the
 * workload on every VM that started, sample a time series, and read the
 * metrics off the simulated mechanism; with `scenario.check`, tear
 * everything down and check what teardown leaves behind.
 *
 * @module
 */
import type { Histogram } from "../sim/stats.ts";
import {
  COST_NAMES,
  costKind,
  type CostName,
  type Costs,
} from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import { formatTime, PAGE_SIZE } from "../sim/units.ts";
import type { Smmu } from "../smmu/smmu.ts";
import {
  createWorkload,
  TraceWorkload,
  type Workload,
} from "../workload/mod.ts";
import { workloadBytes } from "./estimate.ts";
import {
  buildMachine,
  dmaContext,
  GUEST_RAM_BASE,
  type Machine,
  releaseBackend,
  startVms,
  stopBackground,
  vmDesigns,
} from "./machine.ts";
import {
  combineStatus,
  type Design,
  DMA_DESIGNS,
  IOMMUFD_DESIGN_LIST,
  STAGE_DESIGNS,
} from "./designs/mod.ts";
import type { Metrics, MetricsDesign, SeriesRow } from "./metrics.ts";
import {
  checkResolvedScenario,
  checkWorkloadConfig,
  type Scenario,
  type WorkloadConfig,
} from "./scenario.ts";
import type { RunResult } from "./sweep.ts";
import { describe } from "../sim/fields.ts";
import { checkInvariants, type InvariantReport } from "./invariants.ts";
import { IsolationSanitizer } from "./sanitizer.ts";

/** Options of {@linkcode runScenarioWithSeries}. */
export interface RunScenarioOptions {
  /** Target number of time-series samples (between this and twice as many). Default 100. */
  readonly seriesPoints?: number;
  /**
   * Per-VM workloads (a mix): VM i runs `workloads[i % workloads.length]`
   * instead of `scenario.workload`. Each must fit the VM (resolve it with
   * parseScenario). Default: every VM runs the scenario's workload.
   */
  readonly workloads?: readonly WorkloadConfig[];
  /**
   * Called with the machine after the workloads completed and the metrics
   * were read, before teardown: per-VM state for experiments that need it
   * (the density experiment reads each VM's device statistics).
   */
  readonly inspect?: (m: Machine) => void;
  /**
   * Simulated ns without any DMA progress, while I/O page faults keep
   * coming, after which the run is declared livelocked (ETIMEDOUT).
   * Default {@linkcode LIVELOCK_NS}; `Infinity` never gives up.
   */
  readonly livelockNs?: number;
  /**
   * Called at every time-series sample (100 to 200 times a run, in
   * simulated time) with how far the run is, from the model's own state:
   * while the VMs start, 4 KiB pages pinned of those a static pin will pin;
   * then bytes the devices moved of the workloads' total (rows replayed of
   * a trace's rows). For a progress line with an ETA; it must not throw.
   */
  readonly onProgress?: (progress: RunProgress) => void;
}

/** How one VM of a run fared (what the density experiment reads per VM). */
export interface VmOutcome {
  /** Whether the VM started (its RAM could be set up). */
  readonly started: boolean;
  /** Its device's failed accesses. */
  readonly dmaErrors: number;
  /**
   * Its device's bytes over its own run time (from the moment the last VM
   * finished starting and the last guest finished touching its RAM until
   * its workload completed), per second; 0 when it
   * did not start or ran for no time.
   */
  readonly throughputBytesPerSec: number;
}

/** The outcome of every VM of `m` after its workloads ran. */
export function vmOutcomes(m: Machine): VmOutcome[] {
  const start = Math.max(
    0,
    ...m.vms.map((v) => Math.max(v.setupDoneAt, v.touchDoneAt)),
  );
  return m.vms.map((vm) => {
    const t = vm.runDoneAt - start;
    const bytes = vm.device.stats.bytes;
    return {
      started: vm.started,
      dmaErrors: vm.device.stats.dmaErrors,
      throughputBytesPerSec: vm.started && t > 0 ? (bytes / t) * 1e9 : 0,
    };
  });
}

/** How far a run is (see {@linkcode RunScenarioOptions.onProgress}). */
export interface RunProgress {
  /** Starting the VMs (VFIO setup, pinning), or running the workloads. */
  readonly phase: "setup" | "run";
  /** Units done so far in this phase. */
  readonly done: number;
  /** Units the phase will do; 0 when the model cannot say (setup without a static pin, a boot workload). */
  readonly total: number;
  /** What is counted. */
  readonly unit: "pages pinned" | "bytes moved" | "rows replayed";
  /** done / total, at most 1; NaN when total is 0. */
  readonly fraction: number;
  /** Simulated time now, in ns. */
  readonly simNs: number;
}

/**
 * Shortest default of {@linkcode RunScenarioOptions.livelockNs}: 10 s of simulated
 * time in which faults are reported and retried but no byte moves (say,
 * pages reclaimed again before the retried access reaches them) ends the
 * run. With a slow cost profile the window is longer: see
 * {@linkcode livelockWindow}.
 */
export const LIVELOCK_NS = 10e9;

/**
 * The default livelock window of a run with `costs`: the larger of
 * {@linkcode LIVELOCK_NS} and 1000 times the profile's largest time cost,
 * so that a slow (overridden) fault path is not mistaken for a livelock.
 * The default profile gives 10 s.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadCostProfile } from "../sim/costs.ts";
 * import { LIVELOCK_NS, livelockWindow } from "./run.ts";
 * assert.equal(livelockWindow(loadCostProfile()), LIVELOCK_NS);
 * assert.equal(livelockWindow(loadCostProfile({ "vfio.faultLookup": 1e9 })), 1e12);
 * ```
 */
export function livelockWindow(costs: Costs): number {
  let most = 0;
  for (const name of TIME_COSTS) most = Math.max(most, costs[name]);
  return Math.max(LIVELOCK_NS, 1000 * most);
}

const TIME_COSTS: readonly CostName[] = COST_NAMES.filter((n) =>
  costKind(n) === "time"
);

const DMA_DESIGN_LIST: readonly Design[] = Object.values(DMA_DESIGNS);
const STAGE_DESIGN_LIST = Object.values(STAGE_DESIGNS) as readonly Design[];

/** Builds the workload of a scenario through its kind's factory (lib/workload/registry.ts). */
export function makeWorkload(m: Machine, w: WorkloadConfig): Workload {
  return createWorkload(w, { costs: m.costs, ramBase: GUEST_RAM_BASE });
}

/** Runs a scenario and returns its metrics (see {@linkcode runScenarioWithSeries}). */
export function runScenario(scenario: Scenario): Metrics {
  return runScenarioWithSeries(scenario).metrics;
}

/**
 * Runs one scenario (not a sweep: expand it first) to completion on the
 * simulator and returns its metrics and time series. With `scenario.check`
 * the model's invariants are checked after the run and after teardown; the
 * first broken one throws EIO naming it. Without it the machine is not torn
 * down (nothing returned depends on teardown; {@linkcode teardown} does it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseScenario } from "./scenario.ts";
 * import { runScenarioWithSeries } from "./run.ts";
 * const { metrics } = runScenarioWithSeries(parseScenario({
 *   vm: { memory: "256MiB" },
 *   dma: { mode: "iopf" },
 *   workload: { kind: "accelerator", messageSize: "64KiB", messages: 4 },
 * }));
 * assert(metrics.faults.total === 32 && metrics.dmaErrors === 0);
 * ```
 */
export function runScenarioWithSeries(
  scenario: Scenario,
  options: RunScenarioOptions = {},
): RunResult {
  checkResolvedScenario(scenario, "scenario");
  checkRunOptions(options);
  if (scenario.sweep.length > 0 && scenario.sweepPoint === undefined) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot run scenario ${scenario.name} directly: it has a sweep; run each point of expandSweep()`,
      "sweep",
    );
  }
  const m = buildMachine(scenario);
  const { sim } = m;
  const sanitizer = new IsolationSanitizer(m);
  const counters = new Map<string, number>();
  const sampler = new Sampler(
    m,
    options.seriesPoints ?? 100,
    options.livelockNs ?? livelockWindow(m.costs),
  );
  if (options.onProgress) {
    sampler.reportTo(
      options.onProgress,
      scenario.dma.mode === "static-pin"
        ? Math.ceil(scenario.vm.memory / PAGE_SIZE) * scenario.vm.count
        : 0,
    );
  }
  let setupNs = 0;
  let runStart = 0;
  let runEnd = 0;
  let finished = false;
  startVms(m, () => {
    // Setup ends when the last VM is set up; the guests' touch of their RAM
    // (extra.guestTouchNs) runs between it and the workloads.
    setupNs = Math.max(0, ...m.vms.map((vm) => vm.setupDoneAt));
    runStart = sim.now;
    const live = m.vms.filter((vm) => vm.started);
    let pending = live.length;
    const allDone = () => {
      runEnd = sim.now;
      finished = true;
      sampler.stop();
      stopBackground(m);
    };
    if (pending === 0) {
      allDone();
      return;
    }
    const mix = options.workloads;
    const made: Workload[] = [];
    let totalBytes = 0;
    for (const vm of live) {
      const config = mix && mix.length > 0
        ? mix[vm.index % mix.length]!
        : scenario.workload;
      const w = makeWorkload(m, config);
      made.push(w);
      const bytes = workloadBytes(config);
      totalBytes = bytes > 0 && totalBytes >= 0 ? totalBytes + bytes : -1;
      w.start(dmaContext(m, vm, counters), () => {
        vm.runDoneAt = sim.now;
        if (--pending === 0) allDone();
      });
    }
    sampler.running(made, Math.max(0, totalBytes));
  });
  sampler.start();
  sim.run();
  if (!finished) {
    throw new IopfLabError(
      "EIO",
      `Scenario ${scenario.name}: the workload never completed (a transfer is stuck at ${sim.now} ns)`,
    );
  }
  const metrics = collectMetrics(m, {
    setupNs,
    runNs: runEnd - runStart,
    counters,
    sanitizer,
  });
  options.inspect?.(m);
  const vms = vmOutcomes(m);
  let invariants: InvariantReport | undefined;
  if (scenario.check) {
    const before = checkInvariants(m, "after the workload");
    // Teardown (VFIO releases what it pinned and charged; the VMMs exit)
    // only for the invariants that inspect what it leaves behind: nothing
    // returned depends on it (the metrics, series and per-VM outcomes are
    // read above, the sampler has stopped, and the simulator is idle).
    teardown(m);
    const after = checkInvariants(m, "after teardown");
    invariants = {
      checks: before.checks + after.checks,
      violations: before.violations + after.violations,
    };
  }
  return {
    metrics: invariants ? { ...metrics, invariants } : metrics,
    series: sampler.rows(scenario.name),
    vms,
  };
}

/** EINVAL naming the option when `options` is malformed. */
function checkRunOptions(
  options: unknown,
): asserts options is RunScenarioOptions {
  const bad = (where: string, what: string, v: unknown): never => {
    throw new IopfLabError(
      "EINVAL",
      `${where}: expected ${what}, got ${describe(v)}`,
      where,
    );
  };
  if (typeof options !== "object" || options === null) {
    bad("options", "an object", options);
  }
  const o = options as Record<string, unknown>;
  const points = o.seriesPoints;
  if (
    points !== undefined &&
    !(typeof points === "number" && Number.isInteger(points) && points >= 1 &&
      points <= 1e6)
  ) bad("options.seriesPoints", "a whole number from 1 to 1000000", points);
  const ll = o.livelockNs;
  if (ll !== undefined && !(typeof ll === "number" && ll > 0)) {
    bad("options.livelockNs", "a positive number of ns (or Infinity)", ll);
  }
  if (o.workloads !== undefined) {
    if (!Array.isArray(o.workloads)) {
      bad("options.workloads", "an array of workload configs", o.workloads);
    }
    (o.workloads as unknown[]).forEach((w, i) =>
      checkWorkloadConfig(w, `options.workloads[${i}]`)
    );
  }
  if (o.inspect !== undefined && typeof o.inspect !== "function") {
    bad("options.inspect", "a function", o.inspect);
  }
}

/** Releases every container and address space, running the simulator until idle. */
export function teardown(m: Machine): void {
  stopBackground(m);
  for (const vm of m.vms) releaseBackend(vm);
  m.sim.run();
  for (const vm of m.vms) vm.mm.exitMmap();
  m.sim.run();
}

interface CollectInput {
  readonly setupNs: number;
  readonly runNs: number;
  readonly counters: Map<string, number>;
  readonly sanitizer: IsolationSanitizer;
}

/** The mean of every VM's type1 handler time histogram (0 if empty). */
function vfioHandlerMean(m: Machine): number {
  let n = 0, sum = 0;
  for (const v of m.vms) {
    n += v.container.handlerNs.count;
    sum += v.container.handlerNs.sum;
  }
  return n === 0 ? 0 : sum / n;
}

function latency(h: Histogram) {
  const s = h.summary();
  return { mean: s.mean, p50: s.p50, p99: s.p99, max: s.max };
}

/**
 * The extra metric columns of `designs`, each summed over the VMs (every
 * run has every design's columns: zero for VMs of other designs).
 */
function designExtras(
  m: Machine,
  designs: readonly Design[],
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of designs) {
    for (const vm of m.vms) {
      for (const [k, v] of Object.entries(d.extras(vm))) {
        out[k] = (out[k] ?? 0) + v;
      }
    }
  }
  return out;
}

/** The run's design label: its designs' names and the least mature status. */
function metricsDesign(s: Scenario): MetricsDesign {
  const ds = vmDesigns(s);
  const st = combineStatus(ds.map((d) => d.status(s)));
  return {
    backend: s.dma.backend,
    label: ds.map((d) => d.label).join(" + "),
    status: st.status,
    basis: st.basis,
  };
}

function collectMetrics(m: Machine, c: CollectInput): Metrics {
  const s = m.scenario;
  const iopf = m.core.counters;
  const smmu = m.smmu.stats;
  let dmaBytes = 0,
    dmaErrors = 0,
    pinnedPeak = 0,
    pinnedEnd = 0,
    lockedPeak = 0;
  let prgSuccess = 0, prgInvalid = 0, prgFailure = 0;
  const lat = m.vms[0]!.device.faultLatency;
  const merged = new (lat.constructor as { new (): Histogram })();
  for (const vm of m.vms) {
    const st = vm.device.stats;
    dmaBytes += st.bytes;
    dmaErrors += st.dmaErrors;
    prgSuccess += st.prgResponses.success;
    prgInvalid += st.prgResponses.invalid;
    prgFailure += st.prgResponses.failure;
    pinnedPeak += vm.mm.peakPinnedPages;
    pinnedEnd += vm.mm.pinnedPages;
    const acct = vm.iommufd?.ctx.account;
    lockedPeak += (acct && acct.mode === "user"
      ? acct.user.peakLockedPages
      : vm.mm.peakLockedVm) * PAGE_SIZE;
    merged.merge(vm.device.faultLatency);
  }
  const extra: Record<string, number> = {
    vmsStarted: m.vms.filter((v) => v.started).length,
    vmsFailed: m.vms.filter((v) => v.error !== undefined).length,
    // Every wait for iommu->lock: fault groups, and MAP_DMA, UNMAP_DMA and
    // notifier invalidations (VfioStats.lockWaits).
    containerLockWaits: m.vms.reduce(
      (a, v) => a + v.container.stats().lockWaits,
      0,
    ),
    containerLockWaitNs: m.vms.reduce(
      (a, v) => a + v.container.stats().lockWaitNs,
      0,
    ),
    iopfWorkqueueWaits: m.core.iopf.workers.waits,
    // iommu.faultPath "evtq-thread": groups handled in the driver's queue
    // threads and how long those threads were held inside the handlers;
    // event records the SMMU lost to a full event queue meanwhile.
    iopfThreadHandled: m.core.counters.get("iopf.threadHandled"),
    evtqThreadHeldNs: m.driver.stats.evtqThreadHeldNs,
    priqThreadHeldNs: m.driver.stats.priqThreadHeldNs,
    evtqRecordsLost: smmu.evtqLost,
    premappedPages: m.vms.reduce(
      (a, v) => a + v.container.counters.get("vfio.faults.premappedPages"),
      0,
    ),
    racedFaults: m.vms.reduce(
      (a, v) => a + v.container.counters.get("vfio.faults.raced"),
      0,
    ),
    notifierUnmappedPages: m.vms.reduce(
      (a, v) => a + v.container.counters.get("vfio.notifier.unmappedPages"),
      0,
    ),
    faultRetries: m.vms.reduce(
      (a, v) => a + v.container.counters.get("vfio.faults.retries"),
      0,
    ),
    faultRetryNs: m.vms.reduce(
      (a, v) => a + v.container.counters.get("vfio.faults.retryNs"),
      0,
    ),
    discardedPinnedPages: m.vms.reduce(
      (a, v) => a + v.mm.discardedPinnedPages,
      0,
    ),
    swapOuts: m.vms.reduce((a, v) => a + v.mm.swapOuts, 0),
    swapIns: m.vms.reduce((a, v) => a + v.mm.swapIns, 0),
    swapPeakBytes: m.host.swap.peak * PAGE_SIZE,
    guestTouchedBytes: m.vms.reduce(
      (a, v) => a + (v.started ? v.touchedBytes : 0),
      0,
    ),
    guestTouchNs: m.vms.reduce((a, v) => a + v.touchNs, 0),
    guestCpuWriteFailures: 0,
    walkReads: smmu.walkReads,
    ...smmuCacheExtras(m.smmu),
    stalls: smmu.stalls,
    priAutoResponses: smmu.priAutoResponses,
    pageRequests: m.vms.reduce((a, v) => a + v.device.stats.pageRequests, 0),
    partialPageRequestsDiscarded: m.core.iopf.stats().partialDiscards,
    lazyExposures: c.sanitizer.lazyExposures,
    lazyExposureNsMax: c.sanitizer.lazyExposureNsMax,
    ...designExtras(m, STAGE_DESIGN_LIST),
    // Page accesses that faulted at least once: the samples of faultLatencyNs.
    faultLatencySamples: merged.count,
    // Mean time in the type1 IOPF handler per fault group, from its start
    // to its page response (0 without IOPF faults): the quantity the RFC v2
    // cover letter measured (1.6 us in vfio_iommu_dev_fault_handler).
    vfioFaultHandlerNsMean: vfioHandlerMean(m),
    ...designExtras(m, DMA_DESIGN_LIST),
    ...designExtras(m, IOMMUFD_DESIGN_LIST),
  };
  for (const [k, v] of c.counters) extra[k] = v;
  const metrics: Metrics = {
    name: s.name,
    seed: s.seed,
    ...(s.sweepPoint ? { sweepPoint: s.sweepPoint } : {}),
    design: metricsDesign(s),
    setupNs: c.setupNs,
    runNs: c.runNs,
    dmaBytes,
    throughputBytesPerSec: c.runNs > 0 ? (dmaBytes / c.runNs) * 1e9 : 0,
    faults: {
      total: iopf.get("iopf.faults"),
      stage1: iopf.get("iopf.faults.stage1"),
      stage2: iopf.get("iopf.faults.stage2"),
      stall: iopf.get("iopf.faults.stall"),
      pri: iopf.get("iopf.faults.pri"),
    },
    faultLatencyNs: latency(merged),
    pinnedPagesPeak: pinnedPeak,
    pinnedPagesEnd: pinnedEnd,
    lockedBytesPeak: lockedPeak,
    hostMemoryPeakBytes: m.host.peakUsedBytes,
    iotlb: { hits: smmu.iotlbHits, misses: smmu.iotlbMisses },
    tlbInvalidations: smmu.tlbInvalidations,
    evtqOverflows: smmu.evtqOverflows,
    priqOverflows: smmu.priqOverflows,
    priResponses: {
      success: prgSuccess,
      invalid: prgInvalid,
      failure: prgFailure,
    },
    dmaErrors,
    isolationViolations: c.sanitizer.violations,
    ...(c.counters.has("droppedPackets") || s.workload.kind === "nic-rx"
      ? { droppedPackets: c.counters.get("droppedPackets") ?? 0 }
      : {}),
    extra,
  };
  const errors: string[] = [];
  for (const v of m.vms) {
    if (v.error) errors.push(`vm${v.index}: ${v.error.message}`);
    if (v.runError) errors.push(`vm${v.index}: ${v.runError.message}`);
  }
  const examples = c.sanitizer.examples;
  return {
    ...metrics,
    ...(errors.length > 0 ? { errors } : {}),
    ...(examples.length > 0 ? { violationExamples: examples } : {}),
  };
}

/**
 * Samples counters on the simulator at a fixed interval that doubles (and
 * halves the stored samples) whenever the number of samples reaches twice
 * the target, so any run length gives between `target` and `2 * target`
 * evenly spaced samples without knowing the length in advance.
 */
class Sampler {
  #m: Machine;
  #target: number;
  #interval = 1000;
  #t: number[] = [];
  #bytes: number[] = [];
  #faults: number[] = [];
  #pinned: number[] = [];
  #populated: number[] = [];
  #locked: number[] = [];
  #stopped = false;
  #event = -1;
  readonly #livelockNs: number;
  /** Last time DMA moved, or no fault came in (not livelocked then). */
  #progressAt = 0;
  #lastBytes = 0;
  #lastFaults = 0;
  #faultsAtProgress = 0;
  #report: ((p: RunProgress) => void) | undefined;
  #setupPages = 0;
  #phase: "setup" | "run" = "setup";
  #traces: TraceWorkload[] = [];
  #traceRows = 0;
  #totalBytes = 0;
  #bytesAtRun = 0;

  constructor(m: Machine, target: number, livelockNs: number) {
    this.#m = m;
    this.#target = Math.max(4, target);
    this.#livelockNs = livelockNs;
  }

  start(): void {
    this.#sample();
  }

  /** Reports progress to `report`; the setup will pin `setupPages` pages (0: unknown). */
  reportTo(report: (p: RunProgress) => void, setupPages: number): void {
    this.#report = report;
    this.#setupPages = setupPages;
  }

  /**
   * The VMs started and run `workloads`, moving `totalBytes` (0: unknown);
   * when all are traces, their rows count instead.
   */
  running(workloads: readonly Workload[], totalBytes: number): void {
    this.#phase = "run";
    this.#totalBytes = totalBytes;
    let bytes = 0;
    for (const vm of this.#m.vms) bytes += vm.device.stats.bytes;
    this.#bytesAtRun = bytes;
    const traces = workloads.filter((w) => w instanceof TraceWorkload);
    if (traces.length > 0 && traces.length === workloads.length) {
      this.#traces = traces;
      this.#traceRows = traces.reduce((a, w) => a + w.rows, 0);
    }
  }

  #progress(bytes: number, pinned: number): void {
    const report = this.#report!;
    let done: number, total: number, unit: RunProgress["unit"];
    if (this.#phase === "setup") {
      done = pinned;
      total = this.#setupPages;
      unit = "pages pinned";
    } else if (this.#traces.length > 0) {
      done = 0;
      for (const w of this.#traces) done += w.replayed;
      total = this.#traceRows;
      unit = "rows replayed";
    } else {
      done = bytes - this.#bytesAtRun;
      total = this.#totalBytes;
      unit = "bytes moved";
    }
    report({
      phase: this.#phase,
      done,
      total,
      unit,
      fraction: total > 0 ? Math.min(1, done / total) : NaN,
      simNs: this.#m.sim.now,
    });
  }

  stop(): void {
    if (this.#stopped) return;
    this.#sample();
    this.#stopped = true;
    if (this.#event >= 0) this.#m.sim.cancel(this.#event);
  }

  #sample = (): void => {
    if (this.#stopped) return;
    const m = this.#m;
    let bytes = 0, pinned = 0, populated = 0, locked = 0;
    for (const vm of m.vms) {
      bytes += vm.device.stats.bytes;
      pinned += vm.mm.pinnedPages;
      populated += vm.mm.populatedBytes;
      // iommufd charges the user (IOPT_PAGES_ACCOUNT_USER) unless in mm mode.
      locked += (vm.iommufd && vm.iommufd.ctx.account.mode !== "mm"
        ? vm.iommufd.ctx.lockedPages
        : vm.mm.lockedVm) * PAGE_SIZE;
    }
    const now = m.sim.now;
    if (this.#t.length > 0 && this.#t[this.#t.length - 1] === now) {
      this.#t.pop();
      this.#bytes.pop();
      this.#faults.pop();
      this.#pinned.pop();
      this.#populated.pop();
      this.#locked.pop();
    }
    this.#t.push(now);
    this.#bytes.push(bytes);
    this.#faults.push(m.core.counters.get("iopf.faults"));
    this.#pinned.push(pinned);
    this.#populated.push(populated);
    this.#locked.push(locked);
    if (this.#t.length >= 2 * this.#target) this.#decimate();
    this.#watch(bytes, m.core.counters.get("iopf.faults"));
    if (this.#report) this.#progress(bytes, pinned);
    // Sample only while something else is going on: a stuck run then goes
    // idle (and fails as such) instead of sampling forever.
    this.#event = !this.#stopped && m.sim.pending > 0
      ? m.sim.after(this.#interval, this.#sample)
      : -1;
  };

  /** Throws ETIMEDOUT when faults keep coming and no byte moves for too long. */
  #watch(bytes: number, faults: number): void {
    const now = this.#m.sim.now;
    if (bytes !== this.#lastBytes || faults === this.#lastFaults) {
      this.#progressAt = now;
      this.#faultsAtProgress = faults;
    } else if (now - this.#progressAt >= this.#livelockNs) {
      throw new IopfLabError(
        "ETIMEDOUT",
        `Scenario ${this.#m.scenario.name} livelocked: no DMA progress for ${
          formatTime(now - this.#progressAt)
        } of simulated time while ${
          faults - this.#faultsAtProgress
        } I/O page faults were reported (at ${now} ns); memory thrashing? (host.memory too small for the VMs' working sets, or dma.premapPages too large)`,
      );
    }
    this.#lastBytes = bytes;
    this.#lastFaults = faults;
  }

  #decimate(): void {
    const keep = (a: number[]) => a.filter((_v, i) => i % 2 === 0);
    this.#t = keep(this.#t);
    this.#bytes = keep(this.#bytes);
    this.#faults = keep(this.#faults);
    this.#pinned = keep(this.#pinned);
    this.#populated = keep(this.#populated);
    this.#locked = keep(this.#locked);
    this.#interval *= 2;
  }

  rows(name: string): SeriesRow[] {
    const out: SeriesRow[] = [];
    for (let i = 0; i < this.#t.length; i++) {
      const t = this.#t[i]!;
      const prevT = i > 0 ? this.#t[i - 1]! : 0;
      const prevB = i > 0 ? this.#bytes[i - 1]! : 0;
      const dt = t - prevT;
      out.push({
        name,
        tNs: t,
        dmaBytes: this.#bytes[i]!,
        throughputBytesPerSec: dt > 0
          ? ((this.#bytes[i]! - prevB) / dt) * 1e9
          : 0,
        faults: this.#faults[i]!,
        pinnedPages: this.#pinned[i]!,
        populatedBytes: this.#populated[i]!,
        lockedBytes: this.#locked[i]!,
      });
    }
    return out;
  }
}

/**
 * The SMMU's caches and TCU resources as `extra` keys: configuration cache
 * (STE and CD) and per-level walk cache hits and misses, and the waits for
 * translation slots and walkers.
 */
function smmuCacheExtras(smmu: Smmu): Record<string, number> {
  const st = smmu.stats;
  const t = smmu.timingStats;
  const out: Record<string, number> = {
    configCacheHits: st.cfgHits + st.cdHits,
    configCacheMisses: st.cfgMisses + st.cdMisses,
    configCacheEvictions: st.cfgEvictions,
    iotlbHitWaits: st.iotlbHitWaits,
    xlateSlotWaits: t.xlateSlotWaits,
    xlateSlotWaitNs: t.xlateSlotWaitNs,
    ptwSlotWaits: t.ptwSlotWaits,
    ptwSlotWaitNs: t.ptwSlotWaitNs,
  };
  for (let l = 0; l < 3; l++) {
    out[`walkCacheS1L${l}Hits`] = t.walkS1[l]!.hits;
    out[`walkCacheS1L${l}Misses`] = t.walkS1[l]!.misses;
    out[`walkCacheS2L${l}Hits`] = t.walkS2[l]!.hits;
    out[`walkCacheS2L${l}Misses`] = t.walkS2[l]!.misses;
  }
  return out;
}
