/**
 * Bad input, table by table: scenario files, traces, and arguments to the
 * layers. Each case names the error code and a fragment of the message it
 * must give; every one must be an IopfLabError (never a TypeError, a hang
 * or partial output), and a failed call must leave the model's state as it
 * was. Scenario mistakes also go through the command line: exit 2, one line
 * on stderr, no CSV file written.
 */
import assert from "node:assert/strict";
import { runSim as sim } from "../cli/_run.ts";
import {
  expandSweep,
  loadScenario,
  parseScenario,
  parseTrace,
  runScenario,
  runScenarioWithSeries,
} from "../../lib/experiment/mod.ts";
import { IommuCore } from "../../lib/iommu/core.ts";
import { HostMemory } from "../../lib/mm/host_memory.ts";
import { MmStruct } from "../../lib/mm/mm_struct.ts";
import { PciDevice } from "../../lib/pci/pci_device.ts";
import { PriCapability } from "../../lib/pci/pri.ts";
import { IoPgtable } from "../../lib/pgtable/mod.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import { parseSize, SZ_2M } from "../../lib/sim/units.ts";
import { ArmSmmuV3Driver, Smmu, TableMemory } from "../../lib/smmu/mod.ts";
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VfioContainer,
} from "../../lib/vfio/mod.ts";

/** Asserts `fn` throws an IopfLabError with `code` whose message contains `fragment`. */
function assertError(
  fn: () => unknown,
  code: string,
  fragment: string | RegExp,
): IopfLabError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(
    caught instanceof IopfLabError,
    `expected an IopfLabError, got ${caught}`,
  );
  assert.equal(caught.code, code, caught.message);
  assert.ok(caught.message.endsWith(` (${code})`), caught.message);
  assert.ok(!caught.message.includes("\n"), "a one-line message");
  if (typeof fragment === "string") {
    assert.ok(
      caught.message.includes(fragment),
      `${JSON.stringify(caught.message)} lacks ${JSON.stringify(fragment)}`,
    );
  } else {
    assert.match(caught.message, fragment);
  }
  return caught;
}

// ---------------------------------------------------------------------------
// Scenario files

/** A bad scenario: the JSON, the field named, the message fragment. */
type ScenarioCase = readonly [
  what: string,
  json: Record<string, unknown>,
  where: string,
  fragment: string,
];

const w = (workload: Record<string, unknown>) => ({ workload });

