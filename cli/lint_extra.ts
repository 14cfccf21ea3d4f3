/**
 * The project's own lint rules, run by `deno task check` after `deno lint`:
 * `console.assert` is refused in lib/ (it logs and passes, so a doc
 * example using it cannot fail; use `node:assert/strict`). Prints each
 * offending `file:line` and exits 1 when there is one.
 *
 * @module
 */
import { join, relative } from "node:path";

/** One broken rule: where and what. */
export interface LintFinding {
  /** `path:line`, relative to the project root. */
  readonly where: string;
  /** What is wrong. */
  readonly message: string;
}

const RULES: readonly { readonly pattern: RegExp; readonly message: string }[] =
  [
    {
      pattern: /\bconsole\.assert\s*\(/,
      message:
        "console.assert cannot fail a test; use assert from node:assert/strict",
    },
  ];

/** Checks every .ts file under `dir` against the rules. */
export function lintTree(root: string, dir = "lib"): LintFinding[] {
  const found: LintFinding[] = [];
  const walk = (path: string) => {
    for (const entry of Deno.readDirSync(path)) {
      const p = join(path, entry.name);
      if (entry.isDirectory) walk(p);
      else if (entry.name.endsWith(".ts")) {
        const lines = Deno.readTextFileSync(p).split("\n");
        lines.forEach((line, i) => {
          for (const rule of RULES) {
            if (rule.pattern.test(line)) {
              found.push({
                where: `${relative(root, p)}:${i + 1}`,
                message: rule.message,
              });
            }
          }
        });
      }
    }
  };
  walk(join(root, dir));
  return found;
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname;
  const found = lintTree(root);
  for (const f of found) console.error(`${f.where}: ${f.message}`);
  if (found.length > 0) Deno.exit(1);
}
