/**
 * Values formatted for people by their field's name, the way the CLI
 * summary, notebook tables and the report's HTML tables show them.
 *
 * @module
 */
import { hex } from "../sim/errors.ts";
import { formatSize } from "../sim/units.ts";
import { formatValue } from "../experiment/metrics.ts";

/**
 * Formats a cell by its field's name: the default of
 * {@linkcode TableOptions.format}. Metrics go through lib/experiment's
 * formatValue (`...Ns` a time, `...Bytes` a size, `...BytesPerSec` a rate);
 * scenario sizes (`vm.memory`, `workload.messageSize`, a trace's `size`)
 * as sizes; addresses (`iova`, `gpa`) in hex; missing values as "-".
 */
export function formatCell(fieldName: string, value: unknown): string {
  if (value === undefined || value === null || value === "") return "-";
  if (typeof value === "number") {
    const leaf = fieldName.slice(fieldName.lastIndexOf(".") + 1);
    if (Number.isSafeInteger(value) && value >= 0) {
      if (ADDRESS_FIELDS.test(leaf)) return hex(value);
      if (SIZE_FIELDS.test(leaf)) return formatSize(value);
    }
    return formatValue(fieldName, value);
  }
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

/** Scenario and trace fields holding sizes in bytes. */
const SIZE_FIELDS =
  /^(memory|memlockLimit|messageSize|workingSet|accessSize|bufferSize|blockSize|totalBytes|size)$/;
/** Fields holding addresses. */
const ADDRESS_FIELDS = /^(iova|gpa|hva|addr|address)$/;
