/**
 * Sweeps split over machines: the points of a sweep are independent and
 * deterministic, so shard K of N (K from 1) runs the points whose index i
 * (from 0) has i mod N = K - 1 (round robin, so that a sweep whose points grow along an axis
 * spreads its large points over every shard) and writes them to a shard
 * file; {@linkcode mergeShards} checks that a set of shard files is one
 * whole sweep (the same scenario, the same model version, every shard once)
 * and gives back every point's metrics in sweep order: exactly what one
 * machine's run gives.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseShard, shardIndices } from "./shard.ts";
 * const shard = parseShard("2/3");
 * assert.deepEqual(shardIndices(7, shard), [1, 4]);
 * ```
 *
 * @module
 */
import type { Scenario } from "../experiment/config.ts";
import type { Metrics } from "../experiment/metrics.ts";
import { IopfLabError } from "../sim/errors.ts";
import {
  canonicalJson,
  canonicalScenario,
  decodeJson,
  encodeJson,
  scenarioKey,
  sha256Hex,
  sweepKey,
} from "./canonical.ts";
import type { ModelVersion } from "./model_version.ts";

/** One shard of N: K in 1..N. */
export interface Shard {
  /** K: which shard, from 1. */
  readonly index: number;
  /** N: how many shards. */
  readonly count: number;
}

/** Most shards a sweep may be split into (a sweep has at most 10 000 points). */
export const MAX_SHARDS = 10_000;

function bad(what: string, why: string): never {
  throw new IopfLabError("EINVAL", `${what}: ${why}`, "--shard");
}

function whole(text: string, what: string): number {
  if (!/^[0-9]+$/.test(text.trim())) {
    bad(what, `expected a whole number, got ${JSON.stringify(text)}`);
  }
  return Number(text.trim());
}

/**
 * Parses "K/N" (1 <= K <= N <= 10 000).
 *
 * @throws {IopfLabError} EINVAL naming what is wrong
 */
export function parseShard(text: string, what = "--shard"): Shard {
  const m = /^([^/]*)\/([^/]*)$/.exec(text);
  if (!m) {
    bad(
      what,
      `expected K/N (shard K of N, K from 1), got ${JSON.stringify(text)}`,
    );
  }
  const index = whole(m[1]!, `${what} K`);
  const count = whole(m[2]!, `${what} N`);
  return checkShard({ index, count }, what);
}

function checkShard(s: Shard, what: string): Shard {
  if (s.count < 1 || s.count > MAX_SHARDS) {
    bad(what, `N must be from 1 to ${MAX_SHARDS}, got ${s.count}`);
  }
  if (s.index < 1 || s.index > s.count) {
    bad(
      what,
      `K must be from 1 to N (shards are numbered 1..${s.count}), got ${s.index}/${s.count}`,
    );
  }
  return s;
}

/**
 * The shard of a `--shard` value: "K/N"; "auto", with K and N from a Slurm
 * job array (K = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN + 1, N =
 * SLURM_ARRAY_TASK_COUNT; without SLURM_ARRAY_TASK_MIN, K =
 * SLURM_ARRAY_TASK_ID, as with `--array=1-N`); or "auto/N", with K from
 * the Slurm array or a Kubernetes Indexed Job (K = JOB_COMPLETION_INDEX +
 * 1, the index counting from 0) and N given (a Job's completion count is
 * not in its pods' environment).
 *
 * @throws {IopfLabError} EINVAL when the value or the environment is wrong
 */
export function resolveShard(
  spec: string,
  env: Readonly<Record<string, string | undefined>>,
): Shard {
  if (spec !== "auto" && !spec.startsWith("auto/")) return parseShard(spec);
  const slurmId = env.SLURM_ARRAY_TASK_ID;
  const k8s = env.JOB_COMPLETION_INDEX;
  let index: number;
  let from: string;
  if (slurmId !== undefined && slurmId !== "") {
    const min = env.SLURM_ARRAY_TASK_MIN;
    index = whole(slurmId, "SLURM_ARRAY_TASK_ID") -
      (min === undefined || min === ""
        ? 0
        : whole(min, "SLURM_ARRAY_TASK_MIN") - 1);
    from = "SLURM_ARRAY_TASK_ID";
  } else if (k8s !== undefined && k8s !== "") {
    index = whole(k8s, "JOB_COMPLETION_INDEX") + 1;
    from = "JOB_COMPLETION_INDEX";
  } else {
    bad(
      `--shard ${spec}`,
      "neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) is set; give --shard K/N",
    );
  }
  let count: number;
  if (spec === "auto") {
    const n = env.SLURM_ARRAY_TASK_COUNT;
    if (n === undefined || n === "") {
      bad(
        "--shard auto",
        `N comes from SLURM_ARRAY_TASK_COUNT, which is not set (K came from ${from}); give the count as --shard auto/N`,
      );
    }
    count = whole(n, "SLURM_ARRAY_TASK_COUNT");
  } else {
    count = whole(spec.slice(5), "--shard auto/N");
    const n = env.SLURM_ARRAY_TASK_COUNT;
    if (
      from.startsWith("SLURM") && n !== undefined && n !== "" &&
      whole(n, "SLURM_ARRAY_TASK_COUNT") !== count
    ) {
      bad(`--shard ${spec}`, `SLURM_ARRAY_TASK_COUNT is ${n}, not ${count}`);
    }
  }
  return checkShard({ index, count }, `--shard ${spec} (K from ${from})`);
}

