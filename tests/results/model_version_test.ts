import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import {
  computeModelVersion,
  modelSources,
  modelVersion,
} from "../../lib/results/mod.ts";

Deno.test("modelVersion hashes the runner's sources, not the figures or the report", () => {
  const v = modelVersion();
  assert.match(v.id, /^model-[0-9a-f]{64}$/);
  assert.match(v.costProfileSha256, /^[0-9a-f]{64}$/);
  assert.equal(v.runtime, `deno ${Deno.version.deno}`);
  assert.ok(v.files.includes("lib/experiment/run.ts"));
  assert.ok(v.files.includes("lib/sim/costs.ts"));
  assert.ok(v.files.some((f) => f.startsWith("lib/smmu/")));
  assert.ok(
    !v.files.some((f) => /^lib\/(plot|report|notebook|results)\//.test(f)),
  );
  assert.equal(
    computeModelVersion().id,
    v.id,
    "the same tree gives the same id",
  );
});

Deno.test("modelSources follows relative imports and re-exports, skipping comments", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(
      `${dir}/a.ts`,
      'import { b } from "./b.ts";\nexport * from "./c.ts";\n// import "./no.ts";\nimport x from "npm:x";\n',
    );
    Deno.writeTextFileSync(
      `${dir}/b.ts`,
      'export type { T } from "./d.ts";\nexport const b = 1;\n',
    );
    Deno.writeTextFileSync(
      `${dir}/c.ts`,
      '/** import { y } from "./no2.ts"; */\nexport const c = 2;\n',
    );
    Deno.writeTextFileSync(`${dir}/d.ts`, "export type T = number;\n");
    assert.deepEqual(
      modelSources(`${dir}/a.ts`).map((f) => f.slice(dir.length + 1)),
      ["a.ts", "b.ts", "c.ts", "d.ts"],
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the model version records the commit of this checkout (a worktree too), as git rev-parse HEAD says", async () => {
  const root = fromFileUrl(new URL("../../", import.meta.url));
  const out = await new Deno.Command("git", {
    args: ["rev-parse", "HEAD"],
    cwd: root,
  })
    .output();
  const want = new TextDecoder().decode(out.stdout).trim();
  assert.equal(modelVersion().commit, want);
});
