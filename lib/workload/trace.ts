/**
 * The `trace` workload: replay of a DMA trace file (lib/experiment/trace.ts
 * reads the file).
 *
 * @module
 */
import { describe, fail } from "../sim/fields.ts";
import {
  fileErrorReason,
  type MutableTraceRecord,
  summarizeRows,
  summarizeTrace,
  TraceReader,
  type TraceSummary,
} from "./trace_file.ts";
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
  /**
   * What parsing kept of the file (validated in one streaming pass): row
   * count, address range, per-stream counts. The rows are read again from
   * the file during the replay, so a scenario (sent to sweep workers by
   * structured clone) never carries them.
   */
  readonly summary: TraceSummary;
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
    let summary = env.traces.get(abs);
    if (summary === undefined) {
      let reader: TraceReader;
      try {
        reader = TraceReader.open(abs, file);
      } catch (e) {
        if (e instanceof IopfLabError) throw e;
        fail(
          "workload.file",
          `cannot read the trace file ${JSON.stringify(abs)}: ${
            fileErrorReason(e)
          }`,
        );
      }
      summary = summarizeTrace(reader, file);
      env.traces.set(abs, summary);
    }
    checkTraceFits(summary, abs, file, env.vmMemory);
    return { kind: "trace", file: abs, summary };
  },
  // Trace addresses are offsets into guest RAM (checked against vm.memory).
  make: (w, env) =>
    new TraceWorkload(traceFileSource(w.file, w.summary), {
      ramBase: env.ramBase,
    }),
  toJson: (w) => ({ kind: "trace", file: w.file }),
};

