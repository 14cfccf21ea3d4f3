/**
 * Runs the experiment suite and writes the report: every experiment's
 * scenarios (and the supporting runs its analysis reads, such as density
 * runs) run on Web Workers as one sweep in suite order (runStored over
 * runSweepMixed, on one SweepPool); as each experiment's runs are in, its
 * analysis draws the figures and builds the tables, and the files go to the
 * output directory: `index.html` (figures inline), `<figure>.svg`,
 * `<figure>.png`, `<table>.csv`, `<experiment>-metrics.csv` (every metric of
 * every run) and `cost-profile.csv`. Progress goes to stderr. With a
 * results database (lib/results), a run whose scenario key and model
 * version are stored is not run again: its stored metrics (and series)
 * stand for it, and the files come out byte for byte the same.
 *
 * @module
 */
// @ts-types="@types/d3-dsv"
import { csvFormat } from "d3-dsv";
import { join } from "node:path";
import { writeFileAtomic } from "../sim/files.ts";
import { metricsToCsv } from "../experiment/csv.ts";
import type { Metrics } from "../experiment/metrics.ts";
import type { RunProgress } from "../experiment/run.ts";
import type { Scenario } from "../experiment/scenario.ts";
import {
  progressReporter,
  type RunResult,
  SweepPool,
  type SweepProgress,
} from "../experiment/sweep.ts";
import { runStored } from "../results/run.ts";
import type { ResultsDb } from "../results/store.ts";
import { COST_NAMES, describeCosts } from "../sim/costs.ts";
import {
  type Experiment,
  experimentScenarios,
  type RunOutput,
  supportingScenarios,
} from "./experiment.ts";
import { reportSuite } from "./suite.ts";
import {
  type HtmlExperiment,
  type HtmlFigure,
  type HtmlTable,
  renderHtml,
} from "./html.ts";
import type { Row } from "../plot/row.ts";
import { type ReportStamp, reportStamp, stampText } from "./stamp.ts";

/** The default output directory of the report. */
export const DEFAULT_OUT_DIR = "out/report";

/** PNG pixels per SVG pixel. */
export const PNG_SCALE = 2;

/** Options of {@linkcode runReport}. */
export interface RunReportOptions {
  /** Output directory (created if missing; files in it are overwritten). ["out/report"] */
  readonly out?: string;
  /** The reduced suite. [false] */
  readonly quick?: boolean;
  /** Workers per sweep; 0 runs on the calling thread. [navigator.hardwareConcurrency] */
  readonly workers?: number;
  /**
   * The workers to run on instead of a pool of its own (the caller closes
   * it); `workers` then defaults to its size. [a pool of `workers`, closed at the end]
   */
  readonly pool?: SweepPool;
  /** Only the experiments with these ids, in suite order. [all] */
  readonly only?: readonly string[];
  /** Where progress lines go (one per experiment). [stderr] */
  readonly log?: (line: string) => void;
  /** Progress per sweep point: a callback, true for stderr's default reporter, false for none. [true] */
  readonly progress?: boolean | ((p: SweepProgress) => void);
  /** The experiments to run instead of the built-in suite (for tests). */
  readonly experiments?: readonly Experiment[];
  /** The results database: stored runs are reused, new ones stored. [none: every run runs] */
  readonly db?: ResultsDb;
  /** With `db`, run every scenario even when stored (and store the new results). [false] */
  readonly fresh?: boolean;
  /**
   * Called as each run goes (runSweep's `onRunProgress`), with the run's
   * scenario; the outputs do not change. [none]
   */
  readonly onRunProgress?: (scenario: Scenario, progress: RunProgress) => void;
}

/** A figure written by the report. */
export interface WrittenFigure {
  /** File stem. */
  readonly id: string;
  /** Path of the SVG file. */
  readonly svg: string;
  /** Path of the PNG file. */
  readonly png: string;
  /** Width of the SVG in pixels. */
  readonly width: number;
  /** Height of the SVG in pixels. */
  readonly height: number;
  /** Width of the PNG in pixels. */
  readonly pngWidth: number;
  /** Height of the PNG in pixels. */
  readonly pngHeight: number;
}

