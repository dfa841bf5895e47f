/**
 * The built-in job `ttg.sweep`: the predecessor's computation, reproduced exactly.
 *
 * For each parameter p in [start, end): `value(p) = ((p*7+13) mod 1000) + parseFloat("0." + (p % 100))`,
 * with optional simulated work of `work_ms` per parameter and a simulated fault rate. For 10,000
 * parameters the aggregate sum is 5000355.0.
 *
 * Sums are exact ({@linkcode ExactSum}): a chunk's result carries, beside the predecessor's
 * fields, its sum as exact partials (`sum_parts`), and {@linkcode combineSweep} adds those, so
 * the aggregate is the correctly rounded sum of every value whatever the order in which chunks
 * complete, the fleet size, the retries or the backend.
 *
 * @module
 */
import { type Chunk, type ChunkContext, defineJob, type Job } from "./define_job.ts";
import { ExactSum } from "./exact_sum.ts";

/** Result of a sweep chunk and of a whole sweep. */
export interface SweepResult {
  /** Sum of the values, correctly rounded. */
  readonly sum: number;
  /** Parameters computed. */
  readonly count: number;
  /** Smallest value (0 when `count` is 0). */
  readonly min: number;
  /** Largest value (0 when `count` is 0). */
  readonly max: number;
  /** Mean value (0 when `count` is 0). */
  readonly avg: number;
  /**
   * The exact sum as non-overlapping partials (a chunk's result; absent from the predecessor's
   * results and from a combined aggregate): what {@linkcode combineSweep} adds.
   */
  readonly sum_parts?: readonly number[];
}

/** `parseFloat("0." + String(k))` for k in [0, 100): the fraction depends only on `p % 100`. */
const FRACTIONS: readonly number[] = Array.from(
  { length: 100 },
  (_, k) => parseFloat("0." + String(k)),
);

/** The predecessor's per-parameter value (parameters are non-negative integers). */
export function sweepValue(p: number): number {
  const fraction = FRACTIONS[p % 100] ?? parseFloat("0." + String(p % 100));
  return ((p * 7 + 13) % 1000) + fraction;
}

/** Computes the parameters `[start, end)` (no simulated work or faults), its sum exact. */
export function computeRange(start: number, end: number): SweepResult {
  const sum = new ExactSum();
  let min = Infinity;
  let max = -Infinity;
  for (let p = start; p < end; p++) {
    const v = sweepValue(p);
    sum.add(v);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const count = Math.max(0, end - start);
  const total = sum.value;
  return {
    sum: total,
    count,
    min: count ? min : 0,
    max: count ? max : 0,
    avg: count ? total / count : 0,
    sum_parts: sum.parts(),
  };
}

/** The exact partials of a result: its `sum_parts`, or its `sum` for a result without them. */
function partsOf(result: SweepResult): readonly number[] {
  const parts = result.sum_parts;
  return Array.isArray(parts) && parts.every((p) => typeof p === "number") ? parts : [result.sum];
}

/**
 * Combines chunk results: the correctly rounded sum of all their values (their exact partials
 * added; a result without `sum_parts`, such as the predecessor's, counts as its `sum`), total
 * count, min of mins, max of maxes. The same results give the same aggregate in any order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { combineSweep, computeRange } from "./sweep.ts";
 * const total = combineSweep([computeRange(5000, 10000), computeRange(0, 5000)]);
 * assert.equal(total.sum, 5000355);
 * ```
 */
export function combineSweep(results: readonly SweepResult[]): SweepResult {
  const sum = new ExactSum();
  let count = 0, min = Infinity, max = -Infinity;
  for (const r of results) {
    sum.addAll(partsOf(r));
    count += r.count;
    if (r.count > 0) {
      if (r.min < min) min = r.min;
      if (r.max > max) max = r.max;
    }
  }
  const total = sum.value;
  return {
    sum: total,
    count,
    min: count ? min : 0,
    max: count ? max : 0,
    avg: count ? total / count : 0,
  };
}

/** The sweep's aggregate built one result at a time: exact partials, counts, extremes. */
export const sweepFold = {
  start: () => ({ sum: new ExactSum(), count: 0, min: Infinity, max: -Infinity }),
  add(state: { sum: ExactSum; count: number; min: number; max: number }, r: SweepResult) {
    state.sum.addAll(partsOf(r));
    state.count += r.count;
    if (r.count > 0) {
      if (r.min < state.min) state.min = r.min;
      if (r.max > state.max) state.max = r.max;
    }
    return state;
  },
  finish(state: { sum: ExactSum; count: number; min: number; max: number }): SweepResult {
    const total = state.sum.value;
    const { count } = state;
    return {
      sum: total,
      count,
      min: count ? state.min : 0,
      max: count ? state.max : 0,
      avg: count ? total / count : 0,
    };
  },
};

/** A simulated fault, thrown with probability `fault_rate`. */
export class SimulatedFault extends Error {
  constructor(chunkId: string) {
    super(`Simulated fault in chunk "${chunkId}"`);
    this.name = "SimulatedFault";
  }
}

function readNumber(args: Chunk["args"], key: string): number {
  const v = args[key];
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : 0;
}

/** Simulated work: waits `ms`, and rejects with the signal's reason as soon as it aborts. */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return;
  signal.throwIfAborted();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(timer);
      reject(signal.reason);
    }
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Runs one sweep chunk: simulated work (`args.work_ms` per parameter), faults, then the values. */
export async function runSweep(chunk: Chunk, ctx: ChunkContext): Promise<SweepResult> {
  const faultRate = readNumber(chunk.args, "fault_rate");
  if (faultRate > 0 && Math.random() < faultRate) throw new SimulatedFault(chunk.chunkId);
  await sleep(readNumber(chunk.args, "work_ms") * (chunk.end - chunk.start), ctx.signal);
  const result = computeRange(chunk.start, chunk.end);
  ctx.progress(result.count);
  return result;
}

/** The built-in job `ttg.sweep`. */
const sweep: Job<SweepResult, SweepResult> = defineJob<SweepResult, SweepResult>({
  name: "ttg.sweep",
  run: runSweep,
  reduce: combineSweep,
  fold: sweepFold,
});
export default sweep;
