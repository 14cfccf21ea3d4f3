import assert from "node:assert/strict";
import fc from "fast-check";
import {
  expandSweep,
  loadScenario,
  parseScenario,
  type Scenario,
  scenarioToJson,
  touchedBytes,
} from "../../lib/experiment/scenario.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";

const GiB = 2 ** 30;

/** Asserts that parsing `json` fails with EINVAL and a message starting with `start`. */
function assertRejects(
  json: unknown,
  start: string,
  includes?: string,
): IopfLabError {
  try {
    parseScenario(json);
  } catch (e) {
    assert.ok(e instanceof IopfLabError, `not an IopfLabError: ${e}`);
    assert.equal(e.code, "EINVAL");
    assert.ok(
      e.message.startsWith(start),
      `message ${JSON.stringify(e.message)} does not start with ${
        JSON.stringify(start)
      }`,
    );
    if (includes) {
      assert.ok(e.message.includes(includes), `${e.message} lacks ${includes}`);
    }
    return e;
  }
  assert.fail(`no error for ${JSON.stringify(json)}`);
}

Deno.test("parseScenario fills every default", () => {
  const s = parseScenario({});
  assert.deepEqual(s, {
    name: "scenario",
    seed: 1,
    host: {
      memory: 512 * GiB,
      backing: "4k",
      prefault: false,
      prefaultThreads: 1,
      swap: Infinity,
      memlockLimit: Infinity,
      frameOrder: "scattered",
    },
    vm: { memory: 16 * GiB, count: 1 },
    smmu: {
      stage: "s2",
      iotlbEntries: 2048,
      iotlbWays: 4,
      evtqEntries: 256,
      priqEntries: 256,
      invalidation: "strict",
      stallMax: 64,
      configCacheEntries: 64,
      walkCache: true,
      xlateSlots: 64,
      ptwSlots: 16,
    },
    device: {
      fault: "stall",
      priCapacity: 256,
      prgPages: 1,
      dmaBandwidth: 8e9,
      dmaSlots: 16,
    },
    iommu: { faultPath: "evtq-thread" },
    dma: {
      mode: "static-pin",
      backend: "type1",
      premapPages: 1,
      mmuNotifier: false,
      faultWorkers: 1,
      coiommuUnpinPolicy: "off",
      coiommuUnpinInterval: 60e9,
      coiommuGenerationThreshold: 10,
    },
    guest: { stage1: "premapped", touchedMemory: "50%" },
    workload: { kind: "boot" },
    costs: {},
    costSpread: true,
    check: false,
    sweep: [],
  });
});

Deno.test("parseScenario fills workload defaults per kind", () => {
  const w = (kind: string) => parseScenario({ workload: { kind } }).workload;
  assert.deepEqual(w("accelerator"), {
    kind: "accelerator",
    messageSize: 2 ** 20,
    messages: 100,
    reuseBuffers: true,
    chunkSize: 65536,
    cpuWritesInput: true,
  });
  assert.deepEqual(w("random"), {
    kind: "random",
    workingSet: GiB,
    accesses: 1_000_000,
    accessSize: 4096,
    distribution: "uniform",
    writeFraction: 0.5,
    queueDepth: 16,
  });
  assert.deepEqual(w("nic-rx"), {
    kind: "nic-rx",
    ringEntries: 1024,
    bufferSize: 2048,
    packets: 100_000,
    rate: 1.25e9,
  });
  assert.deepEqual(w("storage"), {
    kind: "storage",
    blockSize: 128 * 1024,
    totalBytes: 4 * GiB,
    freshBuffers: true,
    queueDepth: 8,
  });
});

Deno.test("parseScenario converts units", () => {
  const s = parseScenario({
    name: "units",
    seed: 7,
    host: { memory: "1TiB", backing: "hugetlb-2m", memlockLimit: "64GiB" },
    vm: { memory: 8 * GiB },
    device: { dmaBandwidth: "10Gbps" },
    workload: { kind: "nic-rx", rate: "25Gbps", bufferSize: 4096 },
    costs: { "vfio.faultLookup": 800 },
  });
  assert.equal(s.host.memory, 2 ** 40);
  assert.equal(s.host.memlockLimit, 64 * GiB);
  assert.equal(s.vm.memory, 8 * GiB);
  assert.equal(s.device.dmaBandwidth, 1.25e9);
  assert.deepEqual(s.workload, {
    kind: "nic-rx",
    ringEntries: 1024,
    bufferSize: 4096,
    packets: 100_000,
    rate: 25e9 / 8,
  });
  assert.deepEqual(s.costs, { "vfio.faultLookup": 800 });
});

