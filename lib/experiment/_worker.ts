/**
 * The module worker of `runSweep` (./sweep.ts): serves the simulator
 * (./run.ts, imported statically) through `serveRunner`.
 *
 * @module
 */
import * as simulator from "./run.ts";
import { serveRunner } from "./sweep.ts";

serveRunner(simulator);
