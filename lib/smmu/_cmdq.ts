/**
 * The SMMU's command-queue consumer: the driver's writes into the command
 * queue (`submit`, the spinning `submitBlocking`), the one-at-a-time
 * consumer, and each command's effect (configuration and TLB
 * invalidation, range TLBI, ATC invalidation, CMD_SYNC, PRI responses,
 * CMD_RESUME / CMD_STALL_TERM), and command queue errors (IHI0070 7.1:
 * consumption stops at an illegal command (CERROR_ILL), at a command whose
 * fetch aborted (CERROR_ABT, injected with `injectFetchAborts`) or at a
 * CMD_SYNC behind a CMD_ATC_INV whose ATS Invalidation Completion timed out
 * (CERROR_ATC_INV_SYNC, 3.9.1.4); SMMU_CMDQ_CONS.ERR and GERROR.CMDQ_ERR
 * are set, and consumption restarts when the driver acknowledges in
 * GERRORN). Private to lib/smmu.
 *
 * @module
 */
import { IopfLabError } from "../sim/errors.ts";
import { TLB_KIND_NESTED, TLB_KIND_S1, TLB_KIND_S2 } from "./tlb.ts";
import {
  CERROR_ABT,
  CERROR_ATC_INV_SYNC,
  CERROR_ILL,
  CERROR_NONE,
  CMD_ATC_INV,
  CMD_CFGI_CD,
  CMD_CFGI_CD_ALL,
  CMD_CFGI_STE,
  CMD_CFGI_STE_RANGE,
  CMD_PREFETCH_CONFIG,
  CMD_PRI_RESP,
  CMD_RESUME,
  CMD_STALL_TERM,
  CMD_SYNC,
  CMD_TLBI_EL2_ALL,
  CMD_TLBI_NH_ALL,
  CMD_TLBI_NH_ASID,
  CMD_TLBI_NH_VA,
  CMD_TLBI_NH_VAA,
  CMD_TLBI_NSNH_ALL,
  CMD_TLBI_S12_VMALL,
  CMD_TLBI_S2_IPA,
  type Command,
  COMMAND_NAMES,
  COMMAND_WORDS,
  type CommandFields,
  decodeCommandInto,
  encodeCommand,
  GERROR_CMDQ_ERR,
  newCommandFields,
  PRG_RESP_FAILURE,
  PRG_RESP_INVALID,
  PRG_RESP_SUCCESS,
  PRI_RESP_INVALID,
  PRI_RESP_SUCCESS,
  type TlbiRange,
} from "./types.ts";
import type { SmmuState } from "./_state.ts";
import { cacheSte, dropStreamMemo, fetchSte } from "./_ptw.ts";

/**
 * Commands written to the command queue after the driver's issue time: the
 * commands are encoded at submission (16 bytes each), so the submitter's
 * objects are not kept. Pooled; `issue` is bound once.
 */
interface Submission {
  words: Uint32Array;
  n: number;
  done: (() => void) | undefined;
  issue: () => void;
}

/** The input range a TLBI covers, `[start, end)` (a reused scratch record). */
export interface TlbiSpan {
  /** First address. */
  start: number;
  /** End address (exclusive). */
  end: number;
}

const S1_KINDS = (1 << TLB_KIND_S1) | (1 << TLB_KIND_NESTED);

/** CMD_SYNC, appended by {@linkcode CmdqConsumer.submitBlocking}. */
const SYNC: Command = { opcode: CMD_SYNC };

function noop(): void {}

/**
 * Default ATS Invalidation Completion timeout of the SMMU (ns): one minute,
 * the Invalidate Completion timeout the PCIe ATS specification gives
 * (PCIe Base 10.3.1: 1 minute, -0 % / +50 %), which IHI0070 3.9.1.4 says
 * the SMMU applies ("the timeout period specified by ATS").
 */
export const DEFAULT_ATC_INV_TIMEOUT_NS = 60e9;

