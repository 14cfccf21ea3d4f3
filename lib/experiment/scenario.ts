/**
 * Scenarios: the JSON description of one experiment (shared/INTERFACE.md),
 * validated and resolved into a {@linkcode Scenario} with every default
 * filled in, sizes in bytes, times in ns and bandwidths in bytes per second.
 *
 * Every mistake is an `IopfLabError` EINVAL whose message starts with the
 * path of the field: `workload.messageSize: expected a size like "1MiB", got
 * "1 MB?"`. Unknown fields are errors. A `sweep` is validated point by point
 * when the scenario is parsed, so {@linkcode expandSweep} cannot fail on a
 * scenario that {@linkcode parseScenario} returned.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expandSweep, parseScenario } from "./scenario.ts";
 * const s = parseScenario({
 *   name: "pin-vs-iopf",
 *   vm: { memory: "4GiB" },
 *   sweep: { "dma.mode": ["static-pin", "iopf"] },
 * });
 * assert(s.vm.memory === 4 * 2 ** 30 && s.host.backing === "4k");
 * const points = expandSweep(s);
 * assert(points[1]!.name === "pin-vs-iopf[dma.mode=iopf]");
 * ```
 *
 * @module
 */
import {
  basename,
  dirname,
  extname,
  isAbsolute,
  resolve as resolvePath,
} from "node:path";
import { COST_NAMES, loadCostProfile } from "../sim/costs.ts";
import { IopfLabError } from "../sim/errors.ts";
import {
  formatSize,
  PAGE_SIZE,
  parseBandwidth,
  parseSize,
  parseTime,
  SZ_1G,
  SZ_2M,
} from "../sim/units.ts";
import { type JsonValue, parseJsonText } from "./_json.ts";
import { DMA_MODES } from "./designs/mod.ts";
import { fileErrorReason, parseTrace, type TraceRecord } from "./trace.ts";

export type { JsonValue } from "./_json.ts";

/** Host page backing of guest RAM. */
export type Backing = "4k" | "thp" | "hugetlb-2m" | "hugetlb-1g";
/** Which SMMU translation stages the device's stream uses. */
export type SmmuStage = "s1" | "s2" | "nested";
/** IOTLB invalidation policy of the IOMMU core on unmap. */
export type Invalidation = "strict" | "lazy";
/** How the device reports translation faults: stalled transactions or PCIe PRI. */
export type DeviceFault = "stall" | "pri";
/**
 * How guest RAM is made DMA-able: pinned and mapped at start (`static-pin`),
 * mapped on I/O page faults (`iopf`), pinned on the guest's vIOMMU map
 * (`viommu-pin`), or pinned when a coIOMMU tracking table marks it
 * (`coiommu`).
 */
export type DmaMode = "static-pin" | "iopf" | "viommu-pin" | "coiommu";
/**
 * When the coIOMMU backend unpins pages: never (`off`, the default of
 * crosvm's backend) or by its LRU unpin thread (`lru`).
 */
export type CoiommuUnpinPolicy = "off" | "lru";
/** How the guest fills its stage-1 tables in nested mode. */
export type GuestStage1 = "premapped" | "on-fault";
/** How the `random` workload picks offsets. */
export type Distribution = "uniform" | "zipf";

/** The host machine. */
export interface HostConfig {
  /** Host RAM in bytes (a multiple of 4 KiB and of the hugetlb page). ["512GiB"] */
  readonly memory: number;
  /** Page backing of guest RAM. ["4k"] */
  readonly backing: Backing;
  /** Populate (fault in and zero) guest RAM when the VM starts (QEMU -mem-prealloc). [false] */
  readonly prefault: boolean;
  /**
   * Threads that populate guest RAM in parallel when prefaulting (QEMU's
   * prealloc-threads), 1..256: the work is split evenly, each thread on its
   * own core (memory bandwidth is not modelled as a limit). [1]
   */
  readonly prefaultThreads: number;
  /** RLIMIT_MEMLOCK of the VMM in bytes; `Infinity` for "unlimited". ["unlimited"] */
  readonly memlockLimit: number;
}

/**
 * The guest(s). The VMs together may be given more RAM than the host has
 * (overcommit: what IOPF and the buffer-tracking modes are for; a VM whose
 * RAM cannot be pinned then fails to start, reported in the metrics), but
 * one VM may not be larger than the host.
 */
export interface VmConfig {
  /** Guest RAM of each VM in bytes, at most host.memory. ["16GiB"] */
  readonly memory: number;
  /** Number of identical VMs sharing the host, 1..64. [1] */
  readonly count: number;
}

/** The SMMU (hardware and driver settings). */
export interface SmmuConfig {
  /** Translation stages of the device's stream. ["s2"] */
  readonly stage: SmmuStage;
  /** IOTLB entries. [2048] */
  readonly iotlbEntries: number;
  /** IOTLB associativity (ways per set; divides iotlbEntries). [4] */
  readonly iotlbWays: number;
  /** Event queue entries (a power of two, 2..2^19). [256] */
  readonly evtqEntries: number;
  /** PRI queue entries (a power of two, 2..2^19). [256] */
  readonly priqEntries: number;
  /** Invalidation policy on unmap. ["strict"] */
  readonly invalidation: Invalidation;
}

