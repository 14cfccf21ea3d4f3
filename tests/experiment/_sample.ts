/**
 * Hand-made metrics for tests of formatting, CSV and the CLI.
 *
 * @module
 */
import type { Metrics } from "../../lib/experiment/metrics.ts";

/** A hand-made result with every field set. */
export function sampleMetrics(name = "boot-16g", seed = 1): Metrics {
  return {
    name,
    seed,
    setupNs: 2_900_000_000,
    runNs: 1_600,
    dmaBytes: 16 * 2 ** 30,
    throughputBytesPerSec: 8e9,
    faults: { total: 1024, stage1: 0, stage2: 1024, stall: 1024, pri: 0 },
    faultLatencyNs: { mean: 1600.4, p50: 1500, p99: 12_000, max: 2_500_000 },
    pinnedPagesPeak: 4_194_304,
    pinnedPagesEnd: 4_194_304,
    lockedBytesPeak: 16 * 2 ** 30,
    hostMemoryPeakBytes: 16 * 2 ** 30,
    iotlb: { hits: 999_000, misses: 1000 },
    tlbInvalidations: 3,
    evtqOverflows: 0,
    priqOverflows: 0,
    priResponses: { success: 0, invalid: 0, failure: 0 },
    dmaErrors: 0,
    isolationViolations: 0,
  };
}
