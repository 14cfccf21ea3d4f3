/**
 * DMA traces for the `trace` workload: a CSV file with the columns
 * `time_ns,stream,op,iova,size`, one device access per line. Errors name the
 * file and line: `trace.csv:17: iova: expected an address like 0x1000 or
 * 4096, got "zz"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTrace } from "./trace_file.ts";
 * const rows = parseTrace("time_ns,stream,op,iova,size\n0,0,w,0x1000,4KiB\n", "t.csv");
 * assert(rows[0]!.write && rows[0]!.iova === 0x1000 && rows[0]!.size === 4096);
 * ```
 *
 * @module
 */
import { hex, IopfLabError } from "../sim/errors.ts";
import { firstInvalidUtf8 } from "../sim/json.ts";
import { formatSize, MAX_ADDRESS, parseSize, parseTime } from "../sim/units.ts";

/** One device access of a trace (the shape lib/workload's trace replay takes). */
export interface TraceRecord {
  /** When the device issues it, in ns from the start of the workload. */
  readonly timeNs: number;
  /** Stream (PASID) index, 0..2^20-1. */
  readonly stream: number;
  /** The device writes memory when true, reads it when false. */
  readonly write: boolean;
  /** The address the device targets (guest-physical; the IOVA in single-stage modes). */
  readonly iova: number;
  /** Bytes accessed (> 0). */
  readonly size: number;
}

/** The columns of a trace file, in their canonical order. */
export const TRACE_COLUMNS: readonly string[] = [
  "time_ns",
  "stream",
  "op",
  "iova",
  "size",
];

/** The largest stream (PASID) index: PASIDs are 20 bits. */
export const MAX_STREAM = 2 ** 20 - 1;

/** Options of {@linkcode parseTrace}. */
export interface ParseTraceOptions {
  /**
   * Bytes of guest memory the addresses must stay below (`vm.memory`);
   * unchecked when omitted.
   */
  readonly memory?: number;
  /** Bytes read from the file at a time (tests use small chunks). Default 64 KiB. */
  readonly chunkBytes?: number;
}

/** A {@linkcode TraceRecord} the reader fills in place (one per reader, reused for every row). */
export interface MutableTraceRecord {
  /** When the device issues it, in ns from the start of the workload. */
  timeNs: number;
  /** Stream (PASID) index. */
  stream: number;
  /** The device writes memory when true. */
  write: boolean;
  /** The address the device targets. */
  iova: number;
  /** Bytes accessed. */
  size: number;
}

/**
 * What a scenario keeps of a trace file instead of its rows: sizes that
 * grow with the number of streams (every stream's first row is in flight
 * at once), never with the number of rows. The replay reads the rows again
 * from the file.
 */
export interface TraceSummary {
  /** Rows (accesses) in the trace. */
  readonly rows: number;
  /** Distinct streams. */
  readonly streams: number;
  /** The lowest address accessed. */
  readonly lo: number;
  /** One past the highest byte accessed (max of iova + size). */
  readonly hi: number;
  /** Sum over the rows of the 4 KiB pages each access spans (ceil(size / 4096)). */
  readonly pages: number;
  /** Sum of the rows' sizes in bytes. */
  readonly bytes: number;
  /** Rows of each stream, streams in the order of their first row in the file. */
  readonly streamRows: Float64Array;
  /** Time of each stream's first row (ns), in the same order. */
  readonly streamFirstNs: Float64Array;
  /** Identity of the file when it was read ("size:mtime"; "" for text), to notice a file changed before the replay. */
  readonly stamp: string;
}

const CHUNK = 1 << 16;
const QUOTE = 34, NEWLINE = 10, RETURN = 13, COMMA = 44;
/** tokenize() needs more text than the buffer holds. */
const MORE = -2;
/** No more rows. */
const END = -1;

/**
 * Reads the rows of a trace one at a time into a reused record, from a file
 * in chunks (never the whole file in memory) or from text, validating each
 * row as {@linkcode parseTrace} does (same messages, naming `where:line`).
 * CSV is split as d3-dsv's `csvParseRows` splits it (quotes, CRLF).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TraceReader } from "./trace_file.ts";
 * const r = TraceReader.fromText("time_ns,stream,op,iova,size\n0,1,r,0x1000,64\n", "t.csv");
 * const rec = { timeNs: 0, stream: 0, write: false, iova: 0, size: 0 };
 * assert(r.next(rec) && rec.stream === 1 && rec.size === 64);
 * assert(!r.next(rec));
 * ```
 */