/** The assigned PCIe device. */
export interface DeviceConfig {
  /** Fault model. ["stall"] */
  readonly fault: DeviceFault;
  /** Outstanding page requests the device may have (PRI capacity). [256] */
  readonly priCapacity: number;
  /** Bandwidth of the device's DMA engine in bytes per second. ["8GB/s"] */
  readonly dmaBandwidth: number;
}

/** How VFIO makes guest RAM available for DMA. */
export interface DmaConfig {
  /** DMA mapping mode. ["static-pin"] */
  readonly mode: DmaMode;
  /** 4 KiB pages mapped per fault (1..512 Ki). [1] */
  readonly premapPages: number;
  /** Unmap IOPF-mapped pages on MMU notifier invalidations. [false] */
  readonly mmuNotifier: boolean;
  /** IOPF queue worker threads (1..256). [1] */
  readonly faultWorkers: number;
  /** coIOMMU: when pinned pages are unpinned. ["off"] */
  readonly coiommuUnpinPolicy: CoiommuUnpinPolicy;
  /** coIOMMU: period of the LRU unpin thread in ns (> 0). ["60s"] */
  readonly coiommuUnpinInterval: number;
  /**
   * coIOMMU: unpin intervals a page must stay busy before it moves to the
   * older generation, scanned once every this many intervals (0: one
   * generation only), 0..2^20. [10]
   */
  readonly coiommuGenerationThreshold: number;
}

/** The guest's own IOMMU use (nested mode only). */
export interface GuestConfig {
  /** How the guest fills its stage-1 tables. ["premapped"] */
  readonly stage1: GuestStage1;
}

/** `boot`: start the VM and stop (VFIO maps guest RAM, no DMA). */
export interface BootConfig {
  /** The workload kind. */
  readonly kind: "boot";
}

/** `accelerator`: a zip/crypto engine reading an input and writing an output buffer per message. */
export interface AcceleratorConfig {
  /** The workload kind. */
  readonly kind: "accelerator";
  /** Bytes of each input and each output buffer. ["1MiB"] */
  readonly messageSize: number;
  /** Messages processed. [100] */
  readonly messages: number;
  /** Reuse the same buffers for every message. [true] */
  readonly reuseBuffers: boolean;
}

/** `random`: accesses over a working set. */
export interface RandomConfig {
  /** The workload kind. */
  readonly kind: "random";
  /** Bytes of the region touched. ["1GiB"] */
  readonly workingSet: number;
  /** Number of accesses. [1000000] */
  readonly accesses: number;
  /** Bytes per access. ["4KiB"] */
  readonly accessSize: number;
  /** Offset distribution. ["uniform"] */
  readonly distribution: Distribution;
  /** Fraction of accesses that write, 0..1. [0.5] */
  readonly writeFraction: number;
  /** Accesses in flight at once (the device's queue depth), 1..65536. [16] */
  readonly queueDepth: number;
}

/** `nic-rx`: packets written into a ring of receive buffers the driver refills. */
export interface NicRxConfig {
  /** The workload kind. */
  readonly kind: "nic-rx";
  /** Receive descriptors in the ring. [1024] */
  readonly ringEntries: number;
  /** Bytes per receive buffer. ["2KiB"] */
  readonly bufferSize: number;
  /** Packets arriving. [100000] */
  readonly packets: number;
  /** Line rate in bytes per second. ["10Gbps"] */
  readonly rate: number;
}

/** `storage`: blocks streamed into page-cache buffers. */
export interface StorageConfig {
  /** The workload kind. */
  readonly kind: "storage";
  /** Bytes per block. ["128KiB"] */
  readonly blockSize: number;
  /** Bytes streamed in total. ["4GiB"] */
  readonly totalBytes: number;
  /** Fresh buffers for every block. [true] */
  readonly freshBuffers: boolean;
  /** Blocks in flight at once, 1..65536. [8] */
  readonly queueDepth: number;
}

/** `trace`: replay of a DMA trace file. */
export interface TraceConfig {
  /** The workload kind. */
  readonly kind: "trace";
  /** Absolute path of the trace file (relative paths resolve against the scenario's directory). */
  readonly file: string;
  /** The parsed trace. */
  readonly rows: readonly TraceRecord[];
}

/** What the guest and its device do: one of the workload kinds. */
export type WorkloadConfig =
  | BootConfig
  | AcceleratorConfig
  | RandomConfig
  | NicRxConfig
  | StorageConfig
  | TraceConfig;

/** The kinds of workload. */
export type WorkloadKind = WorkloadConfig["kind"];

/** One swept parameter: its dotted path and the values it takes, as written. */
export type SweepAxis = readonly [path: string, values: readonly JsonValue[]];

