/**
 * The model version stored with every result: what decides whether a
 * stored run can stand for a new one. A run's metrics are a function of its
 * scenario and of the model's code and cost profile, nothing else (the
 * simulator is deterministic), so the version is a hash of exactly that
 * code: every source file the runner (lib/experiment/run.ts) loads,
 * followed through its static imports (lib/plot, lib/report and the
 * notebooks are not among them), the cost profile it imports, and the Deno
 * version that runs it. An edited, uncommitted source file gives another
 * version, so a dirty tree never matches a clean commit's results; an edit
 * to the docs, tests or figures changes nothing and invalidates nothing.
 * The git commit the tree is checked out at is recorded beside it, for
 * provenance only.
 *
 * @module
 */
import { dirname, join, relative } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { IopfLabError } from "../sim/errors.ts";
import { gitCommit } from "../sim/git.ts";
import { sha256Hex } from "./canonical.ts";

/** A model version: what results are matched by, and where they came from. */
export interface ModelVersion {
  /** `model-<sha256 hex>` over the model's sources, the cost profile and the runtime: results are reused only when this matches. */
  readonly id: string;
  /** The sha256 (hex) of the cost profile data/costs/default.json. */
  readonly costProfileSha256: string;
  /** The git commit checked out (provenance: uncommitted edits are in `id`, not here); null outside a git checkout. */
  readonly commit: string | null;
  /** The runtime: "deno 2.9.6". */
  readonly runtime: string;
  /** The source files hashed, relative to the project root, sorted. */
  readonly files: readonly string[];
}

const RUNNER = new URL("../experiment/run.ts", import.meta.url);
const ROOT = new URL("../../", import.meta.url);
const COST_PROFILE = new URL("../../data/costs/default.json", import.meta.url);

let cached: ModelVersion | undefined;

/**
 * The version of the model this code is (computed once per process: the
 * sources are read and hashed, about 2 MB).
 *
 * @throws {IopfLabError} EOPNOTSUPP when the sources are not local files
 */
export function modelVersion(): ModelVersion {
  cached ??= computeModelVersion();
  return cached;
}

/** Computes {@linkcode modelVersion} afresh (tests; a long-lived process whose sources changed). */
export function computeModelVersion(): ModelVersion {
  if (RUNNER.protocol !== "file:") {
    throw new IopfLabError(
      "EOPNOTSUPP",
      `Cannot compute the model version: the sources are not local files (${RUNNER.href}); results can be stored only from a local checkout`,
    );
  }
  const root = fromFileUrl(ROOT);
  const files = modelSources(fromFileUrl(RUNNER));
  const listing = files.map((f) =>
    `${relative(root, f)} ${sha256Hex(Deno.readFileSync(f))}\n`
  ).join("");
  const runtime = `deno ${Deno.version.deno}`;
  return {
    id: `model-${sha256Hex(`${runtime}\n${listing}`)}`,
    costProfileSha256: sha256Hex(Deno.readFileSync(COST_PROFILE)),
    commit: gitCommit(root) ?? null,
    runtime,
    files: files.map((f) => relative(root, f)),
  };
}

const IMPORT =
  /(?:^|[;\s])(?:import|export)\s*(?:type\s+)?(?:[\w*{}\s,$]*?\s*from\s*)?["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;

/**
 * Every local file `entry` loads, itself included, following relative
 * static imports and re-exports (type-only ones too: they cost nothing and
 * keep the set safe), sorted by path.
 */
export function modelSources(entry: string): string[] {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    if (!file.endsWith(".ts")) continue;
    const text = stripComments(Deno.readTextFileSync(file));
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2]!;
      if (!spec.startsWith(".")) continue; // npm: and bare imports: none in the model
      todo.push(join(dirname(file), spec));
    }
  }
  return [...seen].sort();
}

/** `text` without block and line comments (doc examples import too). */
function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(
    /(^|[^:"'`\\])\/\/.*$/gm,
    "$1",
  );
}
