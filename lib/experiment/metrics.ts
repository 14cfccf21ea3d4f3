/**
 * Metrics: what one run of a scenario measured (shared/INTERFACE.md), the
 * time series a run can record, flattening to dotted keys for CSV and
 * tables, and a readable summary table.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { emptyMetrics, flattenMetrics, formatSummary } from "./metrics.ts";
 * const m = { ...emptyMetrics("demo", 1), runNs: 2_500_000, dmaBytes: 2 ** 30 };
 * assert(flattenMetrics(m)["faults.total"] === 0);
 * assert(formatSummary(m).includes("2.50 ms"));
 * ```
 *
 * @module
 */
import { hex } from "../sim/errors.ts";
import { fieldUnit } from "../sim/field_units.ts";
import { formatSize, formatTime, PAGE_SIZE } from "../sim/units.ts";
import type { JsonValue } from "../sim/json.ts";

/** Fault counts of a run. */
export interface FaultCounts {
  /** All translation faults reported to the IOMMU core. */
  readonly total: number;
  /** Faults of stage-1 (guest) translation. */
  readonly stage1: number;
  /** Faults of stage-2 (host) translation. */
  readonly stage2: number;
  /** Faults reported as stalled transactions (event queue). */
  readonly stall: number;
  /** Faults reported as PCIe page requests (PRI queue). */
  readonly pri: number;
}

/** Latency statistics in simulated ns: fault detected to the device's access completing. */
export interface LatencyStats {
  /** Mean. */
  readonly mean: number;
  /** Median. */
  readonly p50: number;
  /** 99th percentile. */
  readonly p99: number;
  /** Maximum. */
  readonly max: number;
}

/** IOTLB lookups. */
export interface IotlbCounts {
  /** Lookups that hit. */
  readonly hits: number;
  /** Lookups that missed (a table walk followed). */
  readonly misses: number;
}

/** Page responses sent, by code. */
export interface PriResponseCounts {
  /** SUCCESS: the page is mapped, retry. */
  readonly success: number;
  /** INVALID: the access fails. */
  readonly invalid: number;
  /** FAILURE: the device stops issuing page requests. */
  readonly failure: number;
}

/** Results of the model's invariant checks (scenario `check: true`). */
export interface InvariantResults {
  /** Checks performed. */
  readonly checks: number;
  /** Checks that failed. */
  readonly violations: number;
}

/**
 * What one run measured: one object per scenario. Times are simulated ns,
 * pages are 4 KiB pages. Field names are the contract of
 * shared/INTERFACE.md; the optional sections extend it.
 */
export interface Metrics {
  /** The scenario's name (with the sweep suffix on a sweep point). */
  readonly name: string;
  /** The scenario's seed. */
  readonly seed: number;
  /** On a sweep point: the swept values by path. */
  readonly sweepPoint?: Readonly<Record<string, JsonValue>>;
  /**
   * What the run's DMA design is and where it stands upstream: mainline,
   * posted, the RFC or a what-if (every run reports it).
   */
  readonly design?: MetricsDesign;
  /** VM start until guest RAM is mapped for DMA (or IOPF enabled). */
  readonly setupNs: number;
  /** Simulated time of the workload. */
  readonly runNs: number;
  /** Bytes the device transferred. */
  readonly dmaBytes: number;
  /** dmaBytes over runNs, in bytes per second. */
  readonly throughputBytesPerSec: number;
  /** Fault counts. */
  readonly faults: FaultCounts;
  /** Fault latency: detected to the device's access completing. */
  readonly faultLatencyNs: LatencyStats;
  /** Most 4 KiB pages pinned at once. */
  readonly pinnedPagesPeak: number;
  /** 4 KiB pages pinned at the end. */
  readonly pinnedPagesEnd: number;
  /** Most bytes charged against the memlock limit. */
  readonly lockedBytesPeak: number;
  /** Most host RAM populated for the guest. */
  readonly hostMemoryPeakBytes: number;
  /** IOTLB lookups. */
  readonly iotlb: IotlbCounts;
  /** TLB invalidation commands issued. */
  readonly tlbInvalidations: number;
  /** Event records lost to a full event queue. */
  readonly evtqOverflows: number;
  /** Page requests lost to a full PRI queue. */
  readonly priqOverflows: number;
  /** Page responses by code. */
  readonly priResponses: PriResponseCounts;
  /** Device accesses that ended in an error. */
  readonly dmaErrors: number;
  /** Accesses that reached a page not mapped for that device at that moment. */
  readonly isolationViolations: number;
  /** Packets the NIC dropped (nic-rx workloads). */
  readonly droppedPackets?: number;
  /** Invariant checks, when the scenario asked for them. */
  readonly invariants?: InvariantResults;
  /** Further named measurements of a run. */
  readonly extra?: Readonly<Record<string, number>>;
  /** Why VMs could not start (static pinning over the memlock limit or host memory), one line each. */
  readonly errors?: readonly string[];
  /** The first few isolation violations, described (device, IOVA, page, why). */
  readonly violationExamples?: readonly string[];
}