/** A fully resolved scenario: every default filled, sizes in bytes, times in ns. */
export interface Scenario {
  /** Name, echoed in the metrics; sweep points append `[path=value,...]`. ["scenario"] */
  readonly name: string;
  /** Seed of every random choice (0..2^32-1). [1] */
  readonly seed: number;
  /** The host. */
  readonly host: HostConfig;
  /** The guest(s). */
  readonly vm: VmConfig;
  /** The SMMU. */
  readonly smmu: SmmuConfig;
  /** The device. */
  readonly device: DeviceConfig;
  /** VFIO's DMA mapping. */
  readonly dma: DmaConfig;
  /** The guest's stage 1 (used in nested mode only). */
  readonly guest: GuestConfig;
  /** The workload. ({"kind": "boot"}) */
  readonly workload: WorkloadConfig;
  /** Cost overrides by parameter name (lib/sim/costs.ts). [{}] */
  readonly costs: Readonly<Record<string, number>>;
  /** Run the model's invariant checks while simulating (slower). [false] */
  readonly check: boolean;
  /** Swept parameters, first one outermost; empty for a single run. */
  readonly sweep: readonly SweepAxis[];
  /** On a sweep point: the swept values, by path, in sweep order. */
  readonly sweepPoint?: Readonly<Record<string, JsonValue>>;
}

/** Options of {@linkcode parseScenario}. */
export interface ParseScenarioOptions {
  /** Directory that relative paths (the trace file) resolve against. [Deno.cwd()] */
  readonly baseDir?: string;
  /** Name used when the scenario has none. ["scenario"] */
  readonly defaultName?: string;
}

/** Most points a sweep may have. */
export const MAX_SWEEP_POINTS = 10_000;
/** Largest count of messages, accesses or packets. */
export const MAX_COUNT = 1e9;
/** Largest host memory the model accepts (64 TiB). */
export const MAX_HOST_MEMORY = 64 * 2 ** 40;

const SECTIONS = {
  host: ["memory", "backing", "prefault", "prefaultThreads", "memlockLimit"],
  vm: ["memory", "count"],
  smmu: [
    "stage",
    "iotlbEntries",
    "iotlbWays",
    "evtqEntries",
    "priqEntries",
    "invalidation",
  ],
  device: ["fault", "priCapacity", "dmaBandwidth"],
  dma: [
    "mode",
    "premapPages",
    "mmuNotifier",
    "faultWorkers",
    "coiommuUnpinPolicy",
    "coiommuUnpinInterval",
    "coiommuGenerationThreshold",
  ],
  guest: ["stage1"],
} as const;

const WORKLOAD_FIELDS: Readonly<Record<WorkloadKind, readonly string[]>> = {
  boot: [],
  accelerator: ["messageSize", "messages", "reuseBuffers"],
  random: [
    "workingSet",
    "accesses",
    "accessSize",
    "distribution",
    "writeFraction",
    "queueDepth",
  ],
  "nic-rx": ["ringEntries", "bufferSize", "packets", "rate"],
  storage: ["blockSize", "totalBytes", "freshBuffers", "queueDepth"],
  trace: ["file"],
};
const WORKLOAD_KINDS = Object.keys(WORKLOAD_FIELDS) as WorkloadKind[];

const TOP_FIELDS = [
  "name",
  "seed",
  ...Object.keys(SECTIONS),
  "workload",
  "costs",
  "check",
  "sweep",
];

const BACKINGS: readonly Backing[] = ["4k", "thp", "hugetlb-2m", "hugetlb-1g"];
const STAGES: readonly SmmuStage[] = ["s1", "s2", "nested"];
const INVALIDATIONS: readonly Invalidation[] = ["strict", "lazy"];
const FAULTS: readonly DeviceFault[] = ["stall", "pri"];
const MODES: readonly DmaMode[] = DMA_MODES;
const STAGE1: readonly GuestStage1[] = ["premapped", "on-fault"];
const UNPIN_POLICIES: readonly CoiommuUnpinPolicy[] = ["off", "lru"];
const DISTRIBUTIONS: readonly Distribution[] = ["uniform", "zipf"];

/** Internal options of one resolution. */
interface ResolveContext {
  readonly baseDir: string;
  readonly defaultName: string;
  /** guest.stage1 may be given: the stage is nested here or at some sweep point. */
  readonly stage1Allowed: boolean;
  /** Traces already read, by absolute path. */
  readonly traces: Map<string, readonly TraceRecord[]>;
}

/**
 * Validates a scenario (parsed JSON, see shared/INTERFACE.md) and resolves
 * it: defaults filled, units converted, the trace file read, and every
 * sweep point checked. Throws EINVAL naming the field on any mistake.
 */
export function parseScenario(
  json: unknown,
  options: ParseScenarioOptions = {},
): Scenario {
  const top = object(json, "scenario");
  const sweepRaw = top.sweep;
  const sweep = sweepRaw === undefined ? [] : parseSweepAxes(sweepRaw);
  const stageRaw = isObject(top.smmu) ? top.smmu.stage : undefined;
  const ctx: ResolveContext = {
    baseDir: options.baseDir ?? Deno.cwd(),
    defaultName: options.defaultName ?? "scenario",
    stage1Allowed: stageRaw === "nested" ||
      sweep.some(([p, vs]) => p === "smmu.stage" && vs.includes("nested")),
    traces: new Map(),
  };
  const { sweep: _, ...base } = top;
  const scenario = { ...resolve(base, ctx), sweep };
  // Validate every point now, so that a bad value fails before any run.
  forEachPoint(base, sweep, ctx, () => {});
  return scenario;
}

