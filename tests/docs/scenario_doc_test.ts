/**
 * docs/SCENARIO.md against the code: the field tables list exactly the
 * fields the parser accepts (probed through parseScenario and the "known:
 * ..." lists of its errors), each literal default is what parseScenario
 * fills in, every documented field can be set and swept, and the metric
 * tables list exactly the metrics a run reports.
 */
import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import {
  bareMessage,
  parseScenario,
  type Scenario,
} from "../../lib/experiment/scenario.ts";
import {
  flattenMetrics,
  type Metrics,
  METRICS_ORDER,
} from "../../lib/experiment/metrics.ts";
import { runScenario } from "../../lib/experiment/run.ts";
import { IopfLabError } from "../../lib/sim/errors.ts";
import { parseBandwidth, parseSize } from "../../lib/sim/units.ts";

const root = new URL("../../", import.meta.url);
const DOC_PATH = fromFileUrl(new URL("docs/SCENARIO.md", root));
const TRACE_FILE = fromFileUrl(
  new URL("data/traces/accelerator_two_phase.csv", root),
);

// ---------------------------------------------------------------------------
// Reading the document's tables

/** One row of a field table: `| \`path\` | type | default | allowed | meaning |`. */
interface FieldRow {
  /** The path as written (`host.memory`, `workload.queueDepth`). */
  readonly path: string;
  /** The workload kind whose heading the row is under, if any. */
  readonly kind?: string;
  /** The default cell as written. */
  readonly dflt: string;
}

/** One row of a metric table: `| \`key\` | unit | meaning |`. */
interface MetricRow {
  readonly key: string;
  /** The `###` heading the table is under. */
  readonly heading: string;
}

interface Doc {
  readonly text: string;
  readonly fields: FieldRow[];
  readonly metrics: MetricRow[];
  /** Workload kinds with a heading `### \`"kind": "x"\``. */
  readonly kinds: string[];
}

function cells(line: string): string[] {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((
    c,
  ) => c.trim());
}

/** The one backticked name a first cell holds, or undefined. */
function codeName(cell: string): string | undefined {
  return /^`([A-Za-z0-9_.]+)`$/.exec(cell)?.[1];
}

function readDoc(text: string): Doc {
  const fields: FieldRow[] = [];
  const metrics: MetricRow[] = [];
  const kinds: string[] = [];
  let section = "";
  let heading = "";
  let kind: string | undefined;
  let header: string | undefined;
  for (const line of text.split("\n")) {
    const h = /^(#{2,3}) (.*)$/.exec(line);
    if (h) {
      if (h[1] === "##") {
        section = h[2]!;
        heading = "";
        kind = undefined;
      } else {
        heading = h[2]!;
        const k = /^`"kind": "([a-z0-9-]+)"`$/.exec(heading)?.[1];
        kind = k;
        if (k !== undefined) kinds.push(k);
      }
      header = undefined;
      continue;
    }
    if (!line.startsWith("|")) {
      header = undefined;
      continue;
    }
    const row = cells(line);
    if (header === undefined) {
      header = row[0]!.toLowerCase();
      continue;
    }
    if (/^-+$/.test(row[0]!)) continue; // the separator line
    const name = codeName(row[0]!);
    if (header === "field") {
      assert.ok(name, `${section}: a field row without a \`path\`: ${line}`);
      assert.equal(row.length, 5, `field row needs 5 cells: ${line}`);
      fields.push({
        path: name,
        ...(kind === undefined ? {} : { kind }),
        dflt: row[2]!,
      });
    } else if (header === "metric") {
      assert.ok(name, `${section}: a metric row without a \`key\`: ${line}`);
      assert.equal(row.length, 3, `metric row needs 3 cells: ${line}`);
      metrics.push({ key: name, heading });
    }
  }
  return { text, fields, metrics, kinds };
}

const DOC = readDoc(Deno.readTextFileSync(DOC_PATH));

/** The key a field is compared by: workload fields carry their kind. */
function fieldKey(r: FieldRow): string {
  if (r.kind === undefined) return r.path;
  assert.ok(
    r.path.startsWith("workload."),
    `${r.path} under the heading of kind ${r.kind}`,
  );
  return `workload[${r.kind}].${r.path.slice("workload.".length)}`;
}

// ---------------------------------------------------------------------------
// Asking the parser

/** The error parseScenario throws for `json` (the test fails when there is none). */
function parseError(json: unknown): string {
  try {
    parseScenario(json);
  } catch (e) {
    assert.ok(e instanceof IopfLabError, `not an IopfLabError: ${e}`);
    assert.equal(e.code, "EINVAL");
    return bareMessage(e);
  }
  assert.fail(`parseScenario accepted ${JSON.stringify(json)}`);
}

const UNKNOWN = "zzUndocumentedField";

/** The "known: a, b" list of an unknown-field error, or undefined. */
function knownList(message: string, where: string): string[] | undefined {
  const prefix = `${where}: unknown field `;
  if (!message.startsWith(prefix)) return undefined;
  if (message.endsWith("(it has no other fields)")) return [];
  const m = /\(known: ([^)]*)\)$/.exec(message);
  assert.ok(m, `no known list in ${JSON.stringify(message)}`);
  return m[1]!.split(", ");
}

