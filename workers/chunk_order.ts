/**
 * The natural order of chunk ids, in which reports hand results to a job's `reduce`.
 *
 * @module
 */

/**
 * Orders chunk ids naturally: dot-separated segments compared one by one, numeric segments as
 * numbers, a chunk before its bisected parts (`"00002"` < `"00002.0"` < `"00002.1"` <
 * `"00003"`). The report hands results to a job's reduce in this order, so a reduce that depends
 * on order gives the same aggregate whatever order the chunks completed in.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareChunkIds } from "./chunk_order.ts";
 * const ids = ["00003", "00002.1", "00010", "00002", "00002.0", "00002.0.1"];
 * assert.deepEqual(ids.sort(compareChunkIds), ["00002", "00002.0", "00002.0.1", "00002.1", "00003", "00010"]);
 * ```
 */
export function compareChunkIds(a: string, b: string): number {
  const x = a.split(".");
  const y = b.split(".");
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const order = compareSegments(x[i]!, y[i]!);
    if (order !== 0) return order;
  }
  return x.length - y.length;
}

const DIGITS = /^\d+$/;

function compareSegments(a: string, b: string): number {
  if (DIGITS.test(a) && DIGITS.test(b)) {
    const m = a.replace(/^0+(?=\d)/, "");
    const n = b.replace(/^0+(?=\d)/, "");
    if (m.length !== n.length) return m.length - n.length;
    return m < n ? -1 : m > n ? 1 : a.length - b.length;
  }
  if (DIGITS.test(a) !== DIGITS.test(b)) return DIGITS.test(a) ? -1 : 1; // numbers first
  return a < b ? -1 : a > b ? 1 : 0;
}
