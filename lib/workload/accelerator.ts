/**
 * The `accelerator` workload: a zip/crypto engine reading an input and
 * writing an output buffer per message, driven by a user-space driver
 * (UADK over a passed-through hisi_sec/hisi_zip queue, as in the RFC's
 * tests): the CPU's submit, doorbell and completion costs around the
 * engine's own processing time at its throughput.
 *
 * @module
 */
import type { Costs } from "../sim/costs.ts";
import { bool, integer, size } from "../sim/fields.ts";
import { PAGE_SIZE } from "../sim/units.ts";
import { fitVm, type WorkloadKindSpec } from "./kind.ts";
import { MAX_COUNT } from "./limits.ts";
import { type DmaContext, runWithDepth, type Workload } from "./types.ts";

/** `accelerator`: a zip/crypto engine reading an input and writing an output buffer per message. */
export interface AcceleratorConfig {
  /** The workload kind. */
  readonly kind: "accelerator";
  /** Bytes of each input and each output buffer. ["1MiB"] */
  readonly messageSize: number;
  /** Messages processed. [100] */
  readonly messages: number;
  /** Reuse the same buffers for every message. [true] */
  readonly reuseBuffers: boolean;
  /** Bytes the engine reads, processes and writes per step (its internal buffer). ["64KiB"] */
  readonly chunkSize: number;
  /** The guest's CPU writes each message's input before the device reads it. [true] */
  readonly cpuWritesInput: boolean;
}

/** The fields of `accelerator`. */
export const ACCELERATOR_FIELDS = {
  messageSize: {
    type: "size",
    unit: "bytes",
    default: "1MiB",
    doc: "Bytes of each input and each output buffer",
  },
  messages: {
    type: "integer",
    unit: "",
    default: 100,
    min: 1,
    max: MAX_COUNT,
    doc: "Messages processed",
  },
  reuseBuffers: {
    type: "boolean",
    unit: "",
    default: true,
    doc: "Reuse the same buffers for every message",
  },
  chunkSize: {
    type: "size",
    unit: "bytes",
    default: "64KiB",
    min: PAGE_SIZE,
    doc:
      "Bytes the engine reads, processes and writes per step (its on-chip buffer, two of them for input and two for output)",
  },
  cpuWritesInput: {
    type: "boolean",
    unit: "",
    default: true,
    doc:
      "The guest's CPU writes each message's input before the device reads it (its host pages are present when the device faults)",
  },
} as const;

/** The `accelerator` kind. */
export const acceleratorWorkload: WorkloadKindSpec<AcceleratorConfig> = {
  kind: "accelerator",
  doc:
    "a zip/crypto engine reading an input and writing an output buffer per message",
  fields: ACCELERATOR_FIELDS,
  resolve(o, env) {
    const F = ACCELERATOR_FIELDS;
    const messageSize = size(
      o.messageSize,
      "workload.messageSize",
      F.messageSize.default,
    );
    fitVm(
      2 * messageSize,
      "workload.messageSize",
      "the input and output buffers",
      env.vmMemory,
    );
    return {
      kind: "accelerator",
      messageSize,
      messages: integer(
        o.messages,
        "workload.messages",
        F.messages.min,
        F.messages.max,
        F.messages.default,
      ),
      reuseBuffers: bool(
        o.reuseBuffers,
        "workload.reuseBuffers",
        F.reuseBuffers.default,
      ),
      chunkSize: size(o.chunkSize, "workload.chunkSize", F.chunkSize.default, {
        min: F.chunkSize.min,
      }),
      cpuWritesInput: bool(
        o.cpuWritesInput,
        "workload.cpuWritesInput",
        F.cpuWritesInput.default,
      ),
    };
  },
  make: (w, env) =>
    new AcceleratorWorkload({ ...w, engine: acceleratorEngine(env.costs) }),
};

/**
 * The costs of one message beside its DMA, in ns (from the cost profile's
 * `accel.*` parameters; see {@linkcode acceleratorEngine}).
 */