/** The {@linkcode Metrics.design} section. */
export interface MetricsDesign {
  /** `dma.backend`: "type1" or "iommufd". */
  readonly backend: string;
  /** The designs' names for figures ("static pinning", "iommufd nested stage 1"...), joined with " + ". */
  readonly label: string;
  /** "mainline", "posted", "rfc" or "what-if": the least mature of the run's designs. */
  readonly status: string;
  /** What it rests on (kernel version, series, or what the what-if assumes). */
  readonly basis: string;
}

/**
 * One sample of a run's time series: tidy rows, ready for Plot and CSV.
 * Time runs from VM start (so the setup phase of static pinning shows as
 * time without throughput); counters are cumulative; throughput is over the
 * interval that ends at `tNs`.
 */
export interface SeriesRow {
  /** The scenario's name. */
  readonly name: string;
  /** Simulated time of the sample in ns from VM start. */
  readonly tNs: number;
  /** Bytes transferred so far. */
  readonly dmaBytes: number;
  /** Throughput over the interval ending at `tNs`, bytes per second. */
  readonly throughputBytesPerSec: number;
  /** Faults so far. */
  readonly faults: number;
  /** 4 KiB pages pinned at `tNs`. */
  readonly pinnedPages: number;
  /** Host RAM populated for the guest at `tNs`, bytes. */
  readonly populatedBytes: number;
  /** Bytes charged against the memlock limit at `tNs`. */
  readonly lockedBytes: number;
}

/** A flattened metrics record: dotted keys, scalar values. */
export type FlatMetrics = Record<string, number | string>;

/** The top-level fields of {@linkcode Metrics} in column order. */
export const METRICS_ORDER: readonly string[] = [
  "name",
  "seed",
  "sweepPoint",
  "design",
  "setupNs",
  "runNs",
  "dmaBytes",
  "throughputBytesPerSec",
  "faults",
  "faultLatencyNs",
  "pinnedPagesPeak",
  "pinnedPagesEnd",
  "lockedBytesPeak",
  "hostMemoryPeakBytes",
  "iotlb",
  "tlbInvalidations",
  "evtqOverflows",
  "priqOverflows",
  "priResponses",
  "dmaErrors",
  "isolationViolations",
  "droppedPackets",
  "invariants",
  "extra",
];

const SECTION_ORDER: Readonly<Record<string, readonly string[]>> = {
  faults: ["total", "stage1", "stage2", "stall", "pri"],
  design: ["backend", "label", "status", "basis"],
  faultLatencyNs: ["mean", "p50", "p99", "max"],
  iotlb: ["hits", "misses"],
  priResponses: ["success", "invalid", "failure"],
  invariants: ["checks", "violations"],
};

/** Sections whose keys are names that may themselves contain dots. */
const NAMED_SECTIONS = new Set(["sweepPoint", "extra"]);

