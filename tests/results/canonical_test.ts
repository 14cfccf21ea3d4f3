import assert from "node:assert/strict";
import { parseScenario } from "../../lib/experiment/mod.ts";
import {
  canonicalJson,
  decodeJson,
  encodeJson,
  scenarioKey,
  sweepKey,
} from "../../lib/results/mod.ts";
import { TINY_SWEEP, tinyPoints } from "./_tiny.ts";

Deno.test("canonicalJson sorts keys at every depth and drops undefined", () => {
  assert.equal(
    canonicalJson({ z: 1, a: { y: [3, { c: 1, b: 2 }], x: undefined } }),
    '{"a":{"y":[3,{"b":2,"c":1}]},"z":1}',
  );
});

Deno.test("encodeJson / decodeJson keep NaN, ±Infinity, -0 and key order", () => {
  const v = { b: NaN, a: Infinity, c: -Infinity, d: -0, e: [1, 2] };
  const back = decodeJson(encodeJson(v)) as typeof v;
  assert.deepEqual(Object.keys(back), ["b", "a", "c", "d", "e"]);
  assert.ok(Number.isNaN(back.b));
  assert.equal(back.a, Infinity);
  assert.equal(back.c, -Infinity);
  assert.ok(Object.is(back.d, -0));
});

Deno.test("scenarioKey: same run written differently gives the same key", () => {
  const a = parseScenario({
    name: "k",
    seed: 1,
    vm: { memory: "1GiB" },
    dma: { mode: "iopf" },
  });
  const b = parseScenario({
    dma: { mode: "iopf", premapPages: 1 },
    vm: { memory: 2 ** 30 },
    seed: 1,
    name: "k",
  });
  assert.equal(scenarioKey(a), scenarioKey(b));
  assert.match(scenarioKey(a), /^[0-9a-f]{64}$/);
});

Deno.test("scenarioKey: any field, the seed or the name changes the key", () => {
  const base = { name: "k", seed: 1, vm: { memory: "1GiB" } };
  const key = scenarioKey(parseScenario(base));
  for (
    const other of [
      { ...base, seed: 2 },
      { ...base, name: "l" },
      { ...base, vm: { memory: "2GiB" } },
      { ...base, dma: { mode: "iopf" } },
      { ...base, costs: { "vfio.faultLookup": 1 } },
    ]
  ) {
    assert.notEqual(
      scenarioKey(parseScenario(other)),
      key,
      JSON.stringify(other),
    );
  }
});

Deno.test("scenarioKey: a point's key ignores the other sweep points; sweepKey does not", () => {
  const points = tinyPoints();
  assert.equal(new Set(points.map(scenarioKey)).size, 4);
  const wider = parseScenario({
    ...TINY_SWEEP,
    sweep: { ...TINY_SWEEP.sweep, "vm.memory": ["32MiB", "64MiB", "128MiB"] },
  });
  assert.notEqual(sweepKey(wider), sweepKey(parseScenario(TINY_SWEEP)));
});

Deno.test("scenarioKey: a trace is keyed by its contents, not its path", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const rows = "time_ns,stream,op,iova,size\n0,0,write,0x0,4096\n";
    Deno.writeTextFileSync(`${dir}/a.csv`, rows);
    Deno.writeTextFileSync(`${dir}/b.csv`, rows);
    Deno.writeTextFileSync(`${dir}/c.csv`, rows.replace("write", "read"));
    const key = (f: string) =>
      scenarioKey(parseScenario({
        vm: { memory: "64MiB" },
        workload: { kind: "trace", file: `${dir}/${f}` },
      }));
    assert.equal(key("a.csv"), key("b.csv"));
    assert.notEqual(key("a.csv"), key("c.csv"));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
