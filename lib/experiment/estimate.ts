/**
 * How much work a run will be, before it starts: {@linkcode estimateWork}
 * counts the model's unit operations a scenario implies (4 KiB pages pinned
 * or prefaulted, pages the device touches, faults, traps, automatic PRI
 * responses), weights them by their measured CPU cost, and names the field
 * that makes the run large.
 * The CLI refuses a run above {@linkcode WORK_LIMIT} unless `--no-limit`
 * is given, so no scenario runs for hours without the user asking for it.
 *
 * The weights are CPU time per operation on the reference machine (2 cores
 * of a shared host, Deno 2.9.6), measured with `deno task bench` (pin,
 * fault and translate groups): about 100 ns per 4 KiB page pinned, 200 ns
 * per page a device accesses plus 3 us per DMA request (0.3 us per
 * received packet), 3 us per I/O page fault on the full path, 3 us per
 * guest map/unmap trap; and 1 us per automatic PRI response
 * ({@linkcode priStorm}: the report's worst PRI storm point less the same
 * run with a PRI queue large enough, 10.6 s of CPU for 10.1 M responses).
 * They are estimates to within a small factor, enough to tell a 10 s run
 * from a 10 min one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseScenario } from "./scenario.ts";
 * import { estimateWork } from "./estimate.ts";
 * const w = estimateWork(parseScenario({
 *   host: { memory: "16TiB" },
 *   vm: { memory: "8TiB" },
 *   dma: { mode: "static-pin" },
 * }));
 * assert.equal(w.field, "vm.memory");
 * assert(w.cpuSeconds > 60);
 * ```
 *
 * @module
 */
import { QUEUE_MAX_LOG2 } from "../smmu/queue.ts";
import type { Scenario, WorkloadConfig } from "./scenario.ts";

/** CPU ns per operation (see the module doc for where they come from). */
const NS = {
  pinPage: 100,
  prefaultPage: 60,
  hugePin: 400,
  accessPage: 200,
  request: 3_000,
  packet: 300,
  fault: 3_000,
  trap: 3_000,
  tracePage: 300,
  priAutoResponse: 1_000,
} as const;

/**
 * Automatic PRI responses per I/O page fault and per Page Request Group
 * that does not fit in the PRI queue: how many times such a group goes
 * round (Translation Request, Page Request dropped with LAST = 1,
 * automatic Success, again) while the handler serves one fault. An
 * estimate fitted to one run of the report's quick suite (pri-queue,
 * device.priCapacity=256, smmu.priqEntries=4: 10.1 M automatic responses,
 * 252 groups over, 16 384 faults, so 2.45). Validation, 2026-12-04: the
 * suite's other storm points come out at 0.57x (priCapacity 16), 0.88x and
 * 1.06x (priCapacity 256) of the responses they gave, and 1.7x-1.9x where
 * groups are several pages (pri-queue-prg); the whole quick suite at 0.65x
 * of its 70 s of CPU and the full suite at 1.27x of its 694 s (0.19x
 * without this term).
 */
const AUTO_RESPONSES_PER_FAULT = 2.45;

/** The device's Page Request Group indexes (PRGIndex is 9 bits). */
const PRG_INDEXES = 512;

/**
 * The retry storm of a run with `faults` I/O page faults, each DMA request
 * `pagesPerOp` pages and at most `inflight` requests at once: how many
 * automatic PRI responses it will have (0 when the PRI queue never
 * overflows) and how many page requests the device can have outstanding
 * (what the PRI queue would need to hold). When the device can have more
 * page requests outstanding than the PRI queue holds, the SMMU drops the
 * requests that find it full and answers each dropped LAST = 1 request
 * Success at once without the page being mapped (IHI0070 8.1), so the
 * groups that do not fit ask again, about {@linkcode
 * AUTO_RESPONSES_PER_FAULT} times per fault served, for as long as faults
 * are served. Every round is four simulator events and a table walk: a
 * retry storm can cost far more CPU than the faults themselves.
 */
export function priStorm(
  s: Scenario,
  faults: number,
  pagesPerOp: number,
  inflight: number,
): { readonly responses: number; readonly outstanding: number } {
  const none = { responses: 0, outstanding: 0 };
  if (s.device.fault !== "pri" || faults <= 0) return none;
  const alloc = s.device.priCapacity;
  const group = Math.max(1, Math.min(s.device.prgPages, pagesPerOp, alloc));
  const groups = Math.min(inflight, Math.floor(alloc / group), PRG_INDEXES);
  const over = groups - Math.floor(s.smmu.priqEntries / group);
  return over > 0
    ? {
      responses: over * faults * AUTO_RESPONSES_PER_FAULT,
      outstanding: groups * group,
    }
    : none;
}

