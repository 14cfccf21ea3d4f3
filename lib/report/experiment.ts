/**
 * What an experiment of the report is: the question, the scenarios it runs
 * and the analysis that turns the runs into figures, tables and findings.
 *
 * @module
 */
import type { Metrics, SeriesRow } from "../experiment/metrics.ts";
import type { VmOutcome } from "../experiment/run.ts";
import {
  expandSweep,
  type JsonValue,
  parseScenario,
  type Scenario,
} from "../experiment/scenario.ts";
import type { Figure } from "../plot/mod.ts";
import type { Row } from "../plot/row.ts";

/** One simulated run as the analyses see it. */
export interface RunOutput {
  /** The scenario that ran (a sweep point). */
  readonly scenario: Scenario;
  /** Its metrics. */
  readonly metrics: Metrics;
  /** Its time series (empty unless the experiment records series). */
  readonly series: readonly SeriesRow[];
  /** Each VM's outcome (recorded with the series). */
  readonly vms?: readonly VmOutcome[];
}

/** A figure of the report. */
export interface ReportFigure {
  /** File stem, unique in the report ("start-time"): `<id>.svg`, `<id>.png`. */
  readonly id: string;
  /** The drawn figure. */
  readonly figure: Figure;
  /** A one-line text alternative. */
  readonly alt: string;
}

/** A table of the report: tidy rows, written as `<id>.csv`. */
export interface ReportTable {
  /** File stem, unique in the report. */
  readonly id: string;
  /** What the table holds. */
  readonly title: string;
  /** The rows (plain records of numbers and strings). */
  readonly rows: readonly Row[];
}

/** What an analysis produces. */
export interface ExperimentResult {
  /** Figures, in reading order. */
  readonly figures: readonly ReportFigure[];
  /** Tables, in reading order (the first is the figure's data). */
  readonly tables: readonly ReportTable[];
  /** Sentences on what the runs showed, with the numbers they showed. */
  readonly findings: readonly string[];
}

/** A scenario file (with a sweep) an experiment runs. */
export interface ScenarioSet {
  /** The scenario JSON as a user would write it (shared/INTERFACE.md). */
  readonly json: Readonly<Record<string, JsonValue>>;
}

/** One experiment of the suite. */
export interface Experiment {
  /** Identifier and file stem ("start-time"). */
  readonly id: string;
  /** Section title. */
  readonly title: string;
  /** The question the experiment answers. */
  readonly question: string;
  /** What the figures show (how to read them). */
  readonly shows: string;
  /** The scenarios it runs. */
  readonly sets: readonly ScenarioSet[];
  /** Whether the runs record time series. */
  readonly series: boolean;
  /**
   * Scenarios the analysis reads besides the runs of `sets` but the
   * section does not list (its run count, parameters and metrics CSV):
   * the rfc-vs-mainline density runs. They run after `sets`, on the same
   * workers, always with series and per-VM outcomes. [none]
   */
  readonly supportingSets?: readonly ScenarioSet[];
  /**
   * Turns the runs (in the order of {@linkcode experimentScenarios}) into
   * figures, tables and findings; `supporting` holds the runs of
   * {@linkcode supportingSets} (in the order of
   * {@linkcode supportingScenarios}).
   */
  analyse(
    runs: readonly RunOutput[],
    supporting: readonly RunOutput[],
  ): ExperimentResult;
}

/** Options of `reportSuite` (suite.ts). */
export interface SuiteOptions {
  /** The reduced suite: fewer and smaller points (well under a minute on two cores). [false] */
  readonly quick?: boolean;
}

/** Every scenario point an experiment runs, in order: each set parsed and expanded. */
export function experimentScenarios(e: Experiment): Scenario[] {
  return e.sets.flatMap((set) => expandSweep(parseScenario(set.json)));
}

/** Every scenario point of an experiment's {@linkcode Experiment.supportingSets}, in order. */
export function supportingScenarios(e: Experiment): Scenario[] {
  return (e.supportingSets ?? []).flatMap((set) =>
    expandSweep(parseScenario(set.json))
  );
}
