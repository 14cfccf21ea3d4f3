/**
 * The built-in experiment suite of `deno task report`: each experiment is a
 * question a user asks, a set of scenarios that the real model runs, and an
 * analysis that turns the runs' metrics and time series into tidy tables,
 * figures and a few sentences of findings. No number is typed in: every
 * value in a table or a figure is read off a simulated run (or, for the
 * fault latency breakdown, priced from the cost profile and closed by the
 * measured total).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { experimentScenarios, reportSuite } from "./experiments.ts";
 * const suite = reportSuite({ quick: true });
 * assert.equal(suite.length, 8);
 * assert(experimentScenarios(suite[0]!).every((s) => s.workload.kind === "boot"));
 * ```
 *
 * @module
 */
import {
  formatRate,
  type Metrics,
  type SeriesRow,
} from "../experiment/metrics.ts";
import {
  expandSweep,
  type JsonValue,
  parseScenario,
  type Scenario,
} from "../experiment/scenario.ts";
import { barChart, type Figure } from "../plot/mod.ts";
import { loadCostProfile } from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import { formatSize, formatTime, PAGE_SIZE, parseSize } from "../sim/units.ts";
import { facetLines, stackedBars } from "./_charts.ts";
import { alternatives } from "./alternatives.ts";
import {
  BREAKDOWN_SEGMENTS,
  breakdownInput,
  latencyBreakdown,
  REMAINDER,
  segmentTotals,
} from "./breakdown.ts";
import type { TableRow } from "./html.ts";

/** One simulated run as the analyses see it. */
export interface RunOutput {
  /** The scenario that ran (a sweep point). */
  readonly scenario: Scenario;
  /** Its metrics. */
  readonly metrics: Metrics;
  /** Its time series (empty unless the experiment records series). */
  readonly series: readonly SeriesRow[];
}

/** A figure of the report. */
export interface ReportFigure {
  /** File stem, unique in the report ("start-time"): `<id>.svg`, `<id>.png`. */
  readonly id: string;
  /** The drawn figure. */
  readonly figure: Figure;
  /** A one-line text alternative. */
  readonly alt: string;
}

/** A table of the report: tidy rows, written as `<id>.csv`. */
export interface ReportTable {
  /** File stem, unique in the report. */
  readonly id: string;
  /** What the table holds. */
  readonly title: string;
  /** The rows (plain records of numbers and strings). */
  readonly rows: readonly TableRow[];
}

/** What an analysis produces. */
export interface ExperimentResult {
  /** Figures, in reading order. */
  readonly figures: readonly ReportFigure[];
  /** Tables, in reading order (the first is the figure's data). */
  readonly tables: readonly ReportTable[];
  /** Sentences on what the runs showed, with the numbers they showed. */
  readonly findings: readonly string[];
}

/** A scenario file (with a sweep) an experiment runs. */
export interface ScenarioSet {
  /** The scenario JSON as a user would write it (shared/INTERFACE.md). */
  readonly json: Readonly<Record<string, JsonValue>>;
}

/** One experiment of the suite. */
export interface Experiment {
  /** Identifier and file stem ("start-time"). */
  readonly id: string;
  /** Section title. */
  readonly title: string;
  /** The question the experiment answers. */
  readonly question: string;
  /** What the figures show (how to read them). */
  readonly shows: string;
  /** The scenarios it runs. */
  readonly sets: readonly ScenarioSet[];
  /** Whether the runs record time series. */
  readonly series: boolean;
  /** Turns the runs (in the order of {@linkcode experimentScenarios}) into figures, tables and findings. */
  analyse(runs: readonly RunOutput[]): ExperimentResult;
}

/** Options of {@linkcode reportSuite}. */
export interface SuiteOptions {
  /** The reduced suite: fewer and smaller points (well under a minute on two cores). [false] */
  readonly quick?: boolean;
}

/** Every scenario point an experiment runs, in order: each set parsed and expanded. */
export function experimentScenarios(e: Experiment): Scenario[] {
  return e.sets.flatMap((set) => expandSweep(parseScenario(set.json)));
}

/** The eight experiments of the report, full or quick. */
export function reportSuite(options: SuiteOptions = {}): Experiment[] {
  const quick = options.quick ?? false;
  return [
    startTime(quick),
    faultLatency(quick),
    acceleratorSlowdown(quick),
    rampUp(quick),
    priQueue(quick),
    notifierMemory(quick),
    lazyInvalidation(quick),
    alternatives(quick),
  ];
}

// ---------------------------------------------------------------------------
// Shared helpers

const GiB = 2 ** 30;