Deno.test("parseScenario accepts the extension modes and fields", () => {
  for (const mode of ["static-pin", "iopf", "viommu-pin", "coiommu"]) {
    assert.equal(parseScenario({ dma: { mode } }).dma.mode, mode);
  }
  const s = parseScenario({
    vm: { count: 4, memory: "64GiB" },
    smmu: { stage: "nested", iotlbWays: 8, invalidation: "lazy" },
    guest: { stage1: "on-fault" },
    device: { fault: "pri", priCapacity: 32 },
    dma: { mode: "iopf", faultWorkers: 4, premapPages: 512, mmuNotifier: true },
    check: true,
  });
  assert.equal(s.vm.count, 4);
  // Overcommit: 3 × 16 GiB on a 32 GiB host is accepted.
  const over = parseScenario({
    host: { memory: "32GiB" },
    vm: { memory: "16GiB", count: 3 },
    dma: {
      mode: "coiommu",
      coiommuUnpinPolicy: "lru",
      coiommuUnpinInterval: "10ms",
      coiommuGenerationThreshold: 0,
    },
  });
  assert.equal(over.vm.count, 3);
  assert.equal(over.dma.coiommuUnpinPolicy, "lru");
  assert.equal(over.dma.coiommuUnpinInterval, 10e6);
  assert.equal(over.dma.coiommuGenerationThreshold, 0);
  assert.equal(s.guest.stage1, "on-fault");
  assert.equal(s.smmu.iotlbWays, 8);
  assert.equal(s.check, true);
});

