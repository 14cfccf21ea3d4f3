/**
 * docs/ARCHITECTURE.md names only what exists: every backticked class
 * member, function, type name and path it names is in the code (from
 * `deno doc --json` over lib/), so it cannot drift from the code again.
 */
import assert from "node:assert/strict";
import { knownNames, unknownNames } from "./_doc_names.ts";

const root = new URL("../..", import.meta.url).pathname;

Deno.test("docs: every name ARCHITECTURE.md gives in backticks exists in lib/", async () => {
  const names = await knownNames(root);
  const text = Deno.readTextFileSync(`${root}docs/ARCHITECTURE.md`);
  const bad = unknownNames(text, names);
  assert.deepEqual(
    bad.map((b) => `line ${b.line}: \`${b.text}\`: ${b.why}`),
    [],
  );
});

Deno.test("docs: the name check catches a method, a function, a type and a path that do not exist", async () => {
  const names = await knownNames(root);
  const bad = unknownNames(
    [
      "`Simulator.after` and `Simulator.flushAll`, `runUntilIdle`, `flushEverything`",
      "`runScenario(s)` and `runEverything()`",
      "`IommuCore` and `IopfLabErrorSubclass`",
      "`lib/sim/simulator.ts` and `lib/nowhere/x.ts`",
    ].join("\n"),
    names,
  );
  assert.deepEqual(bad.map((b) => b.text), [
    "Simulator.flushAll",
    "flushEverything",
    "runEverything()",
    "IopfLabErrorSubclass",
    "lib/nowhere/x.ts",
  ]);
});

Deno.test("docs: no import in lib/ runs back up the folder map's order", () => {
  const text = Deno.readTextFileSync(`${root}docs/ARCHITECTURE.md`);
  const order = [...text.matchAll(/^\| `lib\/([a-z]+)`/gm)].map((m) => m[1]!);
  const rank = new Map(order.map((f, i) => [f, i]));
  const folders = [...Deno.readDirSync(`${root}lib`)]
    .filter((e) => e.isDirectory).map((e) => e.name).sort();
  assert.deepEqual(
    [...order].sort(),
    folders,
    "the map lists every lib/ folder once",
  );
  const back: string[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) walk(p);
      else if (e.name.endsWith(".ts")) {
        const me = p.slice(`${root}lib/`.length).split("/")[0]!;
        // Real imports only: doc-comment examples are not the module's.
        const src = Deno.readTextFileSync(p).replace(/\/\*\*[\s\S]*?\*\//g, "");
        for (const m of src.matchAll(/from\s+"(\.\.?\/[^"]+)"/g)) {
          const target = new URL(m[1]!, `file://${p}`).pathname;
          if (!target.startsWith(`${root}lib/`)) continue;
          const other = target.slice(`${root}lib/`.length).split("/")[0]!;
          if (other !== me && rank.get(other)! > rank.get(me)!) {
            back.push(`${p.slice(root.length)} imports lib/${other}`);
          }
        }
      }
    }
  };
  walk(`${root}lib`);
  assert.deepEqual(back, []);
});

Deno.test("docs: lib/iommufd sits after lib/vfio and before lib/vmm in the folder map", () => {
  const text = Deno.readTextFileSync(`${root}docs/ARCHITECTURE.md`);
  const order = [...text.matchAll(/^\| `lib\/([a-z]+)`/gm)].map((m) => m[1]!);
  const at = (f: string) => order.indexOf(f);
  assert.ok(at("iommufd") > at("vfio") && at("vfio") >= 0, order.join(" "));
  assert.ok(at("iommufd") < at("vmm"), order.join(" "));
});
