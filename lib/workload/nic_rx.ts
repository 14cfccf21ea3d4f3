/**
 * The `nic-rx` workload: packets written at line rate into a ring of
 * receive buffers the driver refills.
 *
 * @module
 */
import { bandwidth, integer, size } from "../sim/fields.ts";
import { fitVm, type WorkloadKindSpec } from "./kind.ts";
import { MAX_COUNT } from "./limits.ts";
import type { DmaContext, Workload } from "./types.ts";

/** `nic-rx`: packets written into a ring of receive buffers the driver refills. */
export interface NicRxConfig {
  /** The workload kind. */
  readonly kind: "nic-rx";
  /** Receive descriptors in the ring. [1024] */
  readonly ringEntries: number;
  /** Bytes per receive buffer. ["2KiB"] */
  readonly bufferSize: number;
  /** Packets arriving. [100000] */
  readonly packets: number;
  /** Line rate in bytes per second. ["10Gbps"] */
  readonly rate: number;
}

/** The fields of `nic-rx`. */
export const NIC_RX_FIELDS = {
  ringEntries: {
    type: "integer",
    unit: "",
    default: 1024,
    min: 1,
    max: 65536,
    doc: "Receive descriptors in the ring",
  },
  bufferSize: {
    type: "size",
    unit: "bytes",
    default: "2KiB",
    max: 2 ** 20,
    doc: "Bytes per receive buffer",
  },
  packets: {
    type: "integer",
    unit: "",
    default: 100_000,
    min: 1,
    max: MAX_COUNT,
    doc: "Packets arriving",
  },
  rate: {
    type: "bandwidth",
    unit: "bytes/s",
    default: "10Gbps",
    doc: "Line rate",
  },
} as const;

/** The `nic-rx` kind. */
export const nicRxWorkload: WorkloadKindSpec<NicRxConfig> = {
  kind: "nic-rx",
  doc: "packets written into a ring of receive buffers the driver refills",
  fields: NIC_RX_FIELDS,
  resolve(o, env) {
    const F = NIC_RX_FIELDS;
    const ringEntries = integer(
      o.ringEntries,
      "workload.ringEntries",
      F.ringEntries.min,
      F.ringEntries.max,
      F.ringEntries.default,
    );
    const bufferSize = size(
      o.bufferSize,
      "workload.bufferSize",
      F.bufferSize.default,
      { max: F.bufferSize.max },
    );
    fitVm(
      ringEntries * bufferSize,
      "workload.ringEntries",
      "the receive buffers",
      env.vmMemory,
    );
    return {
      kind: "nic-rx",
      ringEntries,
      bufferSize,
      packets: integer(
        o.packets,
        "workload.packets",
        F.packets.min,
        F.packets.max,
        F.packets.default,
      ),
      rate: bandwidth(o.rate, "workload.rate", F.rate.default),
    };
  },
  make: (w, env) =>
    new NicRxWorkload({
      ringEntries: w.ringEntries,
      bufferSize: w.bufferSize,
      packets: w.packets,
      rateBytesPerSec: w.rate,
      fifoBytes: env.costs["nic.rxFifoBytes"],
    }),
};

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
 * stalled: each packet is handed to the DMA engine as it arrives and waits
 * in the on-NIC FIFO until its DMA completes (the engine overlaps several
 * packets' setup and translation with the data of others, see
 * `DmaDeviceOptions.slots`); a packet that does not fit in the FIFO is dropped
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
      const size = o.bufferSize;
      const finish = () => {
        finished++;
        if (finished === o.packets) done();
      };
      // Bound once: the packet's bytes leave the FIFO when its DMA is done.
      const written = (r: { readonly ok: boolean }) => {
        fifo -= size;
        if (!r.ok) ctx.count("rxErrors");
        ctx.count("packetsReceived", r.ok ? 1 : 0);
        finish();
      };
      const arrive = () => {
        arrived++;
        if (fifo + size > o.fifoBytes) {
          ctx.count("droppedPackets");
          finish();
        } else {
          // The packet waits in the FIFO until its DMA completes; the
          // engine works on several packets at once (its slots) and queues
          // the rest in arrival order.
          fifo += size;
          const target = iova + slot * o.bufferSize;
          slot = (slot + 1) % o.ringEntries;
          ctx.dma({ iova: target, size, write: true }, written);
        }
        if (arrived < o.packets) ctx.sim.after(gapNs, arrive);
      };
      if (o.packets === 0) done();
      else arrive();
    });
  }
}
