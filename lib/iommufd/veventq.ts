/**
 * The vEVENTQ object and its file (drivers/iommu/iommufd/eventq.c and
 * driver.c, Linux 6.15: iommufd_viommu_report_event,
 * iommufd_vevent_handler, iommufd_veventq_fops_read, iommufd_veventq_alloc):
 * the queue through which the host IOMMU driver hands a vIOMMU's
 * non-recoverable events to user space (the VMM), which injects them into
 * the guest's virtual IOMMU. Page requests and stalls do not come here:
 * they go through the fault queue (fault.ts).
 *
 * The rules, as the kernel's: each event gets the next sequence number
 * (from 0, wrapping after INT_MAX to 0). At most `depth` events wait; an
 * event that finds the queue full is lost, and the queue's one
 * LOST_EVENTS header is put at its tail with that event's sequence number
 * (so a later header's sequence shows how many were lost). A new event
 * removes a LOST_EVENTS header that is still last (the gap in the
 * sequence numbers tells the loss from then on). read() returns, oldest
 * first, as many whole vEVENTs as fit in `count` (an 8-byte struct
 * iommufd_vevent_header, then, unless it is LOST_EVENTS, the 32-byte
 * struct iommu_vevent_arm_smmuv3); 0 bytes when the first does not fit.
 * Later kernels (2026, "iommufd: Reject invalid read count in
 * iommufd_veventq_fops_read()") refuse some counts outright; the model
 * keeps the 6.15 behaviour.
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Counters } from "../sim/stats.ts";
import {
  IOMMU_VEVENT_ARM_SMMUV3_SIZE,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMUFD_VEVENT_HEADER_SIZE,
  VEVENT_SEQUENCE_MAX,
} from "./uapi.ts";

/** Options of {@linkcode IommufdVeventq}. */
export interface IommufdVeventqOptions {
  /** The cost profile (iommufd.veventReport, iommufd.faultWakeup). */
  costs: Costs;
  /** The object id IOMMU_VEVENTQ_ALLOC returned. */
  id: number;
  /** The vEVENTQ type (IOMMU_VEVENTQ_TYPE_ARM_SMMUV3). */
  type: number;
  /** veventq_depth: the most events that wait; a positive u32. */
  depth: number;
}

interface Vevent {
  /** The LOST_EVENTS header (no data). */
  readonly lost: boolean;
  sequence: number;
  readonly data: Uint32Array | undefined;
}

/**
 * One vEVENTQ (struct iommufd_veventq) and its fd. The kernel side is
 * {@linkcode reportEvent}; the user side {@linkcode onReadable},
 * {@linkcode readable} and {@linkcode read}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeVevents, IOMMU_VEVENTQ_FLAG_LOST_EVENTS, IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, IommufdVeventq } from "./mod.ts";
 * import { loadCostProfile, Simulator } from "../sim/mod.ts";
 * const q = new IommufdVeventq(new Simulator(), {
 *   costs: loadCostProfile(), id: 1, type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, depth: 2,
 * });
 * for (let i = 0; i < 4; i++) q.reportEvent(new Uint32Array(8).fill(i));
 * const v = decodeVevents(q.read(4096));
 * // Two events, then the LOST_EVENTS header of the last lost one (sequence 3).
 * assert.deepEqual(v.map((e) => [e.flags, e.sequence]), [[0, 0], [0, 1], [IOMMU_VEVENTQ_FLAG_LOST_EVENTS, 3]]);
 * ```
 */
