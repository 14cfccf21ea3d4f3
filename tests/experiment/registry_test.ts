import assert from "node:assert/strict";
import {
  buildMachine,
  CoiommuDmaOps,
  DMA_DESIGNS,
  DMA_MODES,
  GuestIommuDmaOps,
  IdentityDmaOps,
  parseScenario,
  runScenario,
  scenarioFields,
  scenarioToJson,
  startVms,
  ViommuDmaOps,
  vmDesigns,
} from "../../lib/experiment/mod.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { WORKLOAD_KINDS, WORKLOADS } from "../../lib/workload/mod.ts";

Deno.test("the parser's dma.mode values are the design registry's", () => {
  assert.deepEqual(DMA_MODES, ["static-pin", "iopf", "viommu-pin", "coiommu"]);
  for (const mode of DMA_MODES) {
    assert.equal(parseScenario({ dma: { mode } }).dma.mode, mode);
    assert.equal(DMA_DESIGNS[mode].name, mode);
  }
  assert.throws(
    () => parseScenario({ dma: { mode: "pin" } }),
    (e: unknown) =>
      e instanceof IopfLabError &&
      e.message.includes(
        'dma.mode: expected one of "static-pin", "iopf", "viommu-pin", "coiommu", got "pin"',
      ),
  );
});

Deno.test("each design gives its VMs their guest DMA API at VM start", () => {
  const cases = [
    ["static-pin", "s2", IdentityDmaOps],
    ["iopf", "s2", IdentityDmaOps],
    ["viommu-pin", "s2", ViommuDmaOps],
    ["coiommu", "s2", CoiommuDmaOps],
    ["iopf", "nested", GuestIommuDmaOps],
    ["static-pin", "nested", GuestIommuDmaOps],
  ] as const;
  for (const [mode, stage, ops] of cases) {
    const s = parseScenario({
      vm: { memory: "64MiB" },
      smmu: { stage },
      dma: { mode },
    });
    assert.deepEqual(
      vmDesigns(s).map((d) => d.name),
      stage === "nested" ? [mode, "nested"] : [mode],
    );
    const m = buildMachine(s);
    const vm = m.vms[0]!;
    assert.ok(vm.dmaOps instanceof IdentityDmaOps, "identity before start");
    startVms(m, () => {});
    m.sim.run({ maxEvents: 100_000 });
    assert.ok(vm.started, `${mode}/${stage} started`);
    assert.ok(vm.dmaOps instanceof ops, `${mode}/${stage}: ${ops.name}`);
    assert.equal(vm.guest !== undefined, stage === "nested");
    assert.equal(vm.viommu !== undefined, mode === "viommu-pin");
    assert.equal(vm.coiommu !== undefined, mode === "coiommu");
    vm.dmaOps.stop();
  }
});

Deno.test("every run reports every design's extra columns", () => {
  const m = runScenario(parseScenario({ vm: { memory: "64MiB" } }));
  for (
    const k of [
      "guestStage1Faults",
      "viommuTraps",
      "viommuEmulationWaitNs",
      "coiommuDoorbells",
      "coiommuDttBytes",
    ]
  ) {
    assert.equal(m.extra?.[k], 0, k);
  }
});

Deno.test("scenarioFields lists every field of a scenario file, with the parser's defaults", () => {
  const fields = scenarioFields();
  const paths = new Set(fields.map((f) => f.path));
  // Every field of a resolved scenario is listed.
  const json = scenarioToJson(parseScenario({}), { guest: true });
  for (const [k, v] of Object.entries(json)) {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      if (k === "costs" || k === "workload") continue;
      for (const f of Object.keys(v)) assert.ok(paths.has(`${k}.${f}`), f);
    } else assert.ok(paths.has(k), k);
  }
  for (const kind of WORKLOAD_KINDS) {
    for (const f of Object.keys(WORKLOADS[kind].fields)) {
      assert.ok(
        fields.some((r) => r.path === `workload.${f}` && r.kind === kind),
      );
    }
  }
  // Writing a default explicitly gives the scenario of leaving it out.
  const base = parseScenario({}, { defaultName: "scenario" });
  for (const f of fields) {
    if (f.default === undefined || f.kind !== undefined) continue;
    const [head, field] = f.path.split(".") as [string, string | undefined];
    const raw: Record<string, unknown> = field === undefined
      ? { [head]: f.default }
      : { [head]: { [field]: f.default } };
    if (head === "guest") raw.smmu = { stage: "nested" };
    const expected = head === "guest"
      ? parseScenario({ smmu: { stage: "nested" } })
      : base;
    assert.deepEqual(parseScenario(raw), expected, f.path);
  }
  // Workload fields: the same, kind by kind.
  for (const f of fields) {
    if (f.default === undefined || f.kind === undefined) continue;
    const field = f.path.slice("workload.".length);
    const vm = { memory: "8GiB" };
    assert.deepEqual(
      parseScenario({ vm, workload: { kind: f.kind, [field]: f.default } }),
      parseScenario({ vm, workload: { kind: f.kind } }),
      `${f.kind} ${f.path}`,
    );
  }
  // Every allowed value of a choice parses.
  for (const f of fields) {
    if (!f.values || f.path === "workload.kind" || f.kind) continue;
    const [head, field] = f.path.split(".") as [string, string];
    for (const v of f.values) {
      const extra = head === "guest" ? { smmu: { stage: "nested" } } : {};
      parseScenario({ ...extra, [head]: { [field]: v } });
    }
  }
});
