/**
 * Command-line arguments of `deno task sim`.
 *
 * @module
 */
import { IopfLabError } from "../lib/sim/errors.ts";

/** The usage line. */
export const USAGE =
  "usage: deno task sim <scenario.json> [--json] [--csv FILE] [--check] [--workers N] [--no-limit] [--all] [--db FILE [--fresh]] [--shard K/N|auto|auto/N --out DIR]";

/** What `--help` prints: the usage, every option, an example. */
export const HELP = `${USAGE}

Runs one scenario, or every point of its sweep, and prints a summary table.

options:
  --json         print the metrics as JSON on stdout (an array for a sweep)
  --csv FILE     write one CSV row per point to FILE ("-": to stdout, no table)
  --check        run the model's invariant checks; the first broken one fails the run
  --workers N    sweep workers, 0 to 256 (0: on the main thread) [one per core]
  --all          show the metrics that are 0 in every run in the table
  --no-limit     run even when estimated above 10 min of CPU or 3/4 of RAM
  --db FILE      store every run in a SQLite results database and reuse the
                 stored ones whose scenario and model version match
  --fresh        with --db: run every point again and replace what is stored
  --shard K/N    run shard K of N of the sweep (1 <= K <= N); "auto" takes K
                 and N from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, "auto/N"
                 takes K from Slurm or JOB_COMPLETION_INDEX (Kubernetes)
  --out DIR      with --shard: the directory the shard file goes into
  -h, --help     print this and exit

example:
  deno task sim data/scenarios/accelerator_iopf.json --csv - > points.csv
  deno task sim data/scenarios/accelerator_iopf.json --shard 1/2 --out shards/
`;

/** One option of the command line, as {@linkcode scanArgs} hands it over. */
export interface OptionToken {
  /** The option's name (`--csv` of `--csv=FILE`). */
  readonly name: string;
  /** Its value: after `=`, or the next argument (a lone "-" is one); a usage error when there is none. */
  value(): string;
  /** Checks it is a flag (no `=value`) and returns true. */
  flag(): true;
}

/**
 * Walks command-line arguments: positional ones (a lone "-", and every
 * argument after "--", included) go to `positional`, options to `option`.
 * Returns true when `-h` or `--help` came (the walk stops there).
 */
export function scanArgs(
  args: readonly string[],
  usage: (problem: string) => never,
  positional: (arg: string) => void,
  option: (o: OptionToken) => void,
): boolean {
  let options = true;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!options || !arg.startsWith("-") || arg === "-") {
      positional(arg);
      continue;
    }
    if (arg === "--") {
      options = false;
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg : arg.slice(0, eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    if (name === "-h" || name === "--help") return true;
    option({
      name,
      value: () => {
        if (inline !== undefined) return inline;
        const next = args[i + 1];
        if (next === undefined || (next.startsWith("-") && next !== "-")) {
          usage(`${name} needs a value`);
        }
        i++;
        return next;
      },
      flag: () => {
        if (inline !== undefined) usage(`${name} takes no value`);
        return true;
      },
    });
  }
  return false;
}

/**
 * The value of an option that takes a name once (a file, a directory): a
 * usage error when given twice (`current` is set) or empty (`what` says
 * what it needs).
 */
export function onceValue(
  o: OptionToken,
  current: string | undefined,
  usage: (problem: string) => never,
  what: string,
): string {
  if (current !== undefined) usage(`${o.name} given twice`);
  const v = o.value();
  if (v === "") usage(`${o.name} needs ${what}`);
  return v;
}

/** Parsed arguments of `deno task sim`. */
export interface SimArgs {
  /** The scenario file. */
  readonly file: string;
  /** Print the metrics as JSON instead of a table. */
  readonly json: boolean;
  /** Write one CSV row per scenario to this file ("-": stdout, instead of the table). */
  readonly csv?: string;
  /** Run the model's invariant checks. */
  readonly check: boolean;
  /** Workers for a sweep (0: run on the main thread). */
  readonly workers?: number;
  /** Run even when the estimated work is above the limit. */
  readonly noLimit: boolean;
  /** The results database: reuse stored runs, store new ones. */
  readonly db?: string;
  /** With `db`: run every point even when stored. */
  readonly fresh?: true;
  /** Run one shard of the sweep: "K/N", "auto" or "auto/N" (lib/results/shard.ts resolveShard). */
  readonly shard?: string;
  /** With `shard`: the directory the shard file goes into. */
  readonly out?: string;
  /** The table shows the metrics that are 0 in every run too. */
  readonly all: boolean;
}

