/**
 * The trace replay before traces streamed (every row in memory): the oracle
 * the streaming replay must match event for event.
 *
 * @module
 */
import { IopfLabError } from "../../lib/sim/errors.ts";
import { PAGE_SIZE } from "../../lib/sim/units.ts";
import type { DmaContext, Workload } from "../../lib/workload/types.ts";

/** One row of a DMA trace (columns time_ns,stream,op,iova,size). */
interface TraceRow {
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
interface TraceWorkloadOptions {
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
export class OldTraceWorkload implements Workload {
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
