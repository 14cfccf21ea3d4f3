/**
 * QEMU's accelerated nested SMMUv3 (hw/arm/smmuv3-accel.c, the VMM side of
 * iommufd nesting, Linux 6.13+): the guest's stage 1 is a nested HWPT on a
 * vIOMMU, and the fault path of recoverable faults runs through the
 * iommufd fault fd. A VMM thread polls the fd, read()s whole groups of
 * 40-byte struct iommu_hwpt_pgfault records, maps each record's dev_id to
 * the vDEVICE's virtual StreamID and injects the fault into the vSMMU
 * (a stall event, answered by CMD_RESUME, or a PRI page request, answered
 * by CMD_PRI_RESP); the guest's answer traps back and becomes an 8-byte
 * struct iommu_hwpt_page_response written to the fd. The guest's TLB
 * invalidations become IOMMU_HWPT_INVALIDATE on the vIOMMU.
 *
 * Events that are not faults (a non-stalled F_TRANSLATION, a C_BAD_CD of
 * the guest's CD...) come through the vIOMMU's vEVENTQ (Linux 6.15) when
 * the VMM allocated one: the same thread reads its fd, checks the
 * sequence numbers (a gap or a LOST_EVENTS header: events were lost,
 * shown to the guest as an event queue overflow) and writes each raw
 * record, whose StreamID the host already replaced by the vSID, into the
 * vSMMU's event queue for the guest's driver to log.
 *
 * @module
 */
import type { IommuDevice } from "../iommu/types.ts";
import type {
  IommufdCtx,
  IommufdFault,
  IommufdVeventq,
} from "../iommufd/mod.ts";
import {
  decodePgfaults,
  decodeVevents,
  encodePageResponses,
  IOMMU_HWPT_PGFAULT_SIZE,
  IOMMU_VEVENT_ARM_SMMUV3_SIZE,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  IOMMUFD_VEVENT_HEADER_SIZE,
  type IommuHwptPgfault,
  VEVENT_SEQUENCE_MAX,
} from "../iommufd/mod.ts";
import { decodeEvent, type EventRecord } from "../smmu/types.ts";
import {
  IOMMU_FAULT_PERM_EXEC,
  IOMMU_FAULT_PERM_PRIV,
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
} from "../iommu/types.ts";
import {
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
} from "../vfio/fault_region.ts";
import type { Costs } from "../sim/costs.ts";
import type { Simulator } from "../sim/simulator.ts";
import { Counters } from "../sim/stats.ts";
import type { VSmmu, VSmmuCommand, VSmmuFaultKind } from "./vsmmu.ts";

/** Bytes of the VMM's read buffer: 64 records. */
export const ACCEL_READ_BYTES = 64 * IOMMU_HWPT_PGFAULT_SIZE;

/** Bytes of the VMM's vEVENTQ read buffer: 64 vEVENTs. */
export const ACCEL_VEVENT_READ_BYTES = 64 *
  (IOMMUFD_VEVENT_HEADER_SIZE + IOMMU_VEVENT_ARM_SMMUV3_SIZE);

/** Options of {@linkcode VmmSmmuAccel}. */
export interface VmmSmmuAccelOptions {
  /** The cost profile (iommufd.faultRead*, iommufd.faultWrite, vmm.injectEvent). */
  costs: Costs;
  /** The VMM's iommufd file. */
  ctx: IommufdCtx;
  /** The fault object of the nested HWPT. */
  fault: IommufdFault;
  /** The vIOMMU of the guest's vSMMU. */
  viommuId: number;
  /** The vSMMU presented to the guest. */
  vsmmu: VSmmu;
  /** How the guest sees a device's faults. Default: "pri" with PRI, else "stall". */
  faultKind?: (dev: IommuDevice) => VSmmuFaultKind;
  /** The device of a dev_id (the VMM's own table). */
  deviceOf: (devId: number) => IommuDevice | undefined;
  /** The vIOMMU's vEVENTQ (IOMMU_VEVENTQ_ALLOC, 6.15), if the VMM allocated one. */
  veventq?: IommufdVeventq;
}