export class TraceReader {
  readonly #where: string;
  #file: Deno.FsFile | undefined;
  readonly #bytes: Uint8Array;
  // Fatal: invalid UTF-8 is an error naming the offset, never replaced;
  // a leading byte order mark is dropped (ignoreBOM false).
  readonly #decoder = new TextDecoder("utf-8", { fatal: true });
  #consumed = 0;
  #text = "";
  #pos = 0;
  #final: boolean;
  /** d3's `eof` flag of the final text: no row starts after it. */
  #eof = false;
  #n = 0;
  /** Rows tokenized so far (the header is row 0); line numbers are rows + 1, as today. */
  #row = 0;
  readonly #fields: string[] = [];
  #nf = 0;
  #cols: number[] = [];
  #width = 0;
  #lastTime = new Map<number, number>();
  #memory: number | undefined;

  private constructor(
    where: string,
    file: Deno.FsFile | undefined,
    text: string,
    options: ParseTraceOptions,
  ) {
    this.#where = where;
    this.#file = file;
    this.#bytes = new Uint8Array(file ? options.chunkBytes ?? CHUNK : 0);
    this.#final = file === undefined;
    this.#text = text;
    this.#memory = options.memory;
    if (this.#final) this.#finish();
  }

  /**
   * Opens `path` for reading (a missing or unreadable file throws the
   * runtime's error: see {@linkcode fileErrorReason}); rows are read only
   * as {@linkcode TraceReader.next} asks for them.
   */
  static open(
    path: string,
    where: string = path,
    options: ParseTraceOptions = {},
  ): TraceReader {
    const file = Deno.openSync(path, { read: true });
    try {
      if (file.statSync().isDirectory) {
        throw new Deno.errors.IsADirectory(`is a directory: ${path}`);
      }
    } catch (e) {
      file.close();
      throw e;
    }
    const r = new TraceReader(where, file, "", options);
    r.#header();
    return r;
  }

  /** Reads rows from `text` (already in memory). */
  static fromText(
    text: string,
    where: string,
    options: ParseTraceOptions = {},
  ): TraceReader {
    const r = new TraceReader(where, undefined, text, options);
    r.#header();
    return r;
  }

  /** Identity of an open file ("size:mtime"), "" for text. */
  static stampOf(file: Deno.FsFile | string): string {
    if (typeof file === "string") return stamp(Deno.statSync(file));
    return stamp(file.statSync());
  }

  /** The stamp of this reader's file ("" for text). */
  get stamp(): string {
    return this.#file ? stamp(this.#file.statSync()) : "";
  }

  /** The line of the row read last (`where:line` in messages). */
  get line(): number {
    return this.#row;
  }

  /**
   * Fills `into` with the next row; false (and the file closed) after the
   * last one. A bad row throws EINVAL naming `where:line: column`.
   */
  next(into: MutableTraceRecord): boolean {
    for (;;) {
      const nf = this.#readRow();
      if (nf === END) {
        this.close();
        return false;
      }
      const f = this.#fields;
      if (nf === 1 && f[0]!.trim() === "") continue; // blank line
      const line = `${this.#where}:${this.#row}`;
      if (nf !== this.#width) {
        fail(line, `expected ${this.#width} fields, got ${nf}`);
      }
      const c = this.#cols;
      const timeNs = parseTime(
        this.#field(c[0]!, line, "time_ns"),
        `${line}: time_ns`,
      );
      const stream = parseStream(
        this.#field(c[1]!, line, "stream"),
        `${line}: stream`,
      );
      const write = parseOp(this.#field(c[2]!, line, "op"), `${line}: op`);
      const iova = parseAddress(
        this.#field(c[3]!, line, "iova"),
        `${line}: iova`,
      );
      const sizeText = this.#field(c[4]!, line, "size");
      const size = /^0x/i.test(sizeText)
        ? parseAddress(sizeText, `${line}: size`)
        : parseSize(sizeText, `${line}: size`);
      if (size === 0) fail(`${line}: size`, "must be more than 0 bytes");
      if (iova + size > MAX_ADDRESS) {
        fail(`${line}: iova`, `${hex(iova)} + ${size} bytes goes beyond 2^52`);
      }
      const memory = this.#memory;
      if (memory !== undefined && iova + size > memory) {
        fail(
          `${line}: iova`,
          `${hex(iova)} + ${size} bytes goes beyond vm.memory (${
            formatSize(memory)
          })`,
        );
      }
      const prev = this.#lastTime.get(stream);
      if (prev !== undefined && timeNs < prev) {
        fail(
          `${line}: time_ns`,
          `${timeNs} is before the previous access of stream ${stream} (${prev})`,
        );
      }
      this.#lastTime.set(stream, timeNs);
      into.timeNs = timeNs;
      into.stream = stream;
      into.write = write;
      into.iova = iova;
      into.size = size;
      return true;
    }
  }

  /** Closes the file (idempotent). */
  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }

  #field(c: number, line: string, name: string): string {
    const v = this.#fields[c]!.trim();
    if (v === "") fail(`${line}: ${name}`, "missing value");
    return v;
  }

