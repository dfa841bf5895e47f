/**
 * Figures over several runs: the median with its min–max (a shared machine's noise is read from
 * the spread, never averaged away), and nearest-rank percentiles of latencies.
 *
 * @module
 */

/** One figure measured in several runs. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Every run's value, in the order measured. */
  readonly runs: readonly number[];
}

/**
 * Median, min and max of a figure's runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spread } from "./stats.ts";
 * assert.deepEqual(spread([3, 1, 2, 10]), { median: 2.5, min: 1, max: 10, runs: [3, 1, 2, 10] });
 * ```
 */
export function spread(runs: readonly number[]): Spread {
  if (runs.length === 0) throw new RangeError("Invalid runs: expected at least one value");
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs: [...runs] };
}

/**
 * The nearest-rank `p`-th percentile (0 < p ≤ 100): the smallest value with at least p% of the
 * values at or below it (the p99 of 100 values is the 99th smallest).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { percentile } from "./stats.ts";
 * const values = Array.from({ length: 100 }, (_, i) => i + 1);
 * assert.deepEqual([percentile(values, 50), percentile(values, 99)], [50, 99]);
 * ```
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError("Invalid values: expected at least one value");
  if (!(p > 0 && p <= 100)) throw new RangeError(`Invalid percentile "${p}": expected (0, 100]`);
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