export interface AcceleratorEngine {
  /** Once, before the first message: the user-space driver's first-use work (`accel.firstMessage`). */
  readonly firstMessageNs: number;
  /** CPU: build the request descriptor in the submission queue (`accel.submit`). */
  readonly submitNs: number;
  /** CPU: the doorbell write to the queue's MMIO page (`accel.doorbell`). */
  readonly doorbellNs: number;
  /** CPU: notice the completion, read it, advance the completion queue (`accel.completion`). */
  readonly completionNs: number;
  /** Engine: processing time per 4 KiB of input (`accel.enginePer4k`). */
  readonly enginePer4kNs: number;
}

/** The engine costs of a cost profile. */
export function acceleratorEngine(costs: Costs): AcceleratorEngine {
  return {
    firstMessageNs: costs["accel.firstMessage"],
    submitNs: costs["accel.submit"],
    doorbellNs: costs["accel.doorbell"],
    completionNs: costs["accel.completion"],
    enginePer4kNs: costs["accel.enginePer4k"],
  };
}

/** Options of {@linkcode AcceleratorWorkload}. */
export interface AcceleratorOptions {
  /** Bytes of each message's input buffer and of its output buffer. */
  readonly messageSize: number;
  /** Messages processed, one after the other. */
  readonly messages: number;
  /** Reuse the same two buffers for every message (true) or allocate fresh ones (false). */
  readonly reuseBuffers: boolean;
  /** Bytes per engine step. [65536] */
  readonly chunkSize?: number;
  /** CPU and engine costs. [all 0: DMA only] */
  readonly engine?: AcceleratorEngine;
  /**
   * The guest's CPU writes each message's input buffer before the device
   * reads it ({@linkcode DmaContext.cpuWrite}). Default true.
   */
  readonly cpuWritesInput?: boolean;
}

const NO_ENGINE: AcceleratorEngine = {
  firstMessageNs: 0,
  submitNs: 0,
  doorbellNs: 0,
  completionNs: 0,
  enginePer4kNs: 0,
};

/**
 * A zip/crypto engine (the RFC's test device) behind a user-space driver.
 * The guest maps the buffers for DMA before the message and unmaps them
 * after, unless it reuses them, in which case it maps them once.
 *
 * One message, one at a time (a synchronous UADK request): the CPU builds
 * the descriptor (`submitNs`) and rings the doorbell (`doorbellNs`); the
 * engine then streams the message in chunks of `chunkSize` through a
 * three-stage pipeline — DMA read of chunk k, processing of chunk k at the
 * engine's throughput (`enginePer4kNs` per 4 KiB), DMA write of chunk k —
 * with two chunk buffers on each side, so reads run ahead of processing and
 * writes trail it; a DMA that stalls on a fault stalls the stage that waits
 * for it. When the last chunk is written the CPU reaps the completion
 * (`completionNs`). The first message also pays the driver's first-use
 * work (`firstMessageNs`). With a link at least twice the engine's rate and
 * no faults, a message takes the CPU costs, the processing of every chunk,
 * and the read of the first and write of the last chunk.
 *
 * Before each message the guest's CPU writes the input (unless
 * `cpuWritesInput` is false), so its host pages are present when the
 * device reads them; then the CPU submits it.
 */
export class AcceleratorWorkload implements Workload {
  /** Always "accelerator". */
  readonly kind = "accelerator";
  readonly #o: AcceleratorOptions;
  readonly #e: AcceleratorEngine;
  readonly #chunk: number;

  /** A workload with the given options. */
  constructor(options: AcceleratorOptions) {
    this.#o = options;
    this.#e = options.engine ?? NO_ENGINE;
    this.#chunk = options.chunkSize ?? 65536;
  }