/** What the injection thread writes into the vSMMU next. */
type Injection =
  | { readonly kind: "fault"; readonly rec: IommuHwptPgfault }
  | { readonly kind: "event"; readonly rec: EventRecord };

/**
 * The VMM's fault thread and command emulation for one vSMMU. Reads cost
 * `iommufd.faultRead` per call and `iommufd.faultReadPerRecord` per record
 * before the records are injected one by one (`vmm.injectEvent` each); a
 * record the vSMMU cannot take (its queue full) gets INVALID for its group.
 * A guest response costs the trap (in the vSMMU) plus `iommufd.faultWrite`
 * before the vCPU continues. A vEVENTQ read costs the same as a fault fd
 * read (`iommufd.faultRead` per call, `iommufd.faultReadPerRecord` per
 * vEVENT: the same syscall and copy_to_user work) and each event one
 * `vmm.injectEvent`, in the order the two fds were read.
 */
export class VmmSmmuAccel {
  /** Counters (`vmm.*`). */
  readonly counters: Counters = new Counters();
  readonly #sim: Simulator;
  readonly #costs: Costs;
  readonly #ctx: IommufdCtx;
  readonly #fault: IommufdFault;
  readonly #viommuId: number;
  readonly #vsmmu: VSmmu;
  readonly #kind: (dev: IommuDevice) => VSmmuFaultKind;
  readonly #deviceOf: (devId: number) => IommuDevice | undefined;
  readonly #veventq: IommufdVeventq | undefined;
  #queue: Injection[] = [];
  #head = 0;
  #busy = false;
  #reading = false;
  #readingVevents = false;
  /** The sequence number the next vEVENT should have (-1: none read yet). */
  #nextSeq = -1;
  readonly #dropped = new Set<number>();

  /** Wires the thread to the fault fd and the vSMMU's command traps. */
  constructor(sim: Simulator, options: VmmSmmuAccelOptions) {
    this.#sim = sim;
    this.#costs = options.costs;
    this.#ctx = options.ctx;
    this.#fault = options.fault;
    this.#viommuId = options.viommuId;
    this.#vsmmu = options.vsmmu;
    this.#deviceOf = options.deviceOf;
    this.#kind = options.faultKind ?? ((dev) => dev.pri ? "pri" : "stall");
    this.#fault.onReadable(() => this.#wake());
    this.#veventq = options.veventq;
    this.#veventq?.onReadable(() => this.#wakeVevents());
    this.#vsmmu.onCommand((cmd, done) => this.#command(cmd, done));
  }

  /** poll() said readable: read whole groups until the fd is empty. */
  #wake(): void {
    if (this.#reading) return;
    this.#reading = true;
    this.counters.add("vmm.wakeups");
    this.#readOnce();
  }