const SCENARIO_CASES: readonly ScenarioCase[] = [
  // Sizes
  [
    "negative size",
    { vm: { memory: -4096 } },
    "vm.memory",
    'expected a size like "1MiB", got -4096',
  ],
  [
    "fractional size",
    { vm: { memory: 4096.5 } },
    "vm.memory",
    "expected a whole number of bytes at most 2^52",
  ],
  [
    "fractional unit size",
    { vm: { memory: "1.0001KiB" } },
    "vm.memory",
    "expected a whole number of bytes",
  ],
  [
    "zero size",
    { vm: { memory: 0 } },
    "vm.memory",
    "must be more than 0 bytes",
  ],
  [
    "misaligned size",
    { vm: { memory: 5000 } },
    "vm.memory",
    "must be a multiple of 4 KiB (4 KiB pages), got 4.88 KiB",
  ],
  [
    "misaligned for hugetlb",
    { host: { backing: "hugetlb-2m", memory: "1GiB" }, vm: { memory: "3MiB" } },
    "vm.memory",
    'must be a multiple of 2 MiB with host.backing "hugetlb-2m"',
  ],
  [
    "host misaligned for 1 GiB pages",
    {
      host: { backing: "hugetlb-1g", memory: "1.5GiB" },
      vm: { memory: "1GiB" },
    },
    "host.memory",
    'must be a multiple of 1 GiB with host.backing "hugetlb-1g"',
  ],
  [
    "size beyond 2^52",
    { vm: { memory: 2 ** 53 } },
    "vm.memory",
    "at most 2^52",
  ],
  [
    "host beyond the model",
    { host: { memory: "128TiB" } },
    "host.memory",
    "128 TiB is more than the 16 TiB the model supports",
  ],
  [
    "VM larger than the host",
    { host: { memory: "1GiB" }, vm: { memory: "2GiB" } },
    "vm.memory",
    "2 GiB exceeds host.memory (1 GiB)",
  ],
  [
    "size with a bad unit",
    { vm: { memory: "16GB/s" } },
    "vm.memory",
    'expected a size like "1MiB", got "16GB/s"',
  ],
  ["size as a word", { vm: { memory: "lots" } }, "vm.memory", 'got "lots"'],
  [
    "negative memlock",
    { host: { memlockLimit: -1 } },
    "host.memlockLimit",
    'expected "unlimited" or a size like "64GiB", got -1',
  ],
  [
    "buffer larger than the VM",
    {
      vm: { memory: "16MiB" },
      ...w({ kind: "accelerator", messageSize: "16MiB" }),
    },
    "workload.messageSize",
    "the input and output buffers (32 MiB) must fit in vm.memory (16 MiB)",
  ],
  [
    "ring larger than the VM",
    {
      vm: { memory: "16MiB" },
      ...w({ kind: "nic-rx", ringEntries: 65536, bufferSize: "1MiB" }),
    },
    "workload.ringEntries",
    "must fit in vm.memory",
  ],
  [
    "access larger than the working set",
    w({ kind: "random", workingSet: "1MiB", accessSize: "2MiB" }),
    "workload.accessSize",
    "is larger than workload.workingSet",
  ],
  [
    "block larger than the total",
    w({ kind: "storage", blockSize: "1MiB", totalBytes: "512KiB" }),
    "workload.blockSize",
    "is larger than workload.totalBytes",
  ],
  // NaN and Infinity (JSON cannot hold them, strings can)
  ["NaN size", { vm: { memory: "NaN" } }, "vm.memory", 'got "NaN"'],
  [
    "Infinity size",
    { vm: { memory: "Infinity" } },
    "vm.memory",
    'got "Infinity"',
  ],
  [
    "NaN memlock",
    { host: { memlockLimit: "NaN" } },
    "host.memlockLimit",
    'got "NaN"',
  ],
  [
    "NaN seed",
    { seed: "NaN" },
    "seed",
    'expected a whole number from 0 to 4294967295, got "NaN"',
  ],
  [
    "NaN fraction",
    w({ kind: "random", writeFraction: "NaN" }),
    "workload.writeFraction",
    'expected a number from 0 to 1, got "NaN"',
  ],
  [
    "fraction above 1",
    w({ kind: "random", writeFraction: 1.5 }),
    "workload.writeFraction",
    "expected a number from 0 to 1, got 1.5",
  ],
  [
    "Infinity bandwidth",
    { device: { dmaBandwidth: "Infinity" } },
    "device.dmaBandwidth",
    'got "Infinity"',
  ],
  [
    "zero bandwidth",
    { device: { dmaBandwidth: "0GB/s" } },
    "device.dmaBandwidth",
    "a bandwidth must be positive",
  ],
  [
    "absurd bandwidth",
    { device: { dmaBandwidth: "1e20GB/s" } },
    "device.dmaBandwidth",
    "at most 10 TB/s",
  ],
  [
    "NaN cost",
    { costs: { "pci.atsRoundTrip": "NaN" } },
    "costs.pci.atsRoundTrip",
    "NaN",
  ],
  // Counts
  [
    "huge message count",
    w({ kind: "accelerator", messages: 1e10 }),
    "workload.messages",
    "expected a whole number from 1 to 1000000000, got 10000000000",
  ],
  [
    "huge access count",
    w({ kind: "random", accesses: 2 ** 60 }),
    "workload.accesses",
    "expected a whole number from 1 to 1000000000",
  ],
  [
    "fractional count",
    w({ kind: "nic-rx", packets: 10.5 }),
    "workload.packets",
    "got 10.5",
  ],
  [
    "zero count",
    w({ kind: "accelerator", messages: 0 }),
    "workload.messages",
    "got 0",
  ],
  [
    "too many VMs",
    { vm: { count: 1000 } },
    "vm.count",
    "expected a whole number from 1 to 64, got 1000",
  ],
  [
    "too many sweep points",
    {
      sweep: {
        seed: Array.from({ length: 200 }, (_, i) => i),
        "vm.count": Array.from({ length: 60 }, (_, i) => i + 1),
      },
    },
    "sweep",
    "more than 10000 points",
  ],
  [
    "queue not a power of two",
    { smmu: { evtqEntries: 3 } },
    "smmu.evtqEntries",
    "expected a power of two from 2 to 524288, got 3",
  ],
  [
    "queue of one entry",
    { smmu: { priqEntries: 1 } },
    "smmu.priqEntries",
    "got 1",
  ],
  [
    "queue beyond 2^19",
    { smmu: { priqEntries: 2 ** 20 } },
    "smmu.priqEntries",
    "got 1048576",
  ],
  [
    "IOTLB ways not dividing",
    { smmu: { iotlbEntries: 100, iotlbWays: 8 } },
    "smmu.iotlbWays",
    "8 ways must divide smmu.iotlbEntries (100)",
  ],
  ["no pre-map pages", { dma: { premapPages: 0 } }, "dma.premapPages", "got 0"],
  [
    "no fault workers",
    { dma: { faultWorkers: 0 } },
    "dma.faultWorkers",
    "expected a whole number from 1 to 256, got 0",
  ],
  [
    "PRI capacity 0",
    { device: { priCapacity: 0 } },
    "device.priCapacity",
    "got 0",
  ],
  // SMMU_IDR5.STALL_MAX is a 16-bit field, and at least 1 (IHI0070 6.3.6)
  [
    "STALL_MAX 0",
    { smmu: { stallMax: 0 } },
    "smmu.stallMax",
    "expected a whole number from 1 to 65535, got 0",
  ],
  [
    "STALL_MAX beyond 16 bits",
    { smmu: { stallMax: 65536 } },
    "smmu.stallMax",
    "got 65536",
  ],
  [
    "empty page request groups",
    {
      device: { prgPages: 0 },
    },
    "device.prgPages",
    "got 0",
  ],
  [
    "page request groups larger than the PRI queue",
    {
      smmu: { priqEntries: 4 },
      device: { fault: "pri", prgPages: 16 },
    },
    "device.prgPages",
    "groups of 16 pages cannot fit in smmu.priqEntries (4)",
  ],
  [
    "fractional page request groups",
    {
      device: { prgPages: 1.5 },
    },
    "device.prgPages",
    "got 1.5",
  ],
  ["negative seed", { seed: -1 }, "seed", "got -1"],
  ["seed beyond 32 bits", { seed: 2 ** 32 }, "seed", "got 4294967296"],
  // Unknown enum values
  [
    "unknown stage",
    { smmu: { stage: "s3" } },
    "smmu.stage",
    'expected one of "s1", "s2", "nested", got "s3"',
  ],
  ["unknown mode", { dma: { mode: "lazy-pin" } }, "dma.mode", 'got "lazy-pin"'],
  [
    "unknown fault path",
    { device: { fault: "ats" } },
    "device.fault",
    'expected one of "stall", "pri", got "ats"',
  ],
  [
    "unknown invalidation",
    { smmu: { invalidation: "relaxed" } },
    "smmu.invalidation",
    'expected one of "strict", "lazy"',
  ],
  ["unknown backing", { host: { backing: "2m" } }, "host.backing", 'got "2m"'],
  ["unknown workload", w({ kind: "fft" }), "workload.kind", 'got "fft"'],
  [
    "unknown distribution",
    w({ kind: "random", distribution: "pareto" }),
    "workload.distribution",
    'expected one of "uniform", "zipf", got "pareto"',
  ],
  [
    "unknown guest stage 1",
    { smmu: { stage: "nested" }, guest: { stage1: "eager" } },
    "guest.stage1",
    'got "eager"',
  ],
  [
    "guest stage 1 without nesting",
    { guest: { stage1: "on-fault" } },
    "guest.stage1",
    'only applies when smmu.stage is "nested"',
  ],
  [
    "unknown cost",
    { costs: { "pci.warpDrive": 1 } },
    "costs.pci.warpDrive",
    "unknown cost parameter (known: ",
  ],
  // Wrong types
  [
    "boolean size",
    { vm: { memory: true } },
    "vm.memory",
    'expected a size like "1MiB", got true',
  ],
  [
    "string count",
    { smmu: { iotlbEntries: "2048" } },
    "smmu.iotlbEntries",
    'got "2048"',
  ],
  [
    "string flag",
    { check: "yes" },
    "check",
    'expected true or false, got "yes"',
  ],
  [
    "array workload",
    { workload: [] },
    "workload",
    "expected an object, got an array",
  ],
  ["null section", { vm: null }, "vm", "expected an object, got null"],
  [
    "number name",
    { name: 42 },
    "name",
    "expected a non-empty string of at most 200 characters, got 42",
  ],
  ["empty name", { name: " " }, "name", "expected a non-empty string"],
  [
    "workload without kind",
    { workload: { messages: 3 } },
    "workload.kind",
    "required",
  ],
  [
    "sweep of a non-array",
    { sweep: { seed: 3 } },
    "sweep.seed",
    "expected a non-empty array of values, got 3",
  ],
  [
    "sweep of a bad value",
    { sweep: { "smmu.stage": ["s2", "s9"] } },
    "sweep.smmu.stage[1]",
    'got "s9"',
  ],
  [
    "sweep of an unknown path",
    { sweep: { "vm.colour": ["red"] } },
    "sweep.vm.colour",
    "not a field of the scenario",
  ],
  // Every limit of the model is a limit of the parser (issue 17)
  [
    "premapPages beyond VFIO's 2^18",
    { dma: { premapPages: 2 ** 18 + 1 } },
    "dma.premapPages",
    "expected a whole number from 1 to 262144, got 262145",
  ],
  [
    "host beyond the host model's 16 TiB",
    { host: { memory: "32TiB" } },
    "host.memory",
    "32 TiB is more than the 16 TiB the model supports",
  ],
  [
    "host not a multiple of 2 MiB",
    { host: { memory: "1025MiB" }, vm: { memory: "1GiB" } },
    "host.memory",
    "must be a multiple of 2 MiB (the host memory model allocates RAM in 2 MiB blocks), got 1.00 GiB (1074790400 bytes)",
  ],
  [
    "host of 1 MiB",
    { host: { memory: "1MiB" }, vm: { memory: "1MiB" } },
    "host.memory",
    "must be a multiple of 2 MiB (the host memory model allocates RAM in 2 MiB blocks), got 1 MiB",
  ],
  [
    "guest beyond the largest host",
    { host: { memory: "16TiB" }, vm: { memory: "17TiB" } },
    "vm.memory",
    "17 TiB is more than the 16 TiB the model supports",
  ],
  [
    "event queue beyond LOG2SIZE 19",
    { smmu: { evtqEntries: 2 ** 20 } },
    "smmu.evtqEntries",
    "expected a power of two from 2 to 524288, got 1048576",
  ],
  [
    "PRI queue of one entry",
    { smmu: { priqEntries: 1 } },
    "smmu.priqEntries",
    "expected a power of two from 2 to 524288, got 1",
  ],
  [
    "too many fault workers",
    { dma: { faultWorkers: 257 } },
    "dma.faultWorkers",
    "expected a whole number from 1 to 256, got 257",
  ],
  [
    "too many VMs",
    { vm: { memory: "64MiB", count: 65 } },
    "vm.count",
    "expected a whole number from 1 to 64, got 65",
  ],
  [
    "a time beyond 2^53 ns",
    { dma: { coiommuUnpinInterval: 2 ** 53 + 2 } },
    "dma.coiommuUnpinInterval",
    "a time must be at most 2^53 ns",
  ],
  [
    "a time of 1e400 s",
    { dma: { coiommuUnpinInterval: "1e400s" } },
    "dma.coiommuUnpinInterval",
    "(not a finite number)",
  ],
  [
    "a size beyond 2^52",
    { vm: { memory: 2 ** 54 } },
    "vm.memory",
    "expected a whole number of bytes at most 2^52",
  ],
  [
    "a bandwidth of 1e400",
    { device: { dmaBandwidth: "1e400GB/s" } },
    "device.dmaBandwidth",
    "(not a finite number)",
  ],
  [
    "a cost of 1e308 ns",
    { costs: { "vfio.faultLookup": 1e308 } },
    "costs.vfio.faultLookup",
    "expected a number in [0, 1000000000] (ns per fault), got 1e+308",
  ],
  // Combinations the model does not run
  [
    "nested over viommu-pin",
    { smmu: { stage: "nested" }, dma: { mode: "viommu-pin" } },
    "dma.mode",
    'nested translation is modelled with "iopf" stage 2 or "static-pin"; got "viommu-pin" (with smmu.stage "nested")',
  ],
  [
    "nested over coiommu",
    { smmu: { stage: "nested" }, dma: { mode: "coiommu" } },
    "dma.mode",
    'got "coiommu" (with smmu.stage "nested")',
  ],
  [
    "a swept mode under nested",
    { smmu: { stage: "nested" }, sweep: { "dma.mode": ["iopf", "coiommu"] } },
    "sweep.dma.mode[1]",
    'got "coiommu" (with smmu.stage "nested")',
  ],
  // Pathological parameters
  [
    "unpin interval of 1 ns",
    { dma: { coiommuUnpinInterval: "1ns" } },
    "dma.coiommuUnpinInterval",
    "1 ns is shorter than 1.00 ms: the unpin thread is a timer-driven kthread, and Linux timers have jiffy granularity (1-10 ms at HZ 1000-100)",
  ],
  [
    "unpin interval of 1e-9 ns",
    { dma: { coiommuUnpinInterval: 1e-9 } },
    "dma.coiommuUnpinInterval",
    "1e-9 ns is shorter than 1.00 ms",
  ],
  [
    "unpin interval just below 1 ms",
    { dma: { coiommuUnpinInterval: "999us" } },
    "dma.coiommuUnpinInterval",
    "999.00 us is shorter than 1.00 ms",
  ],
  // Unknown fields
  [
    "unknown top-level field",
    { sede: 1 },
    "sede",
    "unknown field (known: name, seed, host, vm",
  ],
  [
    "misspelled field",
    { vm: { memroy: "4GiB" } },
    "vm.memroy",
    "unknown field (known: memory, count)",
  ],
  [
    "field of another workload",
    w({ kind: "boot", messages: 3 }),
    "workload.messages",
    'unknown field for kind "boot" (it has no other fields)',
  ],
];