  #header(): void {
    const where = this.#where;
    const nf = this.#readRow();
    if (nf === END || (nf === 1 && this.#fields[0]!.trim() === "")) {
      this.close();
      fail(
        `${where}:1`,
        `empty trace: expected the header line ${TRACE_COLUMNS.join(",")}`,
      );
    }
    const names = this.#fields.slice(0, nf).map((h) => h.trim().toLowerCase());
    try {
      for (const name of names) {
        if (!TRACE_COLUMNS.includes(name)) {
          fail(
            `${where}:1`,
            `unknown column ${JSON.stringify(name)} (expected the columns ${
              TRACE_COLUMNS.join(",")
            })`,
          );
        }
        if (names.indexOf(name) !== names.lastIndexOf(name)) {
          fail(`${where}:1`, `column ${JSON.stringify(name)} appears twice`);
        }
      }
      for (const name of TRACE_COLUMNS) {
        if (!names.includes(name)) {
          fail(
            `${where}:1`,
            `missing column ${JSON.stringify(name)} (expected the columns ${
              TRACE_COLUMNS.join(",")
            })`,
          );
        }
      }
    } catch (e) {
      this.close();
      throw e;
    }
    this.#cols = TRACE_COLUMNS.map((n) => names.indexOf(n));
    this.#width = names.length;
  }

  /** Tokenizes the next row into #fields; its field count, or END. */
  #readRow(): number {
    for (;;) {
      const n = this.#tokenize();
      if (n !== MORE) {
        if (n !== END) this.#row++;
        return n;
      }
      this.#fill();
    }
  }

  /** Appends the next chunk of the file to the text (or marks the end). */
  #fill(): void {
    const file = this.#file!;
    let got: number | null;
    try {
      got = file.readSync(this.#bytes);
    } catch (e) {
      this.close();
      throw e;
    }
    const rest = this.#text.slice(this.#pos);
    this.#pos = 0;
    if (got === null || got === 0) {
      this.#text = rest + this.#decode(undefined);
      this.#final = true;
      this.#finish();
    } else {
      this.#text = rest + this.#decode(this.#bytes.subarray(0, got));
      this.#consumed += got;
      this.#n = this.#text.length;
    }
  }

  /** Decodes the next chunk (or the end); invalid UTF-8 is EINVAL with its offset. */
  #decode(chunk: Uint8Array | undefined): string {
    try {
      return chunk === undefined
        ? this.#decoder.decode()
        : this.#decoder.decode(chunk, { stream: true });
    } catch {
      this.close();
      const at = this.#consumed +
        (chunk === undefined ? 0 : firstInvalidUtf8(chunk));
      throw new IopfLabError(
        "EINVAL",
        `${this.#where}: not UTF-8 text (invalid byte at offset ${at})`,
        this.#where,
      );
    }
  }

  /** The text is the end of the file: strip its trailing newline as d3 does. */
  #finish(): void {
    const text = this.#text;
    let n = text.length;
    if (text.charCodeAt(n - 1) === NEWLINE) --n;
    if (text.charCodeAt(n - 1) === RETURN) --n;
    this.#n = n;
    this.#eof = n <= this.#pos;
  }

  /**
   * One row of d3-dsv's parseRows from #pos: its field count, END after the
   * last row, or MORE when the row may continue past the text read so far.
   */
  #tokenize(): number {
    const text = this.#text, N = this.#n, fin = this.#final;
    if (fin && this.#eof) return END;
    if (!fin && this.#pos >= N) return MORE;
    let I = this.#pos, nf = 0, eof = false, eol = false;
    const f = this.#fields;
    while (!eol && !eof) {
      const j = I;
      let t: string;
      if (text.charCodeAt(j) === QUOTE) {
        while (
          (I++ < N && text.charCodeAt(I) !== QUOTE) ||
          text.charCodeAt(++I) === QUOTE
        );
        const i = I;
        if (i >= N) {
          if (!fin) return MORE;
          eof = true;
        } else {
          const c = text.charCodeAt(I++);
          if (c === NEWLINE) eol = true;
          else if (c === RETURN) {
            if (!fin && I >= N) return MORE;
            eol = true;
            if (text.charCodeAt(I) === NEWLINE) ++I;
          }
        }
        t = text.slice(j + 1, i - 1).replace(/""/g, '"');
      } else {
        let end = -1;
        while (I < N) {
          const i = I++;
          const c = text.charCodeAt(i);
          if (c === NEWLINE) eol = true;
          else if (c === RETURN) {
            if (!fin && I >= N) return MORE;
            eol = true;
            if (text.charCodeAt(I) === NEWLINE) ++I;
          } else if (c !== COMMA) continue;
          end = i;
          break;
        }
        if (end < 0) {
          if (!fin) return MORE;
          eof = true;
          end = N;
        }
        t = text.slice(j, end);
      }
      f[nf++] = t;
    }
    this.#pos = I;
    if (eof) this.#eof = true;
    this.#nf = nf;
    return nf;
  }
}

