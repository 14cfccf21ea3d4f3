/**
 * Headless notebook runs through real Jupyter (`jupyter nbconvert --execute`)
 * with Deno's kernel installed into a temporary Jupyter data directory, never
 * the user's home, plus checks on the executed notebook and output stripping.
 * Tooling for `deno task nb` (cli/nb.ts) and the notebook tests, not part of
 * the library.
 *
 * @module
 */
import { IopfLabError } from "../lib/sim/errors.ts";

/** A notebook cell output, as nbformat 4 stores it. */
export interface NotebookOutput {
  /** "stream", "display_data", "execute_result" or "error". */
  readonly output_type: string;
  /** Rich data by MIME type (display_data, execute_result). */
  readonly data?: Record<string, unknown>;
  /** Text of a stream output. */
  readonly text?: string | string[];
  /** Error name (error outputs). */
  readonly ename?: string;
  /** Error value (error outputs). */
  readonly evalue?: string;
}

/** A notebook cell. */
export interface NotebookCell {
  /** "code" or "markdown". */
  readonly cell_type: string;
  /** Cell source lines. */
  readonly source: string | string[];
  /** Outputs of a code cell. */
  outputs?: NotebookOutput[];
  /** Execution count of a code cell. */
  execution_count?: number | null;
  /** Cell metadata. */
  metadata?: Record<string, unknown>;
}

/** A notebook (nbformat 4). */
export interface Notebook {
  /** Cells in order. */
  cells: NotebookCell[];
  /** Notebook metadata; `iopf_lab.expects_figures` says how many figures it must show. */
  metadata: Record<string, unknown>;
  /** nbformat major version. */
  nbformat: number;
  /** nbformat minor version. */
  nbformat_minor: number;
}

/** What an executed notebook showed. */
export interface NotebookReport {
  /** The notebook path. */
  readonly path: string;
  /** Figures displayed (image/svg+xml or image/png outputs). */
  readonly figures: number;
  /** Tables displayed (text/html outputs containing a table). */
  readonly tables: number;
  /** Error outputs (a failing cell). */
  readonly errors: string[];
  /** Figures the notebook's metadata says it must show. */
  readonly expectedFigures: number;
  /** Wall time of the run in ms (of the last run when it took several). */
  readonly ms: number;
  /** Runs it took (see {@linkcode ExecuteNotebookOptions.attempts}); 1 from {@linkcode inspectNotebook}. */
  readonly attempts: number;
}

/** Options of {@linkcode executeNotebook}. */
export interface ExecuteNotebookOptions {
  /** The directory {@linkcode installKernelspec} returned (put on JUPYTER_PATH). */
  readonly jupyterPath: string;
  /** Seconds a cell may run before nbconvert gives up. [600] */
  readonly timeoutSec?: number;
  /**
   * Runs at most this many times while a run shows fewer figures than the
   * notebook's metadata expects although no cell failed. The Deno kernel
   * publishes outputs on a ZeroMQ PUB socket, which may drop a message
   * (seen about once in 40 notebook runs on a loaded machine), and
   * nbconvert cannot ask for it again. A notebook that really lacks a
   * figure fails every time. [3]
   */
  readonly attempts?: number;
  /** Also write the executed notebook (with its outputs) to this path. [not kept] */
  readonly keepAs?: string;
}