/** Options of a {@linkcode CmdqConsumer}. */
export interface CmdqOptions {
  /** The ATS Invalidation Completion timeout (ns). Default {@linkcode DEFAULT_ATC_INV_TIMEOUT_NS}. */
  atcInvTimeoutNs?: number;
}

/** One CMD_ATC_INV sent to an endpoint whose completion the queue waits for. */
interface AtcWait {
  /** Completed, or timed out (then its late completion is discarded). */
  settled: boolean;
  /** The endpoint's completion callback (bound once). */
  complete: () => void;
}

/**
 * The command queue's producer side (the driver's issue time) and the
 * SMMU's consumer, over the shared {@linkcode SmmuState}.
 */
export class CmdqConsumer {
  readonly #s: SmmuState;
  #issueFree = 0;
  #cmdBusy = false;
  readonly #cmdDone: ((() => void) | undefined)[];
  /**
   * Commands waiting for room in the queue, in order: a ring of their
   * words and completion callbacks (an array shifted per command cost time
   * linear in the backlog, which a large unmap makes thousands long).
   */
  #blWords = new Uint32Array(16 * COMMAND_WORDS);
  #blDone: ((() => void) | undefined)[] = new Array(16).fill(undefined);
  #blHead = 0;
  #blLen = 0;
  readonly #submissions: Submission[] = [];
  /** The command being processed from the queue (decoded in place). */
  readonly #cmd: CommandFields = newCommandFields();
  /** The command {@linkcode submitBlocking} is applying. */
  readonly #waitCmd: CommandFields = newCommandFields();
  /** The commands of a {@linkcode submitBlocking} call, encoded. */
  #waitWords = new Uint32Array(16 * COMMAND_WORDS);
  /** The range of the TLBI being applied. */
  readonly #span: TlbiSpan = { start: 0, end: 0 };
  #atcPending = 0;
  /**
   * CMD_ATC_INVs whose completion timed out since the last CMD_SYNC that
   * reported it: the next CMD_SYNC stops with CERROR_ATC_INV_SYNC.
   */
  #atcFailed = 0;
  /** The CMD_ATC_INVs sent since every earlier one settled. */
  readonly #atcOpen: AtcWait[] = [];
  /** Settled records free for reuse (never one that timed out). */
  readonly #atcFree: AtcWait[] = [];
  /** When the last CMD_ATC_INV was sent (ns). */
  #atcSentAt = 0;
  /** The timeout timer of the CMD_SYNC waiting for them (-1: none). */
  #atcTimer = -1;
  readonly #atcTimeout: number;
  readonly #atcExpire = () => this.#atcTimedOut();
  readonly #syncReadyFn = () => this.#syncReady();
  /** Command fetches still to abort (CERROR_ABT), see {@linkcode injectFetchAborts}. */
  #fetchAborts = 0;
  #syncWaiter: (() => void) | undefined = undefined;
  /** Commands submitted (issued or being issued) and not yet consumed. */
  #queuedCmds = 0;
  /**
   * Estimated time the queue drains: each submission's processing and sync
   * time after it is issued (TLBI and ATC work not counted).
   */
  #drainAt = 0;
  readonly #processNext = () => this.#processCommand();
  readonly #cmdContinue = () => this.#nextCommand();