/**
 * The parser's fields, as keys like {@linkcode fieldKey} makes: top-level
 * fields, `section.field` for every section that reports its known fields,
 * `workload.kind` and `workload[kind].field`.
 */
function parserFields(): Set<string> {
  const out = new Set<string>();
  const top = knownList(parseError({ [UNKNOWN]: 1 }), UNKNOWN);
  assert.ok(top, "the top level does not list its known fields");
  for (const key of top) {
    out.add(key);
    if (key === "workload") continue;
    let message: string;
    try {
      parseScenario({ [key]: { [UNKNOWN]: 1 } });
      continue; // an object with any key is fine here (none so far)
    } catch (e) {
      if (!(e instanceof IopfLabError)) throw e;
      message = bareMessage(e);
    }
    const fields = knownList(message, `${key}.${UNKNOWN}`);
    for (const f of fields ?? []) out.add(`${key}.${f}`);
  }
  for (const kind of workloadKinds()) {
    const fields = knownList(
      parseError({ workload: { kind, [UNKNOWN]: 1 } }),
      `workload.${UNKNOWN}`,
    );
    assert.ok(fields, `workload kind ${kind} does not list its fields`);
    out.add("workload.kind");
    for (const f of fields) {
      if (f !== "kind") out.add(`workload[${kind}].${f}`);
    }
  }
  return out;
}

/** The workload kinds, from the error for an unknown kind. */
function workloadKinds(): string[] {
  const message = parseError({ workload: { kind: UNKNOWN } });
  const m = /^workload\.kind: expected one of (.*), got /.exec(message);
  assert.ok(m, `unexpected message ${message}`);
  return m[1]!.split(", ").map((k) => JSON.parse(k) as string);
}

/** Values for fields whose documented default is not a JSON value to write. */
const EXAMPLES: Readonly<Record<string, unknown>> = {
  name: "doc-test",
  sweep: { seed: [1, 2] },
  "workload.kind": "boot",
  "workload[trace].file": TRACE_FILE,
};

/** The documented default as a JSON value, when the cell is one in backticks. */
function literalDefault(cell: string): { value: unknown } | undefined {
  const m = /^`(.*)`$/.exec(cell);
  if (!m) return undefined;
  try {
    return { value: JSON.parse(m[1]!) };
  } catch {
    return undefined;
  }
}

/** A scenario other fields need for `r` to apply (the kind, a nested stage). */
function contextFor(r: FieldRow): Record<string, unknown> {
  if (r.kind !== undefined) {
    return {
      workload: r.kind === "trace"
        ? { kind: "trace", file: TRACE_FILE }
        : { kind: r.kind },
    };
  }
  if (r.path.startsWith("guest.")) return { smmu: { stage: "nested" } };
  return {};
}

/** `base` with the field of `r` set to `value`. */
function withField(
  base: Record<string, unknown>,
  r: FieldRow,
  value: unknown,
): Record<string, unknown> {
  const out = structuredClone(base);
  const [head, rest] = splitPath(r.path);
  if (rest === undefined) out[head] = value;
  else {
    out[head] = { ...(out[head] as Record<string, unknown> | undefined) };
    (out[head] as Record<string, unknown>)[rest] = value;
  }
  return out;
}

