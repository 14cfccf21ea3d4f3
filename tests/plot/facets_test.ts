import assert from "node:assert/strict";
import {
  facetLines,
  LAYER_WIDTH,
  MAX_LAYERS,
  SERIES_SYMBOLS,
  seriesStyles,
  stackedBars,
} from "../../lib/plot/mod.ts";
import {
  drawnLines,
  hiddenLines,
  markGroups,
  xBreakMarks,
  xTickLabels,
} from "./_marks.ts";

const rows = [
  { vm: 1, ns: 1e6, mode: "iopf", backing: "4k" },
  { vm: 2, ns: 2e6, mode: "iopf", backing: "4k" },
  { vm: 1, ns: 3e6, mode: "static-pin", backing: "4k" },
  { vm: 2, ns: 6e6, mode: "static-pin", backing: "4k" },
];

Deno.test("facetLines: one series per value, in the given order, y in a readable unit", () => {
  const fig = facetLines(rows, {
    x: "vm",
    y: "ns",
    series: "mode",
    seriesDomain: ["static-pin", "iopf"],
    fx: "backing",
    xLabel: "VMs",
    yLabel: "setup",
    yUnit: "ns",
    yType: "log",
    title: "Setup",
  });
  assert.match(fig.svg, /setup \(ms\)/);
  assert.ok(fig.svg.indexOf("static-pin") < fig.svg.indexOf(">iopf<"));
});

Deno.test("facetLines and stackedBars refuse a value that is not a number", () => {
  const bad = [{ vm: 1, ns: "slow", mode: "iopf" }];
  assert.throws(
    () =>
      facetLines(bad, {
        x: "vm",
        y: "ns",
        series: "mode",
        xLabel: "",
        yLabel: "",
        title: "",
      }),
    /row 0 has ns="slow"; expected a number/,
  );
  assert.throws(
    () =>
      stackedBars(bad, {
        x: "mode",
        y: "ns",
        fill: "mode",
        xLabel: "",
        yLabel: "",
        title: "",
      }),
    /expected a number/,
  );
});

// ---------------------------------------------------------------------------
// Series that would hide each other

/** Locked memory at VM start, as the start-time experiment draws it: two pairs coincide. */
const locked = [4, 16, 64].flatMap((g) => [
  { gib: g, bytes: g * 2 ** 30, config: "static pin" },
  { gib: g, bytes: g * 2 ** 30, config: "static pin + prefault" },
  { gib: g, bytes: 0, config: "IOPF" },
  { gib: g, bytes: 0, config: "IOPF + prefault" },
  { gib: g, bytes: g * 2 ** 29, config: "half" },
]);

function lockedFigure(dots = true) {
  return facetLines(locked, {
    x: "gib",
    y: "bytes",
    series: "config",
    dashed: ["static pin + prefault", "IOPF + prefault"],
    xType: "log",
    yType: "symlog",
    symlogConstant: 2 ** 30,
    xFormat: "count",
    yFormat: "size",
    xLabel: "guest RAM (GiB)",
    yLabel: "locked",
    dots,
    title: "Locked",
  });
}

Deno.test("facetLines: a line another lies on is drawn wider underneath, so both show", () => {
  const fig = lockedFigure();
  assert.deepEqual(hiddenLines(fig.svg), []);
  const lines = drawnLines(fig.svg);
  const width = (color: string) => lines.find((l) => l.stroke === color)!.width;
  const [blue, yellow, red, teal, green] = [
    "#4269d0",
    "#efb118",
    "#ff725c",
    "#6cc5b0",
    "#3ca951",
  ];
  // static pin lies under static pin + prefault: wider by one layer.
  assert.equal(width(blue!), 1.6 + LAYER_WIDTH);
  assert.equal(width(yellow!), 2);
  // The IOPF pair coincides at zero (no zero rule on this axis): widened.
  assert.equal(width(red!), 1.6 + LAYER_WIDTH);
  assert.equal(width(teal!), 2);
  // A line on its own keeps the base width.
  assert.equal(width(green!), 1.6);
  assert.match(fig.svg, /drawn larger, underneath/);
  // Without the widening the check would flag the pair.
  const flat = fig.svg.replace(/stroke-width="3\.6"/g, 'stroke-width="2"');
  assert.ok(hiddenLines(flat).length > 0, "the check cannot fail");
});

Deno.test("facetLines: each series its own dot symbol, shown in a line swatch in the legend", () => {
  const fig = lockedFigure();
  const dots = markGroups(fig.svg, "dot").map(({ body }) => {
    const m = /<(circle|path)\b([^>]*)>/.exec(body)!;
    return m[1] === "circle"
      ? "circle"
      : /\bd="([^"]*)"/.exec(m[2]!)![1]!.replace(/[-0-9.]+/g, "n");
  });
  assert.equal(dots.length, 5);
  assert.equal(new Set(dots).size, 5, `symbols: ${dots.join(" | ")}`);
  const legend = /<g[^>]*aria-label="color legend"[^>]*>([\s\S]*?)<\/g>/.exec(
    fig.svg,
  )![1]!;
  assert.equal((legend.match(/<line /g) ?? []).length, 5);
  assert.equal((legend.match(/stroke-dasharray="6,4"/g) ?? []).length, 2);
  assert.ok(!legend.includes("<rect"), "square swatches");
  for (const s of SERIES_SYMBOLS.slice(1, 5)) {
    assert.ok(legend.includes(`aria-label="${s} symbol"`), s);
  }
});

