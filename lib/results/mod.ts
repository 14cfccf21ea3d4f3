/**
 * Results: every run's scenario, model version and metrics in a SQLite
 * database (`node:sqlite`), keyed by the scenario's canonical hash, so that
 * `deno task report`, `deno task sim --db` and notebooks reuse a run whose
 * key and model version match instead of running it again, and query the
 * results with SQL; and sweeps split into shards that run on many machines
 * and merge into exactly what one machine's run gives (docs/SHARDS.md).
 *
 * - {@linkcode scenarioKey}: the sha256 of a resolved scenario's canonical
 *   JSON (sorted keys, defaults filled in, a trace file by its contents).
 * - {@linkcode modelVersion}: a hash of the model's own sources (what the
 *   runner imports), the cost profile and the runtime, with the git commit
 *   for provenance.
 * - {@linkcode ResultsDb}: the database file; {@linkcode runStored} runs
 *   what is not stored.
 * - {@linkcode parseShard}, {@linkcode resolveShard},
 *   {@linkcode shardFileText}, {@linkcode mergeShards}: shards.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expandSweep, parseScenario } from "../experiment/mod.ts";
 * import { ResultsDb, runStored } from "./mod.ts";
 * const dir = Deno.makeTempDirSync();
 * const db = ResultsDb.open(`${dir}/results.sqlite`);
 * const points = expandSweep(parseScenario({
 *   name: "demo",
 *   vm: { memory: "64MiB" },
 *   sweep: { "dma.mode": ["static-pin", "iopf"] },
 * }));
 * await runStored(points, { db, workers: 0 });
 * const again = await runStored(points, { db, workers: 0 });
 * assert.equal(again.reused, 2);
 * const rows = db.query(
 *   `SELECT json_extract(scenario, '$.dma.mode') AS mode, value AS setupNs
 *      FROM runs JOIN metrics ON metrics.run_id = runs.id
 *     WHERE key = 'setupNs' ORDER BY mode`,
 * );
 * assert.deepEqual(rows.map((r) => r.mode), ["iopf", "static-pin"]);
 * db.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 *
 * @module
 */
export {
  canonicalJson,
  canonicalScenario,
  decodeJson,
  encodeJson,
  fileSha256,
  scenarioKey,
  sha256Hex,
  sweepKey,
} from "./canonical.ts";
export {
  computeModelVersion,
  modelSources,
  type ModelVersion,
  modelVersion,
} from "./model_version.ts";
export {
  type OpenResultsOptions,
  ResultsDb,
  SCHEMA_VERSION,
  type StoredRun,
} from "./store.ts";
export { runStored, type RunStoredOptions, type StoredResults } from "./run.ts";
export {
  MAX_SHARDS,
  type MergedSweep,
  mergeShards,
  parseShard,
  readShardFile,
  resolveShard,
  type Shard,
  SHARD_FORMAT,
  type ShardFile,
  shardFileName,
  shardFileText,
  shardIndices,
  type ShardPoint,
  type ShardSource,
} from "./shard.ts";
// Types of other layers that this API mentions.
export type {
  Backing,
  CoiommuUnpinPolicy,
  DeviceConfig,
  DeviceFault,
  DmaBackend,
  DmaConfig,
  DmaMode,
  FaultCounts,
  FaultPath,
  GuestConfig,
  HostConfig,
  Invalidation,
  InvariantResults,
  IommuConfig,
  IotlbCounts,
  JsonValue,
  LatencyStats,
  Metrics,
  MetricsDesign,
  PriResponseCounts,
  RunProgress,
  RunResult,
  RunSweepOptions,
  Scenario,
  SeriesRow,
  SmmuConfig,
  SmmuStage,
  SweepAxis,
  SweepProgress,
  VmConfig,
  VmOutcome,
  WorkloadConfig,
  WorkloadKind,
} from "../experiment/mod.ts";
