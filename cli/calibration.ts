/**
 * `deno task calibration`: runs the model for every published figure of
 * data/calibration.json and prints the table (figure, source, fitted or
 * validated, published value, model value, error). `--write` also writes
 * docs/CALIBRATION.md (or the path given after it).
 *
 * @module
 */
import {
  calibrationMarkdown,
  calibrationText,
  loadCalibration,
  runCalibration,
} from "../lib/analysis/calibration.ts";
import { writeFileAtomic } from "../lib/sim/files.ts";

const ROOT = new URL("../", import.meta.url);

/**
 * The folders of lib/ whose code decides the model's numbers (the layers a
 * scenario runs through), and the files of data/ the table reads.
 */
const INPUT_DIRS = [
  "sim",
  "pgtable",
  "mm",
  "iommu",
  "smmu",
  "device",
  "pci",
  "vfio",
  "vmm",
  "guest",
  "coiommu",
  "workload",
  "experiment",
];
const INPUT_FILES = [
  "data/calibration.json",
  "data/costs/default.json",
  "lib/analysis/calibration.ts",
];

function walk(dir: URL, out: string[]): void {
  for (const e of Deno.readDirSync(dir)) {
    const u = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory) walk(u, out);
    else if (e.name.endsWith(".ts")) out.push(u.href.slice(ROOT.href.length));
  }
}

/**
 * SHA-256 over every input of the calibration (the table, the profile and
 * the model's sources, by path): docs/CALIBRATION.md carries the value it
 * was computed from, so a check can tell a current doc without rerunning.
 */
export async function calibrationFingerprint(): Promise<string> {
  const paths = [...INPUT_FILES];
  for (const d of INPUT_DIRS) walk(new URL(`lib/${d}/`, ROOT), paths);
  paths.sort();
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (const p of paths) {
    parts.push(enc.encode(`${p}\0`), Deno.readFileSync(new URL(p, ROOT)));
  }
  const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...hash].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const USAGE = `usage: deno task calibration [--write [path]]

Runs the model for every published figure of data/calibration.json and
prints figure, source, fitted or validated, published, model, error.

options:
  --write [PATH]  also write the table as Markdown [docs/CALIBRATION.md]
  -h, --help      print this and exit

example:
  deno task calibration --write /tmp/calibration.md`;

async function main(args: string[]): Promise<number> {
  let write: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--write") {
      const next = args[i + 1];
      write = next && !next.startsWith("-")
        ? (i++, next)
        : "docs/CALIBRATION.md";
    } else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      return 0;
    } else {
      console.error(`calibration: unknown argument ${a}\n${USAGE}`);
      return 2;
    }
  }
  const table = loadCalibration();
  const results = runCalibration(table);
  console.log(calibrationText(results));
  if (write) {
    const fp = await calibrationFingerprint();
    writeFileAtomic(write, calibrationMarkdown(results, table, fp));
    console.log(`wrote ${write}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