  /** Starts processing messages on `ctx`. */
  start(ctx: DmaContext, done: () => void): void {
    const { messageSize, messages, reuseBuffers } = this.#o;
    const e = this.#e;
    const cpuWrites = this.#o.cpuWritesInput ?? true;
    const mapPair = (
      cb: (
        inIova: number,
        outIova: number,
        inGpa: number,
        outGpa: number,
      ) => void,
    ) => {
      const inGpa = reuseBuffers
        ? ctx.allocBuffer(messageSize)
        : ctx.allocFresh(messageSize);
      const outGpa = reuseBuffers
        ? ctx.allocBuffer(messageSize)
        : ctx.allocFresh(messageSize);
      ctx.dmaMap(
        inGpa,
        messageSize,
        false,
        (inIova) =>
          ctx.dmaMap(
            outGpa,
            messageSize,
            true,
            (outIova) => cb(inIova, outIova, inGpa, outGpa),
          ),
      );
    };
    let first = true;
    const process = (
      inIova: number,
      outIova: number,
      inGpa: number,
      next: () => void,
    ) => {
      const submit = () => {
        const cpu = e.submitNs + e.doorbellNs +
          (first ? e.firstMessageNs : 0);
        first = false;
        ctx.sim.after(
          cpu,
          () =>
            this.#engineRun(
              ctx,
              inIova,
              outIova,
              () => ctx.sim.after(e.completionNs, next),
            ),
        );
      };
      if (cpuWrites) ctx.cpuWrite(inGpa, messageSize, submit);
      else submit();
    };
    if (reuseBuffers) {
      mapPair((inIova, outIova, inGpa) => {
        runWithDepth(
          messages,
          1,
          (_i, next) => process(inIova, outIova, inGpa, next),
          done,
        );
      });
      return;
    }
    runWithDepth(messages, 1, (_i, next) => {
      mapPair((inIova, outIova, inGpa, outGpa) =>
        process(
          inIova,
          outIova,
          inGpa,
          () =>
            ctx.dmaUnmap(inIova, messageSize, () =>
              ctx.dmaUnmap(outIova, messageSize, () => {
                ctx.freeBuffer(inGpa, messageSize);
                ctx.freeBuffer(outGpa, messageSize);
                next();
              })),
        )
      );
    }, done);
  }

  /**
   * The engine's pipeline over one message: one read, one processing step
   * and one write in progress at a time, at most two chunks read ahead of
   * processing and two processed ahead of writing.
   */
  #engineRun(
    ctx: DmaContext,
    inIova: number,
    outIova: number,
    done: () => void,
  ): void {
    const size = this.#o.messageSize;
    const chunk = this.#chunk;
    const n = Math.ceil(size / chunk);
    const per4k = this.#e.enginePer4kNs;
    const len = (k: number) => Math.min(chunk, size - k * chunk);
    let readIssued = 0, readDone = 0, procStarted = 0, procDone = 0;
    let writeIssued = 0, writeDone = 0;
    let reading = false, processing = false, writing = false;
    const pumpRead = (): void => {
      if (reading || readIssued >= n || readIssued - procDone >= 2) return;
      reading = true;
      const k = readIssued++;
      ctx.dma(
        { iova: inIova + k * chunk, size: len(k), write: false },
        () => {
          reading = false;
          readDone++;
          pumpProc();
          pumpRead();
        },
      );
    };
    const pumpProc = (): void => {
      if (
        processing || procStarted >= readDone || procStarted - writeDone >= 2
      ) return;
      processing = true;
      const k = procStarted++;
      ctx.sim.after(len(k) / PAGE_SIZE * per4k, () => {
        processing = false;
        procDone++;
        pumpWrite();
        pumpRead();
        pumpProc();
      });
    };
    const pumpWrite = (): void => {
      if (writing || writeIssued >= procDone) return;
      writing = true;
      const k = writeIssued++;
      ctx.dma(
        { iova: outIova + k * chunk, size: len(k), write: true },
        () => {
          writing = false;
          writeDone++;
          if (writeDone === n) {
            done();
            return;
          }
          pumpWrite();
          pumpProc();
        },
      );
    };
    pumpRead();
  }
}