/** True when `jupyter nbconvert` can be run here. */
export async function hasJupyter(): Promise<boolean> {
  try {
    const out = await new Deno.Command("jupyter", {
      args: ["nbconvert", "--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/**
 * Installs Deno's kernelspec (name "deno", running this very Deno binary)
 * into a fresh temporary directory and returns the directory to put on
 * JUPYTER_PATH. The user's own Jupyter setup is not touched.
 */
export async function installKernelspec(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "iopf-lab-jupyter-" });
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["jupyter", "--install", "--force"],
    env: { XDG_DATA_HOME: dir, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const spec = `${dir}/jupyter/kernels/deno/kernel.json`;
  try {
    await Deno.stat(spec);
  } catch {
    throw new IopfLabError(
      "EIO",
      `Cannot install the Deno kernelspec in ${dir}: ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
  return `${dir}/jupyter`;
}

/** Counts figures, tables and errors in an executed notebook. */
export function inspectNotebook(
  path: string,
  nb: Notebook,
  ms = 0,
): NotebookReport {
  let figures = 0, tables = 0;
  const errors: string[] = [];
  for (const cell of nb.cells) {
    for (const o of cell.outputs ?? []) {
      if (o.output_type === "error") errors.push(`${o.ename}: ${o.evalue}`);
      const data = o.data ?? {};
      if ("image/svg+xml" in data || "image/png" in data) figures++;
      const html = data["text/html"];
      const text = Array.isArray(html) ? html.join("") : String(html ?? "");
      if (text.includes("<table")) tables++;
    }
  }
  const meta = (nb.metadata["iopf_lab"] ?? {}) as { expects_figures?: number };
  return {
    path,
    figures,
    tables,
    errors,
    expectedFigures: meta.expects_figures ?? 0,
    ms,
    attempts: 1,
  };
}

/**
 * Executes a notebook headlessly with `jupyter nbconvert --to notebook
 * --execute`, using the kernelspec directory from
 * {@linkcode installKernelspec}, and returns what it showed. A failing cell
 * throws EIO with nbconvert's last lines. A run that lost a figure is
 * repeated (see {@linkcode ExecuteNotebookOptions.attempts}).
 */
export async function executeNotebook(
  path: string,
  options: ExecuteNotebookOptions,
): Promise<NotebookReport> {
  const attempts = options.attempts ?? 3;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot execute notebook ${path}: attempts must be a whole number >= 1, got ${attempts}`,
    );
  }
  let report: NotebookReport | undefined;
  for (let n = 1; n <= attempts; n++) {
    report = { ...(await executeOnce(path, options)), attempts: n };
    const lostFigure = report.errors.length === 0 &&
      report.figures < report.expectedFigures;
    if (!lostFigure) break;
  }
  return report!;
}

async function executeOnce(
  path: string,
  options: ExecuteNotebookOptions,
): Promise<NotebookReport> {
  const outDir = await Deno.makeTempDir({ prefix: "iopf-lab-nb-" });
  const started = performance.now();
  try {
    const res = await new Deno.Command("jupyter", {
      args: [
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        `--ExecutePreprocessor.timeout=${options.timeoutSec ?? 600}`,
        "--ExecutePreprocessor.kernel_name=deno",
        "--output-dir",
        outDir,
        "--output",
        "executed.ipynb",
        path,
      ],
      env: { JUPYTER_PATH: options.jupyterPath, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!res.success) {
      const err = new TextDecoder().decode(res.stderr).trim().split("\n").slice(
        -25,
      ).join("\n");
      throw new IopfLabError(
        "EIO",
        `Cannot execute notebook ${path}: a cell failed:\n${err}`,
      );
    }
    const text = await Deno.readTextFile(`${outDir}/executed.ipynb`);
    const nb = JSON.parse(text) as Notebook;
    const report = inspectNotebook(path, nb, performance.now() - started);
    if (options.keepAs !== undefined) {
      await Deno.writeTextFile(options.keepAs, text);
    }
    return report;
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
}

/**
 * Exports an executed notebook to HTML with the installed `jupyter
 * nbconvert --to html` (default template) and returns the HTML text.
 * Failure throws EIO with nbconvert's last lines.
 */
export async function exportHtml(path: string): Promise<string> {
  const outDir = await Deno.makeTempDir({ prefix: "iopf-lab-html-" });
  try {
    const res = await new Deno.Command("jupyter", {
      args: [
        "nbconvert",
        "--to",
        "html",
        "--output-dir",
        outDir,
        "--output",
        "exported",
        path,
      ],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!res.success) {
      const err = new TextDecoder().decode(res.stderr).trim().split("\n").slice(
        -15,
      ).join("\n");
      throw new IopfLabError(
        "EIO",
        `Cannot export notebook ${path} to HTML: nbconvert failed:\n${err}`,
      );
    }
    return await Deno.readTextFile(`${outDir}/exported.html`);
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
}

/** The installed nbconvert's version (`jupyter nbconvert --version`). */
export async function nbconvertVersion(): Promise<string> {
  const out = await new Deno.Command("jupyter", {
    args: ["nbconvert", "--version"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

/** Removes outputs and execution counts, so notebooks in git carry no results. */
export function stripNotebook(nb: Notebook): Notebook {
  for (const cell of nb.cells) {
    if (cell.cell_type === "code") {
      cell.outputs = [];
      cell.execution_count = null;
    }
  }
  return nb;
}

/** Formats a notebook as nbformat JSON the way Jupyter writes it (1-space indent, trailing newline). */
export function formatNotebook(nb: Notebook): string {
  return JSON.stringify(nb, null, 1) + "\n";
}