Deno.test("bad scenario files: EINVAL naming the field", async (t) => {
  for (const [what, json, where, fragment] of SCENARIO_CASES) {
    await t.step(what, () => {
      const e = assertError(() => parseScenario(json), "EINVAL", fragment);
      assert.equal(e.where, where, e.message);
      assert.ok(e.message.startsWith(`${where}: `), e.message);
    });
  }
});

Deno.test("a VM too small for its guest is EINVAL naming vm.memory when it is built", () => {
  for (const [stage, memory] of [["s2", "2MiB"], ["nested", "4MiB"]] as const) {
    const s = parseScenario({ vm: { memory }, smmu: { stage } });
    const e = assertError(
      () => runScenario(s),
      "EINVAL",
      `vm.memory: ${
        memory.replace("MiB", " MiB")
      } leaves no room for DMA buffers`,
    );
    assert.equal(e.where, "vm.memory");
  }
});

Deno.test("bad scenario files on the command line: exit 2, one stderr line, no CSV", async (t) => {
  const dir = Deno.makeTempDirSync({ prefix: "iopf-bad-" });
  try {
    const cases: [string, Record<string, unknown>, string][] = [
      ...SCENARIO_CASES.map(([what, json, _w, fragment]) =>
        [what, json, fragment] as [string, Record<string, unknown>, string]
      ),
      [
        "VM too small (found when built)",
        { vm: { memory: "2MiB" } },
        "leaves no room for DMA buffers",
      ],
    ];
    for (const [i, [what, json, fragment]] of cases.entries()) {
      await t.step(what, async () => {
        const file = `${dir}/case${i}.json`;
        Deno.writeTextFileSync(file, JSON.stringify(json));
        const csv = `${dir}/out.csv`;
        const r = await sim([file, "--json", "--csv", csv]);
        assert.equal(r.code, 2, r.stderr);
        assert.equal(r.stdout, "");
        assert.equal(r.stderr.split("\n").length, 2, r.stderr); // one line + final newline
        assert.ok(r.stderr.startsWith(`${file}: `), r.stderr);
        assert.ok(r.stderr.includes(fragment), r.stderr);
        assert.throws(() => Deno.statSync(csv), Deno.errors.NotFound);
      });
    }
    assert.deepEqual(
      [...Deno.readDirSync(dir)].filter((e) => !e.name.endsWith(".json")),
      [],
      "a temporary file was left behind",
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// Traces

const HEADER = "time_ns,stream,op,iova,size";

/** A bad trace: its text, where the error points, the message fragment. */
const TRACE_CASES: readonly [string, string, string, string][] = [
  [
    "empty file",
    "",
    "t.csv:1",
    "empty trace: expected the header line time_ns,stream,op,iova,size",
  ],
  [
    "header only",
    `${HEADER}\n`,
    "t.csv:2",
    "empty trace: no accesses after the header",
  ],
  [
    "unknown column",
    "time,stream,op,iova,size\n0,0,w,0,4096\n",
    "t.csv:1",
    'unknown column "time"',
  ],
  [
    "missing column",
    "time_ns,stream,op,iova\n0,0,w,0\n",
    "t.csv:1",
    'missing column "size"',
  ],
  [
    "column twice",
    "time_ns,stream,op,iova,size,op\n",
    "t.csv:1",
    'column "op" appears twice',
  ],
  ["short line", `${HEADER}\n0,0,w,0\n`, "t.csv:2", "expected 5 fields, got 4"],
  [
    "bad op",
    `${HEADER}\n0,0,w,0,4096\n1,0,x,0,4096\n`,
    "t.csv:3: op",
    'expected "r", "w", "read" or "write", got "x"',
  ],
  [
    "time going back",
    `${HEADER}\n100,0,w,0,4096\n50,0,r,0,4096\n`,
    "t.csv:3: time_ns",
    "50 is before the previous access of stream 0 (100)",
  ],
  ["NaN time", `${HEADER}\nNaN,0,w,0,4096\n`, "t.csv:2: time_ns", 'got "NaN"'],
  [
    "negative time",
    `${HEADER}\n-5,0,w,0,4096\n`,
    "t.csv:2: time_ns",
    'got "-5"',
  ],
  [
    "bad stream",
    `${HEADER}\n0,1048576,w,0,4096\n`,
    "t.csv:2: stream",
    "expected a whole number from 0 to 1048575",
  ],
  [
    "bad address",
    `${HEADER}\n0,0,w,zz,4096\n`,
    "t.csv:2: iova",
    'expected an address like 0x1000 or 4096 below 2^52, got "zz"',
  ],
  [
    "address beyond 2^52",
    `${HEADER}\n0,0,w,0x10000000000000,4096\n`,
    "t.csv:2: iova",
    "below 2^52",
  ],
  [
    "access crossing 2^52",
    `${HEADER}\n0,0,w,0xffffffffff000,0x2000\n`,
    "t.csv:2: iova",
    "goes beyond 2^52",
  ],
  [
    "zero size",
    `${HEADER}\n0,0,w,0,0\n`,
    "t.csv:2: size",
    "must be more than 0 bytes",
  ],
  [
    "a time of 1e400 ns",
    `${HEADER}\n1e400,0,w,0,4096\n`,
    "t.csv:2: time_ns",
    'expected a time like "2us", got "1e400" (not a finite number)',
  ],
  [
    "a time beyond 2^53 ns",
    `${HEADER}\n9007199254740994,0,w,0,4096\n`,
    "t.csv:2: time_ns",
    "a time must be at most 2^53 ns",
  ],
  [
    "missing value",
    `${HEADER}\n0,,w,0,4096\n`,
    "t.csv:2: stream",
    "missing value",
  ],
];

Deno.test("bad traces: EINVAL naming the file, line and column", async (t) => {
  for (const [what, text, where, fragment] of TRACE_CASES) {
    await t.step(what, () => {
      const e = assertError(
        () => parseTrace(text, "t.csv"),
        "EINVAL",
        fragment,
      );
      assert.equal(e.where, where);
    });
  }
  await t.step("address beyond guest RAM (in a scenario)", () => {
    const dir = Deno.makeTempDirSync({ prefix: "iopf-trace-" });
    try {
      Deno.writeTextFileSync(
        `${dir}/t.csv`,
        `${HEADER}\n0,0,w,0x1000,4096\n5,0,r,0x3fff000,8192\n`,
      );
      const e = assertError(
        () =>
          parseScenario({
            vm: { memory: "64MiB" },
            workload: { kind: "trace", file: "t.csv" },
          }, { baseDir: dir }),
        "EINVAL",
        "t.csv:3: iova: 0x3fff000 + 8192 bytes goes beyond vm.memory (64 MiB)",
      );
      assert.equal(e.where, "t.csv:3: iova");
      assertError(
        () =>
          parseScenario({ workload: { kind: "trace", file: "none.csv" } }, {
            baseDir: dir,
          }),
        "EINVAL",
        "cannot read the trace file",
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
});

// ---------------------------------------------------------------------------
// Encodings, and the errors found when a sweep point runs

const utf8 = (t: string) => new TextEncoder().encode(t);

Deno.test("a scenario file that is not UTF-8: exit 2 naming the file and offset; a BOM is dropped", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "iopf-utf8-" });
  try {
    const bad = `${dir}/bad.json`;
    const head = utf8('{"name": "caf');
    Deno.writeFileSync(bad, new Uint8Array([...head, 0xe9, ...utf8('"}')]));
    const r = await sim([bad, "--json"]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      `${bad}: not UTF-8 text (invalid byte at offset ${head.length}) (EINVAL)\n`,
    );
    const e = assertError(
      () => loadScenario(bad),
      "EINVAL",
      `invalid byte at offset ${head.length}`,
    );
    assert.equal(e.where, bad);
    const bom = `${dir}/bom.json`;
    const json = '{"vm": {"memory": "64MiB"}}';
    Deno.writeFileSync(bom, new Uint8Array([0xef, 0xbb, 0xbf, ...utf8(json)]));
    assert.equal(loadScenario(bom).vm.memory, 64 * 2 ** 20);
    const ok = await sim([bom, "--json"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).name, "bom");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a trace file that is not UTF-8 is EINVAL naming it and the offset; a BOM is dropped", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "iopf-utf8-" });
  try {
    const head = utf8(`${HEADER}\n0,0,w,0,4096\n`);
    Deno.writeFileSync(
      `${dir}/bad.csv`,
      new Uint8Array([...head, 0xc3, 0x28, ...utf8("\n")]),
    );
    const trace = (file: string) => ({
      vm: { memory: "64MiB" },
      workload: { kind: "trace", file },
    });
    const e = assertError(
      () => parseScenario(trace("bad.csv"), { baseDir: dir }),
      "EINVAL",
      `bad.csv: not UTF-8 text (invalid byte at offset ${head.length})`,
    );
    assert.equal(e.where, "bad.csv");
    Deno.writeFileSync(
      `${dir}/bom.csv`,
      new Uint8Array([0xef, 0xbb, 0xbf, ...utf8(`${HEADER}\n0,0,w,0,4096\n`)]),
    );
    const s = parseScenario(trace("bom.csv"), { baseDir: dir });
    assert.equal(s.workload.kind === "trace" && s.workload.summary.rows, 1);
    // On the command line: exit 2, one line, for a bad byte and a time of 1e400.
    Deno.writeTextFileSync(`${dir}/t400.csv`, `${HEADER}\n1e400,0,w,0,4096\n`);
    for (
      const [csv, fragment] of [
        ["bad.csv", "not UTF-8 text"],
        [
          "t400.csv",
          't400.csv:2: time_ns: expected a time like "2us", got "1e400"',
        ],
      ]
    ) {
      const file = `${dir}/${csv}.json`;
      Deno.writeTextFileSync(file, JSON.stringify(trace(csv!)));
      const r = await sim([file]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.split("\n").length, 2, r.stderr);
      assert.ok(r.stderr.startsWith(`${file}: `), r.stderr);
      assert.ok(r.stderr.includes(fragment!), r.stderr);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a sweep point that fails when it runs says which point (exit 2, one line)", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "iopf-point-" });
  try {
    const file = `${dir}/sw.json`;
    Deno.writeTextFileSync(
      file,
      JSON.stringify({ sweep: { "vm.memory": ["64MiB", "2MiB"] } }),
    );
    const r = await sim([file, "--json"]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, "");
    assert.ok(
      r.stderr.startsWith(
        `${file}: sweep point sw[vm.memory=2MiB]: vm.memory: 2 MiB leaves no room for DMA buffers`,
      ),
      r.stderr,
    );
    assert.equal(r.stderr.split("\n").length, 2, r.stderr);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// The library's entry points

const circular: unknown[] = [];
circular.push(circular);
const resolved = parseScenario({ vm: { memory: "64MiB" } });

/** A malformed argument: the call, the argument or field named, the fragment. */
const LIBRARY_CASES: readonly [string, () => unknown, string, string][] = [
  [
    "runScenario(null)",
    () => runScenario(null as never),
    "scenario",
    "expected a resolved scenario object, got null",
  ],
  [
    "runScenario({})",
    () => runScenario({} as never),
    "scenario.name",
    "expected a non-empty string, got nothing",
  ],
  [
    "runScenario(JSON text)",
    () => runScenario('{"vm": {"memory": "4GiB"}}' as never),
    "scenario",
    "expected a resolved scenario object, got a string",
  ],
  [
    "runScenario(unresolved JSON)",
    () =>
      runScenario({ ...resolved, vm: { memory: "4GiB", count: 1 } } as never),
    "scenario.vm.memory",
    'got "4GiB" (resolve the scenario\'s JSON with parseScenario first)',
  ],
  [
    "runScenario with a BigInt seed",
    () => runScenario({ ...resolved, seed: 1n } as never),
    "scenario.seed",
    "expected a whole number from 0 to 4294967295, got 1n (a BigInt)",
  ],
  [
    "runScenario of a workload of no kind",
    () => runScenario({ ...resolved, workload: { kind: "ftp" } } as never),
    "scenario.workload.kind",
    'got "ftp"',
  ],
  [
    "runScenario of an unsupported pair",
    () =>
      runScenario({
        ...resolved,
        smmu: { ...resolved.smmu, stage: "nested" },
        dma: { ...resolved.dma, mode: "coiommu" },
      }),
    "dma.mode",
    'got "coiommu" (with smmu.stage "nested")',
  ],
  [
    "runScenarioWithSeries(s, null)",
    () => runScenarioWithSeries(resolved, null as never),
    "options",
    "expected an object, got null",
  ],
  [
    "runScenarioWithSeries livelockNs NaN",
    () => runScenarioWithSeries(resolved, { livelockNs: NaN }),
    "options.livelockNs",
    "expected a positive number of ns (or Infinity), got NaN",
  ],
  [
    "runScenarioWithSeries of a bad mix",
    () =>
      runScenarioWithSeries(
        resolved,
        { workloads: [{ kind: "ftp" }] } as never,
      ),
    "options.workloads[0].kind",
    'got "ftp"',
  ],
  [
    "parseScenario with a BigInt seed",
    () => parseScenario({ seed: 1n }),
    "seed",
    "got 1n (a BigInt)",
  ],
  [
    "a circular sweep value",
    () => parseScenario({ sweep: { seed: [1, circular] } }),
    "sweep.seed[1]",
    "a circular value (not JSON)",
  ],
  [
    "a sweep value of NaN",
    () => parseScenario({ sweep: { seed: [NaN] } }),
    "sweep.seed[0]",
    "expected a JSON value, got NaN (not a finite number)",
  ],
  [
    "a sweep value of a BigInt",
    () => parseScenario({ sweep: { seed: [2n] } }),
    "sweep.seed[0]",
    "expected a JSON value, got 2n (a BigInt)",
  ],
  [
    "parseScenario(null)",
    () => parseScenario(null),
    "scenario",
    "expected an object, got null",
  ],
  [
    "parseScenario(42)",
    () => parseScenario(42),
    "scenario",
    "expected an object, got 42",
  ],
  [
    "parseScenario([])",
    () => parseScenario([]),
    "scenario",
    "expected an object, got an array",
  ],
  [
    "parseScenario(undefined)",
    () => parseScenario(undefined),
    "scenario",
    "expected an object, got nothing",
  ],
  [
    "parseScenario(JSON text)",
    () => parseScenario('{"seed": 1}'),
    "scenario",
    "expected an object, got a string (parse JSON text with JSON.parse first",
  ],
  [
    "parseScenario with a bad baseDir",
    () => parseScenario({}, { baseDir: 42 } as never),
    "options.baseDir",
    "expected a non-empty string, got 42",
  ],
  [
    "parseTrace(42)",
    () => parseTrace(42 as never, "t.csv"),
    "text",
    "expected a string, got number",
  ],
  [
    "parseTrace(null)",
    () => parseTrace(null as never, "t.csv"),
    "text",
    "expected a string, got null",
  ],
  [
    "expandSweep(null)",
    () => expandSweep(null as never),
    "scenario",
    "expected a resolved scenario object, got null",
  ],
  [
    "expandSweep(scenario JSON)",
    () => expandSweep({ name: "x", sweep: { seed: [1] } } as never),
    "scenario.seed",
    "got nothing",
  ],
  [
    "expandSweep of a bad axis",
    () =>
      expandSweep({ ...resolved, sweep: [["seed", [1, circular]]] } as never),
    "sweep.seed[1]",
    "a circular value (not JSON)",
  ],
  [
    "loadScenario(42)",
    () => loadScenario(42 as never),
    "file",
    "expected the path of a scenario file, got 42",
  ],
];

Deno.test("the library's entry points: EINVAL naming the argument, never a TypeError", async (t) => {
  for (const [what, fn, where, fragment] of LIBRARY_CASES) {
    await t.step(what, () => {
      const e = assertError(fn, "EINVAL", fragment);
      assert.equal(e.where, where, e.message);
      assert.ok(e.message.startsWith(`${where}: `), e.message);
    });
  }
  await t.step("a resolved scenario and its points still run", () => {
    assert.equal(runScenario(resolved).extra?.vmsStarted, 1);
    const points = expandSweep(parseScenario({
      vm: { memory: "64MiB" },
      sweep: { seed: [1, 2] },
    }));
    assert.deepEqual(points.map((p) => runScenario(p).seed), [1, 2]);
  });
});

// ---------------------------------------------------------------------------
// Arguments to the layers

Deno.test("bad arguments to the layers: a clear error and no change of state", async (t) => {
  const costs = loadCostProfile();
  await t.step("units", () => {
    assertError(() => parseSize("NaN"), "EINVAL", 'got "NaN"');
    assertError(() => parseSize(-1), "EINVAL", "got -1");
    assertError(() => parseSize(2 ** 53), "EINVAL", "at most 2^52");
    assertError(() => parseSize({}), "EINVAL", "expected a size");
  });

  await t.step("simulator", () => {
    const sim = new Simulator();
    sim.after(10, () => {});
    sim.run();
    assertError(() => sim.at(5, () => {}), "EINVAL", "the clock is at 10 ns");
    assert.equal(sim.pending, 0);
  });

  await t.step("io-pgtable map and unmap", () => {
    const pt = new IoPgtable({ stage: 2 });
    pt.map(0x20_0000, 0x100_0000, SZ_2M, 3);
    const before = JSON.stringify(pt.mappings());
    assertError(
      () => pt.map(0x1234, 0x10_0000, 0x1000, 3),
      "EINVAL",
      "not a 4 KiB aligned address",
    );
    assertError(
      () => pt.map(0x1000, 0x10_0800, 0x1000, 3),
      "EINVAL",
      "Cannot map IOVA 0x1000",
    );
    assertError(
      () => pt.map(0x1000, 0x10_0000, 0x1800, 3),
      "EINVAL",
      "Cannot map",
    );
    assertError(
      () => pt.map(2 ** 48, 0x10_0000, 0x1000, 3),
      "EINVAL",
      "Cannot map",
    );
    assertError(
      () => pt.map(0x1000, 2 ** 48, 0x1000, 3),
      "EINVAL",
      "Cannot map",
    );
    assertError(
      () => pt.map(0x1000, 0x10_0000, 0x1000, 0),
      "EINVAL",
      "Cannot map",
    );
    assertError(() => pt.map(0x1000, 0x10_0000, 0, 3), "EINVAL", "Cannot map");
    assertError(
      () => pt.map(NaN, 0x10_0000, 0x1000, 3),
      "EINVAL",
      "Cannot map",
    );
    assertError(
      () => pt.map(0x1f_f000, 0x10_0000, 0x2000, 3),
      "EEXIST",
      "Cannot map IOVA 0x1ff000",
    );
    assertError(() => pt.unmap(0x1234, 0x1000), "EINVAL", "Cannot unmap");
    assertError(() => pt.unmap(2 ** 48, 0x1000), "EINVAL", "Cannot unmap");
    assert.equal(JSON.stringify(pt.mappings()), before);
    pt.assertConsistent();
  });

  await t.step("SMMU, queues, PRI capability, PCIe function", () => {
    const memory = new TableMemory();
    const sim = new Simulator();
    assertError(
      () => new Smmu(sim, { costs, memory, evtqLog2: 20 }),
      "EINVAL",
      "log2Size must be a whole number in 0..19, got 20",
    );
    assertError(
      () => new Smmu(sim, { costs, memory, priqLog2: -1 }),
      "EINVAL",
      "got -1",
    );
    assertError(
      () => new Smmu(sim, { costs, memory, cmdqLog2: 1.5 }),
      "EINVAL",
      "got 1.5",
    );
    assertError(
      () => new PriCapability({ capacity: 0 }),
      "EINVAL",
      "capacity must be a whole number >= 1, got 0",
    );
    const pri = new PriCapability({ capacity: 8 });
    assertError(
      () => pri.setAllocation(-1),
      "EINVAL",
      "Cannot set the PRI allocation to -1",
    );
    assertError(() => pri.setAllocation(NaN), "EINVAL", "not a whole number");
    assert.equal(pri.allocation, 0);
    pri.setAllocation(4);
    pri.writeControl(1);
    assertError(
      () => pri.setAllocation(2),
      "EBUSY",
      "PRI must be disabled and stopped",
    );
    assert.equal(pri.allocation, 4);
    const smmu = new Smmu(sim, { costs, memory });
    assertError(
      () =>
        new PciDevice(sim, {
          name: "f",
          sid: 1,
          smmu,
          costs,
          ats: false,
          pri: true,
        }),
      "EINVAL",
      "PRI needs ATS",
    );
    assertError(
      () => new PciDevice(sim, { name: "f", sid: 1, smmu, costs, prgPages: 0 }),
      "EINVAL",
      "prgPages must be a whole number >= 1, got 0",
    );
    assertError(
      () =>
        new PciDevice(sim, {
          name: "f",
          sid: 1,
          smmu,
          costs,
          bandwidth: "fast",
        }),
      "EINVAL",
      'f.bandwidth: expected a bandwidth like "8GB/s" or "10Gbps", got "fast" (bits: "Gb/s", "Gbps", "Gbit/s"; bytes: "GB/s", "GBps")',
    );
    const dev = new PciDevice(sim, {
      name: "f",
      sid: 2,
      smmu,
      costs,
      priCapacity: 4,
    });
    assertError(
      () => dev.dma({ iova: -4096, size: 4096, write: true }, () => {}),
      "EINVAL",
      "bad IOVA -4096",
    );
    assertError(
      () => dev.dma({ iova: 0, size: 0, write: true }, () => {}),
      "EINVAL",
      "bad size 0",
    );
    assertError(
      () => dev.dma({ iova: 0, size: NaN, write: true }, () => {}),
      "EINVAL",
      "bad size NaN",
    );
    assertError(
      () =>
        dev.dma({ iova: 0, size: 4096, write: true, pasid: 2 ** 20 }, () => {}),
      "EINVAL",
      "PASID 1048576 is not in 0..2^20-1",
    );
    assert.equal(dev.stats.transfers, 0);
    assert.equal(sim.pending, 0);
  });

  await t.step("address space: pins, limits, bad ranges", () => {
    const host = new HostMemory({ size: 64 * 2 ** 20, costs });
    assertError(
      () => new MmStruct(host, { memlockLimit: -1 }),
      "EINVAL",
      "memlockLimit must be a whole number of bytes or Infinity, got -1",
    );
    assertError(
      () => new MmStruct(host, { memlockLimit: NaN }),
      "EINVAL",
      "got NaN",
    );
    const mm = new MmStruct(host, { memlockLimit: 4096 });
    const vma = mm.mmap({ size: 32 * 2 ** 20, backing: "4k" });
    mm.pinUserPages(vma.start, 1, { longterm: true });
    mm.accountLockedVm(1, true);
    const state = () =>
      JSON.stringify([
        mm.pinnedPages,
        mm.lockedVm,
        mm.populatedBytes,
        host.usedBytes,
      ]);
    const before = state();
    assertError(
      () => mm.accountLockedVm(1, true),
      "ENOMEM",
      "exceeds RLIMIT_MEMLOCK of 1 pages",
    );
    assertError(
      () => mm.accountLockedVm(2, false),
      "EINVAL",
      "only 1 are charged",
    );
    assertError(
      () => mm.pinUserPages(vma.start + 1, 1, { longterm: true }),
      "EINVAL",
      "not aligned",
    );
    assertError(
      () => mm.pinUserPages(vma.end, 1, { longterm: true }),
      "EFAULT",
      "is not mapped",
    );
    assertError(
      () => mm.pinUserPages(vma.end - 4096, 2, { longterm: true }),
      "EFAULT",
      "is not mapped",
    );
    assertError(
      () => mm.pinUserPages(vma.start, -1, { longterm: true }),
      "EINVAL",
      "",
    );
    assertError(
      () =>
        mm.pinUserPages(vma.start, 2, {
          longterm: true,
          out: new Float64Array(1),
        }),
      "EINVAL",
      "the out array holds only 1",
    );
    assertError(
      () => mm.unpinUserPages(vma.start + 4096, 1),
      "EINVAL",
      "is not pinned",
    );
    assertError(() => mm.munmap(vma.start, 4096), "EINVAL", "cuts the mapping");
    assertError(
      () => mm.munmap(vma.start, vma.size),
      "EBUSY",
      "1 pages are pinned",
    );
    assertError(() => mm.exitMmap(), "EBUSY", "1 pages are pinned");
    assertError(() => mm.mmap({ size: 5000, backing: "4k" }), "EINVAL", "");
    // Host memory runs out (64 MiB host, a 128 MiB mapping, no reclaim): all or nothing.
    const big = mm.mmap({ size: 128 * 2 ** 20, backing: "4k" });
    assertError(
      () => mm.pinUserPages(big.start, 128 * 256, { longterm: true }),
      "ENOMEM",
      "",
    );
    assert.equal(state(), before);
  });

  await t.step("VFIO MAP_DMA and UNMAP_DMA", () => {
    const sim = new Simulator();
    const memory = new TableMemory();
    const smmu = new Smmu(sim, { costs, memory });
    const driver = new ArmSmmuV3Driver(sim, smmu, { costs, memory });
    const core = new IommuCore(sim, { costs, driver });
    driver.setFaultSink(core);
    const host = new HostMemory({ size: 256 * 2 ** 20, costs });
    const mm = new MmStruct(host, { memlockLimit: 16 * 2 ** 20 });
    const ram = mm.mmap({ size: 64 * 2 ** 20, backing: "4k" });
    const c = new VfioContainer(core, mm);
    const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
    const map = (
      iova: number,
      size: number,
      vaddr = ram.start + iova,
      flags = RW,
    ) => c.mapDma({ vaddr, iova, size, flags });
    assertError(
      () => map(0, 4096),
      "EINVAL",
      "no IOMMU set (VFIO_SET_IOMMU first)",
    );
    c.setIommu("type1v2");
    assertError(() => c.setIommu("type1v2"), "EBUSY", "it is already type1v2");
    map(0x10_0000, 0x10_0000);
    map(0x30_0000, 0x10_0000);
    const state = () =>
      JSON.stringify([
        c.dmas(),
        c.pinnedPages,
        c.lockedPages,
        mm.pinnedPages,
        mm.lockedVm,
      ]);
    const before = state();
    assertError(
      () => map(0x18_0000, 0x10_0000),
      "EEXIST",
      "Cannot map DMA IOVA 0x180000+0x100000: overlaps the vfio_dma at 0x100000",
    );
    assertError(
      () => map(0x0, 0x20_0000),
      "EEXIST",
      "overlaps the vfio_dma at 0x100000",
    );
    assertError(() => map(0x0, 0x100_0000), "EEXIST", "overlaps");
    assertError(
      () => map(0x1000, 0x800),
      "EINVAL",
      "size 2048 is not a 4 KiB aligned address",
    );
    assertError(
      () => map(0x1800, 0x1000, ram.start),
      "EINVAL",
      "iova 6144 is not a 4 KiB aligned address",
    );
    assertError(() => map(0x1000, 0x1000, ram.start + 12), "EINVAL", "vaddr");
    assertError(() => map(0x1000, 0), "EINVAL", "size is 0");
    assertError(
      () => map(0x1000, 0x1000, undefined, 0),
      "EINVAL",
      "flags 0 must be READ and/or WRITE",
    );
    assertError(() => map(0x1000, 0x1000, undefined, 4), "EINVAL", "flags 4");
    assertError(
      () => map(2 ** 52 - 0x1000, 0x2000, ram.start),
      "EINVAL",
      "overflows the 2^52 address space",
    );
    assertError(() => map(0x1000, 0x1000, 0x1000), "EFAULT", "not mapped");
    assertError(
      () => map(0x100_0000, 32 * 2 ** 20),
      "ENOMEM",
      "exceeds RLIMIT_MEMLOCK",
    );
    assertError(
      () => c.unmapDma({ iova: 0x18_0000, size: 0x10_0000 }),
      "EINVAL",
      "it would split the vfio_dma at 0x100000-0x200000",
    );
    assertError(
      () => c.unmapDma({ iova: 0x10_0000, size: 0x1000 }),
      "EINVAL",
      "it would split",
    );
    assertError(
      () => c.unmapDma({ iova: 0x0, size: 0x38_0000 }),
      "EINVAL",
      "it would split the vfio_dma at 0x300000-0x400000",
    );
    assertError(
      () => c.unmapDma({ iova: 0x10_0800, size: 0x1000 }),
      "EINVAL",
      "4 KiB aligned",
    );
    assertError(
      () => c.unmapDma({ iova: 0x10_0000, size: -4096 }),
      "EINVAL",
      "size positive",
    );
    assert.equal(state(), before);
    sim.run();
    assert.equal(state(), before);
    assert.equal(c.unmapDma({ iova: 0, size: 0x10_0000 }).bytes, 0);
    c.release();
    sim.run();
    assertError(
      () => map(0x1000, 0x1000),
      "ENODEV",
      "the container was released",
    );
    assert.equal(mm.pinnedPages, 0);
    assert.equal(mm.lockedVm, 0);
  });

  await t.step("IOMMU core", () => {
    const sim = new Simulator();
    const memory = new TableMemory();
    const driver = new ArmSmmuV3Driver(sim, new Smmu(sim, { costs, memory }), {
      costs,
      memory,
    });
    assertError(
      () =>
        new IommuCore(sim, {
          costs,
          driver,
          invalidation: "sometimes" as "lazy",
        }),
      "EINVAL",
      'invalidation must be "strict" or "lazy", got sometimes',
    );
    const core = new IommuCore(sim, { costs, driver });
    assertError(
      () => core.domainAllocPaging(3 as 1),
      "EINVAL",
      "stage must be 1 or 2, got 3",
    );
    const d = core.domainAllocPaging(2);
    core.map(d, 0x10_0000, 0x20_0000, 0x1000, 3);
    assertError(
      () => core.map(d, 0x10_0800, 0x20_0000, 0x1000, 3),
      "EINVAL",
      "IOVA and size must be positive multiples of 0x1000 below 2^52",
    );
    assertError(
      () => core.map(d, 0x11_0000, 0x20_0800, 0x1000, 3),
      "EINVAL",
      "physical address 0x200800 is misaligned",
    );
    assertError(
      () => core.map(d, 0x11_0000, 0x20_0000, 0x1000, 8),
      "EINVAL",
      "prot 8 must be READ and/or WRITE",
    );
    assertError(
      () => core.map(d, 0x10_0000, 0x20_0000, 0x1000, 3),
      "EEXIST",
      "",
    );
    assert.equal(d.mappedBytes, 0x1000);
    assert.equal(core.iovaToPhys(d, 0x10_0000), 0x20_0000);
    assert.equal(core.iovaToPhys(d, 0x11_0000), -1);
  });
});
