/**
 * The IOPF queue (drivers/iommu/io-pgfault.c): recoverable faults reported by
 * a driver are parked per device until the group's LAST_PAGE fault arrives,
 * gathered into an {@linkcode IopfGroup}, and handed to the fault handler
 * registered for the device: on a workqueue with N workers (fault path
 * `"workqueue"`), or at once in the reporting driver thread, which waits for
 * the handler (`"evtq-thread"`, as RFC v3 calls VFIO's handler). Exactly one
 * page response goes back to the hardware per group.
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import { costSampler } from "../sim/spread.ts";
import { IopfLabError } from "../sim/errors.ts";
import { Resource } from "../sim/resource.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Counters, Histogram } from "../sim/stats.ts";
import {
  FAULT_REPORT_FLAT,
  FAULT_REPORT_NESTED_L1,
  FAULT_REPORT_NESTED_L2,
  type FaultPath,
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_PAGE_RESP_FAILURE,
  IOMMU_PAGE_RESP_INVALID,
  IOMMU_PAGE_RESP_SUCCESS,
  type IommuDevice,
  type IommuDriverOps,
  type IommuFault,
  type PageResponseCode,
} from "./types.ts";

/** All handler registration flags together. */
export const FAULT_REPORT_ALL = FAULT_REPORT_FLAT | FAULT_REPORT_NESTED_L1 |
  FAULT_REPORT_NESTED_L2;

/**
 * Where a group stands:
 * - `"queued"`: waiting for (or being handled by) its handler, no response yet;
 * - `"answered"`: the one response went out;
 * - `"revoked"`: answered INVALID by the core on device removal/detach (a
 *   later response from the handler is dropped, as iopf_group_response does
 *   for a group no longer pending).
 */
export type IopfGroupState = "queued" | "answered" | "revoked";

/**
 * A group of faults answered together (struct iopf_group): the partial
 * faults with the same group id (and PASID) followed by the LAST_PAGE fault.
 */
export class IopfGroup {
  /** Serial number, unique per {@linkcode IopfQueue}. */
  readonly id: number;
  /** The device that faulted. */
  readonly dev: IommuDevice;
  /** Every fault of the group in arrival order; the last one is {@linkcode last}. */
  readonly faults: readonly IommuFault[];
  /** The LAST_PAGE fault: the hardware response is sent for it. */
  readonly last: IommuFault;
  /**
   * The handler class the group was routed to: FAULT_REPORT_FLAT,
   * FAULT_REPORT_NESTED_L1 (stage-1 fault of a nested domain) or
   * FAULT_REPORT_NESTED_L2 (stage-2 fault of a nested domain).
   */
  readonly route: number;
  /** Simulated time the LAST_PAGE fault was reported (ns). */
  readonly reportedAt: number;
  #state: IopfGroupState = "queued";
  #code: PageResponseCode | -1 = -1;
  #respondedAt = -1;

  /** Built by the queue; not for callers. */
  constructor(
    id: number,
    dev: IommuDevice,
    faults: readonly IommuFault[],
    route: number,
    reportedAt: number,
  ) {
    this.id = id;
    this.dev = dev;
    this.faults = faults;
    this.last = faults[faults.length - 1]!;
    this.route = route;
    this.reportedAt = reportedAt;
  }

  /** Where the group stands. */
  get state(): IopfGroupState {
    return this.#state;
  }

  /** True once the group's one response went out (by the handler or the core). */
  get responded(): boolean {
    return this.#state !== "queued";
  }

  /** The response code sent, or -1 while none was. */
  get code(): PageResponseCode | -1 {
    return this.#code;
  }

  /** Simulated time of the response (ns), or -1. */
  get respondedAt(): number {
    return this.#respondedAt;
  }

  /** @internal Records the response; called by the queue only. */
  _settle(
    state: "answered" | "revoked",
    code: PageResponseCode,
    now: number,
  ): void {
    this.#state = state;
    this.#code = code;
    this.#respondedAt = now;
  }
}

