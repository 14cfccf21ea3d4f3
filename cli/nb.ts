/**
 * `deno task nb [--out DIR] [--strip] [NOTEBOOK...]`: executes notebooks
 * headlessly through Jupyter (every notebooks/*.ipynb by default) and
 * reports what each showed; `--out DIR` keeps the executed notebooks;
 * `--strip` removes saved outputs in place instead; `--help` prints usage.
 *
 * @module
 */
import {
  executeNotebook,
  formatNotebook,
  hasJupyter,
  installKernelspec,
  type Notebook,
  stripNotebook,
} from "./_jupyter.ts";

/** The text `--help` prints. */
export const NB_HELP = `Usage: deno task nb [options] [NOTEBOOK.ipynb...]

Executes notebooks headlessly through Jupyter (jupyter nbconvert --execute on
the Deno kernel, installed into a temporary directory, never your home) and
reports the figures and tables each one showed. Without NOTEBOOK arguments it
runs every notebooks/*.ipynb.

Options:
  --out DIR   keep each executed notebook, outputs included, as DIR/NAME.ipynb
              (DIR is created); export it further with
              jupyter nbconvert --to html DIR/NAME.ipynb
  --strip     remove saved outputs and execution counts in place (as committed)
              instead of running anything
  -h, --help  print this help and exit

Examples:
  deno task nb notebooks/01_quickstart.ipynb --out out/nb
  deno task nb --strip notebooks/*.ipynb

Needs Jupyter: apt-get install -y jupyter-nbconvert python3-nbclient jupyter-client
`;

/** Lists notebooks/*.ipynb, sorted. */
export async function listNotebooks(
  dir = new URL("../notebooks/", import.meta.url),
): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".ipynb")) {
      out.push(new URL(e.name, dir).pathname);
    }
  }
  return out.sort();
}

interface NbArgs {
  help: boolean;
  strip: boolean;
  out: string | undefined;
  paths: string[];
}

/** Parses the arguments; a bad one is an Error whose message says why. */
function parseArgs(args: readonly string[]): NbArgs {
  const parsed: NbArgs = {
    help: false,
    strip: false,
    out: undefined,
    paths: [],
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "-h" || a === "--help") parsed.help = true;
    else if (a === "--strip") parsed.strip = true;
    else if (a === "--out" || a.startsWith("--out=")) {
      const v = a === "--out" ? args[++i] : a.slice("--out=".length);
      if (v === undefined || v === "" || v.startsWith("--")) {
        throw new Error("--out needs a directory: --out DIR");
      }
      parsed.out = v;
    } else if (a.startsWith("-")) {
      throw new Error(`unknown option ${a} (see --help)`);
    } else if (!a.endsWith(".ipynb")) {
      throw new Error(`${a}: not a notebook (expected a .ipynb file)`);
    } else parsed.paths.push(a);
  }
  if (parsed.strip && parsed.out !== undefined) {
    throw new Error(
      "--strip and --out do not go together: --strip runs nothing",
    );
  }
  return parsed;
}

/** Runs the command; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let opts: NbArgs;
  try {
    opts = parseArgs(args);
  } catch (e) {
    console.error(`deno task nb: ${(e as Error).message}`);
    return 2;
  }
  if (opts.help) {
    console.log(NB_HELP);
    return 0;
  }
  const notebooks = opts.paths.length > 0 ? opts.paths : await listNotebooks();
  for (const p of notebooks) {
    try {
      await Deno.stat(p);
    } catch {
      console.error(`deno task nb: ${p}: no such notebook`);
      return 2;
    }
  }
  if (opts.strip) {
    for (const p of notebooks) {
      const nb = JSON.parse(await Deno.readTextFile(p)) as Notebook;
      await Deno.writeTextFile(p, formatNotebook(stripNotebook(nb)));
      console.error(`stripped ${p}`);
    }
    return 0;
  }
  if (!(await hasJupyter())) {
    console.error(
      "jupyter nbconvert is not installed: apt-get install -y jupyter-nbconvert python3-nbclient jupyter-client",
    );
    return 2;
  }
  if (opts.out !== undefined) await Deno.mkdir(opts.out, { recursive: true });
  const jupyterPath = await installKernelspec();
  let failed = 0;
  try {
    for (const p of notebooks) {
      const keepAs = opts.out === undefined
        ? undefined
        : `${opts.out}/${p.slice(p.lastIndexOf("/") + 1)}`;
      try {
        const r = await executeNotebook(p, {
          jupyterPath,
          ...(keepAs === undefined ? {} : { keepAs }),
        });
        console.error(
          `ok   ${p}: ${r.figures} figures, ${r.tables} tables, ${
            (r.ms / 1000).toFixed(1)
          } s${keepAs === undefined ? "" : ` -> ${keepAs}`}`,
        );
      } catch (e) {
        failed++;
        console.error(`FAIL ${p}: ${(e as Error).message}`);
      }
    }
  } finally {
    await Deno.remove(jupyterPath.replace(/\/jupyter$/, ""), {
      recursive: true,
    });
  }
  return failed > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
