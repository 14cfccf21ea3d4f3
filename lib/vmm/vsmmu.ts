/**
 * The virtual SMMU a VMM emulates for its guest (QEMU's smmuv3 model, as the
 * guest sees it): an event queue the VMM injects fault events into, an
 * interrupt, and a command queue whose producer-index writes trap to the VMM.
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import type { EventRecord } from "../smmu/types.ts";
import { IopfLabError } from "../sim/errors.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Counters } from "../sim/stats.ts";

/** How the guest answers a fault: a stalled transaction (CMD_RESUME) or a PRI page request (CMD_PRI_RESP). */
export type VSmmuFaultKind = "stall" | "pri";

/**
 * What an entry of the vSMMU's event queue is: a fault the guest answers
 * (a stall or a page request), or an `"event"`: a non-recoverable event
 * record the guest's driver only logs (from the vEVENTQ, Linux 6.15).
 */
export type VSmmuEventKind = VSmmuFaultKind | "event";

/**
 * One fault event in the vSMMU's event (or PRI) queue, built by the VMM from
 * a fault record of the host's DMA fault region.
 */
export interface VSmmuEvent {
  /**
   * The VMM's handle of the host fault group (the record's cookie). A stall
   * event carries it as its STAG, which the guest echoes in CMD_RESUME; for
   * PRI the VMM keeps the mapping, modelled as the same field.
   */
  readonly token: number;
  /** The virtual StreamID (the container's device id). */
  readonly devId: number;
  /** Stall event, PRI page request, or a non-recoverable event record. */
  readonly kind: VSmmuEventKind;
  /** The faulting IOVA (the guest's stage-1 input address). */
  readonly addr: number;
  /** Requested access, IOMMU_FAULT_PERM_* bits. */
  readonly perm: number;
  /** SubstreamID, meaningful with `pasidValid`. */
  readonly pasid: number;
  /** Whether `pasid` is valid (SSV). */
  readonly pasidValid: boolean;
  /** PRG index or STAG of the host fault. */
  readonly grpid: number;
  /** Last request of its group: the guest answers the group with it. */
  readonly last: boolean;
  /** An `"event"`'s raw record as the guest reads it (StreamID = the vSID); absent for faults. */
  readonly record?: EventRecord;
}

/** A command the guest writes to the vSMMU's command queue. */
export type VSmmuCommand =
  | {
    /** CMD_RESUME: resume a stalled transaction. */
    readonly op: "resume";
    /** The event's token (its STAG). */
    readonly token: number;
    /** The virtual StreamID. */
    readonly devId: number;
    /** Retry (true) or Abort (false). */
    readonly retry: boolean;
  }
  | {
    /** CMD_PRI_RESP: answer a page request group. */
    readonly op: "pri-resp";
    /** The group's token. */
    readonly token: number;
    /** The virtual StreamID. */
    readonly devId: number;
    /** Success or Invalid Request. */
    readonly resp: "success" | "invalid";
  }
  | {
    /** CMD_TLBI_NH_VA + CMD_SYNC: invalidate stage-1 entries of an ASID. */
    readonly op: "tlbi";
    /** The guest's ASID. */
    readonly asid: number;
    /** First IOVA. */
    readonly iova: number;
    /** Bytes. */
    readonly size: number;
  };

/** The `vsmmu.commands.*` counter of each command (constant strings: no concatenation per command). */
const COMMAND_COUNTERS: Readonly<Record<VSmmuCommand["op"], string>> = {
  "resume": "vsmmu.commands.resume",
  "pri-resp": "vsmmu.commands.pri-resp",
  "tlbi": "vsmmu.commands.tlbi",
};

function noop(): void {}

/**
 * The VMM's handler of a trapped command: it emulates the command and calls
 * `done` when the guest's vCPU may continue (after the host work it needs).
 */
export type VSmmuCommandHandler = (cmd: VSmmuCommand, done: () => void) => void;