export class IommufdVeventq {
  /** The object id (out_veventq_id). */
  readonly id: number;
  /** The vEVENTQ type. */
  readonly type: number;
  /** veventq_depth. */
  readonly depth: number;
  /** Counters (`iommufd.vevent.*`). */
  readonly counters: Counters = new Counters();
  readonly #sim: Simulator;
  readonly #costs: Costs;
  /** eventq->deliver, oldest first, from #head. */
  #deliver: Vevent[] = [];
  #head = 0;
  /** num_events: normal vEVENTs waiting (the LOST_EVENTS header not counted). */
  #numEvents = 0;
  /** The sequence number of the next vEVENT. */
  #sequence = 0;
  /** The queue's one LOST_EVENTS header (lost_events_header). */
  readonly #lostHeader: Vevent = { lost: true, sequence: 0, data: undefined };
  #listeners: (() => void)[] = [];
  #wakeScheduled = false;
  readonly #wake = (): void => {
    this.#wakeScheduled = false;
    if (!this.readable) return;
    const ls = this.#listeners;
    for (let i = 0; i < ls.length; i++) ls[i]!();
  };

  /** An empty vEVENTQ (IOMMU_VEVENTQ_ALLOC). EINVAL for a depth that is not a positive u32. */
  constructor(sim: Simulator, options: IommufdVeventqOptions) {
    const d = options.depth;
    if (!Number.isInteger(d) || d < 1 || d > 0xffff_ffff) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot allocate a vEVENTQ: veventq_depth must be a positive u32, got ${d}`,
        "depth",
      );
    }
    this.#sim = sim;
    this.#costs = options.costs;
    this.id = options.id;
    this.type = options.type;
    this.depth = d;
  }

  /** Normal vEVENTs waiting to be read. */
  get pendingEvents(): number {
    return this.#numEvents;
  }

  /** poll(): EPOLLIN while anything (an event or the LOST_EVENTS header) waits. */
  get readable(): boolean {
    return this.#head < this.#deliver.length;
  }

  /** The VMM's poll: `listener` runs when the fd becomes readable (after the wakeup latency). */
  onReadable(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /**
   * iommufd_viommu_report_event(): queues a copy of the raw record `evt`
   * (8 u32) with the next sequence number, or, when `depth` events wait,
   * loses it and puts the LOST_EVENTS header at the tail with its sequence
   * number; wakes the readers. Returns the reporting thread's ns
   * (`iommufd.veventReport`).
   */
  reportEvent(evt: Uint32Array): number {
    const d = this.#deliver;
    if (d.length > this.#head && d[d.length - 1] === this.#lostHeader) {
      d.pop();
    }
    let v: Vevent;
    if (this.#numEvents === this.depth) {
      v = this.#lostHeader;
      this.counters.add("iommufd.vevent.lost");
    } else {
      v = { lost: false, sequence: 0, data: evt.slice(0, 8) };
      this.#numEvents++;
      this.counters.add("iommufd.vevent.events");
    }
    v.sequence = this.#sequence;
    this.#sequence = (this.#sequence + 1) & VEVENT_SEQUENCE_MAX;
    d.push(v);
    const ns = this.#costs["iommufd.veventReport"];
    if (!this.#wakeScheduled) {
      this.#wakeScheduled = true;
      this.#sim.after(ns + this.#costs["iommufd.faultWakeup"], this.#wake);
    }
    return ns;
  }

  /**
   * read(fd, buf, count): whole vEVENTs, oldest first, as many as fit in
   * `count` bytes (8 + 32 each, 8 for the LOST_EVENTS header); the bytes
   * (empty when nothing waits or the first does not fit).
   *
   * @throws {IopfLabError} EINVAL when `count` is not a whole number of bytes
   */
  read(count: number): Uint8Array {
    if (!Number.isInteger(count) || count < 0) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot read the vEVENTQ fd: count ${
          String(count)
        } is not a byte count`,
        "count",
      );
    }
    const d = this.#deliver;
    let bytes = 0;
    let end = this.#head;
    while (end < d.length) {
      const n = IOMMUFD_VEVENT_HEADER_SIZE +
        (d[end]!.lost ? 0 : IOMMU_VEVENT_ARM_SMMUV3_SIZE);
      if (bytes + n > count) break;
      bytes += n;
      end++;
    }
    const out = new Uint8Array(bytes);
    const view = new DataView(out.buffer);
    let o = 0;
    for (let i = this.#head; i < end; i++) {
      const v = d[i]!;
      view.setUint32(o, v.lost ? IOMMU_VEVENTQ_FLAG_LOST_EVENTS : 0, true);
      view.setUint32(o + 4, v.sequence, true);
      o += IOMMUFD_VEVENT_HEADER_SIZE;
      if (v.data) {
        for (let k = 0; k < 8; k++) view.setUint32(o + 4 * k, v.data[k]!, true);
        o += IOMMU_VEVENT_ARM_SMMUV3_SIZE;
        this.#numEvents--;
        this.counters.add("iommufd.vevent.eventsRead");
      } else this.counters.add("iommufd.vevent.lostHeadersRead");
    }
    this.#head = end;
    if (this.#head === d.length) {
      this.#deliver = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > d.length) {
      this.#deliver = d.slice(this.#head);
      this.#head = 0;
    }
    this.counters.add("iommufd.vevent.reads");
    return out;
  }

  /** iommufd_veventq_destroy(): drops every waiting vEVENT; no reader is woken again. */
  destroy(): void {
    this.#deliver = [];
    this.#head = 0;
    this.#numEvents = 0;
    this.#listeners = [];
  }
}