/** Metrics of a run that measured nothing (every count 0): a base for building results. */
export function emptyMetrics(name: string, seed: number): Metrics {
  return {
    name,
    seed,
    setupNs: 0,
    runNs: 0,
    dmaBytes: 0,
    throughputBytesPerSec: 0,
    faults: { total: 0, stage1: 0, stage2: 0, stall: 0, pri: 0 },
    faultLatencyNs: { mean: 0, p50: 0, p99: 0, max: 0 },
    pinnedPagesPeak: 0,
    pinnedPagesEnd: 0,
    lockedBytesPeak: 0,
    hostMemoryPeakBytes: 0,
    iotlb: { hits: 0, misses: 0 },
    tlbInvalidations: 0,
    evtqOverflows: 0,
    priqOverflows: 0,
    priResponses: { success: 0, invalid: 0, failure: 0 },
    dmaErrors: 0,
    isolationViolations: 0,
  };
}

/**
 * Flattens metrics to dotted keys (`faults.total`, `sweepPoint.vm.memory`,
 * `extra.<name>`) in a stable column order: the fields of
 * {@linkcode METRICS_ORDER}, then any others in their own order. Booleans
 * become "true"/"false", missing values "", other non-numbers JSON.
 */
export function flattenMetrics(metrics: Metrics): FlatMetrics {
  const out: FlatMetrics = {};
  const m = metrics as unknown as Record<string, unknown>;
  const keys = [
    ...METRICS_ORDER.filter((k) => m[k] !== undefined),
    ...Object.keys(m).filter((k) =>
      !METRICS_ORDER.includes(k) && m[k] !== undefined
    ),
  ];
  for (const key of keys) put(out, key, m[key], key);
  return out;
}

function put(out: FlatMetrics, key: string, v: unknown, top: string): void {
  if (typeof v === "object" && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if (NAMED_SECTIONS.has(key)) {
      const names = Object.keys(o);
      if (key === "extra") names.sort();
      for (const name of names) out[`${key}.${name}`] = scalar(o[name]);
      return;
    }
    const order = SECTION_ORDER[top] ?? [];
    const names = [
      ...order.filter((k) => k in o),
      ...Object.keys(o).filter((k) => !order.includes(k)),
    ];
    for (const name of names) put(out, `${key}.${name}`, o[name], top);
    return;
  }
  out[key] = scalar(v);
}

function scalar(v: unknown): number | string {
  if (typeof v === "number" || typeof v === "string") return v;
  if (v === undefined || v === null) return "";
  if (typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}

/**
 * Rebuilds nested metrics from a flattened record (the inverse of
 * {@linkcode flattenMetrics} for numbers and strings), e.g. a CSV row.
 * Empty values are dropped.
 */
export function unflattenMetrics(
  flat: Readonly<Record<string, number | string | boolean | null | undefined>>,
): Metrics {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(flat)) {
    if (v === "" || v === undefined || v === null) continue;
    const dot = key.indexOf(".");
    const head = dot < 0 ? key : key.slice(0, dot);
    const parts = dot < 0
      ? [key]
      : NAMED_SECTIONS.has(head)
      ? [head, key.slice(dot + 1)]
      : key.split(".");
    let o = out;
    for (let i = 0; i < parts.length - 1; i++) {
      const p = parts[i]!;
      if (typeof o[p] !== "object" || o[p] === null) o[p] = {};
      o = o[p] as Record<string, unknown>;
    }
    o[parts[parts.length - 1]!] = v;
  }
  return out as unknown as Metrics;
}

// ---------------------------------------------------------------------------
// Summary table

/** Options of {@linkcode formatSummary}. */
export interface FormatSummaryOptions {
  /** Widest line before the columns wrap into another block. [100] */
  readonly width?: number;
  /**
   * Leave out the metrics that are 0 in every run (a last line says how
   * many). [false: every metric]
   */
  readonly hideZero?: boolean;
}

/**
 * A readable table of one or several runs: one row per metric (dotted
 * keys as in the JSON), one column per run; times in ns/us/ms/s, sizes in
 * KiB/MiB/GiB, rates in MB/s/GB/s, pages with their size. For a sweep the
 * swept values head the columns.
 */
