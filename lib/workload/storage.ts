/**
 * The `storage` workload: blocks streamed into page-cache buffers.
 *
 * @module
 */
import { bool, fail, integer, size } from "../sim/fields.ts";
import { formatSize } from "../sim/units.ts";
import { fitVm, type WorkloadKindSpec } from "./kind.ts";
import { type DmaContext, runWithDepth, type Workload } from "./types.ts";

/** `storage`: blocks streamed into page-cache buffers. */
export interface StorageConfig {
  /** The workload kind. */
  readonly kind: "storage";
  /** Bytes per block. ["128KiB"] */
  readonly blockSize: number;
  /** Bytes streamed in total. ["4GiB"] */
  readonly totalBytes: number;
  /** Fresh buffers for every block. [true] */
  readonly freshBuffers: boolean;
  /** Blocks in flight at once, 1..65536. [8] */
  readonly queueDepth: number;
}

/** The fields of `storage`. */
export const STORAGE_FIELDS = {
  blockSize: {
    type: "size",
    unit: "bytes",
    default: "128KiB",
    doc: "Bytes per block",
  },
  totalBytes: {
    type: "size",
    unit: "bytes",
    default: "4GiB",
    doc: "Bytes streamed in total",
  },
  freshBuffers: {
    type: "boolean",
    unit: "",
    default: true,
    doc: "Fresh buffers for every block",
  },
  queueDepth: {
    type: "integer",
    unit: "",
    default: 8,
    min: 1,
    max: 65536,
    doc: "Blocks in flight at once",
  },
} as const;

/** The `storage` kind. */
export const storageWorkload: WorkloadKindSpec<StorageConfig> = {
  kind: "storage",
  doc: "blocks streamed into page-cache buffers",
  fields: STORAGE_FIELDS,
  resolve(o, env) {
    const F = STORAGE_FIELDS;
    const blockSize = size(
      o.blockSize,
      "workload.blockSize",
      F.blockSize.default,
    );
    fitVm(blockSize, "workload.blockSize", "a block", env.vmMemory);
    const totalBytes = size(
      o.totalBytes,
      "workload.totalBytes",
      F.totalBytes.default,
    );
    if (blockSize > totalBytes) {
      fail(
        "workload.blockSize",
        `${formatSize(blockSize)} is larger than workload.totalBytes (${
          formatSize(totalBytes)
        })`,
      );
    }
    return {
      kind: "storage",
      blockSize,
      totalBytes,
      freshBuffers: bool(
        o.freshBuffers,
        "workload.freshBuffers",
        F.freshBuffers.default,
      ),
      queueDepth: integer(
        o.queueDepth,
        "workload.queueDepth",
        F.queueDepth.min,
        F.queueDepth.max,
        F.queueDepth.default,
      ),
    };
  },
  make: (w) => new StorageWorkload(w),
};

/** Options of {@linkcode StorageWorkload}. */
export interface StorageOptions {
  /** Bytes per block read from the device into memory. */
  readonly blockSize: number;
  /** Total bytes streamed. */
  readonly totalBytes: number;
  /** Each block goes into freshly allocated page-cache pages (true) or one reused buffer. */
  readonly freshBuffers: boolean;
  /** Blocks in flight at once. */
  readonly queueDepth: number;
}

/**
 * A storage controller streaming blocks into page-cache buffers: the guest
 * allocates (fresh pages each time when `freshBuffers`), maps, the device
 * writes the block, the guest unmaps. Fresh buffers walk through guest RAM,
 * so with IOPF almost every block faults.
 */
export class StorageWorkload implements Workload {
  /** Always "storage". */
  readonly kind = "storage";
  readonly #o: StorageOptions;

  /** A workload with the given options. */
  constructor(options: StorageOptions) {
    this.#o = options;
  }

  /** Starts streaming on `ctx`. */
  start(ctx: DmaContext, done: () => void): void {
    const o = this.#o;
    const blocks = Math.ceil(o.totalBytes / o.blockSize);
    const sizeOf = (i: number) =>
      Math.min(o.blockSize, o.totalBytes - i * o.blockSize);
    if (!o.freshBuffers) {
      const gpa = ctx.allocBuffer(o.blockSize * o.queueDepth);
      ctx.dmaMap(gpa, o.blockSize * o.queueDepth, true, (iova) => {
        let k = 0;
        runWithDepth(blocks, o.queueDepth, (i, next) => {
          const at = iova + (k++ % o.queueDepth) * o.blockSize;
          ctx.dma({ iova: at, size: sizeOf(i), write: true }, () => next());
        }, done);
      });
      return;
    }
    runWithDepth(blocks, o.queueDepth, (i, next) => {
      const size = sizeOf(i);
      const gpa = ctx.allocFresh(size);
      ctx.dmaMap(
        gpa,
        size,
        true,
        (iova) =>
          ctx.dma(
            { iova, size, write: true },
            () =>
              ctx.dmaUnmap(iova, size, () => {
                // The page cache keeps the pages: the buffer is not freed, so
                // fresh allocations keep walking through guest RAM.
                next();
              }),
          ),
      );
    }, done);
  }
}