/** The result of {@linkcode parseSimArgs}: arguments, or a request for help. */
export type ParsedArgs =
  | { readonly help: true }
  | ({ readonly help: false } & SimArgs);

/**
 * Parses the arguments: one scenario path and the options `--json`,
 * `--csv FILE` (or `--csv=FILE`), `--check`, `--workers N`, `--no-limit`,
 * `--db FILE`, `--fresh`, `--shard K/N`, `--out DIR`, `--help`; `--`
 * ends the options. Mistakes throw EINVAL with a one-line message.
 */
export function parseSimArgs(args: readonly string[]): ParsedArgs {
  const files: string[] = [];
  let json = false;
  let check = false;
  let noLimit = false;
  let all = false;
  let csv: string | undefined;
  let workers: number | undefined;
  let db: string | undefined;
  let fresh = false;
  let shard: string | undefined;
  let out: string | undefined;
  const help = scanArgs(args, usage, (a) => files.push(a), (o) => {
    switch (o.name) {
      case "--json":
        json = o.flag();
        break;
      case "--check":
        check = o.flag();
        break;
      case "--no-limit":
        noLimit = o.flag();
        break;
      case "--all":
        all = o.flag();
        break;
      case "--fresh":
        fresh = o.flag();
        break;
      case "--csv":
        csv = onceValue(o, csv, usage, "a file name");
        break;
      case "--db":
        db = onceValue(o, db, usage, "a file name");
        break;
      case "--shard":
        shard = onceValue(o, shard, usage, "K/N, auto or auto/N");
        break;
      case "--out":
        out = onceValue(o, out, usage, "a directory");
        break;
      case "--workers": {
        if (workers !== undefined) usage("--workers given twice");
        const v = o.value();
        const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
        if (!(n <= 256)) {
          usage(
            `--workers: expected a whole number from 0 to 256, got ${
              JSON.stringify(v)
            }`,
          );
        }
        workers = n;
        break;
      }
      default:
        usage(`unknown option ${JSON.stringify(o.name)}`);
    }
  });
  if (help) return { help: true };
  if (csv === "-" && json) {
    usage("--csv - and --json both write to stdout; choose one");
  }
  if (files.length === 0) usage("missing the scenario file");
  if (files.length > 1) {
    usage(
      `expected one scenario file, got ${files.length}: ${
        files.map((f) => JSON.stringify(f)).join(" ")
      }`,
    );
  }
  if (fresh && db === undefined) usage("--fresh needs --db FILE");
  if (shard !== undefined && out === undefined) {
    usage("--shard needs --out DIR (where the shard file goes)");
  }
  if (out !== undefined && shard === undefined) {
    usage("--out DIR is for a shard's file: give --shard K/N too");
  }
  if (shard !== undefined && (csv !== undefined || json)) {
    usage(
      `--shard writes its results to --out DIR; ${
        csv !== undefined ? "--csv" : "--json"
      } is for the merged sweep (deno task merge DIR... ${
        csv !== undefined ? "--csv FILE" : "--json"
      })`,
    );
  }
  return {
    help: false,
    file: files[0]!,
    json,
    check,
    noLimit,
    all,
    ...(csv === undefined ? {} : { csv }),
    ...(workers === undefined ? {} : { workers }),
    ...(db === undefined ? {} : { db }),
    ...(fresh ? { fresh: true as const } : {}),
    ...(shard === undefined ? {} : { shard }),
    ...(out === undefined ? {} : { out }),
  };
}

function usage(problem: string): never {
  throw new IopfLabError("EINVAL", `${problem} (${USAGE})`, "arguments");
}
