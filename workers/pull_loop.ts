/**
 * The worker's pull loop: claims chunks while the worker has room for them, backs off while the
 * broker is unavailable, and ends when the stop signal aborts or, after an idle timeout, when the
 * broker says every job it serves is drained.
 *
 * @module
 */
import type { Broker, Delivery } from "../brokers/broker.ts";
import { reconnectDelayMs } from "../brokers/policy.ts";
import { BrokerError, errorMessage } from "../errors.ts";
import type { Logger } from "../jobs/define_job.ts";
import type { Clock } from "./clock.ts";
import type { InFlight } from "./in_flight.ts";

/** Options of {@linkcode pullLoop}. */
export interface PullLoopOptions {
  readonly broker: Broker;
  /** The jobs to pull from now (a fleet's may change, or be none yet). */
  readonly jobIds: () => readonly string[];
  readonly log: Logger;
  readonly clock: Clock;
  /** Most deliveries one pull asks for. */
  readonly batch: number;
  /** Longest wait of one pull while nothing is held. */
  readonly pollMs: number;
  /** End once the job is drained and nothing came for this long; 0 never ends. */
  readonly idleTimeoutMs: number;
  /** The held chunks. */
  readonly inFlight: InFlight;
  /** How many chunks to hold at once now. */
  readonly window: () => number;
  /** Starts a claimed delivery (it is already held). */
  readonly start: (delivery: Delivery) => void;
}

/** Why the loop ended. */
export type PullLoopEnd = "idle" | "stopped";

/** Whether nothing of the jobs is left to do (false when the broker cannot tell now). */
async function drained(broker: Broker, jobIds: readonly string[]): Promise<boolean> {
  try {
    for (const jobId of jobIds) {
      const stats = await broker.stats(jobId);
      if (stats.ready + stats.delayed + stats.inFlight > 0) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** Pulls until `signal` aborts (`stopped`) or the job is drained past the idle timeout (`idle`). */
export async function pullLoop(o: PullLoopOptions, signal: AbortSignal): Promise<PullLoopEnd> {
  const { clock, inFlight } = o;
  let lastWork = clock.now();
  let failures = 0;
  while (!signal.aborted) {
    const room = o.window() - inFlight.size;
    if (room <= 0) {
      await inFlight.changed(signal);
      continue;
    }
    const jobIds = o.jobIds();
    let deliveries: Delivery[];
    try {
      if (jobIds.length === 0) {
        await clock.sleep(Math.min(o.pollMs, 100), signal); // no job to serve yet
        deliveries = [];
      } else {
        deliveries = await o.broker.pull({
          ...(jobIds.length === 1 ? { jobId: jobIds[0]! } : { jobIds }),
          max: Math.min(room, o.batch),
          waitMs: inFlight.size > 0 ? 20 : o.pollMs,
          signal,
        });
      }
      failures = 0;
    } catch (error) {
      if (error instanceof BrokerError && error.code === "CLOSED") throw error;
      failures += 1;
      o.log.warn("Pull failed; retrying", { error: errorMessage(error), attempt: failures });
      await clock.sleep(reconnectDelayMs(failures, { baseMs: 100, maxMs: 5000 }), signal);
      continue;
    }
    if (deliveries.length > 0) {
      lastWork = clock.now();
      for (const delivery of deliveries) o.start(delivery);
      // A broker that answers without I/O (SQLite) never lets the event loop turn: heartbeats,
      // progress lines and the engine's garbage-collection tasks would wait until the job ends.
      await clock.turn();
      continue;
    }
    if (inFlight.size > 0) lastWork = clock.now();
    if (o.idleTimeoutMs > 0 && clock.now() - lastWork >= o.idleTimeoutMs) {
      if (await drained(o.broker, jobIds)) return "idle";
      lastWork = clock.now() - o.idleTimeoutMs / 2; // not drained: look again soon
    }
  }
  return "stopped";
}