/** What {@linkcode runReport} wrote. */
export interface ReportSummary {
  /** The output directory. */
  readonly dir: string;
  /** Path of index.html. */
  readonly index: string;
  /** Experiment ids, in order. */
  readonly experiments: readonly string[];
  /** Every figure. */
  readonly figures: readonly WrittenFigure[];
  /** Paths of every CSV file. */
  readonly tables: readonly string[];
  /** Simulated runs (stored ones included). */
  readonly runs: number;
  /** Of `runs`, how many came from the results database. */
  readonly reused: number;
  /** Wall-clock milliseconds. */
  readonly wallMs: number;
  /** The version and commit the page is stamped with. */
  readonly stamp: ReportStamp;
}

const INTRO = [
  "This report is produced by iopf-lab, a model of the Linux I/O page fault stack for VFIO passthrough: an Arm SMMUv3 (stream table, stage 1, stage 2 and nested translation, IOTLB, command, event and PRI queues, stall and resume), a PCIe device with ATS and PRI, the IOMMU core's IOPF queue, VFIO type1 (static pinning, the IOPF bitmap and fault handler, pre-map, the MMU notifier, nested fault forwarding to the guest) and the host memory manager, on a discrete-event simulator.",
  "Each section asks a question a user of VFIO passthrough asks (static pinning against I/O page faults), runs scenarios through the model, and answers with figures and tables. Every number comes out of the simulated mechanism, driven by the per-operation costs of the cost profile listed at the end; nothing is typed in by hand. The tables are tidy CSV files next to this page; each section lists the scenario files that ran, which `deno task sim` accepts as they are.",
];

/**
 * Runs the suite and writes the report into `options.out`. Throws the first
 * error of a run or of writing a file.
 */
export async function runReport(
  options: RunReportOptions = {},
): Promise<ReportSummary> {
  // One pool of workers for every sweep of the report: each worker starts
  // and warms up once, not once per experiment.
  const own = options.workers === 0 || options.pool !== undefined
    ? undefined
    : new SweepPool({
      ...(options.workers === undefined ? {} : { size: options.workers }),
    });
  try {
    return await writeReport(options, options.pool ?? own);
  } finally {
    own?.close();
  }
}

