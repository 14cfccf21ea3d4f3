/**
 * The worker script of the sweep pool's tests: serves the counting runner
 * (./_counting_run.ts), so a result tells how many points its worker ran.
 *
 * @module
 */
import { serveRunner } from "../../lib/experiment/sweep.ts";
import * as countingRunner from "./_counting_run.ts";

serveRunner(countingRunner);
