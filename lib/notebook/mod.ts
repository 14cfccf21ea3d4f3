/**
 * Running the project's notebooks headlessly through real Jupyter, checking
 * what they show, and keeping them free of saved outputs.
 *
 * @example
 * ```ts
 * import { inspectNotebook } from "./mod.ts";
 * const r = inspectNotebook("x.ipynb", {
 *   cells: [{ cell_type: "code", source: "", outputs: [{ output_type: "display_data", data: { "image/svg+xml": "<svg/>" } }] }],
 *   metadata: { iopf_lab: { expects_figures: 1 } },
 *   nbformat: 4,
 *   nbformat_minor: 5,
 * });
 * console.assert(r.figures === 1 && r.expectedFigures === 1);
 * ```
 *
 * @module
 */
export * from "./jupyter.ts";
