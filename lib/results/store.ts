/**
 * The results database: a SQLite file (`node:sqlite`) with one row per run,
 * keyed by the scenario's canonical hash and the model version, holding the
 * canonical scenario, the metrics (and, where the run recorded them, its
 * time series and per-VM outcomes) as JSON that SQLite's JSON functions
 * read, and every metric flattened into a tidy `metrics` table for SQL.
 *
 * Tables (schema version 1):
 *
 * - `runs(id, scenario_key, model_version, name, seed, scenario, metrics,
 *   series, vms, commit_id, cost_profile_sha256, runtime,
 *   created_at)`, one row per (scenario_key, model_version);
 * - `metrics(run_id, key, value, text)`: one row per flattened metric
 *   (`faults.total`), a number in `value` or a string in `text`;
 * - `meta(key, value)`: the schema version.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import type { Scenario } from "../experiment/config.ts";
import { flattenMetrics, type Metrics } from "../experiment/metrics.ts";
import type { RunResult } from "../experiment/sweep.ts";
import { IopfLabError } from "../sim/errors.ts";
import {
  canonicalJson,
  canonicalScenario,
  decodeJson,
  encodeJson,
  scenarioKey,
} from "./canonical.ts";
import { type ModelVersion, modelVersion } from "./model_version.ts";

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = 1;

/** A run as the database holds it. */
export interface StoredRun {
  /** The scenario's canonical hash. */
  readonly key: string;
  /** The model version id it ran under. */
  readonly modelVersion: string;
  /** Its metrics. */
  readonly metrics: Metrics;
  /** Its time series, when the run recorded them. */
  readonly series?: RunResult["series"];
  /** Its VMs' outcomes, when the run recorded them. */
  readonly vms?: RunResult["vms"];
}

