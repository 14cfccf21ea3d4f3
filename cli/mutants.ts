/**
 * `deno task mutants [ID...] [--keep]`: a mutation check of the test suite.
 * Copies the project (without .git, node_modules and out/) into a temporary
 * directory once, then for each seeded bug of tests/mutants/list.ts applies
 * it there, runs the tests it names, and restores the file. Prints one line
 * per mutant (caught / SURVIVED / stale) and a summary; exits 1 when a
 * mutant survived or no longer applies (its text is not found exactly once).
 * The working tree is never modified.
 *
 * @module
 */
import { join } from "node:path";
import { type Mutant, MUTANTS } from "../tests/mutants/list.ts";

/** How one mutant fared. */
export type MutantOutcome = "caught" | "survived" | "stale";

/** Applies `m` to the text of its file; undefined when `find` is not there exactly once. */
export function applyMutant(m: Mutant, text: string): string | undefined {
  const at = text.indexOf(m.find);
  if (at < 0 || text.indexOf(m.find, at + 1) >= 0) return undefined;
  return text.slice(0, at) + m.replace + text.slice(at + m.find.length);
}

const SKIP = new Set([".git", "node_modules", "out"]);

function copyTree(from: string, to: string): void {
  Deno.mkdirSync(to, { recursive: true });
  for (const e of Deno.readDirSync(from)) {
    if (SKIP.has(e.name)) continue;
    const a = join(from, e.name), b = join(to, e.name);
    if (e.isDirectory) copyTree(a, b);
    else if (e.isFile) Deno.copyFileSync(a, b);
  }
}

async function runTests(
  dir: string,
  tests: readonly string[],
): Promise<boolean> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-check", "--parallel", ...tests],
    cwd: dir,
    stdout: "null",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).output();
  return out.success;
}

async function main(args: readonly string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(
      "usage: deno task mutants [ID...] [--keep]\n" +
        "Applies each seeded bug of tests/mutants/list.ts to a copy of the project and\n" +
        "runs the tests it names; every mutant must be caught.\n\n" +
        "options:\n" +
        "  ID...       only these mutants [all]\n" +
        "  --keep      keep the temporary copy of the project\n" +
        "  -h, --help  print this and exit\n\n" +
        "example:\n  deno task mutants " + (MUTANTS[0]?.id ?? "") + "\n\n" +
        `mutants: ${MUTANTS.map((m) => m.id).join(", ")}`,
    );
    return 0;
  }
  const ids = args.filter((a) => !a.startsWith("--"));
  const unknown = ids.filter((id) => !MUTANTS.some((m) => m.id === id));
  if (unknown.length > 0) {
    console.error(`mutants: unknown mutant ${unknown.join(", ")}`);
    return 2;
  }
  const chosen = ids.length > 0
    ? MUTANTS.filter((m) => ids.includes(m.id))
    : MUTANTS;
  const root = new URL("..", import.meta.url).pathname;
  const dir = Deno.makeTempDirSync({ prefix: "iopf-mutants-" });
  copyTree(root, dir);
  const results: [Mutant, MutantOutcome][] = [];
  try {
    // The unmutated copy must pass, or every mutant would look caught.
    const tests = [...new Set(chosen.flatMap((m) => m.tests))];
    if (!(await runTests(dir, tests))) {
      console.error(
        "mutants: the tests fail without any mutant; fix them first",
      );
      return 1;
    }
    for (const m of chosen) {
      const path = join(dir, m.file);
      const original = Deno.readTextFileSync(path);
      const mutated = applyMutant(m, original);
      let outcome: MutantOutcome;
      if (mutated === undefined) outcome = "stale";
      else {
        Deno.writeTextFileSync(path, mutated);
        try {
          outcome = (await runTests(dir, m.tests)) ? "survived" : "caught";
        } finally {
          Deno.writeTextFileSync(path, original);
        }
      }
      results.push([m, outcome]);
      console.log(
        `${
          outcome === "caught" ? "caught  " : outcome.toUpperCase().padEnd(8)
        } ${m.id.padEnd(34)} ${m.file}: ${m.breaks}`,
      );
    }
  } finally {
    if (args.includes("--keep")) console.error(`mutants: copy kept in ${dir}`);
    else Deno.removeSync(dir, { recursive: true });
  }
  const caught = results.filter(([, o]) => o === "caught").length;
  console.log(`${caught} of ${results.length} mutants caught`);
  return caught === results.length ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
