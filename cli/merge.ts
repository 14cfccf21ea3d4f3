/**
 * `deno task merge DIR... [--json] [--csv FILE] [--db FILE]`: combines the
 * shard files that `deno task sim FILE --shard K/N --out DIR` wrote
 * (DIR/shard-K-of-N.json, from one or more directories) into exactly the
 * output one run of the whole sweep gives: the summary table, or with
 * `--json` the metrics JSON (an object for a single run, an array for a
 * sweep), `--csv FILE` one row per point, `--db FILE` every point stored
 * in the results database as `deno task sim FILE --db FILE` stores it.
 *
 * It refuses shards of different scenarios, of different model versions
 * or of different N, a shard file that is damaged, and a missing shard.
 *
 * Exit status: 0 on success; 2 on bad arguments or shards that do not make
 * one whole sweep (one message on stderr saying what and where, nothing
 * written); 1 on an internal error.
 *
 * @module
 */
import { join } from "node:path";
import { metricsToCsv } from "../lib/experiment/csv.ts";
import type { Metrics } from "../lib/experiment/metrics.ts";
import { onceValue, scanArgs } from "./_args.ts";
import { canonicalJson } from "../lib/results/canonical.ts";
import { type MergedSweep, mergeShards } from "../lib/results/shard.ts";
import { ResultsDb } from "../lib/results/store.ts";
import { IopfLabError } from "../lib/sim/errors.ts";
import { writeAll } from "./_io.ts";
import { checkOutputFile } from "./_paths.ts";
import {
  EXIT_INTERNAL,
  EXIT_OK,
  EXIT_USAGE,
  renderOutput,
  writeCsvFile,
} from "./sim.ts";

/** The usage line. */
export const USAGE =
  "usage: deno task merge DIR... [--json] [--csv FILE] [--all] [--db FILE]  (DIR holds shard-K-of-N.json files from deno task sim FILE --shard K/N --out DIR)";

/** What `--help` prints: the usage, every option, an example. */
export const HELP = `${USAGE}

Combines the shard files of one sweep (deno task sim FILE --shard K/N --out DIR)
into exactly the output one run of the whole sweep gives. Refuses shards of
another scenario or model version, a shard count that differs, a missing or
repeated shard (exit 2).

options:
  --json         print the metrics as JSON on stdout (an array for a sweep)
  --csv FILE     write one CSV row per point to FILE ("-": to stdout, no table)
  --all          show the metrics that are 0 in every run in the table
  --db FILE      store the merged runs in a SQLite results database
  -h, --help     print this and exit

example:
  deno task merge shards/ --csv points.csv
`;

/** Parsed arguments of `deno task merge`. */
export interface MergeArgs {
  /** The directories holding shard files. */
  readonly dirs: readonly string[];
  /** Print the metrics JSON instead of the summary table. */
  readonly json: boolean;
  /** Write one CSV row per point to this file ("-": to stdout, in place of the table). */
  readonly csv?: string;
  /** The table shows the metrics that are 0 in every run too. */
  readonly all: boolean;
  /** Store every point in this results database. */
  readonly db?: string;
}

/** The result of {@linkcode parseMergeArgs}: arguments, or a request for help. */
export type ParsedMergeArgs =
  | { readonly help: true }
  | ({ readonly help: false } & MergeArgs);

function usage(problem: string): never {
  throw new IopfLabError("EINVAL", `${problem} (${USAGE})`, "arguments");
}

/**
 * Parses the directories and `--json`, `--csv FILE` (or `--csv=FILE`),
 * `--db FILE`, `--help`; `--` ends the options. Mistakes throw EINVAL.
 */
export function parseMergeArgs(args: readonly string[]): ParsedMergeArgs {
  const dirs: string[] = [];
  let json = false;
  let all = false;
  let csv: string | undefined;
  let db: string | undefined;
  const help = scanArgs(args, usage, (a) => {
    if (a === "") usage("an empty directory name");
    dirs.push(a);
  }, (o) => {
    switch (o.name) {
      case "--json":
        json = o.flag();
        break;
      case "--all":
        all = o.flag();
        break;
      case "--csv":
        csv = onceValue(o, csv, usage, "a file name");
        break;
      case "--db":
        db = onceValue(o, db, usage, "a file name");
        break;
      default:
        usage(`unknown option ${JSON.stringify(o.name)}`);
    }
  });
  if (help) return { help: true };
  if (csv === "-" && json) {
    usage("--csv - and --json both write to stdout; choose one");
  }
  if (dirs.length === 0) usage("missing the shard directories");
  return {
    help: false,
    dirs,
    json,
    all,
    ...(csv === undefined ? {} : { csv }),
    ...(db === undefined ? {} : { db }),
  };
}