/**
 * Reads a scenario file: JSON (syntax errors give `file:line:column`),
 * then {@linkcode parseScenario} with paths relative to the file's directory
 * and the file's name (without `.json`) as the default scenario name.
 * Schema errors are prefixed with the file name:
 * `bad.json: vm.memory: expected a size like "1MiB", got "16"`.
 */
export function loadScenario(file: string): Scenario {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    throw new IopfLabError(
      e instanceof Deno.errors.NotFound ? "ENOENT" : "EINVAL",
      `${file}: cannot read the scenario file: ${fileErrorReason(e)}`,
      file,
    );
  }
  const json = parseJsonText(text, file);
  try {
    return parseScenario(json, {
      baseDir: dirname(resolvePath(file)),
      defaultName: basename(file, extname(file)),
    });
  } catch (e) {
    if (e instanceof IopfLabError) {
      throw new IopfLabError(e.code, `${file}: ${bareMessage(e)}`, e.where);
    }
    throw e;
  }
}

/**
 * The points of a scenario's sweep: the cartesian product of its axes in
 * the order given (first axis outermost, last varying fastest). Each point
 * has its values applied, an empty `sweep`, a `sweepPoint` record, and its
 * name suffixed `[path=value,...]`. A scenario without a sweep gives
 * itself.
 */
export function expandSweep(scenario: Scenario): Scenario[] {
  if (scenario.sweep.length === 0) return [scenario];
  const traces = new Map<string, readonly TraceRecord[]>();
  if (scenario.workload.kind === "trace") {
    traces.set(scenario.workload.file, scenario.workload.rows);
  }
  const ctx: ResolveContext = {
    baseDir: Deno.cwd(),
    defaultName: scenario.name,
    stage1Allowed: true,
    traces,
  };
  const base = scenarioToJson({ ...scenario, sweep: [] }, {
    guest: true,
  });
  const out: Scenario[] = [];
  forEachPoint(base, scenario.sweep, ctx, (s) => out.push(s));
  return out;
}

/** Options of {@linkcode scenarioToJson}. */
export interface ScenarioToJsonOptions {
  /** Include `guest` even when the stage is not nested. [false] */
  readonly guest?: boolean;
}

/**
 * A resolved scenario as scenario-file JSON (sizes in bytes, times in ns,
 * bandwidths in bytes/s, the trace file as an absolute path): parsing it
 * again gives an equal scenario.
 */
export function scenarioToJson(
  scenario: Scenario,
  options: ScenarioToJsonOptions = {},
): { [key: string]: JsonValue } {
  const s = scenario;
  const workload: { [key: string]: JsonValue } = s.workload.kind === "trace"
    ? { kind: "trace", file: s.workload.file }
    : { ...s.workload };
  const out: { [key: string]: JsonValue } = {
    name: s.name,
    seed: s.seed,
    host: {
      ...s.host,
      memlockLimit: s.host.memlockLimit === Infinity
        ? "unlimited"
        : s.host.memlockLimit,
    },
    vm: { ...s.vm },
    smmu: { ...s.smmu },
    device: { ...s.device },
    dma: { ...s.dma },
    workload,
    costs: { ...s.costs },
    check: s.check,
  };
  const nestedSwept = s.sweep.some(([p, vs]) =>
    p === "smmu.stage" && vs.includes("nested")
  );
  if (options.guest || s.smmu.stage === "nested" || nestedSwept) {
    out.guest = { ...s.guest };
  }
  if (s.sweep.length > 0) {
    out.sweep = Object.fromEntries(s.sweep.map(([p, vs]) => [p, [...vs]]));
  }
  return out;
}

/** An `IopfLabError`'s message without the " (CODE)" suffix the class appends. */
export function bareMessage(
  e: { readonly message: string; readonly code: string },
): string {
  const suffix = ` (${e.code})`;
  return e.message.endsWith(suffix)
    ? e.message.slice(0, -suffix.length)
    : e.message;
}

// ---------------------------------------------------------------------------
// Sweeps

function parseSweepAxes(raw: unknown): SweepAxis[] {
  const o = object(raw, "sweep");
  const axes: SweepAxis[] = [];
  let points = 1;
  for (const [path, values] of Object.entries(o)) {
    const where = `sweep.${path}`;
    checkSweepPath(path, where);
    if (!Array.isArray(values) || values.length === 0) {
      fail(
        where,
        `expected a non-empty array of values, got ${describe(values)}`,
      );
    }
    if (values.length > 1000) {
      fail(where, `at most 1000 values, got ${values.length}`);
    }
    points *= values.length;
    if (points > MAX_SWEEP_POINTS) {
      fail("sweep", `more than ${MAX_SWEEP_POINTS} points`);
    }
    axes.push([path, values as JsonValue[]]);
  }
  return axes;
}