/**
 * A fault handler (the RFC's iommu_dev_fault_handler_t). It runs on an IOPF
 * worker, or in the reporting driver thread on the `"evtq-thread"` path; it
 * must call `done()` exactly once when it returns (that frees the worker,
 * or lets the driver thread read its next record), and answer the group with
 * exactly one {@linkcode IopfQueue.pageResponse} (through the core's
 * `pageResponse`), before or after `done()`: a handler that forwards
 * the fault to a guest returns at once and responds much later.
 *
 * An {@linkcode IopfLabError} thrown synchronously by the handler before it
 * responded is answered INVALID (the work item failed) and frees the worker
 * (or the thread).
 */
export type IommuFaultHandler = (group: IopfGroup, done: () => void) => void;

/** Options of {@linkcode IopfQueue}. */
export interface IopfQueueOptions {
  /** The cost profile (iopf.reportFault, iopf.workqueueWakeup, iopf.groupOverhead). */
  costs: Costs;
  /** The driver that sends page responses to the hardware. */
  driver: Pick<IommuDriverOps, "pageResponse">;
  /** Workers of the IOPF workqueue (an unbound workqueue's concurrency; fault path `"workqueue"` only). Default 1. */
  workers?: number;
  /** Where handlers run ({@linkcode FaultPath}). Default `"workqueue"`. */
  path?: FaultPath;
  /** Counters to add to (shared with the core). Default: a fresh set. */
  counters?: Counters;
  /**
   * Says which handler class a fault of `dev` goes to (the attached domain
   * decides: FLAT for a paging domain, NESTED_L1/NESTED_L2 by stage for a
   * nested one), or 0 when the device has no domain. Default: FLAT.
   */
  route?: (dev: IommuDevice, fault: IommuFault) => number;
}

interface Registration {
  handler: IommuFaultHandler;
  flags: number;
}

/**
 * A device's groups without a response, in arrival order. A group leaves
 * when it is answered or revoked: answered groups are dropped lazily (in
 * place, once they are the majority), so the per-fault add and remove
 * allocate nothing, unlike a Set's rehashing.
 */
class PendingGroups {
  #list: IopfGroup[] = [];
  #answered = 0;

  /** Appends a new group. */
  add(group: IopfGroup): void {
    this.#list.push(group);
  }

  /** Notes that one group of the list was just answered or revoked. */
  drop(): void {
    if (++this.#answered > 16 && this.#answered * 2 > this.#list.length) {
      const list = this.#list;
      let j = 0;
      for (let i = 0; i < list.length; i++) {
        const g = list[i]!;
        if (!g.responded) list[j++] = g;
      }
      list.length = j;
      this.#answered = 0;
    }
  }

  /** The groups without a response, oldest first (a new array). */
  live(): IopfGroup[] {
    return this.#list.filter((g) => !g.responded);
  }
}

/** Per-device fault state (struct iommu_fault_param). */
interface DeviceParam {
  /** Partial faults waiting for their LAST_PAGE fault. */
  partial: IommuFault[];
  /** Groups without a response yet. */
  pending: PendingGroups;
  /** Registered handlers (disjoint flags). */
  handlers: Registration[];
}

/**
 * A group on its way to its handler (the work item of struct iopf_group):
 * queued after `iopf.reportFault`, waiting for a worker, then run. Pooled
 * by the queue, with its callbacks bound once; free again once the handler
 * was called (or the group turned out answered already).
 */
class IopfWork {
  group: IopfGroup | undefined = undefined;
  handler: IommuFaultHandler | undefined = undefined;
  queuedAt = 0;
  /** Fault path "evtq-thread": the reporting thread, resumed when the handler returns. */
  resume: (() => void) | undefined = undefined;
  /** Event: the group reaches the workqueue. */
  queue: () => void = noop;
  /** Resource callback: a worker took the group. */
  granted: () => void = noop;
  /** Event: the worker runs the handler. */
  run: () => void = noop;
}

function noop(): void {}