export function formatSummary(
  metrics: Metrics | readonly Metrics[],
  options: FormatSummaryOptions = {},
): string {
  const runs: readonly Metrics[] = Array.isArray(metrics)
    ? metrics
    : [metrics as Metrics];
  if (runs.length === 0) return "(no runs)\n";
  const width = options.width ?? 100;
  const flats = runs.map(flattenMetrics);
  const keys: string[] = [];
  for (const f of flats) {
    for (const k of Object.keys(f)) if (!keys.includes(k)) keys.push(k);
  }
  const sweepKeys = keys.filter((k) => k.startsWith("sweepPoint."));
  const allSwept = sweepKeys.length > 0 &&
    runs.every((r) => r.sweepPoint !== undefined);
  const head: string[] = allSwept ? sweepKeys : ["name"];
  const label = (k: string): string =>
    k.startsWith("sweepPoint.") ? k.slice(11) : k;
  const headLabels = head.map(label);
  const shown = keys.filter((k) =>
    k !== "name" && !k.startsWith("sweepPoint.") && !headLabels.includes(k)
  );
  const body = options.hideZero
    ? shown.filter((k) => flats.some((f) => f[k] !== undefined && f[k] !== 0))
    : shown;
  const hidden = shown.length - body.length;
  const cell = (f: FlatMetrics, k: string): string =>
    f[k] === undefined ? "-" : formatValue(k, f[k]!);

  const lines: string[] = [];
  if (allSwept) {
    const base = runs[0]!.name.replace(/\[.*$/, "");
    lines.push(`${base}: ${runs.length} points`);
  }
  const labelWidth = Math.max(
    ...[...head, ...body].map((k) => label(k).length),
  );
  // Split the runs into blocks of columns that fit the width.
  const colWidths = flats.map((f) =>
    Math.max(...[...head, ...body].map((k) => cell(f, k).length))
  );
  let start = 0;
  let blocks = 0;
  while (start < runs.length) {
    let end = start;
    let used = labelWidth;
    do {
      used += 2 + colWidths[end]!;
      end++;
    } while (end < runs.length && used + 2 + colWidths[end]! <= width);
    if (blocks++ > 0) lines.push("");
    const row = (k: string): string =>
      label(k).padEnd(labelWidth) +
      flats.slice(start, end).map((f, i) =>
        "  " + cell(f, k).padStart(colWidths[start + i]!)
      )
        .join("");
    for (const k of head) lines.push(row(k));
    lines.push(
      "-".repeat(labelWidth) +
        colWidths.slice(start, end).map((w) => "  " + "-".repeat(w)).join(""),
    );
    for (const k of body) lines.push(row(k));
    start = end;
  }
  if (hidden > 0) {
    lines.push(
      `(${hidden} metric${hidden === 1 ? "" : "s"} 0 in every run not shown)`,
    );
  }
  return lines.map((l) => l.trimEnd()).join("\n") + "\n";
}

/**
 * Formats one field's value for people, in the unit its name implies (the
 * one table of lib/sim/field_units.ts): times in ns/us/ms/s, sizes in
 * KiB/MiB/GiB (`dmaBytes`, `vm.memory`, `workload.blockSize`, swept or
 * not), rates in MB/s/GB/s, pages with their size, addresses in hex, seeds
 * as digits, other numbers with thousands separators.
 */
export function formatValue(key: string, value: number | string): string {
  if (typeof value === "string") return value;
  if (!Number.isFinite(value)) return String(value);
  switch (fieldUnit(key)) {
    case "id":
      return String(value);
    case "bytes/s":
      return formatRate(value);
    case "ns":
      return formatTime(value);
    case "bytes":
      return formatSize(value);
    case "pages":
      return `${groupDigits(value)} (${formatSize(value * PAGE_SIZE)})`;
    case "address":
      if (Number.isSafeInteger(value) && value >= 0) return hex(value);
      break;
    case "count":
      break;
  }
  return Number.isInteger(value) ? groupDigits(value) : value.toPrecision(4);
}

/** Formats a rate in bytes per second with a decimal unit ("8.00 GB/s"). */
export function formatRate(bytesPerSec: number): string {
  const units = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"];
  let v = bytesPerSec;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0
    ? `${Math.round(v)} ${units[0]}`
    : `${v.toFixed(2)} ${units[i]}`;
}

function groupDigits(n: number): string {
  const s = String(Math.abs(n));
  if (!/^[0-9]+$/.test(s)) return String(n);
  return (n < 0 ? "-" : "") + s.replace(/\B(?=([0-9]{3})+$)/g, ",");
}