function count(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function pct(x: number): string {
  return `${(x * 100).toFixed(x < 0.1 ? 1 : 0)} %`;
}

function times(x: number): string {
  return x >= 100
    ? `${x.toFixed(0)}×`
    : x >= 10
    ? `${x.toFixed(1)}×`
    : `${x.toFixed(2)}×`;
}

function byKey<T>(items: readonly T[], key: (t: T) => string): Map<string, T> {
  const m = new Map<string, T>();
  for (const t of items) m.set(key(t), t);
  return m;
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot analyse the report: ${what} is missing from the runs`,
    );
  }
  return v;
}

function maxBy<T>(items: readonly T[], f: (t: T) => number): T | undefined {
  let best: T | undefined;
  for (const t of items) if (best === undefined || f(t) > f(best)) best = t;
  return best;
}

const BACKING_LABEL: Readonly<Record<string, string>> = {
  "4k": "4 KiB pages",
  "thp": "THP",
  "hugetlb-2m": "hugetlb 2 MiB",
  "hugetlb-1g": "hugetlb 1 GiB",
};

// ---------------------------------------------------------------------------
// 1. VM start time and locked memory against guest size

const START_CONFIGS = [
  "static pin",
  "static pin + prefault",
  "IOPF",
  "IOPF + prefault",
] as const;

function startConfig(s: Scenario): string {
  const mode = s.dma.mode === "static-pin" ? "static pin" : "IOPF";
  return s.host.prefault ? `${mode} + prefault` : mode;
}

function startTime(quick: boolean): Experiment {
  const small = quick
    ? ["4GiB", "16GiB"]
    : ["4GiB", "16GiB", "64GiB", "256GiB"];
  const huge = quick
    ? ["4GiB", "64GiB", "1TiB"]
    : ["4GiB", "16GiB", "64GiB", "256GiB", "1TiB"];
  const hugeBackings = quick ? ["hugetlb-1g"] : ["hugetlb-2m", "hugetlb-1g"];
  const axes = {
    "dma.mode": ["static-pin", "iopf"],
    "host.prefault": [false, true],
  };
  const sets: ScenarioSet[] = [{
    json: {
      name: "start-4k",
      host: { memory: "512GiB", backing: "4k", prefaultThreads: 16 },
      workload: { kind: "boot" },
      sweep: { "vm.memory": small, ...axes },
    },
  }];
  for (const backing of hugeBackings) {
    sets.push({
      json: {
        name: `start-${backing}`,
        host: { memory: "2TiB", backing, prefaultThreads: 16 },
        workload: { kind: "boot" },
        sweep: { "vm.memory": huge, ...axes },
      },
    });
  }
  return {
    id: "start-time",
    title: "VM start time and locked memory against guest size",
    question:
      "How long does a VM with an assigned device take to start, and how much memory does it lock, as the guest grows — with static pinning and with IOPF, with and without prefaulting guest RAM?",
    shows:
      "Each point is one VM start (workload \"boot\": VFIO sets up guest RAM, no DMA). Start time is from VM start until guest RAM is mapped for DMA (static pinning) or IOPF is enabled, and includes QEMU's prefault (-mem-prealloc with 16 prealloc threads, as in the calibration measurement) when it is on. The second figure shows what is locked against RLIMIT_MEMLOCK and what host RAM is populated at that moment, on a symmetric-log axis so that IOPF's zero bytes are drawn at the bottom.",
    sets,
    series: false,
    analyse(runs) {
      const rows = runs.map(({ scenario: s, metrics: m }) => ({
        backing: BACKING_LABEL[s.host.backing] ?? s.host.backing,
        guestMemoryBytes: s.vm.memory,
        configuration: startConfig(s),
        mode: s.dma.mode,
        prefault: s.host.prefault,
        setupNs: m.setupNs,
        lockedBytesPeak: m.lockedBytesPeak,
        hostMemoryPeakBytes: m.hostMemoryPeakBytes,
        pinnedPagesPeak: m.pinnedPagesPeak,
        vmsFailed: m.extra?.vmsFailed ?? 0,
      }));
      const backings = [...new Set(rows.map((r) => r.backing))];
      const ticks = [...new Set(rows.map((r) => r.guestMemoryBytes))];
      const startFig = facetLines(rows, {
        x: "guestMemoryBytes",
        y: "setupNs",
        color: "configuration",
        colorDomain: START_CONFIGS,
        fx: "backing",
        fxDomain: backings,
        dashed: ["static pin + prefault", "IOPF + prefault"],
        xScale: "log",
        yScale: "log",
        xFormat: "size",
        xTicks: ticks,
        xLabel: "guest RAM",
        yLabel: "VM start time",
        caption:
          "Dashed: with prefault (QEMU -mem-prealloc before VFIO maps guest RAM).",
        dots: true,
        title: "VM start time against guest size",
        subtitle:
          "Static pinning faults in, zeroes and pins every page before the guest runs; IOPF only allocates the fault bitmap",
        width: backings.length > 2 ? 900 : 720,
      });
      const memRows = rows.flatMap((r) => [
        {
          ...r,
          quantity: "locked",
          bytes: r.lockedBytesPeak,
        },
        { ...r, quantity: "populated", bytes: r.hostMemoryPeakBytes },
      ]);
      const memFig = facetLines(memRows, {
        x: "guestMemoryBytes",
        y: "bytes",
        color: "configuration",
        colorDomain: START_CONFIGS,
        fx: "backing",
        fxDomain: backings,
        fy: "quantity",
        fyDomain: ["locked", "populated"],
        dashed: ["static pin + prefault", "IOPF + prefault"],
        xScale: "log",
        yScale: "symlog",
        xFormat: "size",
        yFormat: "size",
        xTicks: ticks,
        yTicks: [0, ...ticks],
        symlogConstant: GiB,
        xLabel: "guest RAM",
        yLabel: "memory at VM start",
        dots: true,
        title: "Locked and populated memory at VM start",
        caption:
          "Locked: charged against RLIMIT_MEMLOCK. Populated: host RAM faulted in for the guest. Symmetric-log axis; dashed: with prefault.",
        subtitle:
          "Static pinning locks all guest RAM; IOPF locks nothing until the device touches it",
        width: backings.length > 2 ? 900 : 720,
        height: 480,
      });
      const findings: string[] = [];
      for (const b of backings) {
        const mine = rows.filter((r) => r.backing === b);
        const top = Math.max(...mine.map((r) => r.guestMemoryBytes));
        const at = byKey(
          mine.filter((r) => r.guestMemoryBytes === top),
          (r) => r.configuration,
        );
        const st = need(at.get("static pin"), `${b} static pin`);
        const io = need(at.get("IOPF"), `${b} IOPF`);
        const stp = need(at.get("static pin + prefault"), `${b} prefault`);
        const same = Math.abs(stp.setupNs - st.setupNs) <=
          0.05 * st.setupNs;
        findings.push(
          `${b}, ${formatSize(top)} guest: static pinning starts in ${
            formatTime(st.setupNs)
          } and locks ${formatSize(st.lockedBytesPeak)}; IOPF starts in ${
            formatTime(io.setupNs)
          } (${times(st.setupNs / Math.max(1, io.setupNs))} faster) and locks ${
            formatSize(io.lockedBytesPeak)
          }. With prefault the static start takes ${formatTime(stp.setupNs)}${
            same
              ? ", about the same: the zeroing moves into QEMU's prefault (one thread) rather than going away"
              : ""
          }.`,
        );
      }
      const failed = rows.filter((r) => r.vmsFailed > 0);
      if (failed.length > 0) {
        findings.push(
          `${failed.length} VM(s) failed to start (see the metrics table).`,
        );
      }
      return {
        figures: [
          {
            id: "start-time",
            figure: startFig,
            alt: "VM start time against guest size, log-log, per backing",
          },
          {
            id: "start-memory",
            figure: memFig,
            alt: "Locked and populated memory at VM start against guest size",
          },
        ],
        tables: [{
          id: "start-time",
          title: "VM start time and memory per guest size and configuration",
          rows,
        }],
        findings,
      };
    },
  };
}

// ---------------------------------------------------------------------------
// 2. Fault latency breakdown

function faultConfig(s: Scenario): string {
  const fault = s.device.fault === "pri" ? "PRI" : "stall";
  const stage = s.smmu.stage === "nested" ? "nested" : "s2";
  return `${fault}, ${stage}`;
}

function faultLatency(quick: boolean): Experiment {
  const set: ScenarioSet = {
    json: {
      name: "fault-latency",
      host: { memory: "8GiB" },
      vm: { memory: "4GiB" },
      dma: { mode: "iopf", premapPages: 1 },
      guest: { stage1: "on-fault" },
      workload: {
        kind: "accelerator",
        messageSize: quick ? "64KiB" : "1MiB",
        messages: quick ? 4 : 16,
        reuseBuffers: false,
      },
      sweep: {
        "smmu.stage": ["s2", "nested"],
        "device.fault": ["stall", "pri"],
      },
    },
  };
  return {
    id: "fault-latency",
    title: "Where the microseconds of a fault go",
    question:
      "How long does an I/O page fault take from detection until the device's access completes, and which hops of the path cost what — stall versus PRI, single stage versus nested?",
    shows:
      "Each bar is one run (an accelerator streaming fresh 4 KiB-backed buffers, so every page faults once; one fault in flight at a time). The bar's height, marked above it, is the MEASURED mean fault latency of the run. The segments price the hops the fault path traverses with the cost profile (each hop's parameters times how often the run took it per faulting access: faults per access and descriptor reads per walk are measured), and \"queueing / other\" is the measured mean minus their sum. In nested mode a faulting access takes a stage-1 fault, forwarded to the guest, and then a stage-2 fault handled by VFIO.",
    sets: [set],
    series: false,
    analyse(runs) {
      const partRows: TableRow[] = [];
      const segRows: TableRow[] = [];
      const totals: { x: string; y: number }[] = [];
      const findings: string[] = [];
      for (const { scenario: s, metrics: m } of runs) {
        const config = faultConfig(s);
        const costs = loadCostProfile(s.costs);
        const input = breakdownInput(s, m, costs);
        const parts = latencyBreakdown(input);
        for (const p of parts) {
          partRows.push({
            configuration: config,
            fault: s.device.fault,
            stage: s.smmu.stage,
            segment: p.segment,
            hop: p.hop,
            costParameters: p.costs,
            hopNs: p.nsEach,
            perFaultingAccess: p.perAccess,
            contributionNs: p.ns,
            measuredMeanNs: m.faultLatencyNs.mean,
          });
        }
        for (const t of segmentTotals(parts)) {
          segRows.push({ configuration: config, segment: t.segment, ns: t.ns });
        }
        totals.push({ x: config, y: m.faultLatencyNs.mean });
        const rest = parts.find((p) => p.segment === REMAINDER)!.ns;
        findings.push(
          `${config}: measured mean ${formatTime(m.faultLatencyNs.mean)} (p99 ${
            formatTime(m.faultLatencyNs.p99)
          }) over ${
            count(m.extra?.faultLatencySamples ?? 0)
          } faulting accesses, ${
            input.stage1FaultsPerAccess.toFixed(2)
          } stage-1 and ${
            input.stage2FaultsPerAccess.toFixed(2)
          } stage-2 faults each; the priced hops explain all but ${
            formatTime(Math.abs(rest))
          } (${pct(Math.abs(rest) / Math.max(1, m.faultLatencyNs.mean))}${
            rest < 0 ? ", over" : ""
          }).`,
        );
      }
      const fig = stackedBars(segRows, {
        x: "configuration",
        y: "ns",
        fill: "segment",
        fillDomain: BREAKDOWN_SEGMENTS,
        xDomain: totals.map((t) => t.x),
        totals,
        yUnit: "ns",
        xLabel:
          "fault delivery, translation (s2: single stage; nested: stage 1 in the guest)",
        yLabel: "mean fault latency",
        title: "Fault latency breakdown: where the microseconds go",
        subtitle:
          "Segments: cost-profile prices of the hops taken; total: the measured mean; remainder: queueing / other",
        width: 820,
        height: 440,
      });
      return {
        figures: [{
          id: "fault-latency",
          figure: fig,
          alt:
            "Stacked bars of the mean fault latency by hop, per configuration",
        }],
        tables: [
          {
            id: "fault-latency",
            title:
              "Breakdown by hop: cost parameters, traversals per faulting access, contribution",
            rows: partRows,
          },
          {
            id: "fault-latency-segments",
            title: "Breakdown by segment (the figure's data)",
            rows: segRows,
          },
        ],
        findings,
      };
    },
  };
}

// ---------------------------------------------------------------------------
// 3. Accelerator slowdown

function acceleratorSlowdown(quick: boolean): Experiment {
  const messageSizes = quick ? ["64KiB", "1MiB"] : ["16KiB", "256KiB", "4MiB"];
  const messages = quick ? [1, 8, 64] : [1, 4, 16, 64, 256];
  const base = {
    host: { memory: "16GiB" },
    vm: { memory: quick ? "1GiB" : "4GiB" },
    workload: { kind: "accelerator" },
  };
  const sets: ScenarioSet[] = [
    {
      json: {
        name: "accel-static",
        ...base,
        dma: { mode: "static-pin" },
        sweep: {
          "workload.reuseBuffers": [true, false],
          "workload.messageSize": messageSizes,
          "workload.messages": messages,
        },
      },
    },
    {
      json: {
        name: "accel-iopf",
        ...base,
        dma: { mode: "iopf" },
        sweep: {
          "dma.premapPages": [1, 512],
          "workload.reuseBuffers": [true, false],
          "workload.messageSize": messageSizes,
          "workload.messages": messages,
        },
      },
    },
  ];
  return {
    id: "accelerator-slowdown",
    title: "Accelerator slowdown under IOPF",
    question:
      "How much slower does a zip/crypto accelerator run with IOPF than with static pinning, for a given message size and number of messages — and how much does pre-mapping 512 pages per fault help?",
    shows:
      "Slowdown is the IOPF run's simulated workload time divided by the static-pinning run's for the same workload (VM start excluded). With reused buffers only the first message faults, so the slowdown falls as messages repeat; with fresh buffers every message faults on new pages.",
    sets,
    series: false,
    analyse(runs) {
      const key = (s: Scenario) => {
        const w = s.workload;
        if (w.kind !== "accelerator") throw notAccelerator(s);
        return `${w.messageSize}/${w.messages}/${w.reuseBuffers}`;
      };
      const statics = byKey(
        runs.filter((r) => r.scenario.dma.mode === "static-pin"),
        (r) => key(r.scenario),
      );
      const rows = runs.filter((r) => r.scenario.dma.mode === "iopf").map(
        (r) => {
          const w = r.scenario.workload;
          if (w.kind !== "accelerator") throw notAccelerator(r.scenario);
          const st = need(statics.get(key(r.scenario)), "a static baseline");
          return {
            messageSizeBytes: w.messageSize,
            messageSize: formatSize(w.messageSize),
            messages: w.messages,
            buffers: w.reuseBuffers ? "reused buffers" : "fresh buffers",
            premapPages: r.scenario.dma.premapPages,
            premap: `pre-map ${r.scenario.dma.premapPages}`,
            staticRunNs: st.metrics.runNs,
            iopfRunNs: r.metrics.runNs,
            slowdown: r.metrics.runNs / st.metrics.runNs,
            faults: r.metrics.faults.total,
            faultLatencyMeanNs: r.metrics.faultLatencyNs.mean,
            dmaErrors: r.metrics.dmaErrors + st.metrics.dmaErrors,
          };
        },
      );
      const fig = facetLines(rows, {
        x: "messages",
        y: "slowdown",
        xUnit: "count",
        yUnit: "count",
        color: "messageSize",
        colorDomain: messageSizes.map((s) => formatSize(parseSize(s))),
        fx: "buffers",
        fxDomain: ["reused buffers", "fresh buffers"],
        fy: "premap",
        fyDomain: ["pre-map 1", "pre-map 512"],
        xScale: "log",
        yScale: "log",
        xFormat: "count",
        yFormat: "count",
        xTicks: messages,
        rules: [{ y: 1, label: "no slowdown" }],
        xLabel: "messages",
        yLabel: "slowdown (IOPF / static pin)",
        dots: true,
        title: "Accelerator slowdown under IOPF",
        subtitle:
          "Workload time with IOPF over workload time with static pinning, per message size",
        width: 820,
        height: 520,
      });
      const findings: string[] = [];
      const worst = maxBy(rows, (r) => r.slowdown);
      if (worst) {
        findings.push(
          `Largest slowdown: ${
            times(worst.slowdown)
          } (${worst.messageSize} × ${worst.messages} messages, ${worst.buffers}, ${worst.premap}).`,
        );
      }
      for (const premap of [1, 512]) {
        for (const size of messageSizes.map((s) => parseSize(s))) {
          const line = rows.filter((r) =>
            r.premapPages === premap && r.messageSizeBytes === size &&
            r.buffers === "reused buffers"
          ).sort((a, b) => a.messages - b.messages);
          const first = line[0], last = line[line.length - 1];
          if (!first || !last || first === last) continue;
          findings.push(
            `Reused ${formatSize(size)} buffers, pre-map ${premap}: ${
              times(first.slowdown)
            } at ${first.messages} message(s), ${
              times(last.slowdown)
            } at ${last.messages}.`,
          );
        }
      }
      return {
        figures: [{
          id: "accelerator-slowdown",
          figure: fig,
          alt:
            "Slowdown against messages per message size, buffers and pre-map",
        }],
        tables: [{
          id: "accelerator-slowdown",
          title: "Slowdown per workload (IOPF run time / static-pin run time)",
          rows,
        }],
        findings,
      };
    },
  };
}

function notAccelerator(s: Scenario): IopfLabError {
  return new IopfLabError(
    "EINVAL",
    `Cannot analyse ${s.name}: expected an accelerator workload, got ${s.workload.kind}`,
  );
}

// ---------------------------------------------------------------------------
// 4. Throughput ramp-up after VM start

function rampConfig(s: Scenario): string {
  if (s.dma.mode === "static-pin") return "static pin";
  return s.dma.premapPages > 1 ? `IOPF, pre-map ${s.dma.premapPages}` : "IOPF";
}

function rampUp(quick: boolean): Experiment {
  const guest = quick ? "4GiB" : "16GiB";
  const workingSet = quick ? "512MiB" : "2GiB";
  const accesses = quick ? 600_000 : 4_000_000;
  const depth = 16;
  const json = {
    name: "ramp-up",
    host: { memory: "64GiB" },
    vm: { memory: guest },
    workload: {
      kind: "random",
      workingSet,
      accesses,
      accessSize: "4KiB",
      distribution: "uniform",
      queueDepth: depth,
    },
  };
  return {
    id: "ramp-up",
    title: "Throughput over time after VM start",
    question:
      "What does the device's throughput look like from the moment the VM starts — static pinning (nothing until every page is pinned, then full rate) against IOPF (at once, ramping up as pages fault in)?",
    shows: `A device reads and writes 4 KiB at random over a ${
      formatSize(parseSize(workingSet))
    } working set of a ${
      formatSize(parseSize(guest))
    } guest (${depth} accesses in flight). Time runs from VM start, so static pinning's setup shows as time without throughput. Throughput is averaged over each sampling interval of the run's time series.`,
    sets: [
      {
        json: {
          ...json,
          dma: { mode: "static-pin" },
        },
      },
      {
        json: {
          ...json,
          name: "ramp-up-iopf",
          dma: { mode: "iopf" },
          sweep: { "dma.premapPages": [1, 512] },
        },
      },
    ],
    series: true,
    analyse(runs) {
      const rows: TableRow[] = [];
      for (const { scenario: s, series } of runs) {
        const configuration = rampConfig(s);
        for (const r of series) {
          rows.push({
            configuration,
            tNs: r.tNs,
            throughputBytesPerSec: r.throughputBytesPerSec,
            dmaBytes: r.dmaBytes,
            faults: r.faults,
            pinnedPages: r.pinnedPages,
            populatedBytes: r.populatedBytes,
          });
        }
      }
      const configs = runs.map((r) => rampConfig(r.scenario));
      const thr = facetLines(rows, {
        x: "tNs",
        y: "throughputBytesPerSec",
        color: "configuration",
        colorDomain: configs,
        xLabel: "time since VM start",
        yLabel: "DMA throughput",
        step: true,
        title: "Throughput ramp-up after VM start",
        subtitle: `Random 4 KiB accesses over ${
          formatSize(parseSize(workingSet))
        } of a ${formatSize(parseSize(guest))} guest`,
      });
      const bytes = facetLines(rows, {
        x: "tNs",
        y: "dmaBytes",
        color: "configuration",
        colorDomain: configs,
        xLabel: "time since VM start",
        yLabel: "bytes transferred",
        title: "Work done since VM start",
        subtitle: "Cumulative DMA bytes: who finishes first",
      });
      const findings: string[] = [];
      const st = runs.find((r) => r.scenario.dma.mode === "static-pin");
      const peak = st ? st.metrics.throughputBytesPerSec : 0;
      if (st) {
        findings.push(
          `Static pinning: no DMA for the first ${
            formatTime(st.metrics.setupNs)
          } (pinning ${formatSize(st.scenario.vm.memory)}), then ${
            formatRate(peak)
          }; the workload ends ${
            formatTime(st.metrics.setupNs + st.metrics.runNs)
          } after VM start.`,
        );
      }
      for (const r of runs) {
        if (r.scenario.dma.mode !== "iopf") continue;
        const reach = r.series.find((x) =>
          peak > 0 && x.throughputBytesPerSec >= 0.9 * peak
        );
        const atStatic = st
          ? r.series.filter((x) => x.tNs <= st.metrics.setupNs).pop()
          : undefined;
        findings.push(
          `${rampConfig(r.scenario)}: DMA from ${
            formatTime(r.metrics.setupNs)
          } after VM start; ${
            reach
              ? `90 % of the static rate after ${formatTime(reach.tNs)}`
              : "never reaches 90 % of the static rate"
          }; ${count(r.metrics.faults.total)} faults; done ${
            formatTime(r.metrics.setupNs + r.metrics.runNs)
          } after VM start${
            st && r.metrics.setupNs + r.metrics.runNs <= st.metrics.setupNs
              ? ", before static pinning finished its setup"
              : atStatic && st
              ? `; ${
                formatSize(atStatic.dmaBytes)
              } transferred by the time static pinning finished its setup`
              : ""
          }.`,
        );
      }
      return {
        figures: [
          {
            id: "ramp-up",
            figure: thr,
            alt: "Throughput against time since VM start, static pin and IOPF",
          },
          {
            id: "ramp-up-bytes",
            figure: bytes,
            alt: "Cumulative bytes transferred against time since VM start",
          },
        ],
        tables: [{
          id: "ramp-up",
          title: "Time series of each run (from VM start)",
          rows,
        }],
        findings,
      };
    },
  };
}

// ---------------------------------------------------------------------------
// 5. PRI queue size and outstanding requests

function priQueue(quick: boolean): Experiment {
  const depth = 512;
  const priq = quick
    ? [4, 16, 64, 256]
    : [4, 8, 16, 32, 64, 128, 256, 512, 1024];
  const caps = quick ? [16, 256] : [16, 64, 256, 1024];
  return {
    id: "pri-queue",
    title: "PRI queue size and outstanding page requests",
    question:
      "Under many concurrent faults, how large must the SMMU's PRI queue be for the device's outstanding page request allocation — what overflows, what gets auto-answered, and what does it cost in throughput?",
    shows:
      `A PCIe device with ATS/PRI touches a fresh working set at random with ${depth} accesses in flight, so page requests pile up. When the PRI queue is full, the SMMU drops new requests; a request with LAST=1 is answered Success automatically without the page being mapped, so the device retries, faults again, and may exhaust its retries (a DMA error).`,
    sets: [{
      json: {
        name: "pri-queue",
        host: { memory: "8GiB" },
        vm: { memory: "4GiB" },
        device: { fault: "pri" },
        dma: { mode: "iopf" },
        workload: {
          kind: "random",
          workingSet: quick ? "64MiB" : "256MiB",
          accesses: quick ? 50_000 : 200_000,
          queueDepth: depth,
        },
        sweep: { "device.priCapacity": caps, "smmu.priqEntries": priq },
      },
    }],
    series: false,
    analyse(runs) {
      const rows = runs.map(({ scenario: s, metrics: m }) => ({
        priqEntries: s.smmu.priqEntries,
        priCapacity: s.device.priCapacity,
        capacity: `allocation ${s.device.priCapacity}`,
        priqOverflows: m.priqOverflows,
        priAutoResponses: m.extra?.priAutoResponses ?? 0,
        dmaErrors: m.dmaErrors,
        faults: m.faults.total,
        prgSuccess: m.priResponses.success,
        throughputBytesPerSec: m.throughputBytesPerSec,
        runNs: m.runNs,
        faultLatencyMeanNs: m.faultLatencyNs.mean,
      }));
      const capsLabels = caps.map((c) => `allocation ${c}`);
      const auto = facetLines(rows, {
        x: "priqEntries",
        y: "priAutoResponses",
        xUnit: "count",
        yUnit: "count",
        color: "capacity",
        colorDomain: capsLabels,
        xScale: "log",
        yScale: "symlog",
        xFormat: "count",
        yFormat: "count",
        xTicks: priq,
        xLabel: "PRI queue entries",
        yLabel: "page requests auto-answered on overflow",
        dots: true,
        title: "PRI queue overflow: requests the SMMU answered itself",
        subtitle:
          "Per outstanding page request allocation of the device (PRI capacity)",
      });
      const thr = facetLines(rows, {
        x: "priqEntries",
        y: "throughputBytesPerSec",
        color: "capacity",
        colorDomain: capsLabels,
        xScale: "log",
        xFormat: "count",
        xTicks: priq,
        xLabel: "PRI queue entries",
        yLabel: "throughput",
        dots: true,
        title: "Throughput against PRI queue size",
        subtitle: "Same runs: DMA bytes over workload time",
      });
      const findings: string[] = [];
      for (const c of caps) {
        const line = rows.filter((r) => r.priCapacity === c);
        // The smallest size from which every larger size tried is clean.
        const sorted = [...line].sort((a, b) => a.priqEntries - b.priqEntries);
        const clean: number[] = [];
        for (let k = sorted.length - 1; k >= 0; k--) {
          if (sorted[k]!.priqOverflows !== 0) break;
          clean.push(sorted[k]!.priqEntries);
        }
        const worst = maxBy(line, (r) => r.priAutoResponses);
        findings.push(
          `Allocation ${c}: ${
            clean.length > 0
              ? `no overflow from ${Math.min(...clean)} PRI queue entries up`
              : "the PRI queue overflowed at every size tried"
          }${
            worst && worst.priAutoResponses > 0
              ? `; at ${worst.priqEntries} entries ${
                count(worst.priqOverflows)
              } overflow episode(s), ${
                count(worst.priAutoResponses)
              } requests auto-answered, ${count(worst.dmaErrors)} DMA errors, ${
                formatRate(worst.throughputBytesPerSec)
              }`
              : ""
          }.`,
        );
      }
      const best = maxBy(rows, (r) => r.throughputBytesPerSec);
      const low = maxBy(rows, (r) => -r.throughputBytesPerSec);
      if (best && low) {
        findings.push(
          `Throughput ranges from ${
            formatRate(low.throughputBytesPerSec)
          } (${low.priqEntries} entries, allocation ${low.priCapacity}) to ${
            formatRate(best.throughputBytesPerSec)
          } (${best.priqEntries} entries, allocation ${best.priCapacity}), a spread of ${
            pct(
              best.throughputBytesPerSec /
                  Math.max(1, low.throughputBytesPerSec) - 1,
            )
          }.`,
        );
      }
      return {
        figures: [
          {
            id: "pri-queue-overflow",
            figure: auto,
            alt: "Auto-responses on PRI queue overflow against queue size",
          },
          {
            id: "pri-queue-throughput",
            figure: thr,
            alt: "Throughput against PRI queue size",
          },
        ],
        tables: [{
          id: "pri-queue",
          title: "PRI queue overflows, auto-responses, errors and throughput",
          rows,
        }],
        findings,
      };
    },
  };
}

// ---------------------------------------------------------------------------
// 6. Memory over time with the MMU notifier under host memory pressure

function notifierMemory(quick: boolean): Experiment {
  const host = quick ? "512MiB" : "2GiB";
  const guest = host; // each VM as large as the host; two of them overcommit it
  const vms = 2;
  const total = quick ? "384MiB" : "1536MiB";
  return {
    id: "notifier-memory",
    title: "Memory over time with the MMU notifier under host memory pressure",
    question:
      "When the guests touch more memory than the host has, what happens to host memory and pins with IOPF alone (pins only grow) and with the MMU notifier (reclaim can unmap and take pages back)?",
    shows: `${vms} VMs of ${formatSize(parseSize(guest))} share a host with ${
      formatSize(parseSize(host))
    } of RAM (overcommitted); in each, a storage device streams ${
      formatSize(parseSize(total))
    } into fresh page-cache buffers, so together they touch more than the host has. Memory is summed over the VMs. Without the notifier every faulted page stays pinned, so once host RAM is full new faults cannot be served and DMA fails. With the notifier the pin is dropped right after mapping; reclaim swaps pages out and the notifier unmaps them from the IOMMU, so populated memory stays within the host.`,
    sets: [{
      json: {
        name: "notifier",
        host: { memory: host },
        vm: { memory: guest, count: vms },
        dma: { mode: "iopf" },
        workload: {
          kind: "storage",
          blockSize: "128KiB",
          totalBytes: total,
          freshBuffers: true,
        },
        sweep: { "dma.mmuNotifier": [false, true] },
      },
    }],
    series: true,
    analyse(runs) {
      const label = (s: Scenario) =>
        s.dma.mmuNotifier ? "IOPF + MMU notifier" : "IOPF, no notifier";
      const rows: TableRow[] = [];
      const long: TableRow[] = [];
      for (const { scenario: s, series } of runs) {
        for (const r of series) {
          const pinnedBytes = r.pinnedPages * PAGE_SIZE;
          rows.push({
            configuration: label(s),
            tNs: r.tNs,
            populatedBytes: r.populatedBytes,
            pinnedPages: r.pinnedPages,
            pinnedBytes,
            lockedBytes: r.lockedBytes,
            dmaBytes: r.dmaBytes,
            faults: r.faults,
          });
          long.push(
            {
              configuration: label(s),
              tNs: r.tNs,
              quantity: "host RAM populated",
              bytes: r.populatedBytes,
            },
            {
              configuration: label(s),
              tNs: r.tNs,
              quantity: "pinned",
              bytes: pinnedBytes,
            },
          );
        }
      }
      const hostBytes = runs[0]?.scenario.host.memory ?? 0;
      const failing = runs.find((r) => r.metrics.dmaErrors > 0);
      const caption = failing
        ? `${label(failing.scenario)}: the run ends after ${
          formatTime(failing.metrics.runNs)
        }, its remaining blocks failed (${
          count(failing.metrics.dmaErrors)
        } DMA errors) once host RAM was full of pinned pages.`
        : undefined;
      const fig = facetLines(long, {
        x: "tNs",
        y: "bytes",
        color: "configuration",
        colorDomain: ["IOPF, no notifier", "IOPF + MMU notifier"],
        fy: "quantity",
        fyDomain: ["host RAM populated", "pinned"],
        xLabel: "time since VM start",
        yLabel: "memory",
        dashed: ["IOPF + MMU notifier"],
        rules: [{ y: hostBytes, label: `host RAM ${formatSize(hostBytes)}` }],
        title: "Guest memory on an overcommitted host",
        subtitle: `${vms} VMs of ${formatSize(parseSize(guest))} on a ${
          formatSize(parseSize(host))
        } host, each streaming ${
          formatSize(parseSize(total))
        } into fresh storage buffers`,
        ...(caption ? { caption } : {}),
        height: 480,
      });
      const summary = runs.map(({ scenario: s, metrics: m }) => ({
        configuration: label(s),
        hostMemoryBytes: s.host.memory,
        guestMemoryBytes: s.vm.memory,
        vms: s.vm.count,
        hostMemoryPeakBytes: m.hostMemoryPeakBytes,
        pinnedPagesPeak: m.pinnedPagesPeak,
        lockedBytesPeak: m.lockedBytesPeak,
        dmaBytes: m.dmaBytes,
        dmaErrors: m.dmaErrors,
        faults: m.faults.total,
        swapOuts: m.extra?.swapOuts ?? 0,
        swapIns: m.extra?.swapIns ?? 0,
        notifierUnmappedPages: m.extra?.notifierUnmappedPages ?? 0,
        runNs: m.runNs,
      }));
      const findings = summary.map((r) =>
        `${r.configuration}: host RAM peaks at ${
          formatSize(r.hostMemoryPeakBytes)
        } of ${formatSize(r.hostMemoryBytes)}, at most ${
          formatSize(r.pinnedPagesPeak * PAGE_SIZE)
        } pinned, ${formatSize(r.dmaBytes)} transferred, ${
          count(r.dmaErrors)
        } DMA errors, ${formatSize(r.swapOuts * PAGE_SIZE)} swapped out, ${
          formatSize(r.notifierUnmappedPages * PAGE_SIZE)
        } unmapped from the IOMMU by the notifier.`
      );
      return {
        figures: [{
          id: "notifier-memory",
          figure: fig,
          alt:
            "Populated and pinned memory over time with and without notifier",
        }],
        tables: [
          {
            id: "notifier-memory",
            title: "Time series of each run (from VM start)",
            rows,
          },
          {
            id: "notifier-memory-summary",
            title: "Per run: peaks, errors, reclaim",
            rows: summary,
          },
        ],
        findings,
      };
    },
  };
}

// ---------------------------------------------------------------------------
// 7. Lazy vs strict invalidation

function lazyInvalidation(quick: boolean): Experiment {
  const host = quick ? "256MiB" : "1GiB";
  const guest = host; // each VM as large as the host; two of them overcommit it
  const vms = 2;
  const span = quick ? "192MiB" : "768MiB";
  const common = {
    host: { memory: host },
    vm: { memory: guest, count: vms },
    dma: { mode: "iopf", mmuNotifier: true },
    sweep: { "smmu.invalidation": ["strict", "lazy"] },
  };
  return {
    id: "lazy-invalidation",
    title: "Lazy versus strict IOTLB invalidation",
    question:
      "How much throughput does lazy (deferred, batched) IOTLB invalidation gain when the host really unmaps pages, and what isolation exposure does it cost?",
    shows:
      `Unmaps must really happen: in single-stage modes the guest's dma_unmap does not reach the host IOMMU, so the unmaps here come from VFIO's MMU notifier while the host reclaims memory (IOPF with the notifier; ${vms} VMs of ${
        formatSize(parseSize(guest))
      } on a ${formatSize(parseSize(host))} host, each touching ${
        formatSize(parseSize(span))
      }). Strict mode waits for each IOTLB invalidation (CMD_SYNC) before the page is freed; lazy mode queues it on the flush queue and frees at once, so the unmapped range stays reachable through stale IOTLB entries until the batched flush (the exposure window). Accesses that actually went through such an entry are isolation violations.`,
    sets: [
      {
        json: {
          name: "lazy-storage",
          ...common,
          workload: {
            kind: "storage",
            blockSize: "128KiB",
            totalBytes: span,
            freshBuffers: true,
          },
        },
      },
      {
        json: {
          name: "lazy-random",
          ...common,
          workload: {
            kind: "random",
            workingSet: span,
            accesses: quick ? 100_000 : 500_000,
            queueDepth: 16,
          },
        },
      },
    ],
    series: false,
    analyse(runs) {
      const wl = (s: Scenario) =>
        s.workload.kind === "storage"
          ? "storage, fresh buffers"
          : `random over ${
            formatSize(
              s.workload.kind === "random" ? s.workload.workingSet : 0,
            )
          }`;
      const rows = runs.map(({ scenario: s, metrics: m }) => ({
        workload: wl(s),
        invalidation: s.smmu.invalidation,
        throughputBytesPerSec: m.throughputBytesPerSec,
        runNs: m.runNs,
        tlbInvalidations: m.tlbInvalidations,
        notifierUnmappedPages: m.extra?.notifierUnmappedPages ?? 0,
        lazyExposureNsMax: m.extra?.lazyExposureNsMax ?? 0,
        lazyExposures: m.extra?.lazyExposures ?? 0,
        isolationViolations: m.isolationViolations,
        dmaErrors: m.dmaErrors,
        swapOuts: m.extra?.swapOuts ?? 0,
      }));
      const thr = barChart(rows, {
        x: "workload",
        y: "throughputBytesPerSec",
        group: "invalidation",
        yLabel: "throughput",
        xLabel: "workload (IOPF + MMU notifier, host under reclaim)",
        title: "What lazy invalidation gains: throughput",
        subtitle: "Strict waits for CMD_SYNC on every notifier unmap",
        width: 720,
      });
      const exp = barChart(rows, {
        x: "workload",
        y: "lazyExposureNsMax",
        yUnit: "ns",
        group: "invalidation",
        yLabel: "longest exposure window",
        xLabel: "workload (IOPF + MMU notifier, host under reclaim)",
        title: "What it costs: how long unmapped pages stayed reachable",
        subtitle:
          "Longest time from an unmap to its batched IOTLB flush (0 in strict mode)",
        width: 720,
      });
      const findings: string[] = [];
      for (const w of [...new Set(rows.map((r) => r.workload))]) {
        const strict = rows.find((r) =>
          r.workload === w && r.invalidation === "strict"
        );
        const lazy = rows.find((r) =>
          r.workload === w && r.invalidation === "lazy"
        );
        if (!strict || !lazy) continue;
        if (strict.tlbInvalidations === 0) {
          findings.push(
            `${w}: no IOTLB invalidations happened in strict mode, so strict and lazy cannot differ here.`,
          );
          continue;
        }
        const gain = lazy.throughputBytesPerSec /
            strict.throughputBytesPerSec - 1;
        findings.push(
          `${w}: lazy ${
            formatRate(lazy.throughputBytesPerSec)
          } against strict ${formatRate(strict.throughputBytesPerSec)} (${
            gain >= 0 ? "+" : ""
          }${pct(gain)}), with ${
            count(lazy.tlbInvalidations)
          } invalidation commands instead of ${
            count(strict.tlbInvalidations)
          } for ${
            count(strict.notifierUnmappedPages)
          } unmapped pages; unmapped pages stayed reachable for up to ${
            formatTime(lazy.lazyExposureNsMax)
          }, and ${count(lazy.isolationViolations)} device access(es) (${
            count(lazy.lazyExposures)
          } through stale IOTLB entries) reached a page no longer mapped for the device (strict: ${
            count(strict.isolationViolations)
          }).`,
        );
      }
      return {
        figures: [
          {
            id: "lazy-throughput",
            figure: thr,
            alt: "Throughput strict vs lazy per workload",
          },
          {
            id: "lazy-exposure",
            figure: exp,
            alt: "Longest exposure window strict vs lazy per workload",
          },
        ],
        tables: [{
          id: "lazy-invalidation",
          title: "Strict vs lazy: throughput, invalidations, exposure",
          rows,
        }],
        findings,
      };
    },
  };
}