/** Counters of the queue (also under `iopf.*` in the shared {@linkcode Counters}). */
export interface IopfStats {
  /** Faults reported. */
  faults: number;
  /** Faults parked as partial (without LAST_PAGE). */
  partials: number;
  /** Groups formed. */
  groups: number;
  /** Responses sent to the hardware, by code. */
  responses: { success: number; invalid: number; failure: number };
  /** Responses the handler sent after the core had already answered INVALID (dropped). */
  lateResponses: number;
  /** Partial faults dropped by discardPartial or device removal (no response). */
  partialDiscards: number;
  /** Groups answered INVALID for want of a handler. */
  noHandler: number;
  /** Groups that waited for a free worker. */
  workqueueWaits: number;
  /** Groups with no response yet. */
  pendingGroups: number;
  /** Groups whose handler ran in the reporting thread (fault path "evtq-thread"). */
  threadHandled: number;
}

/**
 * The IOPF queue of one IOMMU (struct iopf_queue): partial lists, group
 * dispatch to handlers on a workqueue, the response bookkeeping.
 *
 * Timing: a reported fault costs `iopf.reportFault` before the group (if
 * LAST_PAGE) is queued; on the workqueue path a worker that was idle first
 * pays `iopf.workqueueWakeup`; every group pays `iopf.groupOverhead` before
 * its handler runs. Workers finish in any order (the unbound workqueue is
 * unordered). On the `"evtq-thread"` path there is no worker and no wakeup:
 * the reporting thread itself spends `iopf.reportFault` and
 * `iopf.groupOverhead`, runs the handler and waits until it returns, so one
 * slow handler holds up every record behind it in the hardware queue.
 * Faults never time out.
 */
