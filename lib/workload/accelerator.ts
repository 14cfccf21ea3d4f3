/**
 * The `accelerator` workload: a zip/crypto engine reading an input and
 * writing an output buffer per message.
 *
 * @module
 */
import { bool, integer, size } from "../sim/fields.ts";
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
      cpuWritesInput: bool(
        o.cpuWritesInput,
        "workload.cpuWritesInput",
        F.cpuWritesInput.default,
      ),
    };
  },
  make: (w) => new AcceleratorWorkload(w),
};

/** Options of {@linkcode AcceleratorWorkload}. */
export interface AcceleratorOptions {
  /** Bytes of each message's input buffer and of its output buffer. */
  readonly messageSize: number;
  /** Messages processed, one after the other. */
  readonly messages: number;
  /** Reuse the same two buffers for every message (true) or allocate fresh ones (false). */
  readonly reuseBuffers: boolean;
  /**
   * The guest's CPU writes each message's input buffer before the device
   * reads it ({@linkcode DmaContext.cpuWrite}). Default true.
   */
  readonly cpuWritesInput?: boolean;
}

/**
 * A zip/crypto engine (the RFC's test device): for each message the device
 * reads the input buffer and writes the output buffer. The guest maps the
 * buffers for DMA before the message and unmaps them after, unless it
 * reuses them, in which case it maps them once. Before each message the
 * guest's CPU writes the input (unless `cpuWritesInput` is false), so its
 * host pages are present when the device reads them.
 */
export class AcceleratorWorkload implements Workload {
  /** Always "accelerator". */
  readonly kind = "accelerator";
  readonly #o: AcceleratorOptions;

  /** A workload with the given options. */
  constructor(options: AcceleratorOptions) {
    this.#o = options;
  }

  /** Starts processing messages on `ctx`. */
  start(ctx: DmaContext, done: () => void): void {
    const { messageSize, messages, reuseBuffers } = this.#o;
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
    const process = (
      inIova: number,
      outIova: number,
      inGpa: number,
      next: () => void,
    ) => {
      const run = () =>
        ctx.dma(
          { iova: inIova, size: messageSize, write: false },
          () =>
            ctx.dma(
              { iova: outIova, size: messageSize, write: true },
              () => next(),
            ),
        );
      if (cpuWrites) ctx.cpuWrite(inGpa, messageSize, run);
      else run();
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
}