/** The indices of shard `shard` among `total` points, in order. */
export function shardIndices(total: number, shard: Shard): number[] {
  const out: number[] = [];
  for (let i = shard.index - 1; i < total; i += shard.count) out.push(i);
  return out;
}

/** The file name of a shard: "shard-02-of-16.json" (K and N padded alike, so they sort). */
export function shardFileName(shard: Shard): string {
  const w = String(shard.count).length;
  const pad = (n: number) => String(n).padStart(w, "0");
  return `shard-${pad(shard.index)}-of-${pad(shard.count)}.json`;
}

/** The format tag of a shard file. */
export const SHARD_FORMAT = "iopf-lab-shard/1";

/** One point of a shard file. */
export interface ShardPoint {
  /** Its index in the sweep. */
  readonly index: number;
  /** Its scenario key. */
  readonly key: string;
  /** Its canonical scenario (what the key hashes). */
  readonly scenario: Record<string, unknown>;
  /** Its metrics. */
  readonly metrics: Metrics;
}

/** A shard file's contents. */
export interface ShardFile {
  /** {@linkcode SHARD_FORMAT}. */
  readonly format: string;
  /** The scenario file's name, its sweep key (sweep axes included), its point count, and whether it is a single run (no sweep). */
  readonly scenario: {
    readonly name: string;
    readonly key: string;
    readonly points: number;
    readonly single: boolean;
  };
  /** The model version the points ran under (without the file list). */
  readonly model: Omit<ModelVersion, "files">;
  /** Which shard. */
  readonly shard: Shard;
  /** Its points, in sweep order. */
  readonly points: readonly ShardPoint[];
}

/**
 * The shard file of `shard` of `scenario` (as loaded, with its sweep),
 * given its points (`points`, all of them) and the metrics of the shard's
 * points (in {@linkcode shardIndices} order), as text.
 */
