/**
 * The worker script of the sweep tests: serves the stand-in runner
 * (./_fake_run.ts) as lib/experiment/_worker.ts serves the simulator.
 *
 * @module
 */
import { serveRunner } from "../../lib/experiment/sweep.ts";
import * as fakeRunner from "./_fake_run.ts";

serveRunner(fakeRunner);