function stamp(info: Deno.FileInfo): string {
  return `${info.size}:${info.mtime?.getTime() ?? 0}`;
}

/**
 * Parses a trace (CSV text with a header line naming the columns
 * `time_ns,stream,op,iova,size` in any order) into records.
 *
 * - `time_ns`: ns as a number, or a time with a unit ("2us"); within each
 *   stream times must not go backwards.
 * - `stream`: a whole number 0..2^20-1.
 * - `op`: `r`, `w`, `read` or `write` (any case).
 * - `iova`: decimal or `0x` hex, below 2^52.
 * - `size`: bytes (decimal or `0x` hex) or a size with a unit ("4KiB"), > 0.
 *
 * Blank lines are skipped. Every error is EINVAL with a message starting
 * `<where>:<line>: <column>: ...` (or `<where>:<line>: ...` for the shape of
 * a line). A scenario does not keep the records: see
 * {@linkcode scanTrace}.
 *
 * @param text the CSV text
 * @param where the file name used in error messages
 */
export function parseTrace(
  text: string,
  where: string,
  options: ParseTraceOptions = {},
): TraceRecord[] {
  for (const [arg, v] of [["text", text], ["where", where]] as const) {
    if (typeof v !== "string") {
      const got = v === null ? "null" : typeof v;
      fail(arg, `expected a string, got ${got} (parseTrace takes CSV text)`);
    }
  }
  return readAll(TraceReader.fromText(text, where, options), where);
}

function readAll(r: TraceReader, where: string): TraceRecord[] {
  const out: TraceRecord[] = [];
  const rec: MutableTraceRecord = {
    timeNs: 0,
    stream: 0,
    write: false,
    iova: 0,
    size: 0,
  };
  while (r.next(rec)) out.push({ ...rec });
  if (out.length === 0) {
    fail(`${where}:2`, "empty trace: no accesses after the header");
  }
  return out;
}

/**
 * Reads and parses a trace file ({@linkcode parseTrace}); a file that cannot
 * be read is EINVAL naming `where`.
 */
export function loadTrace(
  path: string,
  where: string = path,
  options: ParseTraceOptions = {},
): TraceRecord[] {
  return readAll(openTrace(path, where, options), where);
}

function openTrace(
  path: string,
  where: string,
  options: ParseTraceOptions,
): TraceReader {
  try {
    return TraceReader.open(path, where, options);
  } catch (e) {
    if (e instanceof IopfLabError) throw e;
    return fail(
      where,
      `cannot read the trace file ${JSON.stringify(path)}: ${
        fileErrorReason(e)
      }`,
    );
  }
}

