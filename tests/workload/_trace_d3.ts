/**
 * The trace parser before traces streamed (d3-dsv's csvParseRows over the
 * whole text): the oracle the streaming reader must agree with.
 *
 * @module
 */
import { csvParseRows } from "d3-dsv";
import { hex, IopfLabError } from "../../lib/sim/errors.ts";
import {
  formatSize,
  MAX_ADDRESS,
  parseSize,
  parseTime,
} from "../../lib/sim/units.ts";

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
 * a line).
 *
 * @param text the CSV text
 * @param where the file name used in error messages
 */
export function parseTrace(
  text: string,
  where: string,
  options: ParseTraceOptions = {},
): TraceRecord[] {
  const rows = csvParseRows(text);
  const header = rows[0];
  if (
    header === undefined || (header.length === 1 && header[0]!.trim() === "")
  ) {
    fail(
      `${where}:1`,
      `empty trace: expected the header line ${TRACE_COLUMNS.join(",")}`,
    );
  }
  const names = header.map((h) => h.trim().toLowerCase());
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
  const col = (name: string): number => names.indexOf(name);
  const [cTime, cStream, cOp, cIova, cSize] = TRACE_COLUMNS.map(col) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const out: TraceRecord[] = [];
  const lastTime = new Map<number, number>();
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r]!;
    const line = `${where}:${r + 1}`;
    if (row.length === 1 && row[0]!.trim() === "") continue; // blank line
    if (row.length !== names.length) {
      fail(line, `expected ${names.length} fields, got ${row.length}`);
    }
    const field = (c: number, name: string): string => {
      const v = row[c]!.trim();
      if (v === "") fail(`${line}: ${name}`, "missing value");
      return v;
    };
    const timeNs = parseTime(field(cTime, "time_ns"), `${line}: time_ns`);
    const stream = parseStream(field(cStream, "stream"), `${line}: stream`);
    const write = parseOp(field(cOp, "op"), `${line}: op`);
    const iova = parseAddress(field(cIova, "iova"), `${line}: iova`);
    const sizeText = field(cSize, "size");
    const size = /^0x/i.test(sizeText)
      ? parseAddress(sizeText, `${line}: size`)
      : parseSize(sizeText, `${line}: size`);
    if (size === 0) fail(`${line}: size`, "must be more than 0 bytes");
    if (iova + size > MAX_ADDRESS) {
      fail(`${line}: iova`, `${hex(iova)} + ${size} bytes goes beyond 2^52`);
    }
    if (options.memory !== undefined && iova + size > options.memory) {
      fail(
        `${line}: iova`,
        `${hex(iova)} + ${size} bytes goes beyond vm.memory (${
          formatSize(options.memory)
        })`,
      );
    }
    const prev = lastTime.get(stream);
    if (prev !== undefined && timeNs < prev) {
      fail(
        `${line}: time_ns`,
        `${timeNs} is before the previous access of stream ${stream} (${prev})`,
      );
    }
    lastTime.set(stream, timeNs);
    out.push({ timeNs, stream, write, iova, size });
  }
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
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    fail(
      where,
      `cannot read the trace file ${JSON.stringify(path)}: ${
        fileErrorReason(e)
      }`,
    );
  }
  return parseTrace(text, where, options);
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