export function shardFileText(
  scenario: Scenario,
  points: readonly Scenario[],
  shard: Shard,
  metrics: readonly Metrics[],
  version: ModelVersion,
): string {
  const indices = shardIndices(points.length, shard);
  if (indices.length !== metrics.length) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot write shard ${shard.index}/${shard.count}: ${metrics.length} results for ${indices.length} points`,
    );
  }
  const { files: _, ...model } = version;
  const file: ShardFile = {
    format: SHARD_FORMAT,
    scenario: {
      name: scenario.name,
      key: sweepKey(scenario),
      points: points.length,
      single: scenario.sweep.length === 0,
    },
    model,
    shard,
    points: indices.map((i, k) => ({
      index: i,
      key: scenarioKey(points[i]!),
      scenario: canonicalScenario(points[i]!),
      metrics: metrics[k]!,
    })),
  };
  return encodeJson(file) + "\n";
}

/** A shard file read, with where it came from. */
export interface ShardSource {
  /** Its path (for messages). */
  readonly path: string;
  /** Its text. */
  readonly text: string;
}

/** What {@linkcode mergeShards} gives back. */
export interface MergedSweep {
  /** The scenario's name. */
  readonly name: string;
  /** A single run (the output is one object, not an array). */
  readonly single: boolean;
  /** The model version of every shard. */
  readonly model: Omit<ModelVersion, "files">;
  /** Every point, in sweep order. */
  readonly points: readonly ShardPoint[];
}

function mergeError(why: string, where?: string): never {
  throw new IopfLabError("EINVAL", `Cannot merge the shards: ${why}`, where);
}

/** Reads and checks one shard file. */
export function readShardFile(src: ShardSource): ShardFile {
  let v: unknown;
  try {
    v = decodeJson(src.text);
  } catch (e) {
    mergeError(
      `${src.path} is not JSON (${
        e instanceof Error ? e.message : e
      }); was it cut short?`,
      src.path,
    );
  }
  const f = v as Partial<ShardFile>;
  if (typeof f !== "object" || f === null || f.format !== SHARD_FORMAT) {
    mergeError(
      `${src.path} is not a shard file of this iopf-lab (format ${
        JSON.stringify(f?.format ?? null)
      }, expected ${SHARD_FORMAT})`,
      src.path,
    );
  }
  const ok = f.scenario && typeof f.scenario.key === "string" &&
    Number.isSafeInteger(f.scenario.points) && f.model &&
    typeof f.model.id === "string" && f.shard &&
    Number.isSafeInteger(f.shard.index) &&
    Number.isSafeInteger(f.shard.count) &&
    Array.isArray(f.points);
  if (!ok) mergeError(`${src.path} is damaged (missing fields)`, src.path);
  const file = f as ShardFile;
  const want = shardIndices(file.scenario.points, file.shard);
  if (
    file.points.length !== want.length ||
    file.points.some((p, k) => p.index !== want[k])
  ) {
    mergeError(
      `${src.path} should hold points ${
        want.join(", ") || "(none)"
      } of shard ${file.shard.index}/${file.shard.count}, holds ${
        file.points.map((p) => p.index).join(", ") || "(none)"
      }`,
      src.path,
    );
  }
  for (const p of file.points) {
    if (sha256Hex(canonicalJson(p.scenario)) !== p.key) {
      mergeError(
        `${src.path}: point ${p.index} is damaged (its scenario does not hash to its key)`,
        src.path,
      );
    }
  }
  return file;
}

/**
 * Checks that `sources` are the shards of one sweep and merges them: every
 * file the same scenario (sweep key) and model version, the same N, every
 * shard 1..N present (a shard found twice must hold the same results).
 *
 * @throws {IopfLabError} EINVAL saying which file differs, or which shards are missing
 */
export function mergeShards(sources: readonly ShardSource[]): MergedSweep {
  if (sources.length === 0) mergeError("no shard files given");
  const files = sources.map((s) => ({ path: s.path, file: readShardFile(s) }));
  const first = files[0]!;
  const byIndex = new Map<number, { path: string; file: ShardFile }>();
  for (const f of files) {
    const a = first.file, b = f.file;
    if (b.scenario.key !== a.scenario.key) {
      mergeError(
        `${f.path} is a shard of another scenario (${b.scenario.name}, key ${
          b.scenario.key.slice(0, 12)
        }) than ${first.path} (${a.scenario.name}, key ${
          a.scenario.key.slice(0, 12)
        })`,
        f.path,
      );
    }
    if (b.model.id !== a.model.id) {
      mergeError(
        `${f.path} was run by another model version (${
          b.model.id.slice(0, 18)
        }, commit ${
          b.model.commit?.slice(0, 12) ?? "none"
        }, ${b.model.runtime}) than ${first.path} (${
          a.model.id.slice(0, 18)
        }, commit ${
          a.model.commit?.slice(0, 12) ?? "none"
        }, ${a.model.runtime}); rerun the shards with one version`,
        f.path,
      );
    }
    if (b.shard.count !== a.shard.count) {
      mergeError(
        `${f.path} is shard ${b.shard.index} of ${b.shard.count}, but ${first.path} is of ${a.shard.count}`,
        f.path,
      );
    }
    const seen = byIndex.get(b.shard.index);
    if (seen === undefined) byIndex.set(b.shard.index, f);
    else if (encodeJson(seen.file.points) !== encodeJson(b.points)) {
      mergeError(
        `shard ${b.shard.index} of ${b.shard.count} is both ${seen.path} and ${f.path}, with different results`,
        f.path,
      );
    }
  }
  const n = first.file.shard.count;
  const missing: number[] = [];
  for (let k = 1; k <= n; k++) if (!byIndex.has(k)) missing.push(k);
  if (missing.length > 0) {
    const list = missing.length > 10
      ? `${missing.slice(0, 10).join(", ")} and ${missing.length - 10} more`
      : missing.join(", ");
    mergeError(
      `missing shard${
        missing.length > 1 ? "s" : ""
      } ${list} of ${n} (found ${byIndex.size}); run them (deno task sim FILE --shard K/${n} --out DIR) or pass their directories`,
    );
  }
  const points = new Array<ShardPoint>(first.file.scenario.points);
  for (const { file } of byIndex.values()) {
    for (const p of file.points) points[p.index] = p;
  }
  return {
    name: first.file.scenario.name,
    single: first.file.scenario.single,
    model: first.file.model,
    points,
  };
}
