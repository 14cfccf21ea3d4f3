/**
 * What a document may name: every exported symbol of lib/ with its members,
 * read from `deno doc --json`, plus the private `#members` declared in lib's
 * sources and the files that exist. {@linkcode unknownNames} lists each
 * backticked name in a Markdown text that names none of them.
 *
 * @module
 */
import { join } from "node:path";

/** The names a document may use. */
export interface KnownNames {
  /** Exported symbol -> its member names (empty for non-classes). */
  readonly symbols: ReadonlyMap<string, ReadonlySet<string>>;
  /** Every member name of any exported class or interface. */
  readonly members: ReadonlySet<string>;
  /** Private `#name`s declared in lib/ sources. */
  readonly privates: ReadonlySet<string>;
  /** Functions declared in lib/ sources, exported or private to their file. */
  readonly functions: ReadonlySet<string>;
  /** Project-relative paths that exist. */
  readonly exists: (path: string) => boolean;
}

interface DocDecl {
  readonly kind: string;
  readonly def?: {
    readonly methods?: readonly { readonly name: string }[];
    readonly properties?: readonly { readonly name: string }[];
    readonly callSignatures?: readonly unknown[];
  };
}
interface DocSymbol {
  readonly name: string;
  readonly declarations: readonly DocDecl[];
}

function listModFiles(root: string): string[] {
  const files = [join(root, "lib/mod.ts")];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) walk(p);
      else if (e.name.endsWith(".ts")) files.push(p);
    }
  };
  walk(join(root, "lib"));
  return [...new Set(files)];
}

/** Reads the names of lib/ under `root` (runs `deno doc --json`). */
export async function knownNames(root: string): Promise<KnownNames> {
  const files = listModFiles(root);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", ...files],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno doc failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    nodes: Record<string, { symbols?: DocSymbol[] }>;
  };
  const symbols = new Map<string, Set<string>>();
  const members = new Set<string>();
  for (const node of Object.values(doc.nodes)) {
    for (const s of node.symbols ?? []) {
      const set = symbols.get(s.name) ?? new Set<string>();
      for (const d of s.declarations) {
        for (const m of d.def?.methods ?? []) set.add(m.name);
        for (const p of d.def?.properties ?? []) set.add(p.name);
      }
      for (const m of set) members.add(m);
      symbols.set(s.name, set);
    }
  }
  const privates = new Set<string>();
  const functions = new Set<string>();
  for (const f of files) {
    const src = Deno.readTextFileSync(f);
    for (
      const m of src.matchAll(
        /^(?:export\s+)?(?:async\s+)?function\*?\s+([A-Za-z_$][\w$]*)/gm,
      )
    ) {
      functions.add(m[1]!);
    }
    for (
      const m of src.matchAll(
        /^\s*(?:static\s+)?(?:get\s+|set\s+)?(#[A-Za-z_$][\w$]*)\s*[(:=;<]/gm,
      )
    ) {
      privates.add(m[1]!);
    }
  }
  const exists = (path: string) => {
    try {
      Deno.statSync(join(root, path));
      return true;
    } catch {
      return false;
    }
  };
  return { symbols, members, privates, functions, exists };
}

/** One backticked name the code does not have. */
export interface UnknownName {
  /** The backticked text. */
  readonly text: string;
  /** 1-based line in the document. */
  readonly line: number;
  /** Why it does not resolve. */
  readonly why: string;
}

const IDENT = String.raw`#?[A-Za-z_$][\w$]*`;
const MEMBER_REF = new RegExp(`^([A-Z][\\w$]*)\\.(${IDENT})(\\(.*\\))?$`);
const CALL_REF = new RegExp(`^(${IDENT})\\(.*\\)$`);
const CAMEL_TYPE = /^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+$/;
const LOWER_CAMEL = /^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+$/;
const PATH_REF = /^(?:lib|cli|tests|bench|data|docs|notebooks)\/[\w./-]*$/;

/**
 * Every backticked `Class.member`, `Class.member(...)`, `function(...)`,
 * `#private(...)`, camelCase member, CamelCase type name or project path in `markdown` that
 * does not exist in `names`.
 */
export function unknownNames(
  markdown: string,
  names: KnownNames,
): UnknownName[] {
  const bad: UnknownName[] = [];
  const lines = markdown.split("\n");
  lines.forEach((line, i) => {
    for (const m of line.matchAll(/`([^`\n]+)`/g)) {
      const text = m[1]!.trim();
      const why = check(text, names);
      if (why) bad.push({ text, line: i + 1, why });
    }
  });
  return bad;
}

function check(text: string, n: KnownNames): string | undefined {
  if (PATH_REF.test(text)) {
    const path = text.replace(/\/$/, "");
    return n.exists(path) ? undefined : "no such file or folder";
  }
  const mem = MEMBER_REF.exec(text);
  if (mem) {
    const [, owner, member] = mem;
    const set = n.symbols.get(owner!);
    if (!set) return `no exported symbol ${owner}`;
    if (member!.startsWith("#")) {
      return n.privates.has(member!)
        ? undefined
        : `no private ${member} in lib/`;
    }
    if (set.size === 0) return undefined; // a namespace, enum or constant object
    return set.has(member!) ? undefined : `${owner} has no member ${member}`;
  }
  const call = CALL_REF.exec(text);
  if (call) {
    const name = call[1]!;
    if (name.startsWith("#")) {
      return n.privates.has(name) ? undefined : `no private ${name} in lib/`;
    }
    if (/^[a-z]+_[a-z_0-9]+$/.test(name)) return undefined; // a kernel C function
    return n.symbols.has(name) || n.members.has(name) || n.functions.has(name)
      ? undefined
      : `no function or method ${name}`;
  }
  if (LOWER_CAMEL.test(text)) {
    return n.symbols.has(text) || n.members.has(text)
      ? undefined
      : `no function, method or field ${text}`;
  }
  if (CAMEL_TYPE.test(text)) {
    return n.symbols.has(text) ? undefined : `no exported symbol ${text}`;
  }
  return undefined;
}
