/**
 * The arm-smmu-v3 driver's fault path: the event and PRI queue interrupts
 * and their threads (arm_smmu_evtq_thread, arm_smmu_priq_thread), the
 * handlers that turn stall records and page requests into
 * {@linkcode IommuFault} reports (arm_smmu_handle_evt, arm_smmu_handle_ppr),
 * the page responses (CMD_RESUME, CMD_PRI_RESP) and the global error
 * interrupt (arm_smmu_gerror_handler, arm_smmu_cmdq_skip_err). `ArmSmmuV3Driver`
 * delegates to it; use it through the driver.
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import { costSampler } from "../sim/spread.ts";
import { hex } from "../sim/errors.ts";
import type { Simulator } from "../sim/simulator.ts";
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  IOMMU_FAULT_PERM_EXEC,
  IOMMU_FAULT_PERM_PRIV,
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
  IOMMU_PAGE_RESP_FAILURE,
  IOMMU_PAGE_RESP_SUCCESS,
  type IommuDevice,
  type IommuFault,
  type IommuFaultSink,
  type PageResponseCode,
} from "../iommu/types.ts";
import type { Smmu } from "./smmu.ts";
import {
  C_BAD_CD,
  C_BAD_STE,
  C_BAD_SUBSTREAMID,
  CERROR_ABT,
  CERROR_ATC_INV_SYNC,
  CERROR_ILL,
  CMD_PRI_RESP,
  CMD_RESUME,
  CMD_SYNC,
  type CmdPriResp,
  type CmdResume,
  type Command,
  encodeEvent,
  EVENT_NAMES,
  EVENT_WORDS,
  type EventRecord,
  F_ACCESS,
  F_ADDR_SIZE,
  F_PERMISSION,
  F_STREAM_DISABLED,
  F_TRANSLATION,
  GERROR_CMDQ_ERR,
  isStopMarker,
  isTranslationFault,
  type MutableEventRecord,
  type MutablePriEntry,
  newEventRecord,
  newPriEntry,
  PRI_RESP_FAILURE,
  PRI_RESP_INVALID,
  PRI_RESP_SUCCESS,
  type PriEntry,
  RESUME_ABORT,
  RESUME_RETRY,
} from "./types.ts";
import type { Master } from "./_domain.ts";
import type { ArmSmmuV3DriverStats, LoggedEvent } from "./driver.ts";

/**
 * The event IDs the driver hands to a vIOMMU (the list of struct
 * iommu_vevent_arm_smmuv3 in include/uapi/linux/iommufd.h, Linux 6.15).
 */
const VEVENT_IDS: ReadonlySet<number> = new Set([
  C_BAD_STE,
  F_STREAM_DISABLED,
  C_BAD_SUBSTREAMID,
  C_BAD_CD,
  F_TRANSLATION,
  F_ADDR_SIZE,
  F_ACCESS,
  F_PERMISSION,
]);

/** What {@linkcode ArmSmmuIrq} shares with its driver. */
export interface ArmSmmuIrqOptions {
  /** The cost profile (smmu.irqLatency, smmu.*HandlerPerRecord). */
  costs: Costs;
  /** The driver's counters. */
  stats: ArmSmmuV3DriverStats;
  /** The driver's log of non-recoverable events. */
  eventLog: LoggedEvent[];
  /** Events kept in `eventLog`. */
  eventLogSize: number;
  /** The driver's masters by StreamID. */
  bySid: Map<number, Master>;
  /** The IOMMU core's fault entry points, if known yet. */
  sink: IommuFaultSink | undefined;
}

/**
 * The fault path of an `ArmSmmuV3Driver` (one per driver): hooks the SMMU's
 * event and PRI queue interrupts when created.
 */