const MISTAKES: [string, unknown, string, string?][] = [
  ["not an object", [1, 2], "scenario: expected an object"],
  ["unknown top-level field", { nmae: "x" }, "nmae: unknown field"],
  [
    "unknown nested field",
    { vm: { memroy: "4GiB" } },
    "vm.memroy: unknown field",
    "known: memory, count",
  ],
  ["section not an object", { host: "big" }, "host: expected an object"],
  ["size with a bad unit", {
    workload: { kind: "accelerator", messageSize: "1 MB?" },
  }, 'workload.messageSize: expected a size like "1MiB", got "1 MB?"'],
  ["negative size", { vm: { memory: -4096 } }, "vm.memory: expected a size"],
  [
    "fractional bytes",
    { vm: { memory: 4096.5 } },
    "vm.memory: expected a whole number of bytes",
  ],
  [
    "zero size",
    { workload: { kind: "storage", blockSize: 0 } },
    "workload.blockSize: must be more than 0",
  ],
  [
    "size of the wrong type",
    { vm: { memory: true } },
    "vm.memory: expected a size",
    "got true",
  ],
  [
    "unaligned memory",
    {
      vm: { memory: "16GiB", count: 1 },
      host: { memory: "100000" },
    },
    "host.memory: must be a multiple of 2 MiB (the host memory model allocates RAM in 2 MiB blocks), got 97.66 KiB (100000 bytes)",
  ],
  [
    "vm memory not page aligned",
    { vm: { memory: 5000 } },
    "vm.memory: must be a multiple of 4 KiB",
  ],
  [
    "hugetlb alignment",
    { host: { backing: "hugetlb-2m" }, vm: { memory: "3MiB" } },
    "vm.memory: must be a multiple of 2 MiB",
    'host.backing "hugetlb-2m"',
  ],
  [
    "vm larger than host",
    { host: { memory: "8GiB" }, vm: { memory: "16GiB" } },
    "vm.memory: 16 GiB exceeds host.memory (8 GiB)",
  ],
  ["coIOMMU unpin policy", {
    dma: { coiommuUnpinPolicy: "sometimes" },
  }, 'dma.coiommuUnpinPolicy: expected one of "off", "lru"'],
  ["coIOMMU unpin interval", {
    dma: { coiommuUnpinInterval: "soon" },
  }, 'dma.coiommuUnpinInterval: expected a time like "2us"'],
  ["coIOMMU zero unpin interval", {
    dma: { coiommuUnpinInterval: 0 },
  }, "dma.coiommuUnpinInterval: must be a positive time"],
  ["coIOMMU generation threshold", {
    dma: { coiommuGenerationThreshold: -1 },
  }, "dma.coiommuGenerationThreshold: expected a whole number from 0"],
  ["huge host", { host: { memory: "1PiB" } }, "host.memory: expected a size"],
  [
    "host beyond model",
    { host: { memory: 2 ** 50 } },
    "host.memory: 1 PiB is more than the 16 TiB",
  ],
  [
    "bad enum",
    { host: { backing: "2m" } },
    'host.backing: expected one of "4k", "thp", "hugetlb-2m", "hugetlb-1g", got "2m"',
  ],
  [
    "bad boolean",
    { host: { prefault: "yes" } },
    'host.prefault: expected true or false, got "yes"',
  ],
  [
    "bad memlock",
    { host: { memlockLimit: "lots" } },
    'host.memlockLimit: expected "unlimited" or a size',
  ],
  [
    "NaN count",
    { workload: { kind: "random", accesses: NaN } },
    "workload.accesses: expected a whole number from 1 to 1000000000, got NaN",
  ],
  [
    "Infinity count",
    { workload: { kind: "random", accesses: Infinity } },
    "workload.accesses: expected a whole number",
    "got Infinity",
  ],
  [
    "non-integer count",
    { workload: { kind: "accelerator", messages: 1.5 } },
    "workload.messages: expected a whole number",
    "got 1.5",
  ],
  [
    "huge count",
    { workload: { kind: "nic-rx", packets: 1e12 } },
    "workload.packets: expected a whole number from 1 to 1000000000",
  ],
  [
    "count as string",
    { workload: { kind: "nic-rx", packets: "100" } },
    "workload.packets: expected a whole number",
    'got "100"',
  ],
  [
    "negative seed",
    { seed: -1 },
    "seed: expected a whole number from 0 to 4294967295",
  ],
  ["writeFraction above 1", {
    workload: { kind: "random", writeFraction: 1.5 },
  }, "workload.writeFraction: expected a number from 0 to 1, got 1.5"],
  [
    "queue not a power of two",
    { smmu: { evtqEntries: 100 } },
    "smmu.evtqEntries: expected a power of two from 2 to 524288, got 100",
  ],
  [
    "queue too large",
    { smmu: { priqEntries: 2 ** 20 } },
    "smmu.priqEntries: expected a power of two",
  ],
  [
    "premapPages too many",
    { dma: { premapPages: 2 ** 18 + 1 } },
    "dma.premapPages: expected a whole number from 1 to 262144",
  ],
  [
    "premapPages zero",
    { dma: { premapPages: 0 } },
    "dma.premapPages: expected a whole number from 1",
  ],
  [
    "faultWorkers too many",
    { dma: { faultWorkers: 257 } },
    "dma.faultWorkers: expected a whole number from 1 to 256",
  ],
  [
    "iotlb ways do not divide",
    { smmu: { iotlbEntries: 100, iotlbWays: 8 } },
    "smmu.iotlbWays: 8 ways must divide smmu.iotlbEntries (100)",
  ],
  [
    "bad bandwidth",
    { device: { dmaBandwidth: "fast" } },
    'device.dmaBandwidth: expected a bandwidth like "8GB/s" or "10Gbps", got "fast" (bits: "Gb/s", "Gbps", "Gbit/s"; bytes: "GB/s", "GBps")',
  ],
  [
    "zero bandwidth",
    { device: { dmaBandwidth: 0 } },
    "device.dmaBandwidth: a bandwidth must be positive",
  ],
  [
    "guest.stage1 without nesting",
    { guest: { stage1: "on-fault" } },
    'guest.stage1: only applies when smmu.stage is "nested"',
  ],
  [
    "workload without kind",
    { workload: { messages: 3 } },
    "workload.kind: required",
  ],
  [
    "unknown workload kind",
    { workload: { kind: "gpu" } },
    'workload.kind: expected one of "boot", "accelerator"',
  ],
  [
    "field of another kind",
    { workload: { kind: "random", ringEntries: 8 } },
    'workload.ringEntries: unknown field for kind "random"',
  ],
  [
    "boot with fields",
    { workload: { kind: "boot", messages: 1 } },
    'workload.messages: unknown field for kind "boot"',
  ],
  [
    "buffers beyond guest RAM",
    {
      vm: { memory: "1GiB" },
      workload: { kind: "accelerator", messageSize: "1GiB" },
    },
    "workload.messageSize: the input and output buffers (2 GiB) must fit in vm.memory (1 GiB)",
  ],
  ["working set beyond guest RAM", {
    vm: { memory: "1GiB" },
    workload: { kind: "random", workingSet: "2GiB" },
  }, "workload.workingSet: the working set (2 GiB) must fit"],
  ["access larger than working set", {
    workload: { kind: "random", workingSet: "1MiB", accessSize: "2MiB" },
  }, "workload.accessSize: 2 MiB is larger than workload.workingSet"],
  ["block larger than total", {
    workload: { kind: "storage", blockSize: "1MiB", totalBytes: "4KiB" },
  }, "workload.blockSize: 1 MiB is larger than workload.totalBytes"],
  ["ring beyond guest RAM", {
    vm: { memory: "64MiB" },
    workload: { kind: "nic-rx", ringEntries: 65536, bufferSize: "4KiB" },
  }, "workload.ringEntries: the receive buffers (256 MiB) must fit"],
  [
    "trace without file",
    { workload: { kind: "trace" } },
    "workload.file: expected the path of a trace file, got nothing",
  ],
  [
    "missing trace file",
    { workload: { kind: "trace", file: "/nonexistent/t.csv" } },
    'workload.file: cannot read the trace file "/nonexistent/t.csv": no such file',
  ],
  [
    "unknown cost",
    { costs: { "vfio.nope": 1 } },
    "costs.vfio.nope: unknown cost parameter",
  ],
  [
    "negative cost",
    { costs: { "vfio.faultLookup": -1 } },
    "costs.vfio.faultLookup: expected a number in [0, 1000000000] (ns per fault), got -1",
  ],
  ["empty name", { name: "" }, "name: expected a non-empty string"],
  [
    "null value",
    { vm: { memory: null } },
    "vm.memory: expected a size",
    "got null",
  ],
  ["check not boolean", { check: 1 }, "check: expected true or false"],
  [
    "sweep not an object",
    { sweep: [["vm.memory", ["4GiB"]]] },
    "sweep: expected an object",
  ],
  [
    "sweep of an unknown path",
    { sweep: { "vm.memroy": ["4GiB"] } },
    'sweep.vm.memroy: not a field of the scenario: "vm.memroy"',
  ],
  [
    "sweep of the name",
    { sweep: { name: ["a", "b"] } },
    "sweep.name: name cannot be swept",
  ],
  [
    "sweep without values",
    { sweep: { "vm.memory": [] } },
    "sweep.vm.memory: expected a non-empty array of values",
  ],
  [
    "sweep values not an array",
    { sweep: { "vm.memory": "4GiB" } },
    'sweep.vm.memory: expected a non-empty array of values, got "4GiB"',
  ],
  [
    "bad sweep value",
    { sweep: { "vm.memory": ["4GiB", "4 GB?"] } },
    'sweep.vm.memory[1]: expected a size like "1MiB", got "4 GB?"',
  ],
  [
    "bad sweep cost",
    { sweep: { "costs.mm.pinCall": [1, "x"] } },
    "sweep.costs.mm.pinCall[1]: expected a number in [0, 1000000000]",
  ],
  [
    "sweep of an unknown cost",
    { sweep: { "costs.mm.nope": [1] } },
    'sweep.costs.mm.nope: unknown cost parameter "mm.nope"',
  ],
  ["sweep point conflicting with the base", {
    host: { memory: "32GiB" },
    sweep: { "vm.memory": ["16GiB", "64GiB"] },
  }, "sweep.vm.memory[1]: 64 GiB exceeds host.memory (32 GiB)"],
  [
    "sweep point conflicting through another field",
    { sweep: { "host.memory": ["64GiB", "8GiB"] } },
    "sweep point [host.memory=8GiB]: vm.memory: 16 GiB exceeds host.memory (8 GiB)",
  ],
  ["too many sweep points", {
    sweep: {
      seed: [...Array(1000).keys()],
      "vm.memory": Array(11).fill("1GiB"),
    },
  }, "sweep: more than 10000 points"],
];