/** The largest estimated CPU time a run may take without `--no-limit`: 10 minutes. */
export const WORK_LIMIT_SECONDS = 600;

/** The same limit in estimated CPU ns. */
export const WORK_LIMIT: number = WORK_LIMIT_SECONDS * 1e9;

/** One term of an estimate. */
export interface WorkTerm {
  /** The scenario field that scales it (`vm.memory`, `workload.accesses`...). */
  readonly field: string;
  /** What is counted. */
  readonly what: string;
  /** How many operations. */
  readonly count: number;
  /** Estimated CPU ns for them. */
  readonly ns: number;
  /** How to make this term smaller, when it is not "make the field smaller". */
  readonly advice?: string;
}

/** What {@linkcode estimateWork} returns. */
export interface WorkEstimate {
  /** Estimated CPU time of the run, in seconds. */
  readonly cpuSeconds: number;
  /** The field of the largest term. */
  readonly field: string;
  /** Every term, largest first. */
  readonly terms: readonly WorkTerm[];
  /** Estimated peak bytes of model state (what the run needs in RAM). */
  readonly memoryBytes: number;
  /** What dominates {@linkcode memoryBytes}. */
  readonly memoryWhat: string;
}

/**
 * Bytes of model state per 4 KiB page pinned at 4 KiB granularity (the
 * PFN, pin and page-table state: measured 365 MiB peak RSS for a 64 GiB
 * 4 KiB static pin with `deno task bench:memory`, about 20 B a page).
 */
const PINNED_PAGE_BYTES = 20;
/** Bytes of state per 2 MiB chunk a fault first touches (typed arrays, tables). */
const TOUCHED_CHUNK_BYTES = 10 * 1024;
/** Bytes the process needs besides the model (Deno, the compiled code). */
const BASE_BYTES = 100 * 2 ** 20;

/**
 * The most model state a run may need without `--no-limit`: three quarters
 * of this machine's RAM (MemTotal of /proc/meminfo), or 16 GiB where that
 * cannot be read.
 */
export function memoryLimit(): number {
  try {
    const m = /MemTotal:\s+(\d+) kB/.exec(
      Deno.readTextFileSync("/proc/meminfo"),
    );
    if (m) return Math.floor(Number(m[1]) * 1024 * 0.75);
  } catch { /* not Linux, or no read permission */ }
  return 16 * 2 ** 30;
}

const PAGE = 4096;
const pages = (bytes: number) => Math.ceil(bytes / PAGE);

