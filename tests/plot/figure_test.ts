import assert from "node:assert/strict";
import * as Plot from "@observablehq/plot";
import { Figure, figure } from "../../lib/plot/figure.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { assertGolden, assertWellFormedSvg, pngSize } from "./_golden.ts";

const rows = [
  { t: 0, y: 1, s: "static-pin" },
  { t: 1, y: 3, s: "static-pin" },
  { t: 0, y: 2, s: "iopf & <lazy>" },
  { t: 1, y: 1, s: "iopf & <lazy>" },
];

Deno.test("figure draws a Plot into one standalone SVG", () => {
  const fig = figure({
    marks: [Plot.lineY(rows, { x: "t", y: "y", stroke: "s" })],
  });
  assertWellFormedSvg(fig.svg);
  assert.equal(fig.width, 640);
  assert.equal(fig.height, 400);
  assert.equal(fig.toString(), fig.svg);
  assertGolden("figure_plain", fig.svg);
});

Deno.test("titles, captions and color legends are drawn inside the SVG", () => {
  const fig = figure({
    title: "Pinned <pages> & more",
    subtitle: "16 GiB guest",
    caption: "Simulated.",
    color: { legend: true },
    marks: [Plot.lineY(rows, { x: "t", y: "y", stroke: "s" })],
  });
  assertWellFormedSvg(fig.svg);
  assert.equal(fig.svg.match(/<svg/g)!.length, 1);
  assert.ok(fig.svg.includes(">Pinned &lt;pages&gt; &amp; more</text>"));
  assert.ok(fig.svg.includes(">iopf &amp; &lt;lazy&gt;</text>"));
  assert.ok(fig.svg.includes(">Simulated.</text>"));
  assert.ok(fig.height > 400);
  assert.match(
    fig.svg,
    new RegExp(`^<svg [^>]*viewBox="0 0 640 ${fig.height}"`),
  );
  assertGolden("figure_title_legend", fig.svg);
});

Deno.test("continuous color legends are ramps", () => {
  const fig = figure({
    color: { legend: true, type: "linear", label: "latency" },
    marks: [Plot.dot(rows, { x: "t", y: "y", fill: "y" })],
  });
  assertWellFormedSvg(fig.svg);
  assert.ok(fig.svg.includes("<linearGradient"));
  assert.ok(fig.svg.includes(">latency</text>"));
  assertGolden("figure_ramp", fig.svg);
});

Deno.test("other legends are refused", () => {
  assert.throws(
    () =>
      figure({
        symbol: { legend: true },
        marks: [Plot.dot(rows, { x: "t", y: "y", symbol: "s" })],
      }),
    (e: unknown) =>
      e instanceof IopfLabError && e.code === "EINVAL" &&
      /symbol\.legend/.test(e.message),
  );
});

Deno.test("a figure displays in Jupyter as SVG", () => {
  const fig = figure({ marks: [Plot.dot([[1, 2]])] });
  const display = (fig as unknown as Record<symbol, () => unknown>)[
    Symbol.for("Jupyter.display")
  ]!;
  assert.deepEqual(display.call(fig), { "image/svg+xml": fig.svg });
});

Deno.test("figures are written as SVG and PNG", async () => {
  const fig = figure({
    title: "t",
    marks: [Plot.lineY([1, 2, 3])],
    height: 200,
  });
  const dir = await Deno.makeTempDir();
  try {
    await fig.writeSvg(`${dir}/f.svg`);
    assert.equal(await Deno.readTextFile(`${dir}/f.svg`), fig.svg + "\n");
    assert.deepEqual(pngSize(await fig.toPng({ scale: 1 })), {
      width: 640,
      height: fig.height,
    });
    await fig.writePng(`${dir}/f.png`);
    assert.deepEqual(pngSize(await Deno.readFile(`${dir}/f.png`)), {
      width: 1280,
      height: 2 * fig.height,
    });
    await assert.rejects(fig.toPng({ scale: 0 }), /scale must be in/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("text is rendered in the PNG (a font is available)", async () => {
  const blank = new Figure(
    '<svg xmlns="http://www.w3.org/2000/svg" width="60" height="20"></svg>',
    { width: 60, height: 20 },
  );
  const text = new Figure(
    '<svg xmlns="http://www.w3.org/2000/svg" width="60" height="20"><text x="2" y="15" font-family="system-ui, sans-serif" font-size="14">Hi</text></svg>',
    { width: 60, height: 20 },
  );
  const a = await blank.toPng({ scale: 1 });
  const b = await text.toPng({ scale: 1 });
  assert.notDeepEqual(a, b, "the text left no pixels: no usable font");
});