async function writeReport(
  options: RunReportOptions,
  pool: SweepPool | undefined,
): Promise<ReportSummary> {
  const t0 = performance.now();
  const dir = options.out ?? DEFAULT_OUT_DIR;
  const quick = options.quick ?? false;
  const log = options.log ?? ((line: string) => writeStderr(line + "\n"));
  const onProgress = options.progress === undefined || options.progress === true
    ? progressReporter()
    : options.progress === false
    ? undefined
    : options.progress;
  let suite = options.experiments ?? reportSuite({ quick });
  if (options.only) {
    const only = new Set(options.only);
    suite = suite.filter((e) => only.has(e.id));
  }
  await Deno.mkdir(dir, { recursive: true });

  const sections: HtmlExperiment[] = [];
  const figures: WrittenFigure[] = [];
  const tables: string[] = [];
  const usedIds = new Set<string>();
  // Every experiment's runs (its listed scenarios, then the supporting runs
  // its analysis reads) go to the workers as one sweep in suite order: a
  // worker done with the last runs of one experiment goes on with the next
  // one's while the other worker finishes, and each experiment is analysed
  // and written as soon as its own runs are in.
  const plans = suite.map((e) => ({
    e,
    scenarios: experimentScenarios(e),
    support: supportingScenarios(e),
  }));
  const points: Scenario[] = [];
  const series: boolean[] = [];
  const owner: number[] = [];
  const firstOf: number[] = [];
  for (const [x, p] of plans.entries()) {
    firstOf.push(points.length);
    for (const sc of p.scenarios) {
      points.push(sc);
      series.push(p.e.series);
      owner.push(x);
    }
    for (const sc of p.support) {
      points.push(sc);
      series.push(true);
      owner.push(x);
    }
  }
  const results = new Array<RunResult>(points.length);
  const waiting = plans.map((p) => p.scenarios.length + p.support.length);
  const reusedBy = plans.map(() => 0);
  const ready = plans.map(() => Promise.withResolvers<void>());
  for (const [x, r] of ready.entries()) {
    // A failed sweep rejects the experiments not yet written; only the
    // first one awaited reports it.
    r.promise.catch(() => {});
    if (waiting[x] === 0) r.resolve();
  }
  const abort = new AbortController();
  const sweep = runStored(points, {
    ...(options.workers === undefined ? {} : { workers: options.workers }),
    ...(pool ? { pool } : {}),
    ...(onProgress ? { onProgress } : {}),
    ...(options.onRunProgress
      ? {
        onRunProgress: (k: number, p: RunProgress) =>
          options.onRunProgress!(points[k]!, p),
      }
      : {}),
    series,
    signal: abort.signal,
    onStored: (k, r, stored) => {
      results[k] = r;
      const x = owner[k]!;
      // The count the log gives: the experiment's listed runs read back.
      if (stored && k < firstOf[x]! + plans[x]!.scenarios.length) {
        reusedBy[x]!++;
      }
      if (--waiting[x]! === 0) ready[x]!.resolve();
    },
    ...(options.db ? { db: options.db } : {}),
    ...(options.fresh ? { fresh: true } : {}),
  });
  sweep.catch((e) => {
    for (const r of ready) r.reject(e);
  });
  let runs = 0;
  let reused = 0;
  // The wall time of an experiment: from the previous one's runs being in
  // (or the start) to its own.
  let since = performance.now();
  try {
    for (let i = 0; i < suite.length; i++) {
      const { e, scenarios, support } = plans[i]!;
      log(
        `[report ${
          i + 1
        }/${suite.length}] ${e.id}: ${e.title} (${scenarios.length} runs)`,
      );
      await ready[i]!.promise;
      const base = firstOf[i]!;
      const outputs: RunOutput[] = scenarios.map((sc, k) => {
        const r = results[base + k]!;
        return {
          scenario: sc,
          metrics: r.metrics,
          series: e.series ? r.series : [],
          ...(e.series && r.vms ? { vms: r.vms } : {}),
        };
      });
      const supporting: RunOutput[] = support.map((sc, k) => {
        const r = results[base + scenarios.length + k]!;
        return {
          scenario: sc,
          metrics: r.metrics,
          series: r.series,
          ...(r.vms ? { vms: r.vms } : {}),
        };
      });
      const stored = { reused: reusedBy[i]! };
      runs += scenarios.length;
      reused += stored.reused;
      const now = performance.now();
      const wallSeconds = (now - since) / 1000;
      since = now;
      const result = e.analyse(outputs, supporting);

      const htmlFigures: HtmlFigure[] = [];
      for (const f of result.figures) {
        claim(usedIds, `figure ${f.id}`);
        const svgFile = `${f.id}.svg`;
        const pngFile = `${f.id}.png`;
        writeFileAtomic(join(dir, svgFile), f.figure.svg + "\n");
        const png = await f.figure.toPng({ scale: PNG_SCALE });
        writeFileAtomic(join(dir, pngFile), png);
        const size = pngSize(png);
        figures.push({
          id: f.id,
          svg: join(dir, svgFile),
          png: join(dir, pngFile),
          width: f.figure.width,
          height: f.figure.height,
          pngWidth: size.width,
          pngHeight: size.height,
        });
        htmlFigures.push({
          id: f.id,
          svg: f.figure.svg,
          alt: f.alt,
          svgFile,
          pngFile,
        });
      }
      const htmlTables: HtmlTable[] = [];
      for (const t of result.tables) {
        claim(usedIds, `table ${t.id}`);
        const csvFile = `${t.id}.csv`;
        writeFileAtomic(join(dir, csvFile), rowsToCsv(t.rows));
        tables.push(join(dir, csvFile));
        htmlTables.push({ id: t.id, title: t.title, csvFile, rows: t.rows });
      }
      const metricsId = `${e.id}-metrics`;
      claim(usedIds, `table ${metricsId}`);
      const metrics: Metrics[] = outputs.map((o) => o.metrics);
      writeFileAtomic(
        join(dir, `${metricsId}.csv`),
        metricsToCsv(metrics),
      );
      tables.push(join(dir, `${metricsId}.csv`));
      htmlTables.push({
        id: metricsId,
        title: "Every metric of every run (flattened; one row per run)",
        csvFile: `${metricsId}.csv`,
        rows: metrics.map((m) => ({
          name: m.name,
          setupNs: m.setupNs,
          runNs: m.runNs,
          throughputBytesPerSec: m.throughputBytesPerSec,
          "faults.total": m.faults.total,
          "faultLatencyNs.mean": m.faultLatencyNs.mean,
          dmaErrors: m.dmaErrors,
        })),
        previewRows: 0,
      });
      sections.push({
        id: e.id,
        title: e.title,
        question: e.question,
        shows: e.shows,
        findings: result.findings,
        figures: htmlFigures,
        tables: htmlTables,
        parameters: e.sets.map((s) => ({
          json: JSON.stringify(s.json, null, 2),
        })),
        runs: scenarios.length,
        wallSeconds,
      });
      log(
        `[report ${i + 1}/${suite.length}] ${e.id}: done in ${
          wallSeconds.toFixed(1)
        } s (${result.figures.length} figure(s), ${
          result.tables.length + 1
        } table(s)${
          options.db
            ? `; ${stored.reused} of ${scenarios.length} runs from ${options.db.path}`
            : ""
        })`,
      );
    }
  } catch (e) {
    abort.abort(e);
    throw e;
  }
  await sweep;

  const costs = describeCosts();
  const costRows = COST_NAMES.map((name) => ({
    name,
    value: costs[name].value,
    unit: costs[name].unit,
    source: costs[name].source,
  }));
  writeFileAtomic(join(dir, "cost-profile.csv"), rowsToCsv(costRows));
  tables.push(join(dir, "cost-profile.csv"));
  const wallMs = performance.now() - t0;
  const made = reportStamp();
  const html = renderHtml({
    stamp: stampText(made),
    title: quick
      ? "iopf-lab: static pinning vs I/O page faults (quick suite)"
      : "iopf-lab: static pinning vs I/O page faults",
    intro: INTRO,
    experiments: sections,
    costs: costRows,
    costsCsv: "cost-profile.csv",
    footer: `Made by deno task report${
      quick ? " --quick" : ""
    }: ${runs} simulated runs${
      reused > 0 ? ` (${reused} of them stored results reused)` : ""
    } in ${(wallMs / 1000).toFixed(1)} s of wall-clock time.`,
  });
  const index = join(dir, "index.html");
  writeFileAtomic(index, html);
  log(
    `[report] wrote ${index}: ${sections.length} experiments, ${figures.length} figures, ${tables.length} CSV files, ${runs} runs (${reused} reused) in ${
      (wallMs / 1000).toFixed(1)
    } s`,
  );
  return {
    dir,
    index,
    experiments: sections.map((s) => s.id),
    figures,
    tables,
    runs,
    reused,
    wallMs,
    stamp: made,
  };
}