export class IopfQueue {
  /** The IOPF workqueue's workers (a {@linkcode Resource}; its `waits` are workqueue waits). */
  readonly workers: Resource;
  /** Counters (`iopf.*`). */
  readonly counters: Counters;
  /** Latency from the LAST_PAGE fault's detection to its response (ns). */
  readonly responseLatency: Histogram = new Histogram();
  readonly #sim: Simulator;
  readonly #costs: Costs;
  /** iopf.workqueueWakeup, drawn per wakeup (lib/sim/spread.ts). */
  readonly #wakeup: () => number;
  readonly #driver: Pick<IommuDriverOps, "pageResponse">;
  readonly #route: (dev: IommuDevice, fault: IommuFault) => number;
  /** Handlers run in the reporting thread (fault path "evtq-thread"). */
  readonly #inThread: boolean;
  readonly #devs = new Map<IommuDevice, DeviceParam>();
  /** The device last looked up and its state (entries are never removed). */
  #lastDev: IommuDevice | undefined = undefined;
  #lastParam: DeviceParam | undefined = undefined;
  #nextGroup = 1;
  #pending = 0;
  readonly #freeWork: IopfWork[] = [];
  // Cells of the counters every fault or response bumps (Counters.cell),
  // taken at their first use: no name lookup per fault.
  #cFaults: { v: number } | undefined;
  #cStage1: { v: number } | undefined;
  #cStage2: { v: number } | undefined;
  #cStall: { v: number } | undefined;
  #cPri: { v: number } | undefined;
  #cGroups: { v: number } | undefined;
  readonly #cResponses: {
    success?: { v: number };
    invalid?: { v: number };
    failure?: { v: number };
  } = {};

  /** Creates the queue on `sim`. */
  constructor(sim: Simulator, options: IopfQueueOptions) {
    this.#sim = sim;
    this.#costs = options.costs;
    this.#wakeup = costSampler(options.costs, "iopf.workqueueWakeup");
    this.#driver = options.driver;
    this.counters = options.counters ?? new Counters();
    this.#route = options.route ?? (() => FAULT_REPORT_FLAT);
    this.#inThread = (options.path ?? "workqueue") === "evtq-thread";
    this.workers = new Resource(sim, {
      name: "iopf workqueue",
      servers: options.workers ?? 1,
    });
  }

  /** The queue's statistics as a plain record. */
  stats(): IopfStats {
    const c = this.counters;
    return {
      faults: c.get("iopf.faults"),
      partials: c.get("iopf.partials"),
      groups: c.get("iopf.groups"),
      responses: {
        success: c.get("iopf.responses.success"),
        invalid: c.get("iopf.responses.invalid"),
        failure: c.get("iopf.responses.failure"),
      },
      lateResponses: c.get("iopf.responses.late"),
      partialDiscards: c.get("iopf.partialDiscards"),
      noHandler: c.get("iopf.noHandler"),
      workqueueWaits: this.workers.waits,
      pendingGroups: this.#pending,
      threadHandled: c.get("iopf.threadHandled"),
    };
  }

  /** Groups of `dev` (or of every device) that have no response yet. */
  pendingGroups(dev?: IommuDevice): IopfGroup[] {
    const out: IopfGroup[] = [];
    for (const [d, p] of this.#devs) {
      if (dev === undefined || d === dev) out.push(...p.pending.live());
    }
    return out;
  }

  /** Partial faults of `dev` (or of every device) parked without their LAST_PAGE fault. */
  partialFaults(dev?: IommuDevice): IommuFault[] {
    const out: IommuFault[] = [];
    for (const [d, p] of this.#devs) {
      if (dev === undefined || d === dev) out.push(...p.partial);
    }
    return out;
  }

  /**
   * Registers `handler` for the faults of `dev` in the classes `flags`
   * (FAULT_REPORT_FLAT / NESTED_L1 / NESTED_L2). A device may have several
   * handlers with disjoint flags.
   *
   * @throws {IopfLabError} EINVAL for empty or unknown flags, or FLAT
   *   together with a NESTED_* flag (RFC v3 1/8,
   *   iommu_register_device_fault_handler: "Only under one configuration");
   *   EBUSY when a flag already has a handler for this device
   */
  registerHandler(
    dev: IommuDevice,
    handler: IommuFaultHandler,
    flags: number,
  ): void {
    const what = `Cannot register a fault handler for ${dev.name}`;
    if (
      !Number.isInteger(flags) || flags === 0 ||
      (flags & ~FAULT_REPORT_ALL) !== 0
    ) {
      throw new IopfLabError(
        "EINVAL",
        `${what}: flags ${flags} must be a non-empty set of FAULT_REPORT_FLAT|NESTED_L1|NESTED_L2`,
      );
    }
    checkOneConfiguration(flags, what);
    const p = this.#param(dev);
    for (const r of p.handlers) {
      if ((r.flags & flags) !== 0) {
        throw new IopfLabError(
          "EBUSY",
          `${what}: flags ${r.flags & flags} already have a handler`,
        );
      }
    }
    p.handlers.push({ handler, flags });
  }

  /**
   * Removes the handlers of `dev` for `flags` (default: all). EBUSY while a
   * group routed to one of them still waits for its response (answer or
   * remove the device first); a registration whose flags are only partly
   * named keeps the rest.
   */
  unregisterHandler(dev: IommuDevice, flags: number = FAULT_REPORT_ALL): void {
    const p = this.#devs.get(dev);
    if (!p) return;
    for (const g of p.pending.live()) {
      if ((g.route & flags) !== 0) {
        throw new IopfLabError(
          "EBUSY",
          `Cannot unregister the fault handler of ${dev.name}: fault group ${g.id} is still pending`,
        );
      }
    }
    p.handlers = p.handlers
      .map((r) => ({ handler: r.handler, flags: r.flags & ~flags }))
      .filter((r) => r.flags !== 0);
  }

  /**
   * iommu_update_device_fault_handler() (RFC v3 1/8): the flags of the
   * registration of `handler` on `dev` become `(flags & mask) | set`, as
   * VFIO switches a device from FLAT to NESTED_L2 when it binds a guest
   * stage 1. Groups already dispatched keep their handler.
   *
   * @throws {IopfLabError} EINVAL when `handler` is not registered for
   *   `dev` or the new flags are empty or mix FLAT with NESTED_*; EBUSY when
   *   another registration has one of the new flags
   */
  updateHandler(
    dev: IommuDevice,
    handler: IommuFaultHandler,
    mask: number,
    set: number,
  ): void {
    const what = `Cannot update the fault handler of ${dev.name}`;
    const p = this.#devs.get(dev);
    const i = p ? p.handlers.findIndex((r) => r.handler === handler) : -1;
    if (!p || i < 0) {
      throw new IopfLabError("EINVAL", `${what}: no such handler registered`);
    }
    const flags = ((p.handlers[i]!.flags & mask) | set) & FAULT_REPORT_ALL;
    if (flags === 0) {
      throw new IopfLabError("EINVAL", `${what}: no flags left`);
    }
    checkOneConfiguration(flags, what);
    for (let j = 0; j < p.handlers.length; j++) {
      if (j !== i && (p.handlers[j]!.flags & flags) !== 0) {
        throw new IopfLabError(
          "EBUSY",
          `${what}: flags ${
            p.handlers[j]!.flags & flags
          } already have another handler`,
        );
      }
    }
    p.handlers[i] = { handler, flags };
  }

  /** The handler registered for `dev` in class `route`, if any. */
  handlerFor(dev: IommuDevice, route: number): IommuFaultHandler | undefined {
    const p = this.#find(dev);
    if (!p || route === 0) return undefined;
    const handlers = p.handlers;
    for (let i = 0; i < handlers.length; i++) {
      if ((handlers[i]!.flags & route) !== 0) return handlers[i]!.handler;
    }
    return undefined;
  }

  /** Where handlers run. */
  get path(): FaultPath {
    return this.#inThread ? "evtq-thread" : "workqueue";
  }

  /**
   * iommu_report_device_fault(): parks a partial fault, or with LAST_PAGE
   * gathers the device's partials of the same group id (PASID not compared,
   * as io-pgfault.c) into a
   * group and queues it for its handler (INVALID at once without one).
   *
   * On the `"evtq-thread"` path, given `resume`, a LAST_PAGE fault's group
   * is handled in the caller's thread: the call returns true and `resume`
   * runs when the handler has returned (its `done()`), or when the group
   * was answered without a handler. Otherwise it returns false: the caller
   * goes on at once.
   */
  reportDeviceFault(
    dev: IommuDevice,
    fault: IommuFault,
    resume?: () => void,
  ): boolean {
    if (fault.type !== "page-req") {
      throw new IopfLabError(
        "EINVAL",
        `Cannot report a fault of ${dev.name}: only page requests are recoverable, got ${
          String((fault as { type: unknown }).type)
        }`,
      );
    }
    const c = this.counters;
    (this.#cFaults ??= c.cell("iopf.faults")).v++;
    if (fault.stage === 1) (this.#cStage1 ??= c.cell("iopf.faults.stage1")).v++;
    else (this.#cStage2 ??= c.cell("iopf.faults.stage2")).v++;
    if (fault.source === "stall") {
      (this.#cStall ??= c.cell("iopf.faults.stall")).v++;
    } else (this.#cPri ??= c.cell("iopf.faults.pri")).v++;
    const p = this.#param(dev);
    if ((fault.flags & IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE) === 0) {
      p.partial.push(fault);
      this.counters.add("iopf.partials");
      return false;
    }
    let faults: IommuFault[];
    if (p.partial.length > 0) {
      faults = [];
      const rest: IommuFault[] = [];
      for (const f of p.partial) (sameGroup(f, fault) ? faults : rest).push(f);
      p.partial = rest;
      faults.push(fault);
    } else {
      faults = [fault]; // the common group of one: no spare capacity
    }
    const route = this.#route(dev, fault);
    const group = new IopfGroup(
      this.#nextGroup++,
      dev,
      faults,
      route,
      this.#sim.now,
    );
    (this.#cGroups ??= this.counters.cell("iopf.groups")).v++;
    p.pending.add(group);
    this.#pending++;
    const w = this.#freeWork.pop() ?? this.#newWork();
    w.group = group;
    const inThread = this.#inThread && resume !== undefined;
    w.resume = inThread ? resume : undefined;
    this.#sim.after(this.#costs["iopf.reportFault"], w.queue);
    return inThread;
  }

  #newWork(): IopfWork {
    const w = new IopfWork();
    w.queue = () => this.#queue(w);
    w.granted = () => this.#granted(w);
    w.run = () => this.#run(w);
    return w;
  }

  /** Puts `w` back in the pool (it holds no group any more). */
  #putWork(w: IopfWork): void {
    w.group = undefined;
    w.handler = undefined;
    w.resume = undefined;
    this.#freeWork.push(w);
  }

  #queue(w: IopfWork): void {
    const group = w.group!, resume = w.resume;
    if (group.responded) { // revoked before it was queued
      this.#putWork(w);
      resume?.();
      return;
    }
    const handler = this.handlerFor(group.dev, group.route);
    if (!handler) {
      this.#putWork(w);
      this.counters.add("iopf.noHandler");
      this.pageResponse(group.dev, group, IOMMU_PAGE_RESP_INVALID);
      resume?.();
      return;
    }
    w.handler = handler;
    w.queuedAt = this.#sim.now;
    if (resume !== undefined) {
      // In the reporting thread: no worker to wait for or wake.
      this.counters.add("iopf.threadHandled");
      this.#sim.after(this.#costs["iopf.groupOverhead"], w.run);
      return;
    }
    if (this.workers.busy >= this.workers.servers) {
      this.counters.add("iopf.workqueueWaits");
    }
    this.workers.acquireSlot(w.granted);
  }

  #granted(w: IopfWork): void {
    if (w.group!.responded) { // revoked while it waited for a worker
      this.#putWork(w);
      this.workers.releaseSlot();
      return;
    }
    const idle = this.#sim.now === w.queuedAt;
    const delay = (idle ? this.#wakeup() : 0) +
      this.#costs["iopf.groupOverhead"];
    this.#sim.after(delay, w.run);
  }

  #run(w: IopfWork): void {
    const group = w.group!, handler = w.handler!, resume = w.resume;
    this.#putWork(w);
    if (group.responded) {
      if (resume) resume();
      else this.workers.releaseSlot();
      return;
    }
    let finished = false;
    const done = () => {
      if (finished) {
        throw new IopfLabError(
          "EINVAL",
          `Cannot finish fault group ${group.id} of ${group.dev.name}: its handler already returned`,
        );
      }
      finished = true;
      if (resume) resume();
      else this.workers.releaseSlot();
    };
    try {
      handler(group, done);
    } catch (e) {
      if (!(e instanceof IopfLabError)) throw e;
      this.counters.add("iopf.handlerErrors");
      if (!group.responded) {
        this.pageResponse(group.dev, group, IOMMU_PAGE_RESP_INVALID);
      }
      if (!finished) done();
    }
  }

  /**
   * iommu_page_response(): sends the one response of `group` to the
   * hardware (driver.pageResponse for its LAST_PAGE fault). A response to a
   * group the core already answered on removal is dropped and counted
   * (`iopf.responses.late`).
   *
   * @throws {IopfLabError} EINVAL for a second response to a group, a group
   *   of another device, or a code other than SUCCESS/INVALID/FAILURE
   */
  pageResponse(
    dev: IommuDevice,
    group: IopfGroup,
    code: PageResponseCode,
  ): void {
    if (group.dev !== dev) {
      throw new IopfLabError(
        "EINVAL",
        `${responseWhat(dev, group)}: the group belongs to ${group.dev.name}`,
      );
    }
    if (
      code !== IOMMU_PAGE_RESP_SUCCESS && code !== IOMMU_PAGE_RESP_INVALID &&
      code !== IOMMU_PAGE_RESP_FAILURE
    ) {
      throw new IopfLabError(
        "EINVAL",
        `${responseWhat(dev, group)}: unknown response code ${String(code)}`,
      );
    }
    if (group.state === "revoked") {
      this.counters.add("iopf.responses.late");
      return;
    }
    if (group.state === "answered") {
      this.counters.add("iopf.responses.duplicate");
      throw new IopfLabError(
        "EINVAL",
        `${
          responseWhat(dev, group)
        }: it was already answered with code ${group.code} (exactly one response per group)`,
      );
    }
    this.#settle(group, "answered", code);
  }

  #settle(
    group: IopfGroup,
    state: "answered" | "revoked",
    code: PageResponseCode,
  ): void {
    const now = this.#sim.now;
    group._settle(state, code, now);
    const p = this.#find(group.dev);
    if (p) {
      // It was pending: every group is, from its report until now.
      p.pending.drop();
      this.#pending--;
    }
    const k = codeName(code);
    (this.#cResponses[k] ??= this.counters.cell(RESPONSE_COUNTERS[k])).v++;
    this.responseLatency.record(Math.max(0, now - group.last.detectedAt));
    this.#driver.pageResponse(group.dev, group.last, code);
  }

  /**
   * iopf_queue_discard_partial(): drops the parked partial faults of `dev`
   * (or of every device) without any response, after a PRI queue overflow
   * lost the LAST_PAGE requests they were waiting for. Returns how many.
   */
  discardPartial(dev?: IommuDevice): number {
    let n = 0;
    for (const [d, p] of this.#devs) {
      if (dev !== undefined && d !== dev) continue;
      n += p.partial.length;
      p.partial = [];
    }
    this.counters.add("iopf.partialDiscards", n);
    return n;
  }

  /**
   * iopf_queue_remove_device(): drops the device's partial faults and
   * answers INVALID to every group still waiting for a response (the
   * handler's own later response is then dropped). Handlers stay registered.
   * Returns the number of groups answered.
   */
  removeDevice(dev: IommuDevice): number {
    const p = this.#devs.get(dev);
    if (!p) return 0;
    this.counters.add("iopf.partialDiscards", p.partial.length);
    p.partial = [];
    const groups = p.pending.live();
    for (const g of groups) this.#settle(g, "revoked", IOMMU_PAGE_RESP_INVALID);
    this.counters.add("iopf.revoked", groups.length);
    return groups.length;
  }

  #param(dev: IommuDevice): DeviceParam {
    let p = this.#find(dev);
    if (!p) {
      p = { partial: [], pending: new PendingGroups(), handlers: [] };
      this.#devs.set(dev, p);
      this.#lastDev = dev;
      this.#lastParam = p;
    }
    return p;
  }

  /** The state of `dev`, if it has any (a one-entry cache before the map). */
  #find(dev: IommuDevice): DeviceParam | undefined {
    if (dev === this.#lastDev) return this.#lastParam;
    const p = this.#devs.get(dev);
    if (p) {
      this.#lastDev = dev;
      this.#lastParam = p;
    }
    return p;
  }
}

