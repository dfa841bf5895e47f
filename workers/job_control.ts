/**
 * Pausing, resuming or cancelling a job as users ask for it (`ttg pause|resume|cancel`, the
 * dashboard's actions): a job that already finished is left as it is and said to be so, instead of
 * being marked paused or cancelled after the fact.
 *
 * @module
 */
import type { Broker, ControlAction, ControlOutcome } from "../brokers/broker.ts";
import { readSnapshot } from "./watch/snapshot.ts";

/** What a control request did: `finished` names a finished job's state, which it left alone. */
export interface ControlResult {
  readonly finished?: "completed" | "failed";
  readonly outcome: ControlOutcome;
}

/**
 * Applies `action` to the job unless it is completed or failed (read fresh, not from a cache).
 * Throws `NOT_FOUND` for a job id that names no job.
 */
export async function controlJob(
  broker: Broker,
  jobId: string,
  action: ControlAction,
): Promise<ControlResult> {
  const { state } = (await readSnapshot(broker, { jobId })).jobs[0]!;
  if (state === "completed" || state === "failed") {
    return { finished: state, outcome: { before: "running", after: "running", cancelled: 0 } };
  }
  return { outcome: await broker.control(jobId, action) };
}
