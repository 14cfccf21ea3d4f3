/**
 * `deno task nb [--strip] [NOTEBOOK...]`: executes notebooks headlessly through
 * Jupyter (every notebooks/*.ipynb by default) and reports what each showed;
 * `--strip` removes saved outputs in place instead.
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

/** Runs the command; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const strip = args.includes("--strip");
  const paths = args.filter((a) => !a.startsWith("--"));
  const notebooks = paths.length > 0 ? paths : await listNotebooks();
  if (strip) {
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
  const jupyterPath = await installKernelspec();
  let failed = 0;
  try {
    for (const p of notebooks) {
      try {
        const r = await executeNotebook(p, { jupyterPath });
        console.error(
          `ok   ${p}: ${r.figures} figures, ${r.tables} tables, ${
            (r.ms / 1000).toFixed(1)
          } s`,
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
