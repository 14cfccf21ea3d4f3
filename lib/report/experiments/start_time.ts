/**
 * The report's experiment: VM start time and locked memory against guest size.
 *
 * @module
 */
import type { Scenario } from "../../experiment/scenario.ts";
import { formatSize, formatTime } from "../../sim/units.ts";
import { facetLines } from "../../plot/mod.ts";
import type { Experiment, ScenarioSet } from "../experiment.ts";
import { BACKING_LABEL, byKey, GiB, need, times } from "./_util.ts";

const START_CONFIGS = [
  "static pin",
  "static pin + prefault",
  "IOPF",
  "IOPF + prefault",
] as const;

function startConfig(s: Scenario): string {
  const mode = s.dma.mode === "static-pin" ? "static pin" : "IOPF";
  return s.host.prefault ? `${mode} + prefault` : mode;
}

/** The experiment "VM start time and locked memory against guest size", full or quick. */
export function startTime(quick: boolean): Experiment {
  const small = quick
    ? ["4GiB", "16GiB"]
    : ["4GiB", "16GiB", "64GiB", "256GiB"];
  const huge = quick
    ? ["4GiB", "64GiB", "1TiB"]
    : ["4GiB", "16GiB", "64GiB", "256GiB", "1TiB"];
  const hugeBackings = quick ? ["hugetlb-1g"] : ["hugetlb-2m", "hugetlb-1g"];
  const axes = {
    "dma.mode": ["static-pin", "iopf"],
    "host.prefault": [false, true],
  };
  const sets: ScenarioSet[] = [{
    json: {
      name: "start-4k",
      host: { memory: "512GiB", backing: "4k", prefaultThreads: 16 },
      workload: { kind: "boot" },
      sweep: { "vm.memory": small, ...axes },
    },
  }];
  for (const backing of hugeBackings) {
    sets.push({
      json: {
        name: `start-${backing}`,
        host: { memory: "2TiB", backing, prefaultThreads: 16 },
        workload: { kind: "boot" },
        sweep: { "vm.memory": huge, ...axes },
      },
    });
  }
  return {
    id: "start-time",
    title: "VM start time and locked memory against guest size",
    question:
      "How long does a VM with an assigned device take to start, and how much memory does it lock, as the guest grows — with static pinning and with IOPF, with and without prefaulting guest RAM?",
    shows:
      "Each point is one VM start (workload \"boot\": VFIO sets up guest RAM, no DMA). Start time is from VM start until guest RAM is mapped for DMA (static pinning) or IOPF is enabled, and includes QEMU's prefault (-mem-prealloc with 16 prealloc threads, as in the calibration measurement) when it is on. The second figure shows what is locked against RLIMIT_MEMLOCK and what host RAM is populated at that moment, on a symmetric-log axis so that IOPF's zero bytes are drawn at the bottom.",
    sets,
    series: false,
    analyse(runs) {
      const rows = runs.map(({ scenario: s, metrics: m }) => ({
        backing: BACKING_LABEL[s.host.backing] ?? s.host.backing,
        guestMemoryBytes: s.vm.memory,
        configuration: startConfig(s),
        mode: s.dma.mode,
        prefault: s.host.prefault,
        setupNs: m.setupNs,
        lockedBytesPeak: m.lockedBytesPeak,
        hostMemoryPeakBytes: m.hostMemoryPeakBytes,
        pinnedPagesPeak: m.pinnedPagesPeak,
        vmsFailed: m.extra?.vmsFailed ?? 0,
      }));
      const backings = [...new Set(rows.map((r) => r.backing))];
      const ticks = [...new Set(rows.map((r) => r.guestMemoryBytes))];
      const startFig = facetLines(rows, {
        x: "guestMemoryBytes",
        y: "setupNs",
        series: "configuration",
        seriesDomain: START_CONFIGS,
        fx: "backing",
        fxDomain: backings,
        dashed: ["static pin + prefault", "IOPF + prefault"],
        xType: "log",
        yType: "log",
        xFormat: "size",
        xTicks: ticks,
        xLabel: "guest RAM",
        yLabel: "VM start time",
        caption:
          "Dashed: with prefault (QEMU -mem-prealloc before VFIO maps guest RAM).",
        dots: true,
        title: "VM start time against guest size",
        subtitle:
          "Static pinning faults in, zeroes and pins every page before the guest runs; IOPF only allocates the fault bitmap",
        width: backings.length > 2 ? 900 : 720,
      });
      const memRows = rows.flatMap((r) => [
        {
          ...r,
          quantity: "locked",
          bytes: r.lockedBytesPeak,
        },
        { ...r, quantity: "populated", bytes: r.hostMemoryPeakBytes },
      ]);
      const memFig = facetLines(memRows, {
        x: "guestMemoryBytes",
        y: "bytes",
        series: "configuration",
        seriesDomain: START_CONFIGS,
        fx: "backing",
        fxDomain: backings,
        fy: "quantity",
        fyDomain: ["locked", "populated"],
        dashed: ["static pin + prefault", "IOPF + prefault"],
        xType: "log",
        yType: "symlog",
        xFormat: "size",
        yFormat: "size",
        xTicks: ticks,
        yTicks: [0, ...ticks],
        symlogConstant: GiB,
        xLabel: "guest RAM",
        yLabel: "memory at VM start",
        dots: true,
        title: "Locked and populated memory at VM start",
        caption:
          "Locked: charged against RLIMIT_MEMLOCK. Populated: host RAM faulted in for the guest. Symmetric-log axis; dashed: with prefault.",
        subtitle:
          "Static pinning locks all guest RAM; IOPF locks nothing until the device touches it",
        width: backings.length > 2 ? 900 : 720,
        height: 480,
      });
      const findings: string[] = [];
      for (const b of backings) {
        const mine = rows.filter((r) => r.backing === b);
        const top = Math.max(...mine.map((r) => r.guestMemoryBytes));
        const at = byKey(
          mine.filter((r) => r.guestMemoryBytes === top),
          (r) => r.configuration,
        );
        const st = need(at.get("static pin"), `${b} static pin`);
        const io = need(at.get("IOPF"), `${b} IOPF`);
        const stp = need(at.get("static pin + prefault"), `${b} prefault`);
        const same = Math.abs(stp.setupNs - st.setupNs) <=
          0.05 * st.setupNs;
        findings.push(
          `${b}, ${formatSize(top)} guest: static pinning starts in ${
            formatTime(st.setupNs)
          } and locks ${formatSize(st.lockedBytesPeak)}; IOPF starts in ${
            formatTime(io.setupNs)
          } (${times(st.setupNs / Math.max(1, io.setupNs))} faster) and locks ${
            formatSize(io.lockedBytesPeak)
          }. With prefault the static start takes ${formatTime(stp.setupNs)}${
            same
              ? ", about the same: the zeroing moves into QEMU's prefault (one thread) rather than going away"
              : ""
          }.`,
        );
      }
      const failed = rows.filter((r) => r.vmsFailed > 0);
      if (failed.length > 0) {
        findings.push(
          `${failed.length} VM(s) failed to start (see the metrics table).`,
        );
      }
      return {
        figures: [
          {
            id: "start-time",
            figure: startFig,
            alt: "VM start time against guest size, log-log, per backing",
          },
          {
            id: "start-memory",
            figure: memFig,
            alt: "Locked and populated memory at VM start against guest size",
          },
        ],
        tables: [{
          id: "start-time",
          title: "VM start time and memory per guest size and configuration",
          rows,
        }],
        findings,
      };
    },
  };
}
