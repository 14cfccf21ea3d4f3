/**
 * Writes the sample DMA trace `data/traces/accelerator_two_phase.csv`: a
 * seeded, synthetic access pattern of a compression accelerator (see
 * README.md in this folder). It is not a recording from real hardware.
 *
 *     deno run --allow-write data/traces/generate.ts [OUT.csv]
 *
 * The same seed and options always give the same file, byte for byte.
 *
 * @module
 */
import { Rng } from "../../lib/sim/rng.ts";
import type { TraceRecord } from "../../lib/workload/trace_file.ts";

/** Options of {@linkcode generateTrace}; every field has the sample's value as default. */
export interface GenerateTraceOptions {
  /** Seed of the random choices. [2021] */
  readonly seed?: number;
  /** Jobs (compression requests); the buffers move after half of them. [600] */
  readonly jobs?: number;
  /** Mean gap between job submissions in ns (exponential). [20000] */
  readonly meanGapNs?: number;
  /** Bytes read per job (input buffer). [65536] */
  readonly inputBytes?: number;
  /** Bytes written per job (output buffer). [32768] */
  readonly outputBytes?: number;
  /** Input (and output) buffers in each phase's pool. [16] */
  readonly buffers?: number;
}

/** The descriptor ring: 256 descriptors of 64 bytes at 1 MiB. */
const RING = { base: 0x100000, entries: 256, size: 64 };
/** The completion ring: 256 records of 64 bytes at 2 MiB. */
const COMPLETIONS = { base: 0x200000, entries: 256, size: 64 };
/** Where each phase's input and output buffer pools start (guest-physical). */
const PHASES = [
  { input: 0x2000000, output: 0x3000000 }, // 32 MiB, 48 MiB
  { input: 0x6000000, output: 0x7000000 }, // 96 MiB, 112 MiB
];

/**
 * The sample trace as records, all on stream 0 (no PASID: the default
 * single-stage setup has no substreams, and a replay issues one stream's
 * accesses in order, each after the previous one completed). Each job, at
 * its submission time, reads its 64-byte descriptor from the descriptor
 * ring, reads an input buffer, writes an output buffer (both picked at
 * random from the current phase's pool) and writes a 64-byte completion
 * record. After half the jobs the pools move elsewhere in guest RAM, as
 * when the guest application restarts and allocates new buffers.
 */
export function generateTrace(
  options: GenerateTraceOptions = {},
): TraceRecord[] {
  const rng = new Rng(options.seed ?? 2021);
  const jobs = options.jobs ?? 600;
  const meanGap = options.meanGapNs ?? 20000;
  const input = options.inputBytes ?? 65536;
  const output = options.outputBytes ?? 32768;
  const buffers = options.buffers ?? 16;
  const rows: TraceRecord[] = [];
  let t = 0;
  for (let j = 0; j < jobs; j++) {
    t += Math.round(rng.exponential(meanGap));
    const phase = PHASES[j < jobs / 2 ? 0 : 1]!;
    const desc = RING.base + (j % RING.entries) * RING.size;
    const slot = rng.int(buffers);
    rows.push(
      { timeNs: t, stream: 0, write: false, iova: desc, size: RING.size },
      {
        timeNs: t,
        stream: 0,
        write: false,
        iova: phase.input + slot * input,
        size: input,
      },
      {
        timeNs: t,
        stream: 0,
        write: true,
        iova: phase.output + slot * output,
        size: output,
      },
      {
        timeNs: t,
        stream: 0,
        write: true,
        iova: COMPLETIONS.base + (j % COMPLETIONS.entries) * COMPLETIONS.size,
        size: COMPLETIONS.size,
      },
    );
  }
  return rows;
}

/** Formats records as trace CSV (`time_ns,stream,op,iova,size`, addresses in hex). */
export function formatTraceCsv(rows: readonly TraceRecord[]): string {
  const lines = ["time_ns,stream,op,iova,size"];
  for (const r of rows) {
    lines.push(
      `${r.timeNs},${r.stream},${r.write ? "w" : "r"},0x${
        r.iova.toString(16)
      },${r.size}`,
    );
  }
  return lines.join("\n") + "\n";
}

/** Where the sample trace lives. */
export const SAMPLE_TRACE: URL = new URL(
  "./accelerator_two_phase.csv",
  import.meta.url,
);

if (import.meta.main) {
  const out = Deno.args[0] ?? SAMPLE_TRACE;
  const rows = generateTrace();
  await Deno.writeTextFile(out, formatTraceCsv(rows));
  console.error(
    `wrote ${rows.length} accesses to ${
      out instanceof URL ? out.pathname : out
    }`,
  );
}
