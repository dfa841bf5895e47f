/**
 * A pull across several jobs over a driver that can tell each job's head: the heads are read
 * (those that are due: head_cache.ts), the policy shares the claims (share.ts), and each share is
 * claimed in the job's own atomic step, so the job's cap and control hold exactly as in a one-job
 * pull. Between two reads of the heads another consumer may take a chunk; the claim then returns
 * fewer, never a wrong one.
 *
 * @module
 */
import type { Delivery } from "./broker.ts";
import type { HeadCache } from "./head_cache.ts";
import { type JobHead, shareSlots } from "./share.ts";
import { waitOrAbort } from "./wait.ts";

/** What a pull across jobs needs of a driver. */
export interface HeadsDriver {
  heads(jobIds: readonly string[], max: number): Promise<JobHead[]>;
  pull(request: {
    readonly jobId: string;
    readonly max: number;
    readonly waitMs: number;
    readonly signal: AbortSignal;
  }): Promise<Delivery[]>;
}

/** The first poll of an idle pull across jobs, doubling up to the last. */
const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 100;

/** Claims up to `max` chunks of `jobIds` as the policy shares them, waiting up to `waitMs`. */
export async function pullAcross(
  driver: HeadsDriver,
  cache: HeadCache,
  request: {
    readonly jobIds: readonly string[];
    readonly max: number;
    readonly waitMs: number;
    readonly signal: AbortSignal;
  },
): Promise<Delivery[]> {
  const { jobIds, max, waitMs, signal } = request;
  const deadline = Date.now() + waitMs;
  let pollMs = FIRST_POLL_MS;
  for (;;) {
    if (signal.aborted) return [];
    const heads = await cache.heads(jobIds, max, (ids, n) => driver.heads(ids, n));
    const out: Delivery[] = [];
    for (const share of shareSlots(heads, max)) {
      cache.changed(share.jobId);
      out.push(...await driver.pull({ jobId: share.jobId, max: share.max, waitMs: 0, signal }));
    }
    if (out.length > 0) return out;
    const leftMs = deadline - Date.now();
    if (leftMs <= 0) return [];
    await waitOrAbort(Math.min(pollMs, leftMs), signal);
    pollMs = Math.min(MAX_POLL_MS, pollMs * 2);
  }
}
