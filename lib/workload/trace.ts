/**
 * The `trace` workload: replay of a DMA trace file (lib/experiment/trace.ts
 * reads the file).
 *
 * @module
 */
import { decodeUtf8, describe, fail } from "../experiment/fields.ts";
import {
  fileErrorReason,
  parseTrace,
  type TraceRecord,
} from "../experiment/trace.ts";
import { isAbsolute, resolve as resolvePath } from "node:path";
import { IopfLabError } from "../sim/errors.ts";
import { formatSize, PAGE_SIZE } from "../sim/units.ts";
import type { WorkloadKindSpec } from "./kind.ts";
import type { DmaContext, Workload } from "./types.ts";

/** `trace`: replay of a DMA trace file. */
export interface TraceConfig {
  /** The workload kind. */
  readonly kind: "trace";
  /** Absolute path of the trace file (relative paths resolve against the scenario's directory). */
  readonly file: string;
  /** The parsed trace. */
  readonly rows: readonly TraceRecord[];
}

/** The fields of `trace`. */
export const TRACE_FIELDS = {
  file: {
    type: "path",
    unit: "",
    doc:
      "Path of the trace file (required; relative paths resolve against the scenario's directory)",
  },
} as const;

/** The `trace` kind. */
export const traceWorkload: WorkloadKindSpec<TraceConfig> = {
  kind: "trace",
  doc: "replay of a DMA trace file",
  fields: TRACE_FIELDS,
  resolve(o, env) {
    const file = o.file;
    if (typeof file !== "string" || file.trim() === "") {
      fail(
        "workload.file",
        `expected the path of a trace file, got ${describe(file)}`,
      );
    }
    const abs = isAbsolute(file) ? file : resolvePath(env.baseDir, file);
    let rows = env.traces.get(abs);
    if (rows === undefined) {
      let bytes: Uint8Array;
      try {
        bytes = Deno.readFileSync(abs);
      } catch (e) {
        fail(
          "workload.file",
          `cannot read the trace file ${JSON.stringify(abs)}: ${
            fileErrorReason(e)
          }`,
        );
      }
      // Invalid UTF-8 is EINVAL naming the file and offset; a BOM is dropped.
      rows = parseTrace(decodeUtf8(bytes, file), file);
      env.traces.set(abs, rows);
    }
    checkTraceFits(rows, file, env.vmMemory);
    return { kind: "trace", file: abs, rows };
  },
  // Trace addresses are offsets into guest RAM (checked against vm.memory).
  make: (w, env) => new TraceWorkload(w.rows, { ramBase: env.ramBase }),
  toJson: (w) => ({ kind: "trace", file: w.file }),
};

function checkTraceFits(
  rows: readonly TraceRecord[],
  file: string,
  memory: number,
): void {
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (r.iova + r.size > memory) {
      // Rows are numbered from line 2 (blank lines would shift this; they are rare).
      fail(
        `${file}:${i + 2}: iova`,
        `0x${r.iova.toString(16)} + ${r.size} bytes goes beyond vm.memory (${
          formatSize(memory)
        })`,
      );
    }
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