/**
 * Tidy rows as CSV through d3-dsv: the columns are every row's keys in
 * first-seen order; booleans are written as true/false.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rowsToCsv } from "./report.ts";
 * assert(rowsToCsv([{ a: 1, b: "x" }, { a: 2 }]) === "a,b\n1,x\n2,");
 * ```
 */
export function rowsToCsv(rows: readonly Row[]): string {
  const columns: string[] = [];
  const seen = new Set<string>();
  for (const r of rows) {
    for (const k of Object.keys(r)) {
      if (!seen.has(k)) {
        seen.add(k);
        columns.push(k);
      }
    }
  }
  const plain = rows.map((r) => {
    const o: Record<string, string | number> = {};
    for (const [k, v] of Object.entries(r)) {
      o[k] = typeof v === "number" ? v : v === undefined ? "" : String(v);
    }
    return o;
  });
  return csvFormat(plain, columns);
}

/**
 * Width and height of a PNG from its IHDR chunk.
 *
 * @throws {Error} when the bytes are not a PNG
 */
export function pngSize(png: Uint8Array): { width: number; height: number } {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  const ihdr = String.fromCharCode(...png.subarray(12, 16));
  if (png.length < 24 || sig.some((b, i) => png[i] !== b) || ihdr !== "IHDR") {
    throw new Error("Cannot read the PNG size: not a PNG (bad signature)");
  }
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

function claim(used: Set<string>, what: string): void {
  if (used.has(what)) {
    throw new Error(
      `Cannot write the report: two files are named after ${what}`,
    );
  }
  used.add(what);
}

const encoder = new TextEncoder();

function writeStderr(text: string): void {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
}