  /**
   * A consumer of `s.cmdq`.
   *
   * @throws {IopfLabError} EINVAL for a timeout that is not a positive number of ns
   */
  constructor(s: SmmuState, options: CmdqOptions = {}) {
    const timeout = options.atcInvTimeoutNs ?? DEFAULT_ATC_INV_TIMEOUT_NS;
    if (!(typeof timeout === "number" && timeout > 0 && timeout <= 1e12)) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot create SMMU: atcInvTimeoutNs must be a number of ns in (0, 1e12], got ${
          String(timeout)
        }`,
        "atcInvTimeoutNs",
      );
    }
    this.#s = s;
    this.#atcTimeout = timeout;
    this.#cmdDone = new Array(s.cmdq.entries).fill(undefined);
  }

  /**
   * The next `count` command fetches from queue memory return an external
   * abort (a fault injection: an interconnect or RAS error on the command
   * queue's memory), each stopping consumption with CERROR_ABT (IHI0070
   * 7.1: CONS.RD stays at the command, which is fetched again once the
   * driver acknowledges). Adds to any fetch aborts still pending.
   *
   * @throws {IopfLabError} EINVAL unless `count` is a whole number in 1..2^20
   */
  injectFetchAborts(count: number): void {
    if (!Number.isInteger(count) || count < 1 || count > 2 ** 20) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot inject command fetch aborts: count must be a whole number in 1..${
          2 ** 20
        }, got ${String(count)}`,
        "count",
      );
    }
    this.#fetchAborts += count;
  }

  /** See {@linkcode Smmu.submit}. */
  submit(cmds: readonly Command[], done?: () => void): void {
    const s = this.#s;
    const n = cmds.length;
    const sim = s.sim;
    const at = Math.max(sim.now, this.#issueFree) + n * s.cIssue;
    this.#issueFree = at;
    if (n === 0) {
      if (done) sim.at(at, done);
      return;
    }
    const sub = this.#submissions.pop() ?? this.#newSubmission();
    if (sub.words.length < n * COMMAND_WORDS) {
      sub.words = new Uint32Array(n * COMMAND_WORDS);
    }
    this.#queuedCmds += n;
    let work = n * s.cProcess;
    for (let i = 0; i < n; i++) {
      const c = cmds[i]!;
      if (c.opcode === CMD_SYNC) work += s.cSync;
      encodeCommand(c, sub.words, i * COMMAND_WORDS);
    }
    this.#drainAt = Math.max(this.#drainAt, at) + work;
    sub.n = n;
    sub.done = done;
    sim.at(at, sub.issue);
  }

  #newSubmission(): Submission {
    const sub: Submission = {
      words: new Uint32Array(4 * COMMAND_WORDS),
      n: 0,
      done: undefined,
      issue: noop,
    };
    sub.issue = () => {
      const { words, n, done } = sub;
      for (let i = 0; i < n; i++) {
        this.#enqueueCommand(
          words,
          i * COMMAND_WORDS,
          i === n - 1 ? done : undefined,
        );
      }
      sub.done = undefined;
      this.#submissions.push(sub);
      this.#kickCommands();
    };
    return sub;
  }

  /** See {@linkcode Smmu.submitBlocking}. */
  submitBlocking(cmds: readonly Command[]): number {
    const s = this.#s;
    const n = cmds.length;
    if (n === 0) return 0;
    if (this.#waitWords.length < (n + 1) * COMMAND_WORDS) {
      this.#waitWords = new Uint32Array((n + 1) * COMMAND_WORDS);
    }
    const words = this.#waitWords;
    const cmd = this.#waitCmd;
    // Round-trip through the 16-byte format, as the queue does (validates
    // every command before any takes effect).
    for (let i = 0; i < n; i++) {
      encodeCommand(cmds[i]!, words, i * COMMAND_WORDS);
      if (commandError(s, words, i * COMMAND_WORDS) !== CERROR_NONE) {
        throw new IopfLabError(
          "EINVAL",
          `Cannot issue command ${i} (opcode 0x${
            (words[i * COMMAND_WORDS]! & 0xff).toString(16)
          }) and wait for it: the SMMU would stop its command queue with CERROR_ILL`,
          `cmds[${i}]`,
        );
      }
      decodeCommandInto(words, i * COMMAND_WORDS, cmd);
    }
    let total = n;
    if (cmd.opcode !== CMD_SYNC) {
      encodeCommand(SYNC, words, n * COMMAND_WORDS);
      total++;
    }
    const now = s.sim.now;
    const issued = Math.max(now, this.#issueFree) + total * s.cIssue;
    this.#issueFree = issued;
    // Behind the commands still queued (an estimate, see Smmu.submitBlocking).
    let t = this.#queuedCmds > 0 ? Math.max(issued, this.#drainAt) : issued;
    let atcDoneAt = 0;
    for (let i = 0; i < total; i++) {
      decodeCommandInto(words, i * COMMAND_WORDS, cmd);
      t += s.cProcess;
      s.stats.commands++;
      if (cmd.opcode === CMD_SYNC) {
        t = Math.max(t, atcDoneAt) + s.cSync;
        s.stats.syncs++;
      } else if (cmd.opcode === CMD_ATC_INV) {
        s.stats.atcInvalidations++;
        const ep = s.endpoints.get(cmd.SID);
        if (ep) {
          let ns = ep.atcInvalidateBlocking(
            atcSsid(cmd),
            cmd.Address,
            cmd.Size,
          );
          if (!(ns <= this.#atcTimeout)) {
            // No completion within the timeout (IHI0070 3.9.1.4): the
            // CMD_SYNC waits that long. The CERROR_ATC_INV_SYNC round trip
            // through the GERROR handler is not part of this twin.
            ns = this.#atcTimeout;
            s.stats.atcInvTimeouts++;
          }
          const at = t + ns;
          if (at > atcDoneAt) atcDoneAt = at;
        }
      } else {
        t += this.#execute(cmd);
      }
    }
    return t - now;
  }

  /** Writes the command encoded at `src[off ..]` into the queue (or the backlog when full). */
  #enqueueCommand(
    src: Uint32Array,
    off: number,
    done: (() => void) | undefined,
  ): void {
    const q = this.#s.cmdq;
    if (q.isFull || this.#blLen > 0) {
      this.#backlogPush(src, off, done);
      return;
    }
    this.#writeCommand(src, off, done);
  }

  /** Appends a command to the backlog ring (doubling it when full). */
  #backlogPush(
    src: Uint32Array,
    off: number,
    done: (() => void) | undefined,
  ): void {
    let cap = this.#blDone.length;
    if (this.#blLen === cap) {
      const words = new Uint32Array(cap * 2 * COMMAND_WORDS);
      const dones: ((() => void) | undefined)[] = new Array(cap * 2).fill(
        undefined,
      );
      for (let k = 0; k < this.#blLen; k++) {
        const j = (this.#blHead + k) & (cap - 1);
        words.set(
          this.#blWords.subarray(j * COMMAND_WORDS, (j + 1) * COMMAND_WORDS),
          k * COMMAND_WORDS,
        );
        dones[k] = this.#blDone[j];
      }
      this.#blWords = words;
      this.#blDone = dones;
      this.#blHead = 0;
      cap *= 2;
    }
    const j = (this.#blHead + this.#blLen) & (cap - 1);
    const w = this.#blWords, o = j * COMMAND_WORDS;
    for (let k = 0; k < COMMAND_WORDS; k++) w[o + k] = src[off + k]!;
    this.#blDone[j] = done;
    this.#blLen++;
  }

  #writeCommand(
    src: Uint32Array,
    off: number,
    done: (() => void) | undefined,
  ): void {
    const q = this.#s.cmdq;
    const o = q.writeOffset;
    const w = q.words;
    for (let k = 0; k < COMMAND_WORDS; k++) w[o + k] = src[off + k]!;
    this.#cmdDone[o / COMMAND_WORDS] = done;
    q.commit(this.#s.sim.now);
  }

  /** GERROR.CMDQ_ERR is active: commands are not consumed (IHI0070 7.5). */
  get errorActive(): boolean {
    const s = this.#s;
    return ((s.gerror ^ s.gerrorn) & GERROR_CMDQ_ERR) !== 0;
  }

  /**
   * The driver writes SMMU_GERRORN; acknowledging CMDQ_ERR restarts command
   * consumption at SMMU_CMDQ_CONS.RD (the command there is fetched again).
   */
  writeGerrorn(value: number): void {
    this.#s.gerrorn = value >>> 0;
    if (!this.errorActive) this.#kickCommands();
  }

  /**
   * The driver rewrites the command at SMMU_CMDQ_CONS.RD in queue memory
   * (arm_smmu_cmdq_skip_err's queue_write at Q_ENT(q, cons)); only while
   * CMDQ_ERR is active, when that slot holds the erroneous command.
   */
  replaceAtCons(cmd: Command): void {
    const q = this.#s.cmdq;
    if (!this.errorActive || q.isEmpty) {
      throw new IopfLabError(
        "EBUSY",
        "Cannot rewrite the command at SMMU_CMDQ_CONS: no command queue error is active",
      );
    }
    encodeCommand(cmd, q.words, q.readOffset);
  }

  /** Stops consumption at the command at CONS with error `code` (IHI0070 7.1). */
  #raiseError(code: number): void {
    const s = this.#s;
    s.cmdqErr = code;
    s.stats.cmdqErrors++;
    this.#cmdBusy = false;
    if (this.errorActive) return; // already active: not logged again (7.5)
    s.gerror ^= GERROR_CMDQ_ERR;
    s.onGerrorIrq?.();
  }

  #kickCommands(): void {
    if (this.#cmdBusy || this.#s.cmdq.isEmpty || this.errorActive) return;
    this.#cmdBusy = true;
    this.#s.sim.after(this.#s.cProcess, this.#processNext);
  }

  #nextCommand(): void {
    if (this.#s.cmdq.isEmpty || this.errorActive) {
      this.#cmdBusy = false;
      return;
    }
    this.#s.sim.after(this.#s.cProcess, this.#processNext);
  }

  #processCommand(): void {
    const s = this.#s;
    const q = s.cmdq;
    const cmd = this.#cmd;
    if (this.#fetchAborts > 0) {
      // An external abort on the read of the command: synchronous, CONS
      // does not move (IHI0070 7.1, CERROR_ABT).
      this.#fetchAborts--;
      this.#raiseError(CERROR_ABT);
      return;
    }
    const err = commandError(s, q.words, q.readOffset);
    if (err !== CERROR_NONE) {
      // CONS.RD stays at the erroneous command; it and everything after it
      // wait until the driver acknowledges CMDQ_ERR (IHI0070 7.1).
      this.#raiseError(err);
      return;
    }
    decodeCommandInto(q.words, q.readOffset, cmd);
    if (cmd.opcode === CMD_SYNC) {
      // CONS stays at the CMD_SYNC until it completes: it waits for the
      // CMD_ATC_INVs before it, each completed or timed out.
      if (this.#atcPending === 0) this.#syncReady();
      else {
        this.#syncWaiter = this.#syncReadyFn;
        // The ATS Invalidation Completion timeout (IHI0070 3.9.1.4) of the
        // last one sent: by then every one still open has timed out. One
        // timer per waiting CMD_SYNC, cancelled when all complete.
        // Approximation: an earlier one still open after the later ones
        // completed fails at this deadline, later than its own by the gap
        // between their sends (ns against a timeout of seconds).
        this.#atcTimer = s.sim.at(
          Math.max(s.sim.now, this.#atcSentAt + this.#atcTimeout),
          this.#atcExpire,
        );
      }
      return;
    }
    const done = this.#consume();
    const extra = this.#execute(cmd);
    if (extra > 0) {
      s.sim.after(extra, () => {
        done?.();
        this.#nextCommand();
      });
      return;
    }
    done?.();
    this.#cmdContinue();
  }

  /** Advances CONS past the command there; returns its completion callback. */
  #consume(): (() => void) | undefined {
    const s = this.#s;
    const q = s.cmdq;
    const slot = q.readSlot;
    const done = this.#cmdDone[slot];
    this.#cmdDone[slot] = undefined;
    q.advance();
    this.#queuedCmds--;
    // Bounded: each pass moves one command from the backlog into the queue.
    while (this.#blLen > 0 && !q.isFull) {
      const j = this.#blHead;
      const done = this.#blDone[j];
      this.#blDone[j] = undefined;
      this.#blHead = (j + 1) & (this.#blDone.length - 1);
      this.#blLen--;
      this.#writeCommand(this.#blWords, j * COMMAND_WORDS, done);
    }
    s.stats.commands++;
    return done;
  }

  /**
   * The CMD_SYNC at CONS has seen every earlier CMD_ATC_INV settle. If one
   * timed out, consumption stops at the CMD_SYNC with CERROR_ATC_INV_SYNC
   * (IHI0070 3.9.1.4, 7.1); the failure is reported once, so the CMD_SYNC
   * fetched again after the acknowledgement completes (model choice: the
   * architecture leaves open whether a repeated CMD_SYNC reports the same
   * failure again). Otherwise it completes after `smmu.cmdSync`.
   */
  #syncReady(): void {
    const s = this.#s;
    if (this.#atcFailed > 0) {
      this.#atcFailed = 0;
      this.#raiseError(CERROR_ATC_INV_SYNC);
      return;
    }
    const done = this.#consume();
    s.sim.after(s.cSync, () => {
      s.stats.syncs++;
      done?.();
      this.#nextCommand();
    });
  }

  /** A CMD_ATC_INV settled: the last one wakes the waiting CMD_SYNC. */
  #atcSettled(): void {
    if (--this.#atcPending !== 0) return;
    const open = this.#atcOpen;
    for (const w of open) if (w.complete !== noop) this.#atcFree.push(w);
    open.length = 0;
    if (this.#atcTimer >= 0) {
      this.#s.sim.cancel(this.#atcTimer);
      this.#atcTimer = -1;
    }
    const w = this.#syncWaiter;
    if (w) {
      this.#syncWaiter = undefined;
      w();
    }
  }

  /** The waiting CMD_SYNC's timer: every CMD_ATC_INV still open failed. */
  #atcTimedOut(): void {
    this.#atcTimer = -1;
    const open = this.#atcOpen;
    let n = 0;
    for (const w of open) {
      if (w.settled) continue;
      w.settled = true;
      // Never reused: its completion may still arrive, and is discarded.
      w.complete = noop;
      n++;
    }
    this.#atcFailed += n;
    this.#s.stats.atcInvTimeouts += n;
    this.#atcPending -= n - 1;
    this.#atcSettled();
  }

  #newAtcWait(): AtcWait {
    const w: AtcWait = { settled: false, complete: noop };
    const complete = () => {
      if (w.settled || w.complete !== complete) return; // timed out: discarded
      w.settled = true;
      this.#atcSettled();
    };
    w.complete = complete;
    return w;
  }

  /** Applies a command; returns extra processing time (ns). */
  #execute(cmd: CommandFields): number {
    const s = this.#s;
    if (cmd.opcode >= CMD_CFGI_STE && cmd.opcode <= CMD_TLBI_NSNH_ALL) {
      s.invalGen++;
      if (cmd.opcode <= CMD_CFGI_CD_ALL) dropStreamMemo(s);
    }
    const steCache = s.steCache;
    const span = this.#span;
    const ril = s.features.rangeInvalidation;
    switch (cmd.opcode) {
      case CMD_PREFETCH_CONFIG:
        if (cmd.SID < steCache.length && !steCache[cmd.SID]) {
          const r = fetchSte(s, cmd.SID);
          if (typeof r !== "number") cacheSte(s, cmd.SID, r);
        }
        return 0;
      case CMD_CFGI_STE:
        if (cmd.SID < steCache.length) {
          steCache[cmd.SID] = undefined;
        }
        return 0;
      case CMD_CFGI_STE_RANGE: {
        if (cmd.Range >= 31) {
          steCache.fill(undefined);
          return 0;
        }
        const n = 2 ** (cmd.Range + 1);
        const first = cmd.SID - (cmd.SID % n);
        const last = Math.min(first + n, steCache.length);
        for (let sid = first; sid < last; sid++) steCache[sid] = undefined;
        return 0;
      }
      case CMD_CFGI_CD: {
        const cfg = steCache[cmd.SID];
        if (cfg) cfg.cds[cmd.SSID] = undefined;
        return 0;
      }
      case CMD_CFGI_CD_ALL: {
        const cfg = steCache[cmd.SID];
        if (cfg) cfg.cds = [];
        return 0;
      }
      case CMD_TLBI_NH_ALL:
        return tlbi(s, cmd.VMID, undefined, S1_KINDS, 0, Infinity);
      case CMD_TLBI_NH_ASID:
        return tlbi(s, cmd.VMID, cmd.ASID, S1_KINDS, 0, Infinity);
      case CMD_TLBI_NH_VA:
        tlbiRange(cmd, ril, span);
        return tlbi(s, cmd.VMID, cmd.ASID, S1_KINDS, span.start, span.end);
      case CMD_TLBI_NH_VAA:
        tlbiRange(cmd, ril, span);
        return tlbi(s, cmd.VMID, undefined, S1_KINDS, span.start, span.end);
      case CMD_TLBI_EL2_ALL:
        s.stats.tlbInvalidations++;
        return 0;
      case CMD_TLBI_S12_VMALL:
        return tlbi(s, cmd.VMID, undefined, 0, 0, Infinity);
      case CMD_TLBI_S2_IPA:
        tlbiRange(cmd, ril, span);
        return tlbi(s, cmd.VMID, -1, 1 << TLB_KIND_S2, span.start, span.end);
      case CMD_TLBI_NSNH_ALL:
        return tlbi(s, -1, undefined, 0, 0, Infinity);
      case CMD_ATC_INV: {
        s.stats.atcInvalidations++;
        const ep = s.endpoints.get(cmd.SID);
        if (!ep) return 0;
        this.#atcPending++;
        const w = this.#atcFree.pop() ?? this.#newAtcWait();
        w.settled = false;
        this.#atcOpen.push(w);
        this.#atcSentAt = s.sim.now;
        ep.atcInvalidate(atcSsid(cmd), cmd.Address, cmd.Size, w.complete);
        return 0;
      }
      case CMD_PRI_RESP: {
        s.stats.priResponses++;
        const ep = s.endpoints.get(cmd.SID);
        // IHI0070 4.5.2: 0b00 ResponseFailure, 0b01 InvalidRequest,
        // 0b10 Success (0b11 never gets here: CERROR_ILL).
        const code = cmd.Resp === PRI_RESP_SUCCESS
          ? PRG_RESP_SUCCESS
          : cmd.Resp === PRI_RESP_INVALID
          ? PRG_RESP_INVALID
          : PRG_RESP_FAILURE;
        ep?.prgResponse(cmd.SSV ? cmd.SSID : -1, cmd.GRPID, code);
        return 0;
      }
      case CMD_RESUME: {
        const p = s.stalled.get(cmd.STAG);
        if (!p || p.sid !== cmd.SID) return 0; // no such stall: ignored
        s.stalled.delete(cmd.STAG);
        s.stats.resumes++;
        // IHI0070 4.7.1: Action 1 retries (Abort IGNORED); Action 0
        // terminates as the Abort parameter says (1: abort, 0: RAZ/WI;
        // SMMU_IDR0.TERM_MODEL = 0), whatever CD.A said at the fault.
        if ((cmd.Resp & 1) !== 0) {
          s.sim.after(s.cResume, p.retry);
        } else {
          p.abort = (cmd.Resp & 2) !== 0;
          s.sim.after(s.cResume, p.terminate);
        }
        return 0;
      }
      case CMD_STALL_TERM: {
        for (const p of s.stalled.list()) {
          if (p.sid !== cmd.SID) continue;
          s.stalled.delete(p.stag);
          p.abort = true; // "guaranteed to terminate with an abort" (4.7.2)
          s.sim.after(s.cResume, p.terminate);
        }
        // Stall records still waiting for event queue space go too.
        const backlog = s.stallBacklog;
        for (let i = backlog.length - 1; i >= 0; i--) {
          const p = backlog[i]!;
          if (p.sid !== cmd.SID) continue;
          backlog.splice(i, 1);
          s.stalled.delete(p.stag);
          p.abort = true;
          s.sim.after(s.cResume, p.terminate);
        }
        return 0;
      }
      case CMD_SYNC:
        return 0;
      default:
        return 0; // commandError rejected unknown opcodes
    }
  }
}