function splitPath(path: string): [string, string | undefined] {
  const dot = path.indexOf(".");
  return dot < 0
    ? [path, undefined]
    : [path.slice(0, dot), path.slice(dot + 1)];
}

/** The resolved value of the field of `r` in `s`. */
function resolved(s: Scenario, r: FieldRow): unknown {
  const [head, rest] = splitPath(r.path);
  const v = (s as unknown as Record<string, unknown>)[head];
  return rest === undefined ? v : (v as Record<string, unknown>)[rest];
}

// ---------------------------------------------------------------------------
// Fields

Deno.test("docs/SCENARIO.md documents exactly the parser's fields", () => {
  const documented = new Set<string>();
  for (const r of DOC.fields) {
    const key = fieldKey(r);
    assert.ok(!documented.has(key), `${key} is documented twice`);
    documented.add(key);
    // The section of a dotted path counts as documented through its fields.
    const head = splitPath(r.path)[0];
    if (head !== r.path) documented.add(head);
  }
  const parser = parserFields();
  const missing = [...parser].filter((k) => !documented.has(k));
  const extra = [...documented].filter((k) => !parser.has(k));
  assert.deepEqual(missing, [], `fields the doc misses: ${missing.join(", ")}`);
  assert.deepEqual(extra, [], `fields the parser lacks: ${extra.join(", ")}`);
  assert.deepEqual(
    [...DOC.kinds].sort(),
    workloadKinds().sort(),
    'one `"kind": "..."` heading per workload kind',
  );
});

Deno.test("every documented field can be set, and its literal default is the parser's", async (t) => {
  for (const r of DOC.fields) {
    const key = fieldKey(r);
    await t.step(key, () => {
      const lit = literalDefault(r.dflt);
      const example = lit ??
        (key in EXAMPLES ? { value: EXAMPLES[key] } : undefined);
      assert.ok(
        example,
        `${key}: the default ${r.dflt} is neither a \`JSON value\` nor in EXAMPLES`,
      );
      const base = contextFor(r);
      const s = parseScenario(withField(base, r, example.value));
      if (lit) {
        assert.deepEqual(
          resolved(s, r),
          resolved(parseScenario(base), r),
          `${key}: the documented default ${r.dflt} is not the parser's`,
        );
      }
    });
  }
});

Deno.test("every documented scalar field can be swept", async (t) => {
  for (const r of DOC.fields) {
    if (r.path === "name" || r.path === "sweep") continue;
    const value = literalDefault(r.dflt)?.value ?? EXAMPLES[fieldKey(r)];
    if (typeof value === "object" && value !== null) continue; // a section
    await t.step(fieldKey(r), () => {
      const s = parseScenario({
        ...contextFor(r),
        sweep: { [r.path]: [value] },
      });
      assert.equal(s.sweep.length, 1);
    });
  }
});

Deno.test("an undocumented field is refused in every documented section", () => {
  const refused = (json: unknown, where: string) => {
    const message = parseError(json);
    assert.ok(
      message.startsWith(`${where}: unknown field`),
      `${where} was not refused as unknown: ${message}`,
    );
  };
  refused({ [UNKNOWN]: 1 }, UNKNOWN);
  const sections = new Set(
    DOC.fields.filter((r) => r.kind === undefined && r.path.includes("."))
      .map((r) => splitPath(r.path)[0]),
  );
  sections.delete("workload");
  for (const s of sections) {
    refused({ [s]: { [UNKNOWN]: 1 } }, `${s}.${UNKNOWN}`);
  }
  for (const kind of DOC.kinds) {
    refused({ workload: { kind, [UNKNOWN]: 1 } }, `workload.${UNKNOWN}`);
  }
});