/** Options of {@linkcode ResultsDb.open}. */
export interface OpenResultsOptions {
  /** The model version to match and record (its file list is not needed). [modelVersion()] */
  readonly version?: Omit<ModelVersion, "files">;
  /** Milliseconds to wait for another process's write lock. [30000] */
  readonly busyTimeoutMs?: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY,
  scenario_key TEXT NOT NULL,
  model_version TEXT NOT NULL,
  name TEXT NOT NULL,
  seed INTEGER NOT NULL,
  scenario TEXT NOT NULL,
  metrics TEXT NOT NULL,
  series TEXT,
  vms TEXT,
  commit_id TEXT,
  cost_profile_sha256 TEXT NOT NULL,
  runtime TEXT NOT NULL,
  created_at TEXT NOT NULL,
  UNIQUE (scenario_key, model_version)
);
CREATE TABLE IF NOT EXISTS metrics (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value REAL,
  text TEXT,
  PRIMARY KEY (run_id, key)
);
CREATE INDEX IF NOT EXISTS metrics_key ON metrics(key);
`;

/**
 * A results database file, opened (and created with its schema if new).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseScenario, runScenario } from "../experiment/mod.ts";
 * import { ResultsDb } from "./store.ts";
 * const dir = Deno.makeTempDirSync();
 * const s = parseScenario({ name: "tiny", vm: { memory: "64MiB" } });
 * const db = ResultsDb.open(`${dir}/results.sqlite`);
 * db.put(s, { metrics: runScenario(s) });
 * assert.equal(db.get(s)?.metrics.name, "tiny");
 * const rows = db.query("SELECT name, value FROM metrics JOIN runs ON runs.id = run_id WHERE key = 'setupNs'");
 * assert.equal(rows.length, 1);
 * db.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export class ResultsDb {
  /** The file. */
  readonly path: string;
  /** The model version rows are matched by and written with. */
  readonly version: Omit<ModelVersion, "files">;
  readonly #db: DatabaseSync;

  private constructor(
    path: string,
    db: DatabaseSync,
    version: Omit<ModelVersion, "files">,
  ) {
    this.path = path;
    this.#db = db;
    this.version = version;
  }

  /**
   * Opens `path` (created if missing).
   *
   * @throws {IopfLabError} EINVAL when the file is not a SQLite database,
   * or is one of another schema (naming the file and what is wrong)
   */
  static open(path: string, options: OpenResultsOptions = {}): ResultsDb {
    const version = options.version ?? modelVersion();
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path);
      db.exec(`PRAGMA busy_timeout = ${options.busyTimeoutMs ?? 30000}`);
      db.exec("PRAGMA foreign_keys = ON");
      const tables = db.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table'",
      ).all().map((r) => String(r.name));
      if (tables.length > 0 && !tables.includes("meta")) {
        throw new IopfLabError(
          "EINVAL",
          `Cannot use ${path} as the results database: it is a SQLite file of something else (tables ${
            tables.join(", ")
          }, no meta table); remove it or choose another file`,
          path,
        );
      }
      db.exec("BEGIN IMMEDIATE");
      try {
        db.exec(SCHEMA);
        const row = db.prepare("SELECT value FROM meta WHERE key = 'schema'")
          .get();
        if (row === undefined) {
          db.prepare("INSERT INTO meta VALUES ('schema', ?)").run(
            String(SCHEMA_VERSION),
          );
        } else if (row.value !== String(SCHEMA_VERSION)) {
          throw new IopfLabError(
            "EINVAL",
            `Cannot use ${path} as the results database: its schema is version ${
              String(row.value)
            }, this iopf-lab reads version ${SCHEMA_VERSION}; remove it or choose another file`,
            path,
          );
        }
        db.exec("COMMIT");
      } catch (e) {
        db.exec("ROLLBACK");
        throw e;
      }
      return new ResultsDb(path, db, version);
    } catch (e) {
      try {
        db?.close();
      } catch { /* already closed */ }
      if (e instanceof IopfLabError) throw e;
      throw new IopfLabError(
        "EINVAL",
        `Cannot open the results database ${path}: ${
          e instanceof Error ? e.message : String(e)
        } (a damaged or foreign file: remove it or choose another)`,
        path,
      );
    }
  }

  /**
   * The stored run of `scenario` under this model version, or undefined;
   * with `series`, only a run that recorded its time series.
   */
  get(
    scenario: Scenario,
    options: { readonly series?: boolean } = {},
  ): StoredRun | undefined {
    return this.getByKey(scenarioKey(scenario), options);
  }

  /** {@linkcode ResultsDb.get} by a key already computed. */
  getByKey(
    key: string,
    options: { readonly series?: boolean } = {},
  ): StoredRun | undefined {
    const row = this.#guard("read", () =>
      this.#db.prepare(
        "SELECT metrics, series, vms FROM runs WHERE scenario_key = ? AND model_version = ?",
      ).get(key, this.version.id));
    if (row === undefined) return undefined;
    if (options.series && row.series === null) return undefined;
    const metrics = this.#decode(row.metrics, key) as Metrics;
    return {
      key,
      modelVersion: this.version.id,
      metrics,
      ...(row.series === null
        ? {}
        : { series: this.#decode(row.series, key) as RunResult["series"] }),
      ...(row.vms === null
        ? {}
        : { vms: this.#decode(row.vms, key) as RunResult["vms"] }),
    };
  }

  /**
   * Stores the run of `scenario` under this model version, replacing a
   * stored one (a run with series replaces one without). A run without
   * series never replaces one with: its metrics are the same.
   */
  put(
    scenario: Scenario,
    result: {
      readonly metrics: Metrics;
      readonly series?: RunResult["series"];
      readonly vms?: RunResult["vms"];
    },
  ): void {
    this.putCanonical(
      scenarioKey(scenario),
      canonicalJson(canonicalScenario(scenario)),
      result,
    );
  }

  /** {@linkcode ResultsDb.put} with the key and canonical scenario text given (merging shards). */
  putCanonical(
    key: string,
    scenarioJson: string,
    result: {
      readonly metrics: Metrics;
      readonly series?: RunResult["series"];
      readonly vms?: RunResult["vms"];
    },
  ): void {
    const v = this.version;
    const m = result.metrics;
    this.#guard("write", () => {
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        const old = this.#db.prepare(
          "SELECT id, series FROM runs WHERE scenario_key = ? AND model_version = ?",
        ).get(key, v.id);
        if (old !== undefined && old.series !== null && !result.series) {
          this.#db.exec("COMMIT");
          return;
        }
        if (old !== undefined) {
          this.#db.prepare("DELETE FROM runs WHERE id = ?").run(
            old.id as number,
          );
        }
        const ins = this.#db.prepare(
          `INSERT INTO runs (scenario_key, model_version, name, seed, scenario, metrics, series, vms,
             commit_id, cost_profile_sha256, runtime, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          key,
          v.id,
          m.name,
          m.seed,
          scenarioJson,
          encodeJson(m),
          result.series ? encodeJson(result.series) : null,
          result.vms ? encodeJson(result.vms) : null,
          v.commit,
          v.costProfileSha256,
          v.runtime,
          new Date().toISOString(),
        );
        const id = ins.lastInsertRowid;
        const put = this.#db.prepare(
          "INSERT INTO metrics (run_id, key, value, text) VALUES (?, ?, ?, ?)",
        );
        for (const [k, x] of Object.entries(flattenMetrics(m))) {
          if (typeof x === "number") put.run(id, k, x, null);
          else put.run(id, k, null, x);
        }
        this.#db.exec("COMMIT");
      } catch (e) {
        this.#db.exec("ROLLBACK");
        throw e;
      }
    });
  }

  /** Rows stored under this model version. */
  count(): number {
    const row = this.#guard("read", () =>
      this.#db.prepare(
        "SELECT count(*) AS n FROM runs WHERE model_version = ?",
      ).get(this.version.id));
    return Number(row?.n ?? 0);
  }

  /**
   * Runs a read-only SQL query (with `?` parameters; the connection is
   * query-only while it runs, so it cannot change the file) and returns
   * its rows as plain records: what a notebook tabulates or plots.
   */
  query(
    sql: string,
    ...params: (string | number | null)[]
  ): Record<string, string | number | null>[] {
    return this.#guard("query", () => {
      this.#db.exec("PRAGMA query_only = ON");
      try {
        return this.#db.prepare(sql).all(...params).map((r) => ({
          ...r,
        })) as Record<string, string | number | null>[];
      } finally {
        this.#db.exec("PRAGMA query_only = OFF");
      }
    });
  }

  /** Closes the file. */
  close(): void {
    this.#db.close();
  }

  #decode(text: unknown, key: string): unknown {
    try {
      return decodeJson(String(text));
    } catch (e) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot read the stored run ${key.slice(0, 12)} from ${this.path}: ${
          e instanceof Error ? e.message : String(e)
        } (a damaged file: remove it, or rerun with --fresh)`,
        this.path,
      );
    }
  }

  #guard<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof IopfLabError) throw e;
      throw new IopfLabError(
        "EINVAL",
        `Cannot ${what} the results database ${this.path}: ${
          e instanceof Error ? e.message : String(e)
        }`,
        this.path,
      );
    }
  }
}
