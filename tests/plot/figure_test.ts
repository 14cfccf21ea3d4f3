import assert from "node:assert/strict";
import * as Plot from "@observablehq/plot";
import {
  bundledFontFiles,
  Figure,
  figure,
  PNG_FONT,
} from "../../lib/plot/figure.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import {
  assertGolden,
  assertWellFormedSvg,
  inkPixels,
  pngSize,
} from "./_golden.ts";

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

Deno.test("a figure displays in Jupyter as SVG, PNG and an HTML <img>", async () => {
  const fig = figure({ title: "Pins & faults", marks: [Plot.dot([[1, 2]])] });
  const display = (fig as unknown as Record<symbol, () => Promise<unknown>>)[
    Symbol.for("Jupyter.display")
  ]!;
  const bundle = await display.call(fig) as Record<string, string>;
  assert.deepEqual(Object.keys(bundle).sort(), [
    "image/png",
    "image/svg+xml",
    "text/html",
    "text/plain",
  ]);
  assert.equal(bundle["image/svg+xml"], fig.svg);
  const png = Uint8Array.from(
    atob(bundle["image/png"]!),
    (c) => c.charCodeAt(0),
  );
  assert.deepEqual(pngSize(png), {
    width: 2 * fig.width,
    height: 2 * fig.height,
  });
  const m =
    /^<img src="data:image\/svg\+xml;base64,([^"]+)" width="640" height="(\d+)" alt="Pins &amp; faults">$/
      .exec(bundle["text/html"]!);
  assert.ok(m, bundle["text/html"]!.slice(0, 120));
  const svg = new TextDecoder().decode(
    Uint8Array.from(atob(m[1]!), (c) => c.charCodeAt(0)),
  );
  assert.equal(svg, fig.svg);
  assert.equal(Number(m[2]), fig.height);
  assert.equal(
    bundle["text/plain"],
    `Figure: Pins & faults (640x${fig.height})`,
  );
  assert.equal(fig.title, "Pins & faults");
  assert.equal(figure({ marks: [Plot.dot([[1, 2]])] }).title, undefined);
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

Deno.test("PNG text comes from the bundled font, with system fonts disabled", async () => {
  assert.equal(PNG_FONT.loadSystemFonts, false);
  const files = await bundledFontFiles();
  assert.equal(files.length, 2);
  for (const f of files) {
    assert.match(f, /data\/fonts\/DejaVuSans(-Bold)?\.ttf$/);
    assert.ok((await Deno.stat(f)).size > 100_000);
  }
  const svg = (body: string) =>
    new Figure(
      `<svg xmlns="http://www.w3.org/2000/svg" width="120" height="24">${body}</svg>`,
      { width: 120, height: 24 },
    );
  const text = (s: string, family: string) =>
    svg(
      `<text x="2" y="18" font-family="${family}" font-size="16">${s}</text>`,
    );
  const blank = await inkPixels(await svg("").toPng({ scale: 1 }));
  assert.equal(blank, 0);
  // Plot's font stack names no bundled font: resvg falls back to DejaVu Sans.
  const hi = await inkPixels(
    await text("Hi", "system-ui, sans-serif").toPng({ scale: 1 }),
  );
  const hello = await inkPixels(
    await text("Hello there", "system-ui, sans-serif").toPng({ scale: 1 }),
  );
  assert.ok(hi > 20, `"Hi" left ${hi} pixels of ink`);
  assert.ok(hello > 3 * hi, `"Hello there" ${hello} vs "Hi" ${hi}`);
  // A whole figure: its title, tick labels and legend add ink.
  const marks = [Plot.lineY([1, 3, 2], { stroke: "black" })];
  const bare = await inkPixels(
    await figure({ marks, axis: null }).toPng({ scale: 1 }),
  );
  const labelled = await inkPixels(
    await figure({ marks, title: "Fault latency by design" }).toPng({
      scale: 1,
    }),
  );
  assert.ok(labelled > bare + 500, `labelled ${labelled} vs bare ${bare}`);
});
