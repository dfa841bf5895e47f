/**
 * `ttg static`: the predecessor's milestone 1 — each pod of an Indexed Job computes its own share
 * of the parameters from its index, with no broker; the deploy task combines the shares.
 *
 * @module
 */
import { TtgError } from "../errors.ts";
import { combineSweep, computeRange, type SweepResult } from "../jobs/sweep.ts";
import { wait } from "./periodic.ts";

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
 * import assert from "node:assert/strict";
 * import { staticShare } from "./static_mode.ts";
 * assert.ok(staticShare(10000, 3, 0).end === 3334);
 * assert.ok(staticShare(10000, 3, 2).start === 6667 && staticShare(10000, 3, 2).end === 10000);
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

/** Options of {@linkcode runStatic}. */
export interface StaticOptions {
  /** Simulated work per parameter, in milliseconds, as the sweep's `work_ms`. @default 0 */
  readonly workMs?: number;
  /** Aborting stops the simulated work: an `INTERRUPTED` error, no partial share. */
  readonly signal?: AbortSignal;
}

/** One pod's share and its result: the JSON line `ttg static` prints. */
export type StaticOutcome = StaticShare & { readonly result: SweepResult };

/** Computes one pod's share, after `workMs` of simulated work per parameter. */
export async function runStatic(
  params: number,
  workers: number,
  index: number,
  options: StaticOptions = {},
): Promise<StaticOutcome> {
  const share = staticShare(params, workers, index);
  await wait((options.workMs ?? 0) * (share.end - share.start), options.signal);
  if (options.signal?.aborted) {
    throw new TtgError(
      "INTERRUPTED",
      `ttg static was stopped before it computed parameters [${share.start}, ${share.end})`,
      { cause: options.signal.reason },
    );
  }
  return { ...share, result: computeRange(share.start, share.end) };
}

/**
 * The combined total of the shares `ttg static` pods printed (one JSON line each, possibly behind
 * a log prefix such as kubectl's `[pod/…]`): which indexes reported, the parameters they cover,
 * and their results combined exactly. Undefined when the text holds no share.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { combineShares, runStatic } from "./static_mode.ts";
 * const lines = await Promise.all([0, 1, 2].map(async (i) => JSON.stringify(await runStatic(10000, 3, i))));
 * const total = combineShares(lines.join("\n"))!;
 * assert.equal(total.result.sum, 5000355);
 * assert.deepEqual([total.pods, total.workers, total.params], [3, 3, 10000]);
 * ```
 */
export function combineShares(text: string): StaticTotal | undefined {
  const shares: StaticOutcome[] = [];
  for (const line of text.split("\n")) {
    const json = line.slice(Math.max(0, line.indexOf("{")));
    try {
      const share = JSON.parse(json) as StaticOutcome;
      if (Number.isInteger(share.index) && typeof share.result?.count === "number") {
        shares.push(share);
      }
    } catch {
      // a log line
    }
  }
  if (shares.length === 0) return undefined;
  return {
    pods: new Set(shares.map((s) => s.index)).size,
    workers: Math.max(...shares.map((s) => s.workers)),
    params: shares.reduce((n, s) => n + (s.end - s.start), 0),
    result: combineSweep(shares.map((s) => s.result)),
  };
}

/** What {@linkcode combineShares} finds. */
export interface StaticTotal {
  /** Pods (distinct indexes) whose share was found. */
  readonly pods: number;
  /** Pods the sweep was split across. */
  readonly workers: number;
  /** Parameters those shares cover. */
  readonly params: number;
  /** Their results combined (exact sum). */
  readonly result: SweepResult;
}

/** One line for people: `Total: 4/4 pods, 100000 parameters, sum 5000355.000000, …`. */
export function formatStaticTotal(total: StaticTotal): string {
  const r = total.result;
  const f = (n: number) => n.toFixed(6);
  return `Total: ${total.pods}/${total.workers} pods, ${total.params} parameters, sum ${
    f(r.sum)
  }, count ${r.count}, min ${f(r.min)}, max ${f(r.max)}, avg ${f(r.avg)}`;
}