function checkSweepPath(path: string, where: string): void {
  const parts = path.split(".");
  const head = parts[0]!;
  if (head === "name" || head === "sweep") {
    fail(where, `${head} cannot be swept`);
  }
  if (head === "seed" || head === "check") {
    if (parts.length === 1) return;
  } else if (head === "costs") {
    const param = parts.slice(1).join(".");
    if ((COST_NAMES as readonly string[]).includes(param)) return;
    fail(where, `unknown cost parameter ${JSON.stringify(param)}`);
  } else if (head === "workload") {
    const all = new Set(["kind", ...Object.values(WORKLOAD_FIELDS).flat()]);
    if (parts.length === 2 && all.has(parts[1]!)) return;
  } else if (Object.hasOwn(SECTIONS, head)) {
    const fields = SECTIONS[head as keyof typeof SECTIONS] as readonly string[];
    if (parts.length === 2 && fields.includes(parts[1]!)) return;
  }
  fail(where, `not a field of the scenario: ${JSON.stringify(path)}`);
}

/** Calls `fn` with every point of the sweep of `base`, resolved. */
function forEachPoint(
  base: Readonly<Record<string, unknown>>,
  sweep: readonly SweepAxis[],
  ctx: ResolveContext,
  fn: (s: Scenario) => void,
): void {
  if (sweep.length === 0) return;
  const index = sweep.map(() => 0);
  const baseName = typeof base.name === "string" ? base.name : ctx.defaultName;
  for (;;) {
    const raw = structuredClone(base) as Record<string, unknown>;
    const point: Record<string, JsonValue> = {};
    for (let k = 0; k < sweep.length; k++) {
      const [path, values] = sweep[k]!;
      const value = values[index[k]!]!;
      point[path] = value;
      setPath(raw, path, value);
    }
    const label = Object.entries(point).map(([p, v]) => `${p}=${showValue(v)}`)
      .join(",");
    let s: Scenario;
    try {
      s = resolve(raw, ctx);
    } catch (e) {
      throw e instanceof IopfLabError ? sweepError(e, sweep, index, label) : e;
    }
    fn({ ...s, name: `${baseName}[${label}]`, sweep: [], sweepPoint: point });
    // Advance the odometer, last axis fastest.
    let k = sweep.length - 1;
    for (; k >= 0; k--) {
      const next = index[k]! + 1;
      if (next < sweep[k]![1].length) {
        index[k] = next;
        break;
      }
      index[k] = 0;
    }
    if (k < 0) return;
  }
}

function setPath(
  raw: Record<string, unknown>,
  path: string,
  value: unknown,
): void {
  const dot = path.indexOf(".");
  if (dot < 0) {
    raw[path] = value;
    return;
  }
  const head = path.slice(0, dot);
  const rest = path.slice(dot + 1);
  const section = raw[head];
  if (section === undefined) raw[head] = { [rest]: value };
  else if (isObject(section)) section[rest] = value;
  // Otherwise the section itself is malformed; resolve() reports it.
}

/** Renames an error at a swept field to the sweep entry that set it. */
function sweepError(
  e: IopfLabError,
  sweep: readonly SweepAxis[],
  index: readonly number[],
  label: string,
): IopfLabError {
  const msg = bareMessage(e);
  const where = e.where ?? "";
  for (let k = 0; k < sweep.length; k++) {
    const path = sweep[k]![0];
    if (where === path || where.startsWith(path + ".")) {
      const renamed = `sweep.${path}[${index[k]}]` + where.slice(path.length);
      const rest = msg.startsWith(where) ? msg.slice(where.length) : `: ${msg}`;
      return new IopfLabError(e.code, renamed + rest, renamed);
    }
  }
  return new IopfLabError(e.code, `sweep point [${label}]: ${msg}`, where);
}

function showValue(v: JsonValue): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

// ---------------------------------------------------------------------------
// Resolution of one scenario (without a sweep)

function resolve(
  top: Readonly<Record<string, unknown>>,
  ctx: ResolveContext,
): Scenario {
  known(top, "", TOP_FIELDS);
  const name = top.name === undefined ? ctx.defaultName : top.name;
  if (typeof name !== "string" || name.trim() === "" || name.length > 200) {
    fail(
      "name",
      `expected a non-empty string of at most 200 characters, got ${
        describe(name)
      }`,
    );
  }
  const seed = integer(top.seed, "seed", 0, 2 ** 32 - 1, 1);
  const host = resolveHost(section(top, "host"));
  const vm = resolveVm(section(top, "vm"), host);
  const smmu = resolveSmmu(section(top, "smmu"));
  const device = resolveDevice(section(top, "device"));
  const dma = resolveDma(section(top, "dma"));
  const guestRaw = section(top, "guest");
  if (
    guestRaw.stage1 !== undefined && smmu.stage !== "nested" &&
    !ctx.stage1Allowed
  ) {
    fail("guest.stage1", 'only applies when smmu.stage is "nested"');
  }
  const guest: GuestConfig = {
    stage1: choice(guestRaw.stage1, "guest.stage1", STAGE1, "premapped"),
  };
  const workload = resolveWorkload(top.workload, vm, ctx);
  const costs = resolveCosts(top.costs);
  const check = bool(top.check, "check", false);
  return {
    name,
    seed,
    host,
    vm,
    smmu,
    device,
    dma,
    guest,
    workload,
    costs,
    check,
    sweep: [],
  };
}

