/**
 * Showing figures and tables from a notebook cell.
 *
 * @module
 */

/** The part of the Deno kernel's `Deno.jupyter` namespace used here. */
interface JupyterNamespace {
  display(obj: unknown, options?: { raw?: boolean }): Promise<void>;
}

/**
 * Shows each item inline in the Deno Jupyter kernel (a Figure from
 * lib/plot, a table, any value with a `Symbol.for("Jupyter.display")`
 * method; a string as plain text), in order, and resolves once the kernel
 * has sent them; outside a notebook it prints them as text.
 *
 * Ending a cell with the value shows it too, but the kernel publishes a
 * cell's result after telling Jupyter the cell is done, and a headless run
 * (`jupyter nbconvert --execute`) can then lose it; awaiting `show` puts the
 * output before the end of the cell.
 *
 * @example
 * ```ts
 * import { show } from "./display.ts";
 * await show("printed as text outside a notebook");
 * ```
 */
export async function show(...items: unknown[]): Promise<void> {
  const jupyter = kernelJupyter();
  for (const item of items) {
    if (jupyter === undefined) console.log(String(item));
    else if (typeof item === "string") {
      await jupyter.display({ "text/plain": item }, { raw: true });
    } else await jupyter.display(item);
  }
}

/** `Deno.jupyter` inside `deno jupyter`; undefined elsewhere (where reading it throws). */
function kernelJupyter(): JupyterNamespace | undefined {
  try {
    return (Deno as unknown as { jupyter?: JupyterNamespace }).jupyter;
  } catch {
    return undefined;
  }
}
