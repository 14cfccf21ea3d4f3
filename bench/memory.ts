/**
 * `deno task bench:memory`: peak memory of the model for a few cases, each
 * run in a fresh `deno run` subprocess that reports its peak resident set
 * size (VmHWM from /proc/self/status; `Deno.memoryUsage().rss` at the end
 * where /proc is missing) once the case has run. Prints a table with the
 * targets and writes out/memory.json.
 *
 *     deno task bench:memory            # every case
 *     deno task bench:memory pin        # cases whose name contains "pin"
 *
 * The floor case (the runtime with the library loaded, nothing run) shows
 * what any case pays before it starts. The two 4 KiB static pins give the
 * model's state per pinned page: the peak RSS between them over the pages
 * between them (issue 16's target: at most 6 bytes, so that a 4 TiB guest
 * on 4 KiB pages boots in under 8 GiB).
 *
 * @module
 */
import { parseScenario, runScenario } from "../lib/experiment/mod.ts";
import { formatNs } from "./compare.ts";
import { startMachine, startVm } from "./_machines.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** One memory case. */
interface MemoryCase {
  /** Name (also the `--case` argument). */
  readonly name: string;
  /** The target peak RSS in bytes, if the issue set one. */
  readonly target?: number;
  /** Runs the case (in the subprocess); returns a one-line note. */
  run(): string;
}

const CASES: readonly MemoryCase[] = [
  {
    name: "floor: runtime + library",
    run: () => "nothing run",
  },
  {
    name: "iopf boot 1TiB",
    run() {
      const m = startMachine("1TiB", "4k", "iopf");
      startVm(m);
      return `setup ${formatNs(m.sim.now)} simulated`;
    },
  },
  {
    name: "static pin 1TiB hugetlb-1g",
    run() {
      const m = startMachine("1TiB", "hugetlb-1g", "static-pin");
      startVm(m);
      return `${m.vms[0]!.mm.pinnedPages / 2 ** 18} GiB pinned`;
    },
  },
  {
    name: "static pin 16GiB 4k",
    run() {
      const m = startMachine("16GiB", "4k", "static-pin");
      startVm(m);
      return `${m.vms[0]!.mm.pinnedPages} pages pinned`;
    },
  },
  {
    name: "static pin 64GiB 4k",
    target: GiB,
    run() {
      const m = startMachine("64GiB", "4k", "static-pin");
      startVm(m);
      return `${m.vms[0]!.mm.pinnedPages} pages pinned`;
    },
  },
  {
    name: "iopf 1TiB guest touching 1GiB",
    target: 300 * MiB,
    run() {
      // A whole scenario run (sanitizer, series, metrics): an accelerator
      // reads 512 fresh 1 MiB buffers and writes 512 more (1 GiB touched).
      const m = runScenario(parseScenario({
        name: "iopf-1tib-touch-1gib",
        host: { memory: "1280GiB", backing: "4k" },
        vm: { memory: "1TiB" },
        // Only the device touches guest RAM (the guest's default, 50 %,
        // would populate 512 GiB before the workload starts).
        guest: { touchedMemory: "0%" },
        dma: { mode: "iopf" },
        workload: {
          kind: "accelerator",
          messageSize: "1MiB",
          messages: 512,
          reuseBuffers: false,
        },
      }));
      return `${m.faults.total} faults, ${
        (m.hostMemoryPeakBytes / GiB).toFixed(2)
      } GiB populated`;
    },
  },
  {
    // Measured when traces began to stream (/usr/bin/time, the whole
    // process): 135 MiB peak RSS running it on the main thread, 222 MiB
    // through `deno task sim` (the run goes to a worker so Ctrl-C is heard);
    // the trace was parsed into objects and kept in the Scenario before
    // (4 GiB; 272 -> 116 MiB measured on a 3*10^5-row trace).
    name: "trace of 10^7 rows, streamed",
    target: 500 * MiB,
    run() {
      const dir = Deno.makeTempDirSync({ prefix: "iopf-trace-" });
      try {
        const rows = writeBigTrace(`${dir}/trace.csv`, 1e7);
        const m = runScenario(parseScenario({
          name: "trace-1e7-rows",
          vm: { memory: "1GiB" },
          dma: { mode: "static-pin" },
          workload: { kind: "trace", file: "trace.csv" },
        }, { baseDir: dir }));
        return `${rows} rows, ${(m.dmaBytes / GiB).toFixed(1)} GiB moved`;
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    },
  },
];

/**
 * Writes a time-sorted trace of `rows` 4 KiB accesses by 16 streams over
 * 256 MiB of guest RAM (about 29 bytes a row), in 1 MiB chunks.
 */
function writeBigTrace(path: string, rows: number): number {
  const f = Deno.openSync(path, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  let buf = "time_ns,stream,op,iova,size\n";
  for (let i = 0; i < rows; i++) {
    const page = (i * 7919) % 65536;
    buf += `${Math.floor(i / 16) * 1000},${i % 16},${
      i % 3 === 0 ? "w" : "r"
    },0x${(page * 4096).toString(16)},4096\n`;
    if (buf.length > MiB) {
      f.writeSync(enc.encode(buf));
      buf = "";
    }
  }
  f.writeSync(enc.encode(buf));
  f.close();
  return rows;
}

/** Most bytes of peak RSS per pinned 4 KiB page between the two 4k pins. */
const MAX_BYTES_PER_PAGE = 6;

/** The line on the 4 KiB static pin's bytes per page, if both pins ran. */
function perPageSlope(results: readonly CaseResult[]): string | undefined {
  const a = results.find((r) => r.name === "static pin 16GiB 4k");
  const b = results.find((r) => r.name === "static pin 64GiB 4k");
  if (!a || !b) return undefined;
  const pages = (64 - 16) * GiB / 4096;
  const bpp = (b.peakRssBytes - a.peakRssBytes) / pages;
  return `4k static pin, 16 -> 64 GiB: ${
    bpp.toFixed(2)
  } B of peak RSS per page (target <= ${MAX_BYTES_PER_PAGE}: ${
    bpp <= MAX_BYTES_PER_PAGE ? "yes" : "NO"
  })`;
}

/** What a case subprocess reports (one JSON line on stdout). */
interface CaseResult {
  readonly name: string;
  readonly wallMs: number;
  readonly peakRssBytes: number;
  readonly source: "VmHWM" | "rss";
  readonly note: string;
}

function peakRss(): { bytes: number; source: "VmHWM" | "rss" } {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const m = status.match(/^VmHWM:\s+(\d+)\s+kB/m);
    if (m) return { bytes: Number(m[1]) * 1024, source: "VmHWM" };
  } catch {
    // no /proc: fall through
  }
  return { bytes: Deno.memoryUsage().rss, source: "rss" };
}

function runCase(name: string): CaseResult {
  const c = CASES.find((x) => x.name === name);
  if (!c) throw new Error(`unknown case ${name}`);
  const t0 = performance.now();
  const note = c.run();
  const wallMs = performance.now() - t0;
  const { bytes, source } = peakRss();
  return { name, wallMs, peakRssBytes: bytes, source, note };
}

async function spawnCase(name: string): Promise<CaseResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    // --allow-all: Deno lets a process read its /proc/self/status only then.
    args: [
      "run",
      "--allow-all",
      new URL(import.meta.url).pathname,
      "--case",
      name,
    ],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) throw new Error(`case "${name}" failed:\n${text}`);
  return JSON.parse(text.split("\n").at(-1)!) as CaseResult;
}