function section(
  top: Readonly<Record<string, unknown>>,
  name: keyof typeof SECTIONS,
): Record<string, unknown> {
  const raw = top[name];
  if (raw === undefined) return {};
  const o = object(raw, name);
  known(o, name, SECTIONS[name]);
  return o;
}

function hugePage(backing: Backing): number {
  return backing === "hugetlb-2m"
    ? SZ_2M
    : backing === "hugetlb-1g"
    ? SZ_1G
    : PAGE_SIZE;
}

function resolveHost(o: Record<string, unknown>): HostConfig {
  const backing = choice(o.backing, "host.backing", BACKINGS, "4k");
  const memory = size(o.memory, "host.memory", "512GiB", {
    max: MAX_HOST_MEMORY,
    align: hugePage(backing),
    alignWhy: backing.startsWith("hugetlb")
      ? `with host.backing "${backing}"`
      : "(4 KiB pages)",
  });
  const prefault = bool(o.prefault, "host.prefault", false);
  const prefaultThreads = integer(
    o.prefaultThreads,
    "host.prefaultThreads",
    1,
    256,
    1,
  );
  const memlockLimit =
    o.memlockLimit === undefined || o.memlockLimit === "unlimited"
      ? Infinity
      : size(o.memlockLimit, "host.memlockLimit", 0, {
        min: 0,
        example: '"unlimited" or a size like "64GiB"',
      });
  return { memory, backing, prefault, prefaultThreads, memlockLimit };
}

function resolveVm(o: Record<string, unknown>, host: HostConfig): VmConfig {
  const page = hugePage(host.backing);
  const memory = size(o.memory, "vm.memory", "16GiB", {
    max: MAX_HOST_MEMORY,
    align: page,
    alignWhy: host.backing.startsWith("hugetlb")
      ? `with host.backing "${host.backing}"`
      : "(4 KiB pages)",
  });
  const count = integer(o.count, "vm.count", 1, 64, 1);
  // Several VMs may overcommit the host (count × memory > host.memory): the
  // run reports the VMs that could not start. One VM larger than the host
  // is refused: not even its own RAM could be backed.
  if (memory > host.memory) {
    fail(
      "vm.memory",
      `${formatSize(memory)} exceeds host.memory (${formatSize(host.memory)})`,
    );
  }
  return { memory, count };
}

function resolveSmmu(o: Record<string, unknown>): SmmuConfig {
  const stage = choice(o.stage, "smmu.stage", STAGES, "s2");
  const iotlbEntries = integer(
    o.iotlbEntries,
    "smmu.iotlbEntries",
    1,
    2 ** 20,
    2048,
  );
  const iotlbWays = integer(o.iotlbWays, "smmu.iotlbWays", 1, 64, 4);
  if (iotlbEntries % iotlbWays !== 0) {
    fail(
      "smmu.iotlbWays",
      `${iotlbWays} ways must divide smmu.iotlbEntries (${iotlbEntries})`,
    );
  }
  const evtqEntries = powerOfTwo(
    o.evtqEntries,
    "smmu.evtqEntries",
    2,
    2 ** 19,
    256,
  );
  const priqEntries = powerOfTwo(
    o.priqEntries,
    "smmu.priqEntries",
    2,
    2 ** 19,
    256,
  );
  const invalidation = choice(
    o.invalidation,
    "smmu.invalidation",
    INVALIDATIONS,
    "strict",
  );
  return {
    stage,
    iotlbEntries,
    iotlbWays,
    evtqEntries,
    priqEntries,
    invalidation,
  };
}

function resolveDevice(o: Record<string, unknown>): DeviceConfig {
  return {
    fault: choice(o.fault, "device.fault", FAULTS, "stall"),
    priCapacity: integer(o.priCapacity, "device.priCapacity", 1, 2 ** 20, 256),
    dmaBandwidth: bandwidth(o.dmaBandwidth, "device.dmaBandwidth", "8GB/s"),
  };
}

function resolveDma(o: Record<string, unknown>): DmaConfig {
  return {
    mode: choice(o.mode, "dma.mode", MODES, "static-pin"),
    premapPages: integer(o.premapPages, "dma.premapPages", 1, 512 * 1024, 1),
    mmuNotifier: bool(o.mmuNotifier, "dma.mmuNotifier", false),
    faultWorkers: integer(o.faultWorkers, "dma.faultWorkers", 1, 256, 1),
    coiommuUnpinPolicy: choice(
      o.coiommuUnpinPolicy,
      "dma.coiommuUnpinPolicy",
      UNPIN_POLICIES,
      "off",
    ),
    coiommuUnpinInterval: positiveTime(
      o.coiommuUnpinInterval,
      "dma.coiommuUnpinInterval",
      "60s",
    ),
    coiommuGenerationThreshold: integer(
      o.coiommuGenerationThreshold,
      "dma.coiommuGenerationThreshold",
      0,
      2 ** 20,
      10,
    ),
  };
}