Deno.test("the size and bandwidth rules the doc states are the parser's", () => {
  const text = DOC.text.replace(/\s+/g, " ");
  assert.equal(parseSize("8GB"), 8e9);
  assert.equal(parseSize("8G"), 8 * 2 ** 30);
  assert.equal(parseSize("8gib"), 8 * 2 ** 30);
  assert.ok(text.includes('`"8GB"` is 8 × 10^9 = 8,000,000,000 bytes'));
  assert.ok(text.includes('`"8G"` and `"8GiB"` are 8 × 2^30'));
  // Every bandwidth example of the doc's table parses to what it says.
  assert.equal(parseBandwidth("10Gbps"), 1.25e9);
  assert.equal(parseBandwidth("10Gb/s"), 1.25e9);
  assert.equal(parseBandwidth("10Gbit/s"), 1.25e9);
  assert.equal(parseBandwidth("10GB/s"), 10e9);
  assert.equal(parseBandwidth("10GBps"), 10e9);
  assert.equal(parseBandwidth("1GiB/s"), 2 ** 30);
  assert.equal(parseBandwidth("8Gibit/s"), 2 ** 30);
  assert.equal(parseBandwidth("100Mbps"), 12.5e6);
  assert.ok(text.includes("**The case of b/B decides bits or bytes**"));
  assert.ok(text.includes('`"10Gbps"` (or `"10Gb/s"`) 1.25 × 10^9 B/s'));
});

// ---------------------------------------------------------------------------
// Metrics

/** The field names of the Metrics interface, from its source. */
function metricsInterfaceKeys(): string[] {
  const src = Deno.readTextFileSync(
    fromFileUrl(new URL("lib/experiment/metrics.ts", root)),
  );
  const start = src.indexOf("export interface Metrics {");
  assert.ok(start >= 0, "interface Metrics not found");
  const body = src.slice(start, src.indexOf("\n}", start));
  return [...body.matchAll(/^ {2}readonly (\w+)\??:/gm)].map((m) => m[1]!);
}

/** The names workloads count (`ctx.count("name")`), from their source. */
function workloadCounters(): string[] {
  const dir = fromFileUrl(new URL("lib/workload/", root));
  const names = new Set<string>();
  for (const e of Deno.readDirSync(dir)) {
    if (!e.name.endsWith(".ts")) continue;
    const src = Deno.readTextFileSync(`${dir}/${e.name}`);
    for (const m of src.matchAll(/\.count\(\s*"([A-Za-z0-9_.]+)"/g)) {
      names.add(m[1]!);
    }
  }
  return [...names].sort();
}

const metricKeys = (): Set<string> => new Set(DOC.metrics.map((m) => m.key));

Deno.test("every metric of METRICS_ORDER and of Metrics is documented", () => {
  const keys = metricKeys();
  const tops = new Set([...keys].map((k) => splitPath(k)[0]));
  for (const k of METRICS_ORDER) {
    assert.ok(tops.has(k), `metric ${k} (METRICS_ORDER) is not documented`);
  }
  assert.deepEqual([...tops].sort(), [...metricsInterfaceKeys()].sort());
});

Deno.test("the documented metrics are the ones runs report", () => {
  const keys = metricKeys();
  // A nic-rx run with the invariant checks: every section of the metrics.
  const rx = runScenario(parseScenario({
    vm: { memory: "64MiB" },
    dma: { mode: "iopf" },
    device: { fault: "pri" },
    workload: { kind: "nic-rx", packets: 200, ringEntries: 64 },
    check: true,
  }));
  // Two VMs that do not both fit: one fails to start (`errors`).
  const failed = runScenario(parseScenario({
    host: { memory: "64MiB" },
    vm: { memory: "64MiB", count: 2 },
  }));
  assert.ok(failed.errors && failed.errors.length === 1);
  const reported = new Set<string>();
  for (const m of [rx, failed] as Metrics[]) {
    for (const k of Object.keys(flattenMetrics(m))) reported.add(k);
  }
  for (const k of reported) {
    assert.ok(
      keys.has(k) || keys.has(splitPath(k)[0]),
      `metric ${k} is reported but not documented`,
    );
  }
  // Every documented sub-key is reported (extra.* is checked below).
  for (const k of keys) {
    if (!k.includes(".") || k.startsWith("extra.")) continue;
    assert.ok(reported.has(k), `documented metric ${k} is not reported`);
  }
  // extra: the keys every run has, then the workloads' own counters.
  const always = DOC.metrics.filter((m) => m.heading === "extra").map((m) =>
    m.key.slice("extra.".length)
  );
  assert.deepEqual(always.sort(), Object.keys(failed.extra ?? {}).sort());
  const counted = DOC.metrics.filter((m) =>
    m.heading === "extra: workload counters"
  ).map((m) => m.key.slice("extra.".length));
  assert.deepEqual(counted.sort(), workloadCounters());
});