function table(results: readonly CaseResult[]): string {
  const header = ["case", "wall", "peak RSS", "target", "within", "note"];
  const rows = results.map((r) => {
    const t = CASES.find((c) => c.name === r.name)?.target;
    return [
      r.name,
      formatNs(r.wallMs * 1e6),
      `${(r.peakRssBytes / MiB).toFixed(0)} MiB`,
      t === undefined
        ? "-"
        : `< ${t >= GiB ? `${t / GiB} GiB` : `${t / MiB} MiB`}`,
      t === undefined ? "-" : r.peakRssBytes < t ? "yes" : "NO",
      r.note,
    ];
  });
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i]!.length))
  );
  const line = (cells: string[]) =>
    "| " + cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ") + " |";
  return [
    line(header),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
  ]
    .join("\n");
}

/** What `deno task bench:memory --help` prints. */
export const MEMORY_HELP = `usage: deno task bench:memory [WORD...]

Runs each memory case in a fresh process and prints its peak resident set size
beside its target; writes out/memory.json.

options:
  WORD           only the cases whose name contains WORD (cases: ${
  CASES.map((c) => c.name).join(", ")
})
  -h, --help     print this and exit

example:
  deno task bench:memory pin
`;

if (import.meta.main) {
  const args = Deno.args;
  const k = args.indexOf("--case");
  const bad = args.find((a) => a.startsWith("-") && a !== "--case");
  if (args.includes("--help") || args.includes("-h")) {
    console.log(MEMORY_HELP);
  } else if (bad !== undefined) {
    console.error(`bench:memory: unknown option ${bad} (--help lists them)`);
    Deno.exit(2);
  } else if (k >= 0) {
    console.log(JSON.stringify(runCase(args[k + 1] ?? "")));
  } else {
    const cases = CASES.filter((c) =>
      args.length === 0 || args.some((w) => c.name.includes(w))
    );
    const results: CaseResult[] = [];
    for (const c of cases) {
      console.error(`[memory] ${c.name} ...`);
      results.push(await spawnCase(c.name));
    }
    console.log(table(results));
    const slope = perPageSlope(results);
    if (slope !== undefined) console.log(slope);
    console.log(
      `peak RSS from ${
        results[0]?.source ?? "VmHWM"
      } of a fresh process per case (wall is that process's run of the case)`,
    );
    Deno.mkdirSync("out", { recursive: true });
    Deno.writeTextFileSync(
      "out/memory.json",
      JSON.stringify(results, null, 2) + "\n",
    );
  }
}