/**
 * The SMMU_CMDQ_CONS.ERR code the command encoded at `words[off ..]` raises
 * on this SMMU, or {@linkcode CERROR_NONE}. CERROR_ILL (IHI0070 7.1) for an
 * unknown opcode, a command irrelevant to the implementation (stage-1 TLBI
 * without stage 1, CMD_TLBI_S2_IPA without stage 2, CMD_ATC_INV without ATS,
 * CMD_PRI_RESP without PRI (4.5.2), CMD_RESUME / CMD_STALL_TERM with
 * STALL_MODEL = 0b01 (4.7.1, 4.7.2)) or a Reserved value (CMD_SYNC CS = 0b11,
 * 4.7.3; CMD_PRI_RESP Resp = 0b11, 4.5.2). CERROR_ABT and
 * CERROR_ATC_INV_SYNC do not depend on the command's contents: the
 * consumer raises them (an injected fetch abort; a timed-out CMD_ATC_INV
 * before a CMD_SYNC).
 */
export function commandError(
  s: SmmuState,
  words: Uint32Array,
  off: number,
): number {
  const w0 = words[off]!;
  const op = w0 & 0xff;
  const f = s.features;
  if (COMMAND_NAMES[op] === undefined) return CERROR_ILL;
  switch (op) {
    case CMD_TLBI_NH_ALL:
    case CMD_TLBI_NH_ASID:
    case CMD_TLBI_NH_VA:
    case CMD_TLBI_NH_VAA:
      return f.s1 ? CERROR_NONE : CERROR_ILL;
    case CMD_TLBI_S2_IPA:
      return f.s2 ? CERROR_NONE : CERROR_ILL;
    case CMD_ATC_INV:
      return f.ats ? CERROR_NONE : CERROR_ILL;
    case CMD_PRI_RESP:
      return f.pri && ((words[off + 2]! >>> 12) & 3) !== 3
        ? CERROR_NONE
        : CERROR_ILL;
    case CMD_RESUME:
    case CMD_STALL_TERM:
      return f.stallModel === "unsupported" ? CERROR_ILL : CERROR_NONE;
    case CMD_SYNC:
      return ((w0 >>> 12) & 3) === 3 ? CERROR_ILL : CERROR_NONE;
    default:
      return CERROR_NONE;
  }
}

