/**
 * A worker's record in its broker's fleet registry: who it is (host, pod, node, pid, version),
 * what it is doing (starting, busy, idle, draining, stopped) and what it has done, refreshed on
 * its heartbeat. A worker that dies stops refreshing it and is shown as lost.
 *
 * @module
 */
import type { Broker, RetryingChunk, WorkerActivity } from "../brokers/broker.ts";
import { HOLDING_SHOWN } from "../brokers/registry.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../jobs/define_job.ts";
import type { WorkerCounts } from "./counters.ts";
import type { JobSource } from "./job_catalog.ts";

/** Who a worker is, for its record. */
export interface WorkerIdentity {
  /** The worker's id. */
  readonly workerId: string;
  /** Host name of its machine. */
  readonly host: string;
  /** Kubernetes pod, "" elsewhere. */
  readonly pod: string;
  /** Kubernetes node, "" elsewhere. */
  readonly node: string;
  /** Its process id. */
  readonly pid: number;
  /** TTG's version. */
  readonly version: string;
  /** ISO 8601 time it started. */
  readonly startedAt: string;
}

/** Writes a worker's record; a failed write is logged (once per outage) and never stops it. */
export class FleetReporter {
  readonly #broker: Broker;
  readonly #identity: WorkerIdentity;
  readonly #jobs: JobSource;
  readonly #heartbeatMs: number;
  readonly #log: Logger;
  /** Chunks given back for a retry, by job and chunk id, with when the retry is due. */
  readonly #retrying = new Map<string, RetryingChunk & { readonly dueMs: number }>();
  #failing = false;

  constructor(
    broker: Broker,
    options: {
      readonly identity: WorkerIdentity;
      /** The jobs it serves: one job's id, or a fleet worker's glob. */
      readonly jobs: JobSource;
      readonly heartbeatMs: number;
      readonly log: Logger;
    },
  ) {
    this.#broker = broker;
    this.#identity = options.identity;
    this.#jobs = options.jobs;
    this.#heartbeatMs = options.heartbeatMs;
    this.#log = options.log;
  }

  /** A chunk of `jobId` was given back for a retry due at `dueMs`: listed until then. */
  retrying(jobId: string, chunkId: string, dueMs: number): void {
    const key = `${jobId}/${chunkId}`;
    this.#retrying.delete(key); // the newest last, so the oldest are the ones left out
    this.#retrying.set(key, { jobId, chunkId, until: new Date(dueMs).toISOString(), dueMs });
  }

  /** The retries not due yet, the newest {@linkcode HOLDING_SHOWN}. */
  #pendingRetries(now: number): RetryingChunk[] {
    for (const [key, chunk] of this.#retrying) {
      if (chunk.dueMs <= now) this.#retrying.delete(key);
    }
    return [...this.#retrying.values()].slice(-HOLDING_SHOWN).map(({ dueMs: _, ...chunk }) =>
      chunk
    );
  }

  /** Reports `state` with the counts, held chunks and the chunks running now, with their jobs. */
  async report(
    state: WorkerActivity,
    counts: WorkerCounts,
    inFlight: number,
    running: readonly { readonly jobId: string; readonly chunkId: string }[],
  ): Promise<void> {
    const shown = running.slice(0, HOLDING_SHOWN);
    try {
      await this.#broker.fleet.report({
        ...this.#identity,
        jobId: this.#jobs.label,
        ...this.#fleetFields(),
        state,
        chunks: counts.chunks,
        params: counts.params,
        inFlight,
        running: shown.map((r) => r.chunkId),
        runningJobs: shown.map((r) => r.jobId),
        retrying: this.#pendingRetries(Date.now()),
        failures: counts.failures,
        timeouts: counts.timeouts,
        heartbeatMs: this.#heartbeatMs,
      });
      this.#failing = false;
    } catch (error) {
      if (!this.#failing) {
        this.#log.warn("Cannot update this worker's record in the fleet registry", {
          error: errorMessage(error),
        });
      }
      this.#failing = true;
    }
  }

  /** A fleet worker's jobs served now and the ones it cannot load. */
  #fleetFields(): { jobs?: readonly string[]; unloadable?: Record<string, string> } {
    const ids = this.#jobs.ids();
    if (ids.length === 1 && ids[0] === this.#jobs.label) return {};
    const unloadable = Object.fromEntries(this.#jobs.unloadable());
    return {
      jobs: ids.slice(0, HOLDING_SHOWN),
      ...(Object.keys(unloadable).length > 0 ? { unloadable } : {}),
    };
  }
}