function checkTraceFits(
  summary: TraceSummary,
  abs: string,
  file: string,
  memory: number,
): void {
  if (summary.hi <= memory) return;
  // Find the first row beyond (read the file again: an error path).
  const reader = TraceReader.open(abs, file);
  const r: MutableTraceRecord = {
    timeNs: 0,
    stream: 0,
    write: false,
    iova: 0,
    size: 0,
  };
  for (let i = 0; reader.next(r); i++) {
    if (r.iova + r.size > memory) {
      reader.close();
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

/** Rows read one at a time into a caller's record (a {@linkcode TraceReader}). */
export interface TraceCursor {
  /** Fills `into` with the next row; false after the last. */
  next(into: MutableTraceRecord): boolean;
  /** Releases the cursor (idempotent). */
  close(): void;
}

/** Where a replay gets its rows: the summary up front, the rows on demand. */
export interface TraceSource {
  /** Row count, address range and per-stream counts of the rows {@linkcode TraceSource.open} gives. */
  readonly summary: TraceSummary;
  /** A cursor over the rows from the first, in file order. */
  open(): TraceCursor;
}

/**
 * The rows of a trace file, read again (in chunks) each time a replay
 * opens it. The file must still be the one `summary` was made of (same
 * size and modification time), or opening it is EINVAL.
 */
export function traceFileSource(
  path: string,
  summary: TraceSummary,
): TraceSource {
  return {
    summary,
    open() {
      let reader: TraceReader;
      try {
        reader = TraceReader.open(path);
      } catch (e) {
        throw new IopfLabError(
          "EINVAL",
          `trace: cannot read the trace file ${JSON.stringify(path)}: ${
            fileErrorReason(e)
          }`,
          "workload.file",
        );
      }
      if (summary.stamp !== "" && reader.stamp !== summary.stamp) {
        reader.close();
        throw new IopfLabError(
          "EINVAL",
          `trace: the trace file ${
            JSON.stringify(path)
          } changed after the scenario was read; parse the scenario again`,
          "workload.file",
        );
      }
      return reader;
    },
  };
}

function arraySource(rows: readonly TraceRow[]): TraceSource {
  let summary: TraceSummary | undefined;
  return {
    get summary() {
      return summary ??= summarizeRows(rows);
    },
    open() {
      let i = 0;
      return {
        next(into) {
          const r = rows[i++];
          if (r === undefined) return false;
          into.timeNs = r.timeNs;
          into.stream = r.stream;
          into.write = r.write;
          into.iova = r.iova;
          into.size = r.size;
          return true;
        },
        close() {},
      };
    },
  };
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
 *
 * From a {@linkcode TraceSource} the rows are read in file order only as
 * the streams need them: memory holds the rows read ahead of their
 * stream's turn (a globally time-sorted file keeps that to the rows in
 * flight; a file whose streams lie far apart buffers the rows between, at
 * 33 bytes a row), never the whole trace.
 */
export class TraceWorkload implements Workload {
  /** Always "trace". */
  readonly kind = "trace";
  readonly #source: TraceSource;
  readonly #ramBase: number;

  /** A replay of `rows` (sorted by time within each stream), or of a {@linkcode TraceSource}. */
  constructor(
    rows: readonly TraceRow[] | TraceSource,
    options: TraceWorkloadOptions = {},
  ) {
    this.#source = Array.isArray(rows)
      ? arraySource(rows)
      : rows as TraceSource;
    this.#ramBase = options.ramBase ?? 0;
  }

  /** Rows replayed so far by the current (or last) replay, for progress reports. */
  get replayed(): number {
    return this.#replay?.issuedRows ?? 0;
  }

  /** Rows of the trace. */
  get rows(): number {
    return this.#source.summary.rows;
  }

  #replay: Replay | undefined;

  /** Starts the replay on `ctx`. */
  start(ctx: DmaContext, done: () => void): void {
    const sum = this.#source.summary;
    if (sum.rows === 0) {
      done();
      return;
    }
    const lo = Math.floor(sum.lo / PAGE_SIZE) * PAGE_SIZE;
    const hi = Math.ceil(sum.hi / PAGE_SIZE) * PAGE_SIZE;
    if (hi > ctx.guestMemory) {
      throw new IopfLabError(
        "EINVAL",
        `trace: addresses reach ${hi} bytes, beyond the guest's ${ctx.guestMemory} bytes of RAM`,
        "workload.file",
      );
    }
    ctx.dmaMap(this.#ramBase + lo, hi - lo, true, (base) => {
      this.#replay = new Replay(ctx, this.#source, base - lo, done);
    });
  }
}

/**
 * One replay in progress. Rows read ahead wait in per-stream FIFO lists in
 * a pool of typed arrays; streams are numbered (slots) in the order of
 * their first row, as the summary counts them. Each stream has one issue
 * and one completion function, made once.
 */
class Replay {
  readonly #ctx: DmaContext;
  readonly #cursor: TraceCursor;
  readonly #done: () => void;
  /** Added to a row's address: the IOVA of address 0 of the mapped range. */
  readonly #offset: number;
  readonly #start: number;
  readonly #rec: MutableTraceRecord = {
    timeNs: 0,
    stream: 0,
    write: false,
    iova: 0,
    size: 0,
  };
  readonly #op = { iova: 0, size: 0, write: false, stream: 0 };
  readonly #slotOf = new Map<number, number>();
  readonly #streamId: Int32Array;
  /** Rows of each stream not yet issued. */
  readonly #left: Float64Array;
  readonly #head: Int32Array;
  readonly #tail: Int32Array;
  readonly #issue: (() => void)[] = [];
  readonly #complete: (() => void)[] = [];
  #remaining: number;
  #read = 0;
  readonly #rows: number;
  /** Rows issued so far. */
  issuedRows = 0;
  // The pool of rows read ahead: a free list threaded through #next.
  #time = new Float64Array(64);
  #iova = new Float64Array(64);
  #size = new Float64Array(64);
  #write = new Uint8Array(64);
  #next = new Int32Array(64).fill(-1);
  #free = 0;

  constructor(
    ctx: DmaContext,
    source: TraceSource,
    offset: number,
    done: () => void,
  ) {
    const sum = source.summary;
    this.#ctx = ctx;
    this.#done = done;
    this.#offset = offset;
    this.#start = ctx.sim.now;
    this.#rows = sum.rows;
    this.#remaining = sum.rows;
    const n = sum.streams;
    this.#streamId = new Int32Array(n);
    this.#left = Float64Array.from(sum.streamRows);
    this.#head = new Int32Array(n).fill(-1);
    this.#tail = new Int32Array(n).fill(-1);
    this.#threadFree(0);
    this.#cursor = source.open();
    for (let s = 0; s < n; s++) {
      this.#issue.push(() => this.#issueRow(s));
      this.#complete.push(() => this.#completed(s));
    }
    // Every stream's first row, in the order streams first appear.
    for (let s = 0; s < n; s++) {
      ctx.sim.at(this.#start + sum.streamFirstNs[s]!, this.#issue[s]!);
    }
  }

  #threadFree(from: number): void {
    const next = this.#next;
    for (let i = from; i < next.length - 1; i++) next[i] = i + 1;
    next[next.length - 1] = -1;
    this.#free = from;
  }

  #issueRow(s: number): void {
    const row = this.#ensure(s);
    const next = this.#next;
    const op = this.#op;
    op.iova = this.#offset + this.#iova[row]!;
    op.size = this.#size[row]!;
    op.write = this.#write[row] === 1;
    op.stream = this.#streamId[s]!;
    // Pop the row and return it to the pool.
    const after = next[row]!;
    this.#head[s] = after;
    if (after === -1) this.#tail[s] = -1;
    next[row] = this.#free;
    this.#free = row;
    this.#left[s]!--;
    this.issuedRows++;
    this.#ctx.dma(op, this.#complete[s]!);
  }

  #completed(s: number): void {
    if (--this.#remaining === 0) {
      this.#cursor.close();
      this.#done();
    }
    if (this.#left[s]! > 0) {
      const at = this.#start + this.#time[this.#ensure(s)]!;
      if (at > this.#ctx.sim.now) this.#ctx.sim.at(at, this.#issue[s]!);
      else this.#issueRow(s);
    }
  }

  /** The first row waiting for stream `s`, reading ahead in the file until it is there. */
  #ensure(s: number): number {
    const head = this.#head;
    while (head[s] === -1) this.#readOne();
    return head[s]!;
  }

  #readOne(): void {
    const rec = this.#rec;
    if (this.#read === this.#rows || !this.#cursor.next(rec)) {
      this.#cursor.close();
      throw new IopfLabError(
        "EINVAL",
        `trace: the trace file ended after ${this.#read} of its ${this.#rows} rows; it changed after the scenario was read`,
        "workload.file",
      );
    }
    this.#read++;
    let s = this.#slotOf.get(rec.stream);
    if (s === undefined) {
      s = this.#slotOf.size;
      if (s >= this.#streamId.length) {
        this.#cursor.close();
        throw new IopfLabError(
          "EINVAL",
          `trace: the trace file has more streams than when the scenario was read; it changed`,
          "workload.file",
        );
      }
      this.#slotOf.set(rec.stream, s);
      this.#streamId[s] = rec.stream;
    }
    if (this.#free === -1) this.#grow();
    const row = this.#free;
    this.#free = this.#next[row]!;
    this.#time[row] = rec.timeNs;
    this.#iova[row] = rec.iova;
    this.#size[row] = rec.size;
    this.#write[row] = rec.write ? 1 : 0;
    this.#next[row] = -1;
    const tail = this.#tail[s]!;
    if (tail === -1) this.#head[s] = row;
    else this.#next[tail] = row;
    this.#tail[s] = row;
  }

  #grow(): void {
    const n = this.#time.length;
    const widen = <T extends Float64Array | Uint8Array | Int32Array>(
      a: T,
      make: (n: number) => T,
    ): T => {
      const b = make(2 * n);
      b.set(a);
      return b;
    };
    this.#time = widen(this.#time, (k) => new Float64Array(k));
    this.#iova = widen(this.#iova, (k) => new Float64Array(k));
    this.#size = widen(this.#size, (k) => new Float64Array(k));
    this.#write = widen(this.#write, (k) => new Uint8Array(k));
    this.#next = widen(this.#next, (k) => new Int32Array(k));
    this.#threadFree(n);
  }
}
