/**
 * The built-in workloads of shared/INTERFACE.md: boot, accelerator, random,
 * nic-rx, storage and trace replay. Each issues DMA through a
 * {@linkcode DmaContext} and calls `done` when its last transfer completes.
 *
 * @module
 */
import { IopfLabError } from "../sim/errors.ts";
import { PAGE_SIZE } from "../sim/units.ts";
import { type DmaContext, runWithDepth, type Workload } from "./types.ts";
import { ZipfSampler } from "./zipf.ts";

/** Options of {@linkcode AcceleratorWorkload}. */
export interface AcceleratorOptions {
  /** Bytes of each message's input buffer and of its output buffer. */
  readonly messageSize: number;
  /** Messages processed, one after the other. */
  readonly messages: number;
  /** Reuse the same two buffers for every message (true) or allocate fresh ones (false). */
  readonly reuseBuffers: boolean;
}

/**
 * A zip/crypto engine (the RFC's test device): for each message the device
 * reads the input buffer and writes the output buffer. The guest maps the
 * buffers for DMA before the message and unmaps them after, unless it
 * reuses them, in which case it maps them once.
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
    const process = (inIova: number, outIova: number, next: () => void) => {
      ctx.dma(
        { iova: inIova, size: messageSize, write: false },
        () =>
          ctx.dma(
            { iova: outIova, size: messageSize, write: true },
            () => next(),
          ),
      );
    };
    if (reuseBuffers) {
      mapPair((inIova, outIova) => {
        runWithDepth(
          messages,
          1,
          (_i, next) => process(inIova, outIova, next),
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

/** Options of {@linkcode RandomWorkload}. */
export interface RandomOptions {
  /** Bytes of the region the device touches. */
  readonly workingSet: number;
  /** Number of accesses. */
  readonly accesses: number;
  /** Bytes per access (aligned to its own size inside the working set). */
  readonly accessSize: number;
  /** How accesses pick their offset. */
  readonly distribution: "uniform" | "zipf";
  /** Fraction of accesses that are device writes. */
  readonly writeFraction: number;
  /** Accesses in flight at once. */
  readonly queueDepth: number;
  /** Zipf exponent (only for "zipf"). */
  readonly zipfExponent: number;
}

/**
 * A device touching a working set at random (uniform or Zipf: a few hot
 * slots, a long tail), with a fixed number of accesses in flight. The
 * working set is one buffer mapped once.
 */
export class RandomWorkload implements Workload {
  /** Always "random". */
  readonly kind = "random";
  readonly #o: RandomOptions;

  /** A workload with the given options. */
  constructor(options: RandomOptions) {
    if (options.accessSize > options.workingSet) {
      throw new IopfLabError(
        "EINVAL",
        `workload.accessSize: ${options.accessSize} bytes exceeds the working set of ${options.workingSet} bytes`,
        "workload.accessSize",
      );
    }
    this.#o = options;
  }

  /** Starts the accesses on `ctx`. */
  start(ctx: DmaContext, done: () => void): void {
    const o = this.#o;
    const slots = Math.floor(o.workingSet / o.accessSize);
    const zipf = o.distribution === "zipf"
      ? new ZipfSampler(slots, o.zipfExponent)
      : undefined;
    // Scatter Zipf ranks over the working set so hot slots are not adjacent.
    const stride = coprimeStride(slots);
    const gpa = ctx.allocBuffer(o.workingSet);
    ctx.dmaMap(gpa, o.workingSet, true, (iova) => {
      runWithDepth(o.accesses, o.queueDepth, (_i, next) => {
        const slot = zipf
          ? (zipf.sample(ctx.rng) * stride) % slots
          : ctx.rng.int(slots);
        const write = ctx.rng.float() < o.writeFraction;
        ctx.dma(
          { iova: iova + slot * o.accessSize, size: o.accessSize, write },
          () => next(),
        );
      }, done);
    });
  }
}

function coprimeStride(n: number): number {
  if (n <= 2) return 1;
  let s = Math.floor(n * 0.6180339887) | 1;
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  while (gcd(s, n) !== 1) s += 2;
  return s % n;
}

/** Options of {@linkcode NicRxWorkload}. */
export interface NicRxOptions {
  /** Receive descriptors in the ring. */
  readonly ringEntries: number;
  /** Bytes per receive buffer (and per packet: full-size packets). */
  readonly bufferSize: number;
  /** Packets arriving on the wire. */
  readonly packets: number;
  /** Line rate in bytes per second. */
  readonly rateBytesPerSec: number;
  /** Bytes of on-NIC receive FIFO (cost profile `nic.rxFifoBytes`). */
  readonly fifoBytes: number;
}

/**
 * A NIC receiving at line rate into a ring of buffers the driver refills
 * (recycling the same pages, as page_pool does). The wire cannot be
 * stalled: packets wait in the on-NIC FIFO while the DMA engine is busy or a
 * buffer faults; a packet that does not fit in the FIFO is dropped
 * (`droppedPackets`), as are packets whose DMA fails (`rxErrors`).
 */
export class NicRxWorkload implements Workload {
  /** Always "nic-rx". */
  readonly kind = "nic-rx";
  readonly #o: NicRxOptions;

