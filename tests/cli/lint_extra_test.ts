import assert from "node:assert/strict";
import { lintTree } from "../../cli/lint_extra.ts";

Deno.test("lint: lib/ has no console.assert (doc examples must be able to fail)", () => {
  const root = new URL("../..", import.meta.url).pathname;
  assert.deepEqual(lintTree(root), []);
});

Deno.test("lint: a console.assert in a doc example is found with its line", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.mkdirSync(`${dir}/lib/x`, { recursive: true });
    Deno.writeTextFileSync(
      `${dir}/lib/x/mod.ts`,
      "/**\n * ```ts\n * console.assert(1 === 2);\n * ```\n */\nexport const x = 1;\n",
    );
    const found = lintTree(dir);
    assert.equal(found.length, 1);
    assert.equal(found[0]!.where, "lib/x/mod.ts:3");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