/**
 * The input range of a TLBI by address into `out`: the entries covering
 * Address, or with range invalidation (`ril`, SMMU_IDR3.RIL) and TG != 0
 * the (NUM + 1) x 2^SCALE granules from it.
 */
function tlbiRange(c: TlbiRange, ril: boolean, out: TlbiSpan): void {
  const start = Math.floor(c.Address / 4096) * 4096;
  out.start = start;
  const tg = c.TG ?? 0;
  if (tg === 0 || !ril) {
    out.end = start + 1; // entries covering Address
    return;
  }
  const granule = tg === 1 ? 4096 : tg === 2 ? 16384 : 65536;
  out.end = start + ((c.NUM ?? 0) + 1) * 2 ** (c.SCALE ?? 0) * granule;
}

/** Drops the matching IOTLB entries; returns the time it takes (ns). */
function tlbi(
  s: SmmuState,
  a: number,
  b: number | undefined,
  kinds: number,
  start: number,
  end: number,
): number {
  s.stats.tlbInvalidations++;
  s.walkCache.invalidate(kinds, a, b, start, end);
  const n = s.iotlb.invalidate(a, b, kinds, start, end);
  s.stats.tlbEntriesInvalidated += n;
  return n * s.cTlbiEntry;
}

/** The PASID a CMD_ATC_INV targets at the endpoint (-1 = every PASID). */
function atcSsid(cmd: CommandFields): number {
  return cmd.SSV && !cmd.G ? cmd.SSID : -1;
}
