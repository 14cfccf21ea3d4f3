/**
 * The report page reads as prose and tables: no Markdown backticks, no NaN
 * cells, no column without a value, no cell long enough to make a row
 * hundreds of pixels tall, and a stamp with the version and commit.
 */
import assert from "node:assert/strict";
import {
  CELL_TEXT_MAX,
  type HtmlReport,
  plainText,
  proseHtml,
  renderHtml,
} from "../../lib/report/mod.ts";

function page(over: Partial<HtmlReport> = {}): string {
  return renderHtml({
    title: "The `iopf` report",
    intro: ["Each scenario runs with `deno task sim` as it is."],
    experiments: [{
      id: "e1",
      title: "Start with `static-pin`",
      question: "Why `iopf`?",
      shows: "Run `deno task report --quick`; a lone ` stays.",
      findings: ["`vfio.faultLookup` dominates."],
      figures: [{
        id: "f",
        svg: '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>',
        alt: "Pinned by `static-pin`",
        svgFile: "f.svg",
        pngFile: "f.png",
      }],
      tables: [{
        id: "density",
        title: "Density runs",
        csvFile: "density.csv",
        rows: [
          {
            mode: "static-pin",
            setupNs: 3e8,
            aloneThroughputBytesPerSec: NaN,
            throughputCost: NaN,
            vmsHealthy: 4,
            errors: [
              "vm4: Cannot pin HVA 0x7f0000000000: out of host memory (0x1000-byte 4k page, 0 bytes free) (ENOMEM)",
              "vm5: Cannot pin HVA 0x7f0000000000: out of host memory (0x1000-byte 4k page, 0 bytes free) (ENOMEM)",
            ],
          },
          {
            mode: "iopf",
            setupNs: NaN,
            aloneThroughputBytesPerSec: NaN,
            throughputCost: NaN,
            vmsHealthy: 8,
            errors: [],
          },
        ],
      }],
      parameters: [{ json: '{"name": "x"}' }],
      runs: 2,
      wallSeconds: 1,
    }],
    costs: [{
      name: "vfio.faultLookup",
      value: 1,
      unit: "ns",
      source: "fitted by `deno task calibration`",
    }],
    stamp: "iopf-lab 0.1.0, commit 0123456789abcdef0123456789abcdef01234567",
    footer: "Made by `deno task report`.",
    ...over,
  });
}

/** The page's text outside tags and <pre> blocks. */
function visibleText(html: string): string {
  return html.replace(/<pre>[\s\S]*?<\/pre>/g, "").replace(/<[^>]*>/g, "");
}

Deno.test("proseHtml sets `code` spans as <code> and escapes the rest", () => {
  assert.equal(
    proseHtml("run `a<b` & `c`"),
    "run <code>a&lt;b</code> &amp; <code>c</code>",
  );
  assert.equal(proseHtml("no code"), "no code");
  assert.equal(proseHtml("odd ` one"), "odd &#96; one");
  assert.equal(plainText("by `x`"), "by x");
});

Deno.test("renderHtml: no literal backtick reaches the page", () => {
  const html = page();
  assert.ok(!visibleText(html).includes("`"), "a backtick is shown");
  assert.ok(!/aria-label="[^"]*`/.test(html));
  for (
    const code of [
      "deno task sim",
      "static-pin",
      "iopf",
      "vfio.faultLookup",
      "deno task calibration",
      "deno task report --quick",
    ]
  ) {
    assert.ok(html.includes(`<code>${code}</code>`), code);
  }
  assert.match(html, /<title>The iopf report<\/title>/);
});

Deno.test("renderHtml: columns with no value are left out and named, NaN cells say n/a", () => {
  const html = page();
  const table = /<table>[\s\S]*?<\/table>/.exec(html)![0];
  assert.ok(!table.includes("NaN"));
  assert.ok(!table.includes("aloneThroughputBytesPerSec"));
  assert.ok(!table.includes("throughputCost"));
  assert.match(
    html,
    /without a value in any row: <code>aloneThroughputBytesPerSec<\/code>, <code>throughputCost<\/code>/,
  );
  // setupNs has a value in one row: kept, its NaN shown as n/a.
  assert.ok(table.includes("<th>setupNs</th>"));
  assert.match(table, /<td class="na" title="not a number">n\/a<\/td>/);
  assert.ok(!visibleText(html).includes("NaN"));
});

Deno.test("renderHtml: long text cells are cut short, the whole in a tooltip", () => {
  const html = page();
  const cells = [...html.matchAll(/<td class="text[^"]*"[^>]*>([^<]*)<\/td>/g)];
  assert.ok(cells.length >= 4);
  for (const m of cells) {
    assert.ok(m[1]!.length <= CELL_TEXT_MAX, `a ${m[1]!.length}-char cell`);
  }
  const clipped = /<td class="text clip" title="([^"]*)">([^<]*)<\/td>/.exec(
    html,
  );
  assert.ok(clipped, "the error list is not clipped");
  assert.ok(clipped[1]!.startsWith("(2) vm4: Cannot pin"));
  assert.ok(clipped[1]!.includes("; vm5: Cannot pin"));
  assert.ok(clipped[2]!.endsWith("…"));
  assert.match(html, /td\.text \{[^}]*min-width: 14em;/);
});

Deno.test("renderHtml: the stamp is under the title and in the footer", () => {
  const html = page();
  const stamp =
    "iopf-lab 0.1.0, commit 0123456789abcdef0123456789abcdef01234567";
  assert.ok(html.indexOf(`<p class="meta" id="stamp">${stamp}</p>`) > 0);
  assert.ok(
    html.indexOf(stamp) < html.indexOf("<h2>"),
    "the stamp is not at the top",
  );
  assert.match(
    html,
    new RegExp(`Made by <code>deno task report</code>\\. ${stamp}</p>`),
  );
  assert.ok(!page({ stamp: "" }).includes('id="stamp"'));
});