/**
 * Whether partial `a` belongs to the group `b` ends: by group id only, as
 * io-pgfault.c (iopf_group_alloc(), and iommu_queue_iopf() before it)
 * compares `prm.grpid` and not the PASID.
 */
function sameGroup(a: IommuFault, b: IommuFault): boolean {
  return a.grpid === b.grpid;
}

/** EINVAL when `flags` names FLAT and a NESTED_* class together. */
function checkOneConfiguration(flags: number, what: string): void {
  if (
    (flags & FAULT_REPORT_FLAT) !== 0 &&
    (flags & (FAULT_REPORT_NESTED_L1 | FAULT_REPORT_NESTED_L2)) !== 0
  ) {
    throw new IopfLabError(
      "EINVAL",
      `${what}: FAULT_REPORT_FLAT cannot be combined with NESTED_L1/NESTED_L2 (one configuration per registration)`,
    );
  }
}

/** The start of pageResponse's error messages (formatted only when one is thrown). */
function responseWhat(dev: IommuDevice, group: IopfGroup): string {
  return `Cannot respond to fault group ${group.id} of ${dev.name}`;
}

/** The `iopf.responses.*` counter of each code (constant strings: no concatenation per fault). */
const RESPONSE_COUNTERS = {
  success: "iopf.responses.success",
  invalid: "iopf.responses.invalid",
  failure: "iopf.responses.failure",
} as const;

function codeName(code: PageResponseCode): "success" | "invalid" | "failure" {
  return code === IOMMU_PAGE_RESP_SUCCESS
    ? "success"
    : code === IOMMU_PAGE_RESP_INVALID
    ? "invalid"
    : "failure";
}