  /** A workload with the given options. */
  constructor(options: NicRxOptions) {
    this.#o = options;
  }

  /** Starts the packet arrivals on `ctx`. */
  start(ctx: DmaContext, done: () => void): void {
    const o = this.#o;
    const ringBytes = o.ringEntries * o.bufferSize;
    const gpa = ctx.allocBuffer(ringBytes);
    const gapNs = (o.bufferSize / o.rateBytesPerSec) * 1e9;
    ctx.dmaMap(gpa, ringBytes, true, (iova) => {
      let fifo = 0; // bytes waiting on the NIC
      let arrived = 0;
      let finished = 0;
      let slot = 0;
      let busy = false;
      const queue: number[] = []; // packet sizes waiting in the FIFO
      const finish = () => {
        finished++;
        if (finished === o.packets) done();
      };
      const pump = () => {
        if (busy || queue.length === 0) return;
        busy = true;
        const size = queue.shift()!;
        const target = iova + slot * o.bufferSize;
        slot = (slot + 1) % o.ringEntries;
        ctx.dma({ iova: target, size, write: true }, (r) => {
          fifo -= size;
          if (!r.ok) ctx.count("rxErrors");
          ctx.count("packetsReceived", r.ok ? 1 : 0);
          busy = false;
          finish();
          pump();
        });
      };
      const arrive = () => {
        arrived++;
        if (fifo + o.bufferSize > o.fifoBytes) {
          ctx.count("droppedPackets");
          finish();
        } else {
          fifo += o.bufferSize;
          queue.push(o.bufferSize);
          pump();
        }
        if (arrived < o.packets) ctx.sim.after(gapNs, arrive);
      };
      if (o.packets === 0) done();
      else arrive();
    });
  }
}

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

/** One row of a DMA trace (columns time_ns,stream,op,iova,size). */
export interface TraceRow {
  /** When the device issues it (ns from the workload start). */
  readonly timeNs: number;
  /** Stream (PASID) index. */
  readonly stream: number;
  /** Device writes memory when true. */
  readonly write: boolean;
  /** Offset into guest RAM the device targets (the GPA when the workload's ramBase is 0). */
  readonly iova: number;
  /** Bytes. */
  readonly size: number;
}

/** Options of {@linkcode TraceWorkload}. */
export interface TraceWorkloadOptions {
  /**
   * Guest-physical address of the first byte of guest RAM: a row's address
   * is an offset into guest RAM, and the device targets `ramBase + iova`.
   * Default 0.
   */
  readonly ramBase?: number;
}

/**
 * Replays a trace: each row is issued at its time (rows of one stream in
 * order, a row waiting for the previous row of its stream to complete).
 * Addresses are offsets into guest RAM (guest-physical addresses when
 * `ramBase` is 0); the guest maps the whole traced range for DMA once
 * before the replay.
 */
export class TraceWorkload implements Workload {
  /** Always "trace". */
  readonly kind = "trace";
  readonly #rows: readonly TraceRow[];
  readonly #ramBase: number;

  /** A replay of `rows` (sorted by time within each stream). */
  constructor(rows: readonly TraceRow[], options: TraceWorkloadOptions = {}) {
    this.#rows = rows;
    this.#ramBase = options.ramBase ?? 0;
  }

  /** Starts the replay on `ctx`. */
  start(ctx: DmaContext, done: () => void): void {
    const rows = this.#rows;
    if (rows.length === 0) {
      done();
      return;
    }
    let lo = Infinity, hi = 0;
    for (const r of rows) {
      lo = Math.min(lo, r.iova);
      hi = Math.max(hi, r.iova + r.size);
    }
    lo = Math.floor(lo / PAGE_SIZE) * PAGE_SIZE;
    hi = Math.ceil(hi / PAGE_SIZE) * PAGE_SIZE;
    if (hi > ctx.guestMemory) {
      throw new IopfLabError(
        "EINVAL",
        `trace: addresses reach ${hi} bytes, beyond the guest's ${ctx.guestMemory} bytes of RAM`,
        "workload.file",
      );
    }
    ctx.dmaMap(this.#ramBase + lo, hi - lo, true, (base) => {
      const start = ctx.sim.now;
      const streams = new Map<number, TraceRow[]>();
      for (const r of rows) {
        let q = streams.get(r.stream);
        if (!q) streams.set(r.stream, q = []);
        q.push(r);
      }
      let remaining = rows.length;
      for (const q of streams.values()) {
        let i = 0;
        const issue = () => {
          const r = q[i++]!;
          ctx.dma({
            iova: base + (r.iova - lo),
            size: r.size,
            write: r.write,
            stream: r.stream,
          }, () => {
            if (--remaining === 0) done();
            if (i < q.length) {
              const at = start + q[i]!.timeNs;
              if (at > ctx.sim.now) ctx.sim.at(at, issue);
              else issue();
            }
          });
        };
        ctx.sim.at(start + q[0]!.timeNs, issue);
      }
    });
  }
}

/** The VM only starts: guest RAM is set up for DMA, no device traffic. */
export class BootWorkload implements Workload {
  /** Always "boot". */
  readonly kind = "boot";
  /** Completes at once. */
  start(_ctx: DmaContext, done: () => void): void {
    done();
  }
}