/** Estimates the CPU time of one run of `s` (not a sweep: one point). */
export function estimateWork(s: Scenario): WorkEstimate {
  const terms: WorkTerm[] = [];
  const vms = s.vm.count;
  const ram = pages(s.vm.memory) * vms;
  // hugetlb pages and THP folios are pinned a folio at a time.
  const huge = s.host.backing === "hugetlb-1g"
    ? 262144
    : s.host.backing === "4k"
    ? 1
    : 512;
  if (s.host.prefault) {
    terms.push({
      field: "vm.memory",
      what: `guest RAM prefaulted (${s.host.backing} pages)`,
      count: ram / huge,
      ns: (ram / huge) * NS.prefaultPage * (huge > 1 ? 4 : 1),
    });
  }
  if (s.dma.mode === "static-pin") {
    terms.push({
      field: "vm.memory",
      what: `guest RAM pinned at VM start (${s.host.backing} pages)`,
      count: ram / huge,
      ns: huge > 1 ? (ram / huge) * NS.hugePin : ram * NS.pinPage,
    });
  }
  const w = s.workload;
  // touched: pages the device accesses; distinct: at most how many
  // different pages that is (what bounds the faults).
  let touched = 0, distinct = 0, ops = 0, field = "workload", what = "";
  // DMA requests the device works on at once: its engine's slots, or
  // fewer when the workload keeps fewer in flight.
  let inflight = s.device.dmaSlots;
  switch (w.kind) {
    case "boot":
      break;
    case "accelerator":
      ops = w.messages;
      touched = w.messages * pages(w.messageSize);
      distinct = 0; // a fixed set of buffers: its first faults are noise
      field = pages(w.messageSize) > w.messages
        ? "workload.messageSize"
        : "workload.messages";
      what = "pages the accelerator reads and writes";
      break;
    case "random":
      ops = w.accesses;
      touched = w.accesses * pages(w.accessSize);
      distinct = pages(w.workingSet);
      field = "workload.accesses";
      what = "pages of random accesses";
      inflight = Math.min(inflight, w.queueDepth);
      break;
    case "nic-rx":
      ops = w.packets;
      touched = w.packets * pages(w.bufferSize);
      distinct = w.ringEntries * pages(w.bufferSize);
      field = "workload.packets";
      what = "receive buffers written";
      break;
    case "storage": {
      const blocks = Math.ceil(w.totalBytes / w.blockSize);
      ops = blocks;
      touched = blocks * pages(w.blockSize);
      distinct = w.freshBuffers
        ? touched
        : 2 * w.queueDepth * pages(w.blockSize);
      field = blocks > pages(w.blockSize)
        ? "workload.totalBytes"
        : "workload.blockSize";
      what = "pages of storage blocks";
      inflight = Math.min(inflight, w.queueDepth);
      break;
    }
    case "trace": {
      // The streaming summary: sum of ceil(size / 4 KiB) over the rows.
      ops = w.summary.rows;
      touched = w.summary.pages;
      distinct = w.summary.pages;
      field = "workload.file";
      what = "pages of trace accesses";
      break;
    }
  }
  if (touched > 0) {
    terms.push({
      field,
      what,
      count: touched * vms,
      ns: touched * vms * (w.kind === "trace" ? NS.tracePage : NS.accessPage) +
        ops * vms * (w.kind === "nic-rx" ? NS.packet : NS.request),
    });
    if (s.dma.mode !== "static-pin") {
      // At most one fault (or trap) per page touched, and never more than
      // the guest has pages.
      const faults = Math.min(touched, distinct, pages(s.vm.memory)) * vms;
      const trap = s.dma.mode === "viommu-pin" || s.dma.mode === "coiommu";
      terms.push({
        field,
        what: trap ? "guest map/unmap traps" : "I/O page faults",
        count: trap ? ops * vms : faults,
        ns: trap ? ops * vms * NS.trap : faults * NS.fault,
      });
      const storm = trap
        ? undefined
        : priStorm(s, faults, Math.ceil(touched / Math.max(1, ops)), inflight);
      if (storm !== undefined && storm.responses > 0) {
        const fits = 2 ** Math.ceil(Math.log2(storm.outstanding));
        const raise = fits <= 2 ** QUEUE_MAX_LOG2
          ? `raise it to ${fits} (the device can have ${storm.outstanding} page requests outstanding) or `
          : "";
        terms.push({
          field: "smmu.priqEntries",
          what: "automatic PRI responses (PRI queue overflow)",
          count: storm.responses,
          ns: storm.responses * NS.priAutoResponse,
          advice: `${raise}lower device.priCapacity${
            raise === "" ? " or device.prgPages" : ""
          }`,
        });
      }
    }
  }
  terms.sort((a, b) => b.ns - a.ns);
  const total = terms.reduce((a, t) => a + t.ns, 0);
  // Memory: 4 KiB pins keep per-page state; faults keep state per 2 MiB
  // chunk they touch (at most the guest's RAM).
  const pinned4k = s.dma.mode === "static-pin" && huge === 1 ? ram : 0;
  const chunks = s.dma.mode === "static-pin"
    ? 0
    : Math.min(touched * vms, ram) / 512;
  const pinBytes = pinned4k * PINNED_PAGE_BYTES;
  const chunkBytes = chunks * TOUCHED_CHUNK_BYTES;
  return {
    cpuSeconds: total / 1e9,
    field: terms[0]?.field ?? "vm.memory",
    terms,
    memoryBytes: BASE_BYTES + pinBytes + chunkBytes,
    memoryWhat: pinBytes >= chunkBytes
      ? `${pinned4k.toPrecision(3)} guest pages pinned at 4 KiB`
      : `${chunks.toPrecision(3)} 2 MiB chunks touched by faults`,
  };
}

/**
 * Bytes one VM's workload `w` moves when every DMA succeeds (what a run's
 * progress counts against), or 0 when it does not say (boot). A trace
 * counts its rows instead (see RunProgress).
 */
export function workloadBytes(w: WorkloadConfig): number {
  switch (w.kind) {
    case "accelerator":
      return 2 * w.messages * w.messageSize; // read each message, write its result
    case "random":
      return w.accesses * w.accessSize;
    case "nic-rx":
      return w.packets * w.bufferSize;
    case "storage":
      return w.totalBytes;
    case "trace":
      return w.summary.bytes;
    default:
      return 0;
  }
}

/** "about 3.2 min" style text for a CPU time in seconds. */
export function formatDuration(seconds: number): string {
  if (seconds < 1) return "under a second";
  if (seconds < 120) return `about ${Math.round(seconds)} s`;
  if (seconds < 7200) return `about ${(seconds / 60).toFixed(1)} min`;
  if (seconds < 172800) return `about ${(seconds / 3600).toFixed(1)} h`;
  return `about ${(seconds / 86400).toFixed(0)} days`;
}
