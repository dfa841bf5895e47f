/**
 * Which job's chunks a pull across several jobs takes: the policy of a shared fleet, decided here
 * once; a broker that can tell each job's head ({@linkcode JobHead}) only claims the shares.
 *
 * The order: the highest aged priority first (the aging rule of one job's chunks, policy.ts
 * `agedPriority`, so a low-priority job's waiting chunks climb and are never starved); among
 * jobs of the same aged priority, the one with the fewest chunks in flight, so equal jobs share
 * the fleet instead of one waiting for the other's whole length; never more of a job in flight
 * than its cap.
 *
 * @module
 */

/** One job's queue as a pull across jobs sees it. */
export interface JobHead {
  /** The job's id. */
  readonly jobId: string;
  /** Aged priority of its best chunk ready now; null when none is ready (or the job is not running). */
  readonly priority: number | null;
  /** Its chunks ready now, counted up to the pull's `max`. */
  readonly ready: number;
  /** Its chunks in flight now, over every consumer. */
  readonly inFlight: number;
  /** The most of its chunks in flight at once (its record's `maxInFlight`), if capped. */
  readonly maxInFlight?: number;
}

/** How many chunks to claim of one job. */
export interface Share {
  /** The job's id. */
  readonly jobId: string;
  /** How many of its chunks to claim. */
  readonly max: number;
}

/**
 * Splits `max` claims between jobs, best first: slot by slot to the job of the highest aged
 * priority that has a chunk ready and room under its cap, ties to the fewest in flight (counting
 * the slots given so far), then to the job id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shareSlots } from "./share.ts";
 * const heads = [
 *   { jobId: "long", priority: 0, ready: 50, inFlight: 6 },
 *   { jobId: "urgent", priority: 10, ready: 3, inFlight: 0 },
 *   { jobId: "other", priority: 0, ready: 50, inFlight: 2 },
 * ];
 * assert.deepEqual(shareSlots(heads, 8), [
 *   { jobId: "urgent", max: 3 },
 *   { jobId: "other", max: 4 },
 *   { jobId: "long", max: 1 },
 * ]);
 * ```
 */
export function shareSlots(heads: readonly JobHead[], max: number): Share[] {
  const open = heads.filter((h) => h.priority !== null && h.ready > 0 && room(h) > 0)
    .map((h) => ({ head: h, given: 0 }));
  const shares = new Map<string, number>();
  for (let slot = 0; slot < max && open.length > 0; slot++) {
    let best = 0;
    for (let i = 1; i < open.length; i++) {
      if (before(open[i]!, open[best]!)) best = i;
    }
    const pick = open[best]!;
    pick.given += 1;
    shares.set(pick.head.jobId, pick.given);
    if (pick.given >= pick.head.ready || pick.given >= room(pick.head)) open.splice(best, 1);
  }
  return [...shares].map(([jobId, n]) => ({ jobId, max: n }));
}

/** Room under a job's cap. */
function room(head: JobHead): number {
  return head.maxInFlight === undefined ? Infinity : head.maxInFlight - head.inFlight;
}

function before(
  a: { head: JobHead; given: number },
  b: { head: JobHead; given: number },
): boolean {
  const pa = a.head.priority!, pb = b.head.priority!;
  if (pa !== pb) return pa > pb;
  const fa = a.head.inFlight + a.given, fb = b.head.inFlight + b.given;
  if (fa !== fb) return fa < fb;
  return a.head.jobId < b.head.jobId;
}