function resolveWorkload(
  raw: unknown,
  vm: VmConfig,
  ctx: ResolveContext,
): WorkloadConfig {
  if (raw === undefined) return { kind: "boot" };
  const o = object(raw, "workload");
  if (o.kind === undefined) {
    fail(
      "workload.kind",
      `required: one of ${
        WORKLOAD_KINDS.map((k) => JSON.stringify(k)).join(", ")
      }`,
    );
  }
  const kind = choice(o.kind, "workload.kind", WORKLOAD_KINDS, "boot");
  const fields = WORKLOAD_FIELDS[kind];
  for (const key of Object.keys(o)) {
    if (key !== "kind" && !fields.includes(key)) {
      const list = fields.length
        ? `known: kind, ${fields.join(", ")}`
        : "it has no other fields";
      fail(`workload.${key}`, `unknown field for kind "${kind}" (${list})`);
    }
  }
  const fitVm = (bytes: number, where: string, what: string): void => {
    if (bytes > vm.memory) {
      fail(
        where,
        `${what} (${formatSize(bytes)}) must fit in vm.memory (${
          formatSize(vm.memory)
        })`,
      );
    }
  };
  switch (kind) {
    case "boot":
      return { kind };
    case "accelerator": {
      const messageSize = size(o.messageSize, "workload.messageSize", "1MiB");
      fitVm(
        2 * messageSize,
        "workload.messageSize",
        "the input and output buffers",
      );
      return {
        kind,
        messageSize,
        messages: integer(o.messages, "workload.messages", 1, MAX_COUNT, 100),
        reuseBuffers: bool(o.reuseBuffers, "workload.reuseBuffers", true),
      };
    }
    case "random": {
      const workingSet = size(o.workingSet, "workload.workingSet", "1GiB");
      fitVm(workingSet, "workload.workingSet", "the working set");
      const accesses = integer(
        o.accesses,
        "workload.accesses",
        1,
        MAX_COUNT,
        1_000_000,
      );
      const accessSize = size(o.accessSize, "workload.accessSize", "4KiB");
      if (accessSize > workingSet) {
        fail(
          "workload.accessSize",
          `${formatSize(accessSize)} is larger than workload.workingSet (${
            formatSize(workingSet)
          })`,
        );
      }
      const distribution = choice(
        o.distribution,
        "workload.distribution",
        DISTRIBUTIONS,
        "uniform",
      );
      const writeFraction = fraction(
        o.writeFraction,
        "workload.writeFraction",
        0.5,
      );
      return {
        kind,
        workingSet,
        accesses,
        accessSize,
        distribution,
        writeFraction,
        queueDepth: integer(o.queueDepth, "workload.queueDepth", 1, 65536, 16),
      };
    }
    case "nic-rx": {
      const ringEntries = integer(
        o.ringEntries,
        "workload.ringEntries",
        1,
        65536,
        1024,
      );
      const bufferSize = size(o.bufferSize, "workload.bufferSize", "2KiB", {
        max: 2 ** 20,
      });
      fitVm(
        ringEntries * bufferSize,
        "workload.ringEntries",
        "the receive buffers",
      );
      return {
        kind,
        ringEntries,
        bufferSize,
        packets: integer(o.packets, "workload.packets", 1, MAX_COUNT, 100_000),
        rate: bandwidth(o.rate, "workload.rate", "10Gbps"),
      };
    }
    case "storage": {
      const blockSize = size(o.blockSize, "workload.blockSize", "128KiB");
      fitVm(blockSize, "workload.blockSize", "a block");
      const totalBytes = size(o.totalBytes, "workload.totalBytes", "4GiB");
      if (blockSize > totalBytes) {
        fail(
          "workload.blockSize",
          `${formatSize(blockSize)} is larger than workload.totalBytes (${
            formatSize(totalBytes)
          })`,
        );
      }
      return {
        kind,
        blockSize,
        totalBytes,
        freshBuffers: bool(o.freshBuffers, "workload.freshBuffers", true),
        queueDepth: integer(o.queueDepth, "workload.queueDepth", 1, 65536, 8),
      };
    }
    case "trace": {
      const file = o.file;
      if (typeof file !== "string" || file.trim() === "") {
        fail(
          "workload.file",
          `expected the path of a trace file, got ${describe(file)}`,
        );
      }
      const abs = isAbsolute(file) ? file : resolvePath(ctx.baseDir, file);
      let rows = ctx.traces.get(abs);
      if (rows === undefined) {
        let text: string;
        try {
          text = Deno.readTextFileSync(abs);
        } catch (e) {
          fail(
            "workload.file",
            `cannot read the trace file ${JSON.stringify(abs)}: ${
              fileErrorReason(e)
            }`,
          );
        }
        rows = parseTrace(text, file);
        ctx.traces.set(abs, rows);
      }
      checkTraceFits(rows, file, vm.memory);
      return { kind, file: abs, rows };
    }
  }
}

