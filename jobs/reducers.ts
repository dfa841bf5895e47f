/**
 * The built-in reducers of process jobs (`--reduce`), so that a job in any language is
 * aggregated by TTG, the same way by `ttg run` and `ttg results`.
 *
 * @module
 */
import { combineSweep, type SweepResult } from "./sweep.ts";

/** Names `--reduce` accepts. */
export const REDUCERS = ["sum", "concat", "count"] as const;
/** One of {@linkcode REDUCERS}. */
export type ReducerName = typeof REDUCERS[number];

const SWEEP_KEYS = new Set(["sum", "count", "min", "max", "avg"]);
/** A sweep result's exact partials of its sum (jobs/python/sweep.py writes them). */
const PARTS_KEY = "sum_parts";

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isSweepResult(value: unknown): value is SweepResult {
  return isRecord(value) && typeof value.sum === "number" && typeof value.count === "number" &&
    Object.keys(value).every((k) =>
      SWEEP_KEYS.has(k) ? typeof value[k] === "number" : k === PARTS_KEY && Array.isArray(value[k])
    );
}

/**
 * `sum`: numbers are added; objects are combined field by field — `min` and `max` keep the
 * extremes, `avg` is recomputed as `sum / count`, every other numeric field is added, and
 * results shaped like the sweep's (`{sum, count, min, max, avg}`) combine exactly as `ttg.sweep`
 * does (with their `sum_parts`, if any). Anything else (strings, lists, mixed results) is
 * counted: `{ chunks: n }`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sumResults } from "./reducers.ts";
 * assert.equal(sumResults([1, 2, 3.5]), 6.5);
 * assert.deepEqual(sumResults([{ hits: 2, max: 9 }, { hits: 3, max: 4 }]), { hits: 5, max: 9 });
 * assert.deepEqual(sumResults(["a", "b"]), { chunks: 2 });
 * ```
 */
export function sumResults(results: readonly unknown[]): unknown {
  if (results.length === 0) return { chunks: 0 };
  if (results.every((r) => typeof r === "number")) {
    return (results as number[]).reduce((total, r) => total + r, 0);
  }
  if (results.every(isSweepResult)) return combineSweep(results);
  if (!results.every(isRecord)) return { chunks: results.length };
  const numeric = new Set<string>();
  for (const r of results) for (const key of Object.keys(r)) numeric.add(key);
  for (const r of results) {
    for (const key of numeric) if (typeof r[key] !== "number") numeric.delete(key);
  }
  const out: Record<string, number> = {};
  for (const key of numeric) {
    const values = results.map((r) => r[key] as number);
    if (key === "min") out[key] = values.reduce((m, v) => (v < m ? v : m));
    else if (key === "max") out[key] = values.reduce((m, v) => (v > m ? v : m));
    else if (key !== "avg") out[key] = values.reduce((total, v) => total + v, 0);
  }
  if (numeric.has("avg") && out.sum !== undefined && out.count !== undefined) {
    out.avg = out.count ? out.sum / out.count : 0;
  }
  return out;
}

/**
 * `concat`: list results are joined in chunk order, any other result is one item.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { concatResults } from "./reducers.ts";
 * assert.deepEqual(concatResults([[1, 2], [3], "x"]), [1, 2, 3, "x"]);
 * ```
 */
export function concatResults(results: readonly unknown[]): unknown[] {
  return results.flatMap((r) => Array.isArray(r) ? r : [r]);
}

/** `count`: how many chunk results were counted, as for a job without a reduce. */
export function countResults(results: readonly unknown[]): { chunks: number } {
  return { chunks: results.length };
}

/** The reducer named `name`. */
export function reducerOf(name: ReducerName): (results: readonly unknown[]) => unknown {
  switch (name) {
    case "sum":
      return sumResults;
    case "concat":
      return concatResults;
    case "count":
      return countResults;
  }
}