/**
 * Validates a trace file in one streaming pass (the checks and messages of
 * {@linkcode parseTrace}) and returns its {@linkcode TraceSummary}: memory
 * stays bounded by the number of streams, whatever the number of rows.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scanTrace } from "./trace_file.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/t.csv`, "time_ns,stream,op,iova,size\n0,0,w,0x1000,8KiB\n5,1,r,0,64\n");
 * const s = scanTrace(`${dir}/t.csv`, "t.csv");
 * assert(s.rows === 2 && s.streams === 2 && s.hi === 0x3000 && s.pages === 3);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function scanTrace(
  path: string,
  where: string = path,
  options: ParseTraceOptions = {},
): TraceSummary {
  return summarizeTrace(openTrace(path, where, options), where);
}

/**
 * Reads the rows left in `reader` (validating each) into a
 * {@linkcode TraceSummary}, closing the file; no rows is EINVAL at
 * `where:2`.
 */
export function summarizeTrace(
  reader: TraceReader,
  where: string,
): TraceSummary {
  const fileStamp = reader.stamp;
  return summarize(reader, where, fileStamp);
}

/** The {@linkcode TraceSummary} of rows already in memory (stamp ""). */
export function summarizeRows(rows: readonly TraceRecord[]): TraceSummary {
  let i = 0;
  return summarize(
    {
      next(into: MutableTraceRecord): boolean {
        const r = rows[i++];
        if (r === undefined) return false;
        into.timeNs = r.timeNs;
        into.stream = r.stream;
        into.write = r.write;
        into.iova = r.iova;
        into.size = r.size;
        return true;
      },
    },
    undefined,
    "",
  );
}

function summarize(
  r: { next(into: MutableTraceRecord): boolean },
  where: string | undefined,
  fileStamp: string,
): TraceSummary {
  const rec: MutableTraceRecord = {
    timeNs: 0,
    stream: 0,
    write: false,
    iova: 0,
    size: 0,
  };
  const slot = new Map<number, number>();
  let counts = new Float64Array(16), first = new Float64Array(16);
  let rows = 0, lo = Infinity, hi = 0, pages = 0, bytes = 0;
  while (r.next(rec)) {
    rows++;
    if (rec.iova < lo) lo = rec.iova;
    if (rec.iova + rec.size > hi) hi = rec.iova + rec.size;
    pages += Math.ceil(rec.size / 4096);
    bytes += rec.size;
    let s = slot.get(rec.stream);
    if (s === undefined) {
      s = slot.size;
      slot.set(rec.stream, s);
      if (s === counts.length) {
        counts = grow(counts);
        first = grow(first);
      }
      first[s] = rec.timeNs;
    }
    counts[s]!++;
  }
  if (rows === 0 && where !== undefined) {
    fail(`${where}:2`, "empty trace: no accesses after the header");
  }
  return {
    rows,
    streams: slot.size,
    lo: rows === 0 ? 0 : lo,
    hi,
    pages,
    bytes,
    streamRows: counts.slice(0, slot.size),
    streamFirstNs: first.slice(0, slot.size),
    stamp: fileStamp,
  };
}

function grow(a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> {
  const b = new Float64Array(a.length * 2);
  b.set(a);
  return b;
}

/** A short reason for a failed file operation ("no such file"). */
export function fileErrorReason(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "is a directory";
  return e instanceof Error ? e.message : String(e);
}

function parseStream(v: string, where: string): number {
  const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!(n <= MAX_STREAM)) {
    fail(
      where,
      `expected a whole number from 0 to ${MAX_STREAM}, got ${
        JSON.stringify(v)
      }`,
    );
  }
  return n;
}

function parseOp(v: string, where: string): boolean {
  switch (v.toLowerCase()) {
    case "r":
    case "read":
      return false;
    case "w":
    case "write":
      return true;
  }
  return fail(
    where,
    `expected "r", "w", "read" or "write", got ${JSON.stringify(v)}`,
  );
}

function parseAddress(v: string, where: string): number {
  let n = NaN;
  if (/^0x[0-9a-f]+$/i.test(v)) n = parseInt(v.slice(2), 16);
  else if (/^[0-9]+$/.test(v)) n = Number(v);
  if (!(n < MAX_ADDRESS)) {
    fail(
      where,
      `expected an address like 0x1000 or 4096 below 2^52, got ${
        JSON.stringify(v)
      }`,
    );
  }
  return n;
}

function fail(where: string, message: string): never {
  throw new IopfLabError("EINVAL", `${where}: ${message}`, where);
}