export class ArmSmmuIrq {
  readonly #sim: Simulator;
  readonly #smmu: Smmu;
  readonly #costs: Costs;
  /** smmu.irqLatency, drawn per interrupt (lib/sim/spread.ts). */
  readonly #irqLatency: () => number;
  readonly #stats: ArmSmmuV3DriverStats;
  readonly #eventLog: LoggedEvent[];
  readonly #eventLogSize: number;
  readonly #bySid: Map<number, Master>;
  #sink: IommuFaultSink | undefined;
  #evtqRunning = false;
  #priqRunning = false;
  /** The record the evtq thread is handling (one at a time), and when it was written. */
  readonly #evRecord: MutableEventRecord = newEventRecord();
  #evTime = 0;
  /** The raw record handed to a vIOMMU (arm_vmaster_report_event's copy). */
  readonly #vevt = new Uint32Array(EVENT_WORDS);
  /** The entry the priq thread is handling, and when it was written. */
  readonly #priEntry: MutablePriEntry = newPriEntry();
  #priTime = 0;
  /** The one command of a page response (encoded by `submit` at once, so reusable). */
  readonly #resume = { opcode: CMD_RESUME, SID: 0, STAG: 0, Resp: 0 } as {
    -readonly [K in keyof CmdResume]: CmdResume[K];
  };
  readonly #priResp = {
    opcode: CMD_PRI_RESP,
    SID: 0,
    SSID: 0,
    SSV: false,
    GRPID: 0,
    Resp: 0,
  } as { -readonly [K in keyof CmdPriResp]-?: CmdPriResp[K] };
  readonly #resumeList: Command[] = [this.#resume];
  readonly #priRespList: Command[] = [this.#priResp];
  readonly #evtqThreadFn = () => this.#evtqThread();
  readonly #priqThreadFn = () => this.#priqThread();
  /** When the evtq (priq) thread entered the fault handler it now waits for. */
  #evtqHeldAt = 0;
  #priqHeldAt = 0;
  readonly #evtqHandleFn = () => {
    if (!this.#handleEvent(this.#evRecord, this.#evTime)) this.#evtqThread();
  };
  readonly #priqHandleFn = () => {
    const ns = this.#handlePpr(this.#priEntry, this.#priTime);
    if (ns > 0) this.#sim.after(ns, this.#afterAtosFn);
    else if (ns === 0) this.#priqThread();
    // ns < 0: the fault handler holds the thread until #priqResumeFn.
  };
  /** The page request whose ATOS translation the priq thread spins on. */
  #atosDev: IommuDevice | undefined = undefined;
  #atosFault: IommuFault | undefined = undefined;
  readonly #afterAtosFn = () => {
    const dev = this.#atosDev!, fault = this.#atosFault!;
    this.#atosDev = undefined;
    this.#atosFault = undefined;
    this.#stats.priFaults++;
    this.#priqHeldAt = this.#sim.now;
    if (
      this.#sink?.reportDeviceFault(dev, fault, this.#priqResumeFn) !== true
    ) {
      this.#priqThread();
    }
  };
  /** The core's handler returned: the evtq thread reads its next record. */
  readonly #evtqResumeFn = () => {
    this.#stats.evtqThreadHeldNs += this.#sim.now - this.#evtqHeldAt;
    this.#evtqThread();
  };
  readonly #priqResumeFn = () => {
    this.#stats.priqThreadHeldNs += this.#sim.now - this.#priqHeldAt;
    this.#priqThread();
  };
  readonly #gerrorFn = () => this.#gerrorHandler();

  /** The fault path of the driver of `smmu`; hooks the SMMU's interrupts. */
  constructor(sim: Simulator, smmu: Smmu, options: ArmSmmuIrqOptions) {
    this.#sim = sim;
    this.#smmu = smmu;
    this.#costs = options.costs;
    this.#irqLatency = costSampler(options.costs, "smmu.irqLatency");
    this.#stats = options.stats;
    this.#eventLog = options.eventLog;
    this.#eventLogSize = options.eventLogSize;
    this.#bySid = options.bySid;
    this.#sink = options.sink;
    smmu.onEvtqIrq = () => this.#evtqIrq();
    smmu.onPriqIrq = () => this.#priqIrq();
    smmu.onGerrorIrq = () =>
      this.#sim.after(this.#costs["smmu.irqLatency"], this.#gerrorFn);
  }

  /**
   * arm_smmu_gerror_handler: the active errors are GERROR ^ GERRORN; a
   * command queue error goes to arm_smmu_cmdq_skip_err, then writing GERROR
   * to GERRORN acknowledges everything (which restarts the command queue).
   */
  #gerrorHandler(): void {
    const smmu = this.#smmu;
    const gerror = smmu.gerror;
    const active = gerror ^ smmu.gerrorn;
    if ((active & GERROR_CMDQ_ERR) !== 0) this.#cmdqSkipErr();
    smmu.writeGerrorn(gerror);
  }

  /**
   * __arm_smmu_cmdq_skip_err (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c):
   * after dev_err "CMDQ error (cons ...)" (counted here per code),
   * CERROR_ABT ("retrying command fetch") and CERROR_ATC_INV_SYNC ("CONS is
   * still pointing at the CMD_SYNC. Attempt to complete other pending
   * commands by repeating the CMD_SYNC") return without touching the queue,
   * so the acknowledgement re-fetches the same command; CERROR_ILL (and any
   * unknown code) has the command at CONS rewritten as a CMD_SYNC, so the
   * queue moves past it.
   */
  #cmdqSkipErr(): void {
    const err = this.#smmu.cmdqConsErr;
    const c = this.#stats.cmdqErrors;
    if (err === CERROR_ABT) {
      c.abt++;
      return;
    }
    if (err === CERROR_ATC_INV_SYNC) {
      c.atcInvSync++;
      return;
    }
    if (err === CERROR_ILL) c.ill++;
    this.#smmu.replaceCommandAtCons({ opcode: CMD_SYNC });
  }

  /** Sets the IOMMU core's fault entry points. */
  setFaultSink(sink: IommuFaultSink): void {
    this.#sink = sink;
  }

  /** `ArmSmmuV3Driver.pageResponse` (arm_smmu_page_response). */
  pageResponse(
    dev: IommuDevice,
    fault: IommuFault,
    code: PageResponseCode,
  ): void {
    if (fault.source === "stall") {
      const retry = code === IOMMU_PAGE_RESP_SUCCESS;
      if (retry) this.#stats.resumes.retry++;
      else this.#stats.resumes.abort++;
      const c = this.#resume;
      c.SID = dev.sid;
      c.STAG = fault.grpid;
      c.Resp = retry ? RESUME_RETRY : RESUME_ABORT;
      this.#smmu.submit(this.#resumeList);
      return;
    }
    // The architecture's Resp encoding (IHI0070 4.5.2). Mapping by
    // mainline's enum names (INVALID -> PRI_RESP_DENY = 0, FAILURE ->
    // PRI_RESP_FAIL = 1) would be read by the SMMU as ResponseFailure and
    // InvalidRequest: swapped.
    const resp = code === IOMMU_PAGE_RESP_SUCCESS
      ? PRI_RESP_SUCCESS
      : code === IOMMU_PAGE_RESP_FAILURE
      ? PRI_RESP_FAILURE
      : PRI_RESP_INVALID;
    if (resp === PRI_RESP_SUCCESS) this.#stats.priResponses.success++;
    else if (resp === PRI_RESP_INVALID) this.#stats.priResponses.invalid++;
    else this.#stats.priResponses.failure++;
    const ssv = (fault.flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID) !== 0;
    const c = this.#priResp;
    c.SID = dev.sid;
    c.SSID = ssv ? fault.pasid : 0;
    c.SSV = ssv;
    c.GRPID = fault.grpid;
    c.Resp = resp;
    this.#smmu.submit(this.#priRespList);
  }

  #evtqIrq(): void {
    if (this.#evtqRunning) return;
    this.#evtqRunning = true;
    this.#sim.after(this.#irqLatency(), this.#evtqThreadFn);
  }

  /** arm_smmu_evtq_thread: one record per `smmu.evtqHandlerPerRecord`. */
  #evtqThread(): void {
    const time = this.#smmu.readEventInto(this.#evRecord);
    if (time < 0) {
      if (this.#smmu.evtqOverflowPending) {
        this.#stats.evtqOverflows++;
        this.#smmu.ackEvtqOverflow();
      }
      this.#evtqRunning = false;
      return;
    }
    this.#evTime = time;
    this.#sim.after(
      this.#costs["smmu.evtqHandlerPerRecord"],
      this.#evtqHandleFn,
    );
  }

  /**
   * Handles the event record `r` (the thread's reused record) written at
   * `time`. Returns true when the core holds the thread in the fault's
   * handler (it calls `#evtqResumeFn` when done), false to go on at once.
   */
  #handleEvent(r: EventRecord, time: number): boolean {
    const counts = this.#stats.eventsById;
    counts[r.ID] = (counts[r.ID] ?? 0) + 1;
    if (!(r.Stall && isTranslationFault(r.ID))) {
      this.#stats.nonRecoverable++;
      if (!r.S2 && VEVENT_IDS.has(r.ID)) {
        // Linux 6.15 arm_smmu_handle_event: a stage-1 event of a device on
        // a vIOMMU goes to its vEVENTQ with the vSID in place of the SID
        // (arm_vmaster_report_event); without a vEVENTQ it is logged.
        const vm = this.#bySid.get(r.StreamID)?.vmaster;
        if (vm) {
          encodeEvent(r, this.#vevt);
          this.#vevt[1] = vm.vsid >>> 0;
          const ns = vm.reportEvent(this.#vevt);
          if (ns >= 0) {
            this.#stats.vevents++;
            this.#evtqHeldAt = this.#sim.now;
            this.#sim.after(ns, this.#evtqResumeFn);
            return true;
          }
        }
      }
      this.#eventLog.push({
        time,
        name: EVENT_NAMES[r.ID] ?? hex(r.ID),
        record: { ...r },
      });
      if (this.#eventLog.length > this.#eventLogSize) this.#eventLog.shift();
      return false;
    }
    const m = this.#bySid.get(r.StreamID);
    const sink = this.#sink;
    if (!m || !m.domain || !m.iopf || !sink) {
      this.#stats.unhandledStalls++;
      this.#stats.resumes.abort++;
      this.#smmu.submit([{
        opcode: CMD_RESUME,
        SID: r.StreamID,
        STAG: r.STAG,
        Resp: RESUME_ABORT,
      }]);
      return false;
    }
    let perm = r.RnW ? IOMMU_FAULT_PERM_READ : IOMMU_FAULT_PERM_WRITE;
    if (r.InD) perm |= IOMMU_FAULT_PERM_EXEC;
    if (r.PnU) perm |= IOMMU_FAULT_PERM_PRIV;
    const fault: IommuFault = {
      type: "page-req",
      flags: IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE |
        (r.SSV ? IOMMU_FAULT_PAGE_REQUEST_PASID_VALID : 0),
      pasid: r.SSV ? r.SubstreamID : 0,
      grpid: r.STAG,
      perm,
      addr: r.InputAddr,
      stage: r.S2 ? 2 : 1,
      ipa: r.S2 && m.domain.kind === "nested" ? r.IPA : -1,
      source: "stall",
      detectedAt: time,
    };
    this.#stats.stallFaults++;
    this.#evtqHeldAt = this.#sim.now;
    return sink.reportDeviceFault(m.dev, fault, this.#evtqResumeFn) === true;
  }

  #priqIrq(): void {
    if (this.#priqRunning) return;
    this.#priqRunning = true;
    this.#sim.after(this.#irqLatency(), this.#priqThreadFn);
  }

  /** arm_smmu_priq_thread: one entry per `smmu.priqHandlerPerRecord`; overflow -> discard partial groups. */
  #priqThread(): void {
    const time = this.#smmu.readPriInto(this.#priEntry);
    if (time < 0) {
      if (this.#smmu.priqOverflowPending) {
        this.#stats.priqOverflows++;
        this.#sink?.iopfQueueDiscardPartial();
        this.#smmu.ackPriqOverflow();
      }
      this.#priqRunning = false;
      return;
    }
    this.#priTime = time;
    this.#sim.after(
      this.#costs["smmu.priqHandlerPerRecord"],
      this.#priqHandleFn,
    );
  }

  /**
   * Handles the PRI queue entry `e` (the thread's reused entry) written at
   * `time`; returns the ns the thread spent beyond its per-record cost (an
   * ATOS translation it spun on; the fault is reported after it), -1 when
   * the fault handler now holds the thread (fault path "evtq-thread"), else 0.
   */
  #handlePpr(e: PriEntry, time: number): number {
    if (isStopMarker(e)) {
      this.#stats.stopMarkers++;
      return 0;
    }
    const m = this.#bySid.get(e.StreamID);
    const sink = this.#sink;
    if (!m || !m.domain || !m.iopf || !sink) {
      this.#stats.unhandledPageRequests++;
      if (e.LAST) {
        // As mainline's arm_smmu_handle_ppr: "unexpected PRI request",
        // answered with PRI_RESP_DENY, value 0b00 = ResponseFailure.
        this.#stats.priResponses.failure++;
        this.#smmu.submit([{
          opcode: CMD_PRI_RESP,
          SID: e.StreamID,
          SSID: e.SubstreamID,
          SSV: e.SSV,
          GRPID: e.PRGIndex,
          Resp: PRI_RESP_FAILURE,
        }]);
      }
      return 0;
    }
    let perm = 0;
    if (e.READ) perm |= IOMMU_FAULT_PERM_READ;
    if (e.WRITE) perm |= IOMMU_FAULT_PERM_WRITE;
    if (e.EXEC) perm |= IOMMU_FAULT_PERM_EXEC;
    if (e.PRIV) perm |= IOMMU_FAULT_PERM_PRIV;
    const d = m.domain;
    let stage: 1 | 2 = d.kind === "paging-s2" ? 2 : 1;
    let ipa = -1;
    let ns = 0;
    if (d.kind === "nested" && this.#smmu.features.atos) {
      // The hardware says which stage lacks the page: an ATOS translation
      // of the request (SMMU_GATOS_PAR.REASON != 0b00: stage 2, FADDR the
      // IPA). The driver never reads the guest's tables.
      this.#stats.atosLookups++;
      const r = this.#smmu.atos({
        sid: e.StreamID,
        ssid: e.SSV ? e.SubstreamID : -1,
        iova: e.Address,
        write: e.WRITE,
      });
      ns = r.ns;
      if (r.fault && r.reason !== 0) {
        stage = 2;
        ipa = r.faddr;
      }
    }
    const fault: IommuFault = {
      type: "page-req",
      flags: (e.LAST ? IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE : 0) |
        (e.SSV ? IOMMU_FAULT_PAGE_REQUEST_PASID_VALID : 0),
      pasid: e.SSV ? e.SubstreamID : 0,
      grpid: e.PRGIndex,
      perm,
      addr: e.Address,
      stage,
      ipa,
      source: "pri",
      detectedAt: time,
    };
    if (ns > 0) {
      // Reported once GATOS_CTRL.RUN clears (see #afterAtosFn).
      this.#atosDev = m.dev;
      this.#atosFault = fault;
      return ns;
    }
    this.#stats.priFaults++;
    this.#priqHeldAt = this.#sim.now;
    return sink.reportDeviceFault(m.dev, fault, this.#priqResumeFn) === true
      ? -1
      : 0;
  }
}
