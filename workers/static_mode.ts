/**
 * `ttg static`: the predecessor's milestone 1 — each pod of an Indexed Job computes its own share
 * of the parameters from its index, with no broker.
 *
 * @module
 */
import { computeRange, type SweepResult } from "../jobs/sweep.ts";

/** One pod's share. */
export interface StaticShare {
  readonly index: number;
  readonly workers: number;
  readonly start: number;
  readonly end: number;
}

/**
 * The range `[start, end)` of pod `index` among `workers` pods (the first pods take the remainder).
 *
 * @example
 * ```ts
 * import { staticShare } from "./static_mode.ts";
 * console.assert(staticShare(10000, 3, 0).end === 3334);
 * console.assert(staticShare(10000, 3, 2).start === 6667 && staticShare(10000, 3, 2).end === 10000);
 * ```
 */
export function staticShare(params: number, workers: number, index: number): StaticShare {
  if (index < 0 || index >= workers) {
    throw new RangeError(`Invalid index "${index}": expected 0 to ${workers - 1}`);
  }
  const base = Math.floor(params / workers);
  const extra = params % workers;
  const start = index * base + Math.min(index, extra);
  const end = start + base + (index < extra ? 1 : 0);
  return { index, workers, start, end };
}

/** Computes one pod's share. */
export function runStatic(
  params: number,
  workers: number,
  index: number,
): StaticShare & { result: SweepResult } {
  const share = staticShare(params, workers, index);
  return { ...share, result: computeRange(share.start, share.end) };
}