function checkTraceFits(
  rows: readonly TraceRecord[],
  file: string,
  memory: number,
): void {
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (r.iova + r.size > memory) {
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

function resolveCosts(raw: unknown): Readonly<Record<string, number>> {
  if (raw === undefined) return Object.freeze({});
  const o = object(raw, "costs");
  loadCostProfile(o, "costs"); // validates names and values
  return Object.freeze({ ...o }) as Record<string, number>;
}

// ---------------------------------------------------------------------------
// Field helpers: each names the field in its error.

function fail(where: string, message: string): never {
  throw new IopfLabError("EINVAL", `${where}: ${message}`, where);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "number") return String(v);
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object" && v !== null) return "an object";
  if (typeof v === "string" && v.length > 60) {
    return JSON.stringify(v.slice(0, 57) + "...");
  }
  return JSON.stringify(v) ?? String(v);
}

function object(v: unknown, where: string): Record<string, unknown> {
  if (!isObject(v)) fail(where, `expected an object, got ${describe(v)}`);
  return v;
}

function known(
  o: Record<string, unknown>,
  where: string,
  fields: readonly string[],
): void {
  for (const key of Object.keys(o)) {
    if (!fields.includes(key)) {
      fail(
        where ? `${where}.${key}` : key,
        `unknown field (known: ${fields.join(", ")})`,
      );
    }
  }
}

function integer(
  v: unknown,
  where: string,
  min: number,
  max: number,
  dflt: number,
): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    fail(
      where,
      `expected a whole number from ${min} to ${max}, got ${describe(v)}`,
    );
  }
  return v;
}

function powerOfTwo(
  v: unknown,
  where: string,
  min: number,
  max: number,
  dflt: number,
): number {
  if (v === undefined) return dflt;
  const n = typeof v === "number" && Number.isInteger(v) ? v : NaN;
  if (!(n >= min && n <= max && (n & (n - 1)) === 0)) {
    fail(
      where,
      `expected a power of two from ${min} to ${max}, got ${describe(v)}`,
    );
  }
  return n;
}

function fraction(v: unknown, where: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !(v >= 0 && v <= 1)) {
    fail(where, `expected a number from 0 to 1, got ${describe(v)}`);
  }
  return v;
}

function bool(v: unknown, where: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== "boolean") {
    fail(where, `expected true or false, got ${describe(v)}`);
  }
  return v;
}

function choice<T extends string>(
  v: unknown,
  where: string,
  choices: readonly T[],
  dflt: T,
): T {
  if (v === undefined) return dflt;
  if (typeof v !== "string" || !(choices as readonly string[]).includes(v)) {
    const list = choices.map((c) => JSON.stringify(c)).join(", ");
    fail(where, `expected one of ${list}, got ${describe(v)}`);
  }
  return v as T;
}

interface SizeOptions {
  /** Smallest value (default 1). */
  min?: number;
  max?: number;
  align?: number;
  alignWhy?: string;
  example?: string;
}

function size(
  v: unknown,
  where: string,
  dflt: string | number,
  o: SizeOptions = {},
): number {
  if (v === undefined) return parseSize(dflt, where);
  if (typeof v !== "number" && typeof v !== "string") {
    fail(
      where,
      `expected ${o.example ?? 'a size like "1MiB"'}, got ${describe(v)}`,
    );
  }
  let n: number;
  try {
    n = parseSize(v, where);
  } catch (e) {
    if (o.example && e instanceof IopfLabError) {
      fail(where, `expected ${o.example}, got ${describe(v)}`);
    }
    throw e;
  }
  const min = o.min ?? 1;
  if (n < min) {
    fail(
      where,
      min === 1 ? "must be more than 0 bytes" : `must be at least ${min} bytes`,
    );
  }
  if (o.max !== undefined && n > o.max) {
    fail(
      where,
      `${formatSize(n)} is more than the ${
        formatSize(o.max)
      } the model supports`,
    );
  }
  if (o.align !== undefined && n % o.align !== 0) {
    fail(
      where,
      `must be a multiple of ${formatSize(o.align)} ${o.alignWhy}, got ${
        formatSize(n)
      }`,
    );
  }
  return n;
}

function positiveTime(v: unknown, where: string, dflt: string): number {
  if (v !== undefined && typeof v !== "number" && typeof v !== "string") {
    fail(where, `expected a time like "60s", got ${describe(v)}`);
  }
  const n = parseTime(v ?? dflt, where);
  if (!(n > 0) || !Number.isFinite(n)) {
    fail(where, `must be a positive time, got ${describe(v)}`);
  }
  return n;
}

function bandwidth(v: unknown, where: string, dflt: string): number {
  const n = parseBandwidth(v ?? dflt, where);
  if (n > 1e13) fail(where, `at most 10 TB/s, got ${describe(v)}`);
  return n;
}