Deno.test("seriesStyles: lines that only cross or share a few samples are not widened", () => {
  const pts = (color: string, ys: number[]) =>
    ys.map((y, x) => ({ x, y, color, fx: "", fy: "" }));
  const style = (data: ReturnType<typeof pts>) =>
    seriesStyles(data, ["a", "b"], {
      dashed: new Set(),
      dots: false,
      transform: (v) => v,
      zeroRule: true,
    });
  // Crossing once: near at two samples of nine segments.
  // On a linear axis with its zero rule, lines both at zero do not count.
  const zeros = [...pts("a", [0, 0, 0, 0, 5]), ...pts("b", [0, 0, 0, 0, 9])];
  assert.deepEqual(style(zeros).map((s) => s.under), [0, 0]);
  assert.deepEqual(
    seriesStyles(zeros, ["a", "b"], {
      dashed: new Set(),
      dots: false,
      transform: (v) => v,
    }).map((s) => s.under),
    [1, 0],
  );
  const crossing = [
    ...pts("a", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
    ...pts("b", [9, 8, 7, 6, 5, 4.6, 3, 2, 1, 0]),
  ];
  assert.deepEqual(style(crossing).map((s) => s.under), [0, 0]);
  // The same values throughout.
  const same = [
    ...pts("a", [0, 1, 2, 3, 4, 5]),
    ...pts("b", [0, 1, 2, 3, 4, 5.01]),
  ];
  const s = style(same);
  assert.deepEqual(s.map((x) => x.under), [1, 0]);
  assert.deepEqual(s.map((x) => x.symbol), ["circle", "square"]);
  // At most MAX_LAYERS layers, however many series coincide.
  const many = ["a", "b", "c", "d", "e", "f"];
  const stack = seriesStyles(
    many.flatMap((c) => pts(c, [1, 2, 3])),
    many,
    { dashed: new Set(), dots: false, transform: (v) => v },
  );
  assert.equal(stack[0]!.under, MAX_LAYERS);
  assert.equal(stack.at(-1)!.under, 0);
});

// ---------------------------------------------------------------------------
// A broken time axis

/** Five designs over time: four busy at 140-170 ms, static pinning only from 340 ms. */
function designs() {
  const rows: { tNs: number; y: number; mode: string }[] = [];
  for (let t = 0; t <= 350; t++) {
    const tNs = t * 1e6;
    rows.push({ tNs, y: t >= 340 ? 8e9 : 0, mode: "static-pin" });
    for (const [k, mode] of ["iopf", "viommu-pin", "coiommu"].entries()) {
      const busy = t >= 140 + k && t <= 170;
      rows.push({ tNs, y: busy ? (1 + k + (t % 3)) * 1e9 : 0, mode });
    }
  }
  return rows;
}

function throughputFigure(xBreaks: boolean) {
  return facetLines(designs(), {
    x: "tNs",
    y: "y",
    series: "mode",
    yUnit: "bytes/s",
    xBreaks,
    step: true,
    xLabel: "time since VM start",
    yLabel: "DMA throughput",
    title: "Throughput over time",
  });
}

/** Pixels between the tick labels `a` and `b`, over the plot's width. */
function share(svg: string, a: string, b: string): number {
  const ticks = xTickLabels(svg);
  const at = (t: string) => ticks.find((x) => x.text === t)!.x;
  return (at(b) - at(a)) / (720 - 70 - 28);
}

Deno.test("facetLines xBreaks: quiet stretches are cut, the busy window gets the width", () => {
  const whole = throughputFigure(false);
  assert.equal(xBreakMarks(whole.svg), 0);
  assert.ok(share(whole.svg, "150", "200") < 0.16); // 50 of 350 ms
  const broken = throughputFigure(true);
  assert.equal(xBreakMarks(broken.svg), 2);
  const ticks = xTickLabels(broken.svg);
  const labels = ticks.map((t) => Number(t.text.replace(/,/g, "")));
  // Tick labels are real times, increasing left to right, none in a cut.
  assert.deepEqual(labels, [...labels].sort((p, q) => p - q));
  assert.ok(labels.some((v) => v >= 140 && v <= 170));
  assert.ok(labels.some((v) => v >= 340));
  assert.ok(!labels.some((v) => v > 40 && v < 130), labels.join(","));
  assert.ok(!labels.some((v) => v > 180 && v < 330), labels.join(","));
  // The 140-170 ms window: a sliver of the whole axis, most of the broken one.
  const busy = share(broken.svg, String(labels.find((v) => v >= 140)), "170");
  // 30 of 350 ms is 9 % of a whole axis; cut, over a third.
  assert.ok(busy > 0.33, `the busy window has ${(busy * 100).toFixed(0)} %`);
  assert.ok(busy > 4 * share(whole.svg, "150", "200") * (30 / 50));
  assert.match(broken.svg, /Broken time axis: 0–1\d\d ms and 1\d\d–3\d\d ms/);
});

Deno.test("facetLines xBreaksIgnore: a ramp of one series does not keep the others squeezed", () => {
  const rows = designs().map((r) =>
    r.mode === "static-pin" ? { ...r, y: Math.min(r.tNs / 1e6, 300) * 1e9 } : r
  );
  const o = {
    x: "tNs",
    y: "y",
    series: "mode",
    yUnit: "bytes/s" as const,
    xBreaks: true,
    xLabel: "time",
    yLabel: "pinned",
    title: "Pinned",
  };
  assert.equal(xBreakMarks(facetLines(rows, o).svg), 1); // only after 300 ms
  const fig = facetLines(rows, { ...o, xBreaksIgnore: ["static-pin"] });
  assert.equal(xBreakMarks(fig.svg), 2);
  assert.match(fig.svg, /when no line but static-pin changes/);
  assert.throws(
    () => facetLines(rows, { ...o, xType: "log" }),
    /xBreaks needs a linear x axis, not log/,
  );
});