Deno.test("parseScenario names the field of each mistake", async (t) => {
  for (const [what, json, start, includes] of MISTAKES) {
    await t.step(what, () => {
      assertRejects(json, start, includes);
    });
  }
});

Deno.test("parseScenario errors carry the field path in `where`", () => {
  assert.equal(
    assertRejects({ vm: { memory: "x" } }, "vm.memory").where,
    "vm.memory",
  );
  assert.equal(
    assertRejects({ sweep: { "vm.memory": ["1GiB", "x"] } }, "sweep.").where,
    "sweep.vm.memory[1]",
  );
});

Deno.test("parseScenario only ever throws EINVAL naming a field, whatever the input", () => {
  const fields = [
    "name",
    "seed",
    "host",
    "vm",
    "smmu",
    "device",
    "dma",
    "guest",
    "workload",
    "costs",
    "check",
    "sweep",
  ];
  fc.assert(
    fc.property(
      fc.dictionary(fc.constantFrom(...fields), fc.anything({ maxDepth: 2 })),
      (json) => {
        try {
          parseScenario(json);
        } catch (e) {
          assert.ok(e instanceof IopfLabError, String(e));
          assert.equal(e.code, "EINVAL");
          assert.match(e.message, /^[a-zA-Z]/);
          assert.ok(e.message.includes(": "));
        }
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("expandSweep makes the cartesian product, first key outermost", () => {
  const s = parseScenario({
    name: "mem",
    sweep: {
      "vm.memory": ["4GiB", "16GiB"],
      "dma.mode": ["static-pin", "iopf"],
    },
  });
  assert.deepEqual(s.sweep, [
    ["vm.memory", ["4GiB", "16GiB"]],
    ["dma.mode", ["static-pin", "iopf"]],
  ]);
  const points = expandSweep(s);
  assert.deepEqual(points.map((p) => p.name), [
    "mem[vm.memory=4GiB,dma.mode=static-pin]",
    "mem[vm.memory=4GiB,dma.mode=iopf]",
    "mem[vm.memory=16GiB,dma.mode=static-pin]",
    "mem[vm.memory=16GiB,dma.mode=iopf]",
  ]);
  assert.deepEqual(points.map((p) => [p.vm.memory / GiB, p.dma.mode]), [
    [4, "static-pin"],
    [4, "iopf"],
    [16, "static-pin"],
    [16, "iopf"],
  ]);
  assert.deepEqual(points[1]!.sweepPoint, {
    "vm.memory": "4GiB",
    "dma.mode": "iopf",
  });
  for (const p of points) {
    assert.deepEqual(p.sweep, []);
    assert.deepEqual(expandSweep(p), [p]);
  }
});

Deno.test("expandSweep applies seeds, costs, workload fields and kinds", () => {
  const s = parseScenario({
    workload: { kind: "random", accesses: 10 },
    sweep: {
      seed: [1, 2],
      "costs.vfio.faultLookup": [600, 1200],
      "workload.distribution": ["uniform", "zipf"],
    },
  });
  const points = expandSweep(s);
  assert.equal(points.length, 8);
  const last = points[7]!;
  assert.equal(last.seed, 2);
  assert.deepEqual(last.costs, { "vfio.faultLookup": 1200 });
  assert.equal(
    last.workload.kind === "random" && last.workload.distribution,
    "zipf",
  );
  assert.equal(last.workload.kind === "random" && last.workload.accesses, 10);
  const kinds = expandSweep(
    parseScenario({ sweep: { "workload.kind": ["boot", "storage"] } }),
  );
  assert.deepEqual(kinds.map((p) => p.workload.kind), ["boot", "storage"]);
});

Deno.test("a stage sweep may set guest.stage1 for its nested points", () => {
  const s = parseScenario({
    guest: { stage1: "on-fault" },
    sweep: { "smmu.stage": ["s2", "nested"] },
  });
  const points = expandSweep(s);
  assert.deepEqual(points.map((p) => [p.smmu.stage, p.guest.stage1]), [
    ["s2", "on-fault"],
    ["nested", "on-fault"],
  ]);
});

Deno.test("expandSweep respects changes made to the parsed scenario", () => {
  const s = parseScenario({ sweep: { "dma.mode": ["iopf"] } });
  const changed: Scenario = { ...s, vm: { ...s.vm, memory: 2 * GiB } };
  assert.equal(expandSweep(changed)[0]!.vm.memory, 2 * GiB);
});

Deno.test("scenarioToJson parses back to the same scenario", () => {
  const cases = [
    {},
    {
      host: { memlockLimit: "1GiB", backing: "thp" },
      workload: { kind: "random", writeFraction: 0 },
    },
    {
      smmu: { stage: "nested" },
      guest: { stage1: "on-fault" },
      workload: { kind: "nic-rx" },
    },
    { costs: { "mm.pinCall": 1 }, sweep: { "vm.memory": ["1GiB", 2 * GiB] } },
  ];
  for (const json of cases) {
    const s = parseScenario(json);
    assert.deepEqual(
      parseScenario(JSON.parse(JSON.stringify(scenarioToJson(s)))),
      s,
    );
  }
});

Deno.test("trace workloads read their file relative to baseDir", async (t) => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(
      `${dir}/t.csv`,
      "time_ns,stream,op,iova,size\n0,0,w,0x1000,4096\n100,1,read,8192,4KiB\n",
    );
    await t.step("rows are validated and summarised, not kept", () => {
      const s = parseScenario({ workload: { kind: "trace", file: "t.csv" } }, {
        baseDir: dir,
      });
      assert.equal(s.workload.kind, "trace");
      if (s.workload.kind !== "trace") return;
      assert.equal(s.workload.file, `${dir}/t.csv`);
      const { rows, streams, lo, hi, pages } = s.workload.summary;
      assert.deepEqual({ rows, streams, lo, hi, pages }, {
        rows: 2,
        streams: 2,
        lo: 0x1000,
        hi: 0x3000,
        pages: 2,
      });
      assert.ok(!("rows" in s.workload));
    });
    await t.step("errors name the file and line", () => {
      Deno.writeTextFileSync(
        `${dir}/bad.csv`,
        "time_ns,stream,op,iova,size\n0,0,w,0x1000,4096\n5,0,x,0,1\n",
      );
      assert.throws(
        () =>
          parseScenario({ workload: { kind: "trace", file: "bad.csv" } }, {
            baseDir: dir,
          }),
        (e: IopfLabError) =>
          e.message.startsWith(
            'bad.csv:3: op: expected "r", "w", "read" or "write", got "x"',
          ),
      );
    });
    await t.step("addresses must stay inside guest RAM", () => {
      Deno.writeTextFileSync(
        `${dir}/far.csv`,
        "time_ns,stream,op,iova,size\n0,0,w,0,4096\n1,0,w,0x40000000,4096\n",
      );
      assert.throws(
        () =>
          parseScenario({
            vm: { memory: "1GiB" },
            workload: { kind: "trace", file: "far.csv" },
          }, {
            baseDir: dir,
          }),
        (e: IopfLabError) =>
          e.message.startsWith(
            "far.csv:3: iova: 0x40000000 + 4096 bytes goes beyond vm.memory (1 GiB)",
          ),
      );
    });
    await t.step("a sweep reuses the trace", () => {
      const s = parseScenario({
        workload: { kind: "trace", file: "t.csv" },
        sweep: { "vm.memory": ["1GiB", "2GiB"] },
      }, { baseDir: dir });
      const points = expandSweep(s);
      assert.equal(points.length, 2);
      assert.equal(
        points[1]!.workload.kind === "trace" && points[1]!.workload.summary,
        s.workload.kind === "trace" && s.workload.summary,
      );
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("loadScenario reports file problems", async (t) => {
  const dir = Deno.makeTempDirSync();
  try {
    await t.step("JSON syntax errors give line and column", () => {
      Deno.writeTextFileSync(
        `${dir}/syntax.json`,
        '{\n  "vm": { "memory": "4GiB" },\n  "seed": }\n',
      );
      assert.throws(
        () => loadScenario(`${dir}/syntax.json`),
        (e: IopfLabError) => {
          assert.equal(e.code, "EINVAL");
          assert.equal(
            e.message,
            `${dir}/syntax.json:3:11: invalid JSON: unexpected character "}" (EINVAL)`,
          );
          return true;
        },
      );
    });
    await t.step("trailing commas", () => {
      Deno.writeTextFileSync(`${dir}/comma.json`, '{"seed": 1,\n}');
      assert.throws(
        () => loadScenario(`${dir}/comma.json`),
        /comma\.json:2:1: invalid JSON: trailing comma/,
      );
    });
    await t.step("an empty file", () => {
      Deno.writeTextFileSync(`${dir}/empty.json`, "");
      assert.throws(
        () => loadScenario(`${dir}/empty.json`),
        /empty\.json:1:1: invalid JSON: unexpected end of the file/,
      );
    });
    await t.step("a missing file", () => {
      assert.throws(
        () => loadScenario(`${dir}/none.json`),
        (e: IopfLabError) => {
          assert.equal(e.code, "ENOENT");
          assert.match(
            e.message,
            /none\.json: cannot read the scenario file: no such file/,
          );
          return true;
        },
      );
    });
    await t.step("schema errors are prefixed with the file", () => {
      Deno.writeTextFileSync(
        `${dir}/schema.json`,
        '{"vm": {"memory": "1 MB?"}}',
      );
      assert.throws(
        () => loadScenario(`${dir}/schema.json`),
        (e: IopfLabError) => {
          assert.equal(
            e.message,
            `${dir}/schema.json: vm.memory: expected a size like "1MiB", got "1 MB?" (EINVAL)`,
          );
          assert.equal(e.where, "vm.memory");
          return true;
        },
      );
    });
    await t.step("the file name is the default scenario name", () => {
      Deno.writeTextFileSync(`${dir}/boot-16g.json`, "{}");
      assert.equal(loadScenario(`${dir}/boot-16g.json`).name, "boot-16g");
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("guest.touchedMemory takes a size or a percentage of vm.memory; bad values name the field", () => {
  const t = (v: unknown) =>
    parseScenario({ vm: { memory: "1GiB" }, guest: { touchedMemory: v } })
      .guest.touchedMemory;
  assert.equal(t("25%"), "25%");
  assert.equal(t(" 12.5 % "), "12.5%");
  assert.equal(t("256MiB"), 256 * 2 ** 20);
  assert.equal(t(0), 0);
  for (const bad of ["120%", "-5%", "x%", "2GiB", 4095, true]) {
    assert.throws(
      () => t(bad),
      (e: unknown) =>
        e instanceof IopfLabError && e.code === "EINVAL" &&
        e.where === "guest.touchedMemory",
      String(bad),
    );
  }
  // A percentage follows a swept vm.memory.
  const points = expandSweep(parseScenario({
    host: { memory: "4GiB" },
    vm: { memory: "1GiB" },
    guest: { touchedMemory: "50%" },
    sweep: { "vm.memory": ["1GiB", "2GiB"] },
  }));
  assert.deepEqual(points.map((p) => p.guest.touchedMemory), ["50%", "50%"]);
  assert.deepEqual(
    points.map((p) => touchedBytes(p.guest.touchedMemory, p.vm.memory)),
    [2 ** 29, 2 ** 30],
  );
  assert.throws(() => parseScenario({ host: { swap: "lots" } }), /host\.swap/);
  assert.throws(
    () => parseScenario({ host: { frameOrder: "random" } }),
    /host\.frameOrder/,
  );
  assert.equal(
    parseScenario({ host: { frameOrder: "ascending" } }).host.frameOrder,
    "ascending",
  );
  assert.equal(parseScenario({ host: { swap: "1GiB" } }).host.swap, 2 ** 30);
});

Deno.test('dma.backend "iommufd" takes static-pin and iopf only, and no MMU notifier (EINVAL naming the field)', () => {
  const base = { vm: { memory: "1GiB" } };
  for (const mode of ["static-pin", "iopf"]) {
    const s = parseScenario({ ...base, dma: { backend: "iommufd", mode } });
    assert.equal(s.dma.backend, "iommufd");
  }
  for (const mode of ["viommu-pin", "coiommu"]) {
    assert.throws(
      () => parseScenario({ ...base, dma: { backend: "iommufd", mode } }),
      (e: unknown) => e instanceof IopfLabError && e.where === "dma.backend",
    );
  }
  assert.throws(
    () =>
      parseScenario({
        ...base,
        dma: { backend: "iommufd", mode: "iopf", mmuNotifier: true },
      }),
    (e: unknown) => e instanceof IopfLabError && e.where === "dma.mmuNotifier",
  );
  assert.throws(
    () => parseScenario({ ...base, dma: { backend: "vfio" } }),
    (e: unknown) => e instanceof IopfLabError && e.where === "dma.backend",
  );
});