  #readOnce(): void {
    const bytes = this.#fault.read(ACCEL_READ_BYTES);
    const recs = decodePgfaults(bytes);
    this.counters.add("vmm.reads");
    this.counters.add("vmm.records", recs.length);
    const ns = this.#costs["iommufd.faultRead"] +
      this.#costs["iommufd.faultReadPerRecord"] * recs.length;
    this.#sim.after(ns, () => {
      for (const r of recs) this.#queue.push({ kind: "fault", rec: r });
      if (!this.#busy) this.#next();
      if (this.#fault.readable) this.#readOnce();
      else this.#reading = false;
    });
  }

  /** poll() said the vEVENTQ fd is readable: read until it is empty. */
  #wakeVevents(): void {
    if (this.#readingVevents) return;
    this.#readingVevents = true;
    this.counters.add("vmm.veventWakeups");
    this.#readVevents();
  }

  #readVevents(): void {
    const q = this.#veventq!;
    const vevents = decodeVevents(q.read(ACCEL_VEVENT_READ_BYTES));
    this.counters.add("vmm.veventReads");
    const ns = this.#costs["iommufd.faultRead"] +
      this.#costs["iommufd.faultReadPerRecord"] * vevents.length;
    this.#sim.after(ns, () => {
      let lost = 0;
      for (const v of vevents) {
        if (this.#nextSeq >= 0 && v.sequence !== this.#nextSeq) {
          lost += (v.sequence - this.#nextSeq) & VEVENT_SEQUENCE_MAX;
        }
        this.#nextSeq = (v.sequence + 1) & VEVENT_SEQUENCE_MAX;
        // A LOST_EVENTS header stands for the one event of its sequence number.
        if (!v.evt) {
          lost++;
          continue;
        }
        this.counters.add("vmm.vevents");
        this.#queue.push({ kind: "event", rec: decodeEvent(v.evt) });
      }
      if (lost > 0) {
        this.counters.add("vmm.veventsLost", lost);
        this.#vsmmu.signalOverflow(lost);
      }
      if (!this.#busy) this.#next();
      if (q.readable) this.#readVevents();
      else this.#readingVevents = false;
    });
  }

  #next(): void {
    if (this.#head >= this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
      this.#busy = false;
      return;
    }
    const item = this.#queue[this.#head++]!;
    this.#busy = true;
    this.#sim.after(this.#costs["vmm.injectEvent"], () => {
      if (item.kind === "fault") this.#inject(item.rec);
      else this.#injectRecord(item.rec);
      this.#next();
    });
  }

  /** A vEVENT into the vSMMU's event queue, as the guest's driver will read it. */
  #injectRecord(r: EventRecord): void {
    let perm = r.RnW ? IOMMU_FAULT_PERM_READ : IOMMU_FAULT_PERM_WRITE;
    if (r.InD) perm |= IOMMU_FAULT_PERM_EXEC;
    if (r.PnU) perm |= IOMMU_FAULT_PERM_PRIV;
    const ok = this.#vsmmu.injectEvent({
      token: 0,
      devId: r.StreamID,
      kind: "event",
      addr: r.InputAddr,
      perm,
      pasid: r.SubstreamID,
      pasidValid: r.SSV,
      grpid: 0,
      last: false,
      record: r,
    });
    this.counters.add(ok ? "vmm.veventsInjected" : "vmm.injectFailures");
  }

  #inject(rec: IommuHwptPgfault): void {
    const last = (rec.flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE) !== 0;
    if (this.#dropped.has(rec.cookie)) {
      if (last) this.#dropped.delete(rec.cookie);
      return;
    }
    const dev = this.#deviceOf(rec.devId);
    const vsid = this.#ctx.virtIdOf(this.#viommuId, rec.devId);
    const ok = this.#vsmmu.injectEvent({
      token: rec.cookie,
      devId: vsid,
      kind: dev ? this.#kind(dev) : "stall",
      addr: rec.addr,
      perm: rec.perm,
      pasid: rec.pasid,
      pasidValid: (rec.flags & IOMMU_PGFAULT_FLAGS_PASID_VALID) !== 0,
      grpid: rec.grpid,
      last,
    });
    this.counters.add(ok ? "vmm.injected" : "vmm.injectFailures");
    if (!ok) {
      this.#respond(rec.cookie, IOMMUFD_PAGE_RESP_INVALID);
      if (!last) this.#dropped.add(rec.cookie);
    }
  }

  /** write() of one response; a stale cookie (the group was auto-answered) is counted. */
  #respond(cookie: number, code: number): void {
    try {
      this.#fault.write(encodePageResponses([{ cookie, code }]));
      this.counters.add("vmm.responses");
    } catch (e) {
      if (!(e instanceof Error) || !("code" in e) || e.code !== "EINVAL") {
        throw e;
      }
      this.counters.add("vmm.staleResponses");
    }
  }

  #command(cmd: VSmmuCommand, done: () => void): void {
    if (cmd.op === "tlbi") {
      this.counters.add("vmm.cacheInvalidations");
      this.#ctx.viommuInvalidate(
        this.#viommuId,
        { iova: cmd.iova, size: cmd.size },
        done,
      );
      return;
    }
    const ok = cmd.op === "resume" ? cmd.retry : cmd.resp === "success";
    this.#sim.after(this.#costs["iommufd.faultWrite"], () => {
      this.#respond(
        cmd.token,
        ok ? IOMMUFD_PAGE_RESP_SUCCESS : IOMMUFD_PAGE_RESP_INVALID,
      );
      done();
    });
  }
}
