/**
 * The package's deno.json "exports" map: one entry per layer (every
 * lib/<folder>/mod.ts is importable as "@iopf-lab/iopf-lab/<folder>"), every
 * entry's module exists and loads, and "." is lib/mod.ts.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const config = JSON.parse(
  Deno.readTextFileSync(new URL("deno.json", ROOT)),
) as { exports: Record<string, string> };
const exportsMap = config.exports;

Deno.test('deno.json "exports" is a map whose "." is lib/mod.ts', () => {
  assert.equal(typeof exportsMap, "object");
  assert.equal(exportsMap["."], "./lib/mod.ts");
});

Deno.test("every lib/*/mod.ts folder has its exports entry", () => {
  const folders = [...Deno.readDirSync(new URL("lib/", ROOT))]
    .filter((e) => e.isDirectory)
    .map((e) => e.name)
    .filter((name) => {
      try {
        return Deno.statSync(new URL(`lib/${name}/mod.ts`, ROOT)).isFile;
      } catch {
        return false;
      }
    })
    .sort();
  assert.ok(folders.length >= 15, `only ${folders.length} layers found`);
  for (const name of folders) {
    assert.equal(
      exportsMap[`./${name}`],
      `./lib/${name}/mod.ts`,
      `deno.json exports has no "./${name}": "./lib/${name}/mod.ts"`,
    );
  }
});

Deno.test("every exports entry exists and its module loads", async (t) => {
  for (const [key, target] of Object.entries(exportsMap)) {
    await t.step(key, async () => {
      assert.match(target, /^\.\/lib\/([a-z_]+\/)?mod\.ts$/);
      const url = new URL(target, ROOT);
      assert.ok(Deno.statSync(url).isFile, `${target} is missing`);
      const mod = await import(url.href);
      assert.ok(Object.keys(mod).length > 0, `${target} exports nothing`);
    });
  }
});

/** Value exports known to have one name for two meanings, being renamed elsewhere (issue 11). */
const KNOWN_CLASHES = new Set<string>([]);

Deno.test("a value exported by two layers under one name is the same value", async () => {
  const seen = new Map<string, { key: string; value: unknown }>();
  const clashes: string[] = [];
  for (const [key, target] of Object.entries(exportsMap)) {
    const mod = await import(new URL(target, ROOT).href) as Record<
      string,
      unknown
    >;
    for (const [name, value] of Object.entries(mod)) {
      const first = seen.get(name);
      if (!first) seen.set(name, { key, value });
      else if (first.value !== value && !KNOWN_CLASHES.has(name)) {
        clashes.push(`${name}: "${first.key}" and "${key}" differ`);
      }
    }
  }
  assert.deepEqual(clashes, []);
});

Deno.test("a name exported by two layers (types included) is one declaration", async () => {
  const root = new URL("..", import.meta.url).pathname;
  const mods = [...Deno.readDirSync(`${root}lib`)]
    .filter((e) => e.isDirectory)
    .map((e) => `${root}lib/${e.name}/mod.ts`)
    .filter((p) => {
      try {
        return Deno.statSync(p).isFile;
      } catch {
        return false;
      }
    });
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", ...mods],
    cwd: root,
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.ok(out.success, "deno doc failed");
  const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    nodes: Record<
      string,
      {
        symbols?: {
          name: string;
          declarations: {
            location: { filename: string; line: number };
            kind: string;
            def?: { target?: { filename: string; line: number } };
          }[];
        }[];
      }
    >;
  };
  const where = new Map<string, Set<string>>();
  for (const node of Object.values(doc.nodes)) {
    for (const s of node.symbols ?? []) {
      const set = where.get(s.name) ?? new Set<string>();
      for (const d of s.declarations) {
        // A re-export is a reference to the declaration it names.
        const at = d.kind === "reference" && d.def?.target
          ? d.def.target
          : d.location;
        set.add(`${at.filename.replace(`file://${root}`, "")}:${at.line}`);
      }
      where.set(s.name, set);
    }
  }
  const clashes = [...where].filter(([, s]) => s.size > 1)
    .map(([n, s]) => `${n}: ${[...s].join(", ")}`);
  assert.deepEqual(clashes, []);
});

Deno.test('deno.json exports the iommufd layer as "./iommufd", after "./vfio"', () => {
  const keys = Object.keys(exportsMap);
  assert.equal(exportsMap["./iommufd"], "./lib/iommufd/mod.ts");
  assert.ok(keys.indexOf("./iommufd") > keys.indexOf("./vfio"));
});