/** Options of {@linkcode VSmmu}. */
export interface VSmmuOptions {
  /** The cost profile (vmm.trap). */
  costs: Costs;
  /** log2 of the event queue's entries (EVENTQ_BASE.LOG2SIZE). Default 8. */
  evtqLog2?: number;
}

/**
 * The vSMMU. Backend side (the VMM): {@linkcode injectEvent},
 * {@linkcode onCommand}. Guest side (its SMMU driver): {@linkcode onIrq},
 * {@linkcode readEvents}, {@linkcode submitCommand}.
 */
export class VSmmu {
  /** Counters (`vsmmu.*`). */
  readonly counters: Counters = new Counters();
  /** Event queue capacity. */
  readonly evtqEntries: number;
  readonly #sim: Simulator;
  readonly #costs: Costs;
  /** The event queue: entries [0, #evtqLen) (the storage is kept when it empties). */
  readonly #evtq: (VSmmuEvent | undefined)[] = [];
  #evtqLen = 0;
  #irq: (() => void) | undefined;
  #cmd: VSmmuCommandHandler | undefined;

  /** Creates an idle vSMMU. */
  constructor(sim: Simulator, options: VSmmuOptions) {
    const log2 = options.evtqLog2 ?? 8;
    if (!Number.isInteger(log2) || log2 < 1 || log2 > 19) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create a vSMMU: evtqLog2 must be a whole number in [1, 19], got ${log2}`,
      );
    }
    this.#sim = sim;
    this.#costs = options.costs;
    this.evtqEntries = 2 ** log2;
  }

  /** Events waiting for the guest. */
  get pendingEvents(): number {
    return this.#evtqLen;
  }

  /**
   * The VMM writes an event into the queue and raises the interrupt (the
   * guest's handler is called synchronously; it schedules its own latency).
   * Returns false when the queue is full: the event is lost (overflow).
   */
  injectEvent(event: VSmmuEvent): boolean {
    if (this.#evtqLen >= this.evtqEntries) {
      this.counters.add("vsmmu.evtqOverflows");
      return false;
    }
    this.#evtq[this.#evtqLen++] = event;
    this.counters.add("vsmmu.events");
    this.#irq?.();
    return true;
  }

  /**
   * The VMM learnt that events were lost before they reached it (a vEVENTQ
   * gap or LOST_EVENTS header): the vSMMU shows an event queue overflow,
   * as the SMMU toggles EVENTQ_PROD.OVFLG when it loses records (the
   * model's choice of how a VMM reports host-side loss). Counted in
   * `vsmmu.evtqOverflows`.
   */
  signalOverflow(lost: number): void {
    this.counters.add("vsmmu.evtqOverflows");
    this.counters.add("vsmmu.lostEvents", lost);
  }

  /** The VMM's trap handler for command-queue writes. */
  onCommand(handler: VSmmuCommandHandler): void {
    this.#cmd = handler;
  }

  /** The guest driver's interrupt handler, called on every injected event. */
  onIrq(handler: () => void): void {
    this.#irq = handler;
  }

  /** The guest consumes every queued event. */
  readEvents(): VSmmuEvent[] {
    const q = this.#evtq, n = this.#evtqLen;
    const out = q.slice(0, n) as VSmmuEvent[];
    for (let i = 0; i < n; i++) q[i] = undefined;
    this.#evtqLen = 0;
    return out;
  }

  /**
   * The guest writes `cmd` and the producer index: a trap to the VMM
   * (`vmm.trap`), whose handler emulates it; `done` runs when the vCPU
   * continues.
   */
  submitCommand(cmd: VSmmuCommand, done?: () => void): void {
    this.counters.add("vsmmu.commands");
    this.counters.add(COMMAND_COUNTERS[cmd.op]);
    this.#sim.after(this.#costs["vmm.trap"], () => {
      const handler = this.#cmd;
      if (!handler) {
        done?.();
        return;
      }
      handler(cmd, done ?? noop);
    });
  }
}
