import assert from "node:assert/strict";
import fc from "fast-check";
import { join } from "node:path";
import { DOMParser } from "linkedom";
import { main, parseReportArgs, type ReportIo } from "../../cli/report.ts";
import { readCsv } from "../../lib/experiment/csv.ts";
import { emptyMetrics, type Metrics } from "../../lib/experiment/metrics.ts";
import { parseScenario } from "../../lib/experiment/scenario.ts";
import {
  BREAKDOWN_SEGMENTS,
  breakdownInput,
  pricedBreakdown,
  REMAINDER,
  segmentTotals,
} from "../../lib/analysis/mod.ts";
import {
  CELL_TEXT_MAX,
  escapeHtml,
  type Experiment,
  experimentScenarios,
  PNG_SCALE,
  pngSize,
  renderHtml,
  reportSuite,
  rowsToCsv,
  runReport,
  supportingScenarios,
  VERSION,
} from "../../lib/report/mod.ts";
import { SweepPool } from "../../lib/experiment/sweep.ts";
import { loadCostProfile } from "../../lib/sim/costs.ts";
import { hiddenLines, xBreakMarks, xTickLabels } from "../plot/_marks.ts";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Runs the CLI in-process, capturing its output. */
async function report(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io: ReportIo = {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    progress: true,
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

Deno.test("deno task report --quick writes a complete report", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "iopf-report-" });
  try {
    const r = await report(["--quick", "--out", dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), join(dir, "index.html"));
    const html = await Deno.readTextFile(join(dir, "index.html"));
    const suite = reportSuite({ quick: true });

    await t.step(
      "every file was written whole: no temporary file is left",
      () => {
        const names = [...Deno.readDirSync(dir)].map((e) => e.name);
        assert(names.length > 20);
        assert.deepEqual(names.filter((n) => n.includes(".tmp-")), []);
      },
    );

    await t.step("progress: a line per experiment and per run", () => {
      for (const e of suite) {
        assert.match(r.stderr, new RegExp(`\\] ${e.id}: done in `));
      }
      // The supporting (density) runs report their progress too.
      const runs = suite.reduce(
        (a, e) =>
          a + experimentScenarios(e).length + supportingScenarios(e).length,
        0,
      );
      const lines = r.stderr.split("\n").filter((l) =>
        /^\[\d+\/\d+\] /.test(l)
      );
      assert.equal(lines.length, runs);
    });

    const svgFiles = unique(
      [...html.matchAll(/href="([^"]+\.svg)"/g)].map((m) => m[1]!),
    );
    const pngFiles = unique(
      [...html.matchAll(/href="([^"]+\.png)"/g)].map((m) => m[1]!),
    );
    const csvFiles = unique(
      [...html.matchAll(/href="([^"]+\.csv)"/g)].map((m) => m[1]!),
    );

    await t.step("every figure inline, with its .svg and .png", async () => {
      const inline = html.match(/<svg[\s>]/g) ?? [];
      assert.ok(svgFiles.length >= suite.length, `${svgFiles.length} figures`);
      assert.equal(inline.length, svgFiles.length);
      assert.equal(pngFiles.length, svgFiles.length);
      for (const f of [...svgFiles, ...pngFiles]) {
        assert.ok((await Deno.stat(join(dir, f))).isFile, f);
      }
      for (const e of suite) assert.ok(html.includes(`id="${e.id}"`), e.id);
    });

    await t.step("each SVG parses and has the SVG namespace", async () => {
      for (const f of svgFiles) {
        const text = await Deno.readTextFile(join(dir, f));
        const doc = new DOMParser().parseFromString(text, "image/svg+xml");
        const root = doc.documentElement as unknown as {
          localName: string;
          getAttribute(n: string): string | null;
        };
        assert.equal(root.localName, "svg", f);
        assert.equal(root.getAttribute("xmlns"), "http://www.w3.org/2000/svg");
        assert.ok(Number(root.getAttribute("width")) > 0, f);
      }
    });

    await t.step("each PNG is a PNG of twice the SVG's size", async () => {
      for (const f of pngFiles) {
        const png = await Deno.readFile(join(dir, f));
        assert.deepEqual([...png.subarray(0, 8)], PNG_SIGNATURE, f);
        assert.equal(String.fromCharCode(...png.subarray(12, 16)), "IHDR");
        const view = new DataView(png.buffer, png.byteOffset);
        const svg = await Deno.readTextFile(
          join(dir, f.replace(/\.png$/, ".svg")),
        );
        const w = Number(/<svg[^>]* width="([0-9.]+)"/.exec(svg)![1]);
        const h = Number(/<svg[^>]* height="([0-9.]+)"/.exec(svg)![1]);
        assert.equal(view.getUint32(16), Math.round(w * PNG_SCALE), f);
        assert.equal(view.getUint32(20), Math.round(h * PNG_SCALE), f);
      }
    });

    await t.step("each CSV parses with a header and rows", async () => {
      assert.ok(csvFiles.includes("cost-profile.csv"));
      for (const e of suite) {
        assert.ok(csvFiles.includes(`${e.id}-metrics.csv`));
      }
      for (const f of csvFiles) {
        const text = await Deno.readTextFile(join(dir, f));
        const header = text.slice(0, text.indexOf("\n")).split(",");
        assert.ok(header.length >= 2 && header.every((c) => c !== ""), f);
        const rows = readCsv(text);
        assert.ok(rows.length > 0, f);
        assert.deepEqual(Object.keys(rows[0]!), header, f);
      }
    });

    await t.step("the cost profile is listed with sources", () => {
      assert.match(html, /id="cost-profile"/);
      assert.match(html, /<code>vfio\.faultLookup<\/code>/);
      assert.match(html, /RFC v2 cover letter/);
    });

    await t.step("the page reads: no backticks, NaN or runaway cells", () => {
      const prose = html.replace(/<pre>[\s\S]*?<\/pre>/g, "")
        .replace(/<svg[\s\S]*?<\/svg>/g, "").replace(/<[^>]*>/g, "");
      assert.ok(!prose.includes("`"), "a literal backtick on the page");
      assert.ok(!/\bNaN\b/.test(prose), "a NaN on the page");
      assert.match(html, /<code>deno task sim<\/code>/);
      // The data previews (the cost profile's sources are prose, wrapped).
      const previews = html.slice(
        0,
        html.indexOf('<section id="cost-profile">'),
      );
      for (
        const m of previews.matchAll(
          /<td class="text[^"]*"[^>]*>([^<]*)<\/td>/g,
        )
      ) {
        const text = m[1]!.replace(/&[a-z]+;/g, "&");
        assert.ok(text.length <= CELL_TEXT_MAX, `a cell of ${text.length}`);
      }
    });

    await t.step("no figure hides a line under another", async () => {
      for (const f of svgFiles) {
        const svg = await Deno.readTextFile(join(dir, f));
        assert.deepEqual(hiddenLines(svg), [], f);
      }
    });

    await t.step(
      "the five-design time series break their time axis",
      async () => {
        for (const f of ["alternatives-pinned", "alternatives-throughput"]) {
          const svg = await Deno.readTextFile(join(dir, `${f}.svg`));
          assert.ok(xBreakMarks(svg) >= 1, `${f} has no axis break`);
          assert.match(svg, /Broken time axis: /);
          // Ticks in every busy stretch: the ones at 140-170 ms included.
          const ticks = xTickLabels(svg).map((t) => Number(t.text));
          assert.ok(ticks.filter((v) => v > 100 && v < 200).length >= 3, f);
        }
      },
    );

    await t.step(
      "the page is stamped with the version and commit",
      async () => {
        const head = new TextDecoder().decode(
          (await new Deno.Command("git", {
            args: ["rev-parse", "HEAD"],
            cwd: new URL("../../", import.meta.url),
            stdout: "piped",
          }).output()).stdout,
        ).trim();
        assert.match(head, /^[0-9a-f]{40}$/);
        assert.ok(
          html.includes(
            `<p class="meta" id="stamp">iopf-lab ${VERSION}, commit ${head}</p>`,
          ),
        );
      },
    );

    await t.step(
      "the fault latency totals are the measured means",
      async () => {
        const parts = readCsv(
          await Deno.readTextFile(join(dir, "fault-latency.csv")),
          {
            text: [
              "configuration",
              "fault",
              "stage",
              "segment",
              "hop",
              "costParameters",
            ],
          },
        );
        const byConfig = new Map<string, { sum: number; measured: number }>();
        for (const p of parts) {
          const c = byConfig.get(String(p.configuration)) ??
            { sum: 0, measured: Number(p.measuredMeanNs) };
          c.sum += Number(p.contributionNs);
          byConfig.set(String(p.configuration), c);
        }
        assert.equal(byConfig.size, 4);
        for (const [config, c] of byConfig) {
          assert.ok(c.measured > 0, config);
          assert.ok(Math.abs(c.sum - c.measured) < 1e-6 * c.measured, config);
        }
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function unique(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}

// ---------------------------------------------------------------------------
// The latency breakdown

const costs = loadCostProfile();

Deno.test("pricedBreakdown: the parts add up to the measured mean", () => {
  fc.assert(
    fc.property(
      fc.constantFrom("stall" as const, "pri" as const),
      fc.double({ min: 0, max: 1e7, noNaN: true }),
      fc.double({ min: 0, max: 4, noNaN: true }),
      fc.double({ min: 0, max: 4, noNaN: true }),
      fc.double({ min: 0, max: 24, noNaN: true }),
      fc.double({ min: 1e6, max: 1e11, noNaN: true }),
      (fault, measured, s1, s2, walk, bw) => {
        const parts = pricedBreakdown({
          costs,
          fault,
          measuredMeanNs: measured,
          stage1FaultsPerAccess: s1,
          stage2FaultsPerAccess: s2,
          walkReadsPerTranslation: walk,
          dmaBandwidth: bw,
        });
        const sum = parts.reduce((a, p) => a + p.ns, 0);
        assert.ok(
          Math.abs(sum - measured) <=
            1e-9 * Math.max(1, measured, Math.abs(sum)),
        );
        const rest = parts.filter((p) => p.segment === REMAINDER);
        assert.equal(rest.length, 1);
        assert.equal(parts[parts.length - 1], rest[0]);
        for (const p of parts) {
          if (p.segment === REMAINDER) continue;
          assert.ok(Math.abs(p.ns - p.nsEach * p.perAccess) <= 1e-9 * p.ns);
        }
        const totals = segmentTotals(parts);
        assert.ok(
          Math.abs(totals.reduce((a, x) => a + x.ns, 0) - measured) <=
            1e-9 * Math.max(1, measured, Math.abs(sum)),
        );
      },
    ),
  );
});

Deno.test("pricedBreakdown prices the single-stage stall path from the profile", () => {
  const parts = pricedBreakdown({
    costs,
    fault: "stall",
    measuredMeanNs: 100_000,
    stage1FaultsPerAccess: 0,
    stage2FaultsPerAccess: 1,
    walkReadsPerTranslation: 4,
    accessBytes: 4096,
    dmaBandwidth: 8e9,
  });
  const hop = (segment: string) =>
    parts.filter((p) => p.segment === segment).reduce((a, p) => a + p.ns, 0);
  assert.equal(
    hop(BREAKDOWN_SEGMENTS[0]),
    costs["smmu.eventWrite"] + costs["smmu.irqLatency"] +
      costs["smmu.evtqHandlerPerRecord"],
  );
  assert.equal(hop("nested: forwarded to the guest and back"), 0);
  assert.equal(
    hop("mm: fault in, zero, pin"),
    costs["mm.faultOverhead"] + costs["mm.zeroPer4k"] + costs["mm.pinCall"] +
      costs["mm.pinPer4k"],
  );
  assert.equal(hop("device access"), 512);
  const retry = parts.find((p) => p.hop.startsWith("retried translation"))!;
  assert.equal(
    retry.ns,
    costs["smmu.iotlbLookup"] + 4 * costs["smmu.walkRead"],
  );
  assert.match(retry.costs, /4 × smmu\.walkRead/);
});

Deno.test("pricedBreakdown forwards stage-1 faults to the guest only in nested runs", () => {
  const nested = pricedBreakdown({
    costs,
    fault: "pri",
    measuredMeanNs: 40_000,
    stage1FaultsPerAccess: 1,
    stage2FaultsPerAccess: 1,
    walkReadsPerTranslation: 6,
    dmaBandwidth: 8e9,
  });
  const guest = nested.filter((p) => p.segment === BREAKDOWN_SEGMENTS[2]);
  assert.ok(guest.some((p) => p.costs.includes("vmm.trap")));
  const delivery = nested.find((p) => p.costs === "pci.pageRequestLatency")!;
  assert.equal(delivery.perAccess, 2); // one page request per fault
  const none = pricedBreakdown({
    costs,
    fault: "pri",
    measuredMeanNs: 0,
    stage1FaultsPerAccess: 0,
    stage2FaultsPerAccess: 0,
    walkReadsPerTranslation: 0,
    dmaBandwidth: 8e9,
  });
  assert.deepEqual(none.map((p) => p.segment), ["device access", REMAINDER]);
  assert.equal(none[1]!.ns, -512);
});

Deno.test("pricedBreakdown refuses impossible measurements", () => {
  assert.throws(
    () =>
      pricedBreakdown({
        costs,
        fault: "stall",
        measuredMeanNs: Number.NaN,
        stage1FaultsPerAccess: 0,
        stage2FaultsPerAccess: 1,
        walkReadsPerTranslation: 4,
        dmaBandwidth: 8e9,
      }),
    /measuredMeanNs must be a finite number >= 0, got NaN \(EINVAL\)/,
  );
});

Deno.test("breakdownInput reads the per-access counts off the metrics", () => {
  const scenario = parseScenario({
    smmu: { stage: "nested" },
    device: { fault: "pri", dmaBandwidth: "4GB/s" },
    dma: { mode: "iopf" },
  });
  const base = emptyMetrics("x", 1);
  const metrics: Metrics = {
    ...base,
    faults: { total: 300, stage1: 100, stage2: 200, stall: 0, pri: 300 },
    faultLatencyNs: { mean: 30_000, p50: 30_000, p99: 30_000, max: 30_000 },
    iotlb: { hits: 0, misses: 50 },
    extra: { faultLatencySamples: 100, walkReads: 300 },
  };
  const input = breakdownInput(scenario, metrics, costs);
  assert.equal(input.fault, "pri");
  assert.equal(input.stage1FaultsPerAccess, 1);
  assert.equal(input.stage2FaultsPerAccess, 2);
  assert.equal(input.walkReadsPerTranslation, 6);
  assert.equal(input.dmaBandwidth, 4e9);
  assert.equal(input.measuredMeanNs, 30_000);
  assert.throws(
    () => breakdownInput(scenario, base, costs),
    /no faulting accesses/,
  );
});

// ---------------------------------------------------------------------------
// The suite, files and HTML

Deno.test("reportSuite: nine experiments whose scenarios all parse", () => {
  for (const quick of [true, false]) {
    const suite = reportSuite({ quick });
    assert.deepEqual(suite.map((e) => e.id), [
      "start-time",
      "fault-latency",
      "accelerator-slowdown",
      "ramp-up",
      "pri-queue",
      "notifier-memory",
      "lazy-invalidation",
      "alternatives",
      "rfc-vs-mainline",
    ]);
    for (const e of suite) {
      const points = experimentScenarios(e);
      assert.ok(points.length > 0, e.id);
      assert.equal(
        new Set(points.map((p) => p.name)).size,
        points.length,
        e.id,
      );
    }
  }
  const quick = reportSuite({ quick: true });
  const full = reportSuite();
  const count = (s: typeof quick) =>
    s.reduce((a, e) => a + experimentScenarios(e).length, 0);
  assert.ok(count(quick) < count(full));
  // The full suite reaches a 1 TiB guest on hugetlb and 256 GiB on 4 KiB pages.
  const start = experimentScenarios(full[0]!);
  assert.ok(
    start.some((s) =>
      s.vm.memory === 2 ** 40 && s.host.backing === "hugetlb-1g"
    ),
  );
  assert.ok(
    start.some((s) => s.vm.memory === 256 * 2 ** 30 && s.host.backing === "4k"),
  );
  assert.ok(start.every((s) => s.vm.memory < s.host.memory));
});

Deno.test("the memory pressure experiments overcommit the host", () => {
  for (const quick of [true, false]) {
    for (const id of ["notifier-memory", "lazy-invalidation"]) {
      const e = reportSuite({ quick }).find((x) => x.id === id)!;
      for (const s of experimentScenarios(e)) {
        assert.ok(s.vm.memory * s.vm.count > s.host.memory, `${id}: ${s.name}`);
        // Lazy invalidation is a what-if for DMA-API style unmaps
        // (viommu-pin's UNMAP_DMA); the notifier is strict in every mode.
        assert.equal(
          s.dma.mode,
          id === "lazy-invalidation" ? "viommu-pin" : "iopf",
        );
      }
    }
  }
});

Deno.test("rowsToCsv writes tidy rows with the union of the columns", () => {
  const csv = rowsToCsv([
    { mode: "static-pin", setupNs: 2.5e9, prefault: true },
    { mode: "iopf, nested", extra: 1 },
  ]);
  assert.equal(
    csv,
    'mode,setupNs,prefault,extra\nstatic-pin,2500000000,true,\n"iopf, nested",,,1',
  );
  assert.deepEqual(readCsv(csv)[0], {
    mode: "static-pin",
    setupNs: 2.5e9,
    prefault: "true",
    extra: "",
  });
});

Deno.test("pngSize reads IHDR and refuses what is not a PNG", () => {
  const png = new Uint8Array(33);
  png.set(PNG_SIGNATURE, 0);
  png.set([0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52], 8);
  new DataView(png.buffer).setUint32(16, 1440);
  new DataView(png.buffer).setUint32(20, 902);
  assert.deepEqual(pngSize(png), { width: 1440, height: 902 });
  assert.throws(() => pngSize(new Uint8Array(33)), /not a PNG/);
});

Deno.test("renderHtml escapes text and inlines figures as given", () => {
  const svg =
    '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>';
  const html = renderHtml({
    title: "A & B",
    intro: ["<script>alert(1)</script>"],
    experiments: [{
      id: "e1",
      title: "Question <1>",
      question: "Why?",
      shows: "x < y",
      findings: ['a "quoted" finding'],
      figures: [{
        id: "f",
        svg,
        alt: "alt",
        svgFile: "f.svg",
        pngFile: "f.png",
      }],
      tables: [{
        id: "t",
        title: "T",
        csvFile: "t.csv",
        rows: [{ setupNs: 2.5e9, name: "<n>" }],
      }],
      parameters: [{ json: '{"a": "<b>"}', note: "adjusted" }],
      runs: 2,
      wallSeconds: 1.25,
    }],
    costs: [{ name: "mm.zeroPer4k", value: 670, unit: "ns", source: "a & b" }],
    costsCsv: "cost-profile.csv",
  });
  assert.ok(html.startsWith("<!doctype html>"));
  assert.equal(html.match(/<svg[\s>]/g)?.length, 1);
  assert.ok(html.includes(svg));
  assert.ok(!html.includes("<script>"));
  assert.ok(html.includes("&lt;script&gt;"));
  assert.ok(html.includes("Question &lt;1&gt;"));
  assert.ok(html.includes("2.500 s")); // setupNs formatted as a time
  assert.ok(html.includes("&lt;n&gt;"));
  assert.ok(html.includes('href="t.csv"') && html.includes('href="f.png"'));
  assert.equal(
    escapeHtml(`<a href="x">&</a>`),
    "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;",
  );
});

// ---------------------------------------------------------------------------
// The command line

Deno.test("parseReportArgs: defaults and options", () => {
  assert.deepEqual(parseReportArgs([]), {
    help: false,
    out: "out/report",
    quick: false,
    db: "out/report/results.sqlite",
    fresh: false,
  });
  assert.deepEqual(
    parseReportArgs(["--quick", "--out", "d", "--workers", "0"]),
    {
      help: false,
      out: "d",
      quick: true,
      db: "d/results.sqlite",
      fresh: false,
      workers: 0,
    },
  );
  assert.deepEqual(parseReportArgs(["--out=x/y"]), {
    help: false,
    out: "x/y",
    quick: false,
    db: "x/y/results.sqlite",
    fresh: false,
  });
  assert.deepEqual(parseReportArgs(["--db", "r.sqlite", "--fresh"]), {
    help: false,
    out: "out/report",
    quick: false,
    db: "r.sqlite",
    fresh: true,
  });
  assert.equal(
    (parseReportArgs(["--no-db"]) as { db: string | null }).db,
    null,
  );
  assert.deepEqual(parseReportArgs(["--help"]), { help: true });
});

Deno.test("deno task report: bad arguments exit 2 with one message", async () => {
  for (
    const [args, pattern] of [
      [["--bogus"], /unknown option --bogus/],
      [["--out"], /--out needs a value/],
      [["--workers", "two"], /--workers: expected a whole number/],
      [["extra"], /unexpected argument "extra"/],
      [["--quick=yes"], /--quick takes no value/],
      [["--db", "a", "--no-db"], /--db and --no-db together/],
      [["--no-db", "--fresh"], /--fresh needs a results database/],
      [["--db", "/nonexistent-dir/r.sqlite"], /--db .*does not exist/],
    ] as const
  ) {
    const r = await report([...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, pattern);
    assert.match(r.stderr, /^report: /);
  }
  const help = await report(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: deno task report/);
});

Deno.test("the alternatives section compares all five designs and recommends from the rows", async () => {
  const { alternatives } = await import(
    "../../lib/report/experiments/alternatives.ts"
  );
  const { runScenarioWithSeries } = await import("../../lib/experiment/run.ts");
  const e = alternatives(true);
  const points = experimentScenarios(e);
  assert.equal(
    points.length,
    30,
    "3 workloads x 5 designs, then their density runs (to the same workers)",
  );
  assert.deepEqual(
    points.slice(15, 20).map((p) => p.name),
    [
      "nic-rx density[static-pin]",
      "nic-rx density[iopf]",
      "nic-rx density[iopf+notifier]",
      "nic-rx density[viommu-pin]",
      "nic-rx density[coiommu]",
    ],
  );
  const runs = points.map((scenario) => ({
    scenario,
    ...runScenarioWithSeries(scenario, { seriesPoints: 20 }),
  }));
  const result = e.analyse(runs, []);
  const rows = result.tables[0]!.rows as unknown as {
    mode: string;
    pinnedBytesPeak: number;
    isolationViolations: number;
  }[];
  assert.deepEqual([...new Set(rows.map((r) => r.mode))], [
    "static-pin",
    "iopf",
    "iopf+notifier",
    "viommu-pin",
    "coiommu",
  ]);
  for (const r of rows) assert.equal(r.isolationViolations, 0);
  const staticPinned =
    rows.find((r) => r.mode === "static-pin")!.pinnedBytesPeak;
  assert.equal(
    staticPinned,
    512 * 2 ** 20,
    "static pinning pins the whole guest",
  );
  const recs = result.tables[1]!.rows as unknown as {
    mode: string;
    pinnedBytesPeak: number;
    pinnedLimitBytes: number;
  }[];
  assert.equal(recs.length, 3);
  for (const r of recs) {
    assert.notEqual(
      r.mode,
      "static-pin",
      "static pinning is over the pinning budget",
    );
    assert.ok(r.pinnedBytesPeak <= r.pinnedLimitBytes);
  }
  assert.equal(result.figures.length, 4);
});

Deno.test("the rfc-vs-mainline density runs go to the report's workers with its other runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "iopf-report-density-" });
  const pool = new SweepPool({ size: 1 });
  try {
    const e = reportSuite({ quick: true }).find((x) =>
      x.id === "rfc-vs-mainline"
    )!;
    const listed = experimentScenarios(e).length;
    const density = supportingScenarios(e);
    assert.deepEqual(density.map((s) => s.vm.count), [8, 8, 8, 8, 8]);
    const summary = await runReport({
      out: dir,
      quick: true,
      only: ["rfc-vs-mainline"],
      pool,
      progress: false,
      log: () => {},
    });
    // The section lists its own runs only; the pool ran the density runs too.
    assert.equal(summary.runs, listed);
    assert.equal(pool.dispatched, listed + density.length);
    const rows = readCsv(
      await Deno.readTextFile(join(dir, "rfc-vs-mainline-density.csv")),
    );
    assert.deepEqual(
      rows.map((r) => r.mode),
      [
        "type1-static",
        "type1-iopf",
        "iommufd-pinned",
        "iommufd-nested",
        "iommufd-iopf",
      ],
    );
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the report's experiments share one sweep: a worker free at the end of one experiment runs the next one's points", async () => {
  const dir = await Deno.makeTempDir({ prefix: "iopf-report-pipe-" });
  const pool = new SweepPool({ size: 2 });
  // Pool dispatches when each experiment is analysed.
  const seen: Record<string, number> = {};
  const tiny = (id: string, seeds: number[]): Experiment => ({
    id,
    title: id,
    question: "?",
    shows: "Nothing.",
    series: false,
    sets: [{
      json: {
        name: id,
        vm: { memory: "32MiB" },
        dma: { mode: "iopf" },
        workload: { kind: "accelerator", messageSize: "64KiB", messages: 4 },
        sweep: { seed: seeds },
      },
    }],
    analyse: (runs) => {
      seen[id] = pool.dispatched;
      return {
        figures: [],
        tables: [{
          id: `${id}-seeds`,
          title: "Seeds",
          rows: runs.map((r) => ({ seed: r.metrics.seed })),
        }],
        findings: [],
      };
    },
  });
  try {
    await runReport({
      out: dir,
      experiments: [tiny("one", [1]), tiny("three", [2, 3, 4])],
      pool,
      progress: false,
      log: () => {},
    });
    // Experiment "one" has a single run; the second worker took the first
    // run of "three" at once instead of waiting for "one" to be written.
    assert.ok(seen.one! >= 2, `dispatched ${seen.one} when "one" was analysed`);
    assert.equal(seen.three, 4);
    const rows = readCsv(await Deno.readTextFile(join(dir, "three-seeds.csv")));
    assert.deepEqual(rows.map((r) => r.seed), [2, 3, 4]);
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});
