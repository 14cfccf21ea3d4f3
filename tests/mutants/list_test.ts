import assert from "node:assert/strict";
import { applyMutant } from "../../cli/mutants.ts";
import { MUTANTS } from "./list.ts";

const root = new URL("../..", import.meta.url).pathname;

Deno.test("mutants: every seeded bug still applies to exactly one place, with tests that exist", () => {
  const ids = new Set<string>();
  for (const m of MUTANTS) {
    assert(!ids.has(m.id), `duplicate mutant ${m.id}`);
    ids.add(m.id);
    const text = Deno.readTextFileSync(`${root}${m.file}`);
    const mutated = applyMutant(m, text);
    assert(
      mutated !== undefined,
      `${m.id}: its text is not found exactly once in ${m.file}`,
    );
    assert.notEqual(mutated, text);
    for (const t of m.tests) Deno.statSync(`${root}${t}`);
  }
});

Deno.test("mutants: applyMutant refuses text that occurs twice or not at all", () => {
  const m = MUTANTS[0]!;
  assert.equal(applyMutant(m, "nothing here"), undefined);
  assert.equal(applyMutant(m, m.find + m.find), undefined);
  assert.equal(applyMutant(m, `a${m.find}b`), `a${m.replace}b`);
});