const SHARD_NAME = /^shard-[0-9]+-of-[0-9]+\.json$/;

/**
 * The shard files in `dirs` (shard-K-of-N.json), sorted within each
 * directory.
 *
 * @throws {IopfLabError} EINVAL naming a directory that is missing, not a
 * directory, or holds no shard file
 */
export function shardFiles(dirs: readonly string[]): string[] {
  const out: string[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      if (!Deno.statSync(dir).isDirectory) {
        throw new IopfLabError(
          "EINVAL",
          `${dir}: is a file, not a directory of shard files`,
          dir,
        );
      }
      names = [...Deno.readDirSync(dir)].filter((e) =>
        e.isFile && SHARD_NAME.test(e.name)
      ).map((e) => e.name).sort();
    } catch (e) {
      if (e instanceof IopfLabError) throw e;
      throw new IopfLabError(
        "EINVAL",
        `${dir}: cannot read the directory (${
          e instanceof Error ? e.message : e
        })`,
        dir,
      );
    }
    if (names.length === 0) {
      throw new IopfLabError(
        "EINVAL",
        `${dir}: holds no shard file (shard-K-of-N.json, written by deno task sim FILE --shard K/N --out ${dir})`,
        dir,
      );
    }
    out.push(...names.map((n) => join(dir, n)));
  }
  return out;
}

/** Where {@linkcode main} writes its output. */
export interface MergeIo {
  /** Standard output. */
  stdout(text: string): void;
  /** Standard error. */
  stderr(text: string): void;
}

/** The process's standard output and error. */
export const STDIO: MergeIo = {
  stdout: (text) => writeAll(Deno.stdout, text),
  stderr: (text) => writeAll(Deno.stderr, text),
};

function message(e: IopfLabError): string {
  return e.message.replace(/ \([A-Z]+\)$/, "");
}

/** Runs the command with `args`; returns the exit status. */
export function main(args: readonly string[], io: MergeIo = STDIO): number {
  let parsed: MergeArgs;
  let merged: MergedSweep;
  try {
    const p = parseMergeArgs(args);
    if (p.help) {
      io.stdout(HELP);
      return EXIT_OK;
    }
    parsed = p;
    const files = shardFiles(parsed.dirs);
    if (parsed.csv !== undefined && parsed.csv !== "-") {
      checkOutputFile(parsed.csv, files, "--csv");
    }
    if (parsed.db !== undefined) checkOutputFile(parsed.db, files, "--db");
    merged = mergeShards(files.map((path) => ({
      path,
      text: readText(path),
    })));
  } catch (e) {
    if (e instanceof IopfLabError) {
      io.stderr(`merge: ${message(e)}\n`);
      return EXIT_USAGE;
    }
    return internal(io, e);
  }
  const metrics: Metrics[] = merged.points.map((p) => p.metrics);
  try {
    if (parsed.db !== undefined) {
      const db = ResultsDb.open(parsed.db, { version: merged.model });
      try {
        for (const p of merged.points) {
          db.putCanonical(p.key, canonicalJson(p.scenario), {
            metrics: p.metrics,
          });
        }
      } finally {
        db.close();
      }
    }
    if (parsed.csv !== undefined && parsed.csv !== "-") {
      writeCsvFile(parsed.csv, metrics);
    }
  } catch (e) {
    if (e instanceof IopfLabError) {
      io.stderr(`merge: ${message(e)}\n`);
      return EXIT_USAGE;
    }
    return internal(io, e);
  }
  io.stdout(
    parsed.csv === "-"
      ? metricsToCsv(metrics)
      : renderOutput(merged.single ? metrics[0]! : metrics, {
        json: parsed.json,
        all: parsed.all,
      }),
  );
  return EXIT_OK;
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    throw new IopfLabError(
      "EINVAL",
      `${path}: cannot read the shard file (${
        e instanceof Error ? e.message : e
      })`,
      path,
    );
  }
}

function internal(io: MergeIo, e: unknown): number {
  const text = e instanceof Error ? (e.stack ?? e.message) : String(e);
  io.stderr(`merge: internal error: ${text}\n`);
  return EXIT_INTERNAL;
}

if (import.meta.main) Deno.exit(main(Deno.args));
