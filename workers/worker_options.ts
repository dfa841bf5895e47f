/**
 * What a worker is given ({@linkcode WorkerOptions}: one job's, or a fleet's) and what it reports
 * when it stops ({@linkcode WorkerReport}).
 *
 * @module
 */
import type { Broker } from "../brokers/broker.ts";
import type { Job, Logger } from "../jobs/define_job.ts";
import type { Clock } from "./clock.ts";
import type { WorkerCounts, WorkerEvents } from "./counters.ts";
import type { ChunkExecutor } from "./executor.ts";
import type { WorkerIdentity } from "./fleet_report.ts";
import type { WorkerHealth } from "./health.ts";
import type { JobSource } from "./job_catalog.ts";

/** The one job a worker serves. */
export interface OneJobOptions {
  /** Job to serve. */
  readonly jobId: string;
  /** Job definition whose handler runs the chunks. */
  readonly job: Job;
  /** Runs the handlers (inline or in a thread pool). */
  readonly executor: ChunkExecutor;
  /** Not with one job: a fleet's option. */
  readonly jobs?: undefined;
}

/** The jobs a fleet worker serves. */
export interface FleetOptions {
  /** The jobs to serve and their handlers (job_catalog.ts); refreshed every `discoverMs`. */
  readonly jobs: JobSource;
  /** How often the jobs are looked up again. @default the broker's `capabilities.discoverMs` */
  readonly discoverMs?: number;
  /** Not in a fleet: one job's option. */
  readonly jobId?: undefined;
  /** Not in a fleet: one job's option. */
  readonly job?: undefined;
  /** Not in a fleet: one job's option. */
  readonly executor?: undefined;
}

/** Options of {@linkcode TtgWorker}: one job's, or a fleet's. */
export type WorkerOptions = WorkerBaseOptions & (OneJobOptions | FleetOptions);

/** What every worker is given. */
export interface WorkerBaseOptions {
  /** Broker to pull chunks from and commit results to. */
  readonly broker: Broker;
  /** This worker's id, recorded with its results and failures. */
  readonly workerId: string;
  /** Logger of the worker. */
  readonly log: Logger;
  /** Handlers running at once. */
  readonly concurrency: number;
  /** Most deliveries pulled, and results acked, in one call. */
  readonly batch: number;
  /** Lease extension interval. */
  readonly heartbeatMs: number;
  /** Interval of reclaiming expired leases. @default heartbeatMs / 2 */
  readonly reclaimIntervalMs?: number;
  /** Exit after this long without work once every job served is drained; 0 never exits. */
  readonly idleTimeoutMs: number;
  /** On stop, how long running chunks may take before they are released. */
  readonly graceMs: number;
  /** Per-chunk timeout, unless the job sets its own `timeoutMs`. */
  readonly chunkTimeoutMs: number;
  /** Longest wait of one pull. @default 1000 */
  readonly pollMs?: number;
  /** Interval of a long chunk's PROGRESS lines. @default 5000 */
  readonly progressLogMs?: number;
  /** Interval of the worker's own PROGRESS line, `ttg run`'s plain schedule. @default 3000 */
  readonly workerProgressMs?: number;
  /** Time source of the loops. @default systemClock */
  readonly clock?: Clock;
  /** Also told every count (the worker's metrics). */
  readonly events?: WorkerEvents;
  /** Told of every heartbeat tick and of the stop (the worker's /healthz and /readyz). */
  readonly health?: WorkerHealth;
  /** Who this worker is, for its record in the broker's fleet registry (none without it). */
  readonly identity?: WorkerIdentity;
}

/** What one worker did. */
export interface WorkerReport extends WorkerCounts {
  /** Id of the worker. */
  readonly workerId: string;
  /** `idle`: the job was drained for `idleTimeoutMs`; `stopped`: the stop signal aborted. */
  readonly exitReason: "idle" | "stopped";
  /** Wall-clock time the worker ran, in milliseconds. */
  readonly durationMs: number;
}
